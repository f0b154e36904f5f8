//! Routes, and the front door every request passes: login (refusing wrong Basic
//! credentials before routing, as Nextcloud does) and the request log.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use super::auth::{Authentication, Caller, authenticate};
use super::log::RecordedRequest;
use super::ocs::{OcsFormat, OcsReply};
use super::state::StandInState;
use super::{login_flow, notes, ocs};

const NOTES: &str = "/index.php/apps/notes/api/v1/notes";
const NOTE: &str = "/index.php/apps/notes/api/v1/notes/{id}";

pub(crate) fn router(state: Arc<StandInState>) -> Router {
    Router::new()
        .route("/status.php", get(ocs::status))
        .route("/ocs/v2.php/cloud/user", get(ocs::current_user))
        .route("/ocs/v2.php/cloud/capabilities", get(ocs::capabilities))
        .route(
            "/ocs/v2.php/core/apppassword",
            delete(ocs::delete_app_password),
        )
        .route("/index.php/login/v2", post(login_flow::start))
        .route("/index.php/login/v2/poll", post(login_flow::poll))
        .route("/index.php/login/v2/flow/{token}", get(login_flow::landing))
        .route(
            "/index.php/login/v2/flow/{token}/grant",
            post(login_flow::grant),
        )
        .route(NOTES, get(notes::list).post(notes::create))
        .route(
            NOTE,
            get(notes::get).put(notes::update).delete(notes::delete),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        "Not found in the Nextcloud stand-in\n",
    )
}

/// Logs the caller in, answers wrong Basic credentials itself, records the exchange.
async fn front(
    State(state): State<Arc<StandInState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().to_string();
    let path = crate::secret::redact(request.uri().path());
    let (caller, response) = match authenticate(&state, request.headers()).await {
        Authentication::Caller(caller) => {
            request.extensions_mut().insert(caller.clone());
            (caller, next.run(request).await)
        }
        Authentication::WrongBasic(caller) => {
            let response = wrong_basic(&request);
            (caller, response)
        }
    };
    let Caller {
        auth,
        login,
        ocs_api_request,
        refusal,
        ..
    } = caller;
    state.log.record(RecordedRequest {
        method,
        path,
        auth,
        user: login.map(|l| l.uid),
        status: response.status().as_u16(),
        ocs_api_request,
        refusal,
    });
    response
}

/// Wrong Basic credentials. OCS: 401 envelope 997 `Unauthorised` with a Basic challenge
/// (ocs/v2.php). Elsewhere: index.php's LoginException answer, 401 `{"message": ""}`
/// (the exception carries no message; Nextcloud sends HTML unless the client accepts
/// JSON, the stand-in always sends JSON).
fn wrong_basic(request: &Request) -> Response {
    if request.uri().path().starts_with("/ocs/") {
        return OcsReply::unauthorised().render(OcsFormat::of(request.uri(), request.headers()));
    }
    (StatusCode::UNAUTHORIZED, Json(json!({"message": ""}))).into_response()
}
