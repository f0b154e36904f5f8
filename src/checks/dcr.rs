//! DCR: dynamic client registration (RFC 7591) and its management (RFC 7592) on the live
//! Keycloak, with the baseline realm's anonymous registration policies.

use anyhow::ensure;
use serde_json::{Value, json};

use super::{Area, Check, CheckCtx, CheckResult, Subject, pass};
use crate::check_fn;
use crate::oauth::dcr::{self, Registration};
use crate::oauth::token;

const fn dcr_check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Dcr,
        spec,
        subject: Subject::Keycloak,
        needs: &[],
        spec_revisions: super::NO_REVISION,
        run,
    }
}

pub const CHECKS: &[Check] = &[
    dcr_check(
        "DCR-01",
        "anonymous registration creates a confidential client and echoes its metadata",
        "RFC7591-3.2.1; MCP-authz DCR: SHOULD in 2025-06-18, MAY in 2025-11-25, MAY and deprecated in favour of CIMD in 2026-07-28",
        check_fn!(create),
    ).revisions(super::ALL_REVISIONS),
    dcr_check(
        "DCR-02",
        "a client_id in the registration request is refused",
        "RFC7591-3.2.2",
        check_fn!(client_id_refused),
    ).revisions(super::ALL_REVISIONS),
    dcr_check(
        "DCR-03",
        "a redirect URI outside the trusted hosts is refused by policy",
        "RFC7591-3.2.2; Keycloak-Trusted-Hosts-policy",
        check_fn!(untrusted_redirect_refused),
    ).revisions(super::ALL_REVISIONS),
    dcr_check(
        "DCR-04",
        "a scope outside the allowed client scopes is refused by policy",
        "RFC7591-3.2.2; Keycloak-Allowed-Client-Scopes-policy",
        check_fn!(scope_refused),
    ).revisions(super::ALL_REVISIONS),
    dcr_check(
        "DCR-05",
        "read returns the metadata with the registration access token; a wrong token gets 401",
        "RFC7592-2.1",
        check_fn!(read),
    ),
    dcr_check(
        "DCR-06",
        "update replaces the metadata and rotates the registration access token",
        "RFC7592-2.2",
        check_fn!(update),
    ),
    dcr_check(
        "DCR-07",
        "delete removes the client: 204, then every management call and its credentials are refused",
        "RFC7592-2.3",
        check_fn!(delete),
    ),
    dcr_check(
        "DCR-08",
        "a registered confidential client gets a client_credentials token that validates",
        "RFC7591-3.2.1; RFC6749-4.4",
        check_fn!(client_credentials),
    ),
    dcr_check(
        "DCR-09",
        "registration with an initial access token",
        "RFC7591-3",
        check_fn!(initial_access_token),
    ),
    Check {
        needs: &[super::Need::Browser],
        ..dcr_check(
            "DCR-10",
            "SHOULD/MUST: a Client ID Metadata Document is fetched and checked: its client_id and redirect URIs must match the request (CIMD)",
            "MCP-authz 2026-07-28 Client Registration, Client ID Metadata Documents: the authorization server SHOULD fetch the document, MUST check that its client_id equals the URL and MUST validate its redirect URIs; discovery advertises client_id_metadata_document_supported; draft-ietf-oauth-client-id-metadata-document",
            check_fn!(super::cimd::client_id_metadata_document),
        )
    }
    .revisions(super::SINCE_2026_07_28),
];

/// Metadata of a confidential client on loopback (a trusted host).
fn confidential_metadata() -> Value {
    json!({
        "redirect_uris": ["http://127.0.0.1:8765/callback"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
    })
}

/// Registers a confidential client for this check (anonymously).
async fn register(ctx: &CheckCtx, metadata: &Value) -> anyhow::Result<Registration> {
    let realm = ctx.realm()?;
    ctx.session
        .register_client(ctx.http(), realm, metadata, None)
        .await?
        .client("anonymous registration")
}

async fn create(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register a confidential client anonymously");
    let realm = ctx.realm()?;
    let outcome = ctx
        .session
        .register_client(ctx.http(), realm, &confidential_metadata(), None)
        .await?;
    ensure!(
        outcome.status() == 201,
        "registration answered HTTP {}, expected 201",
        outcome.status()
    );
    let reg = outcome.client("anonymous registration")?;
    ensure!(!reg.client_id.is_empty(), "client_id is empty");
    ensure!(
        reg.client_secret.is_some(),
        "no client_secret for a client_secret_post client (RFC 7591 §3.2.1)"
    );
    let (uri, _) = reg.management()?;
    ensure!(
        uri.ends_with(&reg.client_id),
        "registration_client_uri {uri} does not name the client {}",
        reg.client_id
    );
    let m = &reg.metadata;
    ensure!(
        m["client_name"]
            .as_str()
            .is_some_and(|n| n.starts_with(crate::session::CLIENT_NAME_PREFIX)),
        "client_name not echoed: {}",
        m["client_name"]
    );
    ensure!(
        m["redirect_uris"] == confidential_metadata()["redirect_uris"],
        "redirect_uris not echoed: {}",
        m["redirect_uris"]
    );
    // RFC 7591 §3.2.1 lets the server replace a requested value, as long as the response
    // says what was registered; a client-secret method is what this client asked for.
    let method = m["token_endpoint_auth_method"].as_str().unwrap_or_default();
    ensure!(
        matches!(method, "client_secret_post" | "client_secret_basic"),
        "token_endpoint_auth_method is {method:?}, expected a client-secret method"
    );
    let replaced = if method == "client_secret_post" {
        String::new()
    } else {
        ctx.note(format!(
            "the server replaced token_endpoint_auth_method client_secret_post with {method}"
        ));
        format!(" (token_endpoint_auth_method replaced by {method}, as RFC 7591 §3.2.1 allows)")
    };
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        ensure!(
            m["grant_types"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == g)),
            "grant_types {} lacks {g}",
            m["grant_types"]
        );
    }
    pass(format!(
        "201 with client_id {}, a secret, the RFC 7592 handles and the metadata echoed{replaced}",
        reg.client_id
    ))
}

async fn client_id_refused(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register with a client_id chosen by the client");
    let realm = ctx.realm()?;
    let mut m = confidential_metadata();
    m["client_id"] = json!(format!("chosen-by-client-{}", ctx.session.run.id));
    let refusal = ctx
        .session
        .register_client(ctx.http(), realm, &m, None)
        .await?
        .refused("registration with a client_id")?;
    ensure!(
        refusal.is(400, "invalid_client_metadata", "Client Identifier included"),
        "refused with {refusal}, expected HTTP 400 invalid_client_metadata: Client Identifier included"
    );
    pass(format!("refused: {refusal}"))
}

async fn untrusted_redirect_refused(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register with a redirect URI on an untrusted host");
    let realm = ctx.realm()?;
    let mut m = confidential_metadata();
    m["redirect_uris"] = json!(["https://attacker.example/callback"]);
    let r = ctx
        .session
        .register_client(ctx.http(), realm, &m, None)
        .await?
        .refused("registration with a foreign redirect URI")?;
    let want = "Policy 'Trusted Hosts' rejected request to client-registration service. Details: URI doesn't match any trusted host or trusted domain";
    ensure!(
        r.status == 403
            && r.error == "insufficient_scope"
            && r.description.as_deref() == Some(want),
        "refused with {r}, expected HTTP 403 insufficient_scope: {want}"
    );
    pass(format!("refused: {r}"))
}

async fn scope_refused(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register asking for a client scope the anonymous policy does not allow");
    let realm = ctx.realm()?;
    let mut m = confidential_metadata();
    m["scope"] = json!("openid nextcloud-admin");
    let r = ctx
        .session
        .register_client(ctx.http(), realm, &m, None)
        .await?
        .refused("registration with a disallowed scope")?;
    let want = "Policy 'Allowed Client Scopes' rejected request to client-registration service. Details: Not permitted to use specified clientScope";
    ensure!(
        r.status == 403
            && r.error == "insufficient_scope"
            && r.description.as_deref() == Some(want),
        "refused with {r}, expected HTTP 403 insufficient_scope: {want}"
    );
    pass(format!("refused: {r}"))
}

async fn read(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register a client");
    let reg = register(ctx, &confidential_metadata()).await?;
    let (uri, token) = reg.management()?;
    ctx.step("read it with its registration access token");
    let got = dcr::read(ctx.http(), uri, token).await?;
    ensure!(
        got.status() == 200,
        "read answered HTTP {}, expected 200",
        got.status()
    );
    let got = got.client("read")?;
    ensure!(
        got.client_id == reg.client_id,
        "read returned client {}, expected {}",
        got.client_id,
        reg.client_id
    );
    ensure!(
        got.metadata["redirect_uris"] == confidential_metadata()["redirect_uris"],
        "read returned redirect_uris {}",
        got.metadata["redirect_uris"]
    );
    let same_token = got.registration_access_token.as_ref() == Some(token);
    ctx.note(format!(
        "the token returned by read is {} the one used",
        if same_token {
            "the same as"
        } else {
            "different from"
        }
    ));
    ensure!(
        same_token,
        "read returned a different registration access token (or none)"
    );
    ctx.step("read it with a wrong token");
    let wrong = crate::secret::Secret::new(
        crate::secret::SecretKind::RegistrationToken,
        format!("{}x", token.expose()),
    );
    let r = dcr::read(ctx.http(), uri, &wrong)
        .await?
        .refused("read with a wrong token")?;
    ensure!(
        r.status == 401 && r.error == "invalid_token",
        "a wrong token got {r}, expected HTTP 401 invalid_token"
    );
    pass(format!(
        "200 with the metadata and the same token; wrong token: {r}"
    ))
}

async fn update(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register a client");
    let reg = register(ctx, &confidential_metadata()).await?;
    let (uri, old) = reg.management()?;
    ctx.step("update it: new redirect URI, same client_id");
    let mut m = confidential_metadata();
    m["client_id"] = json!(reg.client_id);
    m["redirect_uris"] = json!(["http://127.0.0.1:8766/other"]);
    let updated = dcr::update(ctx.http(), uri, old, &m)
        .await?
        .client("update")?;
    ctx.session
        .clients
        .rotate(&reg.client_id, updated.registration_access_token.as_ref());
    ensure!(
        updated.metadata["redirect_uris"] == m["redirect_uris"],
        "redirect_uris after update: {}",
        updated.metadata["redirect_uris"]
    );
    let new = updated
        .registration_access_token
        .clone()
        .ok_or_else(|| anyhow::anyhow!("update returned no registration access token"))?;
    ensure!(
        &new != old,
        "update returned the same registration access token; RFC 7592 §2.2 lets the server rotate it and Keycloak does"
    );
    ctx.step("the old registration access token is refused");
    let r = dcr::read(ctx.http(), uri, old)
        .await?
        .refused("read with the rotated-out token")?;
    ensure!(r.status == 401, "the old token got {r}, expected HTTP 401");
    ctx.step("the new one works");
    dcr::read(ctx.http(), uri, &new)
        .await?
        .client("read with the new token")?;
    ctx.step("an update whose client_id differs is refused");
    let mut other = m.clone();
    other["client_id"] = json!(format!("{}-other", reg.client_id));
    let r2 = dcr::update(ctx.http(), uri, &new, &other)
        .await?
        .refused("update with another client_id")?;
    ensure!(
        r2.is(400, "invalid_client_metadata", "Client Identifier modified"),
        "a changed client_id got {r2}, expected HTTP 400 invalid_client_metadata: Client Identifier modified"
    );
    pass(format!(
        "metadata replaced, token rotated, old token {r}; changed client_id: {r2}"
    ))
}

async fn delete(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register a client and get a token with it");
    let reg = register(ctx, &confidential_metadata()).await?;
    let (uri, rat) = reg.management()?;
    let meta = ctx.discovery().await?;
    let secret = reg
        .client_secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no client secret"))?;
    token::client_credentials(
        ctx.http(),
        meta.token_endpoint()?,
        &reg.client_id,
        &secret,
        None,
    )
    .await?
    .issued("client_credentials before the delete")?;
    ctx.step("delete it");
    let outcome = dcr::delete(ctx.http(), uri, rat).await?;
    ensure!(
        outcome.status() == 204,
        "delete answered HTTP {}, expected 204",
        outcome.status()
    );
    ctx.session.clients.deleted_by_check(&reg.client_id);
    ctx.step("read, update and delete afterwards");
    let r = dcr::read(ctx.http(), uri, rat)
        .await?
        .refused("read after delete")?;
    let mut m = confidential_metadata();
    m["client_id"] = json!(reg.client_id);
    let u = dcr::update(ctx.http(), uri, rat, &m)
        .await?
        .refused("update after delete")?;
    let d = dcr::delete(ctx.http(), uri, rat)
        .await?
        .refused("delete after delete")?;
    for (what, x) in [("read", &r), ("update", &u), ("delete", &d)] {
        ensure!(
            x.status == 401,
            "{what} after delete got {x}, expected HTTP 401"
        );
    }
    ctx.step("the deleted client's credentials no longer work");
    let c = token::client_credentials(
        ctx.http(),
        meta.token_endpoint()?,
        &reg.client_id,
        &secret,
        None,
    )
    .await?
    .refused("client_credentials after delete")?;
    ensure!(
        c.error == "invalid_client",
        "client_credentials after delete got {c}, expected invalid_client"
    );
    pass(format!(
        "204; then read/update/delete 401 and client_credentials {c}"
    ))
}

async fn client_credentials(ctx: &CheckCtx) -> CheckResult {
    ctx.step("register a confidential client");
    let reg = register(ctx, &confidential_metadata()).await?;
    let secret = reg
        .client_secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no client secret"))?;
    let (_, claims) = ctx
        .verified_client_credentials(&reg.client_id, &secret)
        .await?;
    ensure!(
        claims["azp"] == reg.client_id.as_str(),
        "azp is {}, expected {}",
        claims["azp"],
        reg.client_id
    );
    pass(format!(
        "token for {} validates (signature, iss, exp, azp)",
        reg.client_id
    ))
}

async fn initial_access_token(ctx: &CheckCtx) -> CheckResult {
    let realm = ctx.realm()?;
    ctx.step("create an initial access token through the admin API");
    let iat = ctx
        .admin()
        .initial_access_token(&realm.name, 1, 300)
        .await?;
    ctx.step("register with it");
    let outcome = ctx
        .session
        .register_client(ctx.http(), realm, &confidential_metadata(), Some(&iat))
        .await?;
    ensure!(
        outcome.status() == 201,
        "registration with an initial access token answered HTTP {}",
        outcome.status()
    );
    let reg = outcome.client("registration with an initial access token")?;
    ctx.step("the token was for one registration only");
    let again = ctx
        .session
        .register_client(ctx.http(), realm, &confidential_metadata(), Some(&iat))
        .await?;
    let r = again.refused("a second registration with a single-use initial access token")?;
    ensure!(
        r.status == 401,
        "the used-up initial access token got {r}, expected HTTP 401"
    );
    pass(format!(
        "client {} registered; the used-up token is refused ({r})",
        reg.client_id
    ))
}
