//! `report merge` on the report.json files of two real runs (fixtures/merge/README.md):
//! the cells and statuses are those the runs wrote, as read off the files by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/merge")
}

fn merge(args: &[&Path], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-authz-harness"))
        .args(["report", "merge"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn two_runs_merge_into_one_matrix() {
    let out = tempfile::tempdir().unwrap();
    let run = merge(&[&fixtures()], out.path());
    assert!(run.status.success(), "{run:?}");
    let text = std::fs::read_to_string(out.path().join("matrix.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();

    let cells: Vec<(&str, &str, &str, &str, u64, u64)> = (m["cells"].as_array().unwrap())
        .iter()
        .map(|c| {
            (
                c["keycloak"].as_str().unwrap(),
                c["mcp_server"].as_str().unwrap(),
                c["backend"].as_str().unwrap(),
                c["run_id"].as_str().unwrap(),
                c["summary"]["pass"].as_u64().unwrap(),
                c["summary"]["fail"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("26.4.7", "0.65.3", "native", "20261206T173740Z-82da", 7, 1),
            ("26.7.3", "0.202.1", "native", "20261206T173700Z-6084", 8, 0),
        ]
    );

    let rows: Vec<(&str, Vec<&str>)> = (m["checks"].as_array().unwrap())
        .iter()
        .map(|r| {
            let statuses = (r["results"].as_array().unwrap())
                .iter()
                .map(|c| c["status"].as_str().unwrap())
                .collect();
            (r["id"].as_str().unwrap(), statuses)
        })
        .collect();
    let pass2 = vec!["pass", "pass"];
    assert_eq!(
        rows,
        [
            ("REALM-01", pass2.clone()),
            ("REALM-02", pass2.clone()),
            ("REALM-03", pass2.clone()),
            ("REALM-04", pass2.clone()),
            ("REALM-05", pass2.clone()),
            ("MCP-01", pass2.clone()),
            ("MCP-02", vec!["fail", "pass"]),
            ("MCP-03", pass2.clone()),
        ]
    );

    let md = std::fs::read_to_string(out.path().join("matrix.md")).unwrap();
    assert!(
        md.contains("| check | 26.4.7 / 0.65.3 / native | 26.7.3 / 0.202.1 / native |"),
        "{md}"
    );
    assert!(md.contains("| MCP-02 the realm defines and offers every scope the MCP server lists or requests | fail | pass |"), "{md}");
    assert!(
        md.contains(
            "- 26.4.7 / 0.65.3 / native (fail): the realm lacks client scopes calendar:read"
        ),
        "{md}"
    );
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let out = tempfile::tempdir().unwrap();
    let file = fixtures().join("keycloak-26.7.3-mcp-0.202.1/report.json");
    let run = merge(&[&file, &file], out.path());
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    let f = file.display();
    assert!(
        err.contains(&format!(
            "{f} and {f}: both are the cell 26.7.3 / 0.202.1 / native"
        )),
        "{err}"
    );

    // A trimmed release report is JSON, but not a report.json.
    let trimmed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/releases/0.65.3.json");
    let run = merge(&[&trimmed], out.path());
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(&format!(
            "{}: not a report.json: `schema_version` is missing",
            trimmed.display()
        )),
        "{err}"
    );
    assert!(!out.path().join("matrix.json").exists());
}
