//! REALM: the realm imports, its discovery and keys are served, and it is what the realm
//! file says it is.

use super::{Area, Check, CheckCtx, CheckResult, Subject, pass};
use crate::check_fn;
use crate::keycloak::diff::{self, Mismatch};
use crate::keycloak::realm::MCP_SERVER_CLIENT;
use crate::oauth::discovery::ProviderMetadata;
use crate::oauth::discovery::TOKEN_EXCHANGE_GRANT;
use crate::oauth::{jwt, token};
use crate::session::RealmSource;
use anyhow::{Context, ensure};

pub const CHECKS: &[Check] = &[
    Check {
        id: "REALM-01",
        title: "the realm file imports through the admin API",
        area: Area::Realm,
        spec: "Keycloak-Admin-REST-POST-realms",
        subject: Subject::Realm,
        needs: &[],
        spec_revisions: super::NO_REVISION,
        run: check_fn!(imports),
    },
    Check {
        id: "REALM-02",
        title: "discovery names the realm's issuer, its endpoints, S256 and token exchange",
        area: Area::Realm,
        spec: "OIDC-Discovery-4.3; RFC8414-3.3; RFC8414-2",
        subject: Subject::Keycloak,
        needs: &[],
        spec_revisions: super::NO_REVISION,
        run: check_fn!(discovery),
    }
    .revisions(super::ALL_REVISIONS),
    Check {
        id: "REALM-03",
        title: "the JWKS has an RS256 signing key whose kid validates a fresh token",
        area: Area::Realm,
        spec: "RFC7517-4.5; RFC7515-4.1.4",
        subject: Subject::Keycloak,
        needs: &[],
        spec_revisions: super::NO_REVISION,
        run: check_fn!(jwks),
    },
    Check {
        id: "REALM-04",
        title: "the live realm holds what the realm file sets: each top-level setting, the clients, client scopes, registration and client policies",
        area: Area::Realm,
        spec: "Keycloak-Admin-REST-realm-representation",
        subject: Subject::Realm,
        needs: &[],
        spec_revisions: super::NO_REVISION,
        run: check_fn!(file_is_subset_of_live),
    },
    Check {
        id: "REALM-05",
        title: "the MCP server's client gets a client_credentials token that validates",
        area: Area::Realm,
        spec: "RFC6749-4.4; RFC7519-7.2",
        subject: Subject::Keycloak,
        needs: &[],
        spec_revisions: super::NO_REVISION,
        run: check_fn!(service_account_token),
    },
];

async fn imports(ctx: &CheckCtx) -> CheckResult {
    let realm = &ctx.session.realm;
    for step in ctx
        .session
        .setup
        .steps()
        .into_iter()
        .filter(|s| s.name.starts_with("import realm"))
    {
        ctx.step(step.name.clone());
        step.exchanges
            .into_iter()
            .for_each(|x| ctx.evidence.record(x));
    }
    match &realm.source {
        RealmSource::AlreadyPresent => {
            // The realm was there before the run: import the same file under another
            // name instead (deleted at teardown), so the file itself is still tested.
            ctx.step(format!(
                "the realm {:?} already exists on this Keycloak: import the same file as a variant",
                realm.name
            ));
            let variant = ctx
                .session
                .realm_variant("import", |_| {}, &ctx.evidence)
                .await?;
            let meta = ProviderMetadata::fetch(ctx.http(), &variant.discovery_url()).await?;
            pass(format!(
                "the realm existed already; the same file, imported as {}, answered 201 and {} serves discovery",
                variant.name, meta.issuer
            ))
        }
        RealmSource::Imported { status: 201, .. } => {
            ctx.step("the imported realm answers discovery");
            let meta = ctx.discovery().await?;
            pass(format!(
                "POST /admin/realms answered 201; {} serves discovery",
                meta.issuer
            ))
        }
        RealmSource::Imported { summary, .. } => {
            anyhow::bail!(
                "Keycloak refused the realm file {}: {summary}",
                realm.file.origin
            )
        }
    }
}

async fn discovery(ctx: &CheckCtx) -> CheckResult {
    ctx.step("fetch the realm's discovery document");
    let meta = ctx.discovery().await?;
    let realm = ctx.realm()?;
    let want_issuer = realm.issuer();
    ensure!(
        meta.issuer == want_issuer,
        "issuer is {:?}, expected {want_issuer:?}",
        meta.issuer
    );
    let endpoints = [
        ("authorization_endpoint", &meta.authorization_endpoint),
        ("token_endpoint", &meta.token_endpoint),
        ("jwks_uri", &meta.jwks_uri),
        ("registration_endpoint", &meta.registration_endpoint),
        ("introspection_endpoint", &meta.introspection_endpoint),
        ("revocation_endpoint", &meta.revocation_endpoint),
    ];
    let missing: Vec<&str> = endpoints
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    ensure!(missing.is_empty(), "discovery lacks {}", missing.join(", "));
    for (name, url) in endpoints {
        let url = url.as_deref().unwrap_or_default();
        ensure!(
            url.starts_with(&want_issuer),
            "{name} {url:?} is not under the issuer {want_issuer}"
        );
    }
    ensure!(
        meta.code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256"),
        "code_challenge_methods_supported {:?} lacks S256",
        meta.code_challenge_methods_supported
    );
    ensure!(
        meta.grant_types_supported
            .iter()
            .any(|g| g == TOKEN_EXCHANGE_GRANT),
        "grant_types_supported {:?} lacks {TOKEN_EXCHANGE_GRANT}",
        meta.grant_types_supported
    );
    pass(format!(
        "issuer {}, {} endpoints under it, S256 and the token-exchange grant advertised",
        meta.issuer,
        endpoints.len()
    ))
}

async fn jwks(ctx: &CheckCtx) -> CheckResult {
    ctx.step("fetch discovery and the JWKS");
    let meta = ctx.discovery().await?;
    let keys = ctx.jwks(&meta).await?;
    let signing: Vec<&jsonwebtoken::jwk::Jwk> = keys
        .keys
        .iter()
        .filter(|k| {
            k.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
                && k.common.key_algorithm == Some(jsonwebtoken::jwk::KeyAlgorithm::RS256)
        })
        .collect();
    ensure!(
        !signing.is_empty(),
        "no key with use=sig and alg=RS256 among {} keys",
        keys.keys.len()
    );
    ctx.step("obtain a fresh token (client_credentials) and validate it against the JWKS");
    let secret = ctx.client_secret(MCP_SERVER_CLIENT)?;
    let tokens = token::client_credentials(
        ctx.http(),
        meta.token_endpoint()?,
        MCP_SERVER_CLIENT,
        &secret,
        None,
    )
    .await?
    .issued("client_credentials for nextcloud-mcp-server")?;
    let (header, _) = jwt::peek(tokens.access_token.expose())?;
    let kid = header.kid.context("the fresh token has no kid")?;
    ensure!(
        signing
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid.as_str())),
        "the token's kid {kid:?} is not one of the RS256 signing keys"
    );
    jwt::verify(
        &tokens.access_token,
        &keys,
        &jwt::Expect {
            issuer: Some(&meta.issuer),
            ..Default::default()
        },
    )?;
    pass(format!(
        "{} RS256 signing key(s); kid {kid} validates a fresh token",
        signing.len()
    ))
}

async fn file_is_subset_of_live(ctx: &CheckCtx) -> CheckResult {
    let realm = ctx.realm()?;
    let admin = ctx.admin();
    ctx.step("read the live realm through the admin API");
    let live = diff::LiveRealm::read(&admin, &realm.name).await?;
    let mismatches: Vec<Mismatch> = diff::file_subset_of_live(&realm.filled(), &live);
    ctx.step("compare the realm file with the live realm");
    for m in &mismatches {
        ctx.note(m.to_string());
    }
    ensure!(
        mismatches.is_empty(),
        "{} difference(s) between the realm file and the live realm: {}",
        mismatches.len(),
        mismatches
            .iter()
            .map(Mismatch::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let counts = |key: &str| realm.file.json[key].as_array().map(Vec::len).unwrap_or(0);
    pass(format!(
        "{} realm settings, {} clients, {} client scopes and the registration and client policies match the file",
        diff::setting_keys(&realm.file.json).len(),
        counts("clients"),
        counts("clientScopes")
    ))
}

async fn service_account_token(ctx: &CheckCtx) -> CheckResult {
    let secret = ctx.client_secret(MCP_SERVER_CLIENT)?;
    let (tokens, claims) = ctx
        .verified_client_credentials(MCP_SERVER_CLIENT, &secret)
        .await?;
    ensure!(
        tokens.token_type.eq_ignore_ascii_case("bearer"),
        "token_type is {:?}, expected Bearer",
        tokens.token_type
    );
    ensure!(
        claims["azp"] == MCP_SERVER_CLIENT,
        "azp is {}, expected {MCP_SERVER_CLIENT}",
        claims["azp"]
    );
    ensure!(
        claims["exp"].as_i64().is_some(),
        "the token has no numeric exp"
    );
    let exp = claims["exp"].as_i64().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    ensure!(
        exp > now,
        "the fresh token is already expired (exp {exp}, now {now})"
    );
    pass(format!(
        "signature, iss, exp (in {}s) and azp {MCP_SERVER_CLIENT} validate",
        exp - now
    ))
}
