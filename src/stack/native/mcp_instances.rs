//! Further MCP server instances that checks start next to the session's own: another
//! configuration of the same release (no static client, no database path, a changed
//! key), each with its own port, database and log, stopped or restarted by name, and
//! stopped at teardown with the rest. The session's own instance is never touched.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::mcp_server::{self, McpServerOptions, McpServerWiring};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;

/// What starting an instance needs from the session.
#[derive(Clone, Copy)]
pub struct Launcher<'a> {
    pub run: &'a RunContext,
    pub progress: &'a Progress,
    /// The release and limits of the session's own instance.
    pub options: &'a McpServerOptions,
    /// The session's own wiring, which a new instance starts from.
    pub wiring: &'a McpServerWiring,
}

/// How long a stopped instance gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A started instance, as checks see it.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub version: String,
    /// `http://127.0.0.1:PORT`, also its `NEXTCLOUD_MCP_SERVER_URL`.
    pub base_url: String,
    pub port: u16,
    pub fernet_key: Secret,
    /// `TOKEN_STORAGE_DB` (unless the configuration unset it).
    pub db_path: PathBuf,
    pub tmp_dir: PathBuf,
    pub log: PathBuf,
    pub argv: Vec<String>,
    /// The wiring it was started with (port and key filled in), for a restart.
    wiring: McpServerWiring,
}

impl Instance {
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

/// The extra instances of a session.
#[derive(Default)]
pub struct Instances {
    running: tokio::sync::Mutex<Vec<(String, ManagedProcess)>>,
    logs: std::sync::Mutex<Vec<PathBuf>>,
}

impl Instances {
    /// Starts the session's release as `name`, the session's wiring changed by
    /// `configure`. The error says why it did not start, with the log tail.
    pub async fn start(
        &self,
        with: Launcher<'_>,
        name: &str,
        configure: impl FnOnce(&mut McpServerWiring),
    ) -> Result<Instance, String> {
        let mut wiring = with.wiring.clone();
        wiring.instance = name.to_owned();
        configure(&mut wiring);
        self.launch(with, wiring).await
    }

    /// Stops `instance` and starts it again on the same port and database, with `key`
    /// (the same key when `None`).
    pub async fn restart(
        &self,
        with: Launcher<'_>,
        instance: &Instance,
        key: Option<Secret>,
    ) -> Result<Instance, String> {
        self.stop(&instance.name).await;
        let mut wiring = instance.wiring.clone();
        wiring.fernet_key = Some(key.unwrap_or_else(|| instance.fernet_key.clone()));
        self.launch(with, wiring).await
    }

    async fn launch(
        &self,
        with: Launcher<'_>,
        mut wiring: McpServerWiring,
    ) -> Result<Instance, String> {
        let log = with.run.path(format!("{}.log", wiring.instance));
        self.remember_log(log.clone());
        let started = mcp_server::start(with.run, with.options, &wiring, with.progress).await;
        let server = match started {
            Ok(s) => s,
            Err(failure) => {
                if let Some(p) = failure.process {
                    self.running.lock().await.push((wiring.instance.clone(), p));
                }
                return Err(failure.message);
            }
        };
        let port = url::Url::parse(&server.base_url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or_default();
        wiring.port = Some(port);
        wiring.fernet_key = Some(server.fernet_key.clone());
        let instance = Instance {
            name: wiring.instance.clone(),
            version: server.version.clone(),
            base_url: server.base_url.clone(),
            port,
            fernet_key: server.fernet_key.clone(),
            db_path: server.db_path.clone(),
            tmp_dir: server.tmp_dir.clone(),
            log,
            argv: server.argv.clone(),
            wiring,
        };
        self.running
            .lock()
            .await
            .push((instance.name.clone(), server.process));
        Ok(instance)
    }

    /// SIGTERM to `name` (SIGKILL after a grace period); its exit status, when it had one.
    pub async fn stop(&self, name: &str) -> Option<ExitStatus> {
        let mut running = self.running.lock().await;
        let mut status = None;
        for (n, p) in running.iter_mut().filter(|(n, _)| n == name) {
            p.stop(GRACE).await;
            status = p.exit_status();
            tracing::debug!(instance = n, ?status, "stopped");
        }
        running.retain(|(n, _)| n != name);
        status
    }

    /// Stops every instance (teardown).
    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        while let Some((_, mut p)) = running.pop() {
            p.stop(GRACE).await;
        }
    }

    /// The logs of every instance started, for teardown to keep or copy.
    pub fn log_files(&self) -> Vec<PathBuf> {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|p| p.exists())
            .cloned()
            .collect()
    }

    fn remember_log(&self, log: PathBuf) {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if !logs.contains(&log) {
            logs.push(log);
        }
    }
}
