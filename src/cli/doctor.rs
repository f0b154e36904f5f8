//! `doctor`: which prerequisites are present, and how to install the missing ones.

use std::process::Command;

use super::DoctorArgs;

struct Finding {
    name: &'static str,
    found: Result<String, String>,
    install: &'static str,
}

pub fn doctor(args: &DoctorArgs) -> u8 {
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
    if missing == 0 {
        0
    } else {
        println!("{missing} prerequisite(s) missing; `.ci/run` installs all of them on Debian");
        1
    }
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
