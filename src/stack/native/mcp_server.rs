//! The reference MCP server, `nextcloud-mcp-server` from PyPI, as a process of the run.
//!
//! Each release is installed once into a cached venv
//! (`<cache>/venv-nextcloud-mcp-server-<version>`, under a lock, marked complete only when
//! pip succeeded) and started per run from an empty working directory (a `settings.toml`
//! there would be read), with its database, Fernet key, temp dir and port all the run's
//! own. How a release is started comes from its [launch profile](super::mcp_profiles).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Command;

use super::distribution::{cache_root, lock};
use crate::http::Http;
use crate::progress::Progress;
use crate::secret::Secret;
use crate::stack::containers;
use crate::stack::mcp_profiles::{LaunchProfile, OAuthMode, profile_for};
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;
use crate::stack::wait::{Condition, wait_ready};

/// The PyPI package.
pub const PACKAGE: &str = crate::mcp::REFERENCE_PACKAGE;

/// Which release to run and how long installing and booting may take.
#[derive(Clone, Debug)]
pub struct McpServerOptions {
    pub version: String,
    /// The interpreter that creates the venv (the releases need Python 3.11 or newer).
    pub python: String,
    pub install_timeout: Duration,
    pub boot_timeout: Duration,
    /// Variables set over the harness's configuration of the stack's own server (a
    /// mutant of the self-test; empty otherwise).
    pub extra_env: Vec<(String, String)>,
    /// The image to run it from (`repository:tag`, the containers backend); a venv when
    /// `None`.
    pub image: Option<String>,
}

impl McpServerOptions {
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            python: "python3.11".into(),
            install_timeout: Duration::from_secs(900),
            boot_timeout: Duration::from_secs(120),
            extra_env: Vec::new(),
            image: None,
        }
    }
}

/// What the server is pointed at, decided by the session.
#[derive(Clone, Debug)]
pub struct McpServerWiring {
    /// Names its process, log (`<instance>.log`) and directories in the run dir, so a
    /// second configuration can run next to the first (`mcp-server` for the first).
    pub instance: String,
    /// The Keycloak realm's OIDC discovery URL.
    pub discovery_url: String,
    /// Nextcloud's base URL (the stand-in in the native backend).
    pub nextcloud_host: String,
    /// The server's own confidential client at Keycloak.
    pub client_id: String,
    pub client_secret: Secret,
    /// The one client its authorization proxy allows (`ALLOWED_MCP_CLIENTS`), with the
    /// exact redirect URI where the release can say so.
    pub allowed_client_id: String,
    pub allowed_redirect_uri: String,
    /// Variables set last, over everything above: a second configuration of the same
    /// release (e.g. `ENABLE_DCR=true` for the proxy's DCR check).
    pub extra_env: Vec<(String, String)>,
    /// Variables removed after everything above, for a configuration that leaves one out
    /// (no static client, so the server registers itself; no `TOKEN_STORAGE_DB`).
    pub unset_env: Vec<String>,
    /// The port, when a restart must keep it; a free one otherwise.
    pub port: Option<u16>,
    /// `TOKEN_ENCRYPTION_KEY`, when a restart must keep the key of the database it finds
    /// (or deliberately change it); a fresh one otherwise.
    pub fernet_key: Option<Secret>,
}

/// A started MCP server.
pub struct NativeMcpServer {
    pub process: ManagedProcess,
    pub version: String,
    pub profile: &'static LaunchProfile,
    /// `http://127.0.0.1:PORT`, also its `NEXTCLOUD_MCP_SERVER_URL`.
    pub base_url: String,
    pub fernet_key: Secret,
    pub db_path: PathBuf,
    /// Its `TMPDIR` (where it puts an ephemeral database when `TOKEN_STORAGE_DB` is unset).
    pub tmp_dir: PathBuf,
    /// The directory holding its working dir, data and `TMPDIR`.
    pub home: PathBuf,
    /// The `NEXTCLOUD_OIDC_SCOPES` it was given: the release's own CLI default.
    pub oidc_scopes: String,
    /// The command line, for the report.
    pub argv: Vec<String>,
}

impl NativeMcpServer {
    /// What it asks the IdP for: its authorization proxy sends `openid profile email`
    /// plus `NEXTCLOUD_OIDC_SCOPES`, and with background operations on (as started here)
    /// its provisioning flow adds `offline_access`. Sorted, without duplicates.
    pub fn requested_scopes(&self) -> Vec<String> {
        let mut all: Vec<String> = ["openid", "profile", "email", "offline_access"]
            .into_iter()
            .chain(self.oidc_scopes.split_whitespace())
            .map(str::to_owned)
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Why the server is not running, with its process (stopped) when one was started, so
/// its log stays part of the run.
pub struct StartFailure {
    pub message: String,
    pub process: Option<ManagedProcess>,
}

/// Installs the release if needed (phase `provision.mcp-server-venv`), starts it and waits
/// for `/health/live` (phase `boot.mcp-server` for a stack's own server,
/// `boot.mcp-instances` for the further instances checks start, so the report tells the
/// deployment's cost from the harness's).
pub async fn start(
    run: &RunContext,
    opts: &McpServerOptions,
    wiring: &McpServerWiring,
    progress: &Progress,
) -> Result<NativeMcpServer, StartFailure> {
    let fail = |e: anyhow::Error| StartFailure {
        message: format!("{e:#}"),
        process: None,
    };
    let profile = profile_for(&opts.version).map_err(fail)?;
    let log = run.path(format!("{}.log", wiring.instance));
    let (prepared, mut process, oidc_scopes) = launch(run, opts, profile, wiring, &log, progress)
        .await
        .map_err(fail)?;
    let argv = process.argv().to_vec();
    let booting = Instant::now();
    let http = Http::new(Duration::from_secs(5));
    let live = format!("{}/health/live", prepared.base_url);
    let ready = wait_ready(
        &format!("{PACKAGE} {}", opts.version),
        opts.boot_timeout,
        Some(&mut process),
        vec![Condition::http_ok(&http, "/health/live", live)],
        progress,
    )
    .await;
    let phase = if wiring.instance.ends_with("mcp-server") {
        "boot.mcp-server"
    } else {
        "boot.mcp-instances"
    };
    progress.phase_done(phase, booting.elapsed());
    if let Err(e) = ready {
        process.stop(Duration::from_secs(5)).await;
        return Err(StartFailure {
            message: e.to_string(),
            process: Some(process),
        });
    }
    let oidc_scopes = match oidc_scopes {
        Some(s) => s,
        None => containers::mcp_server::default_oidc_scopes(&process, profile)
            .await
            .unwrap_or_else(|| FALLBACK_SCOPES.to_owned()),
    };
    Ok(NativeMcpServer {
        process,
        version: opts.version.clone(),
        profile,
        base_url: prepared.base_url,
        fernet_key: prepared.fernet_key,
        db_path: prepared.db_path,
        tmp_dir: prepared.tmp_dir,
        home: run.path(&wiring.instance),
        oidc_scopes,
        argv,
    })
}

/// What a deployment asks for when the release's own default cannot be read.
const FALLBACK_SCOPES: &str = "openid profile email";

/// The process (a child from the venv, or a container of the image) and what it was
/// given; the scopes it asks for, when known before it starts (read from the venv).
async fn launch(
    run: &RunContext,
    opts: &McpServerOptions,
    profile: &'static LaunchProfile,
    wiring: &McpServerWiring,
    log: &Path,
    progress: &Progress,
) -> anyhow::Result<(Prepared, ManagedProcess, Option<String>)> {
    if let Some(image) = &opts.image {
        // The image's own default applies; it is read from the image once it runs.
        let (command, prepared) = prepare(run, Path::new(PACKAGE), profile, wiring, None)?;
        let process =
            containers::mcp_server::launch(run, image, &wiring.instance, &command, log).await?;
        return Ok((prepared, process, None));
    }
    let venv = ensure_venv(run, opts, profile, progress).await?;
    let oidc_scopes =
        default_oidc_scopes(&venv, profile).unwrap_or_else(|| FALLBACK_SCOPES.to_owned());
    let program = venv.join("bin").join(PACKAGE);
    let (command, prepared) = prepare(run, &program, profile, wiring, Some(&oidc_scopes))?;
    let process = ManagedProcess::spawn(&wiring.instance, &run.id, command, log)?;
    Ok((prepared, process, Some(oidc_scopes)))
}

struct Prepared {
    base_url: String,
    fernet_key: Secret,
    db_path: PathBuf,
    tmp_dir: PathBuf,
}

/// The command with the run's own port, directories, key, and the profile's variables.
/// The environment is cleared first: the release reads any variable its settings name
/// (`LOG_LEVEL=debug` in the harness's environment would stop it).
fn prepare(
    run: &RunContext,
    program: &Path,
    profile: &LaunchProfile,
    wiring: &McpServerWiring,
    oidc_scopes: Option<&str>,
) -> anyhow::Result<(Command, Prepared)> {
    let port = match wiring.port {
        Some(p) => p,
        None => crate::stack::ports::free_port()?,
    };
    let base_url = format!("http://127.0.0.1:{port}");
    let dir = &wiring.instance;
    let cwd = run.subdir(&format!("{dir}/cwd"))?;
    let data = run.subdir(&format!("{dir}/data"))?;
    let tmp = run.subdir(&format!("{dir}/tmp"))?;
    let db_path = data.join("tokens.db");
    let fernet_key = wiring
        .fernet_key
        .clone()
        .unwrap_or_else(crate::storage::cipher::new_key);
    let mut cmd = Command::new(program);
    cmd.args(profile.args(port)).current_dir(&cwd).env_clear();
    for var in [
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    let mut env: Vec<(&str, String)> = vec![
        ("TMPDIR", tmp.display().to_string()),
        ("NEXTCLOUD_HOST", wiring.nextcloud_host.clone()),
        ("NEXTCLOUD_MCP_SERVER_URL", base_url.clone()),
        (profile.client_id_var, wiring.client_id.clone()),
        (
            profile.client_secret_var,
            wiring.client_secret.expose().to_owned(),
        ),
        ("TOKEN_ENCRYPTION_KEY", fernet_key.expose().to_owned()),
        ("TOKEN_STORAGE_DB", db_path.display().to_string()),
        // Otherwise it binds 0.0.0.0:9090, shared by every run on the machine.
        ("METRICS_ENABLED", "false".into()),
        ("OIDC_DISCOVERY_MAX_ATTEMPTS", "2".into()),
        ("ENABLE_BACKGROUND_OPERATIONS", "true".into()),
        // The stand-in advertises no apps; gating would hide their tools.
        ("MCP_DISABLE_CAPABILITY_GATING", "true".into()),
        (
            "ALLOWED_MCP_CLIENTS",
            profile.allowed_mcp_clients(&wiring.allowed_client_id, &wiring.allowed_redirect_uri),
        ),
    ];
    if let Some(scopes) = oidc_scopes {
        env.push(("NEXTCLOUD_OIDC_SCOPES", scopes.to_owned()));
    }
    if let Some(var) = profile.discovery_var {
        env.push((var, wiring.discovery_url.clone()));
    }
    if let OAuthMode::Explicit(mode) = profile.mode {
        env.push((profile.mode_var, mode.to_owned()));
    }
    cmd.envs(env);
    cmd.envs(wiring.extra_env.iter().map(|(k, v)| (k, v)));
    for var in &wiring.unset_env {
        cmd.env_remove(var);
    }
    Ok((
        cmd,
        Prepared {
            base_url,
            fernet_key,
            db_path,
            tmp_dir: tmp,
        },
    ))
}

/// Where installing a release logs, for this run.
pub fn install_log(run: &RunContext) -> PathBuf {
    run.path("mcp-server-install.log")
}

/// The venv of `opts.version` ready, with its profile's requirements: what a start needs
/// first, done early (while Keycloak boots) when the stack knows it will start the server.
pub async fn prepare_venv(
    run: &RunContext,
    opts: &McpServerOptions,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    let profile = profile_for(&opts.version)?;
    ensure_venv(run, opts, profile, progress).await
}

/// The venv of `opts.version`, created once under a lock. Its marker holds the
/// requirements pip installed, so a profile that adds one redoes the venv.
pub async fn ensure_venv(
    run: &RunContext,
    opts: &McpServerOptions,
    profile: &LaunchProfile,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    let mut requirements = vec![format!("{PACKAGE}=={}", opts.version)];
    requirements.extend(profile.extra_requirements.iter().map(|r| (*r).to_owned()));
    let venv = Venv {
        name: format!("{PACKAGE}-{}", opts.version),
        requirements,
        python: &opts.python,
        install_timeout: opts.install_timeout,
    };
    venv.ensure(run, progress).await
}

/// A venv in the cache (`<cache>/venv-<name>`) with pinned requirements.
pub struct Venv<'a> {
    pub name: String,
    pub requirements: Vec<String>,
    /// The interpreter that creates it.
    pub python: &'a str,
    pub install_timeout: Duration,
}

impl Venv<'_> {
    /// The venv, created once under a lock; marked complete (with the requirements pip
    /// installed) only when pip succeeded, so other requirements redo it.
    pub async fn ensure(&self, run: &RunContext, progress: &Progress) -> anyhow::Result<PathBuf> {
        let root = cache_root();
        let venv = root.join(format!("venv-{}", self.name));
        let marker = venv.join(".harness-complete");
        let wanted = self.requirements.join(" ");
        let complete = || std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted);
        if complete() {
            return Ok(venv);
        }
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let _lock = lock(&root.join(format!("venv-{}.lock", self.name)))?;
        if complete() {
            return Ok(venv);
        }
        check_python(self.python).await?;
        if venv.exists() {
            // An interrupted or outdated install: a venv cannot be moved into place, so it
            // is redone.
            std::fs::remove_dir_all(&venv)
                .with_context(|| format!("removing the incomplete venv {}", venv.display()))?;
        }
        progress.println(&format!(
            "installing {wanted} into {} (once per release)",
            venv.display()
        ));
        let started = Instant::now();
        let deadline = started + self.install_timeout;
        let log = install_log(run);
        let mut venv_cmd = Command::new(self.python);
        venv_cmd.args(["-m", "venv"]).arg(&venv);
        run_to_end(run, venv_cmd, &log, deadline, "creating the venv", progress).await?;
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "--no-input", "--disable-pip-version-check"])
            .args(&self.requirements);
        let what = format!("pip install {wanted}");
        if let Err(e) = run_to_end(run, pip, &log, deadline, &what, progress).await {
            // A release PyPI lacks (or that does not install) leaves no half venv in the
            // cache; the next attempt redoes it anyway.
            let _ = std::fs::remove_dir_all(&venv);
            return Err(e);
        }
        std::fs::write(&marker, &wanted)?;
        progress.phase_done("provision.mcp-server-venv", started.elapsed());
        Ok(venv)
    }
}

/// Fails with what to do when the interpreter is missing or does not run.
async fn check_python(python: &str) -> anyhow::Result<()> {
    let out = Command::new(python).arg("--version").output().await;
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => bail!(
            "{python} does not run ({}): {}; {PACKAGE} needs Python 3.11 to install \
             (`apt-get install python3.11 python3.11-venv`)",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{python} is not installed, so {PACKAGE} cannot be installed into a venv. Install it \
             (`apt-get install python3.11 python3.11-venv`, or pyenv) and run again"
        ),
        Err(e) => Err(e).with_context(|| format!("running {python} --version")),
    }
}

/// Runs `cmd` as a marked process logging to `log`; fails with the log tail when it
/// fails or outlives `deadline`.
async fn run_to_end(
    run: &RunContext,
    cmd: Command,
    log: &Path,
    deadline: Instant,
    what: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut process = ManagedProcess::spawn("mcp-server-install", &run.id, cmd, log)?;
    let status = loop {
        if let Some(status) = process.exit_status() {
            break status;
        }
        if Instant::now() >= deadline {
            process.stop(Duration::from_secs(2)).await;
            bail!(
                "{what} did not finish in time (install timeout); last lines of {}:\n{}",
                log.display(),
                process.log_tail(20)
            );
        }
        progress.tick(&format!("{what} ({}s)", started.elapsed().as_secs()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !status.success() {
        bail!(
            "{what} failed ({status}); last lines of {}:\n{}",
            log.display(),
            process.log_tail(20)
        );
    }
    Ok(())
}

/// The default of the release's `--oauth-scopes` option, read from its source: what a
/// deployment that does not set `NEXTCLOUD_OIDC_SCOPES` asks the IdP for.
pub fn default_oidc_scopes(venv: &Path, profile: &LaunchProfile) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    let source = lib
        .flatten()
        .map(|e| {
            e.path()
                .join("site-packages/nextcloud_mcp_server")
                .join(profile.cli_source)
        })
        .find(|p| p.exists())?;
    scopes_default_in(&std::fs::read_to_string(source).ok()?)
}

pub(crate) fn scopes_default_in(source: &str) -> Option<String> {
    let re = regex::Regex::new(r#"envvar="NEXTCLOUD_OIDC_SCOPES",\s*default="([^"]*)""#)
        .expect("static regex");
    re.captures(source).map(|c| c[1].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scopes_default_is_read_from_the_click_option() {
        let src = r#"@click.option(
    "--oauth-scopes",
    envvar="NEXTCLOUD_OIDC_SCOPES",
    default="openid profile email notes.read sharing.read",
    show_default=True,
)"#;
        assert_eq!(
            scopes_default_in(src).as_deref(),
            Some("openid profile email notes.read sharing.read")
        );
        assert_eq!(scopes_default_in("no option here"), None);
    }
}
