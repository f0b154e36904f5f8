//! DCR-10: Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), which
//! MCP authorization 2026-07-28 prefers to dynamic registration. The check serves the
//! documents itself on loopback, switches CIMD on in the baseline realm with a client
//! profile (the `client-id-metadata-document` executor) and a client policy (the
//! `client-id-uri` condition) through the admin API, and puts the realm's client profiles
//! and policies back as they were afterwards, deleting the clients Keycloak stored for the
//! documents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use serde_json::{Map, Value, json};

use super::flows::{self, USER};
use super::{CheckCtx, CheckResult, pass, skip};
use crate::http::Response;
use crate::keycloak::admin::{AdminClient, expect_status};
use crate::keycloak::features::has_cimd;
use crate::oauth::pkce::{Pkce, random_value};

/// Keycloak's refusal of a document whose `client_id` is not its URL.
pub const CLIENT_ID_MISMATCH: &str =
    "Invalid Client Metadata: client_id property does not exactly match client_id parameter.";
/// Keycloak's refusal of a redirect URI the document does not list.
pub const REDIRECT_MISMATCH: &str = "Invalid Client Metadata: redirect_uri parameter does not exactly match the one of redirect_uris property in client metadata.";

/// The name of the client profile and policy the check adds (and removes).
const NAME: &str = "mcp-authz-harness-cimd";

/// Why the check does not apply to Keycloak `version`.
pub fn not_applicable(version: &str) -> String {
    format!(
        "Keycloak {version} has no Client ID Metadata Documents (the cimd feature arrived in 26.6.0): not applicable to this version"
    )
}

/// The discovery document must advertise `client_id_metadata_document_supported: true`.
pub fn judge_discovery(extra: &Map<String, Value>) -> anyhow::Result<()> {
    let got = extra.get("client_id_metadata_document_supported");
    ensure!(
        got == Some(&Value::Bool(true)),
        "discovery has client_id_metadata_document_supported {}, expected true",
        got.map_or("absent".to_owned(), Value::to_string)
    );
    Ok(())
}

/// An authorization request refused with Keycloak's `want`: an error page (4xx) or an
/// error response that shows the message, and no code for the client. Returns how it was
/// refused.
pub fn judge_refusal(
    status: u16,
    location: Option<&str>,
    body: &str,
    want: &str,
) -> anyhow::Result<String> {
    if let Some(loc) = location {
        let query: HashMap<String, String> = url::Url::parse(loc)
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        ensure!(
            !query.contains_key("code"),
            "the authorization request was answered with a code (HTTP {status} to the redirect URI), expected Keycloak's refusal {want:?}"
        );
        let described = query.get("error_description").map(String::as_str);
        ensure!(
            described == Some(want),
            "HTTP {status} redirect with error {:?} and error_description {described:?}, expected {want:?}",
            query.get("error")
        );
        return Ok(format!(
            "HTTP {status} error response {}: {want}",
            query.get("error").map_or("", String::as_str)
        ));
    }
    ensure!(
        (400..500).contains(&status),
        "the authorization endpoint answered HTTP {status}, expected an error page (4xx) saying {want:?}"
    );
    ensure!(
        body.contains(want),
        "the HTTP {status} error page does not say {want:?}"
    );
    Ok(format!("HTTP {status} error page: {want}"))
}

/// The documents, by path, and the paths Keycloak fetched.
#[derive(Default)]
struct Documents {
    by_path: HashMap<String, Value>,
    fetched: Mutex<Vec<String>>,
}

/// A loopback HTTP server for the check's documents, stopped when dropped.
struct DocumentServer {
    base: String,
    docs: Arc<Documents>,
    task: tokio::task::JoinHandle<()>,
}

impl DocumentServer {
    async fn start(base_of: impl FnOnce(&str) -> HashMap<String, Value>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the document server on 127.0.0.1")?;
        let base = format!("http://{}", listener.local_addr()?);
        let docs = Arc::new(Documents {
            by_path: base_of(&base),
            fetched: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&docs));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { base, docs, task })
    }

    fn fetches(&self, path: &str) -> usize {
        let fetched = self.docs.fetched.lock().unwrap_or_else(|e| e.into_inner());
        fetched.iter().filter(|p| *p == path).count()
    }
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    axum::extract::State(docs): axum::extract::State<Arc<Documents>>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path().to_owned();
    let doc = docs.by_path.get(&path).cloned();
    docs.fetched
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path);
    match doc {
        Some(d) => axum::Json(d).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The realm's own client profiles and policies before the check, put back afterwards.
struct Saved {
    admin: AdminClient,
    realm: String,
    profiles: Value,
    policies: Value,
    /// Client IDs (document URLs) whose stored clients go too.
    urls: Vec<String>,
    /// Still to restore: a drop (panic, timeout) restores in the background.
    armed: bool,
}

fn profiles_path(realm: &str) -> String {
    format!("/realms/{realm}/client-policies/profiles?include-global-profiles=false")
}

fn policies_path(realm: &str) -> String {
    format!("/realms/{realm}/client-policies/policies")
}

impl Saved {
    async fn read(admin: AdminClient, realm: &str, urls: Vec<String>) -> anyhow::Result<Self> {
        let profiles = admin.get_json(&profiles_path(realm)).await?;
        let policies = admin.get_json(&policies_path(realm)).await?;
        Ok(Self {
            admin,
            realm: realm.to_owned(),
            profiles,
            policies,
            urls,
            armed: true,
        })
    }

    /// Adds the CIMD profile and the policy that applies it to loopback http client IDs.
    async fn install(&self) -> anyhow::Result<()> {
        let mut profiles = list(&self.profiles, "profiles");
        profiles.push(json!({
            "name": NAME,
            "description": "Client ID Metadata Documents served on loopback (mcp-authz-harness DCR-10)",
            "executors": [{
                "executor": "client-id-metadata-document",
                "configuration": {
                    "cimd-allow-http-scheme": true,
                    "cimd-allow-permitted-domains": ["127.0.0.1"],
                    "cimd-restrict-same-domain": false,
                    "only-allow-confidential-client": false,
                },
            }],
        }));
        let resp = (self.admin)
            .put(
                &format!("/realms/{}/client-policies/profiles", self.realm),
                &json!({ "profiles": profiles }),
            )
            .await?;
        expect_status(&resp, 204, "adding the CIMD client profile")?;
        let mut policies = list(&self.policies, "policies");
        policies.push(json!({
            "name": NAME,
            "description": "client IDs that are loopback http URLs (mcp-authz-harness DCR-10)",
            "enabled": true,
            "conditions": [{
                "condition": "client-id-uri",
                "configuration": {
                    "client-id-uri-scheme": ["http"],
                    "client-id-uri-allow-permitted-domains": ["127.0.0.1"],
                },
            }],
            "profiles": [NAME],
        }));
        let resp = (self.admin)
            .put(
                &policies_path(&self.realm),
                &json!({ "policies": policies }),
            )
            .await?;
        expect_status(&resp, 204, "adding the CIMD client policy")
    }

    /// Puts the policies then the profiles back, checks they read as before, and deletes
    /// the clients stored for the documents; returns what it deleted.
    async fn restore(mut self) -> anyhow::Result<Vec<String>> {
        self.armed = false;
        restore(
            &self.admin,
            &self.realm,
            &self.profiles,
            &self.policies,
            &self.urls,
        )
        .await
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (admin, realm) = (self.admin.clone(), self.realm.clone());
        let (profiles, policies) = (self.profiles.clone(), self.policies.clone());
        let urls = std::mem::take(&mut self.urls);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = restore(&admin, &realm, &profiles, &policies, &urls).await {
                    tracing::warn!("DCR-10: restoring the client policies of {realm}: {e:#}");
                }
            });
        }
    }
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

async fn restore(
    admin: &AdminClient,
    realm: &str,
    profiles: &Value,
    policies: &Value,
    urls: &[String],
) -> anyhow::Result<Vec<String>> {
    let resp = admin
        .put(
            &policies_path(realm),
            &json!({ "policies": list(policies, "policies") }),
        )
        .await?;
    expect_status(&resp, 204, "restoring the realm's client policies")?;
    let resp = admin
        .put(
            &format!("/realms/{realm}/client-policies/profiles"),
            &json!({ "profiles": list(profiles, "profiles") }),
        )
        .await?;
    expect_status(&resp, 204, "restoring the realm's client profiles")?;
    let now = (
        admin.get_json(&profiles_path(realm)).await?,
        admin.get_json(&policies_path(realm)).await?,
    );
    ensure!(
        now.0["profiles"] == profiles["profiles"] && now.1["policies"] == policies["policies"],
        "the realm's client profiles/policies read differently after the restore: {} / {}",
        now.0,
        now.1
    );
    let mut deleted = Vec::new();
    for url in urls {
        if let Some(c) = admin.client_by_client_id(realm, url).await? {
            let resp = admin.delete_client(realm, &c.id).await?;
            expect_status(&resp, 204, &format!("deleting the client stored for {url}"))?;
            deleted.push(url.clone());
        }
    }
    Ok(deleted)
}

/// What the check serves: the correct document, one whose `client_id` is another URL,
/// and a correct one for the request with a foreign redirect URI (each its own URL, as
/// Keycloak caches documents by URL).
struct Paths {
    good: String,
    mismatch: String,
    redirect: String,
}

fn document(client_id: &str, redirect_uri: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": format!("{} CIMD", crate::session::CLIENT_NAME_PREFIX),
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    })
}

pub async fn client_id_metadata_document(ctx: &CheckCtx) -> CheckResult {
    let version = ctx.session.stack.keycloak.version.clone();
    if !has_cimd(&version) {
        return skip(not_applicable(&version));
    }
    let realm = ctx.realm()?.name.clone();
    let nonce = random_value().to_lowercase();
    let paths = Paths {
        good: format!("/cimd/{nonce}/client"),
        mismatch: format!("/cimd/{nonce}/mismatch"),
        redirect: format!("/cimd/{nonce}/redirect"),
    };
    let redirect = ctx.session.listener.redirect_uri();
    ctx.step("serve the metadata documents on loopback");
    let server = DocumentServer::start(|base| {
        let url = |p: &str| format!("{base}{p}");
        HashMap::from([
            (paths.good.clone(), document(&url(&paths.good), &redirect)),
            (
                paths.mismatch.clone(),
                document(&format!("{}-other", url(&paths.mismatch)), &redirect),
            ),
            (
                paths.redirect.clone(),
                document(&url(&paths.redirect), &redirect),
            ),
        ])
    })
    .await?;
    let url = |p: &str| format!("{}{p}", server.base);
    for p in [&paths.good, &paths.mismatch, &paths.redirect] {
        ctx.note(format!("{}: {}", url(p), server.docs.by_path[p]));
    }
    ctx.step("save the realm's client profiles and policies");
    let saved = Saved::read(
        ctx.admin(),
        &realm,
        vec![url(&paths.good), url(&paths.mismatch), url(&paths.redirect)],
    )
    .await?;
    let outcome = async {
        // Before the profile and policy: the feature alone makes Keycloak advertise it.
        ctx.step("discovery advertises client_id_metadata_document_supported");
        let meta = ctx.discovery().await?;
        judge_discovery(&meta.extra)?;
        ctx.step("add the CIMD client profile and the policy for loopback http client IDs");
        saved.install().await?;
        exercise(ctx, &meta, &server, &paths).await
    }
    .await;
    ctx.step("restore the realm's client profiles and policies; delete the clients stored for the documents");
    let restored = saved.restore().await;
    match &restored {
        Ok(deleted) => ctx.note(format!(
            "profiles and policies read as before; deleted the clients of {deleted:?}"
        )),
        Err(e) => ctx.note(format!("restore failed: {e:#}")),
    }
    let verdict = outcome?;
    let deleted = restored?;
    pass(format!(
        "{verdict}; client profiles and policies restored; {} stored client(s) deleted",
        deleted.len()
    ))
}

async fn exercise(
    ctx: &CheckCtx,
    meta: &crate::oauth::discovery::ProviderMetadata,
    server: &DocumentServer,
    paths: &Paths,
) -> anyhow::Result<String> {
    let url = |p: &str| format!("{}{p}", server.base);

    let good = url(&paths.good);
    let pkce = Pkce::new();
    let (req, state, _) = flows::request(ctx, &good, "openid", &pkce);
    let callback = flows::authorize(ctx, meta, USER, &req, &state)
        .await?
        .callback()?;
    ensure!(
        server.fetches(&paths.good) > 0,
        "Keycloak authorized {good} without fetching its document"
    );
    let code = callback
        .code
        .as_ref()
        .context("the authorization response has no code")?;
    let redirect = ctx.session.listener.redirect_uri();
    let tokens = flows::redeem(
        ctx,
        meta,
        &good,
        None,
        code,
        Some(&redirect),
        Some(&pkce.verifier),
    )
    .await?
    .issued("redeeming the code of the CIMD client")?;
    let keys = ctx.jwks(meta).await?;
    let claims = crate::oauth::jwt::verify(
        &tokens.access_token,
        &keys,
        &crate::oauth::jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        },
    )?;
    ctx.note(format!(
        "claims: {}",
        crate::oauth::jwt::claims_for_evidence(&claims)
    ));
    ensure!(
        claims["azp"] == good.as_str(),
        "the access token's azp is {}, expected the document URL {good}",
        claims["azp"]
    );

    let mismatch = url(&paths.mismatch);
    ctx.step("a document whose client_id is not its URL is refused");
    let r1 = refused(ctx, meta, &mismatch, &redirect, CLIENT_ID_MISMATCH).await?;
    ensure!(
        server.fetches(&paths.mismatch) > 0,
        "Keycloak refused {mismatch} without fetching its document"
    );
    let other = format!("{redirect}-elsewhere");
    ctx.step("a redirect URI the document does not list is refused");
    let r2 = refused(ctx, meta, &url(&paths.redirect), &other, REDIRECT_MISMATCH).await?;
    Ok(format!(
        "discovery advertises CIMD; {good} (fetched) completed the PKCE flow, azp is the URL; \
         client_id mismatch: {r1}; foreign redirect_uri: {r2}"
    ))
}

/// Sends an authorization request for `client_id` with `redirect_uri` (no browser: a
/// refusal is an error page) and judges it against `want`.
async fn refused(
    ctx: &CheckCtx,
    meta: &crate::oauth::discovery::ProviderMetadata,
    client_id: &str,
    redirect_uri: &str,
    want: &str,
) -> anyhow::Result<String> {
    let pkce = Pkce::new();
    let (req, _, _) = flows::request(ctx, client_id, "openid", &pkce);
    let req = req.set("redirect_uri", redirect_uri);
    let endpoint = meta
        .authorization_endpoint
        .as_deref()
        .context("no authorization_endpoint")?;
    let resp: Response = ctx.http().get(req.url(endpoint)).send().await?;
    ensure!(
        resp.status < 500,
        "the authorization endpoint answered HTTP {}",
        resp.status
    );
    let location = resp
        .header("location")
        .filter(|_| (300..400).contains(&resp.status));
    let verdict = judge_refusal(resp.status, location, &resp.text(), want)?;
    ctx.note(&verdict);
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_without_the_flag_fails() {
        let with = |v: Value| Map::from_iter([("client_id_metadata_document_supported".into(), v)]);
        assert!(judge_discovery(&with(json!(true))).is_ok());
        for bad in [json!(false), json!("true"), Value::Null] {
            assert!(judge_discovery(&with(bad)).is_err());
        }
        let e = judge_discovery(&Map::new()).unwrap_err().to_string();
        assert!(e.contains("absent"), "{e}");
    }

    #[test]
    fn a_refusal_must_be_keycloaks() {
        let page = format!("<html><p id=\"kc-error-message\">{CLIENT_ID_MISMATCH}</p></html>");
        let ok = judge_refusal(400, None, &page, CLIENT_ID_MISMATCH).unwrap();
        assert!(ok.contains("HTTP 400"), "{ok}");
        // A refusal for another reason is not the one required.
        let other = "<p>Client not found.</p>";
        assert!(judge_refusal(400, None, other, CLIENT_ID_MISMATCH).is_err());
        assert!(judge_refusal(400, None, &page, REDIRECT_MISMATCH).is_err());
        // The message on a page that is not an error.
        assert!(judge_refusal(200, None, &page, CLIENT_ID_MISMATCH).is_err());
        // An error response to the redirect URI must carry the same message.
        let loc = format!(
            "http://127.0.0.1:1/callback?error=invalid_request&error_description={}",
            urlencode(REDIRECT_MISMATCH)
        );
        assert!(judge_refusal(302, Some(&loc), "", REDIRECT_MISMATCH).is_ok());
        let crafted = "http://127.0.0.1:1/callback?error=invalid_request&error_description=Invalid+redirect+uri";
        assert!(judge_refusal(302, Some(crafted), "", REDIRECT_MISMATCH).is_err());
    }

    #[test]
    fn a_success_where_a_refusal_is_required_fails() {
        let loc = "http://127.0.0.1:1/callback?code=abc&state=s";
        let e = judge_refusal(302, Some(loc), "", CLIENT_ID_MISMATCH)
            .unwrap_err()
            .to_string();
        assert!(e.contains("answered with a code"), "{e}");
        // The login page (HTTP 200): the request was accepted.
        assert!(
            judge_refusal(200, None, "<form id=\"kc-form-login\">", REDIRECT_MISMATCH).is_err()
        );
    }

    #[test]
    fn not_applicable_names_the_version() {
        assert!(not_applicable("26.4.7").contains("Keycloak 26.4.7"));
    }

    fn urlencode(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
}
