//! OpenID Connect discovery (OIDC Discovery 1.0 §4, RFC 8414 §3).

use serde::Deserialize;
use serde_json::Value;

use crate::http::Http;

/// The fields of a provider's metadata the harness uses; everything else in `extra`.
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub registration_endpoint: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl ProviderMetadata {
    /// Fetches `<issuer>/.well-known/openid-configuration`.
    pub async fn fetch(http: &Http, discovery_url: &str) -> anyhow::Result<Self> {
        let resp = http.get(discovery_url).send().await?;
        anyhow::ensure!(
            resp.status == 200,
            "discovery {discovery_url}: {}",
            resp.summary()
        );
        resp.json()
    }

    pub fn token_endpoint(&self) -> anyhow::Result<&str> {
        self.token_endpoint.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "the provider metadata of {} has no token_endpoint",
                self.issuer
            )
        })
    }

    pub fn jwks_uri(&self) -> anyhow::Result<&str> {
        self.jwks_uri.as_deref().ok_or_else(|| {
            anyhow::anyhow!("the provider metadata of {} has no jwks_uri", self.issuer)
        })
    }
}

/// The RFC 8693 token-exchange grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
