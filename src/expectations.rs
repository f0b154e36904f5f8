//! Expectations: known deviations of a subject, strict both ways.
//!
//! `fixtures/expectations/<component>/<version>.toml` (for a realm: `realm/<name>.toml`)
//! lists checks expected to fail (`[[expected_failure]]`) or to skip (`[[expected_skip]]`:
//! a release that lacks what a check tests), each with its reason and a regular expression
//! the observed message must match. A listed check that fails (or skips) with a matching
//! message is XFAIL (or a pinned skip); with another message it is a FAIL; a listed check
//! that passes is XPASS (the run fails: the file is stale). A check expected to fail that
//! skips instead says so in its detail. Under `CI=true` an unpinned skip is a failure. An
//! entry naming a check the catalogue does not have is a problem of the run. Entries of
//! checks not selected are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use regex::Regex;
use serde::Deserialize;

use crate::checks::{Check, Subject};
use crate::report::Status;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    expected_failure: Vec<Entry>,
    #[serde(default)]
    expected_skip: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    check: String,
    reason: String,
    message: String,
}

/// What an entry expects of its check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Failure,
    Skip,
}

impl Expected {
    fn table(self) -> &'static str {
        match self {
            Expected::Failure => "expected_failure",
            Expected::Skip => "expected_skip",
        }
    }
}

/// One expectation, loaded.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub check: String,
    pub expected: Expected,
    pub reason: String,
    pub message: Regex,
    pub source: PathBuf,
}

/// All expectations that apply to a run.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    by_check: BTreeMap<String, Expectation>,
    /// Problems found while loading (each fails the run).
    pub problems: Vec<String>,
}

/// The raw outcome of a check before expectations.
#[derive(Clone, Debug, PartialEq)]
pub enum Raw {
    Pass(String),
    Fail(String),
    /// The check decided it could not run (a release lacks what it tests).
    Skip(String),
    /// The realm the user brought lacks what the check needs: never pinned, never strict.
    NotApplicable(String),
}

impl Expectations {
    /// Loads the files for the subjects' versions, e.g. `[(Keycloak, "26.7.3"),
    /// (Realm, "nextcloud-mcp")]`, from `dir` (missing files are fine).
    pub fn load(
        dir: &Path,
        subjects: &[(Subject, String)],
        catalogue: &[Check],
    ) -> anyhow::Result<Self> {
        let mut out = Expectations::default();
        for (subject, version) in subjects {
            let path = dir.join(subject.name()).join(format!("{version}.toml"));
            if !path.exists() {
                continue;
            }
            out.load_file(&path, *subject, catalogue)?;
        }
        Ok(out)
    }

    fn load_file(
        &mut self,
        path: &Path,
        subject: Subject,
        catalogue: &[Check],
    ) -> anyhow::Result<()> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: File = toml::from_str(&text).with_context(|| {
            format!(
                "{}: not a valid expectations file (entries are [[expected_failure]] or [[expected_skip]] with check, reason, message)",
                path.display()
            )
        })?;
        let entries = (file.expected_failure.into_iter())
            .map(|e| (Expected::Failure, e))
            .chain(file.expected_skip.into_iter().map(|e| (Expected::Skip, e)));
        for (expected, e) in entries {
            let Some(check) = catalogue.iter().find(|c| c.id == e.check) else {
                self.problems.push(format!(
                    "{}: names check {} which the catalogue does not have; remove the entry",
                    path.display(),
                    e.check
                ));
                continue;
            };
            if check.subject != subject {
                self.problems.push(format!(
                    "{}: check {} is about {}, not {}; move the entry to that component's file",
                    path.display(),
                    e.check,
                    check.subject.name(),
                    subject.name()
                ));
                continue;
            }
            let message = Regex::new(&e.message).with_context(|| {
                format!(
                    "{}: entry {}: `message` is not a valid regex",
                    path.display(),
                    e.check
                )
            })?;
            self.by_check.insert(
                e.check.clone(),
                Expectation {
                    check: e.check,
                    expected,
                    reason: e.reason,
                    message,
                    source: path.to_owned(),
                },
            );
        }
        Ok(())
    }

    pub fn get(&self, check_id: &str) -> Option<&Expectation> {
        self.by_check.get(check_id)
    }

    /// The final status and detail of a check. With `strict_skips` (`CI=true`), a skip
    /// no `[[expected_skip]]` entry pins is a failure.
    pub fn apply(&self, check_id: &str, raw: Raw, strict_skips: bool) -> (Status, String) {
        let e = self.get(check_id);
        match (raw, e.map(|e| e.expected)) {
            (Raw::NotApplicable(msg), _) => (Status::Skip, msg),
            (Raw::Pass(msg), None) => (Status::Pass, msg),
            (Raw::Fail(msg), None) => (Status::Fail, msg),
            (Raw::Skip(msg), None) => unpinned_skip(msg, strict_skips),
            (Raw::Pass(msg), Some(_)) => (Status::Xpass, self.stale(check_id, &msg)),
            (Raw::Fail(msg), Some(Expected::Failure)) => self.matched(check_id, msg, Status::Xfail),
            (Raw::Skip(msg), Some(Expected::Skip)) => self.matched(check_id, msg, Status::Skip),
            (Raw::Fail(msg), Some(Expected::Skip)) => (
                Status::Fail,
                format!("{msg}\n(failed; {} expects a skip)", self.entry(check_id)),
            ),
            (Raw::Skip(msg), Some(Expected::Failure)) => {
                let (status, _) = unpinned_skip(String::new(), strict_skips);
                (
                    status,
                    format!(
                        "skipped, but {} expects it to fail: {msg}",
                        self.entry(check_id)
                    ),
                )
            }
        }
    }

    /// The expected outcome happened: with a matching message `status`, else a failure.
    fn matched(&self, check_id: &str, msg: String, status: Status) -> (Status, String) {
        let e = &self.by_check[check_id];
        if e.message.is_match(&msg) {
            let detail = format!(
                "{}\nobserved: {msg}\n({} from {})",
                e.reason,
                e.expected.table().replace('_', " "),
                e.source.display()
            );
            return (status, detail);
        }
        (
            Status::Fail,
            format!(
                "{} as {} expects, but with another message; expected /{}/, got: {msg}",
                match e.expected {
                    Expected::Failure => "failed",
                    Expected::Skip => "skipped",
                },
                e.source.display(),
                e.message.as_str()
            ),
        )
    }

    fn stale(&self, check_id: &str, msg: &str) -> String {
        let e = &self.by_check[check_id];
        format!(
            "passed, but {} lists it under [[{}]] ({}); remove the entry if the deviation is gone. \
             Observed: {msg}",
            e.source.display(),
            e.expected.table(),
            e.reason
        )
    }

    /// `<file> ([[table]]: reason)`, naming the entry in a detail.
    fn entry(&self, check_id: &str) -> String {
        let e = &self.by_check[check_id];
        format!(
            "{} ([[{}]]: {})",
            e.source.display(),
            e.expected.table(),
            e.reason
        )
    }
}

/// A skip nothing pins: a failure when skips are strict.
fn unpinned_skip(msg: String, strict: bool) -> (Status, String) {
    if strict {
        let why = "a skip fails under CI=true unless an [[expected_skip]] entry in \
                   fixtures/expectations pins it";
        (Status::Fail, format!("{msg} ({why})"))
    } else {
        (Status::Skip, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::catalogue;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn load(text: &str) -> Expectations {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "keycloak/26.7.3.toml", text);
        Expectations::load(
            dir.path(),
            &[(Subject::Keycloak, "26.7.3".into())],
            &catalogue(),
        )
        .unwrap()
    }

    const ENTRY: &str = r#"
[[expected_failure]]
check = "REALM-02"
reason = "this Keycloak does not advertise it"
message = "grant_types_supported lacks .*token-exchange"
"#;

    #[test]
    fn a_listed_failure_with_a_matching_message_is_xfail() {
        let ex = load(ENTRY);
        let (s, d) = ex.apply(
            "REALM-02",
            Raw::Fail("grant_types_supported lacks urn:...:token-exchange".into()),
            true,
        );
        assert_eq!(s, Status::Xfail);
        assert!(d.starts_with("this Keycloak does not advertise it"), "{d}");
    }

    #[test]
    fn a_listed_failure_with_another_message_is_a_failure() {
        let ex = load(ENTRY);
        let (s, d) = ex.apply("REALM-02", Raw::Fail("issuer differs".into()), true);
        assert_eq!(s, Status::Fail);
        assert!(d.contains("another message"), "{d}");
    }

    #[test]
    fn a_listed_check_that_passes_is_xpass() {
        let ex = load(ENTRY);
        assert_eq!(
            ex.apply("REALM-02", Raw::Pass("ok".into()), true).0,
            Status::Xpass
        );
        assert!(Status::Xpass.fails_run());
    }

    #[test]
    fn unlisted_checks_keep_their_outcome() {
        let ex = load(ENTRY);
        assert_eq!(
            ex.apply("REALM-03", Raw::Fail("x".into()), true).0,
            Status::Fail
        );
        assert_eq!(
            ex.apply("REALM-03", Raw::Pass("x".into()), true).0,
            Status::Pass
        );
    }

    const SKIP: &str = r#"
[[expected_skip]]
check = "REALM-03"
reason = "this Keycloak has no such key"
message = "no RS256 key"
"#;

    #[test]
    fn an_unpinned_skip_fails_only_when_skips_are_strict() {
        let ex = load(ENTRY);
        let (s, d) = ex.apply("REALM-05", Raw::Skip("no client".into()), true);
        assert_eq!(s, Status::Fail);
        assert!(d.contains("[[expected_skip]]"), "{d}");
        assert_eq!(
            ex.apply("REALM-05", Raw::Skip("no client".into()), false).0,
            Status::Skip
        );
        // A realm the user brought lacking a client is not the check's decision.
        assert_eq!(
            ex.apply("REALM-05", Raw::NotApplicable("n/a".into()), true)
                .0,
            Status::Skip
        );
    }

    #[test]
    fn a_pinned_skip_is_a_skip_with_its_reason_and_strict_both_ways() {
        let ex = load(SKIP);
        let (s, d) = ex.apply(
            "REALM-03",
            Raw::Skip("no RS256 key in the JWKS".into()),
            true,
        );
        assert_eq!(s, Status::Skip);
        assert!(d.starts_with("this Keycloak has no such key"), "{d}");
        let (s, d) = ex.apply("REALM-03", Raw::Skip("something else".into()), true);
        assert_eq!(s, Status::Fail);
        assert!(d.contains("another message"), "{d}");
        let (s, d) = ex.apply("REALM-03", Raw::Pass("fine".into()), true);
        assert_eq!(s, Status::Xpass);
        assert!(d.contains("[[expected_skip]]"), "{d}");
        assert_eq!(
            ex.apply("REALM-03", Raw::Fail("x".into()), true).0,
            Status::Fail
        );
    }

    #[test]
    fn an_expected_failure_that_skips_says_so() {
        let ex = load(ENTRY);
        let (s, d) = ex.apply("REALM-02", Raw::Skip("why".into()), false);
        assert_eq!(s, Status::Skip);
        assert!(d.starts_with("skipped, but"), "{d}");
        assert!(d.contains("expects it to fail"), "{d}");
        assert_eq!(
            ex.apply("REALM-02", Raw::Skip("why".into()), true).0,
            Status::Fail
        );
    }

    #[test]
    fn an_entry_for_an_unknown_check_is_a_problem() {
        let ex =
            load("[[expected_failure]]\ncheck = \"REALM-99\"\nreason = \"r\"\nmessage = \".\"\n");
        assert_eq!(ex.problems.len(), 1);
        assert!(ex.problems[0].contains("REALM-99"), "{:?}", ex.problems);
    }

    #[test]
    fn an_entry_in_the_wrong_components_file_is_a_problem() {
        let ex =
            load("[[expected_failure]]\ncheck = \"REALM-04\"\nreason = \"r\"\nmessage = \".\"\n");
        assert!(
            ex.problems.iter().any(|p| p.contains("is about realm")),
            "{:?}",
            ex.problems
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "keycloak/1.toml",
            "[[expected_failure]]\ncheck='REALM-02'\nreason='r'\nmsg='x'\n",
        );
        let err = Expectations::load(dir.path(), &[(Subject::Keycloak, "1".into())], &catalogue())
            .unwrap_err();
        assert!(format!("{err:#}").contains("not a valid expectations file"));
    }

    /// The committed files name only checks the catalogue has, in the right component.
    #[test]
    fn committed_expectation_files_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/expectations");
        let Ok(components) = std::fs::read_dir(&root) else {
            return;
        };
        for comp in components.flatten() {
            let subject = match comp.file_name().to_str() {
                Some("keycloak") => Subject::Keycloak,
                Some("mcp-server") => Subject::McpServer,
                Some("resource-server") => Subject::ResourceServer,
                Some("realm") => Subject::Realm,
                other => panic!("unknown component dir {other:?} under {}", root.display()),
            };
            for f in std::fs::read_dir(comp.path()).unwrap().flatten() {
                let version = f.path().file_stem().unwrap().to_string_lossy().into_owned();
                let ex = Expectations::load(&root, &[(subject, version)], &catalogue()).unwrap();
                assert!(
                    ex.problems.is_empty(),
                    "{}: {:?}",
                    f.path().display(),
                    ex.problems
                );
            }
        }
    }
}
