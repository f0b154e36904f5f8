//! The one HTTP client of the harness: every call has a timeout and is recorded, redacted,
//! into the caller's [`Evidence`].
//!
//! Requests are built loosely (plain parameter lists) on purpose: a conformance suite must
//! be able to send the wrong thing, such as a missing verifier or a foreign redirect URI.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::evidence::{Evidence, Exchange};
use crate::secret::{Secret, redact};

/// Default timeout of one HTTP call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest body the harness reads: anything the components answer is far smaller, and
/// a server that sends more must not exhaust the machine's memory.
pub const MAX_BODY: usize = 32 << 20;

/// A transport failure: the call broke before any HTTP status came back (or the body was
/// cut off, or too large to read).
#[derive(Debug, thiserror::Error)]
#[error("{method} {url}: {message}")]
pub struct HttpError {
    pub method: String,
    pub url: String,
    pub message: String,
}

/// An HTTP response with its body fully read (the harness only sees small bodies).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; the error names the URL, the content type, the JSON path
    /// of a field that does not fit (`authorization_servers[0]`), and shows the (redacted)
    /// body.
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        let parsed = match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(v) => de.end().map(|()| v).map_err(|e| e.to_string()),
            Err(e) => Err(match e.path().to_string().as_str() {
                "." => e.inner().to_string(),
                p => format!("at `{p}`: {}", e.inner()),
            }),
        };
        parsed.map_err(|why| {
            anyhow::anyhow!(
                "response of {} (HTTP {}, Content-Type {}) is not the expected JSON: {why}; body: {}",
                self.url,
                self.status,
                self.header("content-type").unwrap_or("(none)"),
                truncate(&redact(&self.text()), 500)
            )
        })
    }

    pub fn json_value(&self) -> anyhow::Result<Value> {
        self.json()
    }

    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `error` and `error_description` of an OAuth error body, if it is one.
    pub fn oauth_error(&self) -> Option<(String, Option<String>)> {
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        let error = v.get("error")?.as_str()?.to_owned();
        let desc = v
            .get("error_description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some((error, desc))
    }

    /// A one-line summary for failure messages: status, OAuth error, or body start.
    pub fn summary(&self) -> String {
        match self.oauth_error() {
            Some((e, Some(d))) => format!("HTTP {} {e}: {d}", self.status),
            Some((e, None)) => format!("HTTP {} {e}", self.status),
            None => format!(
                "HTTP {} {}",
                self.status,
                truncate(&redact(&self.text()), 200)
            ),
        }
    }
}

enum Body {
    Form(Vec<(String, String)>),
    Json(Value),
    Raw { content_type: String, text: String },
}

/// Client handle; cheap to clone. Records into its evidence when it has one.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    evidence: Option<Evidence>,
    timeout: Duration,
}

/// Where the harness's own HTTP traffic goes: straight to each component, or, in the
/// mutation self-test, through its interposer (which can make one component answer 5xx
/// or stall). Set once per process.
static ROUTE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sends every later request of this process's clients (and its browsers) through the
/// HTTP proxy at `url`. Only the mutation self-test does this.
pub fn route_through(url: &str) -> anyhow::Result<()> {
    ROUTE
        .set(url.to_owned())
        .map_err(|_| anyhow::anyhow!("the harness's traffic is already routed"))
}

/// The proxy the harness's traffic goes through, if any.
pub fn route() -> Option<&'static str> {
    ROUTE.get().map(String::as_str)
}

/// How long an idle pooled connection may be reused: under uvicorn's keep-alive of 5 s
/// (the MCP servers'), so the harness never sends on a connection the server is closing.
/// MCP-14 waits for its token to expire between two requests, and once got "Connection
/// reset by peer" on the second.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A client builder as the harness uses them: no redirects followed (a check reads
/// them), a connect timeout, idle connections dropped before a server drops them, and no
/// proxy from the environment (every component is on loopback) unless [`route_through`]
/// set one.
pub fn client_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .no_proxy();
    match route().map(reqwest::Proxy::all) {
        Some(Ok(proxy)) => builder.proxy(proxy),
        _ => builder,
    }
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let client = client_builder()
            .build()
            .expect("a reqwest client without TLS always builds");
        Self {
            client,
            evidence: None,
            timeout,
        }
    }

    /// The same client, recording into `evidence`.
    pub fn recording(&self, evidence: &Evidence) -> Http {
        Http {
            evidence: Some(evidence.clone()),
            ..self.clone()
        }
    }

    pub fn evidence(&self) -> Option<&Evidence> {
        self.evidence.as_ref()
    }

    pub fn request(&self, method: Method, url: impl Into<String>) -> Request {
        Request {
            http: self.clone(),
            method,
            url: url.into(),
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            body_summary: None,
            timeout: self.timeout,
        }
    }

    pub fn get(&self, url: impl Into<String>) -> Request {
        self.request(Method::GET, url)
    }
    pub fn post(&self, url: impl Into<String>) -> Request {
        self.request(Method::POST, url)
    }
    pub fn put(&self, url: impl Into<String>) -> Request {
        self.request(Method::PUT, url)
    }
    pub fn delete(&self, url: impl Into<String>) -> Request {
        self.request(Method::DELETE, url)
    }
}

/// A request being built. Nothing is validated: wrong requests are sent as written.
pub struct Request {
    http: Http,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<Body>,
    body_summary: Option<String>,
    timeout: Duration,
}

impl Request {
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn bearer(self, token: &Secret) -> Self {
        self.header("Authorization", format!("Bearer {}", token.expose()))
    }

    pub fn basic(self, user: &str, password: &Secret) -> Self {
        use base64::Engine;
        let raw = format!("{user}:{}", password.expose());
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        // The encoded form is as secret as the password itself.
        Secret::new(password.kind(), encoded.clone());
        self.header("Authorization", format!("Basic {encoded}"))
    }

    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.body = Some(Body::Form(pairs));
        self
    }

    pub fn json(mut self, value: &Value) -> Self {
        self.body = Some(Body::Json(value.clone()));
        self
    }

    pub fn raw(mut self, content_type: &str, text: impl Into<String>) -> Self {
        self.body = Some(Body::Raw {
            content_type: content_type.to_owned(),
            text: text.into(),
        });
        self
    }

    /// Records `summary` instead of the request body (e.g. a whole realm file).
    pub fn evidence_body(mut self, summary: impl Into<String>) -> Self {
        self.body_summary = Some(summary.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request. An HTTP error status is a [`Response`], not an `Err`: refusals
    /// are evidence. `Err` means the call itself broke (refused, reset, timed out).
    pub async fn send(self) -> Result<Response, HttpError> {
        let started = Instant::now();
        let mut exchange = self.exchange_skeleton();
        let result = self.execute().await;
        exchange.elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(resp) => {
                // The server logs the sessions it opens: redacted there too.
                if let Some(id) = resp.header("mcp-session-id") {
                    crate::secret::Secret::new(crate::secret::SecretKind::SessionId, id);
                }
                exchange.status = Some(resp.status);
                exchange.response_headers = redact_headers(&resp.headers);
                exchange.response_body = recorded_body(&resp.body, resp.header("content-type"));
            }
            Err(e) => exchange.error = Some(redact(&e.message)),
        }
        if let Some(ev) = &self.http_evidence() {
            ev.record(exchange);
        }
        result
    }

    fn http_evidence(&self) -> Option<Evidence> {
        self.http.evidence.clone()
    }

    fn exchange_skeleton(&self) -> Exchange {
        let url = if self.query.is_empty() {
            self.url.clone()
        } else {
            let q: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", redact_field(k, v)))
                .collect();
            format!("{}?{}", self.url, q.join("&"))
        };
        let request_body = self.body_summary.clone().or_else(|| {
            self.body.as_ref().map(|b| match b {
                Body::Form(pairs) => pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", redact_field(k, v)))
                    .collect::<Vec<_>>()
                    .join("&"),
                Body::Json(v) => redact_json(v).to_string(),
                Body::Raw { text, .. } => redact(text),
            })
        });
        Exchange {
            method: self.method.to_string(),
            url: redact(&url),
            request_headers: redact_headers(&self.headers),
            request_body: request_body.map(|b| truncate(&b, 8000)),
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            error: None,
            elapsed_ms: 0,
        }
    }

    async fn execute(&self) -> Result<Response, HttpError> {
        let fail = |message: String| HttpError {
            method: self.method.to_string(),
            url: redact(&self.url),
            message,
        };
        let mut rb = self
            .http
            .client
            .request(self.method.clone(), &self.url)
            .timeout(self.timeout);
        if !self.query.is_empty() {
            rb = rb.query(&self.query);
        }
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        rb = match &self.body {
            None => rb,
            Some(Body::Form(pairs)) => rb.form(pairs),
            Some(Body::Json(v)) => rb.json(v),
            Some(Body::Raw { content_type, text }) => {
                rb.header("Content-Type", content_type).body(text.clone())
            }
        };
        let resp = rb
            .send()
            .await
            .map_err(|e| fail(describe(&e, self.timeout)))?;
        let status = resp.status().as_u16();
        let url = resp.url().to_string();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| fail(format!("reading the body: {}", describe(&e, self.timeout))))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(fail(format!(
                    "HTTP {status}: the body is larger than {} MiB; stopped reading it",
                    MAX_BODY >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            url,
            headers,
            body,
        })
    }
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s (timeout)", timeout.as_secs_f32());
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn is_sensitive(key: &str) -> bool {
    crate::secret::SECRET_PARAMETERS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

fn redact_field(key: &str, value: &str) -> String {
    if is_sensitive(key) && !value.is_empty() {
        format!("[REDACTED {key} #{}]", crate::secret::fingerprint(value))
    } else {
        redact(value)
    }
}

/// Redacts sensitive keys anywhere in a JSON document, then known values.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if is_sensitive(k) => Value::String(redact_field(k, s)),
                        other => redact_json(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::String(s) => Value::String(redact(s)),
        other => other.clone(),
    }
}

fn redact_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            let shown = match lower.as_str() {
                "authorization" => match v.split_once(' ') {
                    Some((scheme, cred)) => {
                        format!("{scheme} [REDACTED #{}]", crate::secret::fingerprint(cred))
                    }
                    None => "[REDACTED]".to_owned(),
                },
                "cookie" | "set-cookie" => "[REDACTED]".to_owned(),
                // An MCP session ID lets whoever holds it act on the session (with a token).
                "mcp-session-id" => format!("[REDACTED #{}]", crate::secret::fingerprint(v)),
                _ => redact(v),
            };
            (k.clone(), shown)
        })
        .collect()
}

fn recorded_body(body: &[u8], content_type: Option<&str>) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let is_json = content_type.is_some_and(|c| c.contains("json"));
    let shown = match serde_json::from_str::<Value>(&text) {
        Ok(v) if is_json || text.trim_start().starts_with('{') => redact_json(&v).to_string(),
        _ if text.contains("=") && content_type.is_some_and(|c| c.contains("form")) => {
            redact_form_text(&text)
        }
        _ => redact(&text),
    };
    Some(truncate(&shown, 8000))
}

fn redact_form_text(text: &str) -> String {
    text.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => format!("{k}={}", redact_field(k, v)),
            None => redact(pair),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// At most `max` bytes of `s`, cut on a char boundary, with a marker when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_lose_sensitive_keys_at_any_depth() {
        let v = serde_json::json!({
            "client_id": "abc",
            "client_secret": "very-secret-value",
            "nested": [{"refresh_token": "rt-value-1234"}]
        });
        let red = redact_json(&v).to_string();
        assert!(red.contains("\"client_id\":\"abc\""));
        assert!(!red.contains("very-secret-value"));
        assert!(!red.contains("rt-value-1234"));
    }

    #[test]
    fn authorization_headers_keep_only_the_scheme() {
        let h = redact_headers(&[("Authorization".into(), "Bearer abc.def.ghi".into())]);
        assert!(h[0].1.starts_with("Bearer [REDACTED #"), "{:?}", h);
    }

    #[test]
    fn mcp_session_ids_are_shown_by_fingerprint() {
        let id = "73e56b8c4a294aa7b7331f0889b68228";
        let h = redact_headers(&[("Mcp-Session-Id".into(), id.into())]);
        assert!(!h[0].1.contains(id), "{:?}", h);
        assert!(h[0].1.starts_with("[REDACTED #"), "{:?}", h);
    }

    #[test]
    fn form_fields_are_redacted_by_name() {
        assert_eq!(
            redact_form_text("grant_type=x&code=the-code-value")
                .split('&')
                .next()
                .unwrap(),
            "grant_type=x"
        );
        assert!(!redact_form_text("code=the-code-value").contains("the-code-value"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "ééééé";
        let t = truncate(s, 3);
        assert!(t.starts_with("é"));
        assert!(t.contains("bytes in all"));
    }
}
