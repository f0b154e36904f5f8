//! `report merge`: one matrix report from `report.json` files made by separate runs,
//! perhaps on separate machines. A cell is one run, keyed by the Keycloak version, the MCP
//! server release and the backend it ran with; the inputs must name distinct cells.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::CheckResult;
use crate::report::Status;

/// Where a run sits in the matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CellKey {
    pub keycloak: String,
    /// `None` when the run started no MCP server (`components` lists only what ran).
    pub mcp_server: Option<String>,
    pub backend: String,
}

impl CellKey {
    /// The column label: `Keycloak / MCP server / backend`.
    pub fn label(&self) -> String {
        let mcp = self.mcp_server.as_deref().unwrap_or("—");
        format!("{} / {mcp} / {}", self.keycloak, self.backend)
    }

    fn sort_key(&self) -> (Vec<u64>, Vec<u64>, String) {
        let mcp = self.mcp_server.as_deref().unwrap_or_default();
        (
            super::version_key(&self.keycloak),
            super::version_key(mcp),
            self.backend.clone(),
        )
    }
}

/// One run's results, as the matrix keeps them.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    #[serde(flatten)]
    pub key: CellKey,
    pub run_id: String,
    pub finished_at: String,
    pub summary: Map<String, Value>,
    /// The file the cell was read from, as given (or found under a given directory).
    pub source: PathBuf,
    #[serde(skip)]
    pub checks: Vec<CheckResult>,
}

/// Why the inputs cannot be merged; each names the file(s) at fault.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not JSON: {source}", path.display())]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: not a report.json: `{field}` is missing", path.display())]
    Missing { path: PathBuf, field: String },
    #[error("{}: not a report.json: `{field}` is {found}, not {want}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        found: String,
        want: String,
    },
    #[error("{} and {}: both are the cell {}", first.display(), second.display(), key.label())]
    SameCell {
        first: PathBuf,
        second: PathBuf,
        key: CellKey,
    },
    #[error("{}: holds no report.json", path.display())]
    NoReport { path: PathBuf },
}

/// Reads every input (a `report.json`, or a directory searched for files of that name) into
/// cells, sorted by Keycloak version, MCP server release, then backend.
pub fn load(inputs: &[PathBuf]) -> Result<Vec<Cell>, MergeError> {
    let mut cells: Vec<Cell> = Vec::new();
    for file in report_files(inputs)? {
        let cell = read_cell(&file)?;
        if let Some(other) = cells.iter().find(|c| c.key == cell.key) {
            return Err(MergeError::SameCell {
                first: other.source.clone(),
                second: file,
                key: cell.key,
            });
        }
        cells.push(cell);
    }
    cells.sort_by_key(|c| c.key.sort_key());
    Ok(cells)
}

fn report_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, MergeError> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let before = files.len();
        find_reports(input, &mut files).map_err(|source| MergeError::Read {
            path: input.clone(),
            source,
        })?;
        if files.len() == before {
            return Err(MergeError::NoReport {
                path: input.clone(),
            });
        }
    }
    Ok(files)
}

/// Every `report.json` under `dir`, in path order (artifact downloads put each run's
/// report dir in a folder of its own).
fn find_reports(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = (std::fs::read_dir(dir)?)
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            find_reports(&path, out)?;
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one `report.json` (`schema_version` 1), naming the first field it lacks.
pub fn read_cell(path: &Path) -> Result<Cell, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
        path: path.to_owned(),
        source,
    })?;
    let report: Value = serde_json::from_str(&text).map_err(|source| MergeError::NotJson {
        path: path.to_owned(),
        source,
    })?;
    let doc = Doc {
        path,
        root: &report,
    };
    let version = doc.get("schema_version")?;
    if version != 1 {
        return Err(doc.invalid("schema_version", version, "1"));
    }
    let key = CellKey {
        keycloak: doc.text("components.keycloak")?,
        // Absent when the run started no MCP server (`--only REALM`).
        mcp_server: match doc.get("components")?.get("mcp-server") {
            None => None,
            Some(_) => Some(doc.text("components.mcp-server")?),
        },
        backend: doc.text("backend")?,
    };
    let summary = match doc.get("summary")? {
        Value::Object(m) => m.clone(),
        other => return Err(doc.invalid("summary", other, "an object")),
    };
    let checks = match doc.get("checks")? {
        Value::Array(checks) => checks,
        other => return Err(doc.invalid("checks", other, "an array")),
    };
    let checks = (checks.iter().enumerate())
        .map(|(i, c)| doc.check(c, i))
        .collect::<Result<_, _>>()?;
    Ok(Cell {
        key,
        run_id: doc.text("run_id")?,
        finished_at: doc.text("finished_at")?,
        summary,
        source: path.to_owned(),
        checks,
    })
}

/// A report being read, for errors that name the file and the JSON path.
struct Doc<'a> {
    path: &'a Path,
    root: &'a Value,
}

impl Doc<'_> {
    /// The value at a dotted `field` of the report; an error names the first part missing.
    fn get(&self, field: &str) -> Result<&Value, MergeError> {
        let mut v = self.root;
        let mut walked = String::new();
        for part in field.split('.') {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(part);
            v = v.get(part).ok_or_else(|| self.missing(&walked))?;
        }
        Ok(v)
    }

    fn text(&self, field: &str) -> Result<String, MergeError> {
        match self.get(field)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.invalid(field, other, "a string")),
        }
    }

    /// The `i`th check, with a status the harness writes.
    fn check(&self, c: &Value, i: usize) -> Result<CheckResult, MergeError> {
        let text = |f: &str| {
            let field = format!("checks[{i}].{f}");
            match c.get(f) {
                None => Err(self.missing(&field)),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(self.invalid(&field, other, "a string")),
            }
        };
        let status = text("status")?;
        if !Status::ALL.iter().any(|s| s.name() == status) {
            let names: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
            let want = format!("one of {}", names.join(", "));
            return Err(self.invalid(&format!("checks[{i}].status"), &c["status"], &want));
        }
        Ok(CheckResult {
            id: text("id")?,
            title: text("title")?,
            status,
            detail: text("detail")?,
        })
    }

    fn missing(&self, field: &str) -> MergeError {
        MergeError::Missing {
            path: self.path.to_owned(),
            field: field.to_owned(),
        }
    }

    fn invalid(&self, field: &str, found: &Value, want: &str) -> MergeError {
        MergeError::Invalid {
            path: self.path.to_owned(),
            field: field.to_owned(),
            found: found.to_string(),
            want: want.to_owned(),
        }
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
