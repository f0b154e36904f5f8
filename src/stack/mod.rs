//! Bringing the system under test up and down.
//!
//! A backend decides where the components come from (processes on this machine,
//! containers, or an already running deployment); the rest of the harness sees only the
//! [`Stack`]: endpoints, versions, what it offers and what it does not ([`Unavailable`]).
//! This module is the only place that asks which backend runs.
//!
//! Bring-up has two phases, because the deployment needs an order: [`Stack::up`] starts
//! Keycloak (and the browser, which needs no realm); the session then imports its realm;
//! [`Stack::start_subjects`] starts the resource server and the MCP server against that
//! realm (the MCP server reads discovery before it binds). [`Stack::stop`] stops all of it.

pub mod containers;
pub mod external;
mod instances;
pub mod mcp_profiles;
mod mcp_subject;
pub mod native;
mod need;
pub mod ports;
pub mod process;
pub mod run;
mod sibling;
mod subjects;
pub mod wait;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::nextcloud::{Leniency, StandIn, UidMapping};
use crate::progress::Progress;
use crate::secret::Secret;
use process::ManagedProcess;
use run::RunContext;

pub use containers::ContainersOptions;
pub use instances::{Instance, InstanceSettings, McpInstances};
pub use mcp_subject::McpSubject;
pub use native::keycloak::{BuildOptions, KeycloakOptions};
pub use native::mcp_server::McpServerOptions;
pub use need::{Need, Unavailable};
pub use subjects::{
    HARNESS_MCP_CLIENT, HarnessClient, McpServerState, ResourceServer, RunningMcp, STAND_IN,
    SubjectWiring, Subjects,
};

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
    /// The backends this build can run.
    pub const AVAILABLE: [Backend; 3] = [Backend::Native, Backend::Containers, Backend::External];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Containers => "containers",
            Backend::External => "external",
        }
    }

    /// What this backend never offers, and why: checks that need it are reported
    /// unavailable there (a skip, also under `CI=true`).
    pub fn lacks(self) -> &'static [(Need, &'static str)] {
        match self {
            Backend::Native => &[],
            Backend::Containers => &[],
            Backend::External => &[
                (
                    Need::McpInstances,
                    "the external backend reaches a running MCP server: it cannot start \
                     further instances or read their token database",
                ),
                (
                    Need::ResourceServerLog,
                    "the external backend reaches a running resource server: it cannot see \
                     the requests that server receives",
                ),
            ],
        }
    }
}

/// An already running deployment: what the external backend reaches.
#[derive(Clone, Debug)]
pub struct ExternalStack {
    pub keycloak_url: String,
    pub admin_user: String,
    pub admin_password: Secret,
    /// The MCP server's base URL.
    pub mcp_url: Option<String>,
    /// Its release as `stack.json` names it, for a server that does not say itself.
    pub mcp_version: Option<String>,
    /// The resource server's base URL.
    pub resource_server_url: Option<String>,
    /// How that resource server's user_oidc names users.
    pub uid_mapping: UidMapping,
    /// A WebDriver server to use; without one the harness starts a local ChromeDriver.
    pub webdriver_url: Option<String>,
}

/// What to bring up.
#[derive(Clone, Debug)]
pub struct StackConfig {
    pub backend: Backend,
    pub keycloak: KeycloakOptions,
    pub external: Option<ExternalStack>,
    pub needs: Vec<Need>,
    /// The MCP server release the native backend installs and starts.
    pub mcp_server: McpServerOptions,
    /// Which MCP server the checks judge (the reference, or a generic one).
    pub subject: McpSubject,
    /// Deliberate defects of the stand-in (the mutation self-test; none otherwise).
    pub stand_in_leniency: Leniency,
    /// What the containers backend runs: its images and browser.
    pub containers: containers::ContainersOptions,
}

impl StackConfig {
    pub fn boot_timeout(&self) -> Duration {
        self.keycloak.boot_timeout
    }

    fn needs(&self, need: Need) -> bool {
        self.needs.contains(&need)
    }
}

/// Keycloak as the rest of the harness sees it.
#[derive(Clone, Debug)]
pub struct KeycloakEndpoint {
    pub base_url: String,
    pub admin_user: String,
    pub admin_password: Secret,
    pub version: String,
    /// Booted by this run, empty: realms are imported, never adopted.
    pub fresh: bool,
    /// From process start to ready, when this run booted it.
    pub boot_time: Option<Duration>,
}

/// A WebDriver server and the browser binary it drives (`None`: the server's default).
#[derive(Clone, Debug)]
pub struct WebDriverEndpoint {
    pub url: String,
    pub chromium: Option<String>,
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

/// What the stack started and stops: processes, the stand-in, further instances.
#[derive(Default)]
struct Owned {
    processes: Mutex<Vec<ManagedProcess>>,
    stand_in: std::sync::Mutex<Option<StandIn>>,
}

/// The running system under test.
pub struct Stack {
    pub backend: Backend,
    pub run: Arc<RunContext>,
    pub progress: Arc<Progress>,
    pub keycloak: KeycloakEndpoint,
    /// Component name to version, as the report's `components` shows them.
    pub components: Vec<(String, String)>,
    pub keycloak_argv: Vec<String>,
    /// The WebDriver server, when the browser was asked for and can run.
    pub webdriver: Option<WebDriverEndpoint>,
    /// Needs this stack cannot meet, with the reason.
    pub unavailable: Vec<Unavailable>,
    /// The resource server and the MCP server, once [`Stack::start_subjects`] ran.
    pub subjects: Subjects,
    /// Prefixes the names of what this stack starts (its MCP server instances and their
    /// logs): empty for the stack a session brought up, the session's label for a view.
    prefix: String,
    config: StackConfig,
    owned: Owned,
}

impl Stack {
    /// Which MCP server the checks judge.
    pub fn mcp_subject(&self) -> McpSubject {
        self.config.subject
    }

    /// Brings up Keycloak (and the browser, when asked for) as `cfg` says.
    pub async fn up(
        run: Arc<RunContext>,
        cfg: &StackConfig,
        progress: Arc<Progress>,
    ) -> Result<Stack, StackError> {
        let result = match cfg.backend {
            Backend::Native => native::up(run, cfg, progress).await,
            Backend::External => external::up(run, cfg, progress).await,
            Backend::Containers => containers::up(run, cfg, progress).await,
        };
        result.map_err(StackError::new)
    }

    pub(crate) fn new(
        base: (Arc<RunContext>, Arc<Progress>, &StackConfig),
        keycloak: KeycloakEndpoint,
        components: Vec<(String, String)>,
        keycloak_argv: Vec<String>,
        processes: Vec<ManagedProcess>,
    ) -> Self {
        let (run, progress, config) = base;
        Self {
            backend: config.backend,
            run,
            progress,
            keycloak,
            components,
            keycloak_argv,
            webdriver: None,
            unavailable: (config.backend.lacks().iter())
                .chain(config.subject.lacks())
                .map(|(need, why)| Unavailable::by_design(*need, *why))
                .collect(),
            subjects: Subjects::default(),
            prefix: String::new(),
            config: config.clone(),
            owned: Owned {
                processes: Mutex::new(processes),
                stand_in: std::sync::Mutex::new(None),
            },
        }
    }

    /// Starts the resource server and the MCP server the needs ask for, pointed at the
    /// session's realm (`Err`: the realm is not usable, and why). Never fails: what could
    /// not start is recorded in [`Stack::subjects`] and [`Stack::unavailable`].
    pub async fn start_subjects(&mut self, wiring: Result<SubjectWiring, String>) {
        let wanted = [Need::McpServer, Need::ResourceServer];
        if !wanted.iter().any(|n| self.config.needs(*n)) {
            return;
        }
        let wiring = match wiring {
            Ok(w) => w,
            Err(why) => {
                self.subjects.mcp = McpServerState::Unavailable(why);
                return;
            }
        };
        match self.backend {
            Backend::Native => native::start_subjects(self, &wiring).await,
            Backend::External => external::start_subjects(self, &wiring).await,
            Backend::Containers => containers::start_subjects(self, &wiring).await,
        }
    }

    /// This stack as a second session sees it (`Session::join`): the same Keycloak and
    /// WebDriver, owning none of what this stack started, so that session's teardown stops
    /// only what it started itself: [`Stack::start_subjects`] on the view starts a resource
    /// server and an MCP server of its own, against the second session's realm, named with
    /// `label` next to this stack's, as `subjects` says (its needs, the MCP server release).
    /// Where the backend reaches subjects by URL (external), those are configured against
    /// one realm, so the view has none.
    pub fn shared_view(&self, label: &str, subjects: &StackConfig) -> Stack {
        const NOT_SHARED: &str = "not available to a session that shares another session's \
             Keycloak: the external resource server and MCP server are configured against one realm";
        let mut unavailable = self.unavailable.clone();
        if self.backend == Backend::External {
            for need in [
                Need::McpServer,
                Need::ResourceServer,
                Need::McpInstances,
                Need::ResourceServerLog,
            ] {
                if !unavailable.iter().any(|u| u.need == need) {
                    unavailable.push(Unavailable::by_design(need, NOT_SHARED));
                }
            }
        }
        Stack {
            prefix: format!("{label}-"),
            backend: self.backend,
            run: self.run.clone(),
            progress: self.progress.clone(),
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
            subjects: Subjects::default(),
            config: StackConfig {
                needs: subjects.needs.clone(),
                mcp_server: subjects.mcp_server.clone(),
                stand_in_leniency: subjects.stand_in_leniency,
                ..self.config.clone()
            },
            owned: Owned::default(),
        }
    }

    /// The run's containers still on the engine after [`Stack::stop`] (each removed now);
    /// none for a backend that starts no container.
    pub async fn containers_left(&self) -> anyhow::Result<Vec<String>> {
        match self.backend {
            Backend::Containers => containers::left_after_stop(&self.run.id).await,
            Backend::Native | Backend::External => Ok(Vec::new()),
        }
    }

    /// Why `need` cannot be met, if it cannot.
    pub fn unavailable(&self, need: Need) -> Option<&Unavailable> {
        self.unavailable.iter().find(|u| u.need == need)
    }

    /// Records that `need` cannot be met (the first reason given stays).
    pub(crate) fn mark_unavailable(&mut self, u: Unavailable) {
        if self.unavailable(u.need).is_none() {
            self.unavailable.push(u);
        }
    }

    /// Whether the resource server is the harness's Nextcloud stand-in.
    pub fn resource_server_is_stand_in(&self) -> bool {
        self.subjects
            .resource_server
            .as_ref()
            .is_some_and(ResourceServer::is_stand_in)
    }

    /// Adds a process started after the stack came up (it is stopped with the rest).
    pub async fn adopt(&self, process: ManagedProcess) {
        self.owned.processes.lock().await.push(process);
    }

    fn keep_stand_in(&self, stand_in: StandIn) {
        *self
            .owned
            .stand_in
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(stand_in);
    }

    /// Log files of everything this stack started.
    pub async fn log_files(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = self
            .owned
            .processes
            .lock()
            .await
            .iter()
            .map(|p| p.log_path().to_owned())
            .collect();
        logs.extend(
            native::install_logs(&self.run)
                .into_iter()
                .filter(|p| p.exists()),
        );
        if let Some(i) = &self.subjects.instances {
            logs.extend(i.log_files());
        }
        logs.sort();
        logs.dedup();
        logs
    }

    /// What happened to the processes this stack started that no longer serve, and a full
    /// run dir: one line each, naming the component, its pid and what happened (`Keycloak
    /// (pid 812) is no longer running: it was killed by SIGKILL`). Empty while all is well.
    pub async fn faults(&self) -> Vec<String> {
        let mut processes = self.owned.processes.lock().await;
        let mut faults: Vec<String> = processes
            .iter_mut()
            .filter_map(|p| {
                let fault = p.fault()?;
                Some(format!(
                    "{} (pid {}) {fault}",
                    component_name(p.name()),
                    p.pid()
                ))
            })
            .collect();
        faults.extend(self.run.disk_fault());
        faults
    }

    /// What happened to the Keycloak this stack started, if it no longer serves.
    pub async fn keycloak_fault(&self) -> Option<String> {
        let mut processes = self.owned.processes.lock().await;
        let kc = processes
            .iter_mut()
            .find(|p| p.name() == KEYCLOAK_PROCESS)?;
        let fault = kc.fault()?;
        Some(format!("Keycloak (pid {}) {fault}", kc.pid()))
    }

    /// Stops everything this stack started, further instances and processes all at once
    /// (each gets its grace period, none waits for another's), then the stand-in.
    pub async fn stop(&self) {
        let instances = async {
            if let Some(i) = &self.subjects.instances {
                i.stop_all().await;
            }
        };
        let processes = async {
            let mut processes = self.owned.processes.lock().await;
            futures::future::join_all(
                processes
                    .iter_mut()
                    .map(|p| p.stop(Duration::from_secs(10))),
            )
            .await;
            processes.clear();
        };
        tokio::join!(instances, processes);
        let stand_in = self
            .owned
            .stand_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(s) = stand_in {
            s.stop().await;
        }
    }
}

/// The name the native backend gives Keycloak's process.
pub(crate) const KEYCLOAK_PROCESS: &str = "keycloak";

/// JVM options for every Keycloak the harness builds or boots, before the user's
/// `JAVA_OPTS_APPEND` (a later option wins, so `-XX:TieredStopAtLevel=4` there undoes it).
/// C1 only, as Quarkus's dev mode does: a Keycloak that lives for one run spends much of
/// its CPU on C2 compiling. Measured on 2 cores, full catalogue, two runs each: Keycloak
/// 53 and 66 CPU seconds against 87 and 90 with C2, the whole run 115 and 145 against 160
/// and 167; its realm import is 2 to 3 s slower. `bench/measure.py` boots its floor with
/// the same (a unit test in `native/keycloak.rs` keeps them equal).
pub(crate) const KEYCLOAK_JVM_OPTS: &str = "-XX:TieredStopAtLevel=1";

/// A process's name as a user knows the component.
fn component_name(process: &str) -> String {
    match process {
        KEYCLOAK_PROCESS => "Keycloak".into(),
        "chromedriver" => "ChromeDriver".into(),
        "mcp-server" => "the MCP server".into(),
        p if p.ends_with("mcp-server") => format!("the MCP server {p}"),
        p => p.into(),
    }
}
