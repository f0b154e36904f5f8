//! Bearer validation as `user_oidc` (v7+) does it for self-encoded (JWT) tokens, with
//! the reference configuration: provider `keycloak`, client id `nextcloud`, check-bearer
//! on, bearer provisioning on, unique uid on, uid mapping `sub`.
//!
//! A refused token is not an error for the caller: it just means "not logged in", and
//! the [`Refusal`] (it names no secret) is logged at debug level and kept in the request
//! log, where the RS checks show it as evidence.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Leniency;
use super::keys::KeyCache;

/// The signature algorithms accepted: asymmetric only. No `HS*` (the HMAC secret would
/// be a public key) and no `none`.
const ALLOWED_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::PS256,
];

/// Leeway firebase/php-jwt gets from user_oidc for `nbf` and `iat` (seconds). `exp` has
/// none: user_oidc checks it again itself, without leeway.
const NBF_IAT_LEEWAY: i64 = 60;

/// How user_oidc derives a Nextcloud user id from the mapped claim (`sub`) when
/// unique uid is on: hex SHA-256 of `"<provider db id>_0_<sub>"`. The stand-in's own
/// implementation: checks compute what they expect with `nextcloud::UidMapping` instead.
pub(crate) fn user_id_for_sub(provider_db_id: u32, sub: &str) -> String {
    let digest = Sha256::digest(format!("{provider_db_id}_0_{sub}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a bearer token did not log anyone in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("not a JWT: {0}")]
    Malformed(String),
    #[error("alg {0:?} is not accepted (asymmetric algorithms only)")]
    Algorithm(String),
    #[error("the provider's keys could not be fetched: {0:#}")]
    Provider(anyhow::Error),
    #[error("no key with kid {0:?} in the JWKS")]
    UnknownKid(String),
    #[error("the key with kid {kid:?} cannot verify {alg:?}")]
    KeyDoesNotSuit { kid: String, alg: Algorithm },
    #[error("no key in the JWKS can verify {0:?}")]
    NoKeyFor(Algorithm),
    #[error("the RSA key has {0} bits, fewer than 2048")]
    WeakKey(usize),
    #[error("the signature does not verify: {0}")]
    Signature(String),
    #[error("claim {0}")]
    Claim(String),
}

/// Who a valid token logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OidcLogin {
    pub(crate) uid: String,
    /// From `name`, else `preferred_username`, else the uid (user_oidc's display-name
    /// mapping with the bearer-provisioning defaults).
    pub(crate) display_name: String,
}

pub(crate) struct BearerValidator {
    keys: KeyCache,
    client_id: String,
    provider_db_id: u32,
    leniency: Leniency,
}

impl BearerValidator {
    pub(crate) fn new(
        discovery_url: String,
        client_id: String,
        provider_db_id: u32,
        cache: Duration,
        kid_refetch_interval: Duration,
    ) -> Self {
        Self {
            keys: KeyCache::new(discovery_url, cache, kid_refetch_interval),
            client_id,
            provider_db_id,
            leniency: Leniency::default(),
        }
    }

    /// The same validator with deliberate defects (the mutation self-test).
    pub(crate) fn with_leniency(mut self, leniency: Leniency) -> Self {
        self.leniency = leniency;
        self
    }

    /// Validates `token` the way user_oidc does; every request is validated again.
    pub(crate) async fn validate(&self, token: &str) -> Result<OidcLogin, Refusal> {
        let claims = match self.lenient_claims(token) {
            Some(claims) => claims,
            None => self.verified_claims(token).await?,
        };
        let keys = self.keys.get().await?;
        check_claims(&claims, &keys.issuer, &self.client_id, now(), self.leniency)?;
        self.login(&claims)
    }

    /// The claims unverified, where a deliberate defect says so (never by default).
    fn lenient_claims(&self, token: &str) -> Option<Value> {
        let l = self.leniency;
        let alg_none = unverified_header(token).is_some_and(|h| h["alg"] == "none");
        (l.skip_signature || (l.accept_alg_none && alg_none)).then(|| unverified_claims(token))?
    }

    /// The claims of a token whose signature verifies against the provider's JWKS.
    async fn verified_claims(&self, token: &str) -> Result<Value, Refusal> {
        let alg = allowed_alg(token)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refusal::Malformed(format!("header: {e}")))?;
        let kid = header.kid.as_deref();
        let mut keys = self.keys.get().await?;
        let jwk = match keys.select(alg, kid) {
            Err(Refusal::UnknownKid(k)) => {
                keys = self
                    .keys
                    .refetch_for_unknown_kid()
                    .await
                    .ok_or(Refusal::UnknownKid(k))?;
                keys.select(alg, kid)?
            }
            other => other?,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| Refusal::Signature(e.to_string()))?;
        verify_signature(token, alg, &key)
    }

    /// Who valid claims log in.
    fn login(&self, claims: &Value) -> Result<OidcLogin, Refusal> {
        let mapped = |claim: &str| claims[claim].as_str().filter(|s| !s.is_empty());
        let lenient = |claim: &str| mapped(claim).filter(|_| self.leniency.sub_optional);
        let sub = mapped("sub")
            .or_else(|| lenient("preferred_username"))
            .or_else(|| lenient("azp"))
            .ok_or_else(|| Refusal::Claim("sub is missing, empty or not a string".into()))?;
        let uid = user_id_for_sub(self.provider_db_id, sub);
        let display_name = ["name", "preferred_username"]
            .iter()
            .find_map(|c| claims[*c].as_str().filter(|s| !s.is_empty()))
            .unwrap_or(&uid)
            .to_owned();
        Ok(OidcLogin { uid, display_name })
    }
}

/// A segment of a JWT, base64url-decoded and parsed, without any verification.
fn unverified_segment(token: &str, i: usize) -> Option<Value> {
    use base64::Engine;
    let segment = token.split('.').nth(i)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

fn unverified_header(token: &str) -> Option<Value> {
    unverified_segment(token, 0)
}

fn unverified_claims(token: &str) -> Option<Value> {
    unverified_segment(token, 1)
}

/// The header's `alg`, read by hand so that `none` and `HS256` are named in the refusal.
fn allowed_alg(token: &str) -> Result<Algorithm, Refusal> {
    use base64::Engine;
    let segments: Vec<&str> = token.split('.').collect();
    if segments.len() != 3 {
        return Err(Refusal::Malformed(format!(
            "{} segments instead of 3",
            segments.len()
        )));
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segments[0])
        .map_err(|e| Refusal::Malformed(format!("header: {e}")))?;
    let header: Value =
        serde_json::from_slice(&raw).map_err(|e| Refusal::Malformed(format!("header: {e}")))?;
    let name = header["alg"].as_str().unwrap_or("(missing)");
    ALLOWED_ALGS
        .iter()
        .copied()
        .find(|a| format!("{a:?}") == name)
        .ok_or_else(|| Refusal::Algorithm(name.to_owned()))
}

/// The signature only; the claims are checked by [`check_claims`] as user_oidc does.
fn verify_signature(token: &str, alg: Algorithm, key: &DecodingKey) -> Result<Value, Refusal> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| Refusal::Signature(e.to_string()))
}

/// The claim checks of user_oidc's SelfEncodedValidator (and of php-jwt under it):
/// - `exp` required and enforced without leeway (`exp < now` is refused);
/// - `nbf` and `iat` not more than 60 s in the future (php-jwt with user_oidc's leeway);
/// - `iss` equal to the discovery issuer;
/// - `aud`, when it is a string, equal to the client id; when it is an array,
///   containing it. A token without `aud` passes: that is user_oidc's behaviour.
/// - `azp` is not checked (v7+).
fn check_claims(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    now: i64,
    lenient: Leniency,
) -> Result<(), Refusal> {
    let claim = |m: String| Err(Refusal::Claim(m));
    match claims["exp"].as_f64() {
        _ if lenient.ignore_exp => {}
        None => return claim("exp is missing or not a number".into()),
        Some(exp) if exp < now as f64 => return claim(format!("exp {exp} is past (now {now})")),
        Some(_) => {}
    }
    for name in ["nbf", "iat"] {
        if let Some(t) = claims[name].as_f64()
            && t > (now + NBF_IAT_LEEWAY) as f64
        {
            return claim(format!("{name} {t} is in the future (now {now})"));
        }
    }
    if !lenient.ignore_iss && claims["iss"].as_str() != Some(issuer) {
        return claim(format!("iss {} is not {issuer:?}", claims["iss"]));
    }
    let aud_ok = lenient.ignore_aud
        || match &claims["aud"] {
            Value::String(aud) => aud == client_id,
            Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(client_id)),
            _ => true,
        };
    if !aud_ok {
        return claim(format!(
            "aud {} does not contain {client_id:?}",
            claims["aud"]
        ));
    }
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://kc.example/realms/r";

    fn claims(extra: Value) -> Value {
        let mut c = json!({"iss": ISS, "aud": "nextcloud", "exp": 1000, "sub": "s"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn user_ids_are_the_hex_sha256_of_provider_and_sub() {
        let uid = user_id_for_sub(1, "abc");
        assert_eq!(uid.len(), 64);
        assert_eq!(
            uid,
            Sha256::digest(b"1_0_abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert_ne!(uid, user_id_for_sub(2, "abc"));
    }

    const STRICT: Leniency = Leniency {
        accept_alg_none: false,
        skip_signature: false,
        ignore_exp: false,
        ignore_iss: false,
        ignore_aud: false,
        sub_optional: false,
    };

    #[test]
    fn each_leniency_lets_through_only_what_it_names() {
        let expired = claims(json!({"exp": 1}));
        let foreign = claims(json!({"iss": "http://elsewhere"}));
        let other_aud = claims(json!({"aud": "account"}));
        for (bad, lenient) in [
            (
                &expired,
                Leniency {
                    ignore_exp: true,
                    ..STRICT
                },
            ),
            (
                &foreign,
                Leniency {
                    ignore_iss: true,
                    ..STRICT
                },
            ),
            (
                &other_aud,
                Leniency {
                    ignore_aud: true,
                    ..STRICT
                },
            ),
        ] {
            assert!(check_claims(bad, ISS, "nextcloud", 1000, STRICT).is_err());
            assert!(check_claims(bad, ISS, "nextcloud", 1000, lenient).is_ok());
        }
        let only_exp = Leniency {
            ignore_exp: true,
            ..STRICT
        };
        assert!(check_claims(&foreign, ISS, "nextcloud", 1000, only_exp).is_err());
    }

    #[test]
    fn exp_has_no_leeway_but_now_itself_passes() {
        assert!(
            check_claims(
                &claims(json!({"exp": 1000})),
                ISS,
                "nextcloud",
                1000,
                STRICT
            )
            .is_ok()
        );
        assert!(
            check_claims(&claims(json!({"exp": 999})), ISS, "nextcloud", 1000, STRICT).is_err()
        );
        assert!(check_claims(&claims(json!({"exp": null})), ISS, "nextcloud", 0, STRICT).is_err());
    }

    #[test]
    fn aud_is_checked_only_when_it_is_a_string_or_an_array() {
        let ok =
            |aud: Value| check_claims(&claims(json!({"aud": aud})), ISS, "nextcloud", 0, STRICT);
        assert!(ok(json!(["account", "nextcloud"])).is_ok());
        assert!(ok(json!("nextcloud")).is_ok());
        assert!(ok(json!(null)).is_ok());
        assert!(ok(json!("account")).is_err());
        assert!(ok(json!(["account"])).is_err());
        assert!(ok(json!([])).is_err());
    }

    #[test]
    fn nbf_and_iat_get_a_minute_of_leeway() {
        let at = |name: &str, t: i64| {
            check_claims(
                &claims(json!({ name: t, "exp": 5000 })),
                ISS,
                "nextcloud",
                1000,
                STRICT,
            )
        };
        assert!(at("nbf", 1060).is_ok());
        assert!(at("nbf", 1061).is_err());
        assert!(at("iat", 1061).is_err());
    }

    #[test]
    fn algorithms_are_read_from_the_raw_header() {
        use base64::Engine;
        let tok = |h: &str| {
            format!(
                "{}.e30.",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h)
            )
        };
        assert!(
            matches!(allowed_alg(&tok(r#"{"alg":"none"}"#)), Err(Refusal::Algorithm(a)) if a == "none")
        );
        assert!(matches!(
            allowed_alg(&tok(r#"{"alg":"HS256"}"#)),
            Err(Refusal::Algorithm(_))
        ));
        assert!(matches!(
            allowed_alg(&tok(r#"{"alg":"PS384"}"#)),
            Err(Refusal::Algorithm(_))
        ));
        assert_eq!(
            allowed_alg(&tok(r#"{"alg":"ES256"}"#)).unwrap(),
            Algorithm::ES256
        );
        assert!(matches!(allowed_alg("a.b"), Err(Refusal::Malformed(_))));
    }
}
