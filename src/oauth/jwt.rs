//! JWKS and JWT validation (RFC 7517, RFC 7519), through `jsonwebtoken`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::http::Http;
use crate::secret::Secret;

/// What a token must satisfy beyond its signature.
#[derive(Clone, Debug, Default)]
pub struct Expect<'a> {
    pub issuer: Option<&'a str>,
    /// The `aud` claim must contain one of these (when set).
    pub audience: Option<&'a [&'a str]>,
    /// Seconds of clock skew allowed on `exp`.
    pub leeway: u64,
}

/// Fetches a JWKS document.
pub async fn fetch_jwks(http: &Http, jwks_uri: &str) -> anyhow::Result<JwkSet> {
    let resp = http.get(jwks_uri).send().await?;
    anyhow::ensure!(resp.status == 200, "JWKS {jwks_uri}: {}", resp.summary());
    resp.json()
}

/// The decoded header and claims, unverified (for evidence and for negative tests).
pub fn peek(token: &str) -> anyhow::Result<(jsonwebtoken::Header, Value)> {
    let header = jsonwebtoken::decode_header(token)?;
    let data = jsonwebtoken::dangerous::insecure_decode::<Value>(token)?;
    Ok((header, data.claims))
}

/// Verifies `token` (RS256) against `jwks`: a key with the token's `kid`, the signature,
/// `exp`, and the expectations. Returns the claims.
pub fn verify(token: &Secret, jwks: &JwkSet, expect: &Expect<'_>) -> anyhow::Result<Value> {
    let header = jsonwebtoken::decode_header(token.expose())
        .map_err(|e| anyhow::anyhow!("the token's header does not decode: {e}"))?;
    anyhow::ensure!(
        header.alg == Algorithm::RS256,
        "the token is signed with {:?}, expected RS256",
        header.alg
    );
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("the token has no kid"))?;
    let jwk = jwks
        .find(kid)
        .ok_or_else(|| anyhow::anyhow!("no key with kid {kid:?} in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = expect.leeway;
    validation.set_required_spec_claims(&["exp", "iss"]);
    if let Some(iss) = expect.issuer {
        validation.set_issuer(&[iss]);
    }
    match expect.audience {
        Some(aud) => validation.set_audience(aud),
        None => validation.validate_aud = false,
    }
    let data = jsonwebtoken::decode::<Value>(token.expose(), &key, &validation)
        .map_err(|e| anyhow::anyhow!("the token does not validate: {e}"))?;
    Ok(data.claims)
}

/// `aud` as a list, whether the claim is a string or an array.
pub fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The space-separated `scope` claim as a list.
pub fn scopes(claims: &Value) -> Vec<String> {
    claims["scope"]
        .as_str()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The claims with nothing secret in them, for evidence notes (a JWT's claims are not
/// secret; the token string is).
pub fn claims_for_evidence(claims: &Value) -> String {
    let mut c = claims.clone();
    if let Some(obj) = c.as_object_mut() {
        for k in ["jti", "sid", "session_state", "nonce", "at_hash", "c_hash"] {
            if obj.contains_key(k) {
                obj.insert(k.to_owned(), Value::String("…".into()));
            }
        }
    }
    c.to_string()
}
