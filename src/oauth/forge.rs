//! Tokens the harness makes on purpose to be refused: a real token's claims under a wrong
//! signature, `alg: none`, HS256 keyed with the issuer's public key, an unknown `kid`.
//! Only the thing under test differs from a token the resource server would accept.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::secret::{Secret, SecretKind};

/// An RSA key of the harness's own (never published by Keycloak).
pub struct ForgeKey {
    encoding: EncodingKey,
}

/// The process's one [`ForgeKey`], made on first use.
static SHARED: tokio::sync::OnceCell<ForgeKey> = tokio::sync::OnceCell::const_new();

impl ForgeKey {
    /// The key every forged signature of this process uses. A forged token only needs a key
    /// the server under test does not know, so one serves every check; making a 2048-bit
    /// key takes 0.1 to 0.5 s of CPU here, which each of the four checks that forge paid,
    /// on a runtime thread other checks were waiting for. It is made once, on a blocking
    /// thread.
    pub async fn shared() -> anyhow::Result<&'static ForgeKey> {
        SHARED
            .get_or_try_init(|| async { tokio::task::spawn_blocking(Self::generate).await? })
            .await
    }

    /// A fresh 2048-bit key.
    fn generate() -> anyhow::Result<Self> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
        let der = private.to_pkcs1_der()?;
        Ok(Self {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        })
    }

    /// `claims` signed RS256 with this key under `kid`.
    pub fn sign(&self, claims: &Value, kid: &str) -> anyhow::Result<Secret> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        forged(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

fn forged(token: String) -> anyhow::Result<Secret> {
    Ok(Secret::new(SecretKind::Token, token))
}

/// `claims` with `{"alg":"none"}` and an empty signature.
pub fn alg_none(claims: &Value) -> anyhow::Result<Secret> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    forged(format!("{header}.{body}."))
}

/// `claims` signed HS256 with the issuer's RSA public key (PEM) as the HMAC secret: the
/// classic algorithm-confusion attack on verifiers that take the algorithm from the token.
pub fn hs256_with_public_key(claims: &Value, issuer_key: &Jwk) -> anyhow::Result<Secret> {
    let pem = public_pem(issuer_key)?;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = issuer_key.common.key_id.clone();
    forged(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(pem.as_bytes()),
    )?)
}

fn public_pem(jwk: &Jwk) -> anyhow::Result<String> {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let AlgorithmParameters::RSA(p) = &jwk.algorithm else {
        anyhow::bail!("the issuer key is not an RSA key");
    };
    let n = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&p.n)?);
    let e = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(&p.e)?);
    Ok(rsa::RsaPublicKey::new(n, e)?.to_public_key_pem(LineEnding::LF)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_none_tokens_have_an_empty_signature() {
        let t = alg_none(&serde_json::json!({"sub": "x"})).unwrap();
        let parts: Vec<&str> = t.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        assert_eq!(
            jsonwebtoken::decode_header(t.expose()).ok(),
            None,
            "jsonwebtoken refuses alg none"
        );
    }

    #[tokio::test]
    async fn the_shared_key_is_made_once_and_signs_rs256_under_the_kid_given() {
        let (a, b) = tokio::join!(ForgeKey::shared(), ForgeKey::shared());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(std::ptr::eq(a, b), "two keys were made");
        let t = a.sign(&serde_json::json!({"sub": "x"}), "k1").unwrap();
        let header = jsonwebtoken::decode_header(t.expose()).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
    }
}
