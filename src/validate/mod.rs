//! The live half of `validate-realm`: the changed realm and the baseline, each with what
//! the catalogue needs added ([`crate::keycloak::augment`]), imported as two realms into
//! one fresh Keycloak, each with a resource server and an MCP server of its own configured
//! against it; the whole catalogue runs on both and the results are compared check by
//! check, and the tool-to-scope maps the two MCP servers show tool by tool.

mod compare;
mod live;
mod render;
mod scope_map;

use serde::Serialize;
use serde_json::{Map, Value};

pub use compare::{Change, CheckDiff, compare, ids_with};
pub use live::{LiveOptions, run, selection};
pub use scope_map::ToolChange;

/// What the live diff ran and found (the `live` object of `validate-realm`'s JSON).
#[derive(Clone, Debug, Serialize)]
pub struct LiveDetails {
    /// The Keycloak version both realms ran on.
    pub keycloak: String,
    /// The selection, as `--only` would write it.
    pub selection: String,
    /// Seconds from the start of the live diff to its reports.
    pub seconds: f64,
    pub baseline: Side,
    pub changed: Side,
    pub checks: Vec<CheckDiff>,
    /// Tools whose needed scopes differ between the two realms' MCP servers (`None`: a
    /// side derived no map, see MCP-10).
    pub scope_map: Option<Vec<ToolChange>>,
    /// Problems of the run itself: teardown left something, a secret in a report,
    /// a stale expectation. Each fails `validate-realm`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// The signal that stopped the run, if one did (unfinished checks are skips).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// One of the two realms.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    /// Its name in the Keycloak the diff ran on.
    pub realm: String,
    /// The file it came from.
    pub file: String,
    /// Where its `report.json`, `report.md` and `junit.xml` are.
    pub report_dir: String,
    /// What was added to it before import (see [`crate::keycloak::augment`]).
    pub added: Vec<String>,
    /// Count of checks per status.
    pub summary: Map<String, Value>,
}

impl LiveDetails {
    pub fn ids_with(&self, change: Change) -> Vec<String> {
        ids_with(&self.checks, change)
    }

    pub fn to_text(&self) -> String {
        render::text(self)
    }

    pub fn to_markdown(&self) -> String {
        render::markdown(self)
    }

    pub fn to_junit_suite(&self, file: &str) -> quick_junit::TestSuite {
        render::junit_suite(self, file)
    }
}
