//! The raw results of `repro impersonation`, as written by `--out FILE` and committed
//! under `fixtures/repro/`.
//!
//! Schema (`schema_version: 1`), one JSON object:
//!
//! - `schema_version`: 1.
//! - `tool`: `"mcp-authz-harness repro impersonation"`; `harness_version`: the crate version.
//! - `command_line`: the command as run (program name without its directory).
//! - `date`: the start of the run, RFC 3339 UTC.
//! - `keycloak_version`: the version asked for (each boot also records the version it ran).
//! - `realm`: the repro realm's name; `notes`: sentences the rendering shows under the table.
//! - `boots[]`: one per Keycloak boot, in order: `id` (`standard` | `legacy`), `title`,
//!   `requested` and `used` build options (`features`, `features_disabled`; they differ
//!   when the legacy boot fell back to leaving V2 enabled), `fallback` (why, or null),
//!   `keycloak_version`, `java`, `argv` (the `kc.sh` command lines), `features_enabled`
//!   (serverinfo `features[].name` with `enabled: true`: Java enum names such as
//!   `TOKEN_EXCHANGE_STANDARD_V2`), `boot_seconds`, `error` (the boot error, or null).
//! - `requests[]`: the requests every column sends: `id`, `title`, `parameters` (the form
//!   fields besides `grant_type` and the client's credentials, values described, never
//!   shown when secret).
//! - `columns[]`: `id` (`v2` | `v1-without-permissions` | `v1-with-permissions`), `title`,
//!   `boot` (a `boots[].id`), `settings` (what the realm and server needed for this column),
//!   `setup[]` (admin API calls made for it: `what`, `method`, `path` with ids, `status`),
//!   `setup_error` (null when the setup completed), `cells[]`.
//! - `cells[]`: `request` (a `requests[].id`), `status` (HTTP status; null when the
//!   request was not sent or broke), `error`, `error_description`, `issued` (claims of an
//!   issued access token: `sub`, `username` (from `preferred_username` or the admin API),
//!   `azp`, `aud`, `scope`, `issued_token_type`, `refresh_token_issued`), `answered_by`
//!   (`standard (V2)` | `legacy (V1)` | `unknown`) and `answered_by_reason` (how that was
//!   told), `note` (why a request was not sent, or a transport failure).
//!
//! No token, password or client secret is ever part of it: issued tokens are reduced to a
//! few decoded claims, and [`super::ensure_no_secrets`] checks the serialized text against
//! every secret value the process registered before it is written.

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImpersonationResults {
    pub schema_version: u32,
    pub tool: String,
    pub harness_version: String,
    pub command_line: Vec<String>,
    pub date: String,
    pub keycloak_version: String,
    pub realm: String,
    pub notes: Vec<String>,
    pub boots: Vec<BootRecord>,
    pub requests: Vec<RequestSpec>,
    pub columns: Vec<ColumnResult>,
}

impl ImpersonationResults {
    pub fn boot(&self, id: &str) -> Option<&BootRecord> {
        self.boots.iter().find(|b| b.id == id)
    }

    /// Whether every boot came up.
    pub fn all_booted(&self) -> bool {
        !self.boots.is_empty() && self.boots.iter().all(|b| b.error.is_none())
    }
}

/// Build-time feature options of one boot.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildRecord {
    pub features: Vec<String>,
    pub features_disabled: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BootRecord {
    pub id: String,
    pub title: String,
    pub requested: BuildRecord,
    pub used: BuildRecord,
    pub fallback: Option<String>,
    pub keycloak_version: Option<String>,
    pub java: Option<String>,
    pub argv: Vec<String>,
    pub features_enabled: Vec<String>,
    pub boot_seconds: Option<f64>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestSpec {
    pub id: String,
    pub title: String,
    pub parameters: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SetupStep {
    pub what: String,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnResult {
    pub id: String,
    pub title: String,
    pub boot: String,
    pub settings: Vec<String>,
    pub setup: Vec<SetupStep>,
    pub setup_error: Option<String>,
    pub cells: Vec<Cell>,
}

impl ColumnResult {
    pub fn cell(&self, request: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.request == request)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub request: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub issued: Option<Issued>,
    pub answered_by: String,
    pub answered_by_reason: String,
    pub note: Option<String>,
}

/// What an issued token says about itself: decoded claims, never the token.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Issued {
    pub sub: Option<String>,
    pub username: Option<String>,
    pub azp: Option<String>,
    pub aud: Vec<String>,
    pub scope: Option<String>,
    pub issued_token_type: Option<String>,
    pub refresh_token_issued: bool,
}
