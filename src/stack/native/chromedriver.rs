//! ChromeDriver (Debian's `chromium-driver`) on an ephemeral port, driving Debian's
//! headless Chromium. Chromium runs as ChromeDriver's child and inherits the run marker,
//! so the watchdog reaches it too.

use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

use crate::http::Http;
use crate::progress::Progress;
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;
use crate::stack::wait::{Condition, wait_ready};

/// A running ChromeDriver.
pub struct Chromedriver {
    pub process: ManagedProcess,
    pub url: String,
    pub chromium: String,
    pub chromium_version: String,
    pub chromedriver_version: String,
}

/// Why the browser cannot run here, if it cannot (a missing binary).
pub fn missing() -> Option<String> {
    let absent: Vec<&str> = ["chromium", "chromedriver"]
        .into_iter()
        .filter(|b| which(b).is_none())
        .collect();
    (!absent.is_empty()).then(|| {
        format!(
            "{} not installed (`apt-get install chromium chromium-driver`, or run `mcp-authz-harness doctor`)",
            absent.join(" and ")
        )
    })
}

pub async fn start(run: &RunContext, progress: &Progress) -> anyhow::Result<Chromedriver> {
    let driver = which("chromedriver").context("chromedriver is not on PATH")?;
    let chromium = which("chromium").context("chromium is not on PATH")?;
    let port = crate::stack::ports::free_port()?;
    let mut cmd = Command::new(&driver);
    // Chromium's own temp dirs (org.chromium.Chromium.*) go into the run dir, which
    // teardown removes: in /tmp they outlived a Chromium that was killed.
    cmd.arg(format!("--port={port}"))
        .current_dir(&run.dir)
        .env("TMPDIR", run.subdir("tmp")?);
    let mut process =
        ManagedProcess::spawn("chromedriver", &run.id, cmd, &run.path("chromedriver.log"))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = Http::new(Duration::from_secs(5));
    let status = format!("{url}/status");
    let ready = Condition::new("ChromeDriver's /status says ready", || {
        let (http, status) = (http.clone(), status.clone());
        async move {
            match http.get(&status).send().await {
                Ok(r) if r.json_value().is_ok_and(|v| v["value"]["ready"] == true) => Ok(()),
                Ok(r) => Err(r.summary()),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    wait_ready(
        "ChromeDriver",
        Duration::from_secs(30),
        Some(&mut process),
        vec![ready],
        progress,
    )
    .await?;
    Ok(Chromedriver {
        process,
        url,
        chromium_version: version_line(&chromium),
        chromedriver_version: version_line(&driver),
        chromium,
    })
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// "Chromium 156.0.8078.108 built on Debian…" → "156.0.8078.108".
fn version_line(bin: &str) -> String {
    let out = std::process::Command::new(bin).arg("--version").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .unwrap_or("unknown")
        .to_owned()
}
