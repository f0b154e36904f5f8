//! What the server stores, table by table, and how each column is protected: read from a
//! live database after the flows that fill it, pinned per release (STORAGE-13), and
//! rendered into `docs/token-storage.md`.
//!
//! Only what does not vary between runs goes in: the schema, which columns are encrypted,
//! and what kind of value each column of a credential table held (a Keycloak refresh
//! token, an app password, a JSON list, ...), never a value. Other tables' clear columns
//! are described only when they hold something that looks like a credential, which is
//! then a finding.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::cipher::{self, Cipher};
use super::scan::Matcher;
use super::{Cell, TokenDb};

/// The stored data of one release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub release: String,
    pub tables: Vec<TableInventory>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableInventory {
    pub name: String,
    pub columns: Vec<ColumnInventory>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnInventory {
    pub name: String,
    pub decl_type: String,
    /// `fernet` when the column is named `encrypted_*`, else `clear`.
    pub protection: String,
    /// What the values were after the flows (for encrypted columns: what they decrypted
    /// to), each kind once, sorted; empty when the column held nothing.
    pub held: Vec<String>,
}

impl Inventory {
    /// Reads `db`: every table and column, and the kinds of value in encrypted columns
    /// (and in clear columns when a value looks like a credential or a known secret).
    pub fn read(
        db: &TokenDb,
        cipher: &Cipher,
        secrets: &Matcher,
        release: &str,
    ) -> anyhow::Result<Self> {
        let mut tables = Vec::new();
        for table in db.tables()? {
            let columns = db.columns(&table)?;
            let rows = db.rows(&table)?;
            let credential_table = columns.iter().any(|c| c.is_encrypted_by_name());
            let mut out = Vec::new();
            for col in columns {
                let encrypted = col.is_encrypted_by_name();
                let held: BTreeSet<String> = rows
                    .iter()
                    .filter_map(|r| r.get(&col.name))
                    .filter_map(|c| match c {
                        Cell::Integer(_) if credential_table => Some("integer".to_owned()),
                        Cell::Real(_) if credential_table => Some("number".to_owned()),
                        c => {
                            let b = c.bytes().filter(|b| !b.is_empty())?;
                            if encrypted {
                                Some(describe_encrypted(cipher, b))
                            } else {
                                credential_in_clear(b, secrets)
                                    .or_else(|| credential_table.then(|| classify(b)))
                            }
                        }
                    })
                    .collect();
                out.push(ColumnInventory {
                    protection: if encrypted { "fernet" } else { "clear" }.into(),
                    name: col.name,
                    decl_type: col.decl_type,
                    held: held.into_iter().collect(),
                });
            }
            tables.push(TableInventory {
                name: table,
                columns: out,
            });
        }
        Ok(Self {
            release: release.to_owned(),
            tables,
        })
    }

    /// Adds what `other` saw (another database of the same release): tables it has that
    /// this one lacks, and the kinds of value its columns held.
    pub fn merge(&mut self, other: Inventory) {
        for t in other.tables {
            match self.tables.iter_mut().find(|m| m.name == t.name) {
                None => self.tables.push(t),
                Some(mine) => {
                    for c in t.columns {
                        match mine.columns.iter_mut().find(|m| m.name == c.name) {
                            None => mine.columns.push(c),
                            Some(m) => {
                                let all: BTreeSet<String> =
                                    m.held.drain(..).chain(c.held).collect();
                                m.held = all.into_iter().collect();
                            }
                        }
                    }
                }
            }
        }
        self.tables.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// An encrypted value: what it decrypts to, or why it does not.
fn describe_encrypted(cipher: &Cipher, stored: &[u8]) -> String {
    match cipher.decrypt(stored) {
        Ok(plain) => format!("Fernet → {}", classify(&plain)),
        Err(e) => format!("not decryptable: {e}"),
    }
}

/// A clear value that is a credential: a known secret, a JWT or a Fernet token.
fn credential_in_clear(value: &[u8], secrets: &Matcher) -> Option<String> {
    if let Some(hit) = secrets.find_all(value).first() {
        let kind = hit.what.split(" #").next().unwrap_or("secret");
        return Some(format!("IN CLEAR: a {kind} the run handled"));
    }
    let text = std::str::from_utf8(value).ok()?;
    if let Some(jwt) = jwt_kind(text) {
        return Some(format!("IN CLEAR: {jwt}"));
    }
    cipher::is_fernet_token(value).then(|| "Fernet token in a column not named encrypted_*".into())
}

/// A plaintext's kind, without its value: `JWT, typ Offline`, `JSON`, `opaque text, 72
/// chars`, ...
pub fn classify(plain: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(plain) else {
        return format!("{} bytes of binary", plain.len());
    };
    if let Some(jwt) = jwt_kind(text) {
        return jwt;
    }
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(text).is_ok()
    {
        return "JSON".into();
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return "URL".into();
    }
    format!("opaque text, {} chars", text.chars().count())
}

/// `JWT, typ <typ>` (or without typ) when `text` is a compact JWT.
fn jwt_kind(text: &str) -> Option<String> {
    if !text.starts_with("eyJ") || text.matches('.').count() != 2 {
        return None;
    }
    let (_, claims) = crate::oauth::jwt::peek(text).ok()?;
    Some(match claims["typ"].as_str() {
        Some(t) => format!("JWT, typ {t}"),
        None => "JWT".into(),
    })
}

/// What the reference's tables are for, from its source (`auth/storage.py`, the alembic
/// migrations, `auth/oauth_routes.py`), shown above each table in the docs.
const PURPOSES: &[(&str, &str)] = &[
    (
        "refresh_tokens",
        "Flow 2 (background provisioning): one IdP refresh token per user, keyed by the IdP `sub`; \
         `provisioning_client_id` holds the Flow 2 `state`.",
    ),
    (
        "app_passwords",
        "Login Flow v2: one Nextcloud app password per user, keyed by the IdP `sub`; `username` is the \
         Nextcloud login name.",
    ),
    (
        "login_flow_sessions",
        "Login Flow v2 in progress: the poll token until the user granted access (deleted once polled).",
    ),
    (
        "oauth_clients",
        "The server's own client at the IdP when it registered itself (RFC 7591), with its RFC 7592 \
         registration access token.",
    ),
    (
        "oauth_sessions",
        "Browser flows in progress (Flow 2, the `/app` login); for Flow 2 `mcp_authorization_code` holds \
         the PKCE verifier, in clear, until the callback deletes the row.",
    ),
    (
        "audit_logs",
        "Events per user (stored credentials, provisioning), no secrets.",
    ),
];

impl Inventory {
    /// What holds a credential, one line per encrypted column that held one: the short
    /// answer to "what is stored where, protected how".
    pub fn summary_markdown(&self) -> String {
        let mut md = String::from("| where | protection | holds |\n|---|---|---|\n");
        for t in &self.tables {
            for c in t.columns.iter().filter(|c| c.protection == "fernet") {
                md.push_str(&format!(
                    "| `{}.{}` | {} | {} |\n",
                    t.name,
                    c.name,
                    c.protection,
                    if c.held.is_empty() {
                        "(nothing after the flows)".to_owned()
                    } else {
                        cell(&c.held)
                    }
                ));
            }
        }
        md
    }

    /// Every table with its columns, under headings of the given level (`###`).
    pub fn tables_markdown(&self, heading: &str) -> String {
        let mut md = String::new();
        for t in &self.tables {
            md.push_str(&format!("\n{heading} `{}`\n\n", t.name));
            if let Some((_, purpose)) = PURPOSES.iter().find(|(n, _)| *n == t.name) {
                md.push_str(purpose);
                md.push_str("\n\n");
            }
            md.push_str(
                "| column | type | protection | held after the flows |\n|---|---|---|---|\n",
            );
            for c in &t.columns {
                md.push_str(&format!(
                    "| `{}` | {} | {} | {} |\n",
                    c.name,
                    if c.decl_type.is_empty() {
                        "-"
                    } else {
                        &c.decl_type
                    },
                    c.protection,
                    if c.held.is_empty() {
                        "-".to_owned()
                    } else {
                        cell(&c.held)
                    }
                ));
            }
        }
        md
    }

    /// Reads an inventory pinned by STORAGE-13 (see [`crate::pins`]).
    pub fn from_snapshot(text: &str) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(crate::pins::body(text)?)?)
    }
}

fn cell(held: &[String]) -> String {
    crate::markdown::cell(&held.join("; "))
}
