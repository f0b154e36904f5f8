//! MCP-33: RFC 8707 resource indicators, end to end. A public client sends `resource` on
//! the authorization request (through the browser, on Keycloak's login page) and on the
//! token request; Keycloak (the experimental `resource-indicators` feature, 26.6.0 and
//! later) narrows the token's `aud` to that resource and refuses one it does not know
//! with `invalid_target` (RFC 8707 §2). The MCP server then accepts the token minted for
//! its own resource and refuses (401 `invalid_token`) the one minted for another (MCP
//! authorization: servers MUST validate that tokens were issued for them).
//!
//! The feature applies realm-wide and is not in the session's build: with it on, Keycloak
//! also judges the `resource` the MCP server's own flows send (its URL, which no client
//! stands for) and refuses their token requests with `invalid_target`. So the check runs
//! on a stack of its own (Keycloak built with the feature, the session's realm, the same
//! MCP server release, the stand-in and a browser). The same check on another realm or
//! release of this run (the live diff, `matrix`) deploys its realm on that stack instead
//! of booting another ([`OwnSession`]); the last one to finish tears it down.
//!
//! Keycloak accepts a `resource` that is the `resource_url` attribute of a client already
//! in the token's `aud` (the token's `aud` becomes that URL), or `urn:client:<clientId>`
//! of such a client (the `aud` becomes the client id). The check gives the MCP server's
//! client a `resource_url` equal to the MCP URL for its duration, and puts the attribute
//! back as it was afterwards, also on failure.

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use super::super::flows::{self, USER};
use super::super::{CheckCtx, CheckResult, pass, skip};
use super::bearer::{expect_accepted, expect_invalid_token};
use super::users::mcp_url;
use crate::keycloak::admin::{AdminClient, expect_status};
use crate::keycloak::features::has_resource_indicators;
use crate::oauth::discovery::ProviderMetadata;
use crate::oauth::jwt;
use crate::oauth::pkce::Pkce;
use crate::oauth::token::{self, Refusal, TokenOutcome};
use crate::secret::Secret;
use crate::session::{Arrival, OwnSession, Released, SessionOptions};
use crate::stack::Need;

/// Keycloak's refusal of a resource no client of the token's audience stands for.
pub const INVALID_RESOURCE: &str =
    "The requested resource is invalid, missing, unknown, or malformed.";
/// Keycloak's refusal of a token request whose `resource` is not the authorization
/// request's.
pub const NOT_MATCHING: &str = "The requested resource is not matching the original request.";

/// The client attribute Keycloak matches a resource URL against.
const RESOURCE_URL: &str = "resource_url";
/// The client the other resource stands for: in the token's `aud` (the realm's audience
/// mapper), not an audience the MCP server accepts.
const OTHER_CLIENT: &str = "nextcloud";
/// A well-formed absolute URI no client stands for (`.invalid` never resolves).
const UNKNOWN: &str = "https://unknown-resource.invalid/mcp";
/// The scopes asked for: those whose tokens carry the MCP server's audience.
const SCOPE: &str = "openid notes.read";
/// The Keycloak feature (experimental) the check's own Keycloak is built with.
const FEATURE: &str = "resource-indicators";
/// Where the own stack's logs go, under the report dir.
const STACK_DIR: &str = "MCP-33-stack";

/// Why the check does not apply to Keycloak `version`.
pub fn not_applicable(version: &str) -> String {
    format!(
        "Keycloak {version} has no RFC 8707 resource indicators (the resource-indicators feature arrived in 26.6.0): not applicable to this version"
    )
}

/// The access token's `aud` must be exactly `[want]` (a one-element array or the string).
pub fn judge_audience(claims: &Value, want: &str) -> anyhow::Result<()> {
    let got = jwt::audiences(claims);
    ensure!(
        got == [want],
        "the access token's aud is {}, expected exactly [{want:?}]: Keycloak did not bind the token to the resource asked for (RFC 8707 §2)",
        claims
            .get("aud")
            .map_or("absent".to_owned(), Value::to_string)
    );
    Ok(())
}

/// The token request must be refused with 400 `invalid_target` and Keycloak's `want`.
pub fn judge_invalid_target(outcome: TokenOutcome, want: &str) -> anyhow::Result<Refusal> {
    let r = outcome.refused("the token request")?;
    ensure!(
        r.is(400, "invalid_target", want),
        "the token request was refused with {r}, expected HTTP 400 invalid_target: {want} (RFC 8707 §2)"
    );
    Ok(r)
}

/// The `resource_url` attribute of the MCP server's client before the check, put back
/// afterwards.
struct Saved {
    admin: AdminClient,
    realm: String,
    /// Keycloak's internal id of the client.
    id: String,
    original: Option<String>,
    /// Still to restore: a drop (panic, timeout) restores in the background.
    armed: bool,
}

fn client_path(realm: &str, id: &str) -> String {
    format!("/realms/{realm}/clients/{id}")
}

/// Sets (`Some`) or removes (`None`, as an empty value) the client's `resource_url` and
/// reads it back.
async fn set_resource_url(
    admin: &AdminClient,
    realm: &str,
    id: &str,
    value: Option<&str>,
) -> anyhow::Result<()> {
    let path = client_path(realm, id);
    let mut rep = admin.get_json(&path).await?;
    rep["attributes"][RESOURCE_URL] = json!(value.unwrap_or(""));
    let resp = admin.put(&path, &rep).await?;
    expect_status(&resp, 204, "updating the client's resource_url")?;
    let now = admin.get_json(&path).await?;
    let got = now["attributes"][RESOURCE_URL].as_str();
    ensure!(
        got == value,
        "the client's resource_url reads {got:?} after the update, expected {value:?}"
    );
    Ok(())
}

impl Saved {
    async fn read(admin: AdminClient, realm: &str, client_id: &str) -> anyhow::Result<Self> {
        let c = admin
            .client_by_client_id(realm, client_id)
            .await?
            .with_context(|| format!("no client {client_id} in realm {realm}"))?;
        let rep = admin.get_json(&client_path(realm, &c.id)).await?;
        let original = rep["attributes"][RESOURCE_URL].as_str().map(str::to_owned);
        Ok(Self {
            admin,
            realm: realm.to_owned(),
            id: c.id,
            original,
            armed: true,
        })
    }

    async fn restore(mut self) -> anyhow::Result<()> {
        self.armed = false;
        set_resource_url(&self.admin, &self.realm, &self.id, self.original.as_deref()).await
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (admin, realm, id) = (self.admin.clone(), self.realm.clone(), self.id.clone());
        let original = self.original.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = set_resource_url(&admin, &realm, &id, original.as_deref()).await {
                    tracing::warn!("MCP-33: restoring the resource_url of {id}: {e:#}");
                }
            });
        }
    }
}

pub(super) async fn resource_indicators(ctx: &CheckCtx) -> CheckResult {
    let version = ctx.session.stack.keycloak.version.clone();
    if !has_resource_indicators(&version) {
        return skip(not_applicable(&version));
    }
    let mcp_version = ctx.mcp_server()?.version.clone();
    let stack = ctx.session.stack.config_with_features(
        &[FEATURE],
        vec![Need::McpServer, Need::ResourceServer, Need::Browser],
    );
    ctx.step(format!(
        "a stack of its own (booted, or joined when another check of this run has it up): Keycloak {version} with {}, this session's realm, nextcloud-mcp-server {mcp_version}",
        stack.keycloak.build.args().join(" ")
    ));
    let opts = SessionOptions {
        stack,
        realm: ctx.session.realm.file.clone(),
        keep: false,
        run_id: None,
        redirect_uri: None,
        update_pins: false,
    };
    let dir = ctx.session.report_dir.join(STACK_DIR);
    // A progress of its own: its phases are not the session's (a spinner only once).
    let progress = std::sync::Arc::new(crate::progress::Progress::with_spinner(false));
    let own = OwnSession::start(&opts, progress, &dir)
        .await
        .map_err(|e| anyhow::anyhow!("the stack with resource-indicators did not come up: {e}"))?;
    match &own.arrival {
        Arrival::Booted { waited } if waited.as_secs() > 0 => ctx.note(format!(
            "waited {}s for another own stack to boot (one boots at a time)",
            waited.as_secs()
        )),
        Arrival::Booted { .. } => {}
        Arrival::Joined => ctx.note(
            "deployed its realm on the stack with resource-indicators another check of this run booted (one Keycloak for both)",
        ),
    }
    let session = own.session.clone();
    let arrival = own.arrival.clone();
    ctx.note(format!(
        "Keycloak {} at {} ({}); features {:?}",
        session.stack.keycloak.version,
        session.stack.keycloak.base_url,
        session.stack.keycloak_argv.join(" "),
        session.keycloak_features
    ));
    let inner = CheckCtx::new(session.clone(), ctx.check);
    let outcome = async {
        ensure!(
            session.keycloak_features.iter().any(|f| f == "RESOURCE_INDICATORS"),
            "Keycloak built with resource-indicators does not list RESOURCE_INDICATORS among its enabled features"
        );
        on_own_stack(&inner).await
    }
    .await;
    for step in inner.evidence.steps() {
        ctx.step(format!("[own stack] {}", step.name));
        for n in &step.notes {
            ctx.note(n);
        }
        for x in step.exchanges {
            ctx.evidence.record(x);
        }
    }
    drop(inner);
    ctx.step("end its session on the stack of its own");
    let (report, released) = own.release(&dir.join("logs")).await;
    ctx.note(format!("teardown: {report:?}"));
    ctx.note(format!("phases (s): {:?}", session.progress.phases()));
    let verdict = outcome?;
    ensure!(
        report.processes_left == 0 && report.clients_left == 0 && report.dirs_left == 0,
        "the stack of its own left {} process(es), {} client(s), {} dir(s)",
        report.processes_left,
        report.clients_left,
        report.dirs_left
    );
    let ended = match (released, arrival) {
        (Released::StackStopped, _) => "torn down: 0 processes, 0 clients left".to_owned(),
        (Released::StackInUse(n), Arrival::Joined) => format!(
            "its realm's session torn down (0 processes, 0 clients left); the stack stays up for {n} other check(s), the last of which tears it down"
        ),
        (Released::StackInUse(n), Arrival::Booted { .. }) => format!(
            "the stack stays up for {n} other check(s) on it, the last of which tears it down with this realm"
        ),
    };
    pass(format!(
        "{verdict}; on a stack of its own (Keycloak with resource-indicators), {ended}"
    ))
}

/// The check on the stack with the feature: the MCP client's `resource_url` set to the
/// MCP URL for the duration, then put back.
async fn on_own_stack(ctx: &CheckCtx) -> anyhow::Result<String> {
    let url = mcp_url(ctx)?;
    let realm = ctx.realm()?.name.clone();
    let mcp_client = crate::keycloak::realm::MCP_SERVER_CLIENT;
    ctx.step(format!(
        "save the {mcp_client} client's {RESOURCE_URL}; set it to the MCP URL {url}"
    ));
    let saved = Saved::read(ctx.admin(), &realm, mcp_client).await?;
    ctx.note(format!("{RESOURCE_URL} before: {:?}", saved.original));
    let outcome = async {
        set_resource_url(&saved.admin, &realm, &saved.id, Some(&url)).await?;
        exercise(ctx, &url).await
    }
    .await;
    ctx.step(format!("restore the {mcp_client} client's {RESOURCE_URL}"));
    let restored = saved.restore().await;
    match &restored {
        Ok(()) => ctx.note(format!("{RESOURCE_URL} reads as before")),
        Err(e) => ctx.note(format!("restore failed: {e:#}")),
    }
    let verdict = outcome?;
    restored?;
    Ok(format!(
        "{verdict}; the {mcp_client} client's {RESOURCE_URL} restored"
    ))
}

async fn exercise(ctx: &CheckCtx, url: &str) -> anyhow::Result<String> {
    let meta = ctx.discovery().await?;
    let client = flows::public_client(ctx).await?;
    let other = format!("urn:client:{OTHER_CLIENT}");

    ctx.step(format!(
        "resource {url} (the MCP server's) on both requests"
    ));
    let own = flow(ctx, &meta, &client, url, url)
        .await?
        .issued("the token request for the MCP server's resource")?;
    let claims = verified(ctx, &meta, &own.access_token).await?;
    judge_audience(&claims, url)?;
    expect_accepted(
        ctx,
        url,
        &own.access_token,
        &format!("the token minted for resource {url}"),
    )
    .await?;

    ctx.step(format!(
        "resource {other} (another client's) on both requests"
    ));
    let foreign = flow(ctx, &meta, &client, &other, &other)
        .await?
        .issued("the token request for another resource")?;
    let claims = verified(ctx, &meta, &foreign.access_token).await?;
    judge_audience(&claims, OTHER_CLIENT)?;
    expect_invalid_token(
        ctx,
        url,
        &foreign.access_token,
        &format!("the token minted for resource {other}"),
    )
    .await?;

    ctx.step(format!("resource {UNKNOWN} (no client's) on both requests"));
    let unknown = judge_invalid_target(
        flow(ctx, &meta, &client, UNKNOWN, UNKNOWN).await?,
        INVALID_RESOURCE,
    )?;
    ctx.note(format!("refused: {unknown}"));

    ctx.step(format!(
        "resource {url} on the authorization request, {other} on the token request"
    ));
    let mismatch =
        judge_invalid_target(flow(ctx, &meta, &client, url, &other).await?, NOT_MATCHING)?;
    ctx.note(format!("refused: {mismatch}"));

    Ok(format!(
        "resource {url}: aud exactly [{url}], the MCP server accepts it (initialize 200); \
         resource {other}: aud exactly [{OTHER_CLIENT}], the MCP server answers 401 invalid_token; \
         unknown resource {UNKNOWN}: {unknown}; a token request's resource differing from the \
         authorization request's: {mismatch}"
    ))
}

/// The access token, verified against the realm's keys and issuer; its claims noted.
async fn verified(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    access_token: &Secret,
) -> anyhow::Result<Value> {
    let keys = ctx.jwks(meta).await?;
    let claims = jwt::verify(
        access_token,
        &keys,
        &jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        },
    )?;
    ctx.note(format!("claims: {}", jwt::claims_for_evidence(&claims)));
    Ok(claims)
}

/// The browser code flow with PKCE for `client`, `resource` on the authorization request
/// and `token_resource` on the token request; the token endpoint's answer.
async fn flow(
    ctx: &CheckCtx,
    meta: &ProviderMetadata,
    client: &str,
    resource: &str,
    token_resource: &str,
) -> anyhow::Result<TokenOutcome> {
    let pkce = Pkce::new();
    let (req, state, _) = flows::request(ctx, client, SCOPE, &pkce);
    let req = req.set("resource", resource);
    let callback = flows::authorize(ctx, meta, USER, &req, &state)
        .await?
        .callback()
        .with_context(|| format!("the authorization request with resource {resource}"))?;
    if let Some(error) = &callback.error {
        bail!(
            "the authorization request with resource {resource} was refused: {error} {:?}",
            callback.error_description
        );
    }
    let code = callback
        .code
        .as_ref()
        .context("the authorization response has no code")?;
    ctx.step(format!(
        "redeem the code with resource {token_resource} at the token endpoint"
    ));
    let redirect = ctx.session.listener.redirect_uri();
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("client_id", client),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", pkce.verifier.expose()),
        ("resource", token_resource),
    ];
    token::request(ctx.http(), meta.token_endpoint()?, &params).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token::Tokens;

    #[test]
    fn the_audience_must_be_exactly_the_resource() {
        let url = "http://127.0.0.1:8000/mcp";
        assert!(judge_audience(&json!({"aud": [url]}), url).is_ok());
        assert!(judge_audience(&json!({"aud": url}), url).is_ok());
        // Keycloak without the feature ignores `resource`: the realm's audiences stay.
        let e = judge_audience(&json!({"aud": ["nextcloud-mcp-server", "nextcloud"]}), url)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RFC 8707"), "{e}");
        // The resource next to others is not a token bound to it.
        assert!(judge_audience(&json!({"aud": [url, "nextcloud"]}), url).is_err());
        assert!(judge_audience(&json!({"aud": ["nextcloud-mcp-server"]}), url).is_err());
        let e = judge_audience(&json!({"sub": "a"}), url)
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent"), "{e}");
    }

    fn refused(status: u16, error: &str, description: Option<&str>) -> TokenOutcome {
        TokenOutcome::Refused(Refusal {
            status,
            error: error.to_owned(),
            description: description.map(str::to_owned),
        })
    }

    #[test]
    fn only_keycloaks_invalid_target_will_do() {
        let ok = judge_invalid_target(
            refused(400, "invalid_target", Some(INVALID_RESOURCE)),
            INVALID_RESOURCE,
        )
        .unwrap();
        assert_eq!(ok.status, 400);
        assert!(
            judge_invalid_target(
                refused(400, "invalid_target", Some(NOT_MATCHING)),
                INVALID_RESOURCE
            )
            .is_err()
        );
        // Another refusal (a code Keycloak no longer knows, say) is not the one required.
        assert!(
            judge_invalid_target(
                refused(400, "invalid_grant", Some(INVALID_RESOURCE)),
                INVALID_RESOURCE
            )
            .is_err()
        );
        assert!(
            judge_invalid_target(
                refused(401, "invalid_target", Some(NOT_MATCHING)),
                NOT_MATCHING
            )
            .is_err()
        );
    }

    #[test]
    fn tokens_where_a_refusal_is_required_fail() {
        let issued = TokenOutcome::Issued(Tokens {
            access_token: Secret::new(crate::secret::SecretKind::AccessToken, "at"),
            token_type: "Bearer".into(),
            expires_in: Some(300),
            refresh_token: None,
            id_token: None,
            scope: Some("openid".into()),
            issued_token_type: None,
        });
        let e = judge_invalid_target(issued, INVALID_RESOURCE)
            .unwrap_err()
            .to_string();
        assert!(e.contains("issued tokens"), "{e}");
    }

    #[test]
    fn not_applicable_names_the_version() {
        assert!(not_applicable("26.4.7").contains("Keycloak 26.4.7"));
    }
}
