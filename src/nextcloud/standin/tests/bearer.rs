//! user_oidc's bearer validation, proved on `cloud/user`: every forged or foreign token
//! is "not logged in" (OCS 401 / 997), valid ones log in as `user_id_for_sub`.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey};
use rstest::rstest;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::super::bearer::BearerValidator;
use super::super::{AuthKind, Timings, user_id_for_sub};
use super::support::*;

#[tokio::test]
async fn a_valid_token_logs_in_as_the_hashed_sub() {
    let fx = Fixture::start().await;
    let token = fx.idp.token("alice-sub", "Alice Example");
    let (status, body) = fx.whoami(&Auth::Bearer(token.clone())).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["ocs"]["data"];
    assert_eq!(data["id"], json!(user_id_for_sub(1, "alice-sub")));
    assert_eq!(data["displayname"], "Alice Example");
    assert_eq!(data["display-name"], "Alice Example");
    assert_eq!(data["backend"], "user_oidc");
    assert_eq!(data["email"], Value::Null);
    assert_eq!(body["ocs"]["meta"]["statuscode"], 200);

    let log = fx.standin.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].auth,
        AuthKind::Bearer {
            fingerprint: crate::secret::fingerprint(&token)
        }
    );
    assert_eq!(
        log[0].user.as_deref(),
        Some(user_id_for_sub(1, "alice-sub").as_str())
    );
    assert_eq!((log[0].status, log[0].ocs_api_request), (200, true));
    assert_eq!(log[0].path, "/ocs/v2.php/cloud/user");
    assert_eq!(log[0].refusal, None);
}

/// user_oidc lets a token without `aud` through; a harness check marks this as an
/// expected deviation, so the stand-in must imitate it.
#[tokio::test]
async fn a_token_without_aud_is_accepted_like_user_oidc_does() {
    let fx = Fixture::start().await;
    let mut claims = fx.idp.claims("no-aud-sub", "Nobody");
    claims.as_object_mut().unwrap().remove("aud");
    let token = sign(&claims, &realm_key().encoding, Algorithm::RS256, Some("k1"));
    let (status, body) = fx.whoami(&Auth::Bearer(token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ocs"]["data"]["id"],
        json!(user_id_for_sub(1, "no-aud-sub"))
    );
}

/// Without `kid` the first key that suits the algorithm is used; Keycloak's encryption
/// key, listed first, is not one.
#[tokio::test]
async fn a_token_without_kid_is_checked_against_the_first_signing_key() {
    let fx = Fixture::start().await;
    let token = sign(
        &fx.idp.claims("kidless", "K"),
        &realm_key().encoding,
        Algorithm::RS256,
        None,
    );
    let (status, body) = fx.whoami(&Auth::Bearer(token)).await;
    assert_eq!(status, 200, "{body}");
}

#[derive(Clone, Copy, Debug)]
enum Forgery {
    OtherAudience,
    Expired,
    NoExp,
    WrongKey,
    AlgNone,
    Hs256KeyedWithPublicPem,
    Hs256KeyedWithModulus,
    UnknownKid,
    WrongIssuer,
    NoSub,
    EmptySub,
    NumericSub,
    NotAJwt,
}

fn forge(idp: &Idp, forgery: Forgery) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut claims = idp.claims("mallory-sub", "Mallory");
    let realm = &realm_key().encoding;
    let rs256 = |claims: &Value| sign(claims, realm, Algorithm::RS256, Some("k1"));
    match forgery {
        Forgery::OtherAudience => {
            claims["aud"] = json!(["account", "nextcloud-mcp-server"]);
            rs256(&claims)
        }
        Forgery::Expired => {
            // Five seconds past: any leeway would let it through.
            claims["exp"] = json!(now() - 5);
            rs256(&claims)
        }
        Forgery::NoExp => {
            claims.as_object_mut().unwrap().remove("exp");
            rs256(&claims)
        }
        Forgery::WrongKey => sign(&claims, &other_key().encoding, Algorithm::RS256, Some("k1")),
        Forgery::AlgNone => format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
            b64(&claims)
        ),
        Forgery::Hs256KeyedWithPublicPem => sign(
            &claims,
            &EncodingKey::from_secret(realm_key().public_pem.as_bytes()),
            Algorithm::HS256,
            Some("k1"),
        ),
        Forgery::Hs256KeyedWithModulus => sign(
            &claims,
            &EncodingKey::from_secret(&realm_key().modulus),
            Algorithm::HS256,
            Some("k1"),
        ),
        Forgery::UnknownKid => sign(&claims, realm, Algorithm::RS256, Some("k-unknown")),
        Forgery::WrongIssuer => {
            claims["iss"] = json!("http://127.0.0.1:1/realms/other");
            rs256(&claims)
        }
        Forgery::NoSub => {
            claims.as_object_mut().unwrap().remove("sub");
            rs256(&claims)
        }
        Forgery::EmptySub => {
            claims["sub"] = json!("");
            rs256(&claims)
        }
        Forgery::NumericSub => {
            claims["sub"] = json!(42);
            rs256(&claims)
        }
        Forgery::NotAJwt => "just-an-opaque-token-that-is-no-app-password".to_owned(),
    }
}

#[rstest]
#[case::another_audience(Forgery::OtherAudience, r#"claim aud"#)]
#[case::expired_five_seconds_ago(Forgery::Expired, r#"claim exp"#)]
#[case::without_exp(Forgery::NoExp, r#"claim exp"#)]
#[case::signed_by_another_key(Forgery::WrongKey, r#"the signature does not verify"#)]
#[case::alg_none(Forgery::AlgNone, r#"alg "none""#)]
#[case::hs256_keyed_with_the_public_pem(Forgery::Hs256KeyedWithPublicPem, r#"alg "HS256""#)]
#[case::hs256_keyed_with_the_modulus(Forgery::Hs256KeyedWithModulus, r#"alg "HS256""#)]
#[case::unknown_kid(Forgery::UnknownKid, r#"no key with kid "k-unknown""#)]
#[case::wrong_issuer(Forgery::WrongIssuer, r#"claim iss"#)]
#[case::without_sub(Forgery::NoSub, r#"claim sub"#)]
#[case::empty_sub(Forgery::EmptySub, r#"claim sub"#)]
#[case::numeric_sub(Forgery::NumericSub, r#"claim sub"#)]
#[case::not_a_jwt(Forgery::NotAJwt, r#"not a JWT"#)]
#[tokio::test]
async fn a_refused_token_is_not_logged_in(#[case] forgery: Forgery, #[case] why: &str) {
    let fx = Fixture::start().await;
    // The realm works: a valid token is accepted by the same stand-in.
    let valid = fx.idp.token("alice-sub", "Alice");
    assert_eq!(fx.whoami(&Auth::Bearer(valid)).await.0, 200);

    let forged = forge(&fx.idp, forgery);
    assert_not_logged_in(&fx.whoami(&Auth::Bearer(forged.clone())).await);
    let last = fx.standin.requests().pop().expect("recorded");
    assert!(matches!(last.auth, AuthKind::Bearer { .. }), "{last:?}");
    assert_eq!((last.user, last.status), (None, 401));
    // The log keeps the reason, and nothing of the token.
    let logged = last.refusal.expect("the refusal is logged");
    assert!(logged.contains(why), "{forgery:?}: {logged}");
    assert!(!logged.contains(&forged), "{logged}");

    // Refused for the reason the forgery is about, not some other one.
    let refusal = refusal(&fx.idp, &forged).await;
    assert!(refusal.starts_with(why), "{forgery:?}: {refusal}");
}

/// Why a fresh validator against `idp` refuses `token`.
async fn refusal(idp: &Idp, token: &str) -> String {
    let validator = BearerValidator::new(
        idp.discovery_url(),
        "nextcloud".into(),
        1,
        Duration::from_secs(3600),
        Duration::from_secs(60),
    );
    validator
        .validate(token)
        .await
        .expect_err("refused")
        .to_string()
}

#[tokio::test]
async fn a_token_signed_by_a_1024_bit_key_is_refused() {
    let idp = Idp::with_keys(vec![weak_key().jwk("weak")]).await;
    let fx = Fixture::against(idp, Timings::default()).await;
    let token = sign(
        &fx.idp.claims("weak-sub", "W"),
        &weak_key().encoding,
        Algorithm::RS256,
        Some("weak"),
    );
    assert_not_logged_in(&fx.whoami(&Auth::Bearer(token.clone())).await);
    assert_eq!(
        refusal(&fx.idp, &token).await,
        "the RSA key has 1024 bits, fewer than 2048"
    );
}

/// Discovery and JWKS are fetched once and cached; unknown `kid`s do not re-fetch the
/// JWKS more than once a minute, so a key published later stays unknown until then.
#[tokio::test]
async fn keys_are_cached_and_unknown_kids_cause_no_fetch_storm() {
    let idp = Idp::without_jwks().await;
    jwks_then_rotated(&idp).await;
    let fx = Fixture::against(idp, Timings::default()).await;
    let anonymous = fx.client.get(fx.url("/status.php")).send().await.unwrap();
    assert_eq!(anonymous.status(), 200);
    assert_eq!(
        fx.idp.hits(DISCOVERY_PATH).await,
        0,
        "nothing fetched before a bearer"
    );
    assert_eq!(fx.idp.hits(JWKS_PATH).await, 0);

    for _ in 0..3 {
        let token = fx.idp.token("alice-sub", "Alice");
        assert_eq!(fx.whoami(&Auth::Bearer(token)).await.0, 200);
    }
    let rotated = rotated_token(&fx.idp);
    for _ in 0..3 {
        assert_not_logged_in(&fx.whoami(&Auth::Bearer(rotated.clone())).await);
    }
    assert_eq!(fx.idp.hits(DISCOVERY_PATH).await, 1);
    assert_eq!(fx.idp.hits(JWKS_PATH).await, 1);
}

/// Once the refetch interval has passed, an unknown `kid` re-fetches the JWKS once and a
/// rotated key is found.
#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_once_the_interval_has_passed() {
    let idp = Idp::without_jwks().await;
    jwks_then_rotated(&idp).await;
    let timings = Timings {
        kid_refetch_interval: Duration::ZERO,
        ..Timings::default()
    };
    let fx = Fixture::against(idp, timings).await;
    assert_eq!(
        fx.whoami(&Auth::Bearer(fx.idp.token("alice-sub", "Alice")))
            .await
            .0,
        200
    );
    let (status, body) = fx.whoami(&Auth::Bearer(rotated_token(&fx.idp))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fx.idp.hits(JWKS_PATH).await, 2);
}

/// The JWKS answers `k1` once, then `k1` and a rotated-in `k2`.
async fn jwks_then_rotated(idp: &Idp) {
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"keys": [realm_key().jwk("k1")]})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&idp.server)
        .await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"keys": [realm_key().jwk("k1"), other_key().jwk("k2")]})),
        )
        .with_priority(2)
        .mount(&idp.server)
        .await;
}

fn rotated_token(idp: &Idp) -> String {
    sign(
        &idp.claims("alice-sub", "Alice"),
        &other_key().encoding,
        Algorithm::RS256,
        Some("k2"),
    )
}

#[tokio::test]
async fn an_unreachable_provider_logs_no_one_in() {
    let idp = Idp::without_jwks().await;
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(503))
        .mount(&idp.server)
        .await;
    let fx = Fixture::against(idp, Timings::default()).await;
    let token = fx.idp.token("alice-sub", "Alice");
    assert_not_logged_in(&fx.whoami(&Auth::Bearer(token)).await);
}
