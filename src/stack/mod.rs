//! Bringing the system under test up and down.
//!
//! A backend decides where the components come from (processes on this machine,
//! containers, or an already running deployment); the rest of the harness sees only the
//! [`Stack`]: endpoints, versions, and the processes to stop.

pub mod containers;
pub mod external;
pub mod native;
pub mod ports;
pub mod process;
pub mod run;
pub mod wait;
pub mod watchdog;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::checks::Need;
use crate::progress::Progress;
use crate::secret::Secret;
use process::ManagedProcess;
use run::RunContext;

pub use native::keycloak::{BuildOptions, KeycloakOptions};
pub use native::mcp_server::McpServerOptions;

/// The environment variable every child process of a run carries, set to the run id.
pub const RUN_MARKER_VAR: &str = "MCP_AUTHZ_HARNESS_RUN";

/// Where the components come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Processes on this machine: Keycloak from its distribution, the MCP server from a
    /// venv, Chromium, and the Nextcloud stand-in.
    Native,
    /// Containers through a Docker daemon.
    Containers,
    /// An already running deployment, reached by URL.
    External,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Containers => "containers",
            Backend::External => "external",
        }
    }
}

/// An already running Keycloak and its admin credentials.
#[derive(Clone, Debug)]
pub struct ExternalKeycloak {
    pub url: String,
    pub admin_user: String,
    pub admin_password: Secret,
}

/// What to bring up.
#[derive(Clone, Debug)]
pub struct StackConfig {
    pub backend: Backend,
    pub keycloak: KeycloakOptions,
    pub external: Option<ExternalKeycloak>,
    pub needs: Vec<Need>,
    /// The MCP server release the native backend installs and starts.
    pub mcp_server: McpServerOptions,
    /// External backend: the MCP server's base URL (`--mcp-url`).
    pub mcp_url: Option<String>,
    /// The harness's redirect URI at the MCP server's proxy (`--mcp-redirect-uri`).
    pub mcp_redirect_uri: Option<String>,
}

impl StackConfig {
    pub fn boot_timeout(&self) -> Duration {
        self.keycloak.boot_timeout
    }
}

/// Keycloak as the rest of the harness sees it.
#[derive(Clone, Debug)]
pub struct KeycloakEndpoint {
    pub base_url: String,
    pub admin_user: String,
    pub admin_password: Secret,
    pub version: String,
}

/// The MCP server as checks reach it, whichever backend runs it.
#[derive(Clone, Debug)]
pub struct McpEndpoint {
    /// Base URL without a trailing slash (the server's `NEXTCLOUD_MCP_SERVER_URL`).
    pub base_url: String,
    /// The release (an external server's from its `/api/v1/status`, else `external`).
    pub version: String,
}

impl McpEndpoint {
    /// The streamable HTTP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

/// The running system under test.
pub struct Stack {
    pub backend: Backend,
    pub keycloak: KeycloakEndpoint,
    /// Component name to version, as the report's `components` shows them.
    pub components: Vec<(String, String)>,
    pub keycloak_argv: Vec<String>,
    /// ChromeDriver, when the browser was asked for and can run.
    pub webdriver: Option<WebDriverEndpoint>,
    /// Components asked for that cannot run here, with the reason.
    pub unavailable: Vec<(Need, String)>,
    /// Set by the session once the MCP server answers (it needs the deployed realm).
    pub mcp: Option<McpEndpoint>,
    processes: Mutex<Vec<ManagedProcess>>,
}

/// A WebDriver server and the browser binary it drives.
#[derive(Clone, Debug)]
pub struct WebDriverEndpoint {
    pub url: String,
    pub chromium: String,
}

/// The stack could not be brought up (the run exits with status 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StackError {
    pub message: String,
    /// Logs worth copying into the report dir.
    pub logs: Vec<PathBuf>,
}

impl StackError {
    pub fn new(err: anyhow::Error) -> Self {
        let logs = err
            .downcast_ref::<wait::NotReady>()
            .and_then(|n| n.log_path.clone())
            .into_iter()
            .collect();
        Self {
            message: format!("{err:#}"),
            logs,
        }
    }
}

impl Stack {
    /// Brings up what `cfg` asks for.
    pub async fn up(
        run: &RunContext,
        cfg: &StackConfig,
        progress: &Progress,
    ) -> Result<Stack, StackError> {
        let result = match cfg.backend {
            Backend::Native => native::up(run, cfg, progress).await,
            Backend::External => external::up(cfg).await,
            Backend::Containers => containers::up(cfg).await,
        };
        result.map_err(StackError::new)
    }

    pub(crate) fn new(
        backend: Backend,
        keycloak: KeycloakEndpoint,
        components: Vec<(String, String)>,
        keycloak_argv: Vec<String>,
        processes: Vec<ManagedProcess>,
    ) -> Self {
        Self {
            backend,
            keycloak,
            components,
            keycloak_argv,
            webdriver: None,
            unavailable: Vec::new(),
            mcp: None,
            processes: Mutex::new(processes),
        }
    }

    /// This stack as a second session sees it (`Session::join`): the same Keycloak and
    /// ChromeDriver, owning no process, so that session's teardown stops nothing. The
    /// stand-in and the MCP server are left out: they are configured against the first
    /// session's realm, and a second pair would share its log paths in the run dir.
    pub fn shared_view(&self) -> Stack {
        const NOT_SHARED: &str = "not started for a session that shares another session's \
             Keycloak: the stand-in and the MCP server are configured against one realm";
        let mut unavailable = self.unavailable.clone();
        for need in [Need::McpServer, Need::ResourceServer] {
            if !unavailable.iter().any(|(n, _)| *n == need) {
                unavailable.push((need, NOT_SHARED.into()));
            }
        }
        Stack {
            backend: self.backend,
            keycloak: self.keycloak.clone(),
            components: self
                .components
                .iter()
                .filter(|(name, _)| name != "mcp-server" && name != "nextcloud")
                .cloned()
                .collect(),
            keycloak_argv: self.keycloak_argv.clone(),
            webdriver: self.webdriver.clone(),
            unavailable,
            mcp: None,
            processes: Mutex::new(Vec::new()),
        }
    }

    /// Whether the resource server is the harness's Nextcloud stand-in.
    pub fn resource_server_is_stand_in(&self) -> bool {
        self.components
            .iter()
            .any(|(k, v)| k == "nextcloud" && v == "stand-in")
    }

    /// Adds a process started after the stack came up (it is stopped with the rest).
    pub async fn adopt(&self, process: ManagedProcess) {
        self.processes.lock().await.push(process);
    }

    /// Log files of the processes this run started, by component name.
    pub async fn log_files(&self) -> Vec<(String, PathBuf)> {
        self.processes
            .lock()
            .await
            .iter()
            .map(|p| (p.name().to_owned(), p.log_path().to_owned()))
            .collect()
    }

    /// Stops every process, last started first.
    pub async fn stop(&self) {
        let mut processes = self.processes.lock().await;
        while let Some(mut p) = processes.pop() {
            p.stop(Duration::from_secs(10)).await;
        }
    }
}
