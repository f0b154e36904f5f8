//! A column against a mock token endpoint (wiremock): what a cell keeps of an issued
//! token, and that the JSON written contains no secret the run handled.

use base64::Engine;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::model::*;
use super::realm::{REALM, ReproRealm};
use super::requests::{self, Target};
use crate::http::Http;
use crate::keycloak::admin::AdminClient;
use crate::secret::{Redactor, Secret, SecretKind};

/// An unsigned JWT-shaped token (the harness only peeks at claims).
fn jwt(claims: &Value) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let sig: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT", "kid": "k1"})),
        b64(claims),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

fn token_response(sub: &str, user: &str, azp: &str, refresh: bool) -> Value {
    let mut body = json!({
        "access_token": jwt(&json!({
            "sub": sub, "preferred_username": user, "azp": azp, "aud": ["target"],
            "scope": "profile email", "exp": 4_102_444_800u64,
        })),
        "token_type": "Bearer",
        "expires_in": 300,
        "issued_token_type": if refresh {
            "urn:ietf:params:oauth:token-type:refresh_token"
        } else {
            "urn:ietf:params:oauth:token-type:access_token"
        },
    });
    if refresh {
        body["refresh_token"] = json!(jwt(&json!({"typ": "Refresh", "sub": sub})));
    }
    body
}

async fn mock_keycloak() -> MockServer {
    let server = MockServer::start().await;
    let endpoint = format!("/realms/{REALM}/protocol/openid-connect/token");
    Mock::given(method("POST"))
        .and(path(endpoint.clone()))
        .and(body_string_contains("grant_type=password"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_response(
            "alice-id",
            "alice",
            "repro-login",
            true,
        )))
        .mount(&server)
        .await;
    // Impersonation is refused the way V1 refuses it; everything else is issued V1-style.
    Mock::given(method("POST"))
        .and(path(endpoint.clone()))
        .and(body_string_contains("requested_subject=bob"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": "access_denied", "error_description": "Client not allowed to exchange"
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(endpoint))
        .and(body_string_contains("token-exchange"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_response(
            "alice-id",
            "alice",
            "requester",
            true,
        )))
        .mount(&server)
        .await;
    server
}

fn results_with(columns: Vec<ColumnResult>) -> ImpersonationResults {
    ImpersonationResults {
        schema_version: SCHEMA_VERSION,
        tool: "mcp-authz-harness repro impersonation".into(),
        harness_version: "test".into(),
        command_line: vec!["mcp-authz-harness".into()],
        date: "2026-01-01T00:00:00Z".into(),
        keycloak_version: "26.7.3".into(),
        realm: REALM.into(),
        notes: vec![],
        boots: vec![],
        requests: requests::requests().iter().map(|r| r.spec()).collect(),
        columns,
    }
}

#[tokio::test]
async fn a_column_keeps_claims_and_the_json_holds_no_secret() {
    let server = mock_keycloak().await;
    let http = Http::new(std::time::Duration::from_secs(5));
    let admin_password = Secret::generate(SecretKind::Password, 18);
    let admin = AdminClient::new(http.clone(), &server.uri(), "admin", admin_password);
    let realm = ReproRealm::generate();
    let features = vec!["TOKEN_EXCHANGE".to_owned()];
    let target = Target {
        http: &http,
        base_url: &server.uri(),
        admin: &admin,
        realm: &realm,
        features: &features,
    };
    let cells = requests::run_column(&target).await.unwrap();
    assert_eq!(cells.len(), requests::requests().len());

    let own = &cells[0];
    assert_eq!(own.status, Some(200));
    let issued = own.issued.as_ref().unwrap();
    assert_eq!(issued.username.as_deref(), Some("alice"));
    assert_eq!(issued.azp.as_deref(), Some("requester"));
    assert!(issued.refresh_token_issued);
    assert_eq!(own.answered_by, requests::LABEL_V1);
    let naked = cells
        .iter()
        .find(|c| c.request == "impersonate-naked")
        .unwrap();
    assert_eq!(naked.status, Some(403));
    assert_eq!(
        naked.error_description.as_deref(),
        Some("Client not allowed to exchange")
    );

    // The tokens the mock issued are registered secrets: the scan below is meaningful.
    let known = Redactor::global().known_values();
    assert!(
        known
            .iter()
            .any(|(_, k)| *k == SecretKind::AccessToken || *k == SecretKind::RefreshToken)
    );
    let results = results_with(vec![ColumnResult {
        id: "v1-without-permissions".into(),
        title: "V1 without permissions".into(),
        boot: "legacy".into(),
        settings: vec![],
        setup: vec![],
        setup_error: None,
        cells,
    }]);
    let text = super::to_json(&results).expect("no secret in the JSON");
    for (value, kind) in Redactor::global().known_values() {
        assert!(!text.contains(&value), "a {} leaked", kind.label());
    }
    assert!(!text.contains("eyJ"), "{text}");
    let md = super::render::markdown(&results);
    super::ensure_no_secrets(&md).unwrap();
}

#[test]
fn writing_refuses_a_registered_value() {
    let s = Secret::generate(SecretKind::ClientSecret, 24);
    let mut results = results_with(vec![]);
    results.notes.push(format!("oops {}", s.expose()));
    let err = super::to_json(&results).unwrap_err().to_string();
    assert!(err.contains("client_secret"), "{err}");
    assert!(!err.contains(s.expose()));
}
