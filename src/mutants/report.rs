//! The mutant × check matrix: which mutant each check caught, the score, and the checks
//! no mutant kills with the reason why (strict both ways, like expectations).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::Mutant;
use crate::markdown::cell;
use crate::report::Status;

/// What one mutant run showed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MutantOutcome {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub runs: String,
    pub kills: Vec<String>,
    /// Each check it ran, with its status there.
    pub statuses: BTreeMap<String, Status>,
    pub killed: bool,
    /// Why it was not killed: the checks that should have failed and did not, a check
    /// that passed under a fault, or why the mutant could not run.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub survived_because: Vec<String>,
    pub seconds: f64,
}

impl MutantOutcome {
    /// Judges `mutant` by the statuses it got and the baseline's.
    pub fn judge(
        mutant: &Mutant,
        statuses: BTreeMap<String, Status>,
        baseline: &BTreeMap<String, Status>,
        seconds: f64,
    ) -> Self {
        let mut why = Vec::new();
        if mutant.kills.is_empty() {
            why.extend(
                statuses
                    .iter()
                    .filter(|(_, s)| **s == Status::Pass)
                    .map(|(id, _)| format!("{id} passed under the fault")),
            );
            if !statuses.values().any(|s| *s == Status::Fail) {
                why.push("no check failed".to_owned());
            }
        }
        for k in mutant.kills {
            match (baseline.get(*k), statuses.get(*k)) {
                (Some(Status::Pass), Some(Status::Fail)) => {}
                (Some(Status::Pass), got) => why.push(format!(
                    "{k} did not fail ({})",
                    got.map_or("not run", |s| s.name())
                )),
                (base, _) => why.push(format!(
                    "{k} did not pass on the baseline ({})",
                    base.map_or("not run", |s| s.name())
                )),
            }
        }
        Self {
            id: mutant.id.to_owned(),
            title: mutant.title.to_owned(),
            kind: mutant.kind().to_owned(),
            runs: mutant.runs.to_owned(),
            kills: mutant.kills.iter().map(|k| (*k).to_owned()).collect(),
            killed: why.is_empty(),
            survived_because: why,
            statuses,
            seconds,
        }
    }

    /// A mutant that could not run at all.
    pub fn not_run(mutant: &Mutant, why: String) -> Self {
        let mut out = Self::judge(mutant, BTreeMap::new(), &BTreeMap::new(), 0.0);
        out.killed = false;
        out.survived_because = vec![format!("it did not run: {why}")];
        out
    }

    /// Checks this mutant killed: they pass on the baseline and fail here (faults kill
    /// nothing: they show that no check passes on a broken transport).
    pub fn killed_checks<'a>(
        &'a self,
        baseline: &'a BTreeMap<String, Status>,
    ) -> impl Iterator<Item = &'a String> {
        let defect = self.kind != "fault";
        self.statuses.iter().filter_map(move |(id, s)| {
            (defect && *s == Status::Fail && baseline.get(id) == Some(&Status::Pass)).then_some(id)
        })
    }
}

/// One check's coverage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Coverage {
    pub id: String,
    pub baseline: Option<Status>,
    pub killed_by: Vec<String>,
    /// Why no mutant can kill it here (from `fixtures/mutation/unkillable.toml`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unkillable: Option<String>,
}

/// The whole self-test (`mutation.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MutationReport {
    pub schema_version: u32,
    pub run_id: String,
    pub finished_at: String,
    pub components: BTreeMap<String, String>,
    pub baseline: BTreeMap<String, Status>,
    pub mutants: Vec<MutantOutcome>,
    pub checks: Vec<Coverage>,
    pub seconds: f64,
    /// Problems of the run itself (teardown, an interruption).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub problems: Vec<String>,
    /// Checks neither killed nor given a reason, and reasons given for killed checks.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub coverage_problems: Vec<String>,
}

impl MutationReport {
    pub fn killed(&self) -> usize {
        self.mutants.iter().filter(|m| m.killed).count()
    }

    /// Whether the self-test holds: every mutant killed, every check killed or listed
    /// with its reason (and no reason listed for a check that was killed), no problem.
    pub fn holds(&self) -> bool {
        self.killed() == self.mutants.len()
            && self.problems.is_empty()
            && self.coverage_problems.is_empty()
    }

    /// Fills `checks` from the outcomes and the unkillable list (anew: the docs render a
    /// committed run with today's reasons), with a coverage problem for each check neither
    /// killed nor listed, and each listed check that was killed.
    pub fn cover(&mut self, all: &[&str], unkillable: &BTreeMap<String, String>) {
        self.coverage_problems.clear();
        self.checks = all
            .iter()
            .map(|id| {
                let killed_by = (self.mutants.iter())
                    .filter(|m| m.killed_checks(&self.baseline).any(|k| k == id))
                    .map(|m| m.id.clone())
                    .collect();
                Coverage {
                    id: (*id).to_owned(),
                    baseline: self.baseline.get(*id).copied(),
                    killed_by,
                    unkillable: unkillable.get(*id).cloned(),
                }
            })
            .collect();
        for c in &self.checks {
            match (c.killed_by.is_empty(), &c.unkillable) {
                (true, None) => self.coverage_problems.push(format!(
                    "{} is killed by no mutant and fixtures/mutation/unkillable.toml gives no reason",
                    c.id
                )),
                (false, Some(_)) => self.coverage_problems.push(format!(
                    "{} is killed by {}: remove it from fixtures/mutation/unkillable.toml",
                    c.id,
                    c.killed_by.join(", ")
                )),
                _ => {}
            }
        }
        for id in unkillable.keys().filter(|id| !all.contains(&id.as_str())) {
            self.coverage_problems.push(format!(
                "fixtures/mutation/unkillable.toml names {id}, which the catalogue does not have"
            ));
        }
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(dir.join("mutation.json"), json)?;
        std::fs::write(dir.join("mutation.md"), markdown(self))?;
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnkillableFile {
    check: Vec<UnkillableEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnkillableEntry {
    id: String,
    reason: String,
}

/// `fixtures/mutation/unkillable.toml`: check ID → why no mutant kills it here.
pub fn unkillable_reasons(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: UnkillableFile = toml::from_str(&text).with_context(|| {
        format!(
            "{}: not a valid list ([[check]] entries with id and reason)",
            path.display()
        )
    })?;
    Ok(file.check.into_iter().map(|e| (e.id, e.reason)).collect())
}

/// `mutation.md` (and `docs/mutation.md`, from a committed run).
pub fn markdown(r: &MutationReport) -> String {
    let mut md = String::from(
        "# Mutation self-test\n\nGenerated from a committed run (`fixtures/mutation/mutation.json`) by \
         `mcp-authz-harness mutants`; a test fails when this file is stale \
         (`UPDATE_DOCS=1 cargo test --test docs` rewrites it). Each mutant is a deliberately broken \
         deployment and names the checks that must fail on it; a fault mutant cuts the harness off \
         one component, and none of the checks it runs may pass.\n",
    );
    let _ = writeln!(
        md,
        "\n**{} of {} mutants killed**; {} of {} checks killed by at least one mutant, the others \
         listed below with the reason no mutant can kill them here. Run `{}` in {:.0} s against {}.\n",
        r.killed(),
        r.mutants.len(),
        r.checks.iter().filter(|c| !c.killed_by.is_empty()).count(),
        r.checks.len(),
        r.run_id,
        r.seconds,
        r.components
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md.push_str(
        "## Mutants\n\n| mutant | kind | defect | must fail | outcome |\n|---|---|---|---|---|\n",
    );
    for m in &r.mutants {
        let outcome = if m.killed {
            "killed".to_owned()
        } else {
            format!("**survived**: {}", m.survived_because.join("; "))
        };
        let must = if m.kills.is_empty() {
            format!("none of {} may pass", m.runs)
        } else {
            m.kills.join(", ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            m.id,
            m.kind,
            cell(&m.title),
            cell(&must),
            cell(&outcome)
        );
    }
    md.push_str(
        "\n## Checks\n\n| check | baseline | killed by | or why not |\n|---|---|---|---|\n",
    );
    for c in &r.checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            c.id,
            c.baseline.map_or("not run", |s| s.name()),
            c.killed_by.join(", "),
            cell(c.unkillable.as_deref().unwrap_or(""))
        );
    }
    for p in r.problems.iter().chain(&r.coverage_problems) {
        let _ = writeln!(md, "\n**problem**: {}", cell(p));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutants::MUTANTS;

    fn statuses(pairs: &[(&str, Status)]) -> BTreeMap<String, Status> {
        pairs.iter().map(|(k, s)| ((*k).to_owned(), *s)).collect()
    }

    fn mutant(id: &str) -> &'static Mutant {
        MUTANTS.iter().find(|m| m.id == id).unwrap()
    }

    #[test]
    fn a_mutant_is_killed_only_when_each_named_check_goes_from_pass_to_fail() {
        let m = mutant("M-RS-ALG-NONE");
        let base = statuses(&[("RS-05", Status::Pass), ("RS-01", Status::Pass)]);
        let caught = MutantOutcome::judge(m, statuses(&[("RS-05", Status::Fail)]), &base, 1.0);
        assert!(caught.killed);
        for got in [Status::Pass, Status::Skip, Status::Blocked, Status::Xfail] {
            let out = MutantOutcome::judge(m, statuses(&[("RS-05", got)]), &base, 1.0);
            assert!(!out.killed, "{got:?} is not a kill");
        }
        let failing_base = statuses(&[("RS-05", Status::Xfail)]);
        let out = MutantOutcome::judge(m, statuses(&[("RS-05", Status::Fail)]), &failing_base, 1.0);
        assert!(
            !out.killed,
            "a check failing on the baseline proves nothing"
        );
    }

    #[test]
    fn a_fault_mutant_survives_when_any_check_passes() {
        let m = mutant("M-FAULT-RS-5XX");
        let base = statuses(&[("RS-01", Status::Pass), ("RS-02", Status::Pass)]);
        let all_fail = statuses(&[("RS-01", Status::Fail), ("RS-02", Status::Blocked)]);
        assert!(MutantOutcome::judge(m, all_fail, &base, 1.0).killed);
        let one_pass = statuses(&[("RS-01", Status::Fail), ("RS-02", Status::Pass)]);
        let out = MutantOutcome::judge(m, one_pass, &base, 1.0);
        assert!(!out.killed);
        assert_eq!(out.survived_because, ["RS-02 passed under the fault"]);
    }

    #[test]
    fn coverage_is_strict_both_ways() {
        let m = mutant("M-RS-ALG-NONE");
        let base = statuses(&[("RS-05", Status::Pass), ("RS-01", Status::Pass)]);
        let out = MutantOutcome::judge(m, statuses(&[("RS-05", Status::Fail)]), &base, 1.0);
        let mut r = MutationReport {
            schema_version: 1,
            run_id: "r".into(),
            finished_at: String::new(),
            components: BTreeMap::new(),
            baseline: base,
            mutants: vec![out],
            checks: Vec::new(),
            seconds: 1.0,
            problems: Vec::new(),
            coverage_problems: Vec::new(),
        };
        let reasons: BTreeMap<String, String> = [("RS-05".to_owned(), "r".to_owned())].into();
        r.cover(&["RS-01", "RS-05"], &reasons);
        let found = &r.coverage_problems;
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("RS-01 is killed by no mutant"));
        assert!(found[1].contains("RS-05 is killed by M-RS-ALG-NONE"));
        assert!(!r.holds());
    }

    #[test]
    fn the_committed_unkillable_list_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mutation/unkillable.toml");
        let reasons = unkillable_reasons(&path).unwrap();
        let all = crate::checks::catalogue();
        for id in reasons.keys() {
            assert!(all.iter().any(|c| c.id == id), "{id} is not a check");
        }
    }
}
