//! Faults while a run is under way, against the real native stack: Keycloak killed, the
//! MCP server killed, ChromeDriver killed, Keycloak stalled (SIGSTOP), a port the harness
//! was told to use already taken, the run dir's filesystem full.
//!
//! Each run names what happened to which component in its failures (not a bare refused
//! connection or timeout), exits as the contract says, tears down completely (no process
//! with the run marker, no run dir, no client left), and prints no secret of the run.
//! A taken port is found before anything starts; the other faults need the stack up, so
//! those tests boot Keycloak, two at most at a time (`common::boot_slot`), and select a
//! few checks only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{self, Harness, boot_slot, procfs};
use mcp_authz_harness::stack::process::processes_with_marker;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::Value;

/// Secret values the run handed its children, by where they were learnt.
#[derive(Default)]
struct Secrets(BTreeMap<String, String>);

impl Secrets {
    /// Reads the environments of the run's processes (as `exposure.rs` does): Keycloak's
    /// bootstrap admin password, the MCP server's client secret and Fernet key.
    fn learn(&mut self, run_id: &str) {
        for (pid, _) in processes_with_marker(run_id) {
            let name = procfs::comm(pid);
            for (var, value) in procfs::environ(pid) {
                let secret = var.ends_with("PASSWORD")
                    || var.ends_with("SECRET")
                    || var.ends_with("ENCRYPTION_KEY");
                if secret && value.len() >= 8 {
                    self.0.insert(format!("{var} of {name}"), value);
                }
            }
        }
    }

    fn knows(&self, var: &str) -> bool {
        self.0.keys().any(|k| k.starts_with(var))
    }

    /// Where any learnt secret appears in `text` (named `what`).
    fn found_in(&self, what: &str, text: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, v)| text.contains(v.as_str()))
            .map(|(k, _)| format!("{k} in {what}"))
            .collect()
    }
}

/// The first process of the run whose command line contains `needle`.
fn marked(run_id: &str, needle: &str) -> Option<i32> {
    processes_with_marker(run_id)
        .into_iter()
        .find(|(_, cmd)| cmd.contains(needle))
        .map(|(pid, _)| pid)
}

/// Process group of `pid`, from /proc/<pid>/stat.
fn pgid_of(pid: i32) -> i32 {
    nix::unistd::getpgid(Some(Pid::from_raw(pid)))
        .unwrap_or_else(|e| panic!("process group of {pid}: {e}"))
        .as_raw()
}

/// SIGCONT to a process group when dropped: a stalled Keycloak never stays stopped, even
/// when an assertion fails first.
struct Resume(Option<i32>);

impl Resume {
    fn now(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
        }
    }
}

impl Drop for Resume {
    fn drop(&mut self) {
        self.now();
    }
}

/// What a finished faulty run left: its exit code, output, report, and the files of its
/// report dir (read before the harness is dropped).
struct Outcome {
    code: Option<i32>,
    output: String,
    report: Value,
    files: Vec<(PathBuf, String)>,
}

impl Outcome {
    fn of(h: &mut Harness, timeout: Duration) -> Self {
        let status = h.wait(timeout);
        let output = h.stderr();
        let report = std::fs::read_to_string(h.report_dir.join("report.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        Self {
            code: status.code(),
            output,
            report,
            files: files_under(&h.report_dir),
        }
    }

    /// The failed checks: `(id, detail)`.
    fn failures(&self) -> Vec<(String, String)> {
        self.report["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] == "fail")
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_owned(),
                    c["detail"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Nothing printed or written into the report dir holds a secret of the run.
    fn assert_no_secret(&self, secrets: &Secrets) {
        let mut hits = secrets.found_in("the output", &self.output);
        for (path, text) in &self.files {
            hits.extend(secrets.found_in(&path.display().to_string(), text));
        }
        assert!(hits.is_empty(), "secrets in clear:\n{}", hits.join("\n"));
    }

    /// The report's teardown left nothing: processes, clients, dirs, realms.
    fn assert_clean_teardown(&self) {
        let t = &self.report["teardown"];
        for key in ["processes_left", "clients_left", "dirs_left", "realms_left"] {
            assert_eq!(t[key], 0, "teardown {key}: {t}\noutput:\n{}", self.output);
        }
    }
}

fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

/// Starts `run` with `args`, waits until the checks are under way (`first` passed; the
/// check after it, chosen to take seconds, is then running) and learns the run's secrets
/// from its children.
fn start_run(
    args: &[&str],
    env: &[(&str, &str)],
    first: &str,
) -> (Harness, String, PathBuf, Secrets) {
    let mut h = Harness::spawn(args, env);
    let (run_id, run_dir) = h.run_started();
    h.wait_for_line(&format!("pass  {first}"), Duration::from_secs(300));
    let mut secrets = Secrets::default();
    secrets.learn(&run_id);
    (h, run_id, run_dir, secrets)
}

/// At least `min` checks failed, and every failure says each of `phrases` (which
/// component, and what happened to it).
fn assert_failures_say(out: &Outcome, min: usize, phrases: &[&str]) {
    let failures = out.failures();
    assert!(
        failures.len() >= min,
        "expected at least {min} failures, got {failures:?}\noutput:\n{}",
        out.output
    );
    for what in phrases {
        let unnamed: Vec<_> = failures.iter().filter(|(_, d)| !d.contains(what)).collect();
        assert!(
            unnamed.is_empty(),
            "failures that do not say {what:?}: {unnamed:#?}"
        );
    }
    for (id, detail) in &failures {
        eprintln!("observed: exit {:?}; {id}: {detail}", out.code);
    }
}

#[test]
fn keycloak_killed_mid_run() {
    let _slot = boot_slot();
    let started = Instant::now();
    let (mut h, run_id, run_dir, secrets) = start_run(
        &[
            "run",
            "--only",
            "DCR-01,EXCHANGE-02,EXCHANGE-12",
            "--jobs",
            "1",
        ],
        &[],
        "DCR-01",
    );
    assert!(
        secrets.knows("KC_BOOTSTRAP_ADMIN_PASSWORD"),
        "nothing learnt"
    );
    let jvm = marked(&run_id, "java").expect("Keycloak's JVM runs");
    kill(Pid::from_raw(jvm), Signal::SIGKILL).unwrap();
    let out = Outcome::of(&mut h, Duration::from_secs(120));
    assert_eq!(out.code, Some(1), "a failed check exits 1:\n{}", out.output);
    assert_failures_say(
        &out,
        2,
        &[
            "Keycloak (pid ",
            "is no longer running: it exited with status 137 (what it ran was killed by SIGKILL)",
        ],
    );
    out.assert_clean_teardown();
    out.assert_no_secret(&secrets);
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
    eprintln!("took {:.0}s", started.elapsed().as_secs_f64());
}

#[test]
fn mcp_server_killed_mid_run() {
    let _slot = boot_slot();
    let started = Instant::now();
    let (mut h, run_id, run_dir, secrets) = start_run(
        &["run", "--only", "MCP-03,MCP-10,MCP-11", "--jobs", "1"],
        &[],
        "MCP-03",
    );
    assert!(secrets.knows("TOKEN_ENCRYPTION_KEY"), "nothing learnt");
    let server = marked(&run_id, "nextcloud-mcp-server").expect("the MCP server runs");
    kill(Pid::from_raw(server), Signal::SIGKILL).unwrap();
    let out = Outcome::of(&mut h, Duration::from_secs(120));
    assert_eq!(out.code, Some(1), "a failed check exits 1:\n{}", out.output);
    assert_failures_say(
        &out,
        2,
        &[&format!(
            "the MCP server (pid {server}) is no longer running: it was killed by SIGKILL"
        )],
    );
    out.assert_clean_teardown();
    out.assert_no_secret(&secrets);
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
    eprintln!("took {:.0}s", started.elapsed().as_secs_f64());
}

#[test]
fn chromedriver_killed_mid_run() {
    let _slot = boot_slot();
    let started = Instant::now();
    let (mut h, run_id, run_dir, secrets) = start_run(
        &["run", "--only", "PKCE-01,PKCE-02,PKCE-03", "--jobs", "1"],
        &[],
        "PKCE-01",
    );
    let driver = processes_with_marker(&run_id)
        .into_iter()
        .find(|(pid, _)| procfs::comm(*pid) == "chromedriver")
        .map(|(pid, _)| pid)
        .expect("ChromeDriver runs");
    kill(Pid::from_raw(driver), Signal::SIGKILL).unwrap();
    let out = Outcome::of(&mut h, Duration::from_secs(180));
    assert_eq!(out.code, Some(1), "a failed check exits 1:\n{}", out.output);
    assert_failures_say(
        &out,
        2,
        &[&format!(
            "ChromeDriver (pid {driver}) is no longer running: it was killed by SIGKILL"
        )],
    );
    out.assert_clean_teardown();
    out.assert_no_secret(&secrets);
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
    eprintln!("took {:.0}s", started.elapsed().as_secs_f64());
}

#[test]
fn keycloak_stalled_past_the_check_timeout() {
    let _slot = boot_slot();
    let started = Instant::now();
    let (mut h, run_id, run_dir, secrets) = start_run(
        &[
            "run",
            "--only",
            "DCR-01,EXCHANGE-02,EXCHANGE-12",
            "--jobs",
            "1",
            "--check-timeout",
            "8",
        ],
        &[],
        "DCR-01",
    );
    let jvm = marked(&run_id, "java").expect("Keycloak's JVM runs");
    let group = pgid_of(jvm);
    killpg(Pid::from_raw(group), Signal::SIGSTOP).unwrap();
    let mut resume = Resume(Some(group));
    // Resumed once the checks are over, before teardown needs Keycloak.
    h.wait_for_line("phase checks", Duration::from_secs(120));
    resume.now();
    let out = Outcome::of(&mut h, Duration::from_secs(120));
    assert_eq!(out.code, Some(1), "a failed check exits 1:\n{}", out.output);
    assert_failures_say(
        &out,
        2,
        &[
            &format!("Keycloak (pid {group}) does not run: processes {group} (sh), "),
            "(java) of its group are stopped (e.g. by SIGSTOP)",
        ],
    );
    out.assert_clean_teardown();
    assert_eq!(
        out.report["teardown"]["clients_deleted_by_admin_fallback"],
        0
    );
    out.assert_no_secret(&secrets);
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
    eprintln!("took {:.0}s", started.elapsed().as_secs_f64());
}

/// The one port the harness is told to use (`--mcp-redirect-uri`, which an external MCP
/// server allows) held by another process: a usage error (2) naming the port, said before
/// anything starts.
#[test]
fn a_redirect_port_already_taken() {
    let started = Instant::now();
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let uri = format!("http://127.0.0.1:{port}/callback");
    let mut h = Harness::spawn(
        &["run", "--only", "MCP-03", "--mcp-redirect-uri", &uri],
        &[],
    );
    let out = Outcome::of(&mut h, Duration::from_secs(60));
    drop(taken);
    assert_eq!(out.code, Some(2), "a usage error:\n{}", out.output);
    let said = format!(
        "the redirect URI {uri} needs the harness to listen on 127.0.0.1:{port}, and that port is taken: Address already in use"
    );
    assert!(
        out.output.contains(&said),
        "no {said:?} in:\n{}",
        out.output
    );
    assert!(
        !out.output.contains("run 2"),
        "a run started before the port was checked:\n{}",
        out.output
    );
    eprintln!(
        "observed: exit {:?}; {said}; took {:.1}s",
        out.code,
        started.elapsed().as_secs_f64()
    );
}

/// A small tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `Err(why)` where this machine does not let the test mount one (no root, no
    /// CAP_SYS_ADMIN, no tmpfs).
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem is full; returns how many bytes it took.
    fn fill(&self) -> u64 {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 1 << 20];
        let mut written = 0;
        while let Ok(n) = f.write(&block) {
            if n == 0 {
                break;
            }
            written += n as u64;
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn the_run_dir_on_a_full_filesystem() {
    let _slot = boot_slot();
    let started = Instant::now();
    let fs = match Tmpfs::mount("256m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipped: no tmpfs can be mounted here: {why}");
            return;
        }
    };
    let tmp = fs.path().to_str().unwrap().to_owned();
    let (mut h, run_id, run_dir, secrets) = start_run(
        &[
            "run",
            "--only",
            "PKCE-01,STORAGE-03,STORAGE-05",
            "--jobs",
            "1",
        ],
        &[("TMPDIR", &tmp)],
        "STORAGE-03",
    );
    assert!(run_dir.starts_with(fs.path()), "{}", run_dir.display());
    // Filled only now: the Keycloak home is copied into the run dir at boot, and the
    // STORAGE checks' MCP server instance (which starts first) writes its database there.
    // With `--jobs 1`, STORAGE-05 then provisions the user into that database on a full
    // filesystem and cannot; PKCE checks alone pass on a full run dir (Chromium copes).
    let filled = fs.fill();
    eprintln!("filled {} MiB", filled >> 20);
    let out = Outcome::of(&mut h, Duration::from_secs(240));
    assert_eq!(out.code, Some(1), "a failed check exits 1:\n{}", out.output);
    assert_failures_say(&out, 1, &["is on a full filesystem"]);
    out.assert_clean_teardown();
    out.assert_no_secret(&secrets);
    common::assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
    eprintln!("took {:.0}s", started.elapsed().as_secs_f64());
}
