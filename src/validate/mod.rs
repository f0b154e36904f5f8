//! The live half of `validate-realm`: the changed realm and the baseline, each with what
//! the catalogue needs added ([`crate::keycloak::augment`]), imported as two realms into
//! one fresh Keycloak; the catalogue runs on both and the results are compared check by
//! check.
//!
//! Only the areas that judge the realm and Keycloak run ([`LIVE_AREAS`](live::LIVE_AREAS)): MCP, STORAGE
//! and RS need an MCP server, which is configured against one realm, so one Keycloak with
//! two realms cannot give them a fair comparison.

mod compare;
mod live;
mod render;

use serde::Serialize;
use serde_json::{Map, Value};

pub use compare::{Change, CheckDiff, compare, ids_with};
pub use live::{LiveOptions, run, selection};

/// Why the areas outside [`LIVE_AREAS`](live::LIVE_AREAS) do not run, for the output and the docs.
pub const LEFT_OUT: &str = "MCP, STORAGE and RS are left out: they need an MCP server \
     configured against one realm";

/// What the live diff ran and found (the `live` object of `validate-realm`'s JSON).
#[derive(Clone, Debug, Serialize)]
pub struct LiveDetails {
    /// The Keycloak version both realms ran on.
    pub keycloak: String,
    /// The selection, as `--only` would write it.
    pub selection: String,
    pub left_out: String,
    pub baseline: Side,
    pub changed: Side,
    pub checks: Vec<CheckDiff>,
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
