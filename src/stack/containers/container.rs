//! One container of a run, as the rest of the stack sees a process: started from a
//! [`ContainerSpec`] with testcontainers, its output appended to a log file in the run
//! dir, its exit watched, stopped and removed with the run.
//!
//! Every container joins the host network (every URL is 127.0.0.1 with a port the harness
//! chose, the same for the browser and the servers), carries the run label and the run
//! marker (so the watchdog finds its processes), and is removed by the engine when it stops
//! (`AutoRemove`): a run that is SIGKILLed leaves nothing once the watchdog stopped it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use futures::future::BoxFuture;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::logs::consumer::LogConsumer;
use testcontainers::core::{ExecCommand, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::engine::{Engine, RUN_LABEL};
use crate::stack::RUN_MARKER_VAR;

/// How long a command run inside a container may take to finish its output.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run: an image with arguments appended to its entrypoint, like `docker run`.
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    /// `repository:tag`.
    pub image: String,
    /// Replaces the image's entrypoint, when set.
    pub entrypoint: Option<String>,
    pub args: Vec<String>,
    /// Values of secrets among them stay out of the argv the report shows.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    /// `uid:gid`; the image's user when `None`.
    pub user: Option<String>,
    /// Host directories mounted read-write at the same path inside.
    pub bind_same_path: Vec<PathBuf>,
    /// A tiny init as PID 1, which forwards signals and reaps (`docker run --init`).
    pub init: bool,
}

impl ContainerSpec {
    /// `docker run`'s view of it, for the report (values of variables left out).
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![
            "docker".to_owned(),
            "run".to_owned(),
            "--network=host".to_owned(),
        ];
        argv.extend(self.env.iter().map(|(k, _)| format!("-e {k}")));
        if let Some(e) = &self.entrypoint {
            argv.push(format!("--entrypoint={e}"));
        }
        argv.push(self.image.clone());
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// A started container.
pub struct ManagedContainer {
    /// `None` once stopped and removed.
    container: Option<ContainerAsync<GenericImage>>,
    engine: Engine,
    pub id: String,
    /// Its main process's pid on the host (0 when the engine runs elsewhere).
    pub pid: i32,
    exit_code: Arc<Mutex<Option<i64>>>,
}

impl ManagedContainer {
    /// Starts `spec` for the run `run_id`, appending its output to `log`. Fails with what
    /// to do when the image is not on the engine (testcontainers would try a pull, which
    /// ends in a registry error offline).
    pub async fn start(
        engine: &Engine,
        spec: &ContainerSpec,
        run_id: &str,
        log: &Path,
    ) -> anyhow::Result<ManagedContainer> {
        if engine.image_id(&spec.image).await?.is_none() {
            anyhow::bail!(
                "the image {} is not on the Docker engine at {}: `mcp-authz-harness images build` \
                 builds local equivalents of the default images (then pass their names, as it \
                 prints), or `docker pull {}` where a registry is reachable",
                spec.image,
                engine.socket.display(),
                spec.image
            );
        }
        let request = request(spec, run_id, log)?;
        let container = request
            .start()
            .await
            .with_context(|| format!("starting a container of {}", spec.image))?;
        let id = container.id().to_owned();
        let pid = engine
            .client
            .inspect_container(
                &id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()
            .and_then(|c| c.state?.pid)
            .unwrap_or(0) as i32;
        let exit_code = Arc::new(Mutex::new(None));
        watch_exit(engine, &id, exit_code.clone());
        Ok(ManagedContainer {
            container: Some(container),
            engine: engine.clone(),
            id,
            pid,
            exit_code,
        })
    }

    /// The exit code, once the container's main process has exited.
    pub fn exit_code(&self) -> Option<i64> {
        *self.exit_code.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `cmd` prints on stdout inside the running container.
    pub async fn exec_stdout(&self, cmd: &[&str]) -> anyhow::Result<String> {
        let container = self
            .container
            .as_ref()
            .context("the container was stopped")?;
        let what = format!("running {cmd:?} in {}", self.short_id());
        // An exec whose process ends before the engine attached can leave its output
        // stream open: bounded, so a start never waits on it forever.
        let out = tokio::time::timeout(EXEC_TIMEOUT, async {
            let mut result = container
                .exec(ExecCommand::new(cmd.iter().copied()))
                .await?;
            result.stdout_to_vec().await
        })
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{what}: no end of output within {}s",
                EXEC_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| what.clone())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn short_id(&self) -> &str {
        super::engine::short_id(&self.id)
    }

    /// Stops it (SIGTERM, SIGKILL after `grace`) and removes it, each step bounded.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(container) = self.container.take() else {
            return;
        };
        let grace_s = grace.as_secs().max(1) as i32;
        let stopped = tokio::time::timeout(
            grace + Duration::from_secs(10),
            container.stop_with_timeout(Some(grace_s)),
        )
        .await;
        if !matches!(stopped, Ok(Ok(()))) {
            tracing::debug!(id = self.id, "stop did not complete: {stopped:?}");
        }
        forget_handle(container);
        // AutoRemove usually got there first; a container already gone counts as removed.
        match tokio::time::timeout(REMOVE_TIMEOUT, self.engine.remove(&self.id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("{e:#}"),
            Err(_) => tracing::warn!(
                "the engine did not remove the container {} within {}s; teardown looks for it again",
                self.short_id(),
                REMOVE_TIMEOUT.as_secs()
            ),
        }
    }
}

/// How long the removal of one stopped container may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Lets testcontainers' handle go without its drop, which removes the container by
/// blocking the current thread on the engine with no timeout. Every check future is polled
/// on one thread, so an engine slow to remove a container (one `AutoRemove` is already
/// removing) stalled the whole run, check timeouts included. Removal is ours instead,
/// bounded; the handle's own memory is all that is not freed.
fn forget_handle(container: ContainerAsync<GenericImage>) {
    std::mem::forget(container);
}

impl Drop for ManagedContainer {
    /// The safety net for a container whose handle goes without [`stop`](Self::stop): it is
    /// removed in the background while a runtime lives; teardown's sweep by label and the
    /// watchdog otherwise.
    fn drop(&mut self) {
        let Some(container) = self.container.take() else {
            return;
        };
        forget_handle(container);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (engine, id) = (self.engine.clone(), self.id.clone());
            runtime.spawn(async move {
                let _ = tokio::time::timeout(REMOVE_TIMEOUT, engine.remove(&id)).await;
            });
        }
    }
}

fn request(
    spec: &ContainerSpec,
    run_id: &str,
    log: &Path,
) -> anyhow::Result<testcontainers::ContainerRequest<GenericImage>> {
    let (name, tag) = split_reference(&spec.image);
    let mut image = GenericImage::new(name, tag);
    if let Some(e) = &spec.entrypoint {
        image = image.with_entrypoint(e);
    }
    let init = spec.init;
    let mut request = image
        .with_network("host")
        .with_label(RUN_LABEL, run_id)
        .with_env_var(RUN_MARKER_VAR, run_id)
        .with_cmd(spec.args.clone())
        .with_log_consumer(FileLog::open(log)?)
        .with_host_config_modifier(move |hc| {
            hc.auto_remove = Some(true);
            hc.init = Some(init);
        });
    for (k, v) in &spec.env {
        request = request.with_env_var(k, v);
    }
    for dir in &spec.bind_same_path {
        let path = dir.display().to_string();
        request = request.with_mount(Mount::bind_mount(path.clone(), path));
    }
    if let Some(dir) = &spec.working_dir {
        request = request.with_working_dir(dir.display().to_string());
    }
    if let Some(user) = &spec.user {
        request = request.with_user(user);
    }
    Ok(request)
}

/// `(repository, tag)` of `repository:tag` (a registry's port is not a tag).
fn split_reference(reference: &str) -> (String, String) {
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.to_owned(), tag.to_owned()),
        _ => (reference.to_owned(), "latest".to_owned()),
    }
}

/// Records the exit code when the container's main process exits.
fn watch_exit(engine: &Engine, id: &str, exit_code: Arc<Mutex<Option<i64>>>) {
    let (client, id) = (engine.client.clone(), id.to_owned());
    tokio::spawn(async move {
        let mut wait =
            client.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(response)) => response.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            _ => return,
        };
        *exit_code.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
    });
}

/// Appends a container's stdout and stderr to its log file.
struct FileLog(Mutex<File>);

impl FileLog {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the log file {}", path.display()))?;
        Ok(Self(Mutex::new(file)))
    }
}

impl LogConsumer for FileLog {
    fn accept<'a>(&'a self, record: &'a LogFrame) -> BoxFuture<'a, ()> {
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.write_all(record.bytes());
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(
            split_reference("quay.io/keycloak/keycloak:26.7.3"),
            ("quay.io/keycloak/keycloak".into(), "26.7.3".into())
        );
        assert_eq!(
            split_reference("localhost:5000/kc"),
            ("localhost:5000/kc".into(), "latest".into())
        );
    }

    #[test]
    fn the_argv_names_variables_but_never_their_values() {
        let spec = ContainerSpec {
            image: "kc:1".into(),
            args: vec!["start".into()],
            env: vec![("KC_BOOTSTRAP_ADMIN_PASSWORD".into(), "s3cret".into())],
            ..Default::default()
        };
        let argv = spec.argv().join(" ");
        assert!(argv.contains("-e KC_BOOTSTRAP_ADMIN_PASSWORD"), "{argv}");
        assert!(!argv.contains("s3cret"), "{argv}");
    }
}
