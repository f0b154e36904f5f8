//! Keycloak as a container: the image prepared once per build-option set with
//! `kc.sh build` (Keycloak's documented pattern for `start --optimized`), then started on
//! the host network with the run's ports and a bootstrap admin of its own.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::container::{ContainerSpec, ManagedContainer};
use super::engine::Engine;
use super::images;
use crate::http::Http;
use crate::progress::Progress;
use crate::secret::{Secret, SecretKind};
use crate::stack::native::distribution;
use crate::stack::native::keycloak::{ADMIN_USER, BuildOptions, readiness};
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;
use crate::stack::wait::wait_ready;
use crate::stack::{KEYCLOAK_PROCESS, StackConfig};

/// A Keycloak container this run started.
pub struct ContainerKeycloak {
    pub process: ManagedProcess,
    pub base_url: String,
    pub admin_password: Secret,
    /// The image the user chose, its ID, and the prepared image the run started.
    pub image: String,
    pub image_id: String,
    pub built: String,
    /// `java -version`'s first line inside the container.
    pub java: String,
    pub argv: Vec<String>,
    pub boot_time: Duration,
}

/// Prepares the image for the build options, starts it and waits as the native backend
/// does: the master realm's discovery answers and the bootstrap admin gets a token.
pub async fn start(
    engine: &Engine,
    run: &RunContext,
    cfg: &StackConfig,
    progress: &Progress,
) -> anyhow::Result<ContainerKeycloak> {
    let opts = &cfg.keycloak;
    let provisioning = Instant::now();
    let official = (images::KEYCLOAK_OFFICIAL, images::KEYCLOAK_LOCAL);
    let (image, image_id) = images::resolve(
        engine,
        &cfg.containers.keycloak_image,
        &opts.version,
        official,
        "Keycloak",
        progress,
    )
    .await?;
    let built = prepare(engine, run, &image, &image_id, &opts.build, progress).await?;
    progress.phase_done("provision.keycloak", provisioning.elapsed());
    let http_port = crate::stack::ports::free_port()?;
    let mgmt_port = crate::stack::ports::free_port()?;
    let admin_password = Secret::generate(SecretKind::Password, 18);
    let spec = ContainerSpec {
        image: built.clone(),
        args: vec![
            "start".into(),
            "--optimized".into(),
            "--http-enabled=true".into(),
            "--http-host=127.0.0.1".into(),
            format!("--http-port={http_port}"),
            format!("--http-management-port={mgmt_port}"),
            "--hostname-strict=false".into(),
            "--cache=local".into(),
        ],
        env: vec![
            ("KC_BOOTSTRAP_ADMIN_USERNAME".into(), ADMIN_USER.into()),
            (
                "KC_BOOTSTRAP_ADMIN_PASSWORD".into(),
                admin_password.expose().to_owned(),
            ),
            // In a container kc.sh sizes the heap at 50-70% of the host's RAM; the native
            // backend's default instead, so both backends run the same Keycloak.
            ("JAVA_OPTS_KC_HEAP".into(), "-Xms64m -Xmx512m".into()),
            (
                "JAVA_OPTS_APPEND".into(),
                crate::stack::KEYCLOAK_JVM_OPTS.into(),
            ),
        ],
        ..Default::default()
    };
    let log = run.path("keycloak.log");
    let started = Instant::now();
    let container = ManagedContainer::start(engine, &spec, &run.id, &log).await?;
    let java = java_version(&container).await;
    let mut process = ManagedProcess::container(KEYCLOAK_PROCESS, container, &log, spec.argv());
    let base_url = format!("http://127.0.0.1:{http_port}");
    let http = Http::new(Duration::from_secs(5));
    let ready = wait_ready(
        &format!("Keycloak {} (container of {image})", opts.version),
        opts.boot_timeout,
        Some(&mut process),
        readiness(&http, &base_url, &admin_password),
        progress,
    )
    .await;
    if let Err(e) = ready {
        process.stop(Duration::from_secs(5)).await;
        return Err(e.into());
    }
    progress.phase_done("boot.keycloak", started.elapsed());
    let mut argv = vec!["kc.sh".to_owned(), "build".to_owned()];
    argv.extend(opts.build.args());
    argv.push("&&".to_owned());
    argv.extend(spec.argv());
    Ok(ContainerKeycloak {
        process,
        base_url,
        admin_password,
        image,
        image_id,
        built,
        java,
        argv,
        boot_time: started.elapsed(),
    })
}

/// `java -version`'s first line in the container (the official images run another JVM
/// than a local Debian-based one, and the report says which).
async fn java_version(container: &ManagedContainer) -> String {
    match container
        .exec_stdout(&["sh", "-c", "java -version 2>&1"])
        .await
    {
        Ok(out) => out.lines().next().unwrap_or("unknown").trim().to_owned(),
        Err(e) => format!("unknown ({e:#})"),
    }
}

/// The image `image` prepared with `kc.sh build` for `build`: reused when the engine has
/// it (its tag names the base image's ID and the options), else built once, under a lock.
async fn prepare(
    engine: &Engine,
    run: &RunContext,
    image: &str,
    image_id: &str,
    build: &BuildOptions,
    progress: &Progress,
) -> anyhow::Result<String> {
    let version = image.rsplit(':').next().unwrap_or("unknown");
    let key = crate::secret::fingerprint(&format!("{image_id} {}", build.args().join(" ")));
    let tag = format!("{}:{version}-{key}", images::KEYCLOAK_BUILT);
    if engine.image_id(&tag).await?.is_some() {
        return Ok(tag);
    }
    let root = distribution::cache_root();
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let _lock = distribution::lock(&root.join(format!("image-{key}.lock")))?;
    if engine.image_id(&tag).await?.is_some() {
        return Ok(tag);
    }
    progress.println(&format!(
        "preparing {tag} from {image} with `kc.sh build {}` (once per image and option set)",
        build.args().join(" ")
    ));
    let dockerfile = format!(
        "FROM {image}\nRUN /opt/keycloak/bin/kc.sh build {args}\n\
         LABEL org.mcp-authz-harness.from-id=\"{image_id}\" \
         org.mcp-authz-harness.keycloak.build-options=\"{args}\"\n",
        args = build.args().join(" ")
    );
    let log = run.path("keycloak-image-build.log");
    super::build::build_dockerfile(engine, &tag, &dockerfile, &log, progress).await?;
    Ok(tag)
}
