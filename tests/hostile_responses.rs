//! Truncated and hostile answers from what plays Keycloak and the MCP server (a mock
//! server): each call gives an error that says what was wrong and where (the URL, and the
//! JSON path where a field has the wrong type), within its timeout, without a panic.

use std::time::Duration;

use mcp_authz_harness::http::Http;
use mcp_authz_harness::mcp::client::{McpClient, McpClientOptions};
use mcp_authz_harness::mcp::prm::ProtectedResourceMetadata;
use mcp_authz_harness::oauth::discovery::ProviderMetadata;
use mcp_authz_harness::oauth::token;
use mcp_authz_harness::secret::{Secret, SecretKind};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DISCOVERY: &str = "/realms/r/.well-known/openid-configuration";
const TOKEN: &str = "/realms/r/protocol/openid-connect/token";
const PRM: &str = "/.well-known/oauth-protected-resource/mcp";

fn http() -> Http {
    Http::new(Duration::from_secs(5))
}

async fn serving(verb: &str, at: &str, answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path(at))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn json_body(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(text.as_bytes().to_vec(), "application/json")
}

/// The error of `result`, all of its chain.
fn error_of<T: std::fmt::Debug>(result: anyhow::Result<T>) -> String {
    format!("{:#}", result.expect_err("an error"))
}

fn assert_says(err: &str, phrases: &[&str]) {
    for p in phrases {
        assert!(err.contains(p), "{p:?} not in: {err}");
    }
}

#[tokio::test]
async fn discovery_cut_short() {
    let server = serving(
        "GET",
        DISCOVERY,
        json_body(r#"{"issuer": "http://kc/realms/r", "token_endpoint": "http://kc/re"#),
    )
    .await;
    let url = format!("{}{DISCOVERY}", server.uri());
    let err = error_of(ProviderMetadata::fetch(&http(), &url).await);
    assert_says(&err, &[&url, "HTTP 200", "EOF while parsing"]);
}

#[tokio::test]
async fn discovery_answered_with_an_html_page() {
    let page = "<html><body><h1>Welcome to nginx!</h1></body></html>";
    let server = serving(
        "GET",
        DISCOVERY,
        ResponseTemplate::new(200).set_body_raw(page, "text/html"),
    )
    .await;
    let url = format!("{}{DISCOVERY}", server.uri());
    let err = error_of(ProviderMetadata::fetch(&http(), &url).await);
    assert_says(&err, &[&url, "text/html", "Welcome to nginx"]);
}

#[tokio::test]
async fn discovery_with_a_field_of_the_wrong_type() {
    let body = json!({"issuer": "http://kc/realms/r", "code_challenge_methods_supported": "S256"});
    let server = serving(
        "GET",
        DISCOVERY,
        ResponseTemplate::new(200).set_body_json(body),
    )
    .await;
    let url = format!("{}{DISCOVERY}", server.uri());
    let err = error_of(ProviderMetadata::fetch(&http(), &url).await);
    assert_says(
        &err,
        &[
            &url,
            "code_challenge_methods_supported",
            "expected a sequence",
        ],
    );
}

#[tokio::test]
async fn a_huge_body_is_refused_not_buffered() {
    let huge = vec![b' '; 48 << 20];
    let server = serving(
        "GET",
        DISCOVERY,
        ResponseTemplate::new(200).set_body_raw(huge, "application/json"),
    )
    .await;
    let url = format!("{}{DISCOVERY}", server.uri());
    let err = error_of(ProviderMetadata::fetch(&http(), &url).await);
    assert_says(&err, &[&url, "larger than"]);
}

#[tokio::test]
async fn a_token_endpoint_answering_200_with_no_json() {
    let server = serving(
        "POST",
        TOKEN,
        ResponseTemplate::new(200).set_body_raw("OK", "text/plain"),
    )
    .await;
    let url = format!("{}{TOKEN}", server.uri());
    let err =
        error_of(token::request(&http(), &url, &[("grant_type", "client_credentials")]).await);
    assert_says(&err, &[&url, "HTTP 200", "text/plain", "OK"]);
}

#[tokio::test]
async fn a_token_endpoint_answering_200_without_a_token() {
    let body = json!({"token_type": "Bearer", "access_token": 42});
    let server = serving(
        "POST",
        TOKEN,
        ResponseTemplate::new(200).set_body_json(body),
    )
    .await;
    let url = format!("{}{TOKEN}", server.uri());
    let err =
        error_of(token::request(&http(), &url, &[("grant_type", "client_credentials")]).await);
    assert_says(&err, &[&url, "not a token response", "access_token"]);
}

#[tokio::test]
async fn protected_resource_metadata_with_wrong_types() {
    let body = json!({"resource": "http://mcp/mcp", "authorization_servers": [17]});
    let server = serving("GET", PRM, ResponseTemplate::new(200).set_body_json(body)).await;
    let url = format!("{}{PRM}", server.uri());
    let err = error_of(ProtectedResourceMetadata::fetch(&http(), &url).await);
    assert_says(
        &err,
        &[&url, "authorization_servers[0]", "expected a string"],
    );

    let body = json!({"authorization_servers": ["http://kc/realms/r"]});
    let server = serving("GET", PRM, ResponseTemplate::new(200).set_body_json(body)).await;
    let url = format!("{}{PRM}", server.uri());
    let err = error_of(ProtectedResourceMetadata::fetch(&http(), &url).await);
    assert_says(&err, &[&url, "missing field `resource`"]);
}

/// An MCP server answering `initialize` with `body` as `content_type`.
async fn mcp_answering(content_type: &str, body: &str) -> (MockServer, String) {
    let server = serving(
        "POST",
        "/mcp",
        ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), content_type),
    )
    .await;
    let url = format!("{}/mcp", server.uri());
    (server, url)
}

async fn connect(url: &str) -> String {
    let mut opts = McpClientOptions::new(url, Secret::new(SecretKind::AccessToken, "tok-123456"));
    opts.timeout = Duration::from_secs(5);
    match McpClient::connect(opts).await {
        Ok(_) => panic!("connected to a server that answers garbage"),
        Err(e) => e.message,
    }
}

#[tokio::test]
async fn an_mcp_server_answering_sse_garbage() {
    let (_server, url) =
        mcp_answering("text/event-stream", "event: message\ndata: {not json\n\n").await;
    let err = connect(&url).await;
    eprintln!("{err}");
    assert_says(
        &err,
        &[
            &url,
            "no JSON-RPC response",
            "text/event-stream",
            "data: {not json",
        ],
    );
    assert!(
        !err.contains("did not finish within"),
        "a bare timeout: {err}"
    );
}

#[tokio::test]
async fn an_mcp_server_answering_json_garbage() {
    let (_server, url) = mcp_answering(
        "application/json",
        r#"{"jsonrpc": "2.0", "id": 0, "result": 5"#,
    )
    .await;
    let err = connect(&url).await;
    eprintln!("{err}");
    assert_says(
        &err,
        &[&url, "could not parse JSON response", "EOF while parsing"],
    );
    assert!(
        !err.contains("did not finish within"),
        "a bare timeout: {err}"
    );
}

#[tokio::test]
async fn an_mcp_server_answering_html() {
    let (_server, url) = mcp_answering("text/html", "<html>502 Bad Gateway</html>").await;
    let err = connect(&url).await;
    eprintln!("{err}");
    assert_says(&err, &[&url, "Unexpected content type", "text/html"]);
    assert!(
        !err.contains("did not finish within"),
        "a bare timeout: {err}"
    );
}

#[tokio::test]
async fn an_mcp_server_whose_event_stream_stops_mid_event() {
    let (_server, url) = mcp_answering(
        "text/event-stream",
        "event: message\ndata: {\"jsonrpc\": \"2.0\", \"id\"",
    )
    .await;
    let err = connect(&url).await;
    eprintln!("{err}");
    assert_says(&err, &[&url, "no JSON-RPC response", "text/event-stream"]);
}

/// An MCP server that initializes properly, then answers `tools/list` with `body`.
async fn mcp_listing(content_type: &str, body: &str) -> (MockServer, String) {
    use wiremock::matchers::body_partial_json;
    let server = MockServer::start().await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "result": {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "hostile", "version": "0.0.1"}
    }});
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"method": "initialize"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(init)
                .insert_header("mcp-session-id", "s-1"),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"method": "notifications/initialized"}),
        ))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"method": "tools/list"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), content_type),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let url = format!("{}/mcp", server.uri());
    (server, url)
}

async fn list_tools(url: &str) -> String {
    let mut opts = McpClientOptions::new(url, Secret::new(SecretKind::AccessToken, "tok-123456"));
    opts.timeout = Duration::from_secs(5);
    let client = McpClient::connect(opts).await.expect("initialize works");
    let err = format!("{:#}", client.list_tools().await.expect_err("garbage"));
    client.close().await;
    err
}

#[tokio::test]
async fn tools_list_answered_with_sse_garbage() {
    let (_server, url) = mcp_listing("text/event-stream", "data: [1, 2\n\n").await;
    let err = list_tools(&url).await;
    eprintln!("{err}");
    assert_says(
        &err,
        &[
            &format!("tools/list page 1 at {url}"),
            "no JSON-RPC message",
        ],
    );
}

#[tokio::test]
async fn tools_list_answered_with_tools_of_the_wrong_shape() {
    let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": 5}]}});
    let (_server, url) = mcp_listing("application/json", &body.to_string()).await;
    let err = list_tools(&url).await;
    eprintln!("{err}");
    assert_says(
        &err,
        &[
            &format!("tools/list page 1 at {url}"),
            "a field missing or of the wrong type",
        ],
    );
}
