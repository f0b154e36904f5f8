//! The containers backend: Keycloak and the MCP server as containers through a Docker
//! engine (testcontainers), the browser through the local ChromeDriver, the resource
//! server the harness's Nextcloud stand-in.
//!
//! Every container joins the host network, so every URL is 127.0.0.1 with a port the
//! harness chose, the same for the browser and the servers. The stand-in runs inside the
//! harness as in the native backend: the RS checks read its request log.

pub mod build;
pub mod container;
pub mod engine;
pub mod images;
mod keycloak;
pub mod mcp_server;

use std::sync::Arc;

use super::run::RunContext;
use super::{Need, Stack, StackConfig, SubjectWiring, native};
use crate::progress::Progress;
use engine::Engine;

/// What the containers backend runs: the images (repositories, tagged with the versions
/// asked for, or full references with a tag), and the browser.
#[derive(Clone, Debug)]
pub struct ContainersOptions {
    pub keycloak_image: String,
    pub mcp_server_image: String,
    /// A WebDriver server the user runs (a Selenium image on the host network) instead of
    /// the local ChromeDriver.
    pub webdriver_url: Option<String>,
}

impl Default for ContainersOptions {
    fn default() -> Self {
        Self {
            keycloak_image: images::KEYCLOAK_OFFICIAL.into(),
            mcp_server_image: images::MCP_SERVER_OFFICIAL.into(),
            webdriver_url: None,
        }
    }
}

/// The engine, Keycloak's container and meanwhile ChromeDriver.
pub async fn up(
    run: Arc<RunContext>,
    cfg: &StackConfig,
    progress: Arc<Progress>,
) -> anyhow::Result<Stack> {
    let engine = Engine::connect().await?;
    let remote_webdriver = cfg.containers.webdriver_url.clone();
    let local_browser = StackConfig {
        needs: (cfg.needs.iter().copied())
            .filter(|n| *n != Need::Browser || remote_webdriver.is_none())
            .collect(),
        ..cfg.clone()
    };
    let start = keycloak::start(&engine, &run, cfg, &progress);
    let (kc, browser) = native::with_browser(&run, &local_browser, &progress, start).await;
    let kc = kc?;
    let components = vec![
        ("keycloak".to_owned(), cfg.keycloak.version.clone()),
        ("java".to_owned(), kc.java.clone()),
        (
            "docker-engine".to_owned(),
            format!("{} (API {})", engine.version, engine.api_version),
        ),
        (
            "keycloak-image".to_owned(),
            format!("{} {} (run as {})", kc.image, kc.image_id, kc.built),
        ),
    ];
    let booted = native::BootedKeycloak {
        process: kc.process,
        base_url: kc.base_url,
        admin_password: kc.admin_password,
        version: cfg.keycloak.version.clone(),
        boot_time: kc.boot_time,
        argv: kc.argv,
    };
    let mut stack = native::assemble((run, progress, cfg), booted, components, browser).await?;
    if let Some(url) = remote_webdriver
        && cfg.needs(Need::Browser)
    {
        super::external::remote_webdriver(&mut stack, &url).await?;
    }
    Ok(stack)
}

/// The stand-in, then the MCP server as a container of the configured image, pointed at
/// them and the realm.
pub(super) async fn start_subjects(stack: &mut Stack, wiring: &SubjectWiring) {
    if stack.config.needs(Need::McpServer) {
        match mcp_server_image(stack).await {
            Ok((image, id)) => {
                stack
                    .components
                    .push(("mcp-server-image".into(), format!("{image} {id}")));
                stack.config.mcp_server.image = Some(image);
            }
            Err(e) => {
                // Its start fails with what to do; the resource server still starts.
                stack.progress.println(&format!("{e:#}"));
                let (image, version) = (
                    &stack.config.containers.mcp_server_image,
                    &stack.config.mcp_server.version,
                );
                stack.config.mcp_server.image = Some(images::reference(image, version));
            }
        }
    }
    native::start_subjects(stack, wiring).await;
}

/// The MCP server's image for the stack's release, and its ID.
async fn mcp_server_image(stack: &Stack) -> anyhow::Result<(String, String)> {
    let engine = Engine::connect().await?;
    let official = (images::MCP_SERVER_OFFICIAL, images::MCP_SERVER_LOCAL);
    let (image, version) = (
        &stack.config.containers.mcp_server_image,
        &stack.config.mcp_server.version,
    );
    images::resolve(
        &engine,
        image,
        version,
        official,
        "MCP server",
        &stack.progress,
    )
    .await
}

/// The run's containers the engine still holds once every component stopped, given a few
/// seconds for removals in progress (`AutoRemove`); each one found is removed.
pub async fn left_after_stop(run_id: &str) -> anyhow::Result<Vec<String>> {
    let engine = Engine::connect().await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = engine.labelled(Some(run_id)).await?;
        if left.is_empty() || std::time::Instant::now() >= deadline {
            for (id, _, _) in &left {
                engine.remove(id).await?;
            }
            return Ok(left
                .into_iter()
                .map(|(id, _, _)| engine::short_id(&id).to_owned())
                .collect());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
