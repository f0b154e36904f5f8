//! Nothing outlives a run: the panic, SIGINT and SIGKILL paths, against a real Keycloak.
//!
//! Each test boots Keycloak, so at most two run at a time (`common::boot_slot`) to keep
//! boot times sane on a small machine. They measure what is left the way the contract
//! says: processes by the run marker in /proc, the run directory on disk, and clients in
//! Keycloak itself.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{self, Harness, boot_slot, sweep};
use mcp_authz_harness::checks::{Area, Check, CheckCtx, CheckResult, Subject};
use mcp_authz_harness::config::StackArgs;
use mcp_authz_harness::progress::Progress;
use mcp_authz_harness::session::Session;
use mcp_authz_harness::stack::process::processes_with_marker;
use mcp_authz_harness::{check_fn, runner};
use serde_json::json;

#[test]
fn sigint_while_keycloak_boots_leaves_nothing() {
    let _slot = boot_slot();
    let mut h = Harness::spawn(&["run", "--only", "REALM"], &[]);
    let (run_id, run_dir) = h.run_started();
    h.wait_until(
        Duration::from_secs(120),
        "a Keycloak process with the run marker",
        || {
            processes_with_marker(&run_id)
                .iter()
                .any(|(_, cmd)| cmd.contains("java"))
        },
    );
    h.interrupt(130, Duration::from_secs(60));
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(15));
}

#[test]
fn sigkill_of_the_harness_leaves_nothing() {
    let _slot = boot_slot();
    let mut h = Harness::spawn(&["run", "--only", "REALM"], &[]);
    let (run_id, run_dir) = h.run_started();
    h.wait_for_line("phase boot.keycloak", Duration::from_secs(240));
    assert!(
        !processes_with_marker(&run_id).is_empty(),
        "Keycloak should be running"
    );
    h.signal(nix::sys::signal::Signal::SIGKILL);
    h.wait(Duration::from_secs(10));
    // Only the watchdog can clean up now.
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(20));
}

async fn registers_then_panics(ctx: &CheckCtx) -> CheckResult {
    let realm = ctx.realm()?;
    let metadata = json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "client_secret_post"});
    ctx.session
        .register_client(ctx.http(), realm, &metadata, None)
        .await?
        .client("registration")?;
    panic!("deliberate panic after registering a client");
}

const PANICKY: Check = Check {
    id: "DCR-99",
    title: "registers a client, then panics",
    area: Area::Dcr,
    spec: "test",
    subject: Subject::Keycloak,
    needs: &[],
    spec_revisions: &[],
    run: check_fn!(registers_then_panics),
};

/// A login that expects success with a wrong password: the failure must point at a
/// screenshot and the page source, saved in the report dir.
async fn logs_in_with_a_wrong_password(ctx: &CheckCtx) -> CheckResult {
    use mcp_authz_harness::browser::login::{Credentials, Flow};
    use mcp_authz_harness::secret::{Secret, SecretKind};
    let session = &ctx.session;
    let browser = session.browser.as_ref().expect("the session has a browser");
    let client = session.login_client(ctx.http()).await?;
    let meta = ctx.discovery().await?;
    let wrong = Secret::new(SecretKind::Password, "definitely-not-alices-password");
    let pkce = mcp_authz_harness::oauth::pkce::Pkce::new();
    let redirect = session.listener.redirect_uri();
    let url = mcp_authz_harness::oauth::pkce::AuthorizationRequest::code(
        &client.client_id,
        &redirect,
        "openid",
        "s1",
        "n1",
    )
    .s256(&pkce)
    .url(meta.authorization_endpoint.as_deref().unwrap());
    let flow = Flow {
        browser,
        profile: "evidence-test",
        listener: &session.listener,
        login: Some(Credentials {
            username: "alice",
            password: wrong,
        }),
        accept_consent: true,
        label: "PKCE-99",
        timeout: Duration::from_secs(30),
    };
    flow.run(&url, "s1").await?.callback()?.code()?;
    mcp_authz_harness::checks::pass("logged in")
}

const WRONG_PASSWORD: Check = Check {
    id: "PKCE-99",
    title: "expects a login with a wrong password to succeed",
    area: Area::Pkce,
    spec: "test",
    subject: Subject::Keycloak,
    needs: &[mcp_authz_harness::checks::Need::Browser],
    spec_revisions: &[],
    run: check_fn!(logs_in_with_a_wrong_password),
};

#[test]
fn failing_checks_keep_evidence_and_teardown_still_cleans_up() {
    let _slot = boot_slot();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(failing_checks_scenario());
}

async fn failing_checks_scenario() {
    use mcp_authz_harness::checks::Need;
    let opts = StackArgs::from_env()
        .unwrap()
        .session_options(vec![Need::Browser])
        .unwrap();
    let report_dir = tempfile::tempdir().unwrap();
    let session = Session::start(
        &opts,
        Arc::new(Progress::with_spinner(false)),
        report_dir.path(),
    )
    .await
    .expect("the stack comes up");
    let (run_id, run_dir) = (session.run.id.clone(), session.run.dir.clone());
    let report = runner::run_check(
        &session,
        PANICKY,
        &Default::default(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(report.status, mcp_authz_harness::Status::Fail);
    assert!(
        report.detail.contains("panicked: deliberate panic"),
        "{}",
        report.detail
    );

    let report = runner::run_check(
        &session,
        WRONG_PASSWORD,
        &Default::default(),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(
        report.status,
        mcp_authz_harness::Status::Fail,
        "{}",
        report.detail
    );
    let png = path_in(&report.detail, ".png");
    let html = path_in(&report.detail, ".html");
    assert!(png.starts_with(report_dir.path()), "{}", report.detail);
    assert_eq!(
        &std::fs::read(&png).unwrap()[..4],
        b"\x89PNG",
        "a PNG screenshot"
    );
    let source = std::fs::read_to_string(&html).unwrap();
    assert!(
        source.contains("Invalid username or password"),
        "the saved page is the login page with its error"
    );

    let teardown = session.teardown(None).await;
    // The panicking check's client and the harness's login client.
    assert_eq!(teardown.clients_deleted, 2, "{teardown:?}");
    assert_eq!(teardown.clients_left, 0, "{teardown:?}");
    assert!(teardown.is_clean(), "{teardown:?}");
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(5));
}

/// The path ending in `ext` that a failure detail names.
fn path_in(detail: &str, ext: &str) -> std::path::PathBuf {
    let word = detail
        .split(|c: char| c.is_whitespace() || c == ',')
        .find(|w| w.ends_with(ext))
        .unwrap_or_else(|| panic!("no {ext} file named in: {detail}"));
    std::path::PathBuf::from(word)
}

/// Against the stack `up` keeps running: the whole catalogue through the external
/// backend (`--stack`) gives every check the external backend can run the status a native
/// run gives it (pass, or xfail where an expectation pins the deviation; the RS area
/// included), and reports the others unavailable; then a run interrupted with SIGINT
/// deletes its clients, and a run killed with SIGKILL leaves clients that `sweep` finds
/// and removes.
#[test]
fn external_runs_against_up_match_native_and_clean_up() {
    let _slot = boot_slot();
    let mut up = Harness::spawn(&["up"], &[]);
    let (stack_path, stack) = up.stack_json(Duration::from_secs(240));
    let kc = stack["keycloak"]["url"].as_str().unwrap().to_owned();
    let admin = stack["keycloak"]["admin_user"].as_str().unwrap().to_owned();
    let password = stack["keycloak"]["admin_password"]
        .as_str()
        .unwrap()
        .to_owned();

    // The whole catalogue, statuses as native.
    let mut h = Harness::run_external(&stack_path, "REALM,DCR,PKCE,TOKEN,EXCHANGE,RS,MCP,STORAGE");
    let status = h.wait(Duration::from_secs(900));
    let report = h.report();
    assert_eq!(report["backend"], "external");
    assert_eq!(report["components"]["nextcloud"], "stand-in");
    assert_eq!(
        report["checks"].as_array().map(Vec::len),
        Some(mcp_authz_harness::checks::catalogue().len()),
        "the whole catalogue ran"
    );
    let mismatches = common::statuses_unlike_native(&report);
    assert!(
        mismatches.is_empty(),
        "external statuses differ from native:\n{}\nstderr:\n{}",
        mismatches.join("\n"),
        h.stderr()
    );
    assert_eq!(status.code(), Some(0), "stderr:\n{}", h.stderr());

    // SIGINT while checks run: the orderly teardown deletes every client it registered.
    let mut h = Harness::run_external(&stack_path, "DCR");
    h.wait_for_line("pass  DCR-01", Duration::from_secs(60));
    h.interrupt(130, Duration::from_secs(60));
    let listed = sweep(&kc, &admin, &password, &["--older-than", "0s"]);
    assert!(
        listed.contains("sweep: 0 harness client(s)"),
        "after SIGINT: {listed}"
    );

    // SIGKILL while checks run: nothing can delete the clients but sweep.
    let mut h = Harness::run_external(&stack_path, "DCR");
    h.wait_for_line("pass  DCR-01", Duration::from_secs(60));
    h.signal(nix::sys::signal::Signal::SIGKILL);
    h.wait(Duration::from_secs(10));
    let listed = sweep(&kc, &admin, &password, &["--older-than", "0s"]);
    let found: u32 = common::sweep_count(&listed);
    assert!(found >= 1, "a killed run should leave clients: {listed}");
    let swept = sweep(&kc, &admin, &password, &["--older-than", "0s", "--yes"]);
    assert!(swept.contains(&format!("{found} deleted")), "{swept}");
    let again = sweep(&kc, &admin, &password, &["--older-than", "0s"]);
    assert!(again.contains("sweep: 0 harness client(s)"), "{again}");
    // The default (30m) leaves a concurrent run's fresh clients alone.
    assert!(
        sweep(&kc, &admin, &password, &[]).contains("sweep: 0 harness client(s) older than 30m")
    );

    up.stop_up(&stack, Duration::from_secs(5));
}

/// `--keep` keeps the run dir and its logs, redacted: the run's own secret scan (which
/// covers the kept dir) finds nothing, and the dir is there to read afterwards.
#[test]
fn a_kept_run_dir_holds_no_secret_in_clear() {
    let _slot = boot_slot();
    let mut h = Harness::spawn(
        &["run", "--only", "PKCE-01,RS-01,STORAGE-05", "--keep"],
        &[],
    );
    let (_, run_dir) = h.run_started();
    let status = h.wait(Duration::from_secs(600));
    let json = h.report();
    let kept = run_dir.exists();
    let _ = std::fs::remove_dir_all(&run_dir);
    assert_eq!(
        json["problems"],
        serde_json::Value::Null,
        "problems: {}",
        json["problems"]
    );
    assert_eq!(status.code(), Some(0), "output:\n{}", h.stderr());
    assert!(kept, "--keep removed the run dir");
    assert_eq!(
        json["teardown"]["dirs_left"], 0,
        "a kept dir is not a leftover"
    );
}
