//! User tokens for the catalogue: obtained through the browser on Keycloak's login page
//! (authorization code + PKCE S256, by the harness's own DCR-registered public client),
//! cached per user and scope set, refreshed when they near expiry.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::Session;
use crate::browser::login::{Credentials, Flow};
use crate::http::Http;
use crate::oauth::dcr::Registration;
use crate::oauth::pkce::{AuthorizationRequest, Pkce, random_value};
use crate::oauth::token::{self, TokenOutcome, Tokens};

/// Refresh a cached token when it has less than this left.
const MIN_REMAINING: Duration = Duration::from_secs(60);

/// Cache and client of the session's user tokens.
#[derive(Default)]
pub struct UserTokens {
    login_client: tokio::sync::OnceCell<Registration>,
    cache: tokio::sync::Mutex<HashMap<String, (Tokens, Instant)>>,
    /// Users whose browser profile holds a Keycloak session that later logins reuse, or
    /// for whom starting one failed (it is not tried again).
    with_sso: tokio::sync::Mutex<HashSet<String>>,
}

/// The scope whose first redemption in a session ends that session (see
/// [`Session::keep_sso`]).
const OFFLINE_ACCESS: &str = "offline_access";

/// The outcome of one browser authorization, for checks that need more than tokens.
pub struct Authorized {
    pub tokens: Tokens,
    pub client_id: String,
    pub nonce: String,
}

impl Session {
    /// The harness's public client (RFC 7591, anonymous), registered once per session and
    /// deleted at teardown like every other.
    pub async fn login_client(&self, http: &Http) -> anyhow::Result<&Registration> {
        self.tokens
            .login_client
            .get_or_try_init(|| async {
                let metadata = json!({
                    "redirect_uris": [self.listener.redirect_uri()],
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                });
                self.register_client(http, &self.realm, &metadata, None)
                    .await?
                    .client("registering the harness's login client")
            })
            .await
    }

    /// A fresh access token (and refresh token) of `user` for `scope` (space-separated,
    /// `openid` included by the caller when wanted), from the cache when it has a minute
    /// left, refreshed when it can be, else through the browser.
    pub async fn user_tokens(
        &self,
        http: &Http,
        user: &str,
        scope: &str,
    ) -> anyhow::Result<Tokens> {
        let key = format!("{user}|{scope}");
        let mut cache = self.tokens.cache.lock().await;
        if let Some((t, at)) = cache.get(&key) {
            let left = Duration::from_secs(t.expires_in.unwrap_or(0)).saturating_sub(at.elapsed());
            if left > MIN_REMAINING {
                return Ok(t.clone());
            }
            if let Some(rt) = &t.refresh_token {
                let client = self.login_client(http).await?;
                let meta = self.provider(http).await?;
                if let TokenOutcome::Issued(fresh) =
                    token::refresh(http, meta.token_endpoint()?, &client.client_id, None, rt)
                        .await?
                {
                    cache.insert(key, (fresh.clone(), Instant::now()));
                    return Ok(fresh);
                }
            }
        }
        let fresh = self
            .authorize_user(http, user, scope, &format!("user-token-{user}"))
            .await?
            .tokens;
        cache.insert(key, (fresh.clone(), Instant::now()));
        Ok(fresh)
    }

    /// A browser flow in `user`'s profile that logs in as `user` (with the realm file's
    /// password) and accepts consent; "not applicable" when the realm gives no password.
    /// `label` names the evidence (screenshots) a failure leaves.
    pub fn user_flow<'a>(
        &'a self,
        user: &'a str,
        label: &'a str,
        timeout: Duration,
    ) -> anyhow::Result<Flow<'a>> {
        let password = self.realm.require_password(user)?;
        let browser = self
            .browser
            .as_ref()
            .context("this session has no browser (the check should declare Need::Browser)")?;
        Ok(Flow {
            browser,
            profile: user,
            listener: &self.listener,
            login: Some(Credentials {
                username: user,
                password,
            }),
            accept_consent: true,
            label,
            timeout,
        })
    }

    /// One authorization code flow with PKCE S256 for `user` through their browser profile,
    /// redeemed by the harness's login client. Not cached.
    pub async fn authorize_user(
        &self,
        http: &Http,
        user: &str,
        scope: &str,
        label: &str,
    ) -> anyhow::Result<Authorized> {
        self.keep_sso(http, user, scope).await;
        let authorized = self.authorize_user_once(http, user, scope, label).await?;
        if !asks_offline_access(scope) {
            self.tokens.with_sso.lock().await.insert(user.to_owned());
        }
        Ok(authorized)
    }

    /// Keycloak (26.1 and later) removes the session a login created when the first code
    /// redeemed in it asked for `offline_access`, so every later flow of that user logs in
    /// again: a password hash in Keycloak and a login page in Chromium each time (the
    /// scope map's 30-odd flows all ask for it but one). Before the first such flow of a
    /// user, one for `openid` alone logs in and leaves a session later flows reuse. That
    /// flow's failure only costs those logins, so it is logged, not raised, and not
    /// retried: the flows that need tokens log in themselves, as they would have anyway.
    async fn keep_sso(&self, http: &Http, user: &str, scope: &str) {
        if !asks_offline_access(scope) {
            return;
        }
        let mut with_sso = self.tokens.with_sso.lock().await;
        if !with_sso.insert(user.to_owned()) {
            return;
        }
        let started = self
            .authorize_user_once(http, user, "openid", &format!("sso-{user}"))
            .await;
        if let Err(e) = started {
            tracing::debug!("a session for {user} to reuse: {e:#}");
        }
    }

    async fn authorize_user_once(
        &self,
        http: &Http,
        user: &str,
        scope: &str,
        label: &str,
    ) -> anyhow::Result<Authorized> {
        let client = self.login_client(http).await?;
        let meta = self.provider(http).await?;
        let (pkce, state, nonce) = (Pkce::new(), random_value(), random_value());
        let redirect_uri = self.listener.redirect_uri();
        let request =
            AuthorizationRequest::code(&client.client_id, &redirect_uri, scope, &state, &nonce)
                .s256(&pkce);
        let endpoint = meta
            .authorization_endpoint
            .as_deref()
            .context("discovery has no authorization_endpoint")?;
        let flow = self.user_flow(user, label, Duration::from_secs(45))?;
        let callback = flow.run(&request.url(endpoint), &state).await?.callback()?;
        let code = callback.code()?;
        let tokens = token::request(
            http,
            meta.token_endpoint()?,
            &[
                ("grant_type", "authorization_code"),
                ("code", code.expose()),
                ("redirect_uri", &redirect_uri),
                ("client_id", &client.client_id),
                ("code_verifier", pkce.verifier.expose()),
            ],
        )
        .await?
        .issued(&format!("redeeming {user}'s authorization code"))?;
        Ok(Authorized {
            tokens,
            client_id: client.client_id.clone(),
            nonce,
        })
    }
}

fn asks_offline_access(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s == OFFLINE_ACCESS)
}

#[cfg(test)]
mod tests {
    use super::asks_offline_access;

    #[test]
    fn offline_access_is_asked_only_as_a_whole_scope() {
        assert!(asks_offline_access("openid offline_access notes.read"));
        assert!(asks_offline_access("offline_access"));
        assert!(!asks_offline_access("openid notes.read"));
        assert!(!asks_offline_access("openid offline_access_x"));
        assert!(!asks_offline_access(""));
    }
}
