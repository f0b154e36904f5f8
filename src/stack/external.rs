//! An already running deployment, reached by URL (`up`'s `stack.json`, `docker compose
//! up`, or a user's own): Keycloak with admin credentials, and optionally the resource
//! server, the MCP server and a WebDriver server. What it lacks is unavailable by design:
//! the harness starts no MCP server instance there and reads no token database.

use std::sync::Arc;

use anyhow::Context;

use super::run::RunContext;
use super::{
    ExternalStack, HarnessClient, KeycloakEndpoint, McpServerState, Need, ResourceServer,
    RunningMcp, STAND_IN, Stack, StackConfig, SubjectWiring, Unavailable, WebDriverEndpoint,
};
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::nextcloud::STAND_IN_PRODUCT;
use crate::progress::Progress;

/// Checks that Keycloak answers and that the admin credentials work; reaches (or starts
/// locally) the WebDriver server when the browser is needed.
pub async fn up(
    run: Arc<RunContext>,
    cfg: &StackConfig,
    progress: Arc<Progress>,
) -> anyhow::Result<Stack> {
    let ext = settings(cfg)?;
    let base = ext.keycloak_url.trim_end_matches('/').to_owned();
    http_url(&base, "--keycloak-url")?;
    let http = Http::new(DEFAULT_TIMEOUT);
    let admin = AdminClient::new(http, &base, &ext.admin_user, ext.admin_password.clone());
    let info = admin.get_json("/serverinfo").await.with_context(|| {
        format!(
            "the external Keycloak at {base} did not accept the admin credentials of {:?}",
            ext.admin_user
        )
    })?;
    let version = info["systemInfo"]["version"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    let endpoint = KeycloakEndpoint {
        base_url: base,
        admin_user: ext.admin_user.clone(),
        admin_password: ext.admin_password.clone(),
        version: version.clone(),
        fresh: false,
        boot_time: None,
    };
    let components = vec![("keycloak".into(), version)];
    let mut stack = Stack::new(
        (run, progress, cfg),
        endpoint,
        components,
        Vec::new(),
        Vec::new(),
    );
    if cfg.needs(Need::Browser) {
        match &ext.webdriver_url {
            Some(url) => remote_webdriver(&mut stack, url).await?,
            None => super::native::start_browser(&mut stack).await?,
        }
    }
    Ok(stack)
}

fn settings(cfg: &StackConfig) -> anyhow::Result<&ExternalStack> {
    cfg.external.as_ref().context(
        "--backend external needs --stack stack.json, or --keycloak-url, --admin-user and --admin-password-env",
    )
}

/// `url` as an `http://` URL, or an error naming `flag`.
fn http_url(url: &str, flag: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url)
        .with_context(|| format!("{flag} {url:?} is not a URL (e.g. http://127.0.0.1:8080)"))?;
    anyhow::ensure!(
        parsed.scheme() == "http",
        "{flag} {url}: only http:// is supported (this build has no TLS); reach it on loopback"
    );
    Ok(())
}

/// A WebDriver server the user runs: it must say it is ready.
pub(super) async fn remote_webdriver(stack: &mut Stack, url: &str) -> anyhow::Result<()> {
    let url = url.trim_end_matches('/');
    http_url(url, "--webdriver-url")?;
    let resp = Http::new(DEFAULT_TIMEOUT)
        .get(format!("{url}/status"))
        .send()
        .await
        .with_context(|| format!("--webdriver-url {url}: GET /status"))?;
    anyhow::ensure!(
        resp.json_value().is_ok_and(|v| v["value"]["ready"] == true),
        "--webdriver-url {url}: /status does not say ready: {}",
        resp.summary()
    );
    stack.components.push(("webdriver".into(), url.to_owned()));
    stack.webdriver = Some(WebDriverEndpoint {
        url: url.to_owned(),
        chromium: None,
    });
    Ok(())
}

/// The resource server and the MCP server at the URLs given; what is not given is
/// unavailable by design, and so are further MCP server instances.
pub(super) async fn start_subjects(stack: &mut Stack, wiring: &SubjectWiring) {
    let Some(ext) = stack.config.external.clone() else {
        return;
    };
    match &ext.resource_server_url {
        Some(url) => {
            let rs = resource_server(url, &ext).await;
            let version = rs.version.clone();
            stack.components.push(("nextcloud".into(), version));
            stack.subjects.resource_server = Some(rs);
        }
        None => stack.mark_unavailable(Unavailable::by_design(
            Need::ResourceServer,
            "--backend external without --resource-server-url (RESOURCE_SERVER_URL): no resource server to check",
        )),
    }
    stack.subjects.harness_client = Some(HarnessClient::new(wiring.harness_redirect_uri.clone()));
    match &ext.mcp_url {
        Some(url) => {
            let mcp = mcp_server(url, ext.mcp_version.as_deref()).await;
            stack
                .components
                .push(("mcp-server".into(), mcp.version.clone()));
            stack.subjects.mcp = McpServerState::Running(mcp);
        }
        None => {
            let why = "--backend external without --mcp-url (MCP_URL): no MCP server to check";
            stack.subjects.mcp = McpServerState::Unavailable(why.into());
            stack.mark_unavailable(Unavailable::by_design(Need::McpServer, why));
        }
    }
}

/// The resource server at `url`, with the version its public `/status.php` gives: the
/// harness's stand-in names itself in `productname`.
async fn resource_server(url: &str, ext: &ExternalStack) -> ResourceServer {
    let base_url = url.trim_end_matches('/').to_owned();
    let status = Http::new(DEFAULT_TIMEOUT)
        .get(format!("{base_url}/status.php"))
        .send()
        .await
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json_value().ok())
        .unwrap_or_default();
    let version = if status["productname"]
        .as_str()
        .is_some_and(|p| p.contains(STAND_IN_PRODUCT))
    {
        STAND_IN.to_owned()
    } else {
        status["versionstring"]
            .as_str()
            .unwrap_or("external")
            .to_owned()
    };
    ResourceServer {
        base_url,
        version,
        uid_mapping: ext.uid_mapping.clone(),
        request_log: None,
    }
}

/// The server at `url`, not started by the harness. Its release comes from its public
/// `GET /api/v1/status` (`version`), so the expectations of that release apply; else from
/// `stack.json` (`up` wrote what it started there); `external` when neither says.
async fn mcp_server(url: &str, described: Option<&str>) -> RunningMcp {
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
        .or_else(|| described.map(str::to_owned))
        .unwrap_or_else(|| "external".into());
    RunningMcp {
        base_url,
        version,
        fernet_key: None,
        db_path: None,
        home: None,
        requested_scopes: Vec::new(),
        argv: Vec::new(),
    }
}
