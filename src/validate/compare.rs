//! Check by check: what the catalogue says about the changed realm next to the baseline.

use serde::Serialize;

use crate::report::{CheckReport, Status};

/// How a check's result moved from the baseline realm to the changed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Passes on the baseline, fails on the changed realm: the change broke it.
    Regression,
    /// Fails on the baseline, passes on the changed realm.
    Fix,
    /// Cannot run on the changed realm (a client or user it needs is missing): not a
    /// regression, but nothing is known about it either.
    NotApplicable,
    /// The same status on both.
    Unchanged,
    /// Another difference (a skip on one side for another reason than the realm).
    Differs,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Regression => "regression",
            Change::Fix => "fix",
            Change::NotApplicable => "not applicable",
            Change::Unchanged => "unchanged",
            Change::Differs => "differs",
        }
    }
}

/// One check on both realms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckDiff {
    pub id: String,
    pub title: String,
    pub baseline: Status,
    pub changed: Status,
    pub change: Change,
    /// The changed side's message: why it failed or was skipped, or what it saw.
    pub detail: String,
}

/// Pairs the two sides' results by check ID, in the baseline's order. A check missing on
/// either side is left out (both sides run the same selection).
pub fn compare(baseline: &[CheckReport], changed: &[CheckReport]) -> Vec<CheckDiff> {
    baseline
        .iter()
        .filter_map(|b| {
            let c = changed.iter().find(|c| c.id == b.id)?;
            Some(CheckDiff {
                id: b.id.clone(),
                title: b.title.clone(),
                baseline: b.status,
                changed: c.status,
                change: classify(b, c),
                detail: c.detail.clone(),
            })
        })
        .collect()
}

fn classify(baseline: &CheckReport, changed: &CheckReport) -> Change {
    let passes = |s: Status| matches!(s, Status::Pass | Status::Xpass);
    let fails = |s: Status| matches!(s, Status::Fail | Status::Xfail);
    let (b, c) = (baseline.status, changed.status);
    if c == Status::Skip && is_not_applicable(&changed.detail) {
        Change::NotApplicable
    } else if passes(b) && fails(c) {
        Change::Regression
    } else if fails(b) && passes(c) {
        Change::Fix
    } else if b == c {
        Change::Unchanged
    } else {
        Change::Differs
    }
}

/// Whether a skip says the check does not apply to the realm (see `checks::NotApplicable`).
fn is_not_applicable(detail: &str) -> bool {
    detail.starts_with("not applicable")
}

/// The IDs of the checks with `change`, in order.
pub fn ids_with(diffs: &[CheckDiff], change: Change) -> Vec<String> {
    diffs
        .iter()
        .filter(|d| d.change == change)
        .map(|d| d.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::catalogue;

    fn result(id: &str, status: Status, detail: &str) -> CheckReport {
        let check = catalogue().into_iter().find(|c| c.id == id).unwrap();
        CheckReport::new(&check, status, detail.into())
    }

    #[test]
    fn each_pair_of_statuses_lands_in_one_list() {
        use Status::*;
        let na = "not applicable: the realm file defines no client \"nextcloud-mcp-server\"";
        let pairs = [
            ("REALM-01", Pass, Pass, "", Change::Unchanged),
            ("REALM-02", Pass, Fail, "boom", Change::Regression),
            ("REALM-03", Xfail, Pass, "", Change::Fix),
            ("REALM-04", Pass, Xfail, "known", Change::Regression),
            ("REALM-05", Pass, Skip, na, Change::NotApplicable),
            ("DCR-01", Skip, Skip, na, Change::NotApplicable),
            ("DCR-02", Fail, Fail, "still", Change::Unchanged),
            ("DCR-03", Pass, Skip, "no browser here", Change::Differs),
            ("DCR-04", Skip, Fail, "boom", Change::Differs),
        ];
        let baseline: Vec<_> = pairs.iter().map(|p| result(p.0, p.1, "")).collect();
        let changed: Vec<_> = pairs.iter().map(|p| result(p.0, p.2, p.3)).collect();
        let diffs = compare(&baseline, &changed);
        let got: Vec<(&str, Change)> = diffs.iter().map(|d| (d.id.as_str(), d.change)).collect();
        let want: Vec<(&str, Change)> = pairs.iter().map(|p| (p.0, p.4)).collect();
        assert_eq!(got, want);
        assert_eq!(
            ids_with(&diffs, Change::Regression),
            ["REALM-02", "REALM-04"]
        );
        assert_eq!(diffs[1].detail, "boom", "the changed side's detail");
    }

    #[test]
    fn a_check_missing_on_one_side_is_left_out() {
        let baseline = vec![result("REALM-01", Status::Pass, "")];
        assert!(compare(&baseline, &[]).is_empty());
    }
}
