//! Running checks against a session and assembling the report, and the one orchestration
//! (start, run with cancellation, teardown, report) that every command shares. Used by the
//! CLI and by the `cargo test` harness alike.

pub mod interrupt;
pub mod matrix;
pub mod orchestrate;

pub use interrupt::{INTERRUPTED, Interrupt};

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::{Map, Value};

use crate::checks::{Blocked, Check, CheckCtx, Verdict};
use crate::expectations::{Expectations, Raw};
use crate::report::{CheckReport, Report, Status};
use crate::session::{NotApplicable, Session, TeardownReport};
use crate::stack::{Need, Unavailable};

/// Runs one check: catches failures, panics and timeouts, applies expectations.
pub async fn run_check(
    session: &Arc<Session>,
    check: Check,
    expectations: &Expectations,
    timeout: Duration,
) -> CheckReport {
    if let Some(u) = check.needs.iter().find_map(|n| session.unavailable(*n)) {
        return unavailable(&check, u);
    }
    let ctx = CheckCtx::new(session.clone(), check);
    let started = Instant::now();
    let outcome = AssertUnwindSafe(tokio::time::timeout(timeout, (check.run)(&ctx)))
        .catch_unwind()
        .await;
    let mut blocked_by = None;
    let raw = match outcome {
        Ok(Ok(Ok(Verdict::Pass(m)))) => Raw::Pass(m),
        Ok(Ok(Ok(Verdict::Skip(m)))) => Raw::Skip(m),
        Ok(Ok(Err(e))) => {
            if let Some(b) = e.downcast_ref::<Blocked>() {
                blocked_by = Some(b.by.to_owned());
            }
            match e.downcast_ref::<NotApplicable>() {
                // A realm the user brings may lack what a check needs; the built-in
                // baseline may not.
                Some(na) if !session.realm.file.is_builtin() => Raw::NotApplicable(na.to_string()),
                _ => Raw::Fail(format!("{e:#}")),
            }
        }
        Ok(Err(_)) => Raw::Fail(format!(
            "the check did not finish within {}s; last step: {}",
            timeout.as_secs(),
            ctx.evidence
                .steps()
                .last()
                .map(|s| s.name.clone())
                .unwrap_or_else(|| "(none)".into())
        )),
        Err(panic) => Raw::Fail(format!("the check panicked: {}", panic_message(&*panic))),
    };
    let raw = match raw {
        Raw::Fail(m) => Raw::Fail(with_component_faults(session, m).await),
        other => other,
    };
    let raw = match raw {
        Raw::Pass(m) => Raw::Pass(crate::secret::redact(&m)),
        Raw::Fail(m) => Raw::Fail(crate::secret::redact(&m)),
        Raw::Skip(m) => Raw::Skip(crate::secret::redact(&m)),
        Raw::NotApplicable(m) => Raw::NotApplicable(crate::secret::redact(&m)),
    };
    let (status, detail) = match (&blocked_by, raw) {
        (Some(_), Raw::Fail(m)) => (Status::Blocked, blocked_detail(expectations, check.id, m)),
        (_, raw) => expectations.apply(check.id, raw, strict_ci()),
    };
    let mut report = CheckReport::new(&check, status, detail);
    report.blocked_by = blocked_by;
    report.stand_in =
        check.needs.contains(&Need::ResourceServer) && session.stack.resource_server_is_stand_in();
    report.evidence = ctx.evidence.steps();
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// A failure while a component the run started is dead or stopped says so first: the
/// component, its pid and what happened to it, not only the refused connection or the
/// timeout it caused. A process that just died may take a moment to be reaped (Keycloak's
/// JVM dies first, then the `kc.sh` that waits for it), so an empty answer is asked again
/// once, shortly after.
async fn with_component_faults(session: &Session, message: String) -> String {
    let mut faults = session.stack.faults().await;
    if faults.is_empty() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        faults = session.stack.faults().await;
    }
    if faults.is_empty() {
        message
    } else {
        format!("{}; {message}", faults.join("; "))
    }
}

/// Runs `checks` on `session`, `jobs` at a time, each within `timeout`, those that start
/// processes of their own first ([`start_order`]). Each result goes into `results` as soon
/// as it is there (so a run interrupted by dropping this future keeps what finished), with
/// a progress line `<status> <label><trial name>`. The report puts them back in catalogue
/// order.
pub async fn run_checks(
    session: &Arc<Session>,
    checks: &[Check],
    expectations: &Expectations,
    jobs: usize,
    timeout: Duration,
    results: &std::sync::Mutex<Vec<CheckReport>>,
    label: &str,
) {
    use futures::StreamExt;
    futures::stream::iter(start_order(checks))
        .for_each_concurrent(jobs.max(1), |check| async move {
            session
                .progress
                .tick(&format!("running {label}{}", check.trial_name()));
            let r = run_check(session, check, expectations, timeout).await;
            session.progress.println(&format!(
                "{:<5} {label}{}",
                r.status.name(),
                check.trial_name()
            ));
            results.lock().unwrap_or_else(|e| e.into_inner()).push(r);
        })
        .await;
}

/// The checks that start MCP server instances or a stack of their own (a Keycloak boot in
/// MCP-33's case) first, each in catalogue order: what they wait for then overlaps with
/// the checks that only send requests, instead of running alone at the end.
fn start_order(checks: &[Check]) -> Vec<Check> {
    let mut ordered = checks.to_vec();
    ordered.sort_by_key(|c| !c.needs.contains(&Need::McpInstances));
    ordered
}

/// A check whose need this stack cannot meet: a skip, but a failure under `CI=true`
/// where the backend should have offered it (CI installs every component, so a missing
/// one is a broken CI machine). What a backend lacks by design stays a skip.
fn unavailable(check: &Check, u: &Unavailable) -> CheckReport {
    let why = format!("unavailable ({}): {}", u.need.name(), u.reason);
    if !u.by_design && strict_ci() {
        not_run(
            check,
            crate::report::Status::Fail,
            &format!("{why} (a skip is a failure under CI=true)"),
        )
    } else {
        not_run(check, crate::report::Status::Skip, &why)
    }
}

/// Whether this run is CI's (`CI=true`): skips are strict there.
fn strict_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A blocked check's detail: the blocker and why, and the expectation it has, if any
/// (an expectation of a blocked check is reported, not dropped).
fn blocked_detail(expectations: &Expectations, id: &str, msg: String) -> String {
    match expectations.get(id) {
        Some(e) => format!(
            "{msg}\n(blocked, so {} could not be confirmed: {})",
            e.source.display(),
            e.reason
        ),
        None => msg,
    }
}

/// Blocked checks stand only when their blocker ran in this run and did not pass;
/// otherwise they fail, saying why. Nothing is blocked by accident.
pub fn resolve_blocked(checks: &mut [CheckReport]) {
    let statuses: std::collections::HashMap<String, Status> =
        checks.iter().map(|c| (c.id.clone(), c.status)).collect();
    for c in checks.iter_mut().filter(|c| c.status == Status::Blocked) {
        let by = c.blocked_by.clone().unwrap_or_default();
        let why = match statuses.get(&by) {
            None => format!("{by} did not run in this run: select it too (--only ...,{by})"),
            Some(s @ (Status::Pass | Status::Xpass)) => {
                format!("{by} {}, so nothing blocks this check", s.name())
            }
            Some(_) => continue,
        };
        c.status = Status::Fail;
        c.detail = format!("{}\n(not a valid block: {why})", c.detail);
    }
}

/// A check that could not run at all, recorded with its reason.
pub fn not_run(check: &Check, status: crate::report::Status, reason: &str) -> CheckReport {
    CheckReport::new(check, status, reason.to_owned())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Assembles the report of a finished (or interrupted) run.
pub fn build_report(
    session: &Session,
    mut checks: Vec<CheckReport>,
    teardown: TeardownReport,
    problems: Vec<String>,
) -> Report {
    resolve_blocked(&mut checks);
    checks.sort_by_key(order_key);
    let fmt = &time::format_description::well_known::Rfc3339;
    let components: Map<String, Value> = session
        .components()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let phases: Map<String, Value> = session
        .progress
        .phases()
        .into_iter()
        .map(|(k, v)| (k, Value::from((v * 10.0).round() / 10.0)))
        .collect();
    Report {
        schema_version: 1,
        run_id: session.run.id.clone(),
        started_at: session.run.started_at.format(fmt).unwrap_or_default(),
        finished_at: time::OffsetDateTime::now_utc()
            .format(fmt)
            .unwrap_or_default(),
        backend: session.stack.backend.name().to_owned(),
        realm: format!("{} ({})", session.realm.name, session.realm.file.origin),
        components,
        mcp_protocol_version: match &session.stack.subjects.mcp {
            crate::stack::McpServerState::Running(m) => {
                crate::mcp::client::negotiated_at(&m.base_url)
            }
            _ => None,
        },
        keycloak_features: session.keycloak_features.clone(),
        keycloak_argv: session.stack.keycloak_argv.clone(),
        phases,
        summary: Report::summarize(&checks),
        checks,
        teardown,
        problems,
    }
}

fn order_key(c: &CheckReport) -> (usize, String) {
    let area = crate::checks::Area::ALL
        .iter()
        .position(|a| a.name() == c.area)
        .unwrap_or(usize::MAX);
    (area, c.id.clone())
}

/// The expectations of this session's subjects, from the expectations directory; a
/// directory that cannot be read becomes a problem of the run.
pub fn session_expectations(session: &Session) -> Expectations {
    let all = crate::checks::catalogue();
    load_expectations(session, &crate::config::expectations_dir(), &all).unwrap_or_else(|e| {
        let mut none = Expectations::default();
        none.problems.push(format!("{e:#}"));
        none
    })
}

/// The expectations of this session's subjects.
pub fn load_expectations(
    session: &Session,
    dir: &std::path::Path,
    catalogue: &[Check],
) -> anyhow::Result<Expectations> {
    use crate::checks::Subject;
    let mut subjects = vec![
        (Subject::Keycloak, session.stack.keycloak.version.clone()),
        (Subject::Realm, session.realm.name.clone()),
    ];
    for (name, version) in session.components() {
        match name.as_str() {
            "mcp-server" => subjects.push((Subject::McpServer, version)),
            "nextcloud" => subjects.push((Subject::ResourceServer, version)),
            _ => {}
        }
    }
    Expectations::load(dir, &subjects, catalogue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::catalogue;

    #[test]
    fn checks_starting_processes_of_their_own_start_first_in_catalogue_order() {
        let all = catalogue();
        let order: Vec<&str> = start_order(&all).iter().map(|c| c.id).collect();
        let own = all
            .iter()
            .filter(|c| c.needs.contains(&Need::McpInstances))
            .count();
        assert!(own > 0);
        assert!(order[..own].contains(&"MCP-33") && order[..own].contains(&"STORAGE-02"));
        assert_eq!(order[own], all[0].id, "then the rest, from the first");
        let mut sorted = order.clone();
        sorted.sort();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id).collect();
        ids.sort();
        assert_eq!(sorted, ids, "every check, once");
    }

    fn result(id: &str, status: Status, blocked_by: Option<&str>) -> CheckReport {
        let check = catalogue().into_iter().find(|c| c.id == id).unwrap();
        let mut r = CheckReport::new(&check, status, "detail".into());
        r.blocked_by = blocked_by.map(str::to_owned);
        r
    }

    #[test]
    fn a_block_stands_only_behind_a_check_of_the_run_that_did_not_pass() {
        for (blocker, stands) in [
            (Status::Xfail, true),
            (Status::Fail, true),
            (Status::Blocked, true),
            (Status::Pass, false),
            (Status::Xpass, false),
        ] {
            let mut checks = vec![
                result("STORAGE-10", blocker, Some("MCP-01")),
                result("STORAGE-11", Status::Blocked, Some("STORAGE-10")),
                result("MCP-01", Status::Fail, None),
            ];
            resolve_blocked(&mut checks);
            let want = if stands {
                Status::Blocked
            } else {
                Status::Fail
            };
            assert_eq!(checks[1].status, want, "blocker {blocker:?}");
        }
    }

    #[test]
    fn a_block_by_a_check_that_did_not_run_fails_and_says_what_to_select() {
        let mut checks = vec![result("STORAGE-11", Status::Blocked, Some("STORAGE-10"))];
        resolve_blocked(&mut checks);
        assert_eq!(checks[0].status, Status::Fail);
        assert!(
            checks[0].detail.contains("--only ...,STORAGE-10"),
            "{}",
            checks[0].detail
        );
    }
}
