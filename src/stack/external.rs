//! An already running deployment, reached by URL (e.g. `docker compose up`, or `up`).

use anyhow::Context;

use super::{Backend, KeycloakEndpoint, Stack, StackConfig};
use crate::http::Http;
use crate::keycloak::admin::AdminClient;

/// Checks that the Keycloak answers and that the admin credentials work.
pub async fn up(cfg: &StackConfig) -> anyhow::Result<Stack> {
    let ext = cfg.external.as_ref().context(
        "--backend external needs --keycloak-url, --admin-user and --admin-password-env",
    )?;
    let base = ext.url.trim_end_matches('/').to_owned();
    let url = url::Url::parse(&base).with_context(|| {
        format!("--keycloak-url {base:?} is not a URL (e.g. http://127.0.0.1:8080)")
    })?;
    anyhow::ensure!(
        url.scheme() == "http",
        "--keycloak-url {base}: only http:// is supported (this build has no TLS); \
         reach Keycloak on its HTTP port on loopback"
    );
    let http = Http::new(crate::http::DEFAULT_TIMEOUT);
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
    Ok(Stack::new(
        Backend::External,
        KeycloakEndpoint {
            base_url: base,
            admin_user: ext.admin_user.clone(),
            admin_password: ext.admin_password.clone(),
            version: version.clone(),
        },
        vec![("keycloak".into(), version)],
        Vec::new(),
        Vec::new(),
    ))
}
