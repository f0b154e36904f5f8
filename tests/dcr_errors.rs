//! Registration error paths Keycloak will not produce on demand, against a mock server:
//! each gives a clear error (no panic), and a client that exists but cannot be managed
//! through RFC 7592 is still deleted, by the admin fallback, and counted.

use std::time::Duration;

use mcp_authz_harness::http::Http;
use mcp_authz_harness::keycloak::admin::AdminClient;
use mcp_authz_harness::oauth::dcr::{self, DcrOutcome};
use mcp_authz_harness::secret::{Secret, SecretKind};
use mcp_authz_harness::session::ClientRegistry;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REG: &str = "/realms/r/clients-registrations/openid-connect";

fn http() -> Http {
    Http::new(Duration::from_secs(2))
}

/// The admin API as the fallback uses it: a token, the client by clientId, and its
/// DELETE, expected exactly once.
async fn mount_admin_fallback(server: &MockServer, client_id: &str, uuid: &str) {
    let token = json!({"access_token": "admin-token-xyz", "expires_in": 60});
    Mock::given(method("POST"))
        .and(path("/realms/master/protocol/openid-connect/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/admin/realms/r/clients"))
        .and(query_param("clientId", client_id))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": uuid, "clientId": client_id}])),
        )
        .mount(server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/admin/realms/r/clients/{uuid}")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(server)
        .await;
}

/// Registers what the server answers, records it, and runs the teardown deletion.
async fn register_and_delete_all(
    server: &MockServer,
) -> (
    mcp_authz_harness::oauth::dcr::Registration,
    mcp_authz_harness::session::CleanupReport,
) {
    let reg = register(server)
        .await
        .unwrap()
        .client("registration")
        .unwrap();
    let registry = ClientRegistry::default();
    registry.record("r", &reg);
    let admin = AdminClient::new(
        http(),
        &server.uri(),
        "admin",
        Secret::new(SecretKind::Password, "admin-pass-123"),
    );
    let report = registry.delete_all(&http(), &admin).await;
    (reg, report)
}

async fn register(server: &MockServer) -> anyhow::Result<DcrOutcome> {
    let endpoint = format!("{}{REG}", server.uri());
    dcr::register(
        &http(),
        &endpoint,
        &json!({"redirect_uris": ["http://127.0.0.1/cb"]}),
        None,
    )
    .await
}

#[tokio::test]
async fn a_registration_endpoint_that_never_answers_times_out_with_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let err = register(&server).await.unwrap_err().to_string();
    assert!(err.contains("timeout") && err.contains(REG), "{err}");
}

#[tokio::test]
async fn a_5xx_is_a_refusal_with_its_status_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&server)
        .await;
    let refusal = register(&server)
        .await
        .unwrap()
        .refused("registration")
        .unwrap();
    assert_eq!(refusal.status, 503);
    assert!(refusal.to_string().contains("upstream down"), "{refusal}");
}

#[tokio::test]
async fn malformed_json_in_a_201_is_an_error_that_shows_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string("{\"client_id\": "))
        .mount(&server)
        .await;
    let err = format!("{:#}", register(&server).await.unwrap_err());
    assert!(
        err.contains("not the expected JSON") && err.contains("client_id"),
        "{err}"
    );
}

/// A 201 without RFC 7592 handles: the client exists, the protocol cannot delete it, so
/// teardown deletes it through the admin API and counts that as a fallback.
#[tokio::test]
async fn a_client_without_a_registration_access_token_is_deleted_by_the_admin_fallback() {
    let server = MockServer::start().await;
    let created = json!({"client_id": "c-123", "client_secret": "s-abcdefgh"});
    Mock::given(method("POST"))
        .and(path(REG))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .mount(&server)
        .await;
    mount_admin_fallback(&server, "c-123", "uuid-1").await;

    let (reg, report) = register_and_delete_all(&server).await;
    assert!(reg.registration_access_token.is_none());
    let err = reg.management().unwrap_err().to_string();
    assert!(err.contains("no registration_client_uri"), "{err}");
    assert_eq!((report.deleted, report.deleted_by_admin_fallback), (0, 1));
    assert!(
        report.notes[0].contains("RFC 7592 delete of client c-123 failed"),
        "{:?}",
        report.notes
    );
}

/// A failed RFC 7592 delete (say, a 500) is reported with its status and falls back too.
#[tokio::test]
async fn a_failing_rfc7592_delete_falls_back_and_is_reported() {
    let server = MockServer::start().await;
    let uri = format!("{}{REG}/c-9", server.uri());
    let created = json!({"client_id": "c-9", "registration_client_uri": uri, "registration_access_token": "rat-0123456789"});
    Mock::given(method("POST"))
        .and(path(REG))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .mount(&server)
        .await;
    let boom = json!({"error": "server_error", "error_description": "boom"});
    Mock::given(method("DELETE"))
        .and(path(format!("{REG}/c-9")))
        .respond_with(ResponseTemplate::new(500).set_body_json(boom))
        .mount(&server)
        .await;
    mount_admin_fallback(&server, "c-9", "uuid-9").await;

    let (_, report) = register_and_delete_all(&server).await;
    assert_eq!((report.deleted, report.deleted_by_admin_fallback), (0, 1));
    assert!(
        report.notes[0].contains("HTTP 500 server_error: boom"),
        "{:?}",
        report.notes
    );
}
