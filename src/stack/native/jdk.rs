//! Choosing a JDK that the Keycloak version supports.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// A JDK found on this machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Jdk {
    pub home: PathBuf,
    pub version: String,
    pub major: u32,
}

/// Java majors a Keycloak version runs on: 17 and 21 for every 26.x, 25 from 26.6 on.
pub fn supported_majors(keycloak_version: &str) -> Vec<u32> {
    let mut parts = keycloak_version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (26, 6) {
        vec![21, 25, 17]
    } else {
        vec![21, 17]
    }
}

/// `JAVA_HOME` when it holds a supported JDK, else the best supported JDK under
/// `/usr/lib/jvm` (in the order of [`supported_majors`]).
pub fn pick(keycloak_version: &str) -> anyhow::Result<Jdk> {
    pick_from(
        keycloak_version,
        std::env::var_os("JAVA_HOME").map(PathBuf::from),
        Path::new("/usr/lib/jvm"),
    )
}

pub fn pick_from(
    keycloak_version: &str,
    java_home: Option<PathBuf>,
    jvm_dir: &Path,
) -> anyhow::Result<Jdk> {
    let wanted = supported_majors(keycloak_version);
    let mut searched = Vec::new();
    if let Some(home) = java_home {
        match read_jdk(&home) {
            Some(jdk) if wanted.contains(&jdk.major) => return Ok(jdk),
            Some(jdk) => searched.push(format!(
                "JAVA_HOME={} (Java {}, not supported)",
                home.display(),
                jdk.major
            )),
            None => searched.push(format!("JAVA_HOME={} (no JDK there)", home.display())),
        }
    }
    let mut found: Vec<Jdk> = std::fs::read_dir(jvm_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| read_jdk(&e.path()))
                .collect()
        })
        .unwrap_or_default();
    found.dedup_by(|a, b| a.version == b.version);
    for major in &wanted {
        if let Some(jdk) = found.iter().find(|j| j.major == *major) {
            return Ok(jdk.clone());
        }
    }
    searched.push(format!(
        "{} ({})",
        jvm_dir.display(),
        if found.is_empty() {
            "no JDK".to_owned()
        } else {
            found
                .iter()
                .map(|j| format!("Java {}", j.version))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    bail!(
        "no JDK that Keycloak {keycloak_version} supports (Java {}) was found; searched: {}. \
         Install one (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME to it",
        wanted
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        searched.join("; ")
    )
}

/// Reads `<home>/release` (`JAVA_VERSION="17.0.15"`); `None` when `home` is no JDK.
fn read_jdk(home: &Path) -> Option<Jdk> {
    if !home.join("bin/java").exists() {
        return None;
    }
    let release = std::fs::read_to_string(home.join("release")).ok()?;
    let version = release
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))?
        .trim_matches('"')
        .to_owned();
    let major = version.split('.').next()?.parse().ok()?;
    let home = home.canonicalize().unwrap_or_else(|_| home.to_owned());
    Some(Jdk {
        home,
        version,
        major,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_jdk(dir: &Path, name: &str, version: &str) -> PathBuf {
        let home = dir.join(name);
        std::fs::create_dir_all(home.join("bin")).unwrap();
        std::fs::write(home.join("bin/java"), "").unwrap();
        std::fs::write(
            home.join("release"),
            format!("JAVA_VERSION=\"{version}\"\n"),
        )
        .unwrap();
        home
    }

    #[test]
    fn java_25_only_from_keycloak_26_6() {
        assert!(!supported_majors("26.4.7").contains(&25));
        assert!(supported_majors("26.7.3").contains(&25));
    }

    #[test]
    fn an_unsupported_java_home_is_passed_over_for_a_supported_jdk() {
        let dir = tempfile::tempdir().unwrap();
        let j25 = fake_jdk(dir.path(), "temurin-25", "25.0.3");
        fake_jdk(dir.path(), "java-17", "17.0.15");
        let jdk = pick_from("26.4.7", Some(j25), dir.path()).unwrap();
        assert_eq!(jdk.major, 17);
    }

    #[test]
    fn the_error_names_what_was_searched() {
        let dir = tempfile::tempdir().unwrap();
        fake_jdk(dir.path(), "java-11", "11.0.2");
        let err = pick_from("26.4.7", None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Java 21, 17"), "{err}");
        assert!(err.contains("Java 11.0.2"), "{err}");
        assert!(err.contains("JAVA_HOME"), "{err}");
    }
}
