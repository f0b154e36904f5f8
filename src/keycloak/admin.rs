//! Keycloak's admin REST API: the few resources the harness manages.
//!
//! The admin token is obtained with the bootstrap admin's password (master realm,
//! `admin-cli`) and renewed shortly before it expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::evidence::Evidence;
use crate::http::{Http, Response};
use crate::secret::{Secret, SecretKind};

/// Gets an admin access token for `user` in the master realm.
pub async fn password_token(
    http: &Http,
    base: &str,
    user: &str,
    password: &Secret,
) -> anyhow::Result<(Secret, Duration)> {
    let resp = http
        .post(format!(
            "{base}/realms/master/protocol/openid-connect/token"
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", user),
            ("password", password.expose()),
        ])
        .send()
        .await?;
    if resp.status != 200 {
        bail!("admin token for {user}: {}", resp.summary());
    }
    let body: Value = resp.json()?;
    let token = body["access_token"]
        .as_str()
        .context("admin token response without access_token")?;
    let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(60));
    Ok((Secret::new(SecretKind::AccessToken, token), lifetime))
}

/// A client of the admin API. Clones share the token cache.
#[derive(Clone)]
pub struct AdminClient {
    http: Http,
    base: String,
    user: String,
    password: Secret,
    token: Arc<Mutex<Option<(Secret, Instant)>>>,
}

/// The subset of a client representation the harness reads; the rest is kept in `extra`.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientRep {
    pub id: String,
    pub client_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl AdminClient {
    pub fn new(http: Http, base: &str, user: &str, password: Secret) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            password,
            token: Arc::new(Mutex::new(None)),
        }
    }

    /// The same client, recording its calls into `evidence`.
    pub fn recording(&self, evidence: &Evidence) -> Self {
        Self {
            http: self.http.recording(evidence),
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn token(&self) -> anyhow::Result<Secret> {
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let quiet = Http::new(crate::http::DEFAULT_TIMEOUT);
        let (token, lifetime) =
            password_token(&quiet, &self.base, &self.user, &self.password).await?;
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(15));
        *cached = Some((token.clone(), until));
        Ok(token)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/admin{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Response> {
        let t = self.token().await?;
        Ok(self.http.get(self.url(path)).bearer(&t).send().await?)
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let t = self.token().await?;
        Ok(self
            .http
            .post(self.url(path))
            .bearer(&t)
            .json(body)
            .send()
            .await?)
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Response> {
        let t = self.token().await?;
        Ok(self
            .http
            .put(self.url(path))
            .bearer(&t)
            .json(body)
            .send()
            .await?)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Response> {
        let t = self.token().await?;
        Ok(self.http.delete(self.url(path)).bearer(&t).send().await?)
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self.get(path).await?;
        expect_status(&resp, 200, &format!("GET /admin{path}"))?;
        resp.json()
    }

    /// Imports a realm (`POST /admin/realms`); the body is recorded as a summary only.
    pub async fn import_realm(&self, realm: &Value) -> anyhow::Result<Response> {
        let t = self.token().await?;
        let name = realm["realm"].as_str().unwrap_or("?");
        let size = realm.to_string().len();
        Ok(self
            .http
            .post(self.url("/realms"))
            .bearer(&t)
            .json(realm)
            .evidence_body(format!("(realm {name:?}, {size} bytes of JSON)"))
            .timeout(Duration::from_secs(120))
            .send()
            .await?)
    }

    pub async fn delete_realm(&self, realm: &str) -> anyhow::Result<()> {
        let resp = self.delete(&format!("/realms/{realm}")).await?;
        expect_status(&resp, 204, &format!("deleting realm {realm}"))
    }

    pub async fn realm_exists(&self, realm: &str) -> anyhow::Result<bool> {
        Ok(self.get(&format!("/realms/{realm}")).await?.status == 200)
    }

    pub async fn clients(&self, realm: &str) -> anyhow::Result<Vec<ClientRep>> {
        let v = self
            .get_json(&format!("/realms/{realm}/clients?first=0&max=10000"))
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    pub async fn client_by_client_id(
        &self,
        realm: &str,
        client_id: &str,
    ) -> anyhow::Result<Option<ClientRep>> {
        let v = self
            .get_json(&format!(
                "/realms/{realm}/clients?clientId={}",
                urlencode(client_id)
            ))
            .await?;
        let list: Vec<ClientRep> = serde_json::from_value(v)?;
        Ok(list.into_iter().find(|c| c.client_id == client_id))
    }

    pub async fn delete_client(&self, realm: &str, id: &str) -> anyhow::Result<Response> {
        self.delete(&format!("/realms/{realm}/clients/{id}")).await
    }

    pub async fn client_scopes(&self, realm: &str) -> anyhow::Result<Vec<Value>> {
        let v = self
            .get_json(&format!("/realms/{realm}/client-scopes"))
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// Components of a provider type (e.g. client-registration policies).
    pub async fn components(&self, realm: &str, provider_type: &str) -> anyhow::Result<Vec<Value>> {
        let v = self
            .get_json(&format!(
                "/realms/{realm}/components?type={}",
                urlencode(provider_type)
            ))
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// An initial access token for client registration (RFC 7591 §3).
    pub async fn initial_access_token(
        &self,
        realm: &str,
        count: u32,
        expiration_s: u32,
    ) -> anyhow::Result<Secret> {
        let resp = self
            .post(
                &format!("/realms/{realm}/clients-initial-access"),
                &serde_json::json!({"count": count, "expiration": expiration_s}),
            )
            .await?;
        if !resp.is_success() {
            bail!("creating an initial access token: {}", resp.summary());
        }
        let v: Value = resp.json()?;
        let token = v["token"]
            .as_str()
            .context("initial access token response without token")?;
        Ok(Secret::new(SecretKind::RegistrationToken, token))
    }

    /// Features the server reports as enabled, as `name` (`type`) strings sorted.
    pub async fn enabled_features(&self) -> anyhow::Result<Vec<String>> {
        let info = self.get_json("/serverinfo").await?;
        Ok(enabled_features_from_serverinfo(&info))
    }
}

/// The serverinfo's `features` list (26.x: objects with `name`, `enabled`, `type`), or the
/// older `profileInfo.previewFeatures`/`disabledFeatures` shape when that is all there is.
pub fn enabled_features_from_serverinfo(info: &Value) -> Vec<String> {
    let mut out: Vec<String> = match info["features"].as_array() {
        Some(list) => list
            .iter()
            .filter(|f| f["enabled"].as_bool() == Some(true))
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect(),
        None => Vec::new(),
    };
    out.sort();
    out
}

pub fn expect_status(resp: &Response, status: u16, what: &str) -> anyhow::Result<()> {
    if resp.status != status {
        bail!("{what}: expected HTTP {status}, got {}", resp.summary());
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
