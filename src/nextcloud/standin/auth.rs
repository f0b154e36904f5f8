//! Who is calling, in Nextcloud's login order: user_oidc's bearer validation first, then
//! Nextcloud's own token login (which also takes `Bearer <app password>`), HTTP Basic
//! with `loginName:appPassword` last. A refused bearer token means "not logged in";
//! wrong Basic credentials are refused before routing (see [`Authentication::WrongBasic`]).

use axum::http::HeaderMap;

use super::accounts::AppPasswordKey;
use super::log::AuthKind;
use super::state::{StandInState, lock};
use crate::secret::fingerprint;

/// How a logged-in request authenticated.
#[derive(Clone, Debug)]
pub(crate) enum Via {
    /// A Keycloak JWT accepted by the user_oidc validation.
    Oidc,
    /// `Authorization: Bearer <app password>`.
    BearerAppPassword(AppPasswordKey),
    /// `Authorization: Basic loginName:appPassword`.
    BasicAppPassword(AppPasswordKey),
}

#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub(crate) uid: String,
    pub(crate) via: Via,
}

/// The caller of one request, put in the request's extensions by the router.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) auth: AuthKind,
    pub(crate) login: Option<Login>,
    /// `OCS-APIRequest: true` was sent (Nextcloud's CSRF exemption for API clients).
    pub(crate) ocs_api_request: bool,
    /// An `Authorization: Bearer …` header was sent, valid or not.
    pub(crate) bearer_header: bool,
    /// Why the bearer token logged no one in, if it did not (redacted).
    pub(crate) refusal: Option<String>,
}

impl Caller {
    /// The login an OCS endpoint may use. Nextcloud's SecurityMiddleware lets an OCS call
    /// skip the CSRF token only with `OCS-APIRequest: true` or a bearer header; without
    /// either, the stand-in treats the caller as not logged in (the strict choice: what
    /// Nextcloud answers there is unresolved in its sources).
    pub(crate) fn ocs_login(&self) -> Option<&Login> {
        self.login
            .as_ref()
            .filter(|_| self.ocs_api_request || self.bearer_header)
    }
}

pub(crate) enum Authentication {
    Caller(Caller),
    /// Basic credentials were given and are wrong: Nextcloud throws a LoginException
    /// ("if credentials were provided, they need to be valid") before any routing.
    WrongBasic(Caller),
}

/// Resolves the caller of a request from its headers.
pub(crate) async fn authenticate(state: &StandInState, headers: &HeaderMap) -> Authentication {
    let ocs_api_request = headers
        .get("OCS-APIRequest")
        .is_some_and(|v| v.as_bytes() == b"true");
    let mut caller = Caller {
        auth: AuthKind::None,
        login: None,
        ocs_api_request,
        bearer_header: false,
        refusal: None,
    };
    let Some((scheme, credential)) = headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return Authentication::Caller(caller);
    };
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        caller.bearer_header = true;
        bearer_login(state, credential, &mut caller).await;
        Authentication::Caller(caller)
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic_login(state, credential, caller)
    } else {
        Authentication::Caller(caller)
    }
}

async fn bearer_login(state: &StandInState, token: &str, caller: &mut Caller) {
    caller.auth = AuthKind::Bearer {
        fingerprint: fingerprint(token),
    };
    // Only a JWT-shaped token can pass user_oidc (it fails to decode anything else), so
    // other tokens skip it without fetching the provider's keys.
    let oidc_refusal = if token.split('.').count() == 3 {
        match state.bearer.validate(token).await {
            Ok(oidc) => {
                lock(&state.accounts).provision(&oidc.uid, &oidc.display_name);
                caller.login = Some(Login {
                    uid: oidc.uid,
                    via: Via::Oidc,
                });
                return;
            }
            Err(refusal) => {
                tracing::debug!("stand-in: bearer token refused: {refusal}");
                format!("user_oidc: {refusal}")
            }
        }
    } else {
        "not a JWT".to_owned()
    };
    if let Some((key, owner)) = lock(&state.accounts).app_password(token) {
        caller.auth = AuthKind::BearerAppPassword {
            user: owner.uid.clone(),
        };
        caller.login = Some(Login {
            uid: owner.uid,
            via: Via::BearerAppPassword(key),
        });
        return;
    }
    caller.refusal = Some(crate::secret::redact(&format!(
        "{oidc_refusal}; not an app password either"
    )));
}

/// Basic `loginName:appPassword`. Credentials that do not decode, or with an empty user or
/// password, are no credentials at all (PHP does not set `PHP_AUTH_USER`/`PHP_AUTH_PW`).
fn basic_login(state: &StandInState, credential: &str, mut caller: Caller) -> Authentication {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credential)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Authentication::Caller(caller);
    };
    if user.is_empty() || password.is_empty() {
        return Authentication::Caller(caller);
    }
    caller.auth = AuthKind::Basic {
        user: user.to_owned(),
    };
    match lock(&state.accounts).app_password(password) {
        Some((key, owner)) if owner.login_name == user => {
            caller.login = Some(Login {
                uid: owner.uid,
                via: Via::BasicAppPassword(key),
            });
            Authentication::Caller(caller)
        }
        _ => Authentication::WrongBasic(caller),
    }
}
