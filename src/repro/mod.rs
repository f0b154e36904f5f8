//! `repro impersonation`: shows, live, what Keycloak's Standard Token Exchange (V2) does
//! with impersonation requests, what Legacy V1 does instead, and what each needs.
//!
//! Two boots, one after the other: (A) default features, where Standard V2 answers; (B)
//! `token-exchange:v1` and `admin-fine-grained-authz:v1` with `token-exchange-standard`
//! disabled (if Keycloak refuses that, V2 stays enabled and each cell says which provider
//! answered). Each boot imports the small realm of [`realm`] through the admin API and
//! sends the requests of [`requests`]; boot B sends them before and after granting V1's
//! permissions. The raw results ([`model`]) render as a table ([`render`]).

pub mod model;
pub mod realm;
pub mod render;
pub mod requests;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;

use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::progress::Progress;
use crate::runner::Interrupt;
use crate::stack::run::RunContext;
use crate::stack::{
    Backend, BuildOptions, KeycloakEndpoint, KeycloakOptions, McpServerOptions, Stack, StackConfig,
};
use model::{BootRecord, BuildRecord, ColumnResult, ImpersonationResults, SCHEMA_VERSION};
use realm::ReproRealm;

/// What to run against.
#[derive(Clone, Debug)]
pub struct ImpersonationOptions {
    pub keycloak_version: String,
    pub dist: Option<PathBuf>,
    pub boot_timeout: Duration,
    /// The command as the user typed it, for the output's header.
    pub command_line: Vec<String>,
}

/// The end of a reproduction.
#[derive(Debug)]
pub enum Outcome {
    /// Both boots ran, or one failed: see [`ImpersonationResults::all_booted`].
    Done(Box<ImpersonationResults>),
    /// A signal arrived; everything started has been stopped.
    Interrupted(&'static str),
}

pub const BOOT_STANDARD: &str = "standard";
pub const BOOT_LEGACY: &str = "legacy";

/// Build options of the legacy boot, as asked for.
pub fn legacy_build() -> BuildOptions {
    BuildOptions {
        features: vec![
            "token-exchange:v1".to_owned(),
            "admin-fine-grained-authz:v1".to_owned(),
        ],
        features_disabled: vec!["token-exchange-standard".to_owned()],
    }
}

/// Runs the reproduction. `runs` are two fresh run contexts, one per boot (a Keycloak
/// home is built once per run directory); the caller finishes them. Each boot is a bare
/// stack (Keycloak alone, no session): the realm here is the reproduction's own.
pub async fn impersonation(
    runs: [&Arc<RunContext>; 2],
    opts: &ImpersonationOptions,
    progress: &Arc<Progress>,
    interrupt: &Interrupt,
) -> Outcome {
    let mut results = ImpersonationResults {
        schema_version: SCHEMA_VERSION,
        tool: "mcp-authz-harness repro impersonation".to_owned(),
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        command_line: opts.command_line.clone(),
        date: rfc3339(runs[0].started_at),
        keycloak_version: opts.keycloak_version.clone(),
        realm: realm::REALM.to_owned(),
        notes: notes(),
        boots: Vec::new(),
        requests: requests::requests().iter().map(|r| r.spec()).collect(),
        columns: Vec::new(),
    };

    // (A) Standard V2: default features.
    let standard = BuildOptions::default();
    let (kc, record) = match boot(
        runs[0],
        opts,
        BOOT_STANDARD,
        &standard,
        &standard,
        progress,
        interrupt,
    )
    .await
    {
        Booted::Up(kc, record) => (kc, record),
        Booted::Failed(record) => {
            results.boots.push(record);
            results
                .boots
                .push(not_attempted(BOOT_LEGACY, &legacy_build()));
            return Outcome::Done(Box::new(results));
        }
        Booted::Interrupted(sig) => return Outcome::Interrupted(sig),
    };
    let mut record = record;
    let columns = scenario(kc, &mut record, progress, interrupt, Scenario::Standard).await;
    results.boots.push(record);
    match columns {
        Ok(c) => results.columns.extend(c),
        Err(Stop::Interrupted(sig)) => return Outcome::Interrupted(sig),
        Err(Stop::Failed(e)) => {
            results
                .boots
                .push(not_attempted(BOOT_LEGACY, &legacy_build()));
            results.boots[0].error = Some(e);
            return Outcome::Done(Box::new(results));
        }
    }

    // (B) Legacy V1, V2 disabled; when Keycloak refuses that, V2 left on.
    let wanted = legacy_build();
    let mut booted = boot(
        runs[1],
        opts,
        BOOT_LEGACY,
        &wanted,
        &wanted,
        progress,
        interrupt,
    )
    .await;
    if let Booted::Failed(first) = &booted {
        let refused = first.error.clone().unwrap_or_default();
        progress.println(&format!(
            "Keycloak did not boot with {}; retrying with V2 left enabled",
            wanted.args().join(" ")
        ));
        // The refused attempt's Keycloak home (if it got that far) is in the way of the
        // next one; its process is gone (start() drops it on failure).
        let _ = std::fs::remove_dir_all(runs[1].path("keycloak"));
        let fallback = BuildOptions {
            features_disabled: Vec::new(),
            ..wanted.clone()
        };
        booted = boot(
            runs[1],
            opts,
            BOOT_LEGACY,
            &wanted,
            &fallback,
            progress,
            interrupt,
        )
        .await;
        if let Booted::Up(_, r) | Booted::Failed(r) = &mut booted {
            r.fallback = Some(format!(
                "Keycloak did not boot with `--features-disabled=token-exchange-standard`, so V2 stays enabled and each cell says which provider answered. The refused boot: {}",
                first_lines(&refused, 6)
            ));
        }
    }
    let (kc, mut record) = match booted {
        Booted::Up(kc, record) => (kc, record),
        Booted::Failed(record) => {
            results.boots.push(record);
            return Outcome::Done(Box::new(results));
        }
        Booted::Interrupted(sig) => return Outcome::Interrupted(sig),
    };
    let columns = scenario(kc, &mut record, progress, interrupt, Scenario::Legacy).await;
    results.boots.push(record);
    match columns {
        Ok(c) => results.columns.extend(c),
        Err(Stop::Interrupted(sig)) => return Outcome::Interrupted(sig),
        Err(Stop::Failed(e)) => {
            if let Some(b) = results.boots.last_mut() {
                b.error = Some(e);
            }
        }
    }
    Outcome::Done(Box::new(results))
}

fn notes() -> Vec<String> {
    vec![
        format!(
            "`{}` is a public client with the password grant, used only to obtain alice's subject token without a browser: a reproduction device, not a recommendation.",
            realm::LOGIN
        ),
        format!(
            "Every request is sent by the confidential client `{}` (client_secret_post), identically in each column; a column's settings are all it changes.",
            realm::REQUESTER
        ),
        "Cells show the HTTP status, `error`, `error_description`, and for an issued access token the decoded `sub` as a username (from `preferred_username`, else the admin API), never the token.".to_owned(),
    ]
}

enum Booted {
    Up(Box<Stack>, BootRecord),
    Failed(BootRecord),
    Interrupted(&'static str),
}

enum Stop {
    Interrupted(&'static str),
    Failed(String),
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Standard,
    Legacy,
}

fn boot_title(id: &str) -> &'static str {
    if id == BOOT_STANDARD {
        "Standard Token Exchange V2 (default features)"
    } else {
        "Legacy Token Exchange V1"
    }
}

fn build_record(b: &BuildOptions) -> BuildRecord {
    BuildRecord {
        features: b.features.clone(),
        features_disabled: b.features_disabled.clone(),
    }
}

fn not_attempted(id: &str, build: &BuildOptions) -> BootRecord {
    BootRecord {
        id: id.to_owned(),
        title: boot_title(id).to_owned(),
        requested: build_record(build),
        used: build_record(build),
        fallback: None,
        keycloak_version: None,
        java: None,
        argv: Vec::new(),
        features_enabled: Vec::new(),
        boot_seconds: None,
        error: Some("not attempted: the previous boot failed".to_owned()),
    }
}

/// Boots Keycloak with `used` and reads its enabled features.
#[allow(clippy::too_many_arguments)]
async fn boot(
    run: &Arc<RunContext>,
    opts: &ImpersonationOptions,
    id: &str,
    requested: &BuildOptions,
    used: &BuildOptions,
    progress: &Arc<Progress>,
    interrupt: &Interrupt,
) -> Booted {
    let mut record = not_attempted(id, requested);
    record.used = build_record(used);
    record.error = None;
    let cfg = StackConfig {
        backend: Backend::Native,
        keycloak: KeycloakOptions {
            version: opts.keycloak_version.clone(),
            dist: opts.dist.clone(),
            build: used.clone(),
            boot_timeout: opts.boot_timeout,
        },
        external: None,
        needs: Vec::new(),
        mcp_server: McpServerOptions::new(crate::config::DEFAULT_MCP_SERVER_VERSION),
        subject: Default::default(),
        stand_in_leniency: Default::default(),
        containers: Default::default(),
    };
    progress.println(&format!(
        "booting Keycloak {} for the {id} columns ({})",
        opts.keycloak_version,
        if used.args().len() > 2 {
            used.args()[2..].join(" ")
        } else {
            "default features".to_owned()
        }
    ));
    let result = match interrupt
        .guard(Stack::up(run.clone(), &cfg, progress.clone()))
        .await
    {
        Ok(r) => r,
        Err(sig) => return Booted::Interrupted(sig),
    };
    let stack = match result {
        Ok(s) => s,
        Err(e) => {
            record.error = Some(crate::secret::redact(&e.message));
            return Booted::Failed(record);
        }
    };
    let kc = &stack.keycloak;
    record.keycloak_version = Some(kc.version.clone());
    record.java = stack
        .components
        .iter()
        .find(|(name, _)| name == "java")
        .map(|(_, v)| v.clone());
    record.argv = stack.keycloak_argv.clone();
    record.boot_seconds = kc
        .boot_time
        .map(|t| (t.as_secs_f64() * 10.0).round() / 10.0);
    let features = interrupt.guard(admin_client(kc).enabled_features()).await;
    match features {
        Ok(Ok(f)) => record.features_enabled = f,
        Ok(Err(e)) => {
            stack.stop().await;
            record.error = Some(format!("reading serverinfo: {e:#}"));
            return Booted::Failed(record);
        }
        Err(sig) => {
            stack.stop().await;
            return Booted::Interrupted(sig);
        }
    }
    Booted::Up(Box::new(stack), record)
}

fn admin_client(kc: &KeycloakEndpoint) -> AdminClient {
    AdminClient::new(
        Http::new(DEFAULT_TIMEOUT),
        &kc.base_url,
        &kc.admin_user,
        kc.admin_password.clone(),
    )
}

/// Imports the realm, runs the boot's columns, and stops Keycloak whatever happened.
async fn scenario(
    stack: Box<Stack>,
    record: &mut BootRecord,
    progress: &Progress,
    interrupt: &Interrupt,
    which: Scenario,
) -> Result<Vec<ColumnResult>, Stop> {
    let work = columns(&stack.keycloak, record, progress, which);
    let out = match interrupt.guard(work).await {
        Ok(r) => r.map_err(|e| Stop::Failed(crate::secret::redact(&format!("{e:#}")))),
        Err(sig) => Err(Stop::Interrupted(sig)),
    };
    progress.tick(&format!("stopping Keycloak ({})", record.id));
    stack.stop().await;
    out
}

async fn columns(
    kc: &KeycloakEndpoint,
    record: &BootRecord,
    progress: &Progress,
    which: Scenario,
) -> anyhow::Result<Vec<ColumnResult>> {
    let admin = admin_client(kc);
    let repro = ReproRealm::generate();
    progress.tick(&format!("importing realm {}", realm::REALM));
    let resp = admin.import_realm(&repro.representation()).await?;
    anyhow::ensure!(
        resp.status == 201,
        "importing realm {}: {}",
        realm::REALM,
        resp.summary()
    );
    let http = Http::new(DEFAULT_TIMEOUT);
    let target = requests::Target {
        http: &http,
        base_url: &kc.base_url,
        admin: &admin,
        realm: &repro,
        features: &record.features_enabled,
    };
    let features = features_setting(record);
    let mut settings = vec![features];
    settings.extend(realm::realm_settings());
    match which {
        Scenario::Standard => {
            progress.tick("sending the requests (V2)");
            let cells = requests::run_column(&target)
                .await
                .context("the V2 column")?;
            Ok(vec![ColumnResult {
                id: "v2".into(),
                title: "V2 (standard)".into(),
                boot: record.id.clone(),
                settings,
                setup: Vec::new(),
                setup_error: None,
                cells,
            }])
        }
        Scenario::Legacy => {
            progress.tick("sending the requests (V1, no permissions)");
            let without = requests::run_column(&target)
                .await
                .context("the V1 column without permissions")?;
            let mut setup = Vec::new();
            progress.tick("granting V1 permissions through the admin API");
            let setup_error = realm::grant_v1_permissions(&admin, &mut setup)
                .await
                .err()
                .map(|e| crate::secret::redact(&format!("{e:#}")));
            progress.tick("sending the requests (V1, with permissions)");
            let with = requests::run_column(&target)
                .await
                .context("the V1 column with permissions")?;
            let mut with_settings = settings.clone();
            with_settings.extend(realm::permission_settings());
            Ok(vec![
                ColumnResult {
                    id: "v1-without-permissions".into(),
                    title: "V1 without permissions".into(),
                    boot: record.id.clone(),
                    settings: settings.clone(),
                    setup: Vec::new(),
                    setup_error: None,
                    cells: without,
                },
                ColumnResult {
                    id: "v1-with-permissions".into(),
                    title: "V1 with permissions".into(),
                    boot: record.id.clone(),
                    settings: with_settings,
                    setup,
                    setup_error,
                    cells: with,
                },
            ])
        }
    }
}

/// The feature setting a column ran under, as options and as serverinfo reports it.
fn features_setting(record: &BootRecord) -> String {
    let opts = if record.used.features.is_empty() && record.used.features_disabled.is_empty() {
        "default features".to_owned()
    } else {
        let mut parts = Vec::new();
        if !record.used.features.is_empty() {
            parts.push(format!("`--features={}`", record.used.features.join(",")));
        }
        if !record.used.features_disabled.is_empty() {
            parts.push(format!(
                "`--features-disabled={}`",
                record.used.features_disabled.join(",")
            ));
        }
        parts.join(" ")
    };
    let relevant: Vec<&str> = record
        .features_enabled
        .iter()
        .map(String::as_str)
        .filter(|f| f.starts_with("TOKEN_EXCHANGE") || f.starts_with("ADMIN_FINE_GRAINED_AUTHZ"))
        .collect();
    format!(
        "features: {opts} (serverinfo: {})",
        if relevant.is_empty() {
            "none of TOKEN_EXCHANGE*, ADMIN_FINE_GRAINED_AUTHZ*".to_owned()
        } else {
            relevant.join(", ")
        }
    )
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join(" / ")
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Serializes `results` and checks the text against every secret value this process
/// registered (passwords, client secrets, tokens): none may appear.
pub fn to_json(results: &ImpersonationResults) -> anyhow::Result<String> {
    let text = serde_json::to_string_pretty(results)? + "\n";
    ensure_no_secrets(&text)?;
    Ok(text)
}

/// Fails when `text` contains a registered secret value or anything shaped like a JWT.
pub fn ensure_no_secrets(text: &str) -> anyhow::Result<()> {
    for (value, kind) in crate::secret::Redactor::global().known_values() {
        anyhow::ensure!(
            !text.contains(&value),
            "refusing to write the results: they contain a {} in clear",
            kind.label()
        );
    }
    anyhow::ensure!(
        crate::secret::redact(text) == text,
        "refusing to write the results: they contain something shaped like a JWT"
    );
    Ok(())
}
