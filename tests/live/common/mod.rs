//! Helpers for tests that drive the built binary as a user would.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use mcp_authz_harness::stack::process::processes_with_marker;

pub mod procfs;

/// How many tests boot their stacks at the same time. Two keep both cores busy: a run
/// that boots Keycloak computes for less than half its wall time (it waits on Keycloak,
/// on processes it killed, on timeouts it provoked), and concurrent runs on one machine
/// are a supported use (`concurrency.rs`).
const BOOT_SLOTS: usize = 2;

static BOOTING: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

/// A slot among [`BOOT_SLOTS`], held until dropped.
pub struct BootSlot(());

impl Drop for BootSlot {
    fn drop(&mut self) {
        *BOOTING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        SLOT_FREED.notify_one();
    }
}

/// Tests that boot Keycloak take one of [`BOOT_SLOTS`] slots, waiting for one to be free.
pub fn boot_slot() -> BootSlot {
    let mut booting = BOOTING.lock().unwrap_or_else(|e| e.into_inner());
    while *booting >= BOOT_SLOTS {
        booting = SLOT_FREED.wait(booting).unwrap_or_else(|e| e.into_inner());
    }
    *booting += 1;
    BootSlot(())
}

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-authz-harness");

/// A running `mcp-authz-harness` with its stderr (and stdout) read line by line.
pub struct Harness {
    /// Where `run` writes its reports (a temp dir of the test).
    pub report_dir: PathBuf,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Harness {
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let report = tempfile::tempdir().unwrap().keep();
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(env.iter().copied())
            .env("MCP_AUTHZ_HARNESS_REPORT_DIR", &report);
        if args.first() == Some(&"run") {
            cmd.arg("--report-dir").arg(&report);
        }
        Self::spawn_command(cmd, report)
    }

    /// `run --backend external --stack <stack_path> --only <only>`: checks against the
    /// stack an `up` keeps running.
    pub fn run_external(stack_path: &str, only: &str) -> Self {
        let args = [
            "run",
            "--backend",
            "external",
            "--stack",
            stack_path,
            "--only",
            only,
        ];
        Self::spawn(&args, &[])
    }

    /// Starts `cmd` (the binary with its arguments, cwd and environment set) as a harness
    /// whose reports are in `report_dir` (removed when it is dropped).
    pub fn spawn_command(mut cmd: Command, report: PathBuf) -> Self {
        cmd.env("CI", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the harness binary starts");
        let (tx, rx) = channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            report_dir: report,
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; panics with everything seen on timeout.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {needle:?} within {}s; output so far:\n{}",
                    timeout.as_secs(),
                    self.stderr()
                ),
            }
        }
    }

    /// The run id and run dir from the `run <id> in <dir>` line.
    pub fn run_started(&mut self) -> (String, PathBuf) {
        let line = self.wait_for_line("run 2", Duration::from_secs(30));
        let rest = &line[line.find("run 2").unwrap() + 4..];
        let (id, dir) = rest.split_once(" in ").unwrap();
        (id.trim().to_owned(), PathBuf::from(dir.trim()))
    }

    /// `up`'s stack.json and its path, once it printed the path (alone on a line).
    pub fn stack_json(&mut self, timeout: Duration) -> (String, serde_json::Value) {
        // The path alone on its line (stdout); the hint on stderr names it too, and the two
        // streams arrive in either order, so the hint must not be taken for it.
        let is_path = |l: &str| l.trim().ends_with("stack.json") && !l.trim().contains(' ');
        let deadline = Instant::now() + timeout;
        let path = loop {
            self.drain();
            if let Some(l) = self.seen.iter().find(|l| is_path(l)) {
                break l.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no stack.json path within {}s; output:\n{}",
                timeout.as_secs(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "stack.json must be private"
        );
        let json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        (path, json)
    }

    pub fn wait_until(&mut self, timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond() {
            self.drain();
            assert!(
                Instant::now() < deadline,
                "waited {}s for {what}; output:\n{}",
                timeout.as_secs(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The harness's own process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// `Some(status)` once the process has exited (output read so far is kept).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.drain();
        self.child.try_wait().unwrap()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Ctrl-C: SIGINT, then the exit within `timeout` with status `expected` (130 for an
    /// interrupted run, 0 for `up`, whose Ctrl-C is how it ends).
    pub fn interrupt(&mut self, expected: i32, timeout: Duration) {
        self.signal(nix::sys::signal::Signal::SIGINT);
        let status = self.wait(timeout);
        assert_eq!(
            status.code(),
            Some(expected),
            "exit status after SIGINT; output:\n{}",
            self.stderr()
        );
    }

    /// Ends an `up` as its user does (Ctrl-C, exit 0), then asserts that nothing of the
    /// stack it described in `stack` (its stack.json) is left within `grace`.
    pub fn stop_up(&mut self, stack: &serde_json::Value, grace: Duration) {
        let run_id = stack["run_id"].as_str().unwrap().to_owned();
        let run_dir = PathBuf::from(stack["run_dir"].as_str().unwrap());
        self.interrupt(0, Duration::from_secs(60));
        assert_nothing_left(&run_id, &run_dir, grace);
    }

    /// The run's `report.json`, parsed.
    pub fn report(&self) -> serde_json::Value {
        let path = self.report_dir.join("report.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; output:\n{}", path.display(), self.stderr()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Waits for the process to exit (killing it on timeout, and failing).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                self.drain();
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the harness did not exit within {}s; output:\n{}",
                    timeout.as_secs(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    pub fn stderr(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.report_dir);
    }
}

/// No process with the run's marker and no run dir, within `grace`.
pub fn assert_nothing_left(run_id: &str, run_dir: &std::path::Path, grace: Duration) {
    let deadline = Instant::now() + grace;
    loop {
        let procs = processes_with_marker(run_id);
        if procs.is_empty() && !run_dir.exists() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "left behind after {}s: processes {procs:?}, run dir exists: {}",
                grace.as_secs(),
                run_dir.exists()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `sweep` against the realm and returns its output.
pub fn sweep(kc: &str, admin: &str, password: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args([
            "sweep",
            "--keycloak-url",
            kc,
            "--admin-user",
            admin,
            "--admin-password-env",
            "SWEEP_ADMIN_PASSWORD",
        ])
        .args(extra)
        .env("SWEEP_ADMIN_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sweep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The count in sweep's summary line.
pub fn sweep_count(out: &str) -> u32 {
    let line = out
        .lines()
        .find(|l| l.starts_with("sweep: "))
        .expect("a summary line");
    line["sweep: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Where a report's statuses differ from what a native run of the same subjects gives:
/// pass, or xfail where an expectation of those subjects pins a deviation; a check that
/// needs what the report's backend lacks by design is unavailable there (a skip). One line
/// per difference.
pub fn statuses_unlike_native(report: &serde_json::Value) -> Vec<String> {
    use mcp_authz_harness::checks::{Subject, catalogue};
    use mcp_authz_harness::expectations::Expectations;
    use mcp_authz_harness::stack::Backend;
    let components = &report["components"];
    let version = |k: &str| components[k].as_str().unwrap_or_default().to_owned();
    let subjects = [
        (Subject::Keycloak, version("keycloak")),
        (Subject::McpServer, version("mcp-server")),
        (Subject::ResourceServer, version("nextcloud")),
        (Subject::Realm, "nextcloud-mcp".to_owned()),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expectations");
    let all = catalogue();
    let expectations = Expectations::load(&dir, &subjects, &all).unwrap();
    let backend = Backend::AVAILABLE
        .into_iter()
        .find(|b| report["backend"] == b.name())
        .expect("the report names its backend");
    let mut out = Vec::new();
    for c in report["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let check = all.iter().find(|k| k.id == id).unwrap();
        let lacked = backend.lacks().iter().any(|(n, _)| check.needs.contains(n));
        let want = if lacked {
            "skip"
        } else if expectations.get(id).is_some() {
            "xfail"
        } else {
            "pass"
        };
        if c["status"] != want {
            out.push(format!(
                "{id}: {} (native: {want}): {}",
                c["status"],
                c["detail"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}
