//! A real browser on Keycloak's real login page, through WebDriver (fantoccini).
//!
//! One Chromium profile per name (per user), so a user's later authorizations reuse that
//! user's Keycloak session and never another user's. A profile is used by one flow at a
//! time.

pub mod login;
pub mod redirect;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::sync::Mutex;

/// The flags every Chromium gets: headless, no sandbox (we run as root in CI), and no
/// background traffic toward a network this machine cannot reach.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
];

/// The browsers of a session.
pub struct Browser {
    webdriver: String,
    /// The local Chromium binary; `None` for a remote WebDriver, which uses its own
    /// (and keeps each session's profile in a temporary directory of its own).
    chromium: Option<String>,
    profiles_dir: PathBuf,
    evidence_dir: PathBuf,
    profiles: Mutex<HashMap<String, Arc<Mutex<Client>>>>,
}

impl Browser {
    pub fn new(
        webdriver: String,
        chromium: Option<String>,
        profiles_dir: PathBuf,
        evidence_dir: PathBuf,
    ) -> Self {
        Self {
            webdriver,
            chromium,
            profiles_dir,
            evidence_dir,
            profiles: Mutex::new(HashMap::new()),
        }
    }

    /// The WebDriver session of profile `name`, started on first use.
    pub async fn profile(&self, name: &str) -> anyhow::Result<Arc<Mutex<Client>>> {
        let mut profiles = self.profiles.lock().await;
        if let Some(p) = profiles.get(name) {
            return Ok(p.clone());
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        if let Some(proxy) = crate::http::route() {
            // Chromium sends loopback traffic past any proxy unless told otherwise.
            args.push(format!("--proxy-server={proxy}"));
            args.push("--proxy-bypass-list=<-loopback>".to_owned());
        }
        let mut options = serde_json::Map::new();
        if let Some(binary) = &self.chromium {
            let dir = self.profiles_dir.join(sanitize(name));
            crate::stack::run::create_private_dir(&dir)?;
            args.push(format!("--user-data-dir={}", dir.display()));
            options.insert("binary".into(), json!(binary));
        }
        options.insert("args".into(), json!(args));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options.into());
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            builder.connect(&self.webdriver),
        )
        .await
        .context("starting Chromium through ChromeDriver took over 60s")?
        .with_context(|| format!("starting a Chromium session for profile {name:?}"))?;
        let p = Arc::new(Mutex::new(client));
        profiles.insert(name.to_owned(), p.clone());
        Ok(p)
    }

    /// Ends every WebDriver session (Chromium exits with it), all at once: each within
    /// 10 s, none waiting for another.
    pub async fn close_all(&self) {
        let profiles: Vec<_> = self.profiles.lock().await.drain().collect();
        futures::future::join_all(profiles.into_iter().map(|(_, p)| async move {
            let client = p.lock().await.clone();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), client.close()).await;
        }))
        .await;
    }

    /// Removes the profiles (after [`Browser::close_all`]): they hold the URLs Chromium
    /// visited, authorization codes included, and are many small files.
    pub async fn remove_profiles(&self) {
        if let Err(e) = tokio::fs::remove_dir_all(&self.profiles_dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!("removing {}: {e}", self.profiles_dir.display());
        }
    }

    /// Saves a screenshot and the page source of `client` for a failure; returns a line
    /// naming both files.
    pub async fn capture(&self, client: &Client, label: &str) -> String {
        if let Err(e) = std::fs::create_dir_all(&self.evidence_dir) {
            return format!("(could not create {}: {e})", self.evidence_dir.display());
        }
        let stem = self.evidence_dir.join(format!(
            "{}-{}",
            sanitize(label),
            crate::oauth::pkce::random_value()
        ));
        let png = stem.with_extension("png");
        let html = stem.with_extension("html");
        let shot = match client.screenshot().await {
            Ok(bytes) => std::fs::write(&png, bytes)
                .map(|_| png.display().to_string())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let source = match client.source().await {
            Ok(text) => std::fs::write(&html, crate::secret::redact(&text))
                .map(|_| html.display().to_string())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let show = |r: Result<String, String>| r.unwrap_or_else(|e| format!("(not saved: {e})"));
        format!("screenshot {}, page source {}", show(shot), show(source))
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
