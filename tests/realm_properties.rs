//! Hostile realm files: the parser, the typed model and the lint never panic, and every
//! error names the file and where in it (a JSON path, or a line and column).
//!
//! Property tests mutate the baseline realm (keycloak/realm-export.json) at random paths;
//! the committed corpus (fixtures/realm-corpus/) replays files found or written by hand,
//! through the library and through `validate-realm --static-only`. cargo-fuzz would need
//! a nightly toolchain; proptest runs on stable.

use std::path::Path;
use std::sync::LazyLock;

use mcp_authz_harness::keycloak::lint::{LintOptions, lint};
use mcp_authz_harness::keycloak::model::Realm;
use mcp_authz_harness::keycloak::realm::{BASELINE_JSON, RealmFile};
use proptest::prelude::*;
use serde_json::Value;

const ORIGIN: &str = "hostile/realm.json";

static BASELINE: LazyLock<Value> = LazyLock::new(|| serde_json::from_str(BASELINE_JSON).unwrap());

/// One step into a JSON document.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every path of `v` (the root included), parents before children.
fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Step::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

static PATHS: LazyLock<Vec<Vec<Step>>> = LazyLock::new(|| {
    let mut out = Vec::new();
    paths(&BASELINE, &mut Vec::new(), &mut out);
    out
});

fn at<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// What a mutation does at its path.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replace the value with another of any type.
    Replace(Value),
    /// Remove it from its parent object or array.
    Remove,
    /// Wrap it in an array (a common hand-editing mistake: one value where a list is due).
    Wrap,
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("${MCP_HARNESS_SECRET_X}"),
            Just("${unterminated"),
            Just("*"),
            Just("http://*"),
            Just("S256"),
            Just("plain"),
            Just("true"),
            Just("openid-connect"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z.]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_mutation() -> impl Strategy<Value = (prop::sample::Index, Mutation)> {
    let kind = prop_oneof![
        3 => arb_json().prop_map(Mutation::Replace),
        1 => Just(Mutation::Remove),
        1 => Just(Mutation::Wrap),
    ];
    (any::<prop::sample::Index>(), kind)
}

fn mutate(doc: &mut Value, path: &[Step], m: &Mutation) {
    match m {
        Mutation::Replace(v) => {
            if let Some(slot) = at(doc, path) {
                *slot = v.clone();
            }
        }
        Mutation::Wrap => {
            if let Some(slot) = at(doc, path) {
                *slot = Value::Array(vec![slot.take()]);
            }
        }
        Mutation::Remove => {
            let Some((last, parent)) = path.split_last() else {
                *doc = Value::Null;
                return;
            };
            match (at(doc, parent), last) {
                (Some(Value::Object(m)), Step::Key(k)) => {
                    m.remove(k);
                }
                (Some(Value::Array(a)), Step::Index(i)) if *i < a.len() => {
                    a.remove(*i);
                }
                _ => {}
            }
        }
    }
}

/// What must hold for any text given as a realm file: no panic (the caller would see
/// it), errors naming the file and a location, findings naming a path.
fn judge(text: &str, origin: &str) -> Result<(), String> {
    let located = |e: &anyhow::Error| -> Result<(), String> {
        let msg = format!("{e:#}");
        let rest = msg
            .strip_prefix(&format!("{origin}: "))
            .ok_or_else(|| format!("the error does not start with the file: {msg}"))?;
        let names_a_place = rest.starts_with("not valid JSON at line ")
            || rest.starts_with("the top level")
            || rest.starts_with("`realm`")
            || rest.starts_with("no `realm` field")
            || rest
                .split_once(": ")
                .is_some_and(|(path, _)| !path.is_empty());
        match names_a_place {
            true => Ok(()),
            false => Err(format!("the error names no JSON path or position: {msg}")),
        }
    };
    if let Err(e) = RealmFile::parse(text, origin, None) {
        located(&e)?;
    }
    match Realm::from_text(text, origin) {
        Err(e) => located(&e),
        Ok(realm) => {
            for f in lint(&realm, &LintOptions::default()) {
                if f.path.is_empty() || f.message.is_empty() {
                    return Err(format!("a finding without a path or message: {f:?}"));
                }
            }
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Up to four mutations anywhere in the baseline.
    #[test]
    fn mutated_baselines_never_panic_and_errors_say_where(muts in prop::collection::vec(arb_mutation(), 1..5)) {
        let mut doc = BASELINE.clone();
        for (index, m) in &muts {
            let path = index.get(&PATHS);
            mutate(&mut doc, path, m);
        }
        let text = serde_json::to_string_pretty(&doc).unwrap();
        if let Err(e) = judge(&text, ORIGIN) {
            return Err(TestCaseError::fail(e));
        }
    }

    /// The baseline cut short anywhere: a syntax error with its line and column.
    #[test]
    fn truncated_baselines_say_where(cut in 0..BASELINE_JSON.len()) {
        let cut = (0..=cut).rev().find(|i| BASELINE_JSON.is_char_boundary(*i)).unwrap();
        if let Err(e) = judge(&BASELINE_JSON[..cut], ORIGIN) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// Every file of the committed corpus, through the library and through the binary.
#[test]
fn the_hostile_corpus_replays_without_a_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/realm-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus has {} files", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).unwrap();
        match String::from_utf8(bytes) {
            Ok(text) => {
                if let Err(e) = judge(&text, &origin) {
                    problems.push(e);
                }
            }
            Err(_) => {
                // Not UTF-8: the loader must say so, naming the file.
                let e = Realm::load(path).unwrap_err().to_string();
                if !e.contains(&origin) {
                    problems.push(format!("not naming the file: {e}"));
                }
            }
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-authz-harness"))
            .args(["validate-realm", "--static-only"])
            .arg(path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0 | 1) => {}
            Some(2) if stderr.contains(&origin) => {}
            code => problems.push(format!(
                "validate-realm {origin}: exit {code:?}, stderr:\n{stderr}"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The judge itself: a wrong type deep in a client is named by its path, and a message
/// without a place is refused.
#[test]
fn errors_name_the_path_of_the_wrong_value() {
    let mut doc = BASELINE.clone();
    doc["clients"][0]["redirectUris"] = Value::from(7);
    let text = serde_json::to_string(&doc).unwrap();
    let e = Realm::from_text(&text, ORIGIN).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{ORIGIN}: clients[0].redirectUris: ")),
        "{e}"
    );
    assert!(judge(&text, ORIGIN).is_ok());
}
