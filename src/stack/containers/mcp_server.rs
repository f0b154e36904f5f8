//! The reference MCP server as a container of its image, started from the same command the
//! native backend would run (its arguments appended to the image's entrypoint, its
//! variables set), so both backends configure the same release the same way.

use std::path::PathBuf;

use anyhow::Context;
use tokio::process::Command;

use super::container::{ContainerSpec, ManagedContainer};
use super::engine::Engine;
use crate::stack::mcp_profiles::LaunchProfile;
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;

/// Variables of the host that mean nothing inside the image (its own `PATH` and CA store
/// apply; `HOME` is the instance's working dir).
const HOST_ONLY: [&str; 4] = ["PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"];

/// Starts `command` (as `mcp_server::prepare` made it) as a container of `image`, named
/// `instance`, logging to `log`.
pub async fn launch(
    run: &RunContext,
    image: &str,
    instance: &str,
    command: &Command,
    log: &std::path::Path,
) -> anyhow::Result<ManagedProcess> {
    let engine = Engine::connect().await?;
    let spec = spec_for(run, image, command)?;
    let container = ManagedContainer::start(&engine, &spec, &run.id, log).await?;
    Ok(ManagedProcess::container(
        instance,
        container,
        log,
        spec.argv(),
    ))
}

fn spec_for(run: &RunContext, image: &str, command: &Command) -> anyhow::Result<ContainerSpec> {
    let std = command.as_std();
    let mut args: Vec<String> = std
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // The image's entrypoint is `nextcloud-mcp-server run --host 0.0.0.0`: what follows
    // `run` appends (a later `--host` wins). A release without the subcommand runs the
    // program itself.
    let entrypoint = if args.first().is_some_and(|a| a == "run") {
        args.remove(0);
        None
    } else {
        Some(crate::mcp::REFERENCE_PACKAGE.to_owned())
    };
    let working_dir: PathBuf = std
        .get_current_dir()
        .context("the command has no working dir")?
        .into();
    let mut env: Vec<(String, String)> = std
        .get_envs()
        .filter(|(k, _)| !HOST_ONLY.iter().any(|h| k.to_str() == Some(h)))
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                v?.to_string_lossy().into_owned(),
            ))
        })
        .collect();
    env.push(("HOME".into(), working_dir.display().to_string()));
    Ok(ContainerSpec {
        image: image.to_owned(),
        entrypoint,
        args,
        env,
        working_dir: Some(working_dir),
        // The harness's own user, so that the run dir (database, temp files) stays
        // readable and removable by the harness.
        user: Some(format!(
            "{}:{}",
            nix::unistd::getuid(),
            nix::unistd::getgid()
        )),
        bind_same_path: vec![run.dir.clone()],
        init: true,
    })
}

/// The default of the release's `--oauth-scopes` option, read from its source inside the
/// running container (what it asks the IdP for when `NEXTCLOUD_OIDC_SCOPES` is unset).
pub async fn default_oidc_scopes(
    process: &ManagedProcess,
    profile: &LaunchProfile,
) -> Option<String> {
    let container = process.as_container()?;
    let script = format!(
        "import importlib.util, pathlib; \
         spec = importlib.util.find_spec('nextcloud_mcp_server'); \
         print(pathlib.Path(spec.submodule_search_locations[0], '{}').read_text())",
        profile.cli_source
    );
    let source = container
        .exec_stdout(&["python3", "-c", &script])
        .await
        .ok()?;
    super::super::native::mcp_server::scopes_default_in(&source)
}
