//! What the server stores, table by table, and how each column is protected: read from a
//! live database after the flows that fill it, pinned per release (STORAGE-13), and
//! rendered into `docs/token-storage.md`.
//!
//! Only what does not vary between runs goes in: the schema, which columns are encrypted,
//! and what kind of value each encrypted column held (a Keycloak refresh token, an app
//! password, ...). Clear columns are described only when they hold something that looks
//! like a credential, which is then a finding.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::TokenDb;
use super::cipher::{self, Cipher};
use super::scan::Matcher;

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
            let mut out = Vec::new();
            for col in columns {
                let encrypted = col.is_encrypted_by_name();
                let held: BTreeSet<String> = rows
                    .iter()
                    .filter_map(|r| r.get(&col.name))
                    .filter_map(|c| c.bytes().filter(|b| !b.is_empty()))
                    .filter_map(|b| {
                        if encrypted {
                            Some(describe_encrypted(cipher, b))
                        } else {
                            credential_in_clear(b, secrets)
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

/// `docs/token-storage.md`: the inventories (one per release), rendered.
pub fn render_markdown(inventories: &[Inventory], how: &str) -> String {
    let mut md = String::from(
        "# Token storage: what the MCP server keeps at rest\n\n\
         Rendered from the inventory the STORAGE area takes of a live database (check STORAGE-13) \
         and pins per release in `fixtures/snapshots/token-storage-<release>.snap`; a test fails \
         when this file is stale.\n\n",
    );
    md.push_str(how);
    md.push_str(
        "\n\n`protection`: `fernet` for columns named `encrypted_*` (Fernet with `TOKEN_ENCRYPTION_KEY`), \
         `clear` otherwise. `held after the flows`: the kinds of value the column held once the \
         STORAGE flows had run (Flow 2 provisioning, Login Flow v2, the proxy flow, the server's own \
         DCR); for encrypted columns, what the stored value decrypts to with the run's key. Values \
         themselves are never shown. A clear column is described only when it holds a credential.\n",
    );
    for inv in inventories {
        md.push_str(&format!("\n## nextcloud-mcp-server {}\n", inv.release));
        for t in &inv.tables {
            md.push_str(&format!(
                "\n### `{}`\n\n| column | type | protection | held after the flows |\n|---|---|---|---|\n",
                t.name
            ));
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
                        c.held.join("; ").replace('|', "\\|")
                    }
                ));
            }
        }
    }
    md
}
