//! The error paths of `report merge`: each names the file, and the JSON path or the other
//! file, at fault.

use super::*;
use serde_json::json;

/// A minimal valid report.json; tests break one field at a time.
fn report(keycloak: &str, mcp: Option<&str>) -> Value {
    let mut components = json!({"keycloak": keycloak, "nextcloud": "stand-in"});
    if let Some(v) = mcp {
        components["mcp-server"] = json!(v);
    }
    json!({
        "schema_version": 1,
        "run_id": "20261206T000000Z-abcd",
        "finished_at": "2026-12-06T00:00:00Z",
        "backend": "native",
        "components": components,
        "summary": {"pass": 1},
        "checks": [{"id": "REALM-01", "title": "t", "status": "pass", "detail": "d"}],
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

fn error_of(v: Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "report.json", &v);
    let e = load(&[path]).unwrap_err().to_string();
    assert!(e.contains("report.json"), "the error names the file: {e}");
    e
}

#[test]
fn a_missing_field_is_named_by_its_json_path() {
    let mut r = report("26.7.3", None);
    r["components"].as_object_mut().unwrap().remove("keycloak");
    assert!(error_of(r).ends_with("not a report.json: `components.keycloak` is missing"));

    let mut r = report("26.7.3", None);
    r.as_object_mut().unwrap().remove("summary");
    assert!(error_of(r).ends_with("`summary` is missing"));

    let mut r = report("26.7.3", None);
    r["checks"][0].as_object_mut().unwrap().remove("status");
    assert!(error_of(r).ends_with("`checks[0].status` is missing"));
}

#[test]
fn a_field_of_the_wrong_kind_is_named_with_what_it_holds() {
    let mut r = report("26.7.3", None);
    r["checks"][0]["status"] = json!("passed");
    let e = error_of(r);
    assert!(
        e.contains("`checks[0].status` is \"passed\", not one of pass, fail, skip"),
        "{e}"
    );

    let mut r = report("26.7.3", None);
    r["checks"] = json!({});
    assert!(error_of(r).ends_with("`checks` is {}, not an array"));

    let mut r = report("26.7.3", None);
    r["schema_version"] = json!(2);
    assert!(error_of(r).ends_with("`schema_version` is 2, not 1"));
}

#[test]
fn other_json_and_non_json_are_refused() {
    // A matrix.json is JSON, but not a report.json.
    let e = error_of(json!({"schema_version": 1, "cells": [], "checks": []}));
    assert!(e.ends_with("`components` is missing"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.md");
    std::fs::write(&path, "# not JSON").unwrap();
    let e = load(std::slice::from_ref(&path)).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: not JSON", path.display())),
        "{e}"
    );

    let missing = dir.path().join("absent.json");
    let e = load(std::slice::from_ref(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("{}: cannot read it", missing.display())),
        "{e}"
    );
}

#[test]
fn two_reports_of_the_same_cell_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a/report.json",
        &report("26.7.3", Some("0.202.1")),
    );
    let b = write(
        dir.path(),
        "b/report.json",
        &report("26.7.3", Some("0.202.1")),
    );
    let e = load(&[dir.path().to_owned()]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} and {}: both are the cell 26.7.3 / 0.202.1 / native",
            a.display(),
            b.display()
        )
    );
}

#[test]
fn a_directory_without_reports_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(&[dir.path().to_owned()]).unwrap_err().to_string();
    assert_eq!(e, format!("{}: holds no report.json", dir.path().display()));
}

#[test]
fn cells_differ_by_any_part_of_the_key_and_sort_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut containers = report("26.7.3", Some("0.202.1"));
    containers["backend"] = json!("containers");
    let files = [
        write(dir.path(), "1.json", &report("26.7.3", Some("0.202.1"))),
        write(dir.path(), "2.json", &containers),
        write(dir.path(), "3.json", &report("26.7.3", Some("0.65.3"))),
        write(dir.path(), "4.json", &report("26.4.7", None)),
    ];
    let labels: Vec<String> = load(&files)
        .unwrap()
        .iter()
        .map(|c| c.key.label())
        .collect();
    assert_eq!(
        labels,
        [
            "26.4.7 / — / native",
            "26.7.3 / 0.65.3 / native",
            "26.7.3 / 0.202.1 / containers",
            "26.7.3 / 0.202.1 / native",
        ]
    );
}
