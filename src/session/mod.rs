//! A session: the stack brought up once, the realm deployed, the resources the checks
//! create, and a teardown that removes all of it and measures what is left.
//!
//! The session holds handles and the resources it creates; which backend runs the stack
//! is the stack's business ([`crate::stack`]).

mod alignment;
mod clients;
mod joined;
mod memo;
mod own_stack;
mod realm;
mod teardown;
mod tokens;

use std::path::Path;
use std::sync::Arc;

pub use clients::{
    CLIENT_NAME_PREFIX, CleanupReport, ClientRegistry, client_name, parse_client_name,
};
pub use joined::Joining;
pub use memo::Memo;
pub use own_stack::{Arrival, OwnSession, Released};
pub use realm::{DeployedRealm, NotApplicable, RealmSource};
pub use teardown::TeardownReport;
pub use tokens::{Authorized, UserTokens};

use crate::evidence::Evidence;
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::keycloak::realm::{MCP_SERVER_CLIENT, RealmFile};
use crate::mcp::ScopeAlignment;
use crate::progress::Progress;
use crate::stack::run::RunContext;
use crate::stack::{McpServerState, Need, Stack, StackConfig, StackError, SubjectWiring};

/// What a session brings up.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub stack: StackConfig,
    pub realm: RealmFile,
    /// Keep the run dir and component logs (never processes).
    pub keep: bool,
    /// The run's id when the caller chose it first (`run` names it in the report dir's
    /// lock before anything starts); a fresh one otherwise.
    pub run_id: Option<String>,
    /// The redirect URI the harness's client uses at the MCP server's proxy: the session
    /// listens on its port (`--mcp-redirect-uri`, for an MCP server that allows one exact
    /// URI); a free port when `None`.
    pub redirect_uri: Option<String>,
    /// Checks that keep a pin (`fixtures/snapshots/`) write what they observe as the new
    /// pin instead of comparing (`mcp-authz-harness pin`).
    pub update_pins: bool,
}

/// How [`Session::deploy`] sets a session up: its own or a shared stack, and where its
/// browser profiles and reports go.
struct Deployment<'a> {
    owns_stack: bool,
    browser_dir: std::path::PathBuf,
    report_dir: &'a Path,
}

/// The running system under test and everything the run created in it.
///
/// Usually one session per run: it brought the stack up and its teardown stops it. A
/// second session can [`join`](Session::join) it to run checks on another realm in the
/// same Keycloak; that one shares the run and owns only what it created.
pub struct Session {
    pub run: Arc<RunContext>,
    /// For a joined session, a view of the first session's stack owning nothing.
    pub stack: Stack,
    /// Whether this session brought the stack up (and so stops it and ends the run).
    owns_stack: bool,
    /// Unrecorded client; checks use `http.recording(..)` through their context.
    pub http: Http,
    pub admin: AdminClient,
    pub realm: DeployedRealm,
    /// Evidence of the session's own setup (realm import, scope alignment, ...).
    pub setup: Evidence,
    /// Where reports and failure evidence (screenshots, page sources) go.
    pub report_dir: std::path::PathBuf,
    /// The browser, when the selected checks need one and it can run here.
    pub browser: Option<crate::browser::Browser>,
    /// Where authorization responses land (loopback, ephemeral port).
    pub listener: crate::browser::redirect::RedirectListener,
    /// User tokens obtained through the browser, cached.
    pub tokens: UserTokens,
    provider: tokio::sync::OnceCell<crate::oauth::discovery::ProviderMetadata>,
    pub progress: Arc<Progress>,
    pub keycloak_features: Vec<String>,
    /// Clients this run registered (deleted at teardown).
    pub clients: Arc<ClientRegistry>,
    /// Clients created through the admin API (realm, internal id), deleted at teardown.
    admin_clients: std::sync::Mutex<Vec<(String, String)>>,
    /// The realm compared with the MCP server's scopes (`Err`: the comparison broke).
    pub alignment: Option<Result<ScopeAlignment, String>>,
    /// State the checks share within the session (the scope map, the STORAGE lab, ...).
    pub memo: Memo,
    /// Pins are written, not compared (see [`SessionOptions::update_pins`]).
    pub update_pins: bool,
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
        let stack = Self::start_stack(opts, progress, report_dir).await?;
        let run = stack.run.clone();
        let deploy = Deployment {
            owns_stack: true,
            browser_dir: run.path("browser"),
            report_dir,
        };
        match Self::deploy(stack, opts, deploy).await {
            Ok(s) => Ok(Arc::new(s)),
            Err((e, stack)) => {
                teardown::copy_logs(&stack.log_files().await, &report_dir.join("logs"));
                stack.stop().await;
                run.finish();
                Err(StackError::new(e))
            }
        }
    }

    /// Imports (or adopts) the realm, starts the listener, then the subjects against the
    /// realm, then aligns the realm with the MCP server's scopes. On failure the stack
    /// comes back with the error, for the caller to stop.
    async fn deploy(
        mut stack: Stack,
        opts: &SessionOptions,
        deploy: Deployment<'_>,
    ) -> Result<Session, (anyhow::Error, Box<Stack>)> {
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
        let deployed = deploy_realm(&admin, &stack, opts, &setup).await;
        stack.progress.phase_done("realm", started.elapsed());
        let (keycloak_features, realm, clients_before, listener) = match deployed {
            Ok(d) => d,
            Err(e) => return Err((e, Box::new(stack))),
        };
        stack
            .start_subjects(subject_wiring(&realm, &listener))
            .await;
        let alignment = match &stack.subjects.mcp {
            McpServerState::Running(mcp) => Some(
                alignment::align(&admin, &realm, mcp, &setup)
                    .await
                    .map_err(|e| format!("{e:#}")),
            ),
            _ => None,
        };
        let report_dir = deploy.report_dir;
        Ok(Session {
            browser: stack.webdriver.as_ref().map(|w| {
                crate::browser::Browser::new(
                    w.url.clone(),
                    w.chromium.clone(),
                    deploy.browser_dir.clone(),
                    report_dir.join("evidence"),
                )
            }),
            listener,
            report_dir: report_dir.to_owned(),
            tokens: UserTokens::default(),
            provider: tokio::sync::OnceCell::new(),
            run: stack.run.clone(),
            progress: stack.progress.clone(),
            stack,
            owns_stack: deploy.owns_stack,
            http,
            admin,
            realm,
            setup,
            keycloak_features,
            clients: Arc::new(ClientRegistry::default()),
            admin_clients: std::sync::Mutex::new(Vec::new()),
            alignment,
            memo: Memo::default(),
            update_pins: opts.update_pins,
            variants: tokio::sync::Mutex::new(Vec::new()),
            clients_before,
            teardown: tokio::sync::Mutex::new(None),
        })
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

    /// Creates a client through the admin API in `realm` (for settings DCR cannot make,
    /// such as the token-exchange switch) and records it for deletion at teardown.
    /// Returns its internal id.
    pub async fn create_admin_client(
        &self,
        realm: &str,
        representation: &serde_json::Value,
        evidence: &Evidence,
    ) -> anyhow::Result<String> {
        let admin = self.admin.recording(evidence);
        let resp = admin
            .post(&format!("/realms/{realm}/clients"), representation)
            .await?;
        anyhow::ensure!(
            resp.status == 201,
            "creating a client through the admin API: {}",
            resp.summary()
        );
        let id = resp
            .header("location")
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the admin API answered 201 without a Location"))?;
        self.admin_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((realm.to_owned(), id.clone()));
        Ok(id)
    }

    /// Deletes a client [`Session::create_admin_client`] made, now rather than at
    /// teardown. Only a confirmed delete (204) takes it off teardown's list, so one that
    /// fails here is still deleted (and reported) there.
    pub async fn delete_admin_client(
        &self,
        realm: &str,
        id: &str,
        evidence: &Evidence,
    ) -> anyhow::Result<()> {
        let resp = self
            .admin
            .recording(evidence)
            .delete_client(realm, id)
            .await?;
        anyhow::ensure!(
            resp.status == 204,
            "deleting client {id} through the admin API: {}",
            resp.summary()
        );
        self.admin_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(r, i)| !(r == realm && i == id));
        Ok(())
    }

    /// A realm imported next to the session's realm as `<realm>-<suffix>`, made from the
    /// session's realm file by `change`; imported once per session and deleted at
    /// teardown. The name follows the session's realm so that sessions sharing a Keycloak
    /// never import the same variant name.
    pub async fn realm_variant(
        &self,
        suffix: &str,
        change: impl FnOnce(&mut serde_json::Value),
        evidence: &Evidence,
    ) -> anyhow::Result<Arc<DeployedRealm>> {
        let name = format!("{}-{suffix}", self.realm.name);
        let mut variants = self.variants.lock().await;
        if let Some(v) = variants.iter().find(|v| v.name == name) {
            return Ok(v.clone());
        }
        let mut json = crate::keycloak::realm::renamed(&self.realm.file.json, &name);
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

    /// The baseline realm's discovery document, fetched once.
    pub async fn provider(
        &self,
        http: &Http,
    ) -> anyhow::Result<&crate::oauth::discovery::ProviderMetadata> {
        self.provider
            .get_or_try_init(|| async {
                crate::oauth::discovery::ProviderMetadata::fetch(http, &self.realm.discovery_url())
                    .await
            })
            .await
    }

    /// Why `need` cannot be met in this session, if it cannot.
    pub fn unavailable(&self, need: Need) -> Option<&crate::stack::Unavailable> {
        self.stack.unavailable(need)
    }

    /// The components for the report, as `name -> version`.
    pub fn components(&self) -> Vec<(String, String)> {
        self.stack.components.clone()
    }
}

/// What the realm needs to be usable, imported (a fresh Keycloak) or adopted (an external
/// one where it exists), with the features Keycloak reports, the clients there before any
/// check, and the redirect listener.
async fn deploy_realm(
    admin: &AdminClient,
    stack: &Stack,
    opts: &SessionOptions,
    setup: &Evidence,
) -> anyhow::Result<(
    Vec<String>,
    DeployedRealm,
    Vec<String>,
    crate::browser::redirect::RedirectListener,
)> {
    let features = admin.enabled_features().await?;
    let exists = admin.realm_exists(opts.realm.name()).await?;
    let realm = if exists && !stack.keycloak.fresh {
        realm::adopt(admin, &opts.realm, setup).await?
    } else {
        realm::import(admin, &opts.realm, setup).await?
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
    // An external MCP server allows one exact redirect URI: listen on its port.
    let port = opts
        .redirect_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.port())
        .unwrap_or(0);
    let listener = crate::browser::redirect::RedirectListener::start(port).await?;
    Ok((features, realm, clients_before, listener))
}

/// Where the subjects point: the realm, its MCP server client, the session's listener.
fn subject_wiring(
    realm: &DeployedRealm,
    listener: &crate::browser::redirect::RedirectListener,
) -> Result<SubjectWiring, String> {
    if let Some(why) = realm.unusable() {
        return Err(format!(
            "the realm {} is not usable ({why}; see REALM-01)",
            realm.name
        ));
    }
    Ok(SubjectWiring {
        issuer: realm.issuer(),
        discovery_url: realm.discovery_url(),
        mcp_client_id: MCP_SERVER_CLIENT.into(),
        mcp_client_secret: realm.client_secret(MCP_SERVER_CLIENT),
        harness_redirect_uri: listener.redirect_uri(),
    })
}

/// A realm name as a directory name: anything but ASCII letters, digits, `-` and `_` becomes `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
