//! OCS v2 (`/ocs/v2.php/…`) and `/status.php`.
//!
//! Nextcloud wraps every OCS answer in `{"ocs":{"meta":{status, statuscode, message},
//! "data":…}}`, as JSON for `?format=json` or `Accept: application/json` and as XML
//! otherwise. The stand-in speaks JSON; it renders XML only for envelopes without data
//! (errors, the app-password deletion), whose XML is fixed, so that a client that never
//! asks for JSON (the reference's app-password revocation does not) still gets the
//! status it would get from Nextcloud. Anything else asked as XML gets a 406.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::{Value, json};

use super::auth::{Caller, Via};
use super::state::{StandInState, lock};

/// The version the stand-in claims: Nextcloud 32, the reference deployment's major.
const VERSION: (u32, u32, u32) = (32, 0, 0);

/// How the client asked OCS to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OcsFormat {
    Json,
    Xml,
}

impl OcsFormat {
    /// `format` in the query wins; else an `Accept` naming `application/json`; else XML.
    pub(crate) fn of(uri: &Uri, headers: &HeaderMap) -> Self {
        let format = uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "format")
                .map(|(_, v)| v.into_owned())
        });
        let accept_json = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        match format.as_deref() {
            Some("json") => Self::Json,
            Some(_) => Self::Xml,
            None if accept_json => Self::Json,
            None => Self::Xml,
        }
    }
}

/// One OCS v2 answer before rendering.
pub(crate) struct OcsReply {
    http: StatusCode,
    statuscode: u16,
    message: &'static str,
    data: Value,
    /// `WWW-Authenticate: Basic realm="Authorisation Required"` (OC_API::respond on 997).
    basic_challenge: bool,
}

impl OcsReply {
    pub(crate) fn ok(data: Value) -> Self {
        Self {
            http: StatusCode::OK,
            statuscode: 200,
            message: "OK",
            data,
            basic_challenge: false,
        }
    }

    /// What OCSMiddleware makes of a NotLoggedInException on v2.
    pub(crate) fn not_logged_in() -> Self {
        Self {
            http: StatusCode::UNAUTHORIZED,
            statuscode: 997,
            message: "Current user is not logged in",
            data: json!([]),
            basic_challenge: false,
        }
    }

    /// Wrong Basic credentials: ocs/v2.php catches the LoginException and answers 997.
    pub(crate) fn unauthorised() -> Self {
        Self {
            http: StatusCode::UNAUTHORIZED,
            statuscode: 997,
            message: "Unauthorised",
            data: json!([]),
            basic_challenge: true,
        }
    }

    pub(crate) fn forbidden(message: &'static str) -> Self {
        Self {
            http: StatusCode::FORBIDDEN,
            statuscode: 403,
            message,
            data: json!([]),
            basic_challenge: false,
        }
    }

    pub(crate) fn render(self, format: OcsFormat) -> Response {
        let status = if self.statuscode == 200 {
            "ok"
        } else {
            "failure"
        };
        let mut response = match format {
            OcsFormat::Json => (
                self.http,
                Json(json!({"ocs": {
                    "meta": {"status": status, "statuscode": self.statuscode, "message": self.message},
                    "data": self.data,
                }})),
            )
                .into_response(),
            OcsFormat::Xml if is_empty(&self.data) => (
                self.http,
                [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                format!(
                    "<?xml version=\"1.0\"?>\n<ocs>\n <meta>\n  <status>{status}</status>\n  \
                     <statuscode>{}</statuscode>\n  <message>{}</message>\n </meta>\n <data/>\n</ocs>\n",
                    self.statuscode, self.message
                ),
            )
                .into_response(),
            OcsFormat::Xml => return json_only(),
        };
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Authorisation Required\""),
            );
        }
        response
    }
}

fn is_empty(data: &Value) -> bool {
    match data {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn json_only() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        "This Nextcloud stand-in speaks OCS in JSON only: add ?format=json or \
         Accept: application/json.\n",
    )
        .into_response()
}

/// `GET /status.php`: public, what the reference polls every 15 s for readiness.
pub(crate) async fn status() -> Json<Value> {
    let (major, minor, micro) = VERSION;
    Json(json!({
        "installed": true,
        "maintenance": false,
        "needsDbUpgrade": false,
        "version": format!("{major}.{minor}.{micro}.0"),
        "versionstring": format!("{major}.{minor}.{micro}"),
        "edition": "",
        "productname": format!("Nextcloud ({})", super::STAND_IN_PRODUCT),
        "extendedSupport": false,
    }))
}

/// `GET /ocs/v2.php/cloud/user`: the logged-in user (UsersController::getCurrentUser).
/// The reference compares its `id` for the bearer caller and the app-password granter.
pub(crate) async fn current_user(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = OcsFormat::of(&uri, &headers);
    let Some(login) = caller.ocs_login() else {
        return OcsReply::not_logged_in().render(format);
    };
    let display_name = lock(&state.accounts).display_name(&login.uid);
    OcsReply::ok(json!({
        "enabled": true,
        "storageLocation": format!("/var/www/html/data/{}", login.uid),
        "id": login.uid,
        "firstLoginTimestamp": -1,
        "lastLoginTimestamp": -1,
        "lastLogin": 0,
        "backend": "user_oidc",
        "subadmin": [],
        "quota": {"free": 10_737_418_240u64, "used": 0, "total": 10_737_418_240u64, "relative": 0, "quota": -3},
        "manager": "",
        "email": null,
        "additional_mail": [],
        "displayname": display_name,
        "display-name": display_name,
        "phone": "",
        "address": "",
        "website": "",
        "twitter": "",
        "fediverse": "",
        "organisation": "",
        "role": "",
        "headline": "",
        "biography": "",
        "profile_enabled": "1",
        "pronouns": "",
        "groups": [],
        "language": "en",
        "locale": "",
        "notify_email": null,
        "backendCapabilities": {"setDisplayName": false, "setPassword": false},
    }))
    .render(format)
}

/// `GET /ocs/v2.php/cloud/capabilities`: public; apps add their entries only for a
/// logged-in user, as Notes does (the reference hides tools of apps not advertised).
pub(crate) async fn capabilities(
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (major, minor, micro) = VERSION;
    let mut capabilities = json!({
        "core": {
            "pollinterval": 60,
            "webdav-root": "remote.php/webdav",
            "reference-api": true,
            "mod-rewrite-working": false,
        },
    });
    if caller.ocs_login().is_some() {
        capabilities["notes"] = json!({
            "api_version": ["0.2", "1.3"],
            "version": "4.12.0",
            "notes_path": "Notes",
        });
    }
    OcsReply::ok(json!({
        "version": {
            "major": major, "minor": minor, "micro": micro,
            "string": format!("{major}.{minor}.{micro}"),
            "edition": "",
            "extendedSupport": false,
        },
        "capabilities": capabilities,
    }))
    .render(OcsFormat::of(&uri, &headers))
}

/// `DELETE /ocs/v2.php/core/apppassword`: deletes the app password the request logged in
/// with (AppPasswordController::deleteAppPassword); 403 when it used none.
pub(crate) async fn delete_app_password(
    State(state): State<Arc<StandInState>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = OcsFormat::of(&uri, &headers);
    let reply = match caller.ocs_login().map(|l| &l.via) {
        None => OcsReply::not_logged_in(),
        Some(Via::Oidc) => OcsReply::forbidden("no app password in use"),
        Some(Via::BasicAppPassword(key) | Via::BearerAppPassword(key)) => {
            lock(&state.accounts).revoke(key);
            OcsReply::ok(json!([]))
        }
    };
    reply.render(format)
}
