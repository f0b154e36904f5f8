//! Looking for secrets in clear in raw bytes: the database file, its journals, or the
//! plaintext of a decrypted value. What is looked for is every secret value the run
//! handled and every JWT segment of 20 characters or more of each token among them (a
//! token cut up, or stored without its signature, still gives itself away).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::secret::{SecretKind, fingerprint};

/// Segments shorter than this are not looked for: a short base64 run can occur by chance.
pub const MIN_SEGMENT_LEN: usize = 20;

/// Every needle starts with this many bytes, the key of the prefix index.
const PREFIX: usize = 8;

/// One thing to look for, and how to name it without showing it.
#[derive(Clone, Debug, PartialEq)]
pub struct Needle {
    /// e.g. `refresh_token #1a2b3c4d` or `access_token #1a2b3c4d, JWT segment 2`.
    pub what: String,
    pub bytes: Vec<u8>,
}

/// The needles for `known` secrets (kind and value): each value, and each JWT segment of
/// at least [`MIN_SEGMENT_LEN`] characters. Values shorter than the prefix are skipped
/// (the redactor does not register them either).
pub fn needles(known: &[(String, SecretKind)]) -> Vec<Needle> {
    needles_from(known, true)
}

/// As [`needles`], without JWT headers: a header names only the algorithm and the key,
/// so every token Keycloak signs with that key shares it. Where one token is looked for
/// among others (the proxy's tokens inside the stored Flow 2 token), a header match
/// proves nothing; payload and signature are unique to the token.
pub fn needles_without_headers(known: &[(String, SecretKind)]) -> Vec<Needle> {
    needles_from(known, false)
}

fn needles_from(known: &[(String, SecretKind)], headers: bool) -> Vec<Needle> {
    let mut out: Vec<Needle> = Vec::new();
    let mut push = |what: String, bytes: &[u8]| {
        if bytes.len() >= PREFIX && !out.iter().any(|n| n.bytes == bytes) {
            out.push(Needle {
                what,
                bytes: bytes.to_vec(),
            });
        }
    };
    for (value, kind) in known {
        let name = format!("{} #{}", kind.label(), fingerprint(value));
        push(name.clone(), value.as_bytes());
        if let Some(segments) = jwt_segments(value) {
            for (i, seg) in segments.iter().enumerate() {
                if seg.len() >= MIN_SEGMENT_LEN && (headers || i > 0) {
                    push(format!("{name}, JWT segment {}", i + 1), seg.as_bytes());
                }
            }
        }
    }
    out
}

/// The dot-separated segments of a compact JWS (3) or JWE (5), when `value` is one.
fn jwt_segments(value: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = value.split('.').collect();
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    ((parts.len() == 3 || parts.len() == 5)
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| b64url(p)))
    .then_some(parts)
}

/// A needle found.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// What was found (never the value itself).
    pub what: String,
    pub offset: usize,
}

/// Finds needles in byte strings: one pass per haystack through an index of the needles'
/// first bytes, so a thousand needles cost little more than one.
pub struct Matcher {
    needles: Vec<Needle>,
    by_prefix: HashMap<[u8; PREFIX], Vec<usize>>,
}

impl Matcher {
    pub fn new(needles: Vec<Needle>) -> Self {
        let mut by_prefix: HashMap<[u8; PREFIX], Vec<usize>> = HashMap::new();
        for (i, n) in needles.iter().enumerate() {
            if let Ok(p) = <[u8; PREFIX]>::try_from(&n.bytes[..PREFIX]) {
                by_prefix.entry(p).or_default().push(i);
            }
        }
        Self { needles, by_prefix }
    }

    pub fn len(&self) -> usize {
        self.needles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Each needle found in `haystack`, once, at its first offset.
    pub fn find_all(&self, haystack: &[u8]) -> Vec<Hit> {
        let mut found = vec![false; self.needles.len()];
        let mut hits = Vec::new();
        for start in 0..haystack.len().saturating_sub(PREFIX - 1) {
            let Ok(p) = <[u8; PREFIX]>::try_from(&haystack[start..start + PREFIX]) else {
                continue;
            };
            let Some(candidates) = self.by_prefix.get(&p) else {
                continue;
            };
            for &i in candidates {
                let n = &self.needles[i].bytes;
                if !found[i] && haystack[start..].starts_with(n) {
                    found[i] = true;
                    hits.push(Hit {
                        what: self.needles[i].what.clone(),
                        offset: start,
                    });
                }
            }
        }
        hits
    }

    /// Each needle found in each file, as `file: what at offset`.
    pub fn scan_files(&self, files: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Hit)>> {
        let mut out = Vec::new();
        for f in files {
            if let Some(bytes) = read(f)? {
                out.extend(self.find_all(&bytes).into_iter().map(|h| (f.clone(), h)));
            }
        }
        Ok(out)
    }
}

/// The file's bytes; `None` when it is gone (SQLite removes journals as it goes).
fn read(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use anyhow::Context;
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
