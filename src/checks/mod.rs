//! The catalogue: every check as a plain async function in a static table with a stable ID.
//!
//! A check states the behaviour it expects and its source (`spec`), observes the live
//! system through its [`CheckCtx`], and returns a [`Verdict`]. Any `Err` it returns
//! (a failed `ensure!`, a broken call) is a failure whose message is the error chain.
//! Checks never know which backend runs the stack.

mod admin_clients;
mod cimd;
mod ctx;
mod dcr;
mod exchange;
mod flows;
mod mcp;
mod pkce;
mod realm;
mod rs;
pub(crate) mod storage;
mod token;

use std::future::Future;
use std::pin::Pin;

pub use crate::session::NotApplicable;
pub use crate::stack::Need;
pub use ctx::CheckCtx;

/// The areas of the catalogue, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Area {
    Realm,
    Dcr,
    Pkce,
    Token,
    Exchange,
    Rs,
    Mcp,
    Storage,
}

impl Area {
    pub const ALL: [Area; 8] = [
        Area::Realm,
        Area::Dcr,
        Area::Pkce,
        Area::Token,
        Area::Exchange,
        Area::Rs,
        Area::Mcp,
        Area::Storage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Area::Realm => "REALM",
            Area::Dcr => "DCR",
            Area::Pkce => "PKCE",
            Area::Token => "TOKEN",
            Area::Exchange => "EXCHANGE",
            Area::Rs => "RS",
            Area::Mcp => "MCP",
            Area::Storage => "STORAGE",
        }
    }
}

/// What a check is about: the component whose behaviour it judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    Keycloak,
    McpServer,
    ResourceServer,
    Realm,
}

impl Subject {
    pub fn name(self) -> &'static str {
        match self {
            Subject::Keycloak => "keycloak",
            Subject::McpServer => "mcp-server",
            Subject::ResourceServer => "resource-server",
            Subject::Realm => "realm",
        }
    }
}

/// What a check concluded.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The expected behaviour was observed; the text says what was seen.
    Pass(String),
    /// The check could not run; the text says why. Under `CI=true` a skip fails the run
    /// unless an expectation pins it (`[[expected_skip]]`): a release may lack what a check
    /// tests, but that is a fact to pin, not to pass over.
    Skip(String),
}

/// The result type of a check body: `Err` is a failure.
pub type CheckResult = anyhow::Result<Verdict>;

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// A check function.
pub type CheckFn = for<'a> fn(&'a CheckCtx) -> CheckFuture<'a>;

/// One entry of the catalogue.
#[derive(Clone, Copy)]
pub struct Check {
    /// Stable, never reused: area plus number (`DCR-03`).
    pub id: &'static str,
    pub title: &'static str,
    pub area: Area,
    /// The clause the expected behaviour comes from, e.g. `RFC7592-2.3`.
    pub spec: &'static str,
    pub subject: Subject,
    pub needs: &'static [Need],
    /// The revisions of the MCP authorization specification (and its Streamable HTTP
    /// transport) that state the requirement the check tests, among [`SPEC_REVISIONS`];
    /// empty for a check of Keycloak or of the deployment that no MCP revision states.
    pub spec_revisions: &'static [&'static str],
    pub run: CheckFn,
}

/// The MCP specification revisions a check can belong to, oldest first.
pub const SPEC_REVISIONS: [&str; 3] = ["2025-06-18", "2025-11-25", "2026-07-28"];
/// Stated by every revision.
pub const ALL_REVISIONS: &[&str] = &SPEC_REVISIONS;
/// First stated by 2025-11-25 and kept by 2026-07-28.
pub const SINCE_2025_11_25: &[&str] = &["2025-11-25", "2026-07-28"];
/// First stated by 2026-07-28.
pub const SINCE_2026_07_28: &[&str] = &["2026-07-28"];
/// Stated by 2025-06-18 and 2025-11-25 only: protocol-level sessions (`Mcp-Session-Id`),
/// which 2026-07-28 removed.
pub const UNTIL_2025_11_25: &[&str] = &["2025-06-18", "2025-11-25"];
/// No MCP revision states it: Keycloak's own behaviour, or the deployment's.
pub const NO_REVISION: &[&str] = &[];

impl Check {
    /// The same check, belonging to `revisions` (see [`Check::spec_revisions`]).
    pub const fn revisions(mut self, revisions: &'static [&'static str]) -> Self {
        self.spec_revisions = revisions;
        self
    }

    /// Whether the check belongs to revision `r`.
    pub fn belongs_to(&self, r: &str) -> bool {
        self.spec_revisions.contains(&r)
    }

    /// The trial name: `<ID> <title>`, so libtest's substring filter works on both.
    pub fn trial_name(&self) -> String {
        format!("{} {}", self.id, self.title)
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("id", &self.id).finish()
    }
}

/// Turns `async fn name(ctx: &CheckCtx) -> CheckResult` into a [`CheckFn`].
#[macro_export]
#[doc(hidden)]
macro_rules! check_fn {
    ($f:path) => {{
        fn run<'a>(ctx: &'a $crate::checks::CheckCtx) -> $crate::checks::CheckFuture<'a> {
            Box::pin($f(ctx))
        }
        run
    }};
}

/// A check cannot judge its property because another check of the catalogue did not pass
/// (the MCP server did not start: MCP-01). Return it as an error (`?` works); the runner
/// reports the check `blocked` by `by`, and after the run verifies that `by` ran and did
/// not pass, else the check fails: nothing is blocked by accident.
#[derive(Debug, thiserror::Error)]
#[error("blocked by {by}: {why}")]
pub struct Blocked {
    pub by: &'static str,
    pub why: String,
}

/// `Err(Blocked)` for a check body.
pub fn blocked(by: &'static str, why: impl Into<String>) -> CheckResult {
    Err(Blocked {
        by,
        why: why.into(),
    }
    .into())
}

/// Passes with a message.
pub fn pass(msg: impl Into<String>) -> CheckResult {
    Ok(Verdict::Pass(msg.into()))
}

/// Skips with a reason.
pub fn skip(reason: impl Into<String>) -> CheckResult {
    Ok(Verdict::Skip(reason.into()))
}

/// The whole catalogue, in report order.
pub fn catalogue() -> Vec<Check> {
    [
        realm::CHECKS,
        dcr::CHECKS,
        pkce::CHECKS,
        token::CHECKS,
        exchange::CHECKS,
        rs::CHECKS,
        mcp::CHECKS,
        storage::CHECKS,
    ]
    .concat()
}

/// `docs/catalogue.md`: the catalogue as a table per area, generated from [`catalogue`].
pub fn catalogue_markdown() -> String {
    let mut md = String::from(
        "# Catalogue\n\nGenerated from the check table (`src/checks/`); a test fails when this file is stale \
         (`UPDATE_DOCS=1 cargo test --test docs` rewrites it). Each check states the behaviour it expects and \
         the clause that behaviour comes from; `component` is what the check judges. `MCP revisions` names the \
         revisions of the MCP authorization specification (with its Streamable HTTP transport) that state the \
         requirement the check tests; `run --spec-revision R` runs those of R. A dash: no MCP revision states it \
         (Keycloak's own behaviour, or the deployment's).\n",
    );
    let counts: Vec<String> = SPEC_REVISIONS
        .iter()
        .map(|r| {
            let n = catalogue().iter().filter(|c| c.belongs_to(r)).count();
            format!("{r}: {n}")
        })
        .collect();
    md.push_str(&format!(
        "\n{} checks; per MCP revision: {}.\n",
        catalogue().len(),
        counts.join(", ")
    ));
    for area in Area::ALL {
        let checks: Vec<Check> = catalogue().into_iter().filter(|c| c.area == area).collect();
        if checks.is_empty() {
            continue;
        }
        md.push_str(&format!(
            "\n## {}\n\n| ID | title | spec | MCP revisions | component | needs |\n|---|---|---|---|---|---|\n",
            area.name()
        ));
        for c in checks {
            let needs: Vec<&str> = c.needs.iter().map(|n| n.name()).collect();
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                c.id,
                crate::markdown::cell(c.title),
                c.spec,
                revisions_cell(c.spec_revisions),
                c.subject.name(),
                if needs.is_empty() {
                    "keycloak".to_owned()
                } else {
                    format!("keycloak, {}", needs.join(", "))
                }
            ));
        }
    }
    md
}

/// A table cell for a check's revisions: `2025-06-18, 2025-11-25`, or `–` for none.
pub fn revisions_cell(revisions: &[&str]) -> String {
    if revisions.is_empty() {
        "–".to_owned()
    } else {
        revisions.join(", ")
    }
}

/// `--spec-revision`'s value: one of [`SPEC_REVISIONS`].
pub fn spec_revision_arg(s: &str) -> Result<String, String> {
    if SPEC_REVISIONS.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "unknown MCP specification revision {s:?}; the known revisions are {}",
            SPEC_REVISIONS.join(", ")
        ))
    }
}

/// A parsed `--only` selection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub areas: Vec<Area>,
    pub ids: Vec<String>,
}

impl Selection {
    /// Parses `REALM,DCR-03`: area names (upper case, exact) and check IDs (exact).
    pub fn parse(spec: &str, catalogue: &[Check]) -> Result<Self, String> {
        let mut sel = Selection::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(area) = Area::ALL.iter().find(|a| a.name() == item) {
                sel.areas.push(*area);
            } else if catalogue.iter().any(|c| c.id == item) {
                sel.ids.push(item.to_owned());
            } else {
                let areas: Vec<&str> = Area::ALL.iter().map(|a| a.name()).collect();
                return Err(format!(
                    "--only: unknown area or check ID {item:?}; areas are {} and IDs look like \
                     REALM-01 (see `run --list`)",
                    areas.join(", ")
                ));
            }
        }
        if sel.areas.is_empty() && sel.ids.is_empty() {
            return Err("--only: empty selection".into());
        }
        Ok(sel)
    }

    pub fn matches(&self, check: &Check) -> bool {
        self.areas.contains(&check.area) || self.ids.iter().any(|i| i == check.id)
    }
}

/// The checks that compare what they observe with a committed pin
/// (`fixtures/snapshots/`, see [`crate::pins`]): the ones `mcp-authz-harness pin` runs.
pub const PINNING_CHECKS: &[&str] = &["MCP-10", "STORAGE-13"];

/// What `pin --only SPEC` runs: the pinning checks among the selection (all of them
/// without one). A check ID that keeps no pin is a usage error, as is a selection
/// holding no pinning check.
pub fn pinning_selection(spec: Option<&str>, catalogue: &[Check]) -> Result<Vec<Check>, String> {
    let pinning = |c: &&Check| PINNING_CHECKS.contains(&c.id);
    let Some(spec) = spec else {
        return Ok(catalogue.iter().filter(pinning).copied().collect());
    };
    let sel = Selection::parse(spec, catalogue)?;
    let listed = PINNING_CHECKS.join(", ");
    if let Some(id) = sel
        .ids
        .iter()
        .find(|i| !PINNING_CHECKS.contains(&i.as_str()))
    {
        return Err(format!(
            "--only: {id} keeps no pin; the checks that do are {listed}"
        ));
    }
    let chosen: Vec<Check> = catalogue
        .iter()
        .filter(pinning)
        .filter(|c| sel.matches(c))
        .copied()
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "--only {spec:?} selects no check that keeps a pin; those are {listed}"
        ));
    }
    Ok(chosen)
}

/// The components the given checks need.
pub fn needs_of(checks: &[Check]) -> Vec<Need> {
    let mut needs: Vec<Need> = checks
        .iter()
        .flat_map(|c| c.needs.iter().copied())
        .collect();
    needs.sort();
    needs.dedup();
    needs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_prefixed_by_their_area() {
        let cat = catalogue();
        let mut ids: Vec<&str> = cat.iter().map(|c| c.id).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate check IDs");
        for c in &cat {
            let (area, num) = c.id.split_once('-').expect("ID has the form AREA-NN");
            assert_eq!(area, c.area.name(), "{}", c.id);
            assert!(
                num.len() == 2 && num.chars().all(|d| d.is_ascii_digit()),
                "{}",
                c.id
            );
            assert!(!c.spec.is_empty() && !c.title.is_empty(), "{}", c.id);
        }
    }

    #[test]
    fn revisions_are_known_in_order_and_keycloak_only_areas_name_none() {
        for c in catalogue() {
            let pos: Vec<usize> = (c.spec_revisions.iter())
                .map(|r| {
                    SPEC_REVISIONS
                        .iter()
                        .position(|k| k == r)
                        .unwrap_or_else(|| panic!("{}: unknown revision {r}", c.id))
                })
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "{}: {pos:?}", c.id);
            if matches!(c.area, Area::Exchange | Area::Rs) {
                assert!(c.spec_revisions.is_empty(), "{}", c.id);
            }
        }
        assert!(spec_revision_arg("2026-07-28").is_ok());
        let e = spec_revision_arg("1999-01-01").unwrap_err();
        assert!(e.contains("2025-06-18, 2025-11-25, 2026-07-28"), "{e}");
        assert_eq!(revisions_cell(&[]), "–");
    }

    #[test]
    fn selection_accepts_areas_and_ids_and_refuses_unknown_names() {
        let cat = catalogue();
        let sel = Selection::parse("REALM,REALM-02", &cat).unwrap();
        assert_eq!(sel.areas, vec![Area::Realm]);
        assert_eq!(sel.ids, vec!["REALM-02".to_owned()]);
        assert!(
            Selection::parse("realm", &cat)
                .unwrap_err()
                .contains("unknown area")
        );
        assert!(Selection::parse("REALM-99", &cat).is_err());
        assert!(Selection::parse(" , ", &cat).is_err());
    }

    #[test]
    fn pin_runs_only_checks_that_keep_a_pin() {
        let cat = catalogue();
        let ids = |spec| -> Vec<&str> {
            pinning_selection(spec, &cat)
                .unwrap()
                .iter()
                .map(|c| c.id)
                .collect()
        };
        assert_eq!(ids(None), PINNING_CHECKS);
        assert_eq!(ids(Some("MCP")), ["MCP-10"]);
        assert_eq!(ids(Some("STORAGE-13,MCP-10")), PINNING_CHECKS);
        assert!(
            pinning_selection(Some("MCP-10,STORAGE-07"), &cat)
                .unwrap_err()
                .contains("STORAGE-07 keeps no pin")
        );
        assert!(
            pinning_selection(Some("REALM"), &cat)
                .unwrap_err()
                .contains("selects no check that keeps a pin")
        );
    }
}
