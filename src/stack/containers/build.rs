//! `images build`: the local images the containers backend can run instead of the official
//! ones, built where no registry is reachable.
//!
//! The base `mcp-authz-harness/debian:bookworm` is a `debootstrap` root filesystem
//! imported into the engine (images/debian/README.md); Keycloak, the MCP server and the
//! Nextcloud stand-in are `docker build`s FROM it of the recipes in `images/`, with
//! `--network host` (the engine runs without a bridge). Each image is cached by its tag:
//! one the engine already holds is reused unless `--rebuild`, and an image whose base was
//! imported anew in the same run is rebuilt on it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::engine::Engine;
use crate::progress::Progress;

pub use super::images::NAMESPACE;

/// How long each step may take before it is stopped.
const DEBOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const TAR_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const IMPORT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How many lines of a failed step's log are shown.
const TAIL_LINES: usize = 25;

/// The Debian suite of the base.
const SUITE: &str = "bookworm";
const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
const DEFAULT_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to build.
#[derive(Clone, Debug)]
pub struct Request {
    pub keycloak_versions: Vec<String>,
    pub mcp_server_versions: Vec<String>,
    /// Build even what the engine already holds.
    pub rebuild: bool,
    /// The `images/` directory holding the recipes.
    pub recipes: PathBuf,
    /// The repository namespace (`mcp-authz-harness`; another one for trial builds).
    pub namespace: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Base,
    Keycloak,
    McpServer,
    StandIn,
}

/// One image to have: what it is and its `repository:tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub version: String,
    pub reference: String,
}

impl Target {
    /// The recipe directory under `images/` (none for the base: it is imported).
    fn recipe(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Base => None,
            Kind::Keycloak => Some("keycloak"),
            Kind::McpServer => Some("nextcloud-mcp-server"),
            Kind::StandIn => Some("nextcloud-stand-in"),
        }
    }
}

/// The base's reference in `namespace`.
pub fn base_reference(namespace: &str) -> String {
    format!("{namespace}/debian:{SUITE}")
}

/// The images to have, base first; the stand-in only when its recipe exists.
pub fn targets(req: &Request, stand_in_recipe: bool) -> Vec<Target> {
    let ns = &req.namespace;
    let mut out = vec![Target {
        kind: Kind::Base,
        version: SUITE.to_owned(),
        reference: base_reference(ns),
    }];
    let mut push = |kind, name: &str, version: &str| {
        let reference = format!("{ns}/{name}:{version}");
        if !out.iter().any(|t| t.reference == reference) {
            out.push(Target {
                kind,
                version: version.to_owned(),
                reference,
            });
        }
    };
    for v in &req.keycloak_versions {
        push(Kind::Keycloak, "keycloak", v);
    }
    for v in &req.mcp_server_versions {
        push(Kind::McpServer, "nextcloud-mcp-server", v);
    }
    if stand_in_recipe {
        push(
            Kind::StandIn,
            "nextcloud-stand-in",
            env!("CARGO_PKG_VERSION"),
        );
    }
    out
}

/// Reuse or build.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// The engine holds it (its ID).
    Reuse(String),
    Build,
}

/// An image the engine holds is reused, unless `--rebuild` or its base was just imported.
pub fn decide(present: Option<String>, rebuild: bool, base_built: bool) -> Action {
    match present {
        Some(id) if !rebuild && !base_built => Action::Reuse(id),
        _ => Action::Build,
    }
}

pub use super::engine::short_id;

/// The Debian mirror (`bookworm`) and security mirror (`bookworm-security`) the host's
/// apt uses, from the texts of its sources files (one-line and deb822 formats); Debian's
/// own for whichever is not found.
pub fn apt_mirrors(sources: &[String]) -> (String, String) {
    let mut mirror = None;
    let mut security = None;
    let mut note = |uri: &str, suites: &[&str]| {
        let uri = uri.trim_end_matches('/').to_owned();
        if suites.contains(&SUITE) && mirror.is_none() {
            mirror = Some(uri.clone());
        }
        if suites.contains(&format!("{SUITE}-security").as_str()) && security.is_none() {
            security = Some(uri);
        }
    };
    for text in sources {
        if text.lines().any(|l| l.trim_start().starts_with("URIs:")) {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .filter(|l| !l.trim_start().starts_with('#'))
                        .find_map(|l| l.strip_prefix(name).map(str::trim))
                };
                let is_deb =
                    field("Types:").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
                let enabled = field("Enabled:").is_none_or(|e| e != "no");
                if let (true, true, Some(uris), Some(suites)) =
                    (is_deb, enabled, field("URIs:"), field("Suites:"))
                {
                    let suites: Vec<&str> = suites.split_whitespace().collect();
                    for uri in uris.split_whitespace() {
                        note(uri, &suites);
                    }
                }
            }
        } else {
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default();
                let mut words = line.split_whitespace();
                if words.next() != Some("deb") {
                    continue;
                }
                let mut rest: Vec<&str> = words.collect();
                // `[arch=amd64 signed-by=...]` options, possibly spread over words.
                if rest.first().is_some_and(|w| w.starts_with('[')) {
                    let end = rest.iter().position(|w| w.ends_with(']')).unwrap_or(0);
                    rest.drain(..=end);
                }
                if let [uri, suite, ..] = rest[..] {
                    note(uri, &[suite]);
                }
            }
        }
    }
    (
        mirror.unwrap_or_else(|| DEFAULT_MIRROR.to_owned()),
        security.unwrap_or_else(|| DEFAULT_SECURITY_MIRROR.to_owned()),
    )
}

/// The texts of /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}.
fn host_apt_sources() -> Vec<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect()
}

/// debootstrap's arguments: a minimal bookworm into `rootfs` from `mirror`.
pub fn debootstrap_args(rootfs: &Path, mirror: &str) -> Vec<String> {
    vec![
        "--variant=minbase".to_owned(),
        "--components=main".to_owned(),
        SUITE.to_owned(),
        rootfs.display().to_string(),
        mirror.to_owned(),
    ]
}

/// The base's /etc/apt/sources.list: the suite, its updates and its security updates.
pub fn base_sources_list(mirror: &str, security: &str) -> String {
    format!(
        "deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n"
    )
}

/// Files the base gets in /etc/apt/apt.conf.d/: Debian's official image's `docker-clean`
/// (no downloaded packages or package caches left in a layer), and no recommends,
/// suggests or translations, as the images' `apt-get install --no-install-recommends` want.
pub fn base_apt_config() -> [(&'static str, &'static str); 2] {
    [
        (
            "docker-clean",
            "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\n\
             APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\n\
             Dir::Cache::pkgcache \"\";\n\
             Dir::Cache::srcpkgcache \"\";\n",
        ),
        (
            "90mcp-authz-harness",
            "APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\nAcquire::Languages \"none\";\n",
        ),
    ]
}

/// `docker import`'s arguments: the root filesystem tarball as `reference`, with the
/// configuration Debian's own image has (PATH, `bash`) plus LANG and where it came from.
pub fn import_args(tarball: &Path, reference: &str, mirror: &str) -> Vec<String> {
    let mut args = vec!["import".to_owned()];
    for change in [
        format!("ENV {PATH_ENV}"),
        "ENV LANG=C.UTF-8".to_owned(),
        r#"CMD ["bash"]"#.to_owned(),
        format!(
            r#"LABEL org.mcp-authz-harness.base="debootstrap --variant=minbase {SUITE} {mirror}""#
        ),
    ] {
        args.push("--change".to_owned());
        args.push(change);
    }
    args.push(tarball.display().to_string());
    args.push(reference.to_owned());
    args
}

/// `docker build`'s arguments: the context's `Dockerfile`, host network (the engine has
/// no bridge), intermediate containers removed even on failure; with `no_cache` (for
/// `--rebuild`) no layer of an earlier build is reused, so `apt-get` and `pip` fetch
/// today's packages.
pub fn docker_build_args(
    reference: &str,
    context: &Path,
    build_args: &[(&str, String)],
    no_cache: bool,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "build",
        "--network",
        "host",
        "--force-rm",
        "--tag",
        reference,
    ]
    .map(str::to_owned)
    .into();
    if no_cache {
        args.push("--no-cache".to_owned());
    }
    for (name, value) in build_args {
        args.push("--build-arg".to_owned());
        args.push(format!("{name}={value}"));
    }
    args.push(context.display().to_string());
    args
}

/// The build arguments of a target's recipe.
pub fn build_args_of(target: &Target, namespace: &str) -> Vec<(&'static str, String)> {
    let mut args = vec![("BASE", base_reference(namespace))];
    match target.kind {
        Kind::Keycloak => args.push(("KEYCLOAK_VERSION", target.version.clone())),
        Kind::McpServer => args.push(("MCP_SERVER_VERSION", target.version.clone())),
        Kind::Base | Kind::StandIn => {}
    }
    args
}

/// The flags that make a run use the local images of `namespace`.
pub fn run_flags(namespace: &str) -> String {
    format!(
        "--keycloak-image {namespace}/keycloak --mcp-server-image {namespace}/nextcloud-mcp-server"
    )
}

/// The `docker` CLI's version line, or what to install.
pub fn docker_cli() -> anyhow::Result<String> {
    let missing = "the `docker` CLI is not installed (or not on PATH); install it: apt-get install -y docker.io";
    // `--version` is the client's alone: it never waits for an engine.
    let output = std::process::Command::new("docker")
        .arg("--version")
        .output();
    match output {
        Ok(out) => {
            let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            Ok(if v.is_empty() {
                "unknown version".to_owned()
            } else {
                v
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{missing}"),
        Err(e) => bail!("running `docker`: {e}"),
    }
}

/// Where debootstrap is (it lives in /usr/sbin, often off a user's PATH).
pub fn debootstrap_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("debootstrap"))
        .find(|p| p.is_file())
}

/// Builds what `req` asks for; returns the reference and ID of every image, in order.
pub async fn build(req: &Request, progress: &Progress) -> anyhow::Result<Vec<(String, String)>> {
    docker_cli()?;
    let engine = Engine::connect().await.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}. To start one here (as root): scripts/dockerd.sh start DIR, then the export it prints"
        )
    })?;
    let dir = crate::stack::native::distribution::cache_root().join("images");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = crate::stack::native::distribution::lock(&dir.join("build.lock"))?;
    sweep_stale_work(&dir);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;

    let stand_in = req.recipes.join("nextcloud-stand-in/Dockerfile");
    let stand_in_present = stand_in.is_file();
    if !stand_in_present {
        println!(
            "skipped {}/nextcloud-stand-in: no recipe at {}",
            req.namespace,
            stand_in.display()
        );
    }
    let mut built = Vec::new();
    let mut base_built = false;
    for target in targets(req, stand_in_present) {
        let present = engine.image_id(&target.reference).await?;
        let id = match decide(present, req.rebuild, base_built) {
            Action::Reuse(id) => {
                println!("reused {} ({})", target.reference, short_id(&id));
                id
            }
            Action::Build => {
                let started = Instant::now();
                let log = logs.join(format!("{}.log", target.reference.replace(['/', ':'], "_")));
                std::fs::write(&log, "").with_context(|| format!("creating {}", log.display()))?;
                match target.kind {
                    Kind::Base => {
                        build_base(&engine, &target, &dir, &log, progress).await?;
                        base_built = true;
                    }
                    _ => build_image(&engine, req, &target, &dir, &log, progress).await?,
                }
                let id = engine.image_id(&target.reference).await?.with_context(|| {
                    format!(
                        "{} was built but the engine does not hold it; see {}",
                        target.reference,
                        log.display()
                    )
                })?;
                progress.phase_done(&format!("image {}", target.reference), started.elapsed());
                println!(
                    "built {} ({}) in {:.0}s, log {}",
                    target.reference,
                    short_id(&id),
                    started.elapsed().as_secs_f64(),
                    log.display()
                );
                id
            }
        };
        built.push((target.reference, id));
    }
    Ok(built)
}

/// debootstrap, then `docker import`.
async fn build_base(
    engine: &Engine,
    target: &Target,
    dir: &Path,
    log: &Path,
    progress: &Progress,
) -> anyhow::Result<()> {
    let debootstrap = debootstrap_path().with_context(|| {
        format!(
            "{} is missing and is made with debootstrap, which is not installed: apt-get install -y debootstrap",
            target.reference
        )
    })?;
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "{} is missing and debootstrap, which makes it, needs root: run `sudo mcp-authz-harness images build` (or as root)",
            target.reference
        );
    }
    let (mirror, security) = apt_mirrors(&host_apt_sources());
    let work = tempfile::Builder::new()
        .prefix("base-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a work directory in {}", dir.display()))?;
    let rootfs = work.path().join("rootfs");
    let tarball = work.path().join("rootfs.tar");
    let result = async {
        let mut cmd = tokio::process::Command::new(&debootstrap);
        cmd.args(debootstrap_args(&rootfs, &mirror));
        run_logged(
            cmd,
            &format!("debootstrap {SUITE} from {mirror}"),
            log,
            DEBOOTSTRAP_TIMEOUT,
            progress,
        )
        .await?;
        let etc_apt = rootfs.join("etc/apt");
        std::fs::write(
            etc_apt.join("sources.list"),
            base_sources_list(&mirror, &security),
        )
        .context("writing the base's sources.list")?;
        for (name, text) in base_apt_config() {
            std::fs::write(etc_apt.join("apt.conf.d").join(name), text)
                .with_context(|| format!("writing the base's apt.conf.d/{name}"))?;
        }
        for cache in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            empty_dir(&rootfs.join(cache))?;
        }
        for bin in ["pkgcache.bin", "srcpkgcache.bin"] {
            let _ = std::fs::remove_file(rootfs.join("var/cache/apt").join(bin));
        }
        let mut tar = tokio::process::Command::new("tar");
        tar.arg("--numeric-owner")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".");
        run_logged(
            tar,
            "packing the root filesystem",
            log,
            TAR_TIMEOUT,
            progress,
        )
        .await?;
        let mut import = docker(engine);
        import.args(import_args(&tarball, &target.reference, &mirror));
        run_logged(
            import,
            &format!("docker import {}", target.reference),
            log,
            IMPORT_TIMEOUT,
            progress,
        )
        .await
    }
    .await;
    unmount_under(work.path());
    result
}

/// A `docker build` of the target's recipe in a fresh context.
async fn build_image(
    engine: &Engine,
    req: &Request,
    target: &Target,
    dir: &Path,
    log: &Path,
    progress: &Progress,
) -> anyhow::Result<()> {
    let recipe = req.recipes.join(target.recipe().unwrap_or_default());
    let dockerfile = recipe.join("Dockerfile");
    let context = tempfile::Builder::new()
        .prefix("context-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a build context in {}", dir.display()))?;
    std::fs::copy(&dockerfile, context.path().join("Dockerfile"))
        .with_context(|| format!("reading the recipe {}", dockerfile.display()))?;
    match target.kind {
        Kind::Keycloak => {
            let dist = crate::stack::native::distribution::resolve(&target.version, None, progress)
                .await?;
            copy_group_writable(&dist.home, &context.path().join("keycloak")).with_context(
                || format!("copying {} into the build context", dist.home.display()),
            )?;
        }
        Kind::McpServer => {
            let certs = context.path().join("ca-certificates");
            std::fs::create_dir(&certs)?;
            copy_host_ca_certificates(Path::new("/usr/local/share/ca-certificates"), &certs)?;
        }
        Kind::StandIn => {
            let exe = std::env::current_exe().context("finding this program's binary")?;
            let to = context.path().join("mcp-authz-harness");
            std::fs::copy(&exe, &to)
                .with_context(|| format!("copying {} into the build context", exe.display()))?;
        }
        Kind::Base => unreachable!("the base is imported, not built"),
    }
    let mut cmd = docker(engine);
    cmd.args(docker_build_args(
        &target.reference,
        context.path(),
        &build_args_of(target, &req.namespace),
        req.rebuild,
    ));
    run_logged(
        cmd,
        &format!("docker build {}", target.reference),
        log,
        BUILD_TIMEOUT,
        progress,
    )
    .await
}

/// Builds `reference` from `dockerfile` alone (an empty context), on `engine`, logging to
/// `log`: what the containers backend does to prepare Keycloak's image per build options.
pub async fn build_dockerfile(
    engine: &Engine,
    reference: &str,
    dockerfile: &str,
    log: &Path,
    progress: &Progress,
) -> anyhow::Result<()> {
    docker_cli()?;
    let context = tempfile::tempdir().context("creating a build context")?;
    std::fs::write(context.path().join("Dockerfile"), dockerfile)?;
    let mut cmd = docker(engine);
    cmd.args(docker_build_args(reference, context.path(), &[], false));
    run_logged(
        cmd,
        &format!("docker build {reference}"),
        log,
        BUILD_TIMEOUT,
        progress,
    )
    .await
}

/// The `docker` CLI aimed at `engine`, with the classic builder (the one a 20.10 engine
/// without buildx has; it honours `--network host` with no entitlement).
fn docker(engine: &Engine) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("docker");
    cmd.env("DOCKER_HOST", format!("unix://{}", engine.socket.display()))
        .env("DOCKER_BUILDKIT", "0");
    cmd
}

/// Runs `cmd` in its own process group, output appended to `log`, ticking `progress`;
/// stops the whole group after `timeout`. Errors name the step and the log and show its
/// last lines.
async fn run_logged(
    mut cmd: tokio::process::Command,
    what: &str,
    log: &Path,
    timeout: Duration,
    progress: &Progress,
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .with_context(|| format!("opening the log {}", log.display()))?;
    let shown = format!("{:?}", cmd.as_std());
    writeln!(file, "\n$ {shown}")?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("{what}: cannot start {shown}"))?;
    let started = Instant::now();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.with_context(|| format!("{what}: waiting for it"))?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if started.elapsed() > timeout {
                    if let Some(pid) = child.id() {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    let _ = child.wait().await;
                    bail!(
                        "{what}: not done within {}s, stopped; its log is {}{}",
                        timeout.as_secs(),
                        log.display(),
                        tail_of(log)
                    );
                }
                progress.tick(&format!("{what} ({}s)", started.elapsed().as_secs()));
            }
        }
    };
    if !status.success() {
        bail!(
            "{what} failed ({status}); its log is {}{}",
            log.display(),
            tail_of(log)
        );
    }
    Ok(())
}

/// `":\n<last lines>"` of a log, or nothing when it is empty or unreadable.
fn tail_of(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(TAIL_LINES);
    format!(", last lines:\n{}", lines[start..].join("\n"))
}

fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path
            .file_name()
            .is_some_and(|n| n == "partial" || n == "lock")
        {
            continue;
        }
        let removed = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Whether `name` is one of the work directories a build makes in the images directory.
pub fn is_work_dir(name: &str) -> bool {
    name.starts_with("base-") || name.starts_with("context-")
}

/// Removes the work directories a killed `images build` left behind (a build stopped by
/// a signal never runs its cleanup); no other build uses them while the lock is held.
fn sweep_stale_work(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_work_dir(&entry.file_name().to_string_lossy()) && path.is_dir() {
            unmount_under(&path);
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(
                    "could not remove the stale work directory {}: {e}",
                    path.display()
                );
            }
        }
    }
}

/// Detaches whatever a killed debootstrap left mounted under `dir` (its chroot's /proc,
/// /sys), deepest first, so removing `dir` never reaches into them.
fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = std::process::Command::new("umount")
            .args(["-l", point])
            .status();
    }
}

/// Copies a tree, making it group-writable as the official Keycloak image does
/// (`chmod -R g+rwX`): so the image needs no recursive chmod, which would store the whole
/// distribution a second time in a layer of its own.
fn copy_group_writable(from: &Path, to: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if meta.is_dir() {
        std::fs::create_dir(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_group_writable(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::set_permissions(
            to,
            std::fs::Permissions::from_mode(group_writable(meta.permissions().mode(), true)),
        )?;
    } else {
        std::fs::copy(from, to)?;
        std::fs::set_permissions(
            to,
            std::fs::Permissions::from_mode(group_writable(meta.permissions().mode(), false)),
        )?;
    }
    Ok(())
}

/// `chmod g+rwX`: read and write for the group, and search/execute where the owner has it
/// or on a directory.
pub fn group_writable(mode: u32, dir: bool) -> u32 {
    let mode = mode & 0o7777;
    let x = if dir || mode & 0o111 != 0 { 0o010 } else { 0 };
    mode | 0o060 | x
}

/// The host's extra CA certificates (`*.crt`), so pip in the build trusts the same TLS
/// interception the host does.
fn copy_host_ca_certificates(from: &Path, to: &Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "crt") && path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name()))
                .with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
