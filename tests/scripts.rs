//! The shell scripts lint clean under shellcheck: the Nextcloud image's post-installation
//! hooks and `scripts/*.sh`. Without shellcheck the test is skipped, saying so; under
//! `CI=true` that is a failure (CI must run it).

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn shell_scripts_lint_clean_under_shellcheck() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts: Vec<PathBuf> = ["nextcloud/hooks/post-installation", "scripts"]
        .iter()
        .flat_map(|dir| shell_files(&root.join(dir)))
        .collect();
    assert!(
        scripts.iter().any(|p| p.ends_with("compose-check.sh")),
        "no scripts found under {}: {scripts:?}",
        root.display()
    );
    let version = match Command::new("shellcheck").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("version: "))
            .unwrap_or("unknown")
            .to_owned(),
        other => {
            let why = match other {
                Ok(out) => format!("`shellcheck --version` exited {}", out.status),
                Err(e) => format!("shellcheck cannot run ({e})"),
            };
            let fix = "install it: apt-get install -y shellcheck";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}; under CI=true the scripts must be linted: {fix}");
            }
            eprintln!("skipped: {why}; {fix}");
            return;
        }
    };
    let out = Command::new("shellcheck")
        .arg("--color=never")
        .args(&scripts)
        .current_dir(root)
        .output()
        .expect("shellcheck runs");
    assert!(
        out.status.success(),
        "shellcheck {version} found problems in {} scripts ({}):\n{}{}",
        scripts.len(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `*.sh` files directly in `dir`, sorted.
fn shell_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    files.sort();
    files
}
