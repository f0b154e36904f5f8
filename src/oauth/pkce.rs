//! PKCE (RFC 7636) values and loosely built authorization requests (RFC 6749 §4.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secret::{Secret, SecretKind};

/// A code verifier (RFC 7636 §4.1) and its S256 challenge (§4.2).
#[derive(Clone, Debug)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Pkce {
    /// 32 random bytes, base64url: a 43-character verifier.
    pub fn new() -> Self {
        let verifier = Secret::generate(SecretKind::CodeVerifier, 32);
        let challenge = s256(verifier.expose());
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random url-safe value for `state` or `nonce` (not secret: it travels in URLs).
pub fn random_value() -> String {
    let bytes: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An authorization request as a list of parameters; nothing is validated so a check can
/// leave out or change any of them.
#[derive(Clone, Debug, Default)]
pub struct AuthorizationRequest {
    pub params: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// `response_type=code` with the client, redirect URI, scope, state and nonce.
    pub fn code(
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        state: &str,
        nonce: &str,
    ) -> Self {
        let mut r = Self::default();
        for (k, v) in [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", state),
            ("nonce", nonce),
        ] {
            r = r.set(k, v);
        }
        r
    }

    /// Adds an S256 challenge.
    pub fn s256(self, pkce: &Pkce) -> Self {
        self.set("code_challenge", &pkce.challenge)
            .set("code_challenge_method", "S256")
    }

    /// Sets (or replaces) a parameter.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != key);
        self.params.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Removes a parameter.
    pub fn without(mut self, key: &str) -> Self {
        self.params.retain(|(k, _)| k != key);
        self
    }

    /// The URL at `endpoint`.
    pub fn url(&self, endpoint: &str) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter())
            .finish();
        format!("{endpoint}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn requests_can_drop_or_replace_any_parameter() {
        let pkce = Pkce::new();
        let r =
            AuthorizationRequest::code("c", "http://127.0.0.1/cb", "openid", "st", "n").s256(&pkce);
        let url = r
            .clone()
            .without("code_challenge_method")
            .set("state", "x y")
            .url("http://kc/auth");
        assert!(url.starts_with("http://kc/auth?response_type=code&client_id=c"));
        assert!(!url.contains("code_challenge_method"));
        assert!(url.contains("state=x+y"));
        assert!(url.contains(&format!("code_challenge={}", pkce.challenge)));
    }
}
