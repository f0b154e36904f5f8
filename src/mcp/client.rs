//! An MCP client over streamable HTTP (rmcp), set up for testing a server rather than
//! for being forgiving to it.
//!
//! - The protocol version is pinned to 2025-06-18 (rmcp offers a newer one by default).
//! - A server that loses the session is not silently re-initialized, and no response
//!   cache may answer for the server.
//! - Every call has a timeout (rmcp has none).
//! - Every request the server sends is answered by a policy, so no server can hang the
//!   run waiting for a user, and recorded, so a check can tell that a server sent
//!   `elicitation/create` to a client that declared no elicitation capability.
// Sampling and roots are deprecated by rmcp (SEP-2577) but are part of MCP 2025-06-18,
// the version this client speaks, so their requests are still answered and recorded.
#![expect(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, CustomRequest, CustomResult, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability, Implementation, ListRootsResult,
    PaginatedRequestParams, ProtocolVersion,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
};
use rmcp::{ClientCacheConfig, ClientHandler, ErrorData, ServiceExt};

use crate::secret::Secret;

/// The protocol version the harness speaks (MCP specification 2025-06-18).
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::V_2025_06_18;

/// The protocol versions servers answered `initialize` with, by MCP endpoint URL, over
/// every connection of this process (see [`negotiated_at`]).
static NEGOTIATED: Mutex<std::collections::BTreeMap<String, String>> =
    Mutex::new(std::collections::BTreeMap::new());

/// The protocol version a server under `base_url` (`http://127.0.0.1:PORT`) answered
/// `initialize` with, the last time this process connected to it; `None` when it made no
/// MCP session there.
pub fn negotiated_at(base_url: &str) -> Option<String> {
    let base = base_url.trim_end_matches('/');
    let seen = NEGOTIATED.lock().unwrap_or_else(|e| e.into_inner());
    seen.iter()
        .filter(|(url, _)| {
            url.strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .map(|(_, v)| v.clone())
        .next_back()
}

fn record_negotiated(url: &str, version: Option<String>) {
    if let Some(v) = version {
        let mut seen = NEGOTIATED.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(url.to_owned(), v);
    }
}

/// How the client answers `elicitation/create`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ElicitationPolicy {
    /// Decline every elicitation (what a client without a user does).
    #[default]
    Decline,
    /// Accept with this content (e.g. `{"acknowledged": true}` where a check provisions).
    Accept(serde_json::Value),
}

/// A request the server sent to the client.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerRequest {
    /// The JSON-RPC method, e.g. `elicitation/create`.
    pub method: String,
    /// Whether this client had declared the elicitation capability at initialize.
    pub elicitation_declared: bool,
    /// The request's human-readable message, when it has one (redacted).
    pub message: Option<String>,
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct McpClientOptions {
    /// The streamable HTTP endpoint, e.g. `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    pub token: Secret,
    /// Declare the elicitation capability at initialize.
    pub declare_elicitation: bool,
    pub elicitation: ElicitationPolicy,
    /// The limit of each call, connect included.
    pub timeout: Duration,
}

impl McpClientOptions {
    /// Declines elicitations and does not declare the capability; 30 s per call.
    pub fn new(url: impl Into<String>, token: Secret) -> Self {
        Self {
            url: url.into(),
            token,
            declare_elicitation: false,
            elicitation: ElicitationPolicy::Decline,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A tool as `tools/list` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    /// The JSON Schema of its arguments.
    pub input_schema: serde_json::Value,
}

/// The outcome of `tools/call` when the server answered with a result.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutcome {
    pub is_error: bool,
    /// The text content blocks, joined by newlines (in clear: redact before recording).
    pub text: String,
}

/// Answers and records the server's requests.
#[derive(Clone)]
struct Handler {
    declare_elicitation: bool,
    policy: ElicitationPolicy,
    received: Arc<Mutex<Vec<ServerRequest>>>,
}

impl Handler {
    fn record(&self, method: &str, message: Option<&str>) {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ServerRequest {
                method: method.to_owned(),
                elicitation_declared: self.declare_elicitation,
                message: message.map(crate::secret::redact),
            });
    }
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        if self.declare_elicitation {
            caps.elicitation = Some(ElicitationCapability::new());
        }
        ClientConfig::new(
            caps,
            Implementation::new("mcp-authz-harness", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(PROTOCOL_VERSION)
    }

    async fn ping(&self, _cx: RequestContext<RoleClient>) -> Result<(), ErrorData> {
        self.record("ping", None);
        Ok(())
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _cx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.record("sampling/createMessage", None);
        Err(ErrorData::method_not_found::<
            rmcp::model::CreateMessageRequestMethod,
        >())
    }

    async fn list_roots(
        &self,
        _cx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        self.record("roots/list", None);
        Err(ErrorData::method_not_found::<
            rmcp::model::ListRootsRequestMethod,
        >())
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _cx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let message = match &request {
            ElicitRequestParams::FormElicitationParams { message, .. }
            | ElicitRequestParams::UrlElicitationParams { message, .. } => Some(message.as_str()),
            _ => None,
        };
        self.record("elicitation/create", message);
        Ok(match &self.policy {
            ElicitationPolicy::Decline => ElicitResult::new(ElicitationAction::Decline),
            ElicitationPolicy::Accept(content) => {
                ElicitResult::new(ElicitationAction::Accept).with_content(content.clone())
            }
        })
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _cx: RequestContext<RoleClient>,
    ) -> Result<CustomResult, ErrorData> {
        self.record(&request.method, None);
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            request.method,
            None,
        ))
    }
}

/// Why connecting failed: the HTTP challenge when the server asked for authorization.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    pub message: String,
    /// The `WWW-Authenticate` value of a 401/403, when there was one.
    pub www_authenticate: Option<String>,
}

/// What the server answers a plain `initialize` POST, asked again when the MCP client
/// could not read an answer to its own (it then says only "connection closed"): the
/// status, content type and start of the body, so the failure shows what was wrong.
async fn initialize_answer(opts: &McpClientOptions) -> String {
    let request = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION.to_string(),
            "capabilities": {},
            "clientInfo": {"name": "mcp-authz-harness", "version": env!("CARGO_PKG_VERSION")}
        }
    });
    let asked = crate::http::Http::new(opts.timeout)
        .post(&opts.url)
        .bearer(&opts.token)
        .header("Accept", "application/json, text/event-stream")
        .json(&request)
        .send()
        .await;
    match asked {
        Ok(r) => format!(
            "; its answer holds no JSON-RPC response the client could read: HTTP {}, Content-Type {}, body: {}",
            r.status,
            r.header("content-type").unwrap_or("(none)"),
            crate::http::truncate(&r.text(), 300)
        ),
        Err(e) => format!("; asked again: {e}"),
    }
}

/// A connected, initialized MCP session.
pub struct McpClient {
    service: RunningService<RoleClient, Handler>,
    received: Arc<Mutex<Vec<ServerRequest>>>,
    timeout: Duration,
    /// The endpoint, for errors.
    url: String,
}

impl McpClient {
    /// Connects and runs `initialize` within the timeout.
    pub async fn connect(opts: McpClientOptions) -> Result<McpClient, ConnectError> {
        let config = StreamableHttpClientTransportConfig::with_uri(opts.url.clone())
            .auth_header(opts.token.expose())
            .reinit_on_expired_session(false);
        // No overall timeout on this client: it would cut the SSE streams; calls are
        // bounded one by one instead.
        let http = crate::http::client_builder()
            .build()
            .map_err(|e| ConnectError {
                message: format!("building the HTTP client: {e}"),
                www_authenticate: None,
            })?;
        let http = super::session_ids::SessionRecordingClient(http);
        let transport = StreamableHttpClientTransport::with_client(http, config);
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler = Handler {
            declare_elicitation: opts.declare_elicitation,
            policy: opts.elicitation.clone(),
            received: received.clone(),
        };
        let service = match tokio::time::timeout(opts.timeout, handler.serve(transport)).await {
            Err(_) => {
                return Err(ConnectError {
                    message: format!(
                        "initialize with {} did not finish within {}s",
                        opts.url,
                        opts.timeout.as_secs()
                    ),
                    www_authenticate: None,
                });
            }
            Ok(Err(e)) => {
                let mut message = format!("initialize with {}: {e}", opts.url);
                if matches!(e, rmcp::service::ClientInitializeError::ConnectionClosed(_)) {
                    message.push_str(&initialize_answer(&opts).await);
                }
                return Err(ConnectError {
                    message: crate::secret::redact(&message),
                    www_authenticate: e.auth_challenge().map(str::to_owned),
                });
            }
            Ok(Ok(s)) => s,
        };
        service
            .set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        record_negotiated(
            &opts.url,
            service
                .peer_info()
                .map(|i| i.protocol_version.as_str().to_owned()),
        );
        Ok(McpClient {
            service,
            received,
            timeout: opts.timeout,
            url: opts.url,
        })
    }

    /// The protocol version the server answered `initialize` with.
    pub fn negotiated_version(&self) -> Option<String> {
        self.service
            .peer_info()
            .map(|i| i.protocol_version.as_str().to_owned())
    }

    /// The server's name and version from `initialize`.
    pub fn server_info(&self) -> Option<(String, String)> {
        let info = self.service.peer_info()?;
        let s = info.server_info.as_ref()?;
        Some((s.name.clone(), s.version.clone()))
    }

    /// `tools/list`, following `nextCursor` through every page; the tool names in order.
    pub async fn list_tool_names(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .list_tools()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect())
    }

    /// Arguments for `tool` with a value for each required property of its input schema
    /// (an empty object for a tool the server does not list).
    pub async fn minimal_arguments(&self, tool: &str) -> anyhow::Result<serde_json::Value> {
        let schema = self
            .list_tools()
            .await?
            .into_iter()
            .find(|t| t.name == tool)
            .map(|t| t.input_schema)
            .unwrap_or_else(|| serde_json::json!({}));
        Ok(crate::mcp::arguments::minimal(&schema))
    }

    /// `tools/list` through every page: each tool's name and input schema, in order.
    pub async fn list_tools(&self) -> anyhow::Result<Vec<ToolInfo>> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 1.. {
            anyhow::ensure!(page <= 1000, "tools/list: more than 1000 pages");
            let params = PaginatedRequestParams::default().with_cursor(cursor.take());
            let result = self
                .bounded(
                    &format!("tools/list page {page}"),
                    self.service.list_tools(Some(params)),
                )
                .await?;
            tools.extend(result.tools.iter().map(|t| ToolInfo {
                name: t.name.to_string(),
                input_schema: serde_json::Value::Object((*t.input_schema).clone()),
            }));
            match result.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(tools)
    }

    /// `tools/call`. A JSON-RPC error or a broken call is `Err`; a tool failure is
    /// `Ok` with `is_error`.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> anyhow::Result<ToolOutcome> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        if let serde_json::Value::Object(map) = arguments {
            params = params.with_arguments(map);
        }
        let result = self
            .bounded(
                &format!("tools/call {name}"),
                self.service.call_tool(params),
            )
            .await?;
        let text: Vec<&str> = result
            .content
            .iter()
            .filter_map(|c| c.as_text())
            .map(|t| t.text.as_str())
            .collect();
        // Not redacted here: the text is data a check may need (a login URL carries its
        // token); evidence notes and failure messages are redacted where they are written.
        Ok(ToolOutcome {
            is_error: result.is_error.unwrap_or(false),
            text: text.join("\n"),
        })
    }

    /// Every request the server sent so far, in order.
    pub fn server_requests(&self) -> Vec<ServerRequest> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ends the session (rmcp sends the session `DELETE`), within the timeout.
    pub async fn close(mut self) {
        let _ = self.service.close_with_timeout(self.timeout).await;
    }

    async fn bounded<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, rmcp::ServiceError>>,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(anyhow!(
                "{what}: no answer within {}s",
                self.timeout.as_secs()
            )),
            Ok(r) => r.map_err(|e| {
                let why = match e {
                    rmcp::ServiceError::UnexpectedResponse => "the answer is JSON-RPC, but not \
                        a result of this request's shape (a field missing or of the wrong type)"
                        .to_owned(),
                    rmcp::ServiceError::TransportClosed => "the connection closed without an \
                        answer: the server's answer held no JSON-RPC message the client could \
                        read, or the server went away (Transport closed)"
                        .to_owned(),
                    e => e.to_string(),
                };
                anyhow!(crate::secret::redact(&format!(
                    "{what} at {}: {why}",
                    self.url
                )))
            }),
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
