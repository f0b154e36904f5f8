//! Teardown: undo what the run created, stop what it started, and measure what is left.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Session;
use crate::stack::process;

/// What teardown did and what it found left over. Anything left fails the run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TeardownReport {
    /// Processes still carrying the run marker after every component was stopped.
    pub processes_left: u32,
    /// Containers still labelled with the run after every component was stopped (the
    /// containers backend; 0 elsewhere).
    pub containers_left: u32,
    /// Registered clients deleted through RFC 7592.
    pub clients_deleted: u32,
    /// Registered clients whose RFC 7592 delete failed and that the admin API removed.
    pub clients_deleted_by_admin_fallback: u32,
    /// Clients in the realm that were neither in the realm file nor there before the run.
    pub clients_left: u32,
    /// Directories the run created that still exist (the run dir, unless `--keep`).
    pub dirs_left: u32,
    /// Realms imported next to the baseline (and, for a joined session, its own realm)
    /// that could not be deleted.
    pub realms_left: u32,
    /// What went wrong or was found, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl TeardownReport {
    /// Whether teardown left anything behind or had to fall back.
    pub fn is_clean(&self) -> bool {
        self.processes_left == 0
            && self.containers_left == 0
            && self.clients_left == 0
            && self.dirs_left == 0
            && self.realms_left == 0
            && self.clients_deleted_by_admin_fallback == 0
    }

    /// Adds the counts and notes of another teardown (a stack's, after a session on it).
    pub fn add(&mut self, other: TeardownReport) {
        self.processes_left += other.processes_left;
        self.containers_left += other.containers_left;
        self.clients_deleted += other.clients_deleted;
        self.clients_deleted_by_admin_fallback += other.clients_deleted_by_admin_fallback;
        self.clients_left += other.clients_left;
        self.dirs_left += other.dirs_left;
        self.realms_left += other.realms_left;
        self.notes.extend(other.notes);
    }
}

pub(super) async fn run(session: &Session, copy_logs_to: Option<&Path>) -> TeardownReport {
    let started = std::time::Instant::now();
    let mut report = TeardownReport::default();
    // The browser sessions end, and their profiles go, while the clients are deleted:
    // neither waits for the other.
    let close_browser = async {
        if let Some(browser) = &session.browser {
            browser.close_all().await;
            browser.remove_profiles().await;
        }
        tracing::debug!(elapsed = ?started.elapsed(), "teardown: browser closed");
    };
    let clean = async {
        clean_realm(session, &mut report).await;
        tracing::debug!(elapsed = ?started.elapsed(), "teardown: Keycloak cleaned");
    };
    tokio::join!(close_browser, clean);
    tracing::debug!(elapsed = ?started.elapsed(), "teardown: clients deleted, browser closed");
    let logs = session.stack.log_files().await;
    session.stack.stop().await;
    tracing::debug!(elapsed = ?started.elapsed(), "teardown: the stack stopped");
    if !session.owns_stack {
        release_shared(session, &mut report).await;
        if let Some(dir) = copy_logs_to {
            copy_logs(&logs, dir);
        }
        session.progress.phase_done("teardown", started.elapsed());
        return report;
    }
    let left = process::processes_with_marker(&session.run.id);
    report.processes_left = left.len() as u32;
    for (pid, cmd) in &left {
        report
            .notes
            .push(format!("process {pid} still running after stop: {cmd}"));
    }
    process::kill_marked(&session.run.id);
    count_containers_left(session, &mut report).await;
    if let Some(dir) = copy_logs_to {
        copy_logs(&logs, dir);
    }
    if session.run.keep {
        for log in &logs {
            redact_in_place(log);
        }
        remove_browser_profiles(&session.run.dir);
    }
    tracing::debug!(elapsed = ?started.elapsed(), "teardown: processes checked");
    report.dirs_left = session.run.finish();
    session.progress.phase_done("teardown", started.elapsed());
    report
}

/// Containers of the run that outlived the stop (each named in the notes), then removed.
async fn count_containers_left(session: &Session, report: &mut TeardownReport) {
    match session.stack.containers_left().await {
        Ok(left) => {
            report.containers_left = left.len() as u32;
            for c in left {
                report.notes.push(format!(
                    "container {c} still there after stop (now removed)"
                ));
            }
        }
        Err(e) => {
            report.containers_left = 1;
            report
                .notes
                .push(format!("the run's containers could not be listed: {e:#}"));
        }
    }
}

/// What the run left in Keycloak: clients (registered, and created through the admin
/// API), realm variants; and `clients_left`, measured before Keycloak stops.
async fn clean_realm(session: &Session, report: &mut TeardownReport) {
    if !session
        .clients
        .settle(std::time::Duration::from_secs(30))
        .await
    {
        report
            .notes
            .push("a registration request was still unanswered after 30s".into());
    }
    // Registered and admin-created clients at once; then the realm's clients are counted
    // while the variants (other realms) are deleted.
    let started = std::time::Instant::now();
    let mut admin_created = TeardownReport::default();
    let (cleanup, ()) = tokio::join!(
        session.clients.delete_all(&session.http, &session.admin),
        delete_admin_clients(session, &mut admin_created),
    );
    report.clients_deleted = cleanup.deleted;
    report.clients_deleted_by_admin_fallback = cleanup.deleted_by_admin_fallback;
    report.notes.extend(cleanup.notes);
    report.notes.extend(admin_created.notes);
    tracing::debug!(elapsed = ?started.elapsed(), "teardown: clients deleted");
    let mut variants = TeardownReport::default();
    tokio::join!(
        measure_clients_left(session, report),
        delete_variants(session, &mut variants),
    );
    report.realms_left += variants.realms_left;
    report.notes.extend(variants.notes);
}

/// A joined session ends here, once its own subjects are stopped: it deletes the realm it
/// imported (unless the run booted Keycloak, in memory), and leaves the shared processes and the run dir to the session that owns the
/// stack (which measures `processes_left` and `dirs_left` for the whole run).
async fn release_shared(session: &Session, report: &mut TeardownReport) {
    let realm = &session.realm;
    if !realm.imported_by_us() {
        return;
    }
    // Deleting a realm takes Keycloak seconds; a Keycloak this run booted keeps its realms
    // in memory only (`--db=dev-mem`), so the realm ends with it when the owning session
    // stops it.
    if session.stack.keycloak.fresh {
        tracing::debug!(realm = realm.name, "ends with the in-memory Keycloak");
        return;
    }
    if let Err(e) = session.admin.delete_realm(&realm.name).await {
        report.realms_left += 1;
        report
            .notes
            .push(format!("realm {} not deleted: {e:#}", realm.name));
    }
}

/// Clients checks created through the admin API (not by DCR) go the same way.
async fn delete_admin_clients(session: &Session, report: &mut TeardownReport) {
    let created: Vec<(String, String)> = std::mem::take(
        &mut *session
            .admin_clients
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    for (realm, id) in created {
        match session.admin.delete_client(&realm, &id).await {
            Ok(r) if r.status == 204 => {}
            Ok(r) => report.notes.push(format!(
                "admin-created client {id} not deleted: {}",
                r.summary()
            )),
            Err(e) => report
                .notes
                .push(format!("admin-created client {id} not deleted: {e:#}")),
        }
    }
}

/// The realm variants checks imported, all at once. Deleting a realm takes Keycloak
/// seconds; a Keycloak this session booted keeps its realms in memory only (`--db=dev-mem`)
/// and stops right after, so there nothing is deleted: the variants end with it.
async fn delete_variants(session: &Session, report: &mut TeardownReport) {
    let variants: Vec<_> = session.variants.lock().await.drain(..).collect();
    if session.stack.keycloak.fresh {
        tracing::debug!(
            count = variants.len(),
            "realm variants end with the in-memory Keycloak"
        );
        return;
    }
    let deleted = futures::future::join_all(variants.iter().map(|variant| async move {
        let started = std::time::Instant::now();
        let outcome = session.admin.delete_realm(&variant.name).await;
        tracing::debug!(realm = variant.name, elapsed = ?started.elapsed(), "realm variant deleted");
        (variant, outcome)
    }))
    .await;
    for (variant, outcome) in deleted {
        if let Err(e) = outcome {
            report.realms_left += 1;
            report
                .notes
                .push(format!("realm {} not deleted: {e:#}", variant.name));
        }
    }
}

/// `clients_left`, measured through the admin API before Keycloak stops.
async fn measure_clients_left(session: &Session, report: &mut TeardownReport) {
    let realm = &session.realm;
    if realm.unusable().is_some() {
        return;
    }
    match session.admin.clients(&realm.name).await {
        Ok(live) => {
            let file = realm.file_client_ids();
            for c in live {
                if !session.clients_before.contains(&c.client_id) && !file.contains(&c.client_id) {
                    report.clients_left += 1;
                    report.notes.push(format!(
                        "client {} ({}) left in realm {}",
                        c.client_id,
                        c.name.unwrap_or_default(),
                        realm.name
                    ));
                }
            }
        }
        Err(e) => {
            // A Keycloak this run booted keeps its database in memory: when it died, every
            // client went with it.
            let gone = match session.stack.keycloak.fresh {
                true => session.stack.keycloak_fault().await,
                false => None,
            };
            match gone {
                Some(fault) => report.notes.push(format!(
                    "{fault}: its database was in memory, so no client of this run outlives it"
                )),
                None => {
                    report.clients_left += 1;
                    report.notes.push(format!(
                        "could not list the clients left in {}: {e:#}",
                        realm.name
                    ));
                }
            }
        }
    }
}

/// Copies logs, redacted, into `dir`.
pub(super) fn copy_logs(logs: &[PathBuf], dir: &Path) {
    if logs.is_empty() {
        return;
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::warn!("cannot create {}: {e}", dir.display());
        return;
    }
    for log in logs {
        let Some(name) = log.file_name() else {
            continue;
        };
        match std::fs::read(log) {
            Ok(bytes) => {
                let text = crate::secret::redact(&String::from_utf8_lossy(&bytes));
                if let Err(e) = std::fs::write(dir.join(name), text) {
                    tracing::warn!("cannot copy {}: {e}", log.display());
                }
            }
            Err(e) => tracing::warn!("cannot read {}: {e}", log.display()),
        }
    }
}

/// `--keep` keeps logs, not browser state: Chromium's profiles hold the URLs it visited,
/// authorization codes included (the secret scan finds them).
fn remove_browser_profiles(run_dir: &Path) {
    for entry in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("browser") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn redact_in_place(log: &Path) {
    if let Ok(bytes) = std::fs::read(log) {
        let _ = std::fs::write(log, crate::secret::redact(&String::from_utf8_lossy(&bytes)));
    }
}
