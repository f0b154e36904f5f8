//! Login Flow v2 (ClientFlowLoginV2Controller): a client starts a flow, a user grants it
//! at the login URL, the client polls once for `server`, `loginName`, `appPassword`.
//!
//! In Nextcloud the grant happens in a browser session at the login URL. The stand-in has
//! no login page, so the grant is `POST <login URL>/grant` with the granting user's
//! Keycloak access token as `Authorization: Bearer`, validated exactly as user_oidc
//! validates bearer tokens. The app password belongs to the user who granted, never to
//! whoever polls: that is the property the reference's ownership check relies on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Json, Response};
use rand::Rng;
use serde_json::json;

use super::auth::{Caller, Via};
use super::state::{StandInState, lock};
use crate::secret::{Secret, SecretKind};

/// Length of the poll and login tokens: Nextcloud makes 128 characters of `[A-Za-z0-9]`.
const TOKEN_LEN: usize = 128;

enum Grant {
    Pending,
    Granted {
        login_name: String,
        app_password: Secret,
    },
}

struct Flow {
    login_token: String,
    started: Instant,
    grant: Grant,
}

/// The flows in progress, keyed by poll token.
pub(crate) struct LoginFlows {
    ttl: Duration,
    by_poll_token: HashMap<String, Flow>,
}

impl LoginFlows {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            by_poll_token: HashMap::new(),
        }
    }

    /// Forgets expired flows (Nextcloud's cleanup job; here on every access).
    fn prune(&mut self) {
        let ttl = self.ttl;
        self.by_poll_token.retain(|_, f| f.started.elapsed() < ttl);
    }

    fn by_login_token(&mut self, login_token: &str) -> Option<&mut Flow> {
        self.prune();
        self.by_poll_token
            .values_mut()
            .find(|f| f.login_token == login_token)
    }
}

fn random_token() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(TOKEN_LEN)
        .map(char::from)
        .collect()
}

/// `POST /index.php/login/v2`: public; starts a flow.
pub(crate) async fn start(State(state): State<Arc<StandInState>>) -> Json<serde_json::Value> {
    // Both tokens are secrets (the poll token fetches an app password); registering them
    // makes the request log's redaction replace them wherever they appear in a path.
    let poll_token = Secret::new(SecretKind::Token, random_token());
    let login_token = Secret::new(SecretKind::Token, random_token());
    let base = &state.base_url;
    let answer = json!({
        "poll": {"token": poll_token.expose(), "endpoint": format!("{base}/index.php/login/v2/poll")},
        "login": format!("{base}/index.php/login/v2/flow/{}", login_token.expose()),
    });
    let mut flows = lock(&state.flows);
    flows.prune();
    flows.by_poll_token.insert(
        poll_token.expose().to_owned(),
        Flow {
            login_token: login_token.expose().to_owned(),
            started: Instant::now(),
            grant: Grant::Pending,
        },
    );
    Json(answer)
}

/// `POST /index.php/login/v2/poll` with `token=` (form body or query): 404 `[]` while
/// pending, when expired or unknown; the credentials exactly once after the grant.
pub(crate) async fn poll(
    State(state): State<Arc<StandInState>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let from_query = uri.query().map(str::as_bytes).unwrap_or_default();
    let token = [body.as_ref(), from_query].into_iter().find_map(|raw| {
        url::form_urlencoded::parse(raw)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let not_found = || (StatusCode::NOT_FOUND, Json(json!([]))).into_response();
    let Some(token) = token else {
        return not_found();
    };
    let mut flows = lock(&state.flows);
    flows.prune();
    let (login_name, app_password) = match flows.by_poll_token.remove(&token) {
        Some(Flow {
            grant:
                Grant::Granted {
                    login_name,
                    app_password,
                },
            ..
        }) => (login_name, app_password),
        Some(pending) => {
            flows.by_poll_token.insert(token, pending);
            return not_found();
        }
        None => return not_found(),
    };
    Json(json!({
        "server": state.base_url,
        "loginName": login_name,
        "appPassword": app_password.expose(),
    }))
    .into_response()
}

/// `GET <login URL>`: where Nextcloud shows its login page; here, how to grant.
pub(crate) async fn landing(
    State(state): State<Arc<StandInState>>,
    Path(login_token): Path<String>,
) -> Response {
    let pending = matches!(
        lock(&state.flows).by_login_token(&login_token),
        Some(Flow {
            grant: Grant::Pending,
            ..
        })
    );
    if !pending {
        return (
            StatusCode::FORBIDDEN,
            Html("<p>Your login token is invalid or has expired.</p>\n"),
        )
            .into_response();
    }
    Html(
        "<!doctype html>\n<title>Nextcloud stand-in: grant access</title>\n\
         <p>This is the Nextcloud stand-in of mcp-authz-harness. It has no login page: to \
         grant this Login Flow v2, <code>POST</code> to this URL followed by \
         <code>/grant</code> with <code>Authorization: Bearer &lt;Keycloak access \
         token&gt;</code>. The app password will belong to the user of that token.</p>\n",
    )
    .into_response()
}

/// `POST <login URL>/grant` with a Keycloak bearer token: the user of that token grants
/// the flow, and a new app password of theirs waits for the poll. Anything but a valid
/// Keycloak token (an app password included) is "not logged in"; a flow that is unknown,
/// expired or already granted is refused.
pub(crate) async fn grant(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    Path(login_token): Path<String>,
) -> Response {
    let Some(uid) = caller
        .login
        .as_ref()
        .filter(|l| matches!(l.via, Via::Oidc))
        .map(|l| l.uid.clone())
    else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Current user is not logged in"})),
        )
            .into_response();
    };
    let mut flows = lock(&state.flows);
    let Some(flow) = flows.by_login_token(&login_token) else {
        return refused("Your login token is invalid or has expired");
    };
    if !matches!(flow.grant, Grant::Pending) {
        return refused("This login flow has already been granted");
    }
    let app_password = lock(&state.accounts).issue_app_password(&uid);
    flow.grant = Grant::Granted {
        login_name: uid.clone(),
        app_password,
    };
    Json(json!({"granted": true, "loginName": uid})).into_response()
}

fn refused(message: &str) -> Response {
    (StatusCode::FORBIDDEN, Json(json!({"message": message}))).into_response()
}
