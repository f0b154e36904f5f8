//! The provider's signing keys as `user_oidc` holds them: the discovery document and the
//! JWKS, fetched on first use and cached (user_oidc caches both for an hour), and the
//! choice of the key a token is checked against.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde_json::Value;
use tokio::sync::Mutex;

use super::bearer::Refusal;
use crate::http::Http;
use crate::oauth::discovery::ProviderMetadata;

/// Timeout of one discovery or JWKS call.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// RSA keys shorter than this are refused (user_oidc relies on firebase/php-jwt, which
/// refuses RSA keys under 2048 bits).
const MIN_RSA_BITS: usize = 2048;

/// One snapshot of the provider's metadata and keys.
pub(crate) struct ProviderKeys {
    pub(crate) issuer: String,
    jwks_uri: String,
    keys: Vec<Jwk>,
    fetched: Instant,
}

impl ProviderKeys {
    /// The key `alg`/`kid` designate: the key with that `kid` when the token names one
    /// (it must then suit `alg`), else the first key that suits `alg` (user_oidc's
    /// handling of tokens without `kid`).
    pub(crate) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&Jwk, Refusal> {
        let key = match kid {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.common.key_id.as_deref() == Some(kid))
                    .ok_or_else(|| Refusal::UnknownKid(kid.to_owned()))?;
                if !suits(key, alg) {
                    return Err(Refusal::KeyDoesNotSuit {
                        kid: kid.to_owned(),
                        alg,
                    });
                }
                key
            }
            None => self
                .keys
                .iter()
                .find(|k| suits(k, alg))
                .ok_or(Refusal::NoKeyFor(alg))?,
        };
        if let AlgorithmParameters::RSA(rsa) = &key.algorithm {
            let bits = modulus_bits(&rsa.n);
            if bits < MIN_RSA_BITS {
                return Err(Refusal::WeakKey(bits));
            }
        }
        Ok(key)
    }
}

/// Whether `key` can verify an `alg` signature: a signing key (no `use: enc`), of the
/// family and curve of `alg`, whose own `alg`, when it states one, is `alg`.
fn suits(key: &Jwk, alg: Algorithm) -> bool {
    if matches!(key.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return false;
    }
    if key
        .common
        .key_algorithm
        .is_some_and(|a| a != KeyAlgorithm::from(alg))
    {
        return false;
    }
    match (&key.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        _ => false,
    }
}

/// Bits of a base64url big-endian RSA modulus (0 when it does not decode).
fn modulus_bits(n: &str) -> usize {
    use base64::Engine;
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n.trim_end_matches('='))
    else {
        return 0;
    };
    match bytes.iter().position(|b| *b != 0) {
        Some(i) => (bytes.len() - i - 1) * 8 + (8 - bytes[i].leading_zeros() as usize),
        None => 0,
    }
}

/// The cache in front of the provider. Fetches nothing until first asked.
pub(crate) struct KeyCache {
    http: Http,
    discovery_url: String,
    max_age: Duration,
    /// A token with an unknown `kid` re-fetches the JWKS at most once per this interval,
    /// so a stream of forged `kid`s cannot turn into a stream of fetches.
    refetch_interval: Duration,
    current: Mutex<Option<Arc<ProviderKeys>>>,
}

impl KeyCache {
    pub(crate) fn new(
        discovery_url: String,
        max_age: Duration,
        refetch_interval: Duration,
    ) -> Self {
        Self {
            http: Http::new(FETCH_TIMEOUT),
            discovery_url,
            max_age,
            refetch_interval,
            current: Mutex::new(None),
        }
    }

    /// The cached keys, or fresh ones (discovery and JWKS) when none are younger than
    /// the cache lifetime.
    pub(crate) async fn get(&self) -> Result<Arc<ProviderKeys>, Refusal> {
        let mut current = self.current.lock().await;
        if let Some(keys) = current
            .as_ref()
            .filter(|k| k.fetched.elapsed() < self.max_age)
        {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.fetch_all().await.map_err(Refusal::Provider)?);
        *current = Some(keys.clone());
        Ok(keys)
    }

    /// After an unknown `kid`: the JWKS fetched again, unless the last fetch is more
    /// recent than the refetch interval (then `None`, and the token stays refused).
    pub(crate) async fn refetch_for_unknown_kid(&self) -> Option<Arc<ProviderKeys>> {
        let mut current = self.current.lock().await;
        let old = current.as_ref()?.clone();
        if old.fetched.elapsed() < self.refetch_interval {
            return None;
        }
        let fresh = match self.fetch_jwks(&old.jwks_uri).await {
            Ok(keys) => Arc::new(ProviderKeys {
                issuer: old.issuer.clone(),
                jwks_uri: old.jwks_uri.clone(),
                keys,
                fetched: Instant::now(),
            }),
            Err(e) => {
                tracing::warn!("stand-in: re-fetching the JWKS failed: {e:#}");
                return None;
            }
        };
        *current = Some(fresh.clone());
        Some(fresh)
    }

    async fn fetch_all(&self) -> anyhow::Result<ProviderKeys> {
        let metadata = ProviderMetadata::fetch(&self.http, &self.discovery_url).await?;
        let jwks_uri = metadata.jwks_uri()?.to_owned();
        let keys = self.fetch_jwks(&jwks_uri).await?;
        Ok(ProviderKeys {
            issuer: metadata.issuer,
            jwks_uri,
            keys,
            fetched: Instant::now(),
        })
    }

    /// The JWKS, one key at a time: a key this crate cannot parse is skipped, not a
    /// reason to refuse every token.
    async fn fetch_jwks(&self, jwks_uri: &str) -> anyhow::Result<Vec<Jwk>> {
        let resp = self.http.get(jwks_uri).send().await?;
        anyhow::ensure!(resp.status == 200, "JWKS {jwks_uri}: {}", resp.summary());
        let doc: Value = resp.json()?;
        let keys = doc["keys"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("JWKS {jwks_uri} has no \"keys\" array"))?;
        Ok(keys
            .iter()
            .filter_map(|k| match serde_json::from_value::<Jwk>(k.clone()) {
                Ok(jwk) => Some(jwk),
                Err(e) => {
                    tracing::debug!("stand-in: skipping a JWKS key that does not parse: {e}");
                    None
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_ignore_leading_zero_bytes() {
        use base64::Engine;
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        assert_eq!(modulus_bits(&enc(&[0x00, 0x80, 0x00])), 16);
        assert_eq!(modulus_bits(&enc(&[0x01])), 1);
        let mut n = vec![0xC5u8];
        n.extend([0u8; 255]);
        assert_eq!(modulus_bits(&enc(&n)), 2048);
        assert_eq!(modulus_bits("!!!"), 0);
    }
}
