//! The MCP server's token database as the harness reads it: SQLite opened read-only (the
//! server keeps writing while a check looks), Fernet columns decrypted with the run's key
//! ([`cipher`]), the raw bytes of the file and its journals scanned for secrets in clear
//! ([`scan`]), and an inventory of what is stored where ([`inventory`]).
//!
//! Nothing here knows a release's schema: tables and columns are read from the file, and
//! a column is taken as encrypted by its name (`encrypted_*`, the reference's convention)
//! and checked by its content.

pub mod cipher;
pub mod docs;
pub mod inventory;
pub mod keying;
pub mod scan;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, types::ValueRef};

pub use cipher::Cipher;

/// One stored value, as SQLite typed it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn from_ref(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Integer(i),
            ValueRef::Real(r) => Cell::Real(r),
            ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
        }
    }

    /// The bytes of a text or blob value (where a token could hide).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Cell::Text(t) => Some(t.as_bytes()),
            Cell::Blob(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Cell::Text(t) => Some(t),
            Cell::Blob(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// Null, or an empty text or blob.
    pub fn is_empty(&self) -> bool {
        matches!(self, Cell::Null) || self.bytes().is_some_and(<[u8]>::is_empty)
    }
}

/// A column as `PRAGMA table_info` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    /// The declared type (`BLOB`, `TEXT`, `BIGINT`, ...).
    pub decl_type: String,
}

impl Column {
    /// The reference names its Fernet columns `encrypted_*`.
    pub fn is_encrypted_by_name(&self) -> bool {
        self.name.starts_with("encrypted_")
    }
}

/// A row: its columns in table order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row(pub Vec<(String, Cell)>);

impl Row {
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.0.iter().find(|(c, _)| c == column).map(|(_, v)| v)
    }

    pub fn text(&self, column: &str) -> Option<&str> {
        self.get(column).and_then(Cell::as_text)
    }
}

/// The server's database, opened read-only.
pub struct TokenDb {
    conn: Connection,
    path: PathBuf,
}

impl TokenDb {
    /// Opens `path` read-only; waits up to 5 s for a writer's lock.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            path.is_file(),
            "no database file at {} (the server has not created it)",
            path.display()
        );
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} read-only", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tables, in name order (SQLite's own `sqlite_*` left out).
    pub fn tables(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names)
    }

    pub fn columns(&self, table: &str) -> anyhow::Result<Vec<Column>> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info({})", quote(table)))?;
        let cols = stmt
            .query_map([], |r| {
                Ok(Column {
                    name: r.get(1)?,
                    decl_type: r.get::<_, String>(2).unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        anyhow::ensure!(
            !cols.is_empty(),
            "no table {table:?} in {}",
            self.path.display()
        );
        Ok(cols)
    }

    /// Every row of `table`.
    pub fn rows(&self, table: &str) -> anyhow::Result<Vec<Row>> {
        self.select(&format!("SELECT * FROM {}", quote(table)), [])
    }

    /// The rows of `table` whose `column` equals `value`.
    pub fn rows_where(&self, table: &str, column: &str, value: &str) -> anyhow::Result<Vec<Row>> {
        self.select(
            &format!(
                "SELECT * FROM {} WHERE {} = ?1",
                quote(table),
                quote(column)
            ),
            [value],
        )
    }

    fn select<P: rusqlite::Params>(&self, sql: &str, params: P) -> anyhow::Result<Vec<Row>> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .with_context(|| format!("{sql} on {}", self.path.display()))?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let rows = stmt
            .query_map(params, |r| {
                let mut row = Vec::with_capacity(names.len());
                for (i, n) in names.iter().enumerate() {
                    row.push((n.clone(), Cell::from_ref(r.get_ref(i)?)));
                }
                Ok(Row(row))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every text or blob value in the database, with where it sits.
    pub fn all_values(&self) -> anyhow::Result<Vec<Located>> {
        let mut out = Vec::new();
        for table in self.tables()? {
            for (i, row) in self.rows(&table)?.into_iter().enumerate() {
                for (column, cell) in row.0 {
                    if cell.bytes().is_some_and(|b| !b.is_empty()) {
                        out.push(Located {
                            table: table.clone(),
                            row: i,
                            column,
                            cell,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A stored value and its place.
#[derive(Clone, Debug)]
pub struct Located {
    pub table: String,
    /// The row's position in the table (not a key: rows have no common key).
    pub row: usize,
    pub column: String,
    pub cell: Cell,
}

impl Located {
    pub fn place(&self) -> String {
        format!("{}.{} (row {})", self.table, self.column, self.row + 1)
    }
}

/// An identifier quoted for SQL (names come from the file itself, not from users).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The files SQLite keeps for `db`: the database and whichever of its rollback journal,
/// write-ahead log and WAL index exist now. A secret can sit in any of them.
pub fn files_of(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_owned()];
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let p = PathBuf::from(name);
        if p.exists() {
            files.push(p);
        }
    }
    files
}

/// The permission bits of `path` (`0o600` for owner read-write only).
pub fn mode_of(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading the metadata of {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777)
}

#[cfg(test)]
mod tests;
