//! Exposure: what a running stack shows to the rest of the machine, observed from /proc
//! while it runs. Every listener of the harness and of the processes it starts binds
//! loopback only; run dirs are private (0700); no secret of the run appears in any of
//! their command lines (which every local user can read; environments they cannot).
//!
//! The stack is `up`'s (its stack.json names the admin and user passwords); a run of a
//! few checks against it (`--backend external`) adds a second harness, its ChromeDriver
//! and Chromium logging in, sampled until it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::procfs::{self, Listener};
use crate::common::{self, Harness, boot_slot};
use mcp_authz_harness::stack::process::processes_with_marker;

/// What was seen of one process over the samples.
#[derive(Default)]
struct Seen {
    name: String,
    cmdlines: BTreeSet<String>,
    listeners: BTreeSet<(String, u16)>,
    loopback_only: bool,
}

/// Everything sampled: processes by pid, and the secrets learnt from their environments.
#[derive(Default)]
struct Observations {
    procs: BTreeMap<i32, Seen>,
    /// Secret values by where they were learnt (`VAR of comm`, `stack.json ...`).
    secrets: BTreeMap<String, String>,
}

impl Observations {
    /// One look at the harness `harness_pid` and every process carrying `run_id`'s marker.
    fn sample(&mut self, harness_pid: i32, run_id: &str) {
        let sockets = procfs::listening_sockets();
        let marked = processes_with_marker(run_id)
            .into_iter()
            .map(|(pid, _)| pid);
        for pid in std::iter::once(harness_pid).chain(marked) {
            let name = procfs::comm(pid);
            if name.is_empty() {
                continue; // gone in between
            }
            let seen = self.procs.entry(pid).or_insert_with(|| Seen {
                loopback_only: true,
                ..Default::default()
            });
            seen.name = name.clone();
            seen.cmdlines.insert(procfs::cmdline(pid));
            for Listener { addr, port } in procfs::listeners_of(pid, &sockets) {
                let l = Listener { addr, port };
                seen.loopback_only &= l.is_loopback();
                seen.listeners.insert((addr.to_string(), port));
            }
            for (var, value) in procfs::environ(pid) {
                if is_secret_var(&var) && value.len() >= 8 {
                    self.secrets.insert(format!("{var} of {name}"), value);
                }
            }
        }
    }

    /// Processes whose name starts with `prefix` that listened on something.
    fn listening(&self, prefix: &str) -> usize {
        self.procs
            .values()
            .filter(|s| s.name.starts_with(prefix) && !s.listeners.is_empty())
            .count()
    }
}

/// Variables the harness hands secrets through (Keycloak's bootstrap admin password, the
/// MCP server's client secret and Fernet key).
fn is_secret_var(var: &str) -> bool {
    var.ends_with("PASSWORD") || var.ends_with("SECRET") || var.ends_with("ENCRYPTION_KEY")
}

fn assert_private_dir(dir: &Path) {
    let mode = std::fs::metadata(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "{} has mode {:o}",
        dir.display(),
        mode & 0o777
    );
}

#[test]
fn a_running_stack_listens_on_loopback_keeps_its_dirs_private_and_no_secret_in_argv() {
    let _slot = boot_slot();
    let started = Instant::now();
    let mut up = Harness::spawn(&["up"], &[]);
    let (stack_path, stack) = up.stack_json(Duration::from_secs(240));
    let up_run = stack["run_id"].as_str().unwrap().to_owned();
    let up_dir = std::path::PathBuf::from(stack["run_dir"].as_str().unwrap());
    assert_private_dir(&up_dir);
    let booted = started.elapsed();

    let mut seen = Observations::default();
    let kc = &stack["keycloak"];
    seen.secrets.insert(
        "stack.json keycloak.admin_password".into(),
        kc["admin_password"].as_str().unwrap().to_owned(),
    );
    for (user, pw) in stack["realm"]["users"].as_object().unwrap() {
        seen.secrets.insert(
            format!("stack.json password of {user}"),
            pw.as_str().unwrap().to_owned(),
        );
    }
    seen.sample(up.pid(), &up_run);

    let mut run = Harness::run_external(&stack_path, "PKCE-01,MCP-03,RS-01");
    let (run_id, run_dir) = run.run_started();
    assert_private_dir(&run_dir);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        seen.sample(up.pid(), &up_run);
        seen.sample(run.pid(), &run_id);
        if let Some(status) = run.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end within 300s:\n{}",
            run.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let checked = started.elapsed();
    up.signal(nix::sys::signal::Signal::SIGINT);
    let up_status = up.wait(Duration::from_secs(60));
    common::assert_nothing_left(&up_run, &up_dir, Duration::from_secs(10));
    eprintln!(
        "stack up after {:.0}s, run done after {:.0}s; {} processes, {} secrets watched",
        booted.as_secs_f64(),
        checked.as_secs_f64(),
        seen.procs.len(),
        seen.secrets.len()
    );

    // Every listener on loopback, naming the process and port otherwise.
    let exposed: Vec<String> = seen
        .procs
        .iter()
        .filter(|(_, s)| !s.loopback_only)
        .map(|(pid, s)| format!("{} (pid {pid}) listens on {:?}", s.name, s.listeners))
        .collect();
    assert!(
        exposed.is_empty(),
        "listeners beyond loopback:\n{}",
        exposed.join("\n")
    );
    // The sampling saw what it is meant to judge: a test that sees nothing proves nothing.
    for (who, prefix) in [
        ("Keycloak's JVM", "java"),
        ("ChromeDriver", "chromedriver"),
        ("the MCP server", "nextcloud-mcp"),
        (
            "the harness (stand-in, redirect listener)",
            "mcp-authz-harn",
        ),
    ] {
        assert!(
            seen.listening(prefix) > 0,
            "no listener of {who} ({prefix}*) observed; processes: {:?}",
            seen.procs.values().map(|s| &s.name).collect::<Vec<_>>()
        );
    }

    // Chromium (under ChromeDriver) may talk over a pipe, not a port; it must have run.
    assert!(
        seen.procs
            .values()
            .any(|s| s.name.starts_with("chrom") && s.name != "chromedriver"),
        "no Chromium process observed"
    );

    // The run's secrets were learnt (so the scan below means something) ...
    let learnt: Vec<&String> = seen.secrets.keys().collect();
    for var in [
        "KC_BOOTSTRAP_ADMIN_PASSWORD",
        "CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
    ] {
        assert!(
            learnt.iter().any(|k| k.contains(var)),
            "{var} not learnt: {learnt:?}"
        );
    }
    // ... and none is in a command line.
    let mut leaks = Vec::new();
    for (pid, s) in &seen.procs {
        for cmd in &s.cmdlines {
            for (what, secret) in &seen.secrets {
                if cmd.contains(secret.as_str()) {
                    leaks.push(format!(
                        "{what} in the command line of {} (pid {pid})",
                        s.name
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in command lines:\n{}",
        leaks.join("\n")
    );
    assert_eq!(
        status.code(),
        Some(0),
        "the run against up:\n{}",
        run.stderr()
    );
    assert_eq!(up_status.code(), Some(0), "up:\n{}", up.stderr());
}

#[test]
fn kernel_addresses_parse() {
    use procfs::parse_local;
    let v4 = parse_local("0100007F:1F90", false).unwrap();
    assert_eq!(v4.addr.to_string(), "127.0.0.1");
    assert_eq!(v4.port, 8080);
    assert!(v4.is_loopback());
    assert!(!parse_local("00000000:0050", false).unwrap().is_loopback());
    let v6 = parse_local("00000000000000000000000001000000:0050", true).unwrap();
    assert_eq!(v6.addr.to_string(), "::1");
    let mapped = parse_local("0000000000000000FFFF00000100007F:0050", true).unwrap();
    assert!(mapped.is_loopback(), "{mapped:?}");
    let any6 = parse_local("00000000000000000000000000000000:0050", true).unwrap();
    assert!(!any6.is_loopback());
}
