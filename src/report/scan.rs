//! The last check of every run: no secret the run handled appears in clear in any
//! artefact it leaves (reports, JUnit, evidence pages, copied or kept component logs).

use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;

use crate::secret::{Redactor, SecretKind};

/// Files under `roots` that contain a registered secret value, as "path: kind" lines.
/// One pass over each file finds every value (Aho-Corasick): a run registers hundreds of
/// secrets, and a kept run dir holds tens of megabytes.
pub fn secret_hits(roots: &[PathBuf]) -> Vec<String> {
    let secrets: Vec<(String, SecretKind)> = Redactor::global()
        .known_values()
        .into_iter()
        .filter(|(v, _)| !v.is_empty())
        .collect();
    if secrets.is_empty() {
        return Vec::new();
    }
    let finder = match AhoCorasick::new(secrets.iter().map(|(v, _)| v.as_bytes())) {
        Ok(f) => f,
        Err(e) => return vec![format!("the scan could not be built: {e}")],
    };
    let mut hits = Vec::new();
    for root in roots {
        for file in files_under(root) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let mut found = vec![false; secrets.len()];
            for m in finder.find_overlapping_iter(&bytes) {
                found[m.pattern().as_usize()] = true;
            }
            for ((_, kind), _) in secrets.iter().zip(&found).filter(|(_, f)| **f) {
                hits.push(format!(
                    "{}: contains a {} in clear",
                    file.display(),
                    kind.label()
                ));
            }
        }
    }
    hits
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
