//! Further MCP server instances that checks start next to the stack's own: another
//! configuration of the same release (no static client, no database path, a changed
//! key), each with its own port, database and log, stopped or restarted by name, and
//! stopped with the stack. The stack's own instance is never touched.
//!
//! A capability: a backend that starts the MCP server itself offers it (native), one that
//! only reaches a URL does not (external), and checks needing it declare
//! [`Need::McpInstances`](super::Need::McpInstances).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use super::mcp_profiles::profile_for;
use super::native::mcp_server::{self, McpServerOptions, McpServerWiring};
use super::process::ManagedProcess;
use super::run::RunContext;
use crate::progress::Progress;
use crate::secret::Secret;

/// How long a stopped instance gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// How an instance differs from the stack's own MCP server.
#[derive(Clone, Debug)]
pub struct InstanceSettings {
    /// Variables set over the stack's configuration (`ENABLE_DCR=true`).
    pub set_env: Vec<(String, String)>,
    /// Variables left out (`TOKEN_STORAGE_DB`).
    pub unset_env: Vec<String>,
    /// Whether it gets the realm's static client; without one it registers itself.
    pub static_client: bool,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            set_env: Vec::new(),
            unset_env: Vec::new(),
            static_client: true,
        }
    }
}

/// A started instance, as checks see it.
#[derive(Clone, Debug)]
pub struct Instance {
    /// The name it was started as (without the stack's prefix).
    pub name: String,
    pub version: String,
    /// `http://127.0.0.1:PORT`, also its `NEXTCLOUD_MCP_SERVER_URL`.
    pub base_url: String,
    pub port: u16,
    pub fernet_key: Secret,
    /// `TOKEN_STORAGE_DB` (unless the configuration unset it).
    pub db_path: PathBuf,
    /// Its `TMPDIR` (where an ephemeral database goes).
    pub tmp_dir: PathBuf,
    /// The directory holding its working dir, data and `TMPDIR`.
    pub home: PathBuf,
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

/// What starting an instance needs: the stack's own launch, which a new one starts from.
struct NativeLaunch {
    run: Arc<RunContext>,
    progress: Arc<Progress>,
    options: McpServerOptions,
    wiring: McpServerWiring,
}

/// The further instances of a stack.
pub struct McpInstances {
    launch: NativeLaunch,
    /// Prefixes every instance's name (and so its log and directories): a joined session's
    /// instances sit next to the first session's in the same run dir.
    prefix: String,
    running: tokio::sync::Mutex<Vec<(String, ManagedProcess)>>,
    logs: std::sync::Mutex<Vec<PathBuf>>,
}

impl McpInstances {
    pub(super) fn native(
        run: Arc<RunContext>,
        progress: Arc<Progress>,
        options: McpServerOptions,
        wiring: McpServerWiring,
        prefix: String,
    ) -> Self {
        Self {
            launch: NativeLaunch {
                run,
                progress,
                options,
                wiring,
            },
            prefix,
            running: tokio::sync::Mutex::default(),
            logs: std::sync::Mutex::default(),
        }
    }

    /// The release every instance runs.
    pub fn version(&self) -> &str {
        &self.launch.options.version
    }

    /// Where the log of instance `name` is (or will be).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.launch
            .run
            .path(format!("{}.log", self.full_name(name)))
    }

    fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Starts the stack's release as `name`, its configuration changed by `configure`.
    /// The error says why it did not start, with the log tail.
    pub async fn start(
        &self,
        name: &str,
        configure: impl FnOnce(&mut InstanceSettings),
    ) -> Result<Instance, String> {
        let mut settings = InstanceSettings::default();
        configure(&mut settings);
        let mut wiring = self.launch.wiring.clone();
        wiring.instance = self.full_name(name);
        wiring.extra_env.extend(settings.set_env);
        wiring.unset_env.extend(settings.unset_env);
        if !settings.static_client {
            let profile = profile_for(self.version()).map_err(|e| format!("{e:#}"))?;
            wiring.unset_env.push(profile.client_id_var.to_owned());
            wiring.unset_env.push(profile.client_secret_var.to_owned());
        }
        self.launch(wiring).await
    }

    /// Stops `instance` and starts it again on the same port and database, with `key`
    /// (the same key when `None`).
    pub async fn restart(
        &self,
        instance: &Instance,
        key: Option<Secret>,
    ) -> Result<Instance, String> {
        self.stop_named(&instance.wiring.instance).await;
        let mut wiring = instance.wiring.clone();
        wiring.fernet_key = Some(key.unwrap_or_else(|| instance.fernet_key.clone()));
        self.launch(wiring).await
    }

    async fn launch(&self, mut wiring: McpServerWiring) -> Result<Instance, String> {
        let log = self.launch.run.path(format!("{}.log", wiring.instance));
        self.remember_log(log.clone());
        let l = &self.launch;
        let started = mcp_server::start(&l.run, &l.options, &wiring, &l.progress).await;
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
        let name = (wiring.instance.strip_prefix(&self.prefix))
            .unwrap_or(&wiring.instance)
            .to_owned();
        let process_name = wiring.instance.clone();
        let instance = Instance {
            name,
            version: server.version.clone(),
            base_url: server.base_url.clone(),
            port,
            fernet_key: server.fernet_key.clone(),
            db_path: server.db_path.clone(),
            tmp_dir: server.tmp_dir.clone(),
            home: server.home.clone(),
            log,
            argv: server.argv.clone(),
            wiring,
        };
        self.running
            .lock()
            .await
            .push((process_name, server.process));
        Ok(instance)
    }

    /// SIGTERM to `name` (SIGKILL after a grace period); its exit status, when it had one.
    pub async fn stop(&self, name: &str) -> Option<ExitStatus> {
        self.stop_named(&self.full_name(name)).await
    }

    async fn stop_named(&self, name: &str) -> Option<ExitStatus> {
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
    pub(super) async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        futures::future::join_all(running.iter_mut().map(|(_, p)| p.stop(GRACE))).await;
        running.clear();
    }

    /// The logs of every instance started, for teardown to keep or copy.
    pub(super) fn log_files(&self) -> Vec<PathBuf> {
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
