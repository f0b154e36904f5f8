//! The native backend: every component a process on this machine.

pub mod chromedriver;
pub mod distribution;
pub mod jdk;
pub mod keycloak;
pub mod mcp_instances;
pub mod mcp_profiles;
pub mod mcp_server;

use super::{Backend, KeycloakEndpoint, Stack, StackConfig};
use crate::checks::Need;
use crate::progress::Progress;
use crate::stack::run::RunContext;

pub async fn up(run: &RunContext, cfg: &StackConfig, progress: &Progress) -> anyhow::Result<Stack> {
    let kc = keycloak::start(run, &cfg.keycloak, progress).await?;
    let components = vec![
        ("keycloak".to_owned(), kc.version.clone()),
        ("java".to_owned(), kc.java.version.clone()),
    ];
    let endpoint = KeycloakEndpoint {
        base_url: kc.base_url.clone(),
        admin_user: kc.admin_user.clone(),
        admin_password: kc.admin_password.clone(),
        version: kc.version.clone(),
    };
    let mut stack = Stack::new(
        Backend::Native,
        endpoint,
        components,
        kc.argv.clone(),
        vec![kc.process],
    );
    if cfg.needs.contains(&Need::Browser) {
        start_browser(run, progress, &mut stack).await?;
    }
    Ok(stack)
}

/// ChromeDriver and Chromium, or the reason they cannot run (then the checks that need
/// them are skipped, or failed under `CI=true`).
async fn start_browser(
    run: &RunContext,
    progress: &Progress,
    stack: &mut Stack,
) -> anyhow::Result<()> {
    if let Some(why) = chromedriver::missing() {
        stack.unavailable.push((Need::Browser, why));
        return Ok(());
    }
    let started = std::time::Instant::now();
    let driver = chromedriver::start(run, progress).await?;
    progress.phase_done("boot.chromedriver", started.elapsed());
    stack
        .components
        .push(("chromium".into(), driver.chromium_version.clone()));
    stack
        .components
        .push(("chromedriver".into(), driver.chromedriver_version.clone()));
    stack.webdriver = Some(super::WebDriverEndpoint {
        url: driver.url.clone(),
        chromium: driver.chromium.clone(),
    });
    stack.adopt(driver.process).await;
    Ok(())
}
