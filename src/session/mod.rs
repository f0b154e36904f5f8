//! A session: the stack brought up once, the realm deployed, the resources the checks
//! create, and a teardown that removes all of it and measures what is left.

mod clients;
mod realm;
mod subjects;
mod teardown;

use std::path::Path;
use std::sync::Arc;

pub use clients::{CLIENT_NAME_PREFIX, ClientRegistry, client_name, parse_client_name};
pub use realm::{DeployedRealm, RealmSource};
pub use subjects::{
    HARNESS_MCP_CLIENT, HarnessClient, MCP_SERVER_CLIENT, McpLaunch, McpServerState, RunningMcp,
    Subjects,
};
pub use teardown::TeardownReport;

use crate::evidence::Evidence;
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::keycloak::realm::RealmFile;
use crate::progress::Progress;
use crate::stack::run::RunContext;
use crate::stack::{Backend, Stack, StackConfig, StackError};

/// What a session brings up.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub stack: StackConfig,
    pub realm: RealmFile,
    /// Keep the run dir and component logs (never processes).
    pub keep: bool,
}

/// The running system under test and everything the run created in it.
pub struct Session {
    pub run: RunContext,
    pub stack: Stack,
    /// Unrecorded client; checks use `http.recording(..)` through their context.
    pub http: Http,
    pub admin: AdminClient,
    pub realm: DeployedRealm,
    /// Evidence of the session's own setup (realm import, ...).
    pub setup: Evidence,
    pub progress: Arc<Progress>,
    pub keycloak_features: Vec<String>,
    /// Clients this run registered (deleted at teardown).
    pub clients: Arc<ClientRegistry>,
    /// The stand-in and the MCP server, started after the realm when checks need them.
    pub subjects: Subjects,
    /// Realms imported next to the baseline (deleted at teardown), by name.
    variants: tokio::sync::Mutex<Vec<Arc<DeployedRealm>>>,
    /// Client ids in the realm once it was deployed, before any check ran.
    clients_before: Vec<String>,
    teardown: tokio::sync::Mutex<Option<TeardownReport>>,
}

impl Session {
    /// Brings the stack up and deploys the realm. On failure, component logs are copied
    /// into `<report_dir>/logs` and the run is cleaned up before the error returns.
    pub async fn start(
        opts: &SessionOptions,
        progress: Arc<Progress>,
        report_dir: &Path,
    ) -> Result<Arc<Session>, StackError> {
        let run = RunContext::create(opts.keep).map_err(StackError::new)?;
        progress.println(&format!("run {} in {}", run.id, run.dir.display()));
        let stack = match Stack::up(&run, &opts.stack, &progress).await {
            Ok(s) => s,
            Err(e) => {
                teardown::copy_logs(&e.logs, &report_dir.join("logs"));
                run.abort();
                return Err(e);
            }
        };
        match Self::deploy(run, stack, opts, progress.clone()).await {
            Ok(s) => Ok(Arc::new(s)),
            Err((e, session_parts)) => {
                let (run, stack) = *session_parts;
                let logs: Vec<_> = stack
                    .log_files()
                    .await
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect();
                teardown::copy_logs(&logs, &report_dir.join("logs"));
                stack.stop().await;
                run.finish();
                Err(StackError::new(e))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    async fn deploy(
        run: RunContext,
        mut stack: Stack,
        opts: &SessionOptions,
        progress: Arc<Progress>,
    ) -> Result<Session, (anyhow::Error, Box<(RunContext, Stack)>)> {
        let http = Http::new(DEFAULT_TIMEOUT);
        let kc = &stack.keycloak;
        let admin = AdminClient::new(
            http.clone(),
            &kc.base_url,
            &kc.admin_user,
            kc.admin_password.clone(),
        );
        let setup = Evidence::new();
        let started = std::time::Instant::now();
        let deployed = async {
            let features = admin.enabled_features().await?;
            let exists = admin.realm_exists(opts.realm.name()).await?;
            let realm = if exists && stack.backend == Backend::External {
                realm::adopt(&admin, &opts.realm, &setup).await?
            } else {
                realm::import(&admin, &opts.realm, &setup).await?
            };
            let clients_before = match realm.unusable() {
                None => admin
                    .clients(&realm.name)
                    .await?
                    .into_iter()
                    .map(|c| c.client_id)
                    .collect(),
                Some(_) => Vec::new(),
            };
            anyhow::Ok((features, realm, clients_before))
        }
        .await;
        progress.phase_done("realm", started.elapsed());
        match deployed {
            Ok((keycloak_features, realm, clients_before)) => {
                let subjects = subjects::start(
                    &run,
                    &mut stack,
                    &opts.stack,
                    &realm,
                    &admin,
                    &setup,
                    &progress,
                )
                .await;
                Ok(Session {
                    run,
                    stack,
                    http,
                    admin,
                    realm,
                    setup,
                    progress,
                    keycloak_features,
                    clients: Arc::new(ClientRegistry::default()),
                    subjects,
                    variants: tokio::sync::Mutex::new(Vec::new()),
                    clients_before,
                    teardown: tokio::sync::Mutex::new(None),
                })
            }
            Err(e) => Err((e, Box::new((run, stack)))),
        }
    }

    /// Removes everything the run created and measures what is left. Runs once; later
    /// calls (say, from a signal handler racing the normal path) return the same report.
    pub async fn teardown(&self, copy_logs_to: Option<&Path>) -> TeardownReport {
        let mut done = self.teardown.lock().await;
        if let Some(report) = done.as_ref() {
            return report.clone();
        }
        let report = teardown::run(self, copy_logs_to).await;
        *done = Some(report.clone());
        report
    }

    /// Registers a client (RFC 7591) in `realm` and records it for deletion at teardown
    /// the moment it exists. A `client_name` carrying the run id and time is added unless
    /// the metadata names the client.
    ///
    /// The request runs as its own task: if the caller is cancelled (Ctrl-C, a check
    /// timeout) after the request left, the answer is still read and the client recorded,
    /// and teardown waits for such answers before it deletes.
    pub async fn register_client(
        &self,
        http: &Http,
        realm: &DeployedRealm,
        metadata: &serde_json::Value,
        initial_access_token: Option<&crate::secret::Secret>,
    ) -> anyhow::Result<crate::oauth::dcr::DcrOutcome> {
        use crate::oauth::dcr::{self, DcrOutcome};
        let endpoint = format!("{}/clients-registrations/openid-connect", realm.issuer());
        let metadata = clients::with_client_name(metadata, &self.run.id);
        let (registry, http, realm_name) = (self.clients.clone(), http.clone(), realm.name.clone());
        let token = initial_access_token.cloned();
        let in_flight = registry.begin();
        let task = tokio::spawn(async move {
            let _in_flight = in_flight;
            let outcome = dcr::register(&http, &endpoint, &metadata, token.as_ref()).await;
            if let Ok(DcrOutcome::Client { registration, .. }) = &outcome {
                registry.record(&realm_name, registration);
            }
            outcome
        });
        task.await?
    }

    /// A realm imported next to the baseline under `name`, made from the baseline file by
    /// `change`; imported once per session and deleted at teardown.
    pub async fn realm_variant(
        &self,
        name: &str,
        change: impl FnOnce(&mut serde_json::Value),
        evidence: &Evidence,
    ) -> anyhow::Result<Arc<DeployedRealm>> {
        let mut variants = self.variants.lock().await;
        if let Some(v) = variants.iter().find(|v| v.name == name) {
            return Ok(v.clone());
        }
        let mut json = crate::keycloak::realm::renamed(&self.realm.file.json, name);
        change(&mut json);
        let origin = format!("{} (variant {name})", self.realm.file.origin);
        let file = RealmFile::parse(&json.to_string(), &origin, None)?;
        let deployed = realm::import(&self.admin, &file, evidence).await?;
        if let Some(why) = deployed.unusable() {
            anyhow::bail!("the realm variant {name} did not import: {why}");
        }
        let deployed = Arc::new(deployed);
        variants.push(deployed.clone());
        Ok(deployed)
    }

    /// Whether teardown has started or finished (checks stop early then).
    pub fn is_torn_down(&self) -> bool {
        self.teardown
            .try_lock()
            .map(|g| g.is_some())
            .unwrap_or(true)
    }

    /// The components for the report, as `name -> version`.
    pub fn components(&self) -> Vec<(String, String)> {
        self.stack.components.clone()
    }
}
