//! Bad input on the command line: every flag with a wrong value gives exit 2 and an error
//! naming the flag (or the file) and what to do, at once: no panic, no hang, no boot.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, BIN};

/// One invocation: its arguments and a text its error must contain.
struct Case {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    names: String,
}

fn case(args: &[&str], names: &str) -> Case {
    Case {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        names: names.to_owned(),
    }
}

/// Runs the binary (killing it after `limit`): exit code, stderr, time taken.
fn run(c: &Case, cwd: &std::path::Path, limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(&c.args)
        .envs(c.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("CI")
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let err = reader.join().unwrap();
    match status {
        Some(s) => (s.code(), err, took),
        None => (
            None,
            format!("still running after {limit:?}; stderr:\n{err}"),
            took,
        ),
    }
}

/// What is wrong with one case's outcome, if anything.
fn judge(c: &Case, (code, stderr, _): &(Option<i32>, String, Duration)) -> Option<String> {
    let cmd = c.args.join(" ");
    if stderr.contains("panicked") {
        return Some(format!("`{cmd}` panicked:\n{stderr}"));
    }
    if *code != Some(2) {
        return Some(format!("`{cmd}` exited {code:?}, not 2:\n{stderr}"));
    }
    let Some(line) = stderr.lines().find(|l| l.starts_with("error")) else {
        return Some(format!("`{cmd}`: no line starting with `error`:\n{stderr}"));
    };
    if !stderr.contains(&c.names) {
        return Some(format!(
            "`{cmd}`: the error does not name {:?}: {line}",
            c.names
        ));
    }
    None
}

#[test]
fn every_flag_with_a_wrong_value_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "not a directory").unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"realm\": \"x\", \"clients\": [1,").unwrap();
    let not_a_stack = dir.path().join("stack.json");
    std::fs::write(&not_a_stack, "[]").unwrap();
    let (file, junk, stack) = (
        a_file.to_str().unwrap(),
        garbage.to_str().unwrap(),
        not_a_stack.to_str().unwrap(),
    );
    let external = ["--backend", "external", "--admin-user", "a"];
    let with_external = |extra: &[&str], names: &str| {
        let mut args = vec!["run"];
        args.extend(external);
        args.extend(["--admin-password-env", "HOME"]);
        args.extend(extra);
        case(&args, names)
    };
    let baseline = concat!(env!("CARGO_MANIFEST_DIR"), "/keycloak/realm-export.json");
    let mut unset_env = case(
        &[
            "sweep",
            "--keycloak-url",
            "http://127.0.0.1:9",
            "--admin-user",
            "a",
        ],
        "--admin-password-env",
    );
    unset_env
        .args
        .extend(["--admin-password-env".into(), "UNSET_FOR_THIS_TEST".into()]);
    let cases = vec![
        // run: selection, numbers, enums
        case(&["run", "--only", "NOPE"], "NOPE"),
        case(&["run", "--only", "DCR-99"], "DCR-99"),
        case(&["run", "--only", ""], "--only"),
        case(&["run", "--spec-revision", "1999-01-01"], "--spec-revision"),
        case(&["run", "--mcp-subject", "fastmcp"], "--mcp-subject"),
        case(
            &["run", "--mcp-subject", "generic", "--backend", "containers"],
            "--mcp-subject generic",
        ),
        case(&["run", "--spec-revision", "1999-01-01"], "2025-11-25"),
        case(&["run", "--jobs", "many"], "--jobs"),
        case(&["run", "--jobs", "0"], "--jobs"),
        case(&["run", "--check-timeout", "-1"], "--check-timeout"),
        case(&["run", "--check-timeout", "0"], "--check-timeout"),
        case(&["run", "--boot-timeout", "soon"], "--boot-timeout"),
        case(&["run", "--boot-timeout", "0"], "--boot-timeout"),
        case(&["run", "--backend", "podman"], "--backend"),
        case(&["run", "--uid-mapping", "bogus"], "--uid-mapping"),
        // run: paths
        case(
            &["run", "--realm", "/nonexistent/realm.json"],
            "/nonexistent/realm.json",
        ),
        case(&["run", "--realm", junk], junk),
        case(
            &["run", "--realm", dir.path().to_str().unwrap()],
            "realm file",
        ),
        case(&["run", "--report-dir", file], "--report-dir"),
        case(
            &["run", "--keycloak-dist", "/nonexistent/kc"],
            "--keycloak-dist",
        ),
        // run: versions and URLs
        case(
            &["run", "--keycloak-version", "../../etc"],
            "--keycloak-version",
        ),
        case(&["run", "--keycloak-version", ""], "--keycloak-version"),
        case(
            &["run", "--mcp-server-version", "1.0; rm -rf /"],
            "--mcp-server-version",
        ),
        case(
            &["run", "--mcp-redirect-uri", "not a uri"],
            "--mcp-redirect-uri",
        ),
        case(&["run", "--backend", "external"], "--stack"),
        case(
            &[
                "run",
                "--backend",
                "external",
                "--stack",
                "/nonexistent.json",
            ],
            "--stack",
        ),
        case(
            &["run", "--backend", "external", "--stack", stack],
            "--stack",
        ),
        with_external(&["--keycloak-url", "not a url"], "--keycloak-url"),
        with_external(&["--keycloak-url", "ftp://127.0.0.1:9"], "--keycloak-url"),
        with_external(&["--keycloak-url", "http://127.0.0.1:9"], "127.0.0.1:9"),
        with_external(
            &["--keycloak-url", "http://127.0.0.1:9", "--mcp-url", "x"],
            "--mcp-url",
        ),
        with_external(
            &[
                "--keycloak-url",
                "http://127.0.0.1:9",
                "--webdriver-url",
                "x",
            ],
            "--webdriver-url",
        ),
        with_external(
            &[
                "--keycloak-url",
                "http://127.0.0.1:9",
                "--resource-server-url",
                "x",
            ],
            "--resource-server-url",
        ),
        // up shares run's stack flags
        case(
            &["up", "--realm", "/nonexistent/realm.json"],
            "/nonexistent/realm.json",
        ),
        case(&["up", "--keycloak-version", "x/y"], "--keycloak-version"),
        // sweep
        case(&["sweep"], "--keycloak-url"),
        case(
            &[
                "sweep",
                "--keycloak-url",
                "nope",
                "--admin-user",
                "a",
                "--admin-password-env",
                "HOME",
            ],
            "--keycloak-url",
        ),
        case(
            &[
                "sweep",
                "--keycloak-url",
                "http://127.0.0.1:9",
                "--admin-user",
                "a",
                "--admin-password-env",
                "HOME",
                "--older-than",
                "5w",
            ],
            "--older-than",
        ),
        unset_env,
        case(
            &[
                "sweep",
                "--keycloak-url",
                "http://127.0.0.1:9",
                "--admin-user",
                "a",
                "--admin-password-env",
                "HOME",
            ],
            "127.0.0.1:9",
        ),
        // validate-realm
        case(
            &["validate-realm", "/nonexistent/realm.json"],
            "/nonexistent/realm.json",
        ),
        case(&["validate-realm", junk, "--static-only"], junk),
        case(
            &["validate-realm", baseline, "--format", "yaml"],
            "--format",
        ),
        case(
            &[
                "validate-realm",
                baseline,
                "--static-only",
                "--mcp-url",
                "nope",
            ],
            "--mcp-url",
        ),
        case(
            &[
                "validate-realm",
                baseline,
                "--baseline",
                "/nonexistent/b.json",
            ],
            "/nonexistent/b.json",
        ),
        case(&["validate-realm", baseline, "--only", "NOPE"], "NOPE"),
        case(
            &["validate-realm", baseline, "--check-timeout", "0"],
            "--check-timeout",
        ),
        // matrix
        case(
            &["matrix", "--keycloak-versions", "26.4.7,../x"],
            "--keycloak-versions",
        ),
        case(
            &["matrix", "--mcp-server-versions", "latest"],
            "--mcp-server-versions",
        ),
        case(
            &["matrix", "--mcp-server-versions", "0.65.3,0.202.1,0.65.3"],
            "--mcp-server-versions",
        ),
        case(
            &["matrix", "--keycloak-versions", "26.4.7,26.4.7"],
            "--keycloak-versions",
        ),
        case(&["matrix", "--only", "NOPE"], "NOPE"),
        case(&["matrix", "--backends", "native,external"], "--backends"),
        case(&["matrix", "--backends", "native,native"], "--backends"),
        case(&["matrix", "--jobs", "0"], "--jobs"),
        case(&["matrix", "--check-timeout", "0"], "--check-timeout"),
        case(&["matrix", "--boot-timeout", "0"], "--boot-timeout"),
        case(&["matrix", "--report-dir", file], "--report-dir"),
        case(
            &[
                "matrix",
                "--keycloak-versions",
                "26.4.7,26.7.3",
                "--keycloak-dist",
                file,
            ],
            "--keycloak-dist",
        ),
        // repro
        case(
            &[
                "repro",
                "impersonation",
                "--out",
                &format!("{file}/out.json"),
            ],
            "--out",
        ),
        case(
            &["repro", "impersonation", "--keycloak-version", "../x"],
            "--keycloak-version",
        ),
        case(
            &["repro", "impersonation", "--boot-timeout", "0"],
            "--boot-timeout",
        ),
        // doctor
        case(
            &["doctor", "--keycloak-version", "latest"],
            "--keycloak-version",
        ),
    ];
    let mut problems = Vec::new();
    let mut slowest = Duration::ZERO;
    for c in &cases {
        let outcome = run(c, dir.path(), Duration::from_secs(60));
        slowest = slowest.max(outcome.2);
        if let Some(p) = judge(c, &outcome) {
            problems.push(p);
        }
    }
    eprintln!(
        "{} cases, slowest {:.2}s",
        cases.len(),
        slowest.as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} of {} cases:\n\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n\n")
    );
}

/// A Keycloak version Maven Central does not have: refused before anything boots, naming
/// the flag and the version, with nothing left in the cache for it.
#[test]
fn a_keycloak_version_maven_central_lacks_exits_2() {
    let cases = [
        (
            &["run", "--only", "REALM-01", "--keycloak-version", "26.99.0"][..],
            "--keycloak-version",
        ),
        (
            &[
                "matrix",
                "--only",
                "REALM-01",
                "--keycloak-versions",
                "26.99.0",
            ][..],
            "--keycloak-versions",
        ),
    ];
    for (args, flag) in cases {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let mut c = case(args, flag);
        c.env
            .push(("XDG_CACHE_HOME", cache.path().display().to_string()));
        let outcome = run(&c, dir.path(), Duration::from_secs(120));
        eprintln!(
            "refused after {:.1}s: {}",
            outcome.2.as_secs_f64(),
            outcome.1
        );
        if let Some(p) = judge(&c, &outcome) {
            panic!("{p}");
        }
        assert!(outcome.1.contains("26.99.0"), "{}", outcome.1);
        let left: Vec<_> = walk(cache.path());
        assert!(left.is_empty(), "left in the cache: {left:?}");
    }
}

/// Files under `dir` (lock files and empty dirs excluded).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_none_or(|x| x != "lock") {
            out.push(p);
        }
    }
    out
}

/// An MCP server release PyPI does not have is a result about the subject, not a usage
/// error (the contract): MCP-01 fails naming the version, the run exits 1, and it leaves
/// nothing behind.
#[test]
fn an_mcp_server_release_pypi_lacks_fails_mcp_01() {
    let _slot = common::boot_slot();
    let mut h = common::Harness::spawn(
        &["run", "--only", "MCP-01", "--mcp-server-version", "0.0.1"],
        &[],
    );
    let (run_id, run_dir) = h.run_started();
    let status = h.wait(Duration::from_secs(400));
    let report = h.report();
    let mcp01 = &report["checks"][0];
    assert_eq!(mcp01["id"], "MCP-01");
    assert_eq!(mcp01["status"], "fail", "{mcp01}");
    let detail = mcp01["detail"].as_str().unwrap();
    assert!(
        detail.contains("0.0.1"),
        "MCP-01 does not name the version: {detail}"
    );
    assert_eq!(status.code(), Some(1), "{}", h.stderr());
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
    let venv = mcp_authz_harness::stack::native::distribution::cache_root()
        .join("venv-nextcloud-mcp-server-0.0.1");
    assert!(
        !venv.exists(),
        "a half venv is left in the cache: {}",
        venv.display()
    );
}
