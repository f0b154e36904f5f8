//! The generic MCP subject on the native backend: FastMCP from PyPI, running
//! `fixtures/subjects/fastmcp/server.py`, which validates the realm's tokens itself
//! (`JWTVerifier` against the realm's JWKS, issuer and audience) and serves RFC 9728
//! metadata naming Keycloak. It knows nothing of Nextcloud.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::Command;

use super::mcp_server::{McpServerOptions, StartFailure, Venv};
use crate::http::Http;
use crate::progress::Progress;
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;
use crate::stack::wait::{Condition, wait_ready};
use crate::stack::{RunningMcp, SubjectWiring};

/// The PyPI package and the release the harness pins.
pub const FASTMCP: &str = "fastmcp";
pub const FASTMCP_VERSION: &str = "4.2.3";

/// The server: FastMCP's own ten lines of authorization plus four tools.
const SERVER_PY: &str = include_str!("../../../fixtures/subjects/fastmcp/server.py");

/// How the subject shows in the report's components and picks its expectations
/// (`fixtures/expectations/mcp-server/fastmcp-4.2.3.toml`).
pub fn version_label() -> String {
    format!("{FASTMCP}-{FASTMCP_VERSION}")
}

fn venv(opts: &McpServerOptions) -> Venv<'_> {
    Venv {
        name: version_label(),
        requirements: vec![format!("{FASTMCP}=={FASTMCP_VERSION}")],
        python: &opts.python,
        install_timeout: opts.install_timeout,
    }
}

/// The venv, ready before the realm is (started while Keycloak boots).
pub async fn prepare_venv(
    run: &RunContext,
    opts: &McpServerOptions,
    progress: &Progress,
) -> anyhow::Result<std::path::PathBuf> {
    venv(opts).ensure(run, progress).await
}

/// Starts the server against the realm and waits until its protected resource metadata
/// answers (phase `boot.mcp-server`).
pub async fn start(
    run: &RunContext,
    opts: &McpServerOptions,
    wiring: &SubjectWiring,
    instance: &str,
    progress: &Progress,
) -> Result<(ManagedProcess, RunningMcp), StartFailure> {
    let fail = |e: anyhow::Error| StartFailure {
        message: format!("{e:#}"),
        process: None,
    };
    let python = venv(opts)
        .ensure(run, progress)
        .await
        .map_err(fail)?
        .join("bin/python");
    let (cmd, base_url) = command(run, &python, wiring, instance)
        .await
        .map_err(fail)?;
    let log = run.path(format!("{instance}.log"));
    let mut process = ManagedProcess::spawn(instance, &run.id, cmd, &log).map_err(fail)?;
    let booting = Instant::now();
    let http = Http::new(Duration::from_secs(5));
    let metadata = format!("{base_url}/.well-known/oauth-protected-resource/mcp");
    let ready = wait_ready(
        &format!("{FASTMCP} {FASTMCP_VERSION}"),
        opts.boot_timeout,
        Some(&mut process),
        vec![Condition::http_ok(
            &http,
            "its protected resource metadata",
            metadata,
        )],
        progress,
    )
    .await;
    progress.phase_done("boot.mcp-server", booting.elapsed());
    if let Err(e) = ready {
        process.stop(Duration::from_secs(5)).await;
        return Err(StartFailure {
            message: e.to_string(),
            process: Some(process),
        });
    }
    let running = RunningMcp {
        base_url,
        version: version_label(),
        fernet_key: None,
        db_path: None,
        home: Some(run.path(instance)),
        requested_scopes: Vec::new(),
        argv: process.argv().to_vec(),
    };
    Ok((process, running))
}

/// `python server.py` in the instance's own working dir, configured by environment only
/// (cleared first). The tokens it accepts carry the MCP server's client id in `aud` (the
/// realm's audience mapper puts it there) or its own URL.
async fn command(
    run: &RunContext,
    python: &std::path::Path,
    wiring: &SubjectWiring,
    instance: &str,
) -> anyhow::Result<(Command, String)> {
    let jwks_uri = jwks_uri(&wiring.discovery_url).await?;
    let port = crate::stack::ports::free_port()?;
    let base_url = format!("http://127.0.0.1:{port}");
    let cwd = run.subdir(&format!("{instance}/cwd"))?;
    let script = cwd.join("server.py");
    std::fs::write(&script, SERVER_PY).with_context(|| format!("writing {}", script.display()))?;
    let mut cmd = Command::new(python);
    cmd.arg(&script).current_dir(&cwd).env_clear();
    for var in ["PATH", "HOME", "LANG", "LC_ALL"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs([
        ("SUBJECT_PORT", port.to_string()),
        ("SUBJECT_BASE_URL", base_url.clone()),
        ("SUBJECT_ISSUER", wiring.issuer.clone()),
        ("SUBJECT_JWKS_URI", jwks_uri),
        (
            "SUBJECT_AUDIENCE",
            format!("{} {base_url}/mcp", wiring.mcp_client_id),
        ),
        (
            "TMPDIR",
            run.subdir(&format!("{instance}/tmp"))?
                .display()
                .to_string(),
        ),
    ]);
    Ok((cmd, base_url))
}

/// The realm's `jwks_uri`, from its discovery document.
async fn jwks_uri(discovery_url: &str) -> anyhow::Result<String> {
    let resp = Http::new(crate::http::DEFAULT_TIMEOUT)
        .get(discovery_url)
        .send()
        .await?;
    anyhow::ensure!(
        resp.status == 200,
        "the realm's discovery {discovery_url}: {}",
        resp.summary()
    );
    resp.json_value()?["jwks_uri"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the realm's discovery {discovery_url} names no jwks_uri"))
}
