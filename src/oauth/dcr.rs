//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! Requests are plain JSON values so a check can send anything; answers are typed:
//! a [`Registration`] for 201/200, a [`Refusal`] for an OAuth error, `Err` only when the
//! call broke or a success response is malformed (that error says what was missing).

use anyhow::Context;
use serde_json::Value;

use super::token::Refusal;
use crate::http::{Http, Response};
use crate::secret::{Secret, SecretKind};

/// A client as the registration endpoint describes it (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Clone, Debug)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub registration_access_token: Option<Secret>,
    pub registration_client_uri: Option<String>,
    /// The whole response with secrets removed.
    pub metadata: Value,
}

impl Registration {
    /// Reads a registration response. A missing `client_id` is an error; missing RFC 7592
    /// fields are kept as `None` so the caller can still clean the client up.
    pub fn from_json(v: &Value) -> anyhow::Result<Self> {
        let client_id = v["client_id"]
            .as_str()
            .context("the registration response has no client_id (RFC 7591 §3.2.1 requires it)")?
            .to_owned();
        let secret = |k: &str, kind| v[k].as_str().map(|s| Secret::new(kind, s));
        Ok(Self {
            client_id,
            client_secret: secret("client_secret", SecretKind::ClientSecret),
            registration_access_token: secret(
                "registration_access_token",
                SecretKind::RegistrationToken,
            ),
            registration_client_uri: v["registration_client_uri"].as_str().map(str::to_owned),
            metadata: crate::http::redact_json(v),
        })
    }

    /// The RFC 7592 handles, or an error saying which one the server left out.
    pub fn management(&self) -> anyhow::Result<(&str, &Secret)> {
        let uri = self.registration_client_uri.as_deref().with_context(|| {
            format!(
                "the registration of {} has no registration_client_uri (RFC 7592 §3)",
                self.client_id
            )
        })?;
        let token = self.registration_access_token.as_ref().with_context(|| {
            format!(
                "the registration of {} has no registration_access_token (RFC 7592 §3)",
                self.client_id
            )
        })?;
        Ok((uri, token))
    }
}

/// What a registration-endpoint call returned.
#[derive(Clone, Debug)]
pub enum DcrOutcome {
    /// 201 (create) or 200 (read, update), with the client.
    Client {
        status: u16,
        registration: Registration,
    },
    /// 204 (delete).
    Deleted,
    /// An error status with the OAuth error body.
    Refused(Refusal),
}

impl DcrOutcome {
    pub fn client(self, what: &str) -> anyhow::Result<Registration> {
        match self {
            DcrOutcome::Client { registration, .. } => Ok(registration),
            DcrOutcome::Deleted => anyhow::bail!("{what}: expected a client, got 204"),
            DcrOutcome::Refused(r) => anyhow::bail!("{what}: refused with {r}"),
        }
    }

    pub fn refused(self, what: &str) -> anyhow::Result<Refusal> {
        match self {
            DcrOutcome::Refused(r) => Ok(r),
            DcrOutcome::Client {
                status,
                registration,
            } => anyhow::bail!(
                "{what}: expected a refusal, got HTTP {status} for client {}",
                registration.client_id
            ),
            DcrOutcome::Deleted => anyhow::bail!("{what}: expected a refusal, got 204"),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            DcrOutcome::Client { status, .. } => *status,
            DcrOutcome::Deleted => 204,
            DcrOutcome::Refused(r) => r.status,
        }
    }
}

fn outcome(resp: &Response, ok: &[u16]) -> anyhow::Result<DcrOutcome> {
    if resp.status == 204 && ok.contains(&204) {
        return Ok(DcrOutcome::Deleted);
    }
    if ok.contains(&resp.status) {
        let v: Value = resp.json()?;
        return Ok(DcrOutcome::Client {
            status: resp.status,
            registration: Registration::from_json(&v)?,
        });
    }
    Ok(DcrOutcome::Refused(Refusal::from_response(resp)))
}

/// `POST` to the registration endpoint (RFC 7591 §3.1), anonymously or with an initial
/// access token.
pub async fn register(
    http: &Http,
    endpoint: &str,
    metadata: &Value,
    initial_access_token: Option<&Secret>,
) -> anyhow::Result<DcrOutcome> {
    let mut req = http.post(endpoint).json(metadata);
    if let Some(t) = initial_access_token {
        req = req.bearer(t);
    }
    outcome(&req.send().await?, &[201])
}

/// `GET` the client configuration (RFC 7592 §2.1).
pub async fn read(http: &Http, uri: &str, token: &Secret) -> anyhow::Result<DcrOutcome> {
    outcome(&http.get(uri).bearer(token).send().await?, &[200])
}

/// `PUT` the client configuration (RFC 7592 §2.2).
pub async fn update(
    http: &Http,
    uri: &str,
    token: &Secret,
    metadata: &Value,
) -> anyhow::Result<DcrOutcome> {
    outcome(
        &http.put(uri).bearer(token).json(metadata).send().await?,
        &[200],
    )
}

/// `DELETE` the client (RFC 7592 §2.3).
pub async fn delete(http: &Http, uri: &str, token: &Secret) -> anyhow::Result<DcrOutcome> {
    outcome(&http.delete(uri).bearer(token).send().await?, &[204])
}
