//! How the stored values were encrypted (STORAGE-07), judged from the database alone:
//! - each value in an `encrypted_*` column opens with the key its instance was given
//!   (`TOKEN_ENCRYPTION_KEY`): a server that encrypted with a built-in, derived or
//!   shared key instead fails here, since every instance of a run gets its own key;
//! - no two values share an IV: the Fernet spec asks for a unique IV per token, and a
//!   fixed or repeated one makes equal secrets equal ciphertexts (and the same token
//!   stored twice is the same IV twice);
//! - each token's timestamp lies within the run: it was made by this run's server now,
//!   not shipped or copied in.
//!
//! What this does not test, because it cannot fail: that some other key does not open a
//! value. A Fernet token verifies its HMAC under exactly one signing key, so any key but
//! the right one is refused by construction.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use sha2::{Digest, Sha256};

use super::cipher::token_header;
use super::{Cipher, TokenDb};

/// A database and the key its instance was given.
pub struct Keyed<'a> {
    /// How findings name the database (`instance storage-lab`).
    pub label: &'a str,
    pub db: TokenDb,
    pub cipher: Cipher,
}

/// What the audit found over every encrypted value.
#[derive(Debug, Default, PartialEq)]
pub struct KeyingAudit {
    /// Values in `encrypted_*` columns, over every database.
    pub values: usize,
    /// Values whose plaintext another stored value has too (their tokens must still
    /// differ: that is what unique IVs give).
    pub repeated_plaintexts: usize,
    /// Each failed property, with the value's place; never a value.
    pub problems: Vec<String>,
}

/// Audits every encrypted value of `dbs`; a Fernet timestamp outside `made` (seconds
/// since the epoch) is a problem.
pub fn audit(dbs: &[Keyed<'_>], made: RangeInclusive<u64>) -> anyhow::Result<KeyingAudit> {
    let mut found = KeyingAudit::default();
    let mut by_iv: BTreeMap<[u8; 16], Vec<String>> = BTreeMap::new();
    // Digests, not plaintexts: only whether two are equal matters here.
    let mut by_plaintext: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for keyed in dbs {
        for v in keyed.db.all_values()? {
            if !v.column.starts_with("encrypted_") {
                continue;
            }
            let place = format!("{} {}", keyed.label, v.place());
            let stored = v.cell.bytes().unwrap_or_default();
            found.values += 1;
            match keyed.cipher.decrypt(stored) {
                Ok(plain) => {
                    *by_plaintext
                        .entry(Sha256::digest(&plain).to_vec())
                        .or_default() += 1
                }
                Err(e) => found.problems.push(format!(
                    "{place} does not open with the instance's TOKEN_ENCRYPTION_KEY: {e}"
                )),
            }
            // A value that is no Fernet token was reported just above.
            if let Ok(header) = token_header(stored) {
                if !made.contains(&header.timestamp) {
                    found.problems.push(format!(
                        "{place} was made at {} (its Fernet timestamp), outside the run ({} to {})",
                        when(header.timestamp),
                        when(*made.start()),
                        when(*made.end())
                    ));
                }
                by_iv.entry(header.iv).or_default().push(place);
            }
        }
    }
    for places in by_iv.values().filter(|p| p.len() > 1) {
        found.problems.push(format!(
            "{} values share one IV: {}",
            places.len(),
            places.join(", ")
        ));
    }
    found.repeated_plaintexts = by_plaintext.values().filter(|n| **n > 1).sum();
    Ok(found)
}

/// A timestamp as RFC 3339 (UTC), or the number when it is out of range.
fn when(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}
