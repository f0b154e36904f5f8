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
/// path-suffixed one first, then the root one.
pub fn well_known_urls(base_url: &str) -> [String; 2] {
    let base = base_url.trim_end_matches('/');
    [
        format!("{base}{WELL_KNOWN}/mcp"),
        format!("{base}{WELL_KNOWN}"),
    ]
}
