//! `doctor`: which prerequisites are present, and how to install the missing ones; then,
//! apart and never failing, the containers backend's engine and images.

use std::process::Command;

use super::DoctorArgs;

struct Finding {
    name: &'static str,
    found: Result<String, String>,
    install: &'static str,
}

pub async fn doctor(args: &DoctorArgs) -> u8 {
    let findings = vec![
        Finding {
            name: "JDK",
            found: crate::stack::native::jdk::pick(&args.keycloak_version)
                .map(|j| format!("Java {} at {}", j.version, j.home.display()))
                .map_err(|e| format!("{e:#}")),
            install: "apt-get install -y openjdk-17-jdk-headless",
        },
        Finding {
            name: "Maven (fetches Keycloak)",
            found: version_of("mvn", &["-B", "-v"]),
            install: "apt-get install -y maven",
        },
        Finding {
            name: "Python 3.11 (runs the MCP server)",
            found: version_of("python3.11", &["--version"]),
            install: "apt-get install -y python3.11 python3.11-venv",
        },
        Finding {
            name: "Chromium",
            found: version_of("chromium", &["--version"]),
            install: "apt-get install -y chromium",
        },
        Finding {
            name: "ChromeDriver",
            found: version_of("chromedriver", &["--version"]),
            install: "apt-get install -y chromium-driver",
        },
    ];
    let mut missing = 0;
    for f in &findings {
        match &f.found {
            Ok(v) => println!("ok       {:<34} {v}", f.name),
            Err(e) => {
                missing += 1;
                println!(
                    "MISSING  {:<34} {e}\n         install: {}",
                    f.name, f.install
                );
            }
        }
    }
    let cache = crate::stack::native::distribution::cache_root();
    println!("cache    {}", cache.display());
    let code = if missing == 0 {
        0
    } else {
        println!("{missing} prerequisite(s) missing; `.ci/run` installs all of them on Debian");
        1
    };
    // Optional: the engine and the images never change the exit code.
    println!();
    for line in containers_section(&args.keycloak_version, &args.mcp_server_version).await {
        println!("{line}");
    }
    code
}

/// The engine as doctor shows it.
#[derive(Debug)]
pub struct EngineInfo {
    pub socket: String,
    pub version: String,
    pub api_version: String,
}

/// One image the containers backend may run, and whether the engine holds it.
#[derive(Debug)]
pub struct ImageLine {
    pub reference: String,
    /// `Ok(Some(id))` present, `Ok(None)` missing, `Err` when the engine could not say.
    pub present: Result<Option<String>, String>,
    /// How to get it when it is missing.
    pub fix: String,
}

/// The images the containers backend would use for these versions: for Keycloak and the
/// MCP server the official image and its local equivalent (either will do), and the
/// Nextcloud stand-in, which is local only.
pub fn backend_images(keycloak: &str, mcp_server: &str) -> Vec<(String, String)> {
    use crate::stack::containers::images::{
        KEYCLOAK_LOCAL, KEYCLOAK_OFFICIAL, MCP_SERVER_LOCAL, MCP_SERVER_OFFICIAL, STAND_IN_LOCAL,
        reference,
    };
    let build = "mcp-authz-harness images build";
    let pull = |image: &str, version: &str| {
        let r = reference(image, version);
        let fix = format!("docker pull {r}, or the local equivalent below (either will do)");
        (r, fix)
    };
    vec![
        pull(KEYCLOAK_OFFICIAL, keycloak),
        (
            reference(KEYCLOAK_LOCAL, keycloak),
            format!("{build} --keycloak-version {keycloak}"),
        ),
        pull(MCP_SERVER_OFFICIAL, mcp_server),
        (
            reference(MCP_SERVER_LOCAL, mcp_server),
            format!("{build} --mcp-server-version {mcp_server}"),
        ),
        (
            reference(STAND_IN_LOCAL, env!("CARGO_PKG_VERSION")),
            build.to_owned(),
        ),
    ]
}

/// Asks the engine, then renders what it found.
async fn containers_section(keycloak: &str, mcp_server: &str) -> Vec<String> {
    use crate::stack::containers::engine::{Engine, socket_path};
    let engine = Engine::connect().await;
    let info = match &engine {
        Ok(e) => Ok(EngineInfo {
            socket: e.socket.display().to_string(),
            version: e.version.clone(),
            api_version: e.api_version.clone(),
        }),
        Err(e) => Err((
            socket_path().map_or_else(|_| "DOCKER_HOST".to_owned(), |p| p.display().to_string()),
            format!("{e:#}"),
        )),
    };
    let mut images = Vec::new();
    for (reference, fix) in backend_images(keycloak, mcp_server) {
        let present = match &engine {
            Ok(e) => e.image_id(&reference).await.map_err(|e| format!("{e:#}")),
            Err(_) => Err("no engine to ask".to_owned()),
        };
        images.push(ImageLine {
            reference,
            present,
            fix,
        });
    }
    render_containers(&info, &images)
}

/// The section's lines: the engine (or why there is none and how to start one), then each
/// image, present with its ID or missing with how to get it.
pub fn render_containers(
    engine: &Result<EngineInfo, (String, String)>,
    images: &[ImageLine],
) -> Vec<String> {
    let mut out = vec!["containers backend (optional; never fails doctor)".to_owned()];
    match engine {
        Ok(e) => out.push(format!(
            "ok       {:<48} Docker {} (API {}) at {}",
            "engine", e.version, e.api_version, e.socket
        )),
        Err((socket, why)) => {
            out.push(format!(
                "missing  {:<48} not reachable at {socket}: {why}",
                "engine"
            ));
            out.push(
                "         fix: as root, `scripts/dockerd.sh start DIR` (Debian's dockerd, apt-get install -y \
                 docker.io, with --bridge=none --iptables=false --ip-masq=false and its socket \
                 under DIR), then the `export DOCKER_HOST=unix://DIR/docker.sock` it prints; or \
                 set DOCKER_HOST to a running engine's socket"
                    .to_owned(),
            );
        }
    }
    for image in images {
        match &image.present {
            Ok(Some(id)) => out.push(format!(
                "ok       {:<48} present ({})",
                image.reference,
                crate::stack::containers::build::short_id(id)
            )),
            Ok(None) => out.push(format!(
                "missing  {:<48} fix: {}",
                image.reference, image.fix
            )),
            Err(why) => out.push(format!("unknown  {:<48} {why}", image.reference)),
        }
    }
    out
}

/// The first line a command prints for its version, or why it could not run.
fn version_of(cmd: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(cmd).args(args).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let text = if text.trim().is_empty() {
                String::from_utf8_lossy(&out.stderr)
            } else {
                text
            };
            Ok(text.lines().next().unwrap_or_default().trim().to_owned())
        }
        Ok(out) => Err(format!("`{cmd}` failed ({})", out.status)),
        Err(_) => Err(format!("`{cmd}` not found on PATH")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(reference: &str, present: Result<Option<&str>, &str>) -> ImageLine {
        ImageLine {
            reference: reference.to_owned(),
            present: present.map(|p| p.map(str::to_owned)).map_err(str::to_owned),
            fix: format!("get {reference}"),
        }
    }

    #[test]
    fn the_default_images_are_official_and_local_for_each_and_the_stand_in() {
        let refs: Vec<String> = backend_images("26.7.3", "0.202.1")
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(
            refs,
            [
                "quay.io/keycloak/keycloak:26.7.3".to_owned(),
                "mcp-authz-harness/keycloak:26.7.3".to_owned(),
                "ghcr.io/cbcoutinho/nextcloud-mcp-server:0.202.1".to_owned(),
                "mcp-authz-harness/nextcloud-mcp-server:0.202.1".to_owned(),
                format!(
                    "mcp-authz-harness/nextcloud-stand-in:{}",
                    env!("CARGO_PKG_VERSION")
                ),
            ]
        );
        let fixes: Vec<String> = backend_images("26.7.3", "0.202.1")
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        assert_eq!(
            fixes[0],
            "docker pull quay.io/keycloak/keycloak:26.7.3, or the local equivalent below (either will do)"
        );
        assert_eq!(
            fixes[1],
            "mcp-authz-harness images build --keycloak-version 26.7.3"
        );
    }

    #[test]
    fn a_reachable_engine_and_its_images() {
        let engine = Ok(EngineInfo {
            socket: "/run/d/docker.sock".into(),
            version: "20.10.24+dfsg1".into(),
            api_version: "1.41".into(),
        });
        let lines = render_containers(
            &engine,
            &[
                line(
                    "mcp-authz-harness/keycloak:26.7.3",
                    Ok(Some("sha256:4931fff6f2c3deadbeef")),
                ),
                line("quay.io/keycloak/keycloak:26.7.3", Ok(None)),
            ],
        );
        assert_eq!(
            lines[0],
            "containers backend (optional; never fails doctor)"
        );
        assert!(lines[1].starts_with("ok       engine"), "{}", lines[1]);
        assert!(lines[1].ends_with("Docker 20.10.24+dfsg1 (API 1.41) at /run/d/docker.sock"));
        assert!(lines[2].starts_with("ok       mcp-authz-harness/keycloak:26.7.3"));
        assert!(lines[2].ends_with("present (4931fff6f2c3)"), "{}", lines[2]);
        assert!(lines[3].starts_with("missing  quay.io/keycloak/keycloak:26.7.3"));
        assert!(lines[3].ends_with("fix: get quay.io/keycloak/keycloak:26.7.3"));
    }

    #[test]
    fn an_unreachable_engine_says_how_to_start_one() {
        let engine = Err((
            "/var/run/docker.sock".to_owned(),
            "no Docker engine answers".to_owned(),
        ));
        let lines = render_containers(&engine, &[line("x:1", Err("no engine to ask"))]);
        assert!(lines[1].starts_with("missing  engine"));
        assert!(lines[1].contains("not reachable at /var/run/docker.sock"));
        assert!(lines[2].contains("scripts/dockerd.sh start DIR"));
        assert!(lines[2].contains("--bridge=none --iptables=false"));
        assert!(lines[2].contains("DOCKER_HOST"));
        assert!(lines[3].starts_with("unknown  x:1"));
    }
}
