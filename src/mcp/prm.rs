//! OAuth 2.0 Protected Resource Metadata (RFC 9728) as an MCP server serves it.

use serde::Deserialize;
use serde_json::Value;

use crate::http::Http;

/// The well-known path of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The fields of RFC 9728 §2 the harness reads; everything else in `extra`.
#[derive(Clone, Debug, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub bearer_methods_supported: Vec<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// GETs `url`; fails unless it answers 200 with the metadata as JSON.
    pub async fn fetch(http: &Http, url: &str) -> anyhow::Result<Self> {
        let resp = http.get(url).send().await?;
        anyhow::ensure!(
            resp.status == 200,
            "protected resource metadata {url}: {}",
            resp.summary()
        );
        resp.json()
    }
}

/// The metadata URLs of RFC 9728 §3.1 for a resource at `base` with path `/mcp`: the
/// path-suffixed one first (where §3.1 puts it), then the root one (which
/// nextcloud-mcp-server serves as well, and other servers need not).
pub fn well_known_urls(base_url: &str) -> [String; 2] {
    let base = base_url.trim_end_matches('/');
    [
        format!("{base}{WELL_KNOWN}/mcp"),
        format!("{base}{WELL_KNOWN}"),
    ]
}

/// The metadata a server at `base_url` serves: at the RFC 9728 §3.1 URL (which must answer),
/// then at the root URL when that answers 200 too (a 404 there is no fault: §3.1 puts
/// the metadata of a resource with a path at the path-suffixed URL only).
pub async fn served(
    http: &Http,
    base_url: &str,
) -> anyhow::Result<Vec<(String, ProtectedResourceMetadata)>> {
    let [inserted, root] = well_known_urls(base_url);
    let mut out = vec![(
        inserted.clone(),
        ProtectedResourceMetadata::fetch(http, &inserted).await?,
    )];
    let resp = http.get(&root).send().await?;
    if resp.status == 200 {
        let meta = resp
            .json()
            .map_err(|e| anyhow::anyhow!("protected resource metadata {root}: {e:#}"))?;
        out.push((root, meta));
    }
    Ok(out)
}
