//! The last check of every run: no secret the run handled appears in clear in any
//! artefact it leaves (reports, JUnit, evidence pages, copied or kept component logs).

use std::path::{Path, PathBuf};

use crate::secret::Redactor;

/// Files under `roots` that contain a registered secret value, as "path: kind" lines.
pub fn secret_hits(roots: &[PathBuf]) -> Vec<String> {
    let secrets = Redactor::global().known_values();
    let mut hits = Vec::new();
    for root in roots {
        for file in files_under(root) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            for (value, kind) in &secrets {
                if contains(&bytes, value.as_bytes()) {
                    hits.push(format!(
                        "{}: contains a {} in clear",
                        file.display(),
                        kind.label()
                    ));
                }
            }
        }
    }
    hits
}

/// A vectorised substring search: the scan runs every known secret (hundreds of tokens
/// in a full run) over every artefact, which a byte-window comparison made take tens of
/// seconds per report dir.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            if dir.is_file() {
                out.push(dir);
            }
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{Secret, SecretKind};

    #[test]
    fn a_secret_in_any_file_under_the_roots_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secret::new(SecretKind::RefreshToken, "rt-0123456789-abcdef-scan-test");
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("report.json"), "{\"ok\": true}").unwrap();
        std::fs::write(
            dir.path().join("logs/x.log"),
            format!("token={}", s.expose()),
        )
        .unwrap();
        let hits = secret_hits(&[dir.path().to_owned()]);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert!(
            hits[0].contains("logs/x.log") && hits[0].contains("refresh_token"),
            "{hits:?}"
        );
    }
}
