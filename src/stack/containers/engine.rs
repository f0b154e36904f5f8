//! The Docker engine the containers backend talks to: where it is, which API it speaks,
//! which images it holds, and the run's containers by label.
//!
//! testcontainers' bollard (0.19.4) asks for API 1.49 and never negotiates; an older engine
//! (Debian's dockerd 20.10 speaks 1.41) refuses versioned requests above its own. So the
//! engine's API version is read first from an unversioned `GET /version`, and the harness's
//! own client speaks that version.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bollard::{ClientVersion, Docker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The label every container of a run carries, set to the run id.
pub const RUN_LABEL: &str = "org.mcp-authz-harness.run";

/// How long one engine request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The newest API the pinned bollard knows.
const NEWEST_API: (usize, usize) = (1, 49);

/// A reachable engine.
#[derive(Clone)]
pub struct Engine {
    pub socket: PathBuf,
    /// The engine's own version (`20.10.24`) and the API version it speaks (`1.41`).
    pub version: String,
    pub api_version: String,
    pub client: Docker,
}

/// The engine's socket: `DOCKER_HOST` (`unix://` only), else `/var/run/docker.sock`.
pub fn socket_path() -> anyhow::Result<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => match host.strip_prefix("unix://") {
            Some(path) => Ok(PathBuf::from(path)),
            None => bail!(
                "DOCKER_HOST={host}: the containers backend reaches the engine through a unix \
                 socket only; set DOCKER_HOST=unix:///path/to/docker.sock"
            ),
        },
        _ => Ok(PathBuf::from("/var/run/docker.sock")),
    }
}

impl Engine {
    /// Connects to the engine, or says what to do when there is none.
    pub async fn connect() -> anyhow::Result<Engine> {
        let socket = socket_path()?;
        let (version, api_version) = read_version(&socket).await?;
        let (major, minor) = parse_api(&api_version).with_context(|| {
            format!(
                "the engine at {} answered API version {api_version:?}",
                socket.display()
            )
        })?;
        let speak = (major, minor).min(NEWEST_API);
        let client = Docker::connect_with_unix(
            &socket.to_string_lossy(),
            REQUEST_TIMEOUT.as_secs(),
            &ClientVersion {
                major_version: speak.0,
                minor_version: speak.1,
            },
        )
        .with_context(|| format!("connecting to the engine at {}", socket.display()))?;
        Ok(Engine {
            socket,
            version,
            api_version,
            client,
        })
    }

    /// The image's ID when the engine holds `reference` locally, `None` when it does not.
    pub async fn image_id(&self, reference: &str) -> anyhow::Result<Option<String>> {
        match self.client.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("inspecting the image {reference}")),
        }
    }

    /// IDs and creation times (Unix seconds) of the containers labelled with `run`, or with
    /// any run when `run` is `None`, stopped ones included.
    pub async fn labelled(&self, run: Option<&str>) -> anyhow::Result<Vec<(String, i64, String)>> {
        let label = match run {
            Some(id) => format!("{RUN_LABEL}={id}"),
            None => RUN_LABEL.to_owned(),
        };
        let filters = std::collections::HashMap::from([("label".to_owned(), vec![label])]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .client
            .list_containers(Some(options))
            .await
            .context("listing the run's containers")?;
        Ok(list
            .into_iter()
            .map(|c| {
                let run = (c.labels.as_ref())
                    .and_then(|l| l.get(RUN_LABEL).cloned())
                    .unwrap_or_default();
                (c.id.unwrap_or_default(), c.created.unwrap_or(0), run)
            })
            .collect())
    }

    /// Removes a container, running or not (a container already gone counts as removed).
    pub async fn remove(&self, id: &str) -> anyhow::Result<()> {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.client.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing the container {id}")),
        }
    }

    /// Removes every container labelled with `run`; returns how many there were.
    pub async fn remove_run(&self, run: &str) -> anyhow::Result<usize> {
        let containers = self.labelled(Some(run)).await?;
        for (id, _, _) in &containers {
            self.remove(id).await?;
        }
        Ok(containers.len())
    }
}

/// `(engine version, API version)` from an unversioned `GET /version`.
async fn read_version(socket: &std::path::Path) -> anyhow::Result<(String, String)> {
    let body = tokio::time::timeout(REQUEST_TIMEOUT, unversioned_get(socket, "/version"))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the Docker engine at {} did not answer GET /version within {}s",
                socket.display(),
                REQUEST_TIMEOUT.as_secs()
            )
        })??;
    let json: serde_json::Value = serde_json::from_str(&body).with_context(|| {
        format!(
            "the engine at {} answered GET /version with no JSON",
            socket.display()
        )
    })?;
    let field = |name: &str| json[name].as_str().unwrap_or("unknown").to_owned();
    Ok((field("Version"), field("ApiVersion")))
}

async fn unversioned_get(socket: &std::path::Path, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::UnixStream::connect(socket).await.with_context(|| {
        format!(
            "no Docker engine answers at {} (start dockerd, or set DOCKER_HOST=unix:///path/to/docker.sock)",
            socket.display()
        )
    })?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {path}: no HTTP response from {}", socket.display()))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!(
            "GET {path} at {}: {}",
            socket.display(),
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(body.to_owned())
}

/// An image's or a container's ID as `docker` shows it: 12 hex digits, no `sha256:`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn parse_api(version: &str) -> Option<(usize, usize)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse_and_cap_at_what_bollard_knows() {
        assert_eq!(parse_api("1.41"), Some((1, 41)));
        assert_eq!(parse_api("1.51").map(|v| v.min(NEWEST_API)), Some((1, 49)));
        assert_eq!(parse_api("unknown"), None);
    }
}
