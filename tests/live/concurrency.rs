//! Two harnesses on one machine: the second run on a report dir refuses at once instead of
//! mixing its reports with the first's, and `sweep` leaves a running run's clients alone.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, BIN, Harness, boot_slot, sweep};

/// Both runs use the default report dir (`target/conformance` under their shared cwd).
#[test]
fn a_second_run_on_the_same_report_dir_refuses_at_once() {
    let _slot = boot_slot();
    let cwd = tempfile::tempdir().unwrap();
    let default_reports = cwd.path().join("target/conformance");
    let harness_in_cwd = |only: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--only", only]).current_dir(cwd.path());
        Harness::spawn_command(cmd, default_reports.clone())
    };
    let mut first = harness_in_cwd("REALM");
    let (first_id, first_dir) = first.run_started();

    let started = Instant::now();
    let mut second = harness_in_cwd("DCR");
    let status = second.wait(Duration::from_secs(30));
    let took = started.elapsed();
    let out = second.stderr();
    eprintln!(
        "the second run refused after {:.2}s: {out}",
        took.as_secs_f64()
    );
    assert_eq!(status.code(), Some(2), "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {out}");
    let line = errors[0];
    for part in [
        "target/conformance",
        &format!("run {first_id}"),
        &format!("pid {}", first.pid()),
        "--report-dir",
    ] {
        assert!(line.contains(part), "{part:?} missing from: {line}");
    }
    assert!(
        !out.contains("INFO run "),
        "the second run started a run: {out}"
    );
    assert!(
        took < Duration::from_secs(10),
        "refused only after {took:?}"
    );

    // The first run was not disturbed: it stops on SIGINT as usual, leaving nothing.
    first.wait_until(Duration::from_secs(120), "Keycloak booting", || {
        !mcp_authz_harness::stack::process::processes_with_marker(&first_id).is_empty()
    });
    first.interrupt(130, Duration::from_secs(60));
    common::assert_nothing_left(&first_id, &first_dir, Duration::from_secs(15));
}

/// `sweep --older-than 0s --yes` while a run's checks hold registered clients: it deletes
/// none of them and says why; the run ends green and deletes them itself.
#[test]
fn sweep_during_a_run_deletes_nothing_of_it() {
    let _slot = boot_slot();
    let mut up = Harness::spawn(&["up"], &[]);
    let (stack_path, stack) = up.stack_json(Duration::from_secs(240));
    let kc = stack["keycloak"]["url"].as_str().unwrap().to_owned();
    let admin = stack["keycloak"]["admin_user"].as_str().unwrap().to_owned();
    let password = stack["keycloak"]["admin_password"].as_str().unwrap();

    let mut run = Harness::run_external(&stack_path, "DCR");
    let (run_id, _) = run.run_started();
    run.wait_for_line("pass  DCR-01", Duration::from_secs(120));
    let swept = sweep(&kc, &admin, password, &["--older-than", "0s", "--yes"]);
    eprintln!("{swept}");
    assert!(
        swept.contains("; 0 deleted;"),
        "sweep deleted during the run: {swept}"
    );
    let alone = swept
        .lines()
        .filter(|l| l.contains(&format!("run {run_id}")) && l.contains("left alone"))
        .count();
    assert!(
        alone >= 1,
        "no client of run {run_id} found and left alone: {swept}"
    );

    let status = run.wait(Duration::from_secs(300));
    assert_eq!(
        status.code(),
        Some(0),
        "the run after the sweep:\n{}",
        run.stderr()
    );
    let report = run.report();
    assert_eq!(
        report["teardown"]["clients_left"], 0,
        "{}",
        report["teardown"]
    );
    // Once the run is over, nothing of it is left for sweep.
    let after = sweep(&kc, &admin, password, &["--older-than", "0s"]);
    assert!(!after.contains(&format!("run {run_id}")), "{after}");

    up.stop_up(&stack, Duration::from_secs(10));
}

/// Two runs at once, each with its own report dir, sharing the cache (distribution,
/// prepared build, venv): both green, each report only its own checks and run id.
#[test]
fn two_runs_at_once_are_both_green_and_independent() {
    let _slot = boot_slot();
    let started = Instant::now();
    let mut a = Harness::spawn(&["run", "--only", "REALM-01,REALM-02"], &[]);
    let mut b = Harness::spawn(&["run", "--only", "DCR-01,DCR-05"], &[]);
    let (a_id, _) = a.run_started();
    let (b_id, _) = b.run_started();
    assert_ne!(a_id, b_id);
    let a_status = a.wait(Duration::from_secs(400));
    let b_status = b.wait(Duration::from_secs(400));
    eprintln!("both done after {:.0}s", started.elapsed().as_secs_f64());
    for (h, status, id, ids) in [
        (&a, a_status, &a_id, ["REALM-01", "REALM-02"]),
        (&b, b_status, &b_id, ["DCR-01", "DCR-05"]),
    ] {
        assert_eq!(status.code(), Some(0), "run {id}:\n{}", h.stderr());
        let report = h.report();
        assert_eq!(&report["run_id"], id.as_str());
        let ran: Vec<&str> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ran, ids, "run {id}");
        assert!(
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] == "pass")
        );
        assert_eq!(report["teardown"]["processes_left"], 0);
    }
}
