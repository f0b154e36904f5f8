//! The database files themselves: where they are and who may read them, what their raw
//! bytes give away, how their values were encrypted, and the inventory of what they hold.

use std::path::{Path, PathBuf};

use anyhow::ensure;

use super::super::{CheckCtx, CheckResult, pass};
use super::lab::Lab;
use crate::secret::{Redactor, Secret, SecretKind};
use crate::storage::inventory::Inventory;
use crate::storage::keying::{self, Keyed};
use crate::storage::scan::{Matcher, needles};
use crate::storage::{Cipher, TokenDb, files_of, mode_of};

/// A database the run can read, with the key its server was given.
struct Db {
    label: String,
    path: PathBuf,
    key: Secret,
}

/// The session's own server's database (read only), the lab's, and the DCR instance's
/// when it registered.
async fn databases(ctx: &CheckCtx, lab: &Lab) -> anyhow::Result<Vec<Db>> {
    let mut dbs = Vec::new();
    if let Ok(m) = ctx.mcp_server()
        && let (Some(path), Some(key)) = (&m.db_path, &m.fernet_key)
    {
        dbs.push(Db {
            label: "the session's MCP server".into(),
            path: path.clone(),
            key: key.clone(),
        });
    }
    let i = lab.instance()?;
    dbs.push(Db {
        label: format!("instance {}", i.name),
        path: i.db_path.clone(),
        key: i.fernet_key.clone(),
    });
    let dcr = super::dcr::Dcr::get(ctx).await;
    match (&dcr.instance, &dcr.client) {
        (Some(i), Ok(_)) => dbs.push(Db {
            label: format!("instance {}", i.name),
            path: i.db_path.clone(),
            key: i.fernet_key.clone(),
        }),
        (_, Err(why)) => ctx.note(format!("no DCR instance database: {why}")),
        _ => {}
    }
    Ok(dbs)
}

/// What the plaintext of an encrypted column is, for naming it in findings.
fn kind_of(column: &str) -> SecretKind {
    match column {
        "encrypted_token" => SecretKind::RefreshToken,
        "encrypted_password" => SecretKind::AppPassword,
        "encrypted_client_secret" => SecretKind::ClientSecret,
        "encrypted_registration_access_token" => SecretKind::RegistrationToken,
        _ => SecretKind::Token,
    }
}

/// Every value of every `encrypted_*` column: (place, stored bytes).
fn encrypted_values(db: &TokenDb) -> anyhow::Result<Vec<(String, Vec<u8>, String)>> {
    Ok(db
        .all_values()?
        .into_iter()
        .filter(|v| v.column.starts_with("encrypted_"))
        .map(|v| {
            (
                v.place(),
                v.cell.bytes().unwrap_or_default().to_vec(),
                v.column.clone(),
            )
        })
        .collect())
}

/// STORAGE-01.
pub(super) async fn path_and_mode(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    let mut checked = Vec::new();
    if let Ok(m) = ctx.mcp_server()
        && let (Some(path), Some(home)) = (&m.db_path, &m.home)
    {
        checked.push(one_database(ctx, "the session's MCP server", path, home)?);
    }
    let i = lab.instance()?;
    checked.push(one_database(
        ctx,
        &format!("instance {}", i.name),
        &i.db_path,
        &i.home,
    )?);
    pass(checked.join("; "))
}

/// The database at `path` (and its journals) is 0600; no other database file sits in the
/// instance's directories (its working dir and `TMPDIR`).
fn one_database(
    ctx: &CheckCtx,
    label: &str,
    path: &Path,
    instance_dir: &Path,
) -> anyhow::Result<String> {
    ctx.step(format!("{label}: {}", path.display()));
    ensure!(
        path.is_file(),
        "{label}: no database at the configured TOKEN_STORAGE_DB {}",
        path.display()
    );
    let mut shown = Vec::new();
    for f in files_of(path) {
        let mode = mode_of(&f)?;
        shown.push(format!("{} {mode:04o}", f.display()));
        ensure!(
            mode == 0o600,
            "{label}: {} has mode {mode:04o}, expected 0600 (owner read-write only)",
            f.display()
        );
    }
    ctx.note(shown.join(", "));
    let elsewhere: Vec<String> = ["cwd", "tmp"]
        .iter()
        .flat_map(|d| db_files_in(&instance_dir.join(d)))
        .map(|p| p.display().to_string())
        .collect();
    ensure!(
        elsewhere.is_empty(),
        "{label}: database files outside TOKEN_STORAGE_DB: {elsewhere:?}"
    );
    Ok(format!("{label}: {} is 0600", path.display()))
}

/// SQLite files (`*.db`, `*.sqlite*`, and their journals) directly in `dir`.
pub(super) fn db_files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.contains(".db") || name.contains(".sqlite")
        })
        .collect()
}

/// STORAGE-06.
pub(super) async fn no_secret_in_clear(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    lab.flow1(ctx).await?;
    lab.grant(ctx).await?;
    let (_held, _) = lab.flow2(ctx).await?;
    let dbs = databases(ctx, &lab).await?;
    let dcr = super::dcr::Dcr::get(ctx).await;
    let _reading = dcr.lock.read().await;
    ctx.step("decrypt every encrypted value, so what the server stored counts among the secrets the run saw");
    for db in &dbs {
        let cipher = Cipher::new(&db.key)?;
        for (_, stored, column) in encrypted_values(&TokenDb::open(&db.path)?)? {
            if let Ok(plain) = cipher.decrypt(&stored)
                && let Ok(plain) = String::from_utf8(plain)
            {
                Secret::new(kind_of(&column), plain);
            }
        }
    }
    let known = Redactor::global().known_values();
    let matcher = Matcher::new(needles(&known));
    let files: Vec<PathBuf> = dbs.iter().flat_map(|d| files_of(&d.path)).collect();
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    ctx.step(format!(
        "scan {} file(s), {bytes} bytes, for {} needles: {} secret values the run handled and each JWT segment of 20+ characters",
        files.len(),
        matcher.len(),
        known.len()
    ));
    ctx.note(
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let hits = matcher.scan_files(&files)?;
    ensure!(
        hits.is_empty(),
        "{} secret(s) in clear: {}",
        hits.len(),
        hits.iter()
            .map(|(f, h)| format!("{} in {} at byte {}", h.what, f.display(), h.offset))
            .collect::<Vec<_>>()
            .join("; ")
    );
    pass(format!(
        "{} file(s) of {} database(s), {bytes} bytes: none of {} needles ({} secrets and their JWT segments) in clear",
        files.len(),
        dbs.len(),
        matcher.len(),
        known.len()
    ))
}

/// STORAGE-07.
pub(super) async fn keying(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    lab.grant(ctx).await?;
    let (_held, _) = lab.flow2(ctx).await?;
    let dbs = databases(ctx, &lab).await?;
    let dcr = super::dcr::Dcr::get(ctx).await;
    let _reading = dcr.lock.read().await;
    ctx.step(format!(
        "every encrypted value of {} database(s): does its instance's key open it, is its IV its own, was it made during the run",
        dbs.len()
    ));
    let keyed = dbs
        .iter()
        .map(|d| {
            Ok(Keyed {
                label: &d.label,
                db: TokenDb::open(&d.path)?,
                cipher: Cipher::new(&d.key)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = ctx.session.run.started_at.unix_timestamp().max(0) as u64;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    // Whole seconds from the same machine's clock; the slack covers a value the server
    // writes while this reads (the session's own server keeps serving other checks).
    let found = keying::audit(&keyed, started.saturating_sub(1)..=now + 5)?;
    ctx.note(format!(
        "{} values; {} of them share their plaintext with another",
        found.values, found.repeated_plaintexts
    ));
    ensure!(
        found.values > 0,
        "no encrypted value is stored: nothing to test the key on"
    );
    ensure!(
        found.problems.is_empty(),
        "{} problem(s) among {} stored value(s): {}",
        found.problems.len(),
        found.values,
        found.problems.join("; ")
    );
    pass(format!(
        "{} stored values in {} database(s): each opens with its instance's TOKEN_ENCRYPTION_KEY, has an IV of its own and was made during the run ({} share their plaintext with another value, in distinct tokens)",
        found.values,
        dbs.len(),
        found.repeated_plaintexts
    ))
}

/// STORAGE-13.
pub(super) async fn inventory(ctx: &CheckCtx) -> CheckResult {
    let lab = Lab::get(ctx).await;
    lab.flow1(ctx).await?;
    lab.grant(ctx).await?;
    let (_held, _) = lab.flow2(ctx).await?;
    let version = lab.instance()?.version.clone();
    let matcher = Matcher::new(needles(&Redactor::global().known_values()));
    ctx.step("inventory of the lab's database after the flows");
    let mut inv = Inventory::read(&lab.db()?, &lab.cipher()?, &matcher, &version)?;
    let dcr = super::dcr::Dcr::get(ctx).await;
    let _reading = dcr.lock.read().await;
    if let (Some(i), Ok(_)) = (&dcr.instance, &dcr.client) {
        ctx.step(format!("and of {}'s (its own registration)", i.name));
        let db = TokenDb::open(&i.db_path)?;
        inv.merge(Inventory::read(
            &db,
            &Cipher::new(&i.fernet_key)?,
            &matcher,
            &version,
        )?);
    }
    let findings: Vec<String> = inv
        .tables
        .iter()
        .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
        .flat_map(|(t, c)| {
            c.held
                .iter()
                .filter(|h| {
                    h.starts_with("IN CLEAR")
                        || h.starts_with("not decryptable")
                        || h.starts_with("Fernet token in")
                })
                .map(move |h| format!("{}.{}: {h}", t.name, c.name))
        })
        .collect();
    ctx.note(serde_json::to_string(&inv).unwrap_or_default());
    // Pinned before the findings are judged: `pin` records an inventory that has findings
    // too (docs/token-storage.md is rendered from it); in a run, a finding is what fails.
    let pinned = ctx
        .pinned(
            format!("token-storage-{}", inv.release),
            "src/checks/storage/at_rest.rs",
            &format!("--mcp-server-version {}", inv.release),
            &inv,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{e:#}; then render docs/token-storage.md with `UPDATE_DOCS=1 cargo test --test docs`"
            )
        });
    ensure!(
        findings.is_empty(),
        "credentials not protected as named: {}",
        findings.join("; ")
    );
    let pinned = pinned?;
    let encrypted = inv
        .tables
        .iter()
        .flat_map(|t| &t.columns)
        .filter(|c| c.protection == "fernet")
        .count();
    pass(format!(
        "{} tables, {encrypted} encrypted columns, every credential among them; {pinned}",
        inv.tables.len()
    ))
}
