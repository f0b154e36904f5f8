//! The client against a small scripted MCP server (axum): JSON answers for most requests,
//! an SSE stream for `tools/call` that first sends `elicitation/create` and waits for
//! the client's answer, as the reference server does.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::channel::mpsc;
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};

use super::*;
use crate::secret::SecretKind;

#[derive(Default)]
struct Script {
    /// The client's answer to the server's elicitation, delivered to the waiting call.
    answer: Mutex<Option<oneshot::Sender<Value>>>,
    /// The `protocolVersion` the client offered.
    offered: Mutex<Option<String>>,
    /// Whether the client declared elicitation.
    declared: Mutex<Option<bool>>,
}

async fn mcp(State(s): State<Arc<Script>>, headers: HeaderMap, body: String) -> Response {
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Bearer good-token-123")
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token", resource_metadata="http://x/.well-known/oauth-protected-resource""#)],
            r#"{"error":"invalid_token"}"#,
        )
            .into_response();
    }
    let msg: Value = serde_json::from_str(&body).expect("JSON-RPC");
    let id = msg["id"].clone();
    match msg["method"].as_str() {
        Some("initialize") => {
            *s.offered.lock().await = msg["params"]["protocolVersion"].as_str().map(str::to_owned);
            *s.declared.lock().await =
                Some(msg["params"]["capabilities"].get("elicitation").is_some());
            let result = json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "scripted", "version": "1.2.3"}
            });
            let mut resp = json_rpc(id, result);
            resp.headers_mut()
                .insert("mcp-session-id", "session-1".parse().unwrap());
            resp
        }
        Some("tools/list") => {
            let page2 = msg["params"]["cursor"] == "page-2";
            let result = if page2 {
                json!({"tools": [tool("c")]})
            } else {
                json!({"tools": [tool("a"), tool("b")], "nextCursor": "page-2"})
            };
            json_rpc(id, result)
        }
        Some("tools/call") if msg["params"]["name"] == "hang" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some("tools/call") => elicit_then_answer(s, id).await,
        Some(_) => StatusCode::ACCEPTED.into_response(), // notifications
        None => {
            // The client's answer to our elicitation.
            if let Some(tx) = s.answer.lock().await.take() {
                let _ = tx.send(msg["result"].clone());
            }
            StatusCode::ACCEPTED.into_response()
        }
    }
}

/// An SSE response: the elicitation request, then (after the client answered on a
/// separate POST) the tool result naming the action the client took.
async fn elicit_then_answer(s: Arc<Script>, id: Value) -> Response {
    let (answer_tx, answer_rx) = oneshot::channel();
    *s.answer.lock().await = Some(answer_tx);
    let (tx, rx) = mpsc::unbounded::<Result<String, std::io::Error>>();
    let request = json!({"jsonrpc": "2.0", "id": "srv-1", "method": "elicitation/create",
        "params": {"mode": "form", "message": "Please log in", "requestedSchema":
            {"type": "object", "properties": {"acknowledged": {"type": "boolean"}}}}});
    tx.unbounded_send(Ok(format!("event: message\ndata: {request}\n\n")))
        .unwrap();
    tokio::spawn(async move {
        let answer = answer_rx.await.unwrap_or(Value::Null);
        let text = format!("action={} content={}", answer["action"], answer["content"]);
        let result = json!({"jsonrpc": "2.0", "id": id,
            "result": {"content": [{"type": "text", "text": text}], "isError": false}});
        let _ = tx.unbounded_send(Ok(format!("event: message\ndata: {result}\n\n")));
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(rx))
        .unwrap()
}

fn tool(name: &str) -> Value {
    json!({"name": name, "inputSchema": {"type": "object"}})
}

fn json_rpc(id: Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

async fn serve() -> (String, Arc<Script>) {
    let script = Arc::new(Script::default());
    let app = Router::new()
        .route(
            "/mcp",
            post(mcp)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, script)
}

fn options(url: &str) -> McpClientOptions {
    let mut o = McpClientOptions::new(url, Secret::new(SecretKind::AccessToken, "good-token-123"));
    o.timeout = Duration::from_secs(5);
    o
}

#[tokio::test]
async fn pins_the_protocol_version_and_lists_every_page() {
    let (url, script) = serve().await;
    let client = McpClient::connect(options(&url)).await.unwrap();
    assert_eq!(script.offered.lock().await.as_deref(), Some("2025-06-18"));
    assert_eq!(client.negotiated_version().as_deref(), Some("2025-06-18"));
    // The report's mcp_protocol_version: found by the server's base URL, not another's.
    let base = url.trim_end_matches("/mcp");
    assert_eq!(
        super::negotiated_at(base).as_deref(),
        Some("2025-06-18"),
        "{url}"
    );
    assert_eq!(super::negotiated_at("http://127.0.0.1:9"), None);
    assert_eq!(
        client.server_info(),
        Some(("scripted".into(), "1.2.3".into()))
    );
    assert_eq!(client.list_tool_names().await.unwrap(), ["a", "b", "c"]);
    client.close().await;
}

#[tokio::test]
async fn declines_and_records_an_elicitation_it_did_not_declare() {
    let (url, script) = serve().await;
    let client = McpClient::connect(options(&url)).await.unwrap();
    assert_eq!(*script.declared.lock().await, Some(false));
    let out = client
        .call_tool("nc_notes_list_notes", json!({}))
        .await
        .unwrap();
    assert!(!out.is_error);
    assert!(out.text.contains(r#"action="decline""#), "{}", out.text);
    assert_eq!(
        client.server_requests(),
        [ServerRequest {
            method: "elicitation/create".into(),
            elicitation_declared: false,
            message: Some("Please log in".into()),
        }]
    );
    client.close().await;
}

#[tokio::test]
async fn accepts_with_the_given_content_when_told_to() {
    let (url, script) = serve().await;
    let mut opts = options(&url);
    opts.declare_elicitation = true;
    opts.elicitation = ElicitationPolicy::Accept(json!({"acknowledged": true}));
    let client = McpClient::connect(opts).await.unwrap();
    assert_eq!(*script.declared.lock().await, Some(true));
    let out = client
        .call_tool("nc_auth_provision_access", json!({}))
        .await
        .unwrap();
    assert!(
        out.text
            .contains(r#"action="accept" content={"acknowledged":true}"#),
        "{}",
        out.text
    );
    assert!(client.server_requests()[0].elicitation_declared);
    client.close().await;
}

#[tokio::test]
async fn a_refused_token_surfaces_the_challenge() {
    let (url, _) = serve().await;
    let mut opts = options(&url);
    opts.token = Secret::new(SecretKind::AccessToken, "wrong-token-456");
    let err = McpClient::connect(opts).await.err().expect("refused");
    let challenge = err.www_authenticate.expect("a challenge");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

#[tokio::test]
async fn a_call_without_an_answer_times_out() {
    let (url, _) = serve().await;
    let mut opts = options(&url);
    opts.timeout = Duration::from_millis(700);
    let client = McpClient::connect(opts).await.unwrap();
    let err = client.call_tool("hang", json!({})).await.unwrap_err();
    assert!(format!("{err:#}").contains("no answer within"), "{err:#}");
}
