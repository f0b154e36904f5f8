//! Keycloak from its distribution, on a local JDK.
//!
//! `start-dev` redoes Quarkus augmentation at every boot and writes it into the
//! distribution's `lib/quarkus`. Instead, each set of build options is built once with
//! `kc.sh build` into the cache (under a lock), and each run gets a home of its own: real
//! copies of `bin`, `conf` and the prepared `lib/quarkus`, symlinks to the read-only jars
//! and themes, and a fresh `data`. It then boots with `kc.sh start --optimized`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Command;

use super::distribution::{self, Distribution};
use super::jdk::{self, Jdk};
use crate::http::Http;
use crate::keycloak::features::has_cimd;
use crate::progress::Progress;
use crate::secret::{Secret, SecretKind};
use crate::stack::process::ManagedProcess;
use crate::stack::run::RunContext;
use crate::stack::wait::{Condition, wait_ready};

/// Build-time options: they select the prepared build.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildOptions {
    pub features: Vec<String>,
    pub features_disabled: Vec<String>,
}

impl BuildOptions {
    /// The session's build of Keycloak `version`: `cimd` (experimental, so off unless
    /// asked for) on the releases that have it, nothing else beyond the defaults. Not
    /// `resource-indicators` (RFC 8707, 26.6.0 on): it applies realm-wide and makes
    /// Keycloak refuse, with `invalid_target`, the `resource` the MCP server's own flows
    /// send (its URL, which no client stands for); MCP-33 boots a Keycloak of its own
    /// with it ([`Stack::config_with_features`](crate::stack::Stack::config_with_features)).
    pub fn session(version: &str) -> Self {
        Self {
            features: if has_cimd(version) {
                vec!["cimd".to_owned()]
            } else {
                Vec::new()
            },
            features_disabled: Vec::new(),
        }
    }

    /// `kc.sh build` arguments: an in-memory database (each run starts empty), health on.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--db=dev-mem".to_owned(),
            "--health-enabled=true".to_owned(),
        ];
        if !self.features.is_empty() {
            args.push(format!("--features={}", self.features.join(",")));
        }
        if !self.features_disabled.is_empty() {
            args.push(format!(
                "--features-disabled={}",
                self.features_disabled.join(",")
            ));
        }
        args
    }

    /// A short stable key naming the prepared build in the cache.
    fn key(&self) -> String {
        crate::secret::fingerprint(&self.args().join(" "))
    }
}

/// What to boot.
#[derive(Clone, Debug)]
pub struct KeycloakOptions {
    pub version: String,
    pub dist: Option<PathBuf>,
    pub build: BuildOptions,
    pub boot_timeout: Duration,
}

/// A Keycloak this run started.
pub struct NativeKeycloak {
    pub process: ManagedProcess,
    pub base_url: String,
    pub admin_user: String,
    pub admin_password: Secret,
    pub version: String,
    pub java: Jdk,
    /// `kc.sh build` then `kc.sh start` arguments, for the report header.
    pub argv: Vec<String>,
    pub boot_time: Duration,
}

pub(crate) const ADMIN_USER: &str = "harness-admin";

/// Resolves the distribution, prepares the build, boots, and waits until the master
/// realm's discovery answers and an admin token can be obtained.
pub async fn start(
    run: &RunContext,
    opts: &KeycloakOptions,
    progress: &Progress,
) -> anyhow::Result<NativeKeycloak> {
    let provisioning = Instant::now();
    let dist = distribution::resolve(&opts.version, opts.dist.as_deref(), progress).await?;
    let java = jdk::pick(&dist.version)?;
    let prepared = prepare_build(run, &dist, &java, &opts.build, progress).await?;
    let home = run_home(run, &dist, &prepared)?;
    progress.phase_done("provision.keycloak", provisioning.elapsed());
    let http_port = crate::stack::ports::free_port()?;
    let mgmt_port = crate::stack::ports::free_port()?;
    let start_args = vec![
        "start".to_owned(),
        "--optimized".to_owned(),
        "--http-enabled=true".to_owned(),
        "--http-host=127.0.0.1".to_owned(),
        format!("--http-port={http_port}"),
        format!("--http-management-port={mgmt_port}"),
        "--hostname-strict=false".to_owned(),
        // A local cache: clustering would bind fixed ports on every interface.
        "--cache=local".to_owned(),
    ];
    let admin_password = Secret::generate(SecretKind::Password, 18);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(home.join("bin/kc.sh"))
        .args(&start_args)
        .current_dir(&home)
        .env("JAVA_HOME", &java.home)
        .env("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN_USER)
        .env("KC_BOOTSTRAP_ADMIN_PASSWORD", admin_password.expose())
        .env("JAVA_OPTS_APPEND", java_opts_append(&run.subdir("tmp")?));
    let log = run.path("keycloak.log");
    let mut process = ManagedProcess::spawn(crate::stack::KEYCLOAK_PROCESS, &run.id, cmd, &log)?;
    let base_url = format!("http://127.0.0.1:{http_port}");
    let http = Http::new(Duration::from_secs(5));
    let started = Instant::now();
    let conditions = readiness(&http, &base_url, &admin_password);
    wait_ready(
        &format!("Keycloak {}", dist.version),
        opts.boot_timeout,
        Some(&mut process),
        conditions,
        progress,
    )
    .await?;
    progress.phase_done("boot.keycloak", started.elapsed());
    let mut argv = vec!["kc.sh".to_owned(), "build".to_owned()];
    argv.extend(opts.build.args());
    argv.push("&&".to_owned());
    argv.push("kc.sh".to_owned());
    argv.extend(start_args);
    Ok(NativeKeycloak {
        process,
        base_url,
        admin_user: ADMIN_USER.to_owned(),
        admin_password,
        version: dist.version,
        java,
        argv,
        boot_time: started.elapsed(),
    })
}

/// Ready means: discovery of the master realm answers 200, and the bootstrap admin can
/// get a token (`/health/ready` says UP before the admin exists).
pub(crate) fn readiness<'a>(
    http: &'a Http,
    base: &'a str,
    password: &'a Secret,
) -> Vec<Condition<'a>> {
    let discovery = format!("{base}/realms/master/.well-known/openid-configuration");
    vec![
        Condition::http_ok(http, "the master realm's discovery", discovery),
        Condition::new(
            "the bootstrap admin can obtain a token",
            move || async move {
                match crate::keycloak::admin::password_token(http, base, ADMIN_USER, password).await
                {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            },
        ),
    ]
}

/// Runs `kc.sh build` for `opts` once per distribution, into the cache, under a lock.
async fn prepare_build(
    run: &RunContext,
    dist: &Distribution,
    java: &Jdk,
    opts: &BuildOptions,
    progress: &Progress,
) -> anyhow::Result<PathBuf> {
    let builds = dist
        .home
        .parent()
        .context("the distribution has no parent dir")?
        .join("builds");
    let prepared = builds.join(opts.key());
    if prepared.join("complete").exists() {
        return Ok(prepared);
    }
    std::fs::create_dir_all(&builds).with_context(|| format!("creating {}", builds.display()))?;
    let _lock = distribution::lock(&builds.join(format!("{}.lock", opts.key())))?;
    if prepared.join("complete").exists() {
        return Ok(prepared);
    }
    progress.println(&format!(
        "preparing Keycloak {} with `kc.sh build {}` (once per option set)",
        dist.version,
        opts.args().join(" ")
    ));
    let prefix = format!("staging-{}-", opts.key());
    remove_stale_staging(&builds, &prefix);
    let staging = builds.join(format!("{prefix}{:08x}", rand::random::<u32>()));
    let home = assemble_home(&staging, dist, &dist.home.join("lib/quarkus"))?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(home.join("bin/kc.sh"))
        .arg("build")
        .args(opts.args())
        .current_dir(&home)
        .env("JAVA_HOME", &java.home)
        .env("JAVA_OPTS_APPEND", java_opts_append(&run.subdir("tmp")?));
    let log = run.path("keycloak-build.log");
    let mut process = ManagedProcess::spawn("keycloak-build", &run.id, cmd, &log)?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = process.exit_status() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            process.stop(Duration::from_secs(2)).await;
            bail!(
                "`kc.sh build` did not finish within 600s; log {}",
                log.display()
            );
        }
        progress.tick(&format!("kc.sh build ({}s)", started.elapsed().as_secs()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !status.success() {
        bail!(
            "`kc.sh build {}` failed ({status}); last lines of {}:\n{}",
            opts.args().join(" "),
            log.display(),
            process.log_tail(30)
        );
    }
    std::fs::create_dir_all(prepared.join("lib"))?;
    std::fs::rename(home.join("lib/quarkus"), prepared.join("lib/quarkus"))?;
    std::fs::write(prepared.join("complete"), opts.args().join(" "))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(prepared)
}

/// Staging dirs of interrupted builds of the same options (`prefix` names them; we hold
/// their lock, so none is in use). Another option set's staging dir may be in use by a
/// concurrent build under its own lock, so it is left alone.
fn remove_stale_staging(builds: &Path, prefix: &str) {
    for entry in std::fs::read_dir(builds).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The run's own Keycloak home, built from the pristine distribution and a prepared build.
fn run_home(run: &RunContext, dist: &Distribution, prepared: &Path) -> anyhow::Result<PathBuf> {
    assemble_home(&run.path("keycloak"), dist, &prepared.join("lib/quarkus"))
}

/// Copies what Keycloak writes or resolves relative to itself (`kc.sh` finds its home
/// through `readlink -f $0`, so `bin` must be a real copy), links what it only reads.
fn assemble_home(home: &Path, dist: &Distribution, quarkus: &Path) -> anyhow::Result<PathBuf> {
    let src = &dist.home;
    std::fs::create_dir_all(home.join("lib"))?;
    std::fs::create_dir_all(home.join("data"))?;
    copy_dir(&src.join("bin"), &home.join("bin"))?;
    copy_dir(&src.join("conf"), &home.join("conf"))?;
    copy_dir(quarkus, &home.join("lib/quarkus"))?;
    std::fs::copy(
        src.join("lib/quarkus-run.jar"),
        home.join("lib/quarkus-run.jar"),
    )?;
    std::fs::copy(src.join("version.txt"), home.join("version.txt"))?;
    for link in ["lib/lib", "lib/app", "themes", "providers"] {
        if src.join(link).exists() {
            std::os::unix::fs::symlink(src.join(link), home.join(link))
                .with_context(|| format!("linking {link} into {}", home.display()))?;
        }
    }
    Ok(home.to_owned())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The harness's JVM options, then what the user's `JAVA_OPTS_APPEND` says, then the
/// JVM's temp dir (Vert.x's `vertx-cache`, among others) in the run dir, which teardown
/// removes.
fn java_opts_append(tmp: &std::path::Path) -> String {
    let user = std::env::var("JAVA_OPTS_APPEND").unwrap_or_default();
    join_java_opts(&user, tmp)
}

fn join_java_opts(user: &str, tmp: &std::path::Path) -> String {
    let opts = [
        crate::stack::KEYCLOAK_JVM_OPTS,
        user.trim(),
        &format!("-Djava.io.tmpdir={}", tmp.display()),
    ];
    opts.iter()
        .filter(|o| !o.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_java_options_come_after_the_harnesss() {
        let tmp = std::path::Path::new("/run/x/tmp");
        assert_eq!(
            join_java_opts(" -XX:TieredStopAtLevel=4 -Xmx1g ", tmp),
            "-XX:TieredStopAtLevel=1 -XX:TieredStopAtLevel=4 -Xmx1g -Djava.io.tmpdir=/run/x/tmp"
        );
        assert_eq!(
            join_java_opts("", tmp),
            "-XX:TieredStopAtLevel=1 -Djava.io.tmpdir=/run/x/tmp"
        );
    }

    #[test]
    fn the_floor_of_the_benchmark_boots_with_the_same_jvm_options() {
        let bench = include_str!("../../../bench/measure.py");
        let expected = format!("HARNESS_JVM_OPTS = \"{}\"", crate::stack::KEYCLOAK_JVM_OPTS);
        assert!(
            bench.contains(&expected),
            "bench/measure.py lacks {expected}"
        );
    }

    #[test]
    fn the_session_build_has_cimd_from_26_6_on() {
        for v in ["26.6.0", "26.7.3", "27.0.1", "26.10.0"] {
            assert_eq!(BuildOptions::session(v).features, ["cimd"], "{v}");
        }
        for v in ["26.4.7", "26.5.9", "25.0.6", "nightly", "26"] {
            assert_eq!(BuildOptions::session(v), BuildOptions::default(), "{v}");
        }
        assert!(
            BuildOptions::session("26.7.3")
                .args()
                .contains(&"--features=cimd".to_owned())
        );
    }

    #[test]
    fn build_args_pin_the_database_cache_and_features() {
        let opts = BuildOptions {
            features: vec![
                "token-exchange".into(),
                "admin-fine-grained-authz:v1".into(),
            ],
            features_disabled: vec!["token-exchange-standard".into()],
        };
        assert_eq!(
            opts.args(),
            [
                "--db=dev-mem",
                "--health-enabled=true",
                "--features=token-exchange,admin-fine-grained-authz:v1",
                "--features-disabled=token-exchange-standard"
            ]
        );
        let default = BuildOptions {
            features: vec![],
            features_disabled: vec![],
        };
        assert_ne!(opts.key(), default.key());
    }
}
