//! The GitHub Actions workflows lint clean under actionlint (which also runs shellcheck on
//! `run:` scripts when shellcheck is on PATH). actionlint is pinned; it is taken from the
//! harness's tool cache, or built there with `go install` when absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_authz_harness::stack::native::distribution;

const VERSION: &str = "v1.7.12";
const MODULE: &str = "github.com/rhysd/actionlint/cmd/actionlint";
/// A cold module download and build on 2 busy cores stays well within this.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn workflows_lint_clean_under_actionlint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let actionlint = actionlint().unwrap_or_else(|e| panic!("{e}"));
    // Without arguments actionlint lints every file in .github/workflows/.
    let out = Command::new(&actionlint)
        .args(["-no-color"])
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", actionlint.display()));
    assert!(
        out.status.success(),
        "actionlint {VERSION} found problems (exit {}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The pinned actionlint: the cached binary, or one built into the cache now.
fn actionlint() -> Result<PathBuf, String> {
    let dir = distribution::cache_root()
        .join("tools")
        .join(format!("actionlint-{VERSION}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let bin = dir.join("actionlint");
    // Concurrent test runs (two checkouts) install once: the second waits here.
    let lock = distribution::lock(&dir.join("install.lock")).map_err(|e| format!("{e:#}"))?;
    if !bin.exists() {
        install(&dir)?;
    }
    drop(lock);
    let out = Command::new(&bin)
        .arg("-version")
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    match version.lines().next() {
        Some(v) if v.trim() == VERSION => Ok(bin),
        other => Err(format!(
            "{} says it is {other:?}, not {VERSION}: delete it and run the test again",
            bin.display()
        )),
    }
}

/// `GOBIN=<dir> go install <module>@<version>`, killed after [`INSTALL_TIMEOUT`].
fn install(dir: &Path) -> Result<(), String> {
    let what = format!("GOBIN={} go install {MODULE}@{VERSION}", dir.display());
    let mut child = Command::new("go")
        .args(["install", &format!("{MODULE}@{VERSION}")])
        .env("GOBIN", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "actionlint {VERSION} is not in {} and `go` cannot run ({e}): install Go \
                 (https://go.dev/dl/), or put the actionlint binary there",
                dir.display()
            )
        })?;
    // Read stderr while it runs, so a chatty build cannot fill the pipe and stall.
    let mut pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(p) = pipe.as_mut() {
            let _ = std::io::Read::read_to_string(p, &mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > INSTALL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{what}` did not finish in {} s (is the Go module proxy reachable?)",
                    INSTALL_TIMEOUT.as_secs()
                ));
            }
            // `go install` has no event to wait on with a deadline; poll its exit.
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("`{what}`: {e}")),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("`{what}` failed ({status}):\n{stderr}"));
    }
    Ok(())
}
