//! The Keycloak distribution: found, cached, or fetched from Maven Central; never modified.
//!
//! Cache layout (`$XDG_CACHE_HOME` or `~/.cache`, then `mcp-authz-harness/`):
//! `keycloak-<version>/dist/` the unpacked distribution, as shipped;
//! `keycloak-<version>/builds/<key>/lib/quarkus` the output of `kc.sh build` for one set of
//! build options. Each is created under a lock and renamed into place when complete, so
//! concurrent runs never see half a directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::progress::Progress;

/// An unpacked, pristine Keycloak distribution.
#[derive(Clone, Debug)]
pub struct Distribution {
    pub version: String,
    pub home: PathBuf,
}

const MAVEN_TIMEOUT: Duration = Duration::from_secs(900);

/// The harness's cache directory.
pub fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("mcp-authz-harness")
}

/// `explicit` (a zip or an unpacked distribution) when given, else the cached
/// distribution of `version`, fetched with Maven when absent.
pub async fn resolve(
    version: &str,
    explicit: Option<&Path>,
    progress: &Progress,
) -> anyhow::Result<Distribution> {
    if let Some(path) = explicit {
        return from_explicit(path);
    }
    let dir = cache_root().join(format!("keycloak-{version}"));
    let dist = dir.join("dist");
    if !dist.join("bin/kc.sh").exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let _lock = lock(&dir.join("dist.lock"))?;
        if !dist.join("bin/kc.sh").exists() {
            fetch_with_maven(version, &dir, &dist, progress).await?;
        }
    }
    let found = read_version(&dist)?;
    if found != version {
        bail!(
            "the cached distribution {} is Keycloak {found}, not {version}; remove that directory",
            dist.display()
        );
    }
    Ok(Distribution {
        version: found,
        home: dist,
    })
}

fn from_explicit(path: &Path) -> anyhow::Result<Distribution> {
    if path.is_dir() {
        if !path.join("bin/kc.sh").exists() {
            bail!(
                "{} is not a Keycloak distribution (no bin/kc.sh); set --keycloak-dist / KEYCLOAK_HOME \
                 to an unpacked keycloak-<version> directory or its zip",
                path.display()
            );
        }
        let version = read_version(path)?;
        return Ok(Distribution {
            version,
            home: path.to_owned(),
        });
    }
    if path.extension().is_some_and(|e| e == "zip") {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let key = crate::secret::fingerprint(&String::from_utf8_lossy(
            &bytes[..bytes.len().min(1 << 20)],
        ));
        let dir = cache_root().join(format!("keycloak-zip-{key}"));
        let dist = dir.join("dist");
        std::fs::create_dir_all(&dir)?;
        let _lock = lock(&dir.join("dist.lock"))?;
        if !dist.join("bin/kc.sh").exists() {
            unpack(path, &dir, &dist)?;
        }
        let version = read_version(&dist)?;
        return Ok(Distribution {
            version,
            home: dist,
        });
    }
    bail!(
        "--keycloak-dist / KEYCLOAK_HOME = {}: neither a directory nor a .zip file",
        path.display()
    )
}

/// `version.txt` says `Keycloak - Version 26.7.3`.
fn read_version(home: &Path) -> anyhow::Result<String> {
    let file = home.join("version.txt");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "reading {} (is this a Keycloak distribution?)",
            file.display()
        )
    })?;
    text.trim()
        .rsplit(' ')
        .next()
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .with_context(|| format!("{}: no version in {text:?}", file.display()))
}

async fn fetch_with_maven(
    version: &str,
    dir: &Path,
    dist: &Path,
    progress: &Progress,
) -> anyhow::Result<()> {
    let download = dir.join("download");
    let _ = std::fs::remove_dir_all(&download);
    let artifact = format!("org.keycloak:keycloak-quarkus-dist:{version}:zip");
    progress.println(&format!(
        "downloading Keycloak {version} ({artifact}) from Maven Central"
    ));
    let mut cmd = tokio::process::Command::new("mvn");
    cmd.args(["-q", "-B", "dependency:copy"])
        .arg(format!("-Dartifact={artifact}"))
        .arg(format!("-DoutputDirectory={}", download.display()))
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let child = cmd.output();
    tokio::pin!(child);
    let output = loop {
        tokio::select! {
            out = &mut child => break out,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if started.elapsed() > MAVEN_TIMEOUT {
                    bail!("Maven did not fetch {artifact} within {}s", MAVEN_TIMEOUT.as_secs());
                }
                progress.tick(&format!("downloading Keycloak {version} ({}s)", started.elapsed().as_secs()));
            }
        }
    };
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "Maven (mvn) is not installed, so Keycloak {version} cannot be fetched. Install it \
             (`apt-get install maven`) or pass --keycloak-dist PATH (a zip or unpacked distribution)"
        ),
        Err(e) => return Err(e).context("running mvn"),
    };
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&download);
        let out = String::from_utf8_lossy(&output.stdout);
        if out.contains("Could not find artifact") || out.contains("was not found in") {
            bail!(
                "--keycloak-version {version}: Maven Central has no {artifact}; give a released \
                 Keycloak version (e.g. {}) with --keycloak-version or KEYCLOAK_VERSION, or a \
                 distribution with --keycloak-dist PATH",
                crate::config::DEFAULT_KEYCLOAK_VERSION
            );
        }
        let tail: Vec<&str> = out.lines().rev().take(15).collect();
        bail!(
            "Maven could not fetch {artifact} (is {version} a released Keycloak version?):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let zip = download.join(format!("keycloak-quarkus-dist-{version}.zip"));
    progress.println(&format!(
        "fetched Keycloak {version} in {:.0}s; unpacking",
        started.elapsed().as_secs_f64()
    ));
    unpack(&zip, dir, dist)?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
}

/// Unzips `zip` (whose single top-level dir is `keycloak-<version>/`) into `dist`.
fn unpack(zip: &Path, dir: &Path, dist: &Path) -> anyhow::Result<()> {
    let staging = dir.join(format!("unpack-{:08x}", rand::random::<u32>()));
    let file = std::fs::File::open(zip).with_context(|| format!("opening {}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a readable zip", zip.display()))?;
    archive
        .extract(&staging)
        .with_context(|| format!("unpacking {} into {}", zip.display(), staging.display()))?;
    let top = std::fs::read_dir(&staging)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("bin/kc.sh").exists())
        .with_context(|| format!("{} holds no keycloak-<version>/bin/kc.sh", zip.display()))?;
    std::fs::rename(&top, dist).with_context(|| format!("moving into {}", dist.display()))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// An exclusive lock on `path`, held while the guard lives.
pub fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    use fs2::FileExt;
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    f.lock_exclusive()
        .with_context(|| format!("locking {}", path.display()))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_version_txt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("version.txt"),
            "Keycloak - Version 26.7.3\n",
        )
        .unwrap();
        assert_eq!(read_version(dir.path()).unwrap(), "26.7.3");
    }

    #[test]
    fn a_directory_without_kc_sh_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = from_explicit(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no bin/kc.sh"), "{err}");
        assert!(err.contains("KEYCLOAK_HOME"), "{err}");
    }
}
