//! The subjects that need the deployed realm: the Nextcloud stand-in (it trusts the
//! realm's keys) and the MCP server (it runs OIDC discovery before it binds its port).
//! Started after the realm import, only when a selected check needs them; stopped at
//! teardown before Keycloak.
//!
//! Starting the MCP server never aborts the session: a release that does not start is
//! recorded here and reported by MCP-01 with its log.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::checks::Need;
use crate::evidence::Evidence;
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::mcp::{ProtectedResourceMetadata, ScopeAlignment, prm, scopes};
use crate::nextcloud::{RecordedRequest, StandIn, StandInConfig};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::stack::native::mcp_instances::{Instances, Launcher};
use crate::stack::native::mcp_server::{self, McpServerWiring, NativeMcpServer};
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;
use crate::stack::{Backend, McpEndpoint, McpServerOptions, Stack, StackConfig};

use super::DeployedRealm;

/// The MCP server's own confidential client in the realm.
pub const MCP_SERVER_CLIENT: &str = "nextcloud-mcp-server";

/// The client id the harness uses at the MCP server's authorization proxy.
pub const HARNESS_MCP_CLIENT: &str = "mcp-authz-harness";

/// The harness's MCP client as the server's proxy allows it (`ALLOWED_MCP_CLIENTS`):
/// one client id with one exact loopback redirect URI. The browser flow listens on
/// `redirect_port` (free when the session chose it, unless `--mcp-redirect-uri` set it).
#[derive(Clone, Debug)]
pub struct HarnessClient {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_port: u16,
    /// Whether this run configured the MCP server to allow the client (it did not when
    /// it reached an external server, which must have been configured for it).
    pub allowed_by_this_run: bool,
}

/// The MCP server as the checks may use it.
#[derive(Clone, Debug)]
pub struct RunningMcp {
    pub endpoint: McpEndpoint,
    /// `TOKEN_ENCRYPTION_KEY`, when the harness started it.
    pub fernet_key: Option<Secret>,
    /// `TOKEN_STORAGE_DB`, when the harness started it.
    pub db_path: Option<PathBuf>,
    /// What it asks the IdP for, when known (see [`NativeMcpServer`]).
    pub requested_scopes: Vec<String>,
    /// Its command line, when the harness started it.
    pub argv: Vec<String>,
}

/// Whether the MCP server is there for the checks.
#[derive(Clone, Debug)]
pub enum McpServerState {
    /// No selected check needs it.
    NotNeeded,
    Running(RunningMcp),
    /// It was needed and did not start; the message carries its log tail.
    Failed {
        message: String,
        log: Option<PathBuf>,
    },
    /// It was needed but there is nothing to start or reach.
    Unavailable(String),
}

/// How the native MCP server was started, so a check can start a second configuration
/// of the same release: clone it, change `wiring.instance` and `wiring.extra_env`, call
/// [`mcp_server::start`], and hand the process to `session.stack.adopt` for teardown.
#[derive(Clone, Debug)]
pub struct McpLaunch {
    pub options: McpServerOptions,
    pub wiring: McpServerWiring,
}

/// The subjects of this session beyond Keycloak.
pub struct Subjects {
    pub harness_client: HarnessClient,
    pub mcp: McpServerState,
    /// The native MCP server's launch, when the harness started one.
    pub launch: Option<McpLaunch>,
    /// The tool-to-scope map, derived once per session by the first check that needs it.
    pub scope_map: tokio::sync::OnceCell<std::sync::Arc<crate::mcp::scope_map::Derived>>,
    /// The realm compared with the server's scopes (`Err`: the comparison broke).
    pub alignment: Option<Result<ScopeAlignment, String>>,
    /// Further MCP server instances checks start (other configurations of the release),
    /// stopped here at teardown.
    pub instances: Instances,
    /// The STORAGE area's own instance and the flows driven there, set up once.
    pub(crate) storage: tokio::sync::OnceCell<std::sync::Arc<crate::checks::storage::Lab>>,
    stand_in: Mutex<Option<StandIn>>,
    process: tokio::sync::Mutex<Option<ManagedProcess>>,
    logs: Vec<PathBuf>,
}

impl Subjects {
    fn new(harness_client: HarnessClient) -> Self {
        Self {
            harness_client,
            mcp: McpServerState::NotNeeded,
            launch: None,
            scope_map: tokio::sync::OnceCell::new(),
            alignment: None,
            instances: Instances::default(),
            storage: tokio::sync::OnceCell::new(),
            stand_in: Mutex::new(None),
            process: tokio::sync::Mutex::new(None),
            logs: Vec::new(),
        }
    }

    /// Every request the stand-in received so far; `None` when no stand-in runs.
    pub fn stand_in_requests(&self) -> Option<Vec<RecordedRequest>> {
        self.lock_stand_in().as_ref().map(StandIn::requests)
    }

    /// The stand-in's base URL, when one runs.
    pub fn stand_in_url(&self) -> Option<String> {
        self.lock_stand_in().as_ref().map(StandIn::base_url)
    }

    /// Logs of the processes started here (the MCP server, its install, further
    /// instances).
    pub fn log_files(&self) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = self.logs.iter().filter(|p| p.exists()).cloned().collect();
        logs.extend(self.instances.log_files());
        logs
    }

    /// What starting a further instance of the native MCP server needs, when the harness
    /// started the first one.
    pub fn launcher<'a>(
        &'a self,
        run: &'a RunContext,
        progress: &'a Progress,
    ) -> Option<Launcher<'a>> {
        self.launch.as_ref().map(|l| Launcher {
            run,
            progress,
            options: &l.options,
            wiring: &l.wiring,
        })
    }

    /// Stops further instances and the MCP server, then the stand-in they talk to.
    pub async fn stop(&self) {
        self.instances.stop_all().await;
        if let Some(mut p) = self.process.lock().await.take() {
            p.stop(std::time::Duration::from_secs(10)).await;
        }
        let stand_in = self.lock_stand_in().take();
        if let Some(s) = stand_in {
            s.stop().await;
        }
    }

    fn lock_stand_in(&self) -> std::sync::MutexGuard<'_, Option<StandIn>> {
        self.stand_in.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the session lends the subjects' setup: the admin API, the setup evidence, and
/// progress output.
pub struct SetupTools<'a> {
    pub admin: &'a AdminClient,
    pub evidence: &'a Evidence,
    pub progress: &'a Progress,
}

/// Starts what `cfg.needs` asks for, records it in `stack` (components, MCP endpoint)
/// and aligns the realm with the MCP server's scopes. Never fails: what could not start
/// is recorded as such.
pub async fn start(
    run: &RunContext,
    stack: &mut Stack,
    cfg: &StackConfig,
    realm: &DeployedRealm,
    tools: SetupTools<'_>,
    listener: &crate::browser::redirect::RedirectListener,
) -> Subjects {
    let SetupTools {
        admin,
        evidence: setup,
        progress,
    } = tools;
    let mut subjects = Subjects::new(harness_client(listener));
    let needs_mcp = cfg.needs.contains(&Need::McpServer);
    if !needs_mcp && !cfg.needs.contains(&Need::ResourceServer) {
        return subjects;
    }
    if let Some(why) = realm.unusable() {
        subjects.mcp = McpServerState::Unavailable(format!(
            "the realm {} is not usable ({why}; see REALM-01)",
            realm.name
        ));
        return subjects;
    }
    let stand_in = match stack.backend {
        Backend::Native => Some(StandIn::start(StandInConfig::new(realm.discovery_url())).await),
        _ => None,
    };
    let nextcloud_host = match stand_in {
        Some(Ok(s)) => {
            stack
                .components
                .push(("nextcloud".into(), "stand-in".into()));
            let url = s.base_url();
            *subjects.lock_stand_in() = Some(s);
            Some(url)
        }
        Some(Err(e)) => {
            subjects.mcp = McpServerState::Failed {
                message: format!("the Nextcloud stand-in did not start: {e:#}"),
                log: None,
            };
            return subjects;
        }
        None => None,
    };
    if !needs_mcp {
        return subjects;
    }
    subjects.mcp = match (stack.backend, nextcloud_host) {
        (Backend::Native, Some(host)) => {
            start_native(run, stack, cfg, realm, host, &mut subjects, progress).await
        }
        _ => external(stack, cfg).await,
    };
    if let McpServerState::Running(mcp) = &subjects.mcp {
        let alignment = align(admin, realm, mcp, setup).await;
        subjects.alignment = Some(alignment.map_err(|e| format!("{e:#}")));
    }
    subjects
}

/// The given redirect URI, else `http://127.0.0.1:<free port>/callback` (a port of 0
/// only if the machine has none free: the proxy's redirect check then never matches).
/// The harness's client at the MCP server's proxy redirects to the session's listener
/// (bound to the port of `--mcp-redirect-uri` when one is given).
fn harness_client(listener: &crate::browser::redirect::RedirectListener) -> HarnessClient {
    let redirect_uri = listener.redirect_uri();
    let redirect_port = url::Url::parse(&redirect_uri)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(0);
    HarnessClient {
        client_id: HARNESS_MCP_CLIENT.into(),
        redirect_uri,
        redirect_port,
        allowed_by_this_run: false,
    }
}

async fn start_native(
    run: &RunContext,
    stack: &mut Stack,
    cfg: &StackConfig,
    realm: &DeployedRealm,
    nextcloud_host: String,
    subjects: &mut Subjects,
    progress: &Progress,
) -> McpServerState {
    let opts = &cfg.mcp_server;
    stack
        .components
        .push(("mcp-server".into(), opts.version.clone()));
    subjects.logs = vec![
        run.path("mcp-server-install.log"),
        run.path("mcp-server.log"),
    ];
    let Some(client_secret) = realm.client_secret(MCP_SERVER_CLIENT) else {
        return McpServerState::Failed {
            message: format!("the realm file defines no secret for the client {MCP_SERVER_CLIENT}"),
            log: None,
        };
    };
    subjects.harness_client.allowed_by_this_run = true;
    let h = &subjects.harness_client;
    let wiring = McpServerWiring {
        instance: "mcp-server".into(),
        discovery_url: realm.discovery_url(),
        nextcloud_host,
        client_id: MCP_SERVER_CLIENT.into(),
        client_secret,
        allowed_client_id: h.client_id.clone(),
        allowed_redirect_uri: h.redirect_uri.clone(),
        extra_env: Vec::new(),
        unset_env: Vec::new(),
        port: None,
        fernet_key: None,
    };
    let outcome = mcp_server::start(run, opts, &wiring, progress).await;
    subjects.launch = Some(McpLaunch {
        options: opts.clone(),
        wiring,
    });
    match outcome {
        Ok(server) => {
            let state = running(&server);
            stack.mcp = Some(state.endpoint.clone());
            progress.println(&format!(
                "{} {} answers at {}",
                mcp_server::PACKAGE,
                server.version,
                server.base_url
            ));
            *subjects.process.lock().await = Some(server.process);
            McpServerState::Running(state)
        }
        Err(failure) => {
            let log = failure.process.as_ref().map(|p| p.log_path().to_owned());
            *subjects.process.lock().await = failure.process;
            progress.println(&format!(
                "the MCP server did not start: {}",
                failure.message
            ));
            McpServerState::Failed {
                message: failure.message,
                log,
            }
        }
    }
}

fn running(server: &NativeMcpServer) -> RunningMcp {
    RunningMcp {
        endpoint: McpEndpoint {
            base_url: server.base_url.clone(),
            version: server.version.clone(),
        },
        fernet_key: Some(server.fernet_key.clone()),
        db_path: Some(server.db_path.clone()),
        requested_scopes: server.requested_scopes(),
        argv: server.argv.clone(),
    }
}

/// The external backend: the server at `--mcp-url`, not started by the harness. Its
/// release comes from its public `GET /api/v1/status` (`version`), so the expectations
/// of that release apply; `external` when it does not say.
async fn external(stack: &mut Stack, cfg: &StackConfig) -> McpServerState {
    let Some(url) = &cfg.mcp_url else {
        return McpServerState::Unavailable(
            "--backend external without --mcp-url (MCP_URL): no MCP server to check".into(),
        );
    };
    let base_url = url.trim_end_matches('/').to_owned();
    let status = Http::new(DEFAULT_TIMEOUT)
        .get(format!("{base_url}/api/v1/status"))
        .send()
        .await;
    let version = status
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json_value().ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "external".into());
    let endpoint = McpEndpoint { base_url, version };
    stack
        .components
        .push(("mcp-server".into(), endpoint.version.clone()));
    stack.mcp = Some(endpoint.clone());
    McpServerState::Running(RunningMcp {
        endpoint,
        fernet_key: None,
        db_path: None,
        requested_scopes: Vec::new(),
        argv: Vec::new(),
    })
}

/// Compares the server's scopes with the realm and, when the session imported the realm,
/// creates what is missing. Recorded in the session's setup evidence.
async fn align(
    admin: &AdminClient,
    realm: &DeployedRealm,
    mcp: &RunningMcp,
    setup: &Evidence,
) -> anyhow::Result<ScopeAlignment> {
    setup.step("align the realm with the MCP server's scopes");
    let http = Http::new(DEFAULT_TIMEOUT).recording(setup);
    let [_, root] = prm::well_known_urls(&mcp.endpoint.base_url);
    let meta = ProtectedResourceMetadata::fetch(&http, &root).await?;
    let change = realm.imported_by_us();
    if !change {
        setup.note("the realm was not imported by this run: compared only, nothing created");
    }
    let admin = admin.recording(setup);
    let out = scopes::align(
        &admin,
        &realm.name,
        MCP_SERVER_CLIENT,
        &meta.scopes_supported,
        &mcp.requested_scopes,
        change,
    )
    .await?;
    setup.note(format!(
        "listed {}, requested {}; missing {:?}, not offered to {MCP_SERVER_CLIENT} {:?}; created {:?}",
        out.listed.len(),
        out.requested.len(),
        out.missing,
        out.not_offered,
        out.created
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_harness_client_redirects_to_the_session_listener() {
        let listener = crate::browser::redirect::RedirectListener::start(0)
            .await
            .unwrap();
        let client = harness_client(&listener);
        assert_eq!(client.client_id, HARNESS_MCP_CLIENT);
        assert_eq!(client.redirect_uri, listener.redirect_uri());
        assert!(client.redirect_port > 0);
        assert_eq!(
            client.redirect_uri,
            format!("http://127.0.0.1:{}/callback", client.redirect_port)
        );
        assert!(!client.allowed_by_this_run);
    }
}
