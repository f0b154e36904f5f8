//! The native backend: every component a process on this machine (or, for the Nextcloud
//! stand-in, a server inside the harness).

pub mod chromedriver;
pub mod distribution;
pub mod generic_mcp;
pub mod jdk;
pub mod keycloak;
pub mod mcp_server;

use std::path::PathBuf;
use std::sync::Arc;

use super::instances::McpInstances;
use super::run::RunContext;
use super::{
    HarnessClient, KeycloakEndpoint, McpServerState, McpSubject, Need, ResourceServer, RunningMcp,
    STAND_IN, Stack, StackConfig, SubjectWiring, Unavailable, WebDriverEndpoint,
};
use crate::nextcloud::{StandIn, StandInConfig, UidMapping};
use crate::progress::Progress;
use mcp_server::{McpServerWiring, NativeMcpServer};

/// Keycloak, and meanwhile what needs no realm: ChromeDriver and the MCP server's venv.
pub async fn up(
    run: Arc<RunContext>,
    cfg: &StackConfig,
    progress: Arc<Progress>,
) -> anyhow::Result<Stack> {
    let venv = cfg.needs(Need::McpServer).then(|| {
        let (run, progress, opts) = (run.clone(), progress.clone(), cfg.mcp_server.clone());
        let subject = cfg.subject;
        // An install that fails here fails again, with its log, when the server starts.
        tokio::spawn(async move {
            match subject {
                McpSubject::NextcloudMcpServer => {
                    mcp_server::prepare_venv(&run, &opts, &progress).await
                }
                McpSubject::Generic => generic_mcp::prepare_venv(&run, &opts, &progress).await,
            }
        })
    });
    let (kc, browser) = with_browser(
        &run,
        cfg,
        &progress,
        keycloak::start(&run, &cfg.keycloak, &progress),
    )
    .await;
    if let Some(venv) = venv {
        let _ = venv.await;
    }
    let kc = kc?;
    let components = vec![
        ("keycloak".to_owned(), kc.version.clone()),
        ("java".to_owned(), kc.java.version.clone()),
    ];
    let booted = BootedKeycloak {
        process: kc.process,
        base_url: kc.base_url,
        admin_password: kc.admin_password,
        version: kc.version,
        boot_time: kc.boot_time,
        argv: kc.argv,
    };
    assemble((run, progress, cfg), booted, components, browser).await
}

/// A Keycloak this run booted (either backend), as its stack takes it over.
pub(super) struct BootedKeycloak {
    pub process: crate::stack::process::ManagedProcess,
    pub base_url: String,
    pub admin_password: crate::secret::Secret,
    pub version: String,
    pub boot_time: std::time::Duration,
    pub argv: Vec<String>,
}

/// What the browser's start gave: ChromeDriver, or why it cannot run.
pub(super) type BrowserStart = anyhow::Result<Result<chromedriver::Chromedriver, String>>;

/// Runs `keycloak` to its end and meanwhile starts the browser when the needs ask for it.
pub(super) async fn with_browser<T>(
    run: &RunContext,
    cfg: &StackConfig,
    progress: &Progress,
    keycloak: impl std::future::Future<Output = T>,
) -> (T, Option<BrowserStart>) {
    let browser = async {
        match cfg.needs(Need::Browser) {
            true => Some(browser(run, progress).await),
            false => None,
        }
    };
    tokio::join!(keycloak, browser)
}

/// The stack of a booted Keycloak, with the browser when it started.
pub(super) async fn assemble(
    base: (Arc<RunContext>, Arc<Progress>, &StackConfig),
    kc: BootedKeycloak,
    components: Vec<(String, String)>,
    browser: Option<BrowserStart>,
) -> anyhow::Result<Stack> {
    let endpoint = KeycloakEndpoint {
        base_url: kc.base_url,
        admin_user: keycloak::ADMIN_USER.to_owned(),
        admin_password: kc.admin_password,
        version: kc.version,
        fresh: true,
        boot_time: Some(kc.boot_time),
    };
    let mut stack = Stack::new(base, endpoint, components, kc.argv, vec![kc.process]);
    if let Some(browser) = browser {
        adopt_browser(&mut stack, browser?).await;
    }
    Ok(stack)
}

/// ChromeDriver started, or why it cannot run (`Ok(Err)`: then the checks that need it
/// are skipped, or failed under `CI=true`).
async fn browser(
    run: &RunContext,
    progress: &Progress,
) -> anyhow::Result<Result<chromedriver::Chromedriver, String>> {
    if let Some(why) = chromedriver::missing() {
        return Ok(Err(why));
    }
    let started = std::time::Instant::now();
    let driver = chromedriver::start(run, progress).await?;
    progress.phase_done("boot.chromedriver", started.elapsed());
    Ok(Ok(driver))
}

/// ChromeDriver and Chromium for a stack, or the reason they cannot run.
pub(super) async fn start_browser(stack: &mut Stack) -> anyhow::Result<()> {
    let started = browser(&stack.run, &stack.progress).await?;
    adopt_browser(stack, started).await;
    Ok(())
}

async fn adopt_browser(stack: &mut Stack, started: Result<chromedriver::Chromedriver, String>) {
    let driver = match started {
        Ok(d) => d,
        Err(why) => {
            stack.mark_unavailable(Unavailable::missing(Need::Browser, why));
            return;
        }
    };
    stack
        .components
        .push(("chromium".into(), driver.chromium_version.clone()));
    stack
        .components
        .push(("chromedriver".into(), driver.chromedriver_version.clone()));
    stack.webdriver = Some(WebDriverEndpoint {
        url: driver.url.clone(),
        chromium: Some(driver.chromium.clone()),
    });
    stack.adopt(driver.process).await;
}

/// Logs of installs the native backend ran for this run (the MCP server's venv).
pub(super) fn install_logs(run: &RunContext) -> Vec<PathBuf> {
    vec![mcp_server::install_log(run)]
}

/// The stand-in, then (when asked for) the MCP server against it and the realm; for the
/// generic subject, FastMCP against the realm and no resource server.
pub(super) async fn start_subjects(stack: &mut Stack, wiring: &SubjectWiring) {
    if stack.config.subject == McpSubject::Generic {
        stack.mark_unavailable(Unavailable::by_design(
            Need::ResourceServer,
            "Nextcloud-specific: the generic subject runs without a resource server (the RS \
             checks test Nextcloud's user_oidc)",
        ));
        if stack.config.needs(Need::McpServer) {
            start_generic_mcp_server(stack, wiring).await;
        }
        return;
    }
    let config = StandInConfig {
        leniency: stack.config.stand_in_leniency,
        ..StandInConfig::new(&wiring.discovery_url)
    };
    let stand_in = match StandIn::start(config).await {
        Ok(s) => s,
        Err(e) => {
            let why = format!("the Nextcloud stand-in did not start: {e:#}");
            stack.subjects.mcp = McpServerState::Failed {
                message: why.clone(),
                log: None,
            };
            stack.mark_unavailable(Unavailable::missing(Need::ResourceServer, why));
            return;
        }
    };
    stack.components.push(("nextcloud".into(), STAND_IN.into()));
    let nextcloud_host = stand_in.base_url();
    stack.subjects.resource_server = Some(ResourceServer {
        base_url: nextcloud_host.clone(),
        version: STAND_IN.into(),
        uid_mapping: UidMapping::default(),
        request_log: Some(stand_in.log()),
    });
    stack.keep_stand_in(stand_in);
    if stack.config.needs(Need::McpServer) {
        start_mcp_server(stack, wiring, nextcloud_host).await;
    }
}

async fn start_mcp_server(stack: &mut Stack, wiring: &SubjectWiring, nextcloud_host: String) {
    let opts = stack.config.mcp_server.clone();
    stack
        .components
        .push(("mcp-server".into(), opts.version.clone()));
    let Some(client_secret) = wiring.mcp_client_secret.clone() else {
        stack.subjects.mcp = McpServerState::Failed {
            message: format!(
                "the realm file defines no secret for the client {}",
                wiring.mcp_client_id
            ),
            log: None,
        };
        return;
    };
    let mut harness = HarnessClient::new(wiring.harness_redirect_uri.clone());
    harness.allowed_by_this_run = true;
    let server_wiring = McpServerWiring {
        instance: format!("{}mcp-server", stack.prefix),
        discovery_url: wiring.discovery_url.clone(),
        nextcloud_host,
        client_id: wiring.mcp_client_id.clone(),
        client_secret,
        allowed_client_id: harness.client_id.clone(),
        allowed_redirect_uri: harness.redirect_uri.clone(),
        extra_env: opts.extra_env.clone(),
        unset_env: Vec::new(),
        port: None,
        fernet_key: None,
    };
    stack.subjects.harness_client = Some(harness);
    let outcome = mcp_server::start(&stack.run, &opts, &server_wiring, &stack.progress).await;
    stack.subjects.instances = Some(McpInstances::native(
        stack.run.clone(),
        stack.progress.clone(),
        opts,
        server_wiring,
        stack.prefix.clone(),
    ));
    stack.subjects.mcp = match outcome {
        Ok(server) => {
            let state = running(&server);
            stack.progress.println(&format!(
                "{} {} answers at {}",
                mcp_server::PACKAGE,
                server.version,
                server.base_url
            ));
            stack.adopt(server.process).await;
            McpServerState::Running(state)
        }
        Err(failure) => {
            let log = failure.process.as_ref().map(|p| p.log_path().to_owned());
            if let Some(p) = failure.process {
                stack.adopt(p).await;
            }
            stack.progress.println(&format!(
                "the MCP server did not start: {}",
                failure.message
            ));
            McpServerState::Failed {
                message: failure.message,
                log,
            }
        }
    };
}

async fn start_generic_mcp_server(stack: &mut Stack, wiring: &SubjectWiring) {
    let opts = stack.config.mcp_server.clone();
    stack
        .components
        .push(("mcp-server".into(), generic_mcp::version_label()));
    let instance = format!("{}mcp-server", stack.prefix);
    let outcome = generic_mcp::start(&stack.run, &opts, wiring, &instance, &stack.progress).await;
    stack.subjects.mcp = match outcome {
        Ok((process, running)) => {
            stack.progress.println(&format!(
                "{} {} (the generic subject) answers at {}",
                generic_mcp::FASTMCP,
                generic_mcp::FASTMCP_VERSION,
                running.base_url
            ));
            stack.adopt(process).await;
            McpServerState::Running(running)
        }
        Err(failure) => {
            let log = failure.process.as_ref().map(|p| p.log_path().to_owned());
            if let Some(p) = failure.process {
                stack.adopt(p).await;
            }
            McpServerState::Failed {
                message: failure.message,
                log,
            }
        }
    };
}

fn running(server: &NativeMcpServer) -> RunningMcp {
    RunningMcp {
        base_url: server.base_url.clone(),
        version: server.version.clone(),
        fernet_key: Some(server.fernet_key.clone()),
        db_path: Some(server.db_path.clone()),
        home: Some(server.home.clone()),
        requested_scopes: server.requested_scopes(),
        argv: server.argv.clone(),
    }
}
