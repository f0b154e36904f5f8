//! Token endpoint calls (RFC 6749 §4-6, RFC 8693, RFC 7009, RFC 7662).
//!
//! A refusal is a value ([`Refusal`]), not an error: checks assert on it. `Err` is kept
//! for calls that broke (transport, a 200 that is not a token response).

use std::fmt;

use anyhow::Context;
use serde_json::Value;

use crate::http::{Http, Response};
use crate::secret::{Secret, SecretKind};

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub scope: Option<String>,
    pub issued_token_type: Option<String>,
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub error: String,
    pub description: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.error)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl Refusal {
    /// Reads an error response; a body without `error` keeps its status and a summary.
    pub fn from_response(resp: &Response) -> Self {
        match resp.oauth_error() {
            Some((error, description)) => Self {
                status: resp.status,
                error,
                description,
            },
            None => Self {
                status: resp.status,
                error: "(no OAuth error in the body)".into(),
                description: Some(resp.summary()),
            },
        }
    }

    /// Whether this is exactly `status` / `error` / `description`.
    pub fn is(&self, status: u16, error: &str, description: &str) -> bool {
        self.status == status
            && self.error == error
            && self.description.as_deref() == Some(description)
    }
}

/// Issued tokens, or the server's refusal.
#[derive(Clone, Debug)]
pub enum TokenOutcome {
    Issued(Tokens),
    Refused(Refusal),
}

impl TokenOutcome {
    /// The tokens, or an error saying what the server answered instead.
    pub fn issued(self, what: &str) -> anyhow::Result<Tokens> {
        match self {
            TokenOutcome::Issued(t) => Ok(t),
            TokenOutcome::Refused(r) => anyhow::bail!("{what}: refused with {r}"),
        }
    }

    /// The refusal, or an error saying that tokens were issued.
    pub fn refused(self, what: &str) -> anyhow::Result<Refusal> {
        match self {
            TokenOutcome::Refused(r) => Ok(r),
            TokenOutcome::Issued(t) => anyhow::bail!(
                "{what}: expected a refusal, but the server issued tokens (token_type {}, scope {:?})",
                t.token_type,
                t.scope
            ),
        }
    }
}

/// POSTs `params` to the token endpoint.
pub async fn request(
    http: &Http,
    endpoint: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<TokenOutcome> {
    let resp = http.post(endpoint).form(params).send().await?;
    if resp.status != 200 {
        return Ok(TokenOutcome::Refused(Refusal::from_response(&resp)));
    }
    let v: Value = resp.json()?;
    Ok(TokenOutcome::Issued(parse_tokens(&v).with_context(
        || format!("the token response of {endpoint} (HTTP 200) is not a token response"),
    )?))
}

fn parse_tokens(v: &Value) -> anyhow::Result<Tokens> {
    let secret = |key: &str, kind| v[key].as_str().map(|s| Secret::new(kind, s));
    Ok(Tokens {
        access_token: secret("access_token", SecretKind::AccessToken).context("no access_token")?,
        token_type: v["token_type"].as_str().unwrap_or_default().to_owned(),
        expires_in: v["expires_in"].as_u64(),
        refresh_token: secret("refresh_token", SecretKind::RefreshToken),
        id_token: secret("id_token", SecretKind::IdToken),
        scope: v["scope"].as_str().map(str::to_owned),
        issued_token_type: v["issued_token_type"].as_str().map(str::to_owned),
    })
}

/// Client credentials grant (RFC 6749 §4.4) with `client_secret_post`.
pub async fn client_credentials(
    http: &Http,
    endpoint: &str,
    client_id: &str,
    secret: &Secret,
    scope: Option<&str>,
) -> anyhow::Result<TokenOutcome> {
    let mut params = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret.expose()),
    ];
    if let Some(s) = scope {
        params.push(("scope", s));
    }
    request(http, endpoint, &params).await
}

/// Refresh grant (RFC 6749 §6); `secret` for confidential clients.
pub async fn refresh(
    http: &Http,
    endpoint: &str,
    client_id: &str,
    secret: Option<&Secret>,
    refresh_token: &Secret,
) -> anyhow::Result<TokenOutcome> {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", refresh_token.expose()),
    ];
    if let Some(s) = secret {
        params.push(("client_secret", s.expose()));
    }
    request(http, endpoint, &params).await
}

/// RFC 8693 parameters; every one optional so a check can leave out or add any.
#[derive(Clone, Debug, Default)]
pub struct Exchange<'a> {
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub requested_subject: Option<&'a str>,
    pub requested_issuer: Option<&'a str>,
}

pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";

/// Token exchange (RFC 8693 §2.1) by a client authenticating with `client_secret_post`
/// (or none, when `secret` is `None`).
pub async fn exchange(
    http: &Http,
    endpoint: &str,
    client_id: &str,
    secret: Option<&Secret>,
    x: &Exchange<'_>,
) -> anyhow::Result<TokenOutcome> {
    let mut params = vec![
        ("grant_type", crate::oauth::discovery::TOKEN_EXCHANGE_GRANT),
        ("client_id", client_id),
    ];
    if let Some(s) = secret {
        params.push(("client_secret", s.expose()));
    }
    let optional = [
        ("subject_token", x.subject_token),
        ("subject_token_type", x.subject_token_type),
        ("requested_token_type", x.requested_token_type),
        ("audience", x.audience),
        ("scope", x.scope),
        ("requested_subject", x.requested_subject),
        ("requested_issuer", x.requested_issuer),
    ];
    params.extend(optional.iter().filter_map(|(k, v)| v.map(|v| (*k, v))));
    request(http, endpoint, &params).await
}

/// Introspection (RFC 7662 §2.1): the response's `active` and the whole body.
pub async fn introspect(
    http: &Http,
    endpoint: &str,
    client_id: &str,
    secret: &Secret,
    token: &Secret,
) -> anyhow::Result<(bool, Value)> {
    let resp = http
        .post(endpoint)
        .form(&[
            ("token", token.expose()),
            ("client_id", client_id),
            ("client_secret", secret.expose()),
        ])
        .send()
        .await?;
    anyhow::ensure!(resp.status == 200, "introspection: {}", resp.summary());
    let v: Value = resp.json()?;
    let active = v["active"]
        .as_bool()
        .context("introspection response without a boolean `active` (RFC 7662 §2.2)")?;
    Ok((active, v))
}

/// Revocation (RFC 7009 §2.1); returns the HTTP status.
pub async fn revoke(
    http: &Http,
    endpoint: &str,
    client_id: &str,
    secret: Option<&Secret>,
    token: &Secret,
    hint: &str,
) -> anyhow::Result<u16> {
    let mut params = vec![
        ("token", token.expose()),
        ("token_type_hint", hint),
        ("client_id", client_id),
    ];
    if let Some(s) = secret {
        params.push(("client_secret", s.expose()));
    }
    Ok(http.post(endpoint).form(&params).send().await?.status)
}
