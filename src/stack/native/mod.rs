//! The native backend: every component a process on this machine.

pub mod distribution;
pub mod jdk;
pub mod keycloak;
pub mod mcp_profiles;
pub mod mcp_server;

use super::{Backend, KeycloakEndpoint, Stack, StackConfig};
use crate::progress::Progress;
use crate::stack::run::RunContext;

pub async fn up(run: &RunContext, cfg: &StackConfig, progress: &Progress) -> anyhow::Result<Stack> {
    let started = std::time::Instant::now();
    let kc = keycloak::start(run, &cfg.keycloak, progress).await?;
    progress.phase_done("boot.keycloak", started.elapsed());
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
    Ok(Stack::new(
        Backend::Native,
        endpoint,
        components,
        kc.argv.clone(),
        vec![kc.process],
    ))
}
