//! The interposer of fault mutants: an HTTP forward proxy on loopback that every request
//! of the harness (its clients, its MCP client, its Chromium) goes through once
//! [`crate::http::route_through`] points there. It passes everything on unchanged (the
//! Host header and URLs stay the components' own, so issuers and redirects are as
//! without it) until a fault is switched on for one component's origin: then that
//! component answers 503, or never answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use tokio::task::JoinHandle;

/// What a faulty component does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Every request answers 503.
    ServerError,
    /// Every request waits, unanswered, until the caller gives up.
    Stall,
}

type Faults = Arc<Mutex<HashMap<String, Fault>>>;

/// The running interposer.
pub struct Interposer {
    url: String,
    faults: Faults,
    task: JoinHandle<()>,
}

/// How long a stalled request is held before the interposer lets go (longer than any
/// timeout of the harness, so the caller's own timeout is what fires).
const STALL: Duration = Duration::from_secs(600);

impl Interposer {
    /// Binds `127.0.0.1:0` and starts forwarding.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the interposer on 127.0.0.1")?;
        let url = format!("http://{}", listener.local_addr()?);
        let faults = Faults::default();
        let upstream = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .context("building the interposer's client")?;
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((faults.clone(), upstream));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, faults, task })
    }

    /// `http://127.0.0.1:PORT`: what [`crate::http::route_through`] takes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Switches `fault` on (or off, with `None`) for every request to `origin`
    /// (`http://127.0.0.1:PORT`).
    pub fn set(&self, origin: &str, fault: Option<Fault>) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let origin = origin.trim_end_matches('/').to_owned();
        match fault {
            Some(f) => faults.insert(origin, f),
            None => faults.remove(&origin),
        };
    }
}

impl Drop for Interposer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and those of the proxy itself stay here.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let hop: [HeaderName; 4] = [
        HeaderName::from_static("connection"),
        HeaderName::from_static("proxy-connection"),
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("transfer-encoding"),
    ];
    headers
        .iter()
        .filter(|(k, _)| !hop.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn forward(
    State((faults, upstream)): State<(Faults, reqwest::Client)>,
    req: Request,
) -> Response {
    let uri = req.uri().clone();
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        let why = "the interposer is a forward proxy: requests carry absolute URLs";
        return (StatusCode::BAD_REQUEST, why).into_response();
    };
    let origin = format!("{scheme}://{authority}");
    let fault = faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&origin)
        .copied();
    match fault {
        Some(Fault::ServerError) => {
            let body = "fault injected by the mcp-authz-harness mutation self-test";
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
        Some(Fault::Stall) => {
            tokio::time::sleep(STALL).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        None => {}
    }
    let (parts, body) = req.into_parts();
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let sent = upstream
        .request(parts.method, uri.to_string())
        .headers(end_to_end(&parts.headers))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let mut out = Response::builder().status(resp.status());
            if let Some(h) = out.headers_mut() {
                *h = end_to_end(resp.headers());
            }
            let stream = resp.bytes_stream().map_err(std::io::Error::other);
            out.body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("interposer: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain client through the interposer: forwarded unchanged, then 503 when the
    /// origin's fault is on, then forwarded again.
    #[tokio::test]
    async fn forwards_until_a_fault_is_switched_on() {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/hello"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("hi"))
            .mount(&server)
            .await;
        let interposer = Interposer::start().await.unwrap();
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(interposer.url()).unwrap())
            .build()
            .unwrap();
        let get = || async {
            let r = client
                .get(format!("{}/hello", server.uri()))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        assert_eq!(get().await, (200, "hi".to_owned()));
        interposer.set(&server.uri(), Some(Fault::ServerError));
        assert_eq!(get().await.0, 503);
        interposer.set(&server.uri(), None);
        assert_eq!(get().await, (200, "hi".to_owned()));
    }

    #[tokio::test]
    async fn a_stalled_origin_leaves_the_caller_to_its_own_timeout() {
        let server = wiremock::MockServer::start().await;
        let interposer = Interposer::start().await.unwrap();
        interposer.set(&server.uri(), Some(Fault::Stall));
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(interposer.url()).unwrap())
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let err = client.get(server.uri()).send().await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }
}
