//! Expectations: known deviations of a subject, strict both ways.
//!
//! `fixtures/expectations/<component>/<version>.toml` (for a realm: `realm/<name>.toml`)
//! lists checks expected to fail, each with its reason and a regular expression the
//! failure message must match. A listed check that fails with a matching message is
//! XFAIL; with another message it is a FAIL; a listed check that passes is XPASS (the run
//! fails: the file is stale). An entry naming a check the catalogue does not have is a
//! problem of the run. Entries of checks not selected are ignored.

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
    #[serde(default, rename = "expected_failure")]
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    check: String,
    reason: String,
    message: String,
}

/// One expected failure, loaded.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub check: String,
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
    Skip(String),
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
                "{}: not a valid expectations file (entries are [[expected_failure]] with check, reason, message)",
                path.display()
            )
        })?;
        for e in file.entries {
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

    /// The final status and detail of a check.
    pub fn apply(&self, check_id: &str, raw: Raw) -> (Status, String) {
        let expected = self.get(check_id);
        match (raw, expected) {
            (Raw::Pass(msg), None) => (Status::Pass, msg),
            (Raw::Fail(msg), None) => (Status::Fail, msg),
            (Raw::Skip(msg), _) => (Status::Skip, msg),
            (Raw::Fail(msg), Some(e)) if e.message.is_match(&msg) => (
                Status::Xfail,
                format!(
                    "{}\nobserved: {msg}\n(expected failure from {})",
                    e.reason,
                    e.source.display()
                ),
            ),
            (Raw::Fail(msg), Some(e)) => (
                Status::Fail,
                format!(
                    "failed, as {} expects, but with another message; expected /{}/, got: {msg}",
                    e.source.display(),
                    e.message.as_str()
                ),
            ),
            (Raw::Pass(msg), Some(e)) => (
                Status::Xpass,
                format!(
                    "passed, but {} lists it as an expected failure ({}); remove the entry if the \
                     deviation is gone. Observed: {msg}",
                    e.source.display(),
                    e.reason
                ),
            ),
        }
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
        );
        assert_eq!(s, Status::Xfail);
        assert!(d.starts_with("this Keycloak does not advertise it"), "{d}");
    }

    #[test]
    fn a_listed_failure_with_another_message_is_a_failure() {
        let ex = load(ENTRY);
        let (s, d) = ex.apply("REALM-02", Raw::Fail("issuer differs".into()));
        assert_eq!(s, Status::Fail);
        assert!(d.contains("another message"), "{d}");
    }

    #[test]
    fn a_listed_check_that_passes_is_xpass() {
        let ex = load(ENTRY);
        assert_eq!(
            ex.apply("REALM-02", Raw::Pass("ok".into())).0,
            Status::Xpass
        );
        assert!(Status::Xpass.fails_run());
    }

    #[test]
    fn unlisted_checks_and_skips_are_untouched() {
        let ex = load(ENTRY);
        assert_eq!(ex.apply("REALM-03", Raw::Fail("x".into())).0, Status::Fail);
        assert_eq!(
            ex.apply("REALM-02", Raw::Skip("why".into())).0,
            Status::Skip
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
