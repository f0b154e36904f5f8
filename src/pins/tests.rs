use std::path::Path;

use serde_json::json;

use super::*;

fn pin<'a>(dir: &'a Path, name: &str) -> Pin<'a> {
    Pin {
        dir,
        name: name.to_owned(),
        source: "src/checks/example.rs",
        command: format!("mcp-authz-harness pin --only EX-01 ({name})"),
    }
}

fn scope_map() -> Value {
    json!({"notes_create": ["notes.write"], "notes_list": ["notes.read"]})
}

#[test]
fn every_committed_pin_renders_back_to_its_own_bytes() {
    let dir = snapshots_dir();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "snap") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let source = text
            .lines()
            .find_map(|l| l.strip_prefix("source: "))
            .unwrap();
        assert_eq!(
            render(source, &body(&text).unwrap()),
            text,
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 2, "no pins in {}", dir.display());
}

#[test]
fn an_equal_value_matches_whatever_the_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = pin(dir.path(), "scope-map-1");
    std::fs::write(p.path(), render(p.source, &scope_map())).unwrap();
    let reordered = json!({"notes_list": ["notes.read"], "notes_create": ["notes.write"]});
    assert_eq!(p.compare(&reordered).unwrap(), Outcome::Matches);
}

#[test]
fn a_mismatch_fails_with_the_path_the_values_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let p = pin(dir.path(), "scope-map-1");
    std::fs::write(p.path(), render(p.source, &scope_map())).unwrap();
    let observed =
        json!({"notes_create": ["notes.read", "notes.write"], "talk_send": ["talk.write"]});
    let err = p.compare(&observed).unwrap_err().to_string();
    assert!(
        err.contains("differs from fixtures/snapshots/scope-map-1.snap in 3 place(s)"),
        "{err}"
    );
    assert!(
        err.contains(r#"$.notes_create: pinned only [], observed only ["notes.read"]"#),
        "{err}"
    );
    assert!(
        err.contains(r#"$.notes_list: pinned ["notes.read"], not observed"#),
        "{err}"
    );
    assert!(
        err.contains(r#"$.talk_send: observed ["talk.write"], not pinned"#),
        "{err}"
    );
    assert!(
        err.contains("`mcp-authz-harness pin --only EX-01 (scope-map-1)`"),
        "{err}"
    );
}

#[test]
fn a_missing_pin_fails_naming_the_command_that_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = pin(dir.path(), "scope-map-9");
    let err = p.compare(&scope_map()).unwrap_err().to_string();
    assert_eq!(
        err,
        "no pin fixtures/snapshots/scope-map-9.snap: create it with \
         `mcp-authz-harness pin --only EX-01 (scope-map-9)`, review it and commit it"
    );
    assert!(!p.path().exists());
}

#[test]
fn update_leaves_an_equal_pin_byte_for_byte_and_writes_a_changed_or_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = pin(dir.path(), "inv");
    // Same value, other formatting: not rewritten.
    let compact = format!("---\nsource: elsewhere\n---\n{}\n", scope_map());
    std::fs::write(p.path(), &compact).unwrap();
    assert_eq!(p.update(&scope_map()).unwrap(), Outcome::Matches);
    assert_eq!(std::fs::read_to_string(p.path()).unwrap(), compact);
    let changed = json!({"notes_create": ["notes.write"]});
    assert_eq!(
        p.update(&changed).unwrap(),
        Outcome::Written(Some(vec![
            r#"$.notes_list: pinned ["notes.read"], not observed"#.to_owned()
        ]))
    );
    assert_eq!(
        std::fs::read_to_string(p.path()).unwrap(),
        render(p.source, &changed)
    );
    assert_eq!(p.compare(&changed).unwrap(), Outcome::Matches);
    let fresh = pin(dir.path(), "new");
    assert_eq!(fresh.update(&changed).unwrap(), Outcome::Written(None));
    assert!(
        fresh
            .verify(&changed, false)
            .unwrap()
            .starts_with("matches")
    );
}

#[test]
fn lists_of_named_objects_are_matched_by_name() {
    let pinned = json!({"tables": [
        {"name": "app_passwords", "columns": [{"name": "encrypted_password", "protection": "fernet"}]},
        {"name": "refresh_tokens", "columns": []}
    ]});
    let observed = json!({"tables": [
        {"name": "app_passwords", "columns": [{"name": "encrypted_password", "protection": "clear"}]},
        {"name": "oauth_sessions", "columns": []}
    ]});
    assert_eq!(
        differences(&pinned, &observed),
        [
            r#"$.tables[app_passwords].columns[encrypted_password].protection: pinned "fernet", observed "clear""#,
            "$.tables[refresh_tokens]: pinned, not observed",
            "$.tables[oauth_sessions]: observed, not pinned",
        ]
    );
    assert_eq!(
        differences(&json!(["a", "b"]), &json!(["b", "a"])),
        [r#"$: same elements in another order: pinned ["a","b"], observed ["b","a"]"#]
    );
}

/// Variables that make insta pass or rewrite a snapshot; they must change nothing here.
const INSTA_VARIABLES: [(&str, &str); 3] = [
    ("INSTA_UPDATE", "always"),
    ("INSTA_FORCE_PASS", "1"),
    ("INSTA_FORCE_UPDATE", "1"),
];

/// Run by [`insta_variables_change_no_verdict`] in a child process with the variables set
/// (this crate forbids the unsafe code that setting them in-process would take).
#[test]
#[ignore = "run by insta_variables_change_no_verdict, with INSTA_* set"]
fn with_insta_variables_set_a_mismatch_and_a_missing_pin_still_fail() {
    for (name, value) in INSTA_VARIABLES {
        assert_eq!(std::env::var(name).as_deref(), Ok(value), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = pin(dir.path(), "scope-map-1");
    let committed = render(p.source, &scope_map());
    std::fs::write(p.path(), &committed).unwrap();
    let observed = json!({"notes_create": ["notes.write"]});
    assert!(p.compare(&observed).is_err());
    assert!(p.verify(&observed, false).is_err());
    assert_eq!(std::fs::read_to_string(p.path()).unwrap(), committed);
    let missing = pin(dir.path(), "missing");
    assert!(missing.compare(&observed).is_err());
    assert!(!missing.path().exists());
    // Nothing else appeared (insta would leave `.snap.new` files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn insta_variables_change_no_verdict() {
    let name = "pins::tests::with_insta_variables_set_a_mismatch_and_a_missing_pin_still_fail";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--test-threads=1"])
        .envs(INSTA_VARIABLES)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
