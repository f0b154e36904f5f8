//! `matrix` as users run it: one Keycloak version, two MCP server releases. One Keycloak
//! boots; each release gets a cell with a full report naming its release; the merged
//! matrix holds both cells; nothing is left behind.

use std::process::Command;
use std::time::Duration;

use crate::common::{BIN, Harness, assert_nothing_left, boot_slot};
use serde_json::Value;

const KEYCLOAK: &str = mcp_authz_harness::config::DEFAULT_KEYCLOAK_VERSION;
const RELEASES: [&str; 2] = ["0.65.3", "0.202.1"];

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read it: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn two_releases_share_one_keycloak_and_merge_into_one_matrix() {
    let _slot = boot_slot();
    let out = tempfile::tempdir().unwrap().keep();
    let mut cmd = Command::new(BIN);
    cmd.args(["matrix", "--keycloak-versions", KEYCLOAK])
        .args(["--mcp-server-versions", &RELEASES.join(",")])
        .args(["--only", "REALM-01,MCP-01,MCP-02", "--report-dir"])
        .arg(&out)
        .env_remove("KEYCLOAK_VERSION");
    let mut h = Harness::spawn_command(cmd, out.clone());
    let (run_id, run_dir) = h.run_started();
    let status = h.wait(Duration::from_secs(900));
    let log = h.stderr();

    let boots = log.matches("phase boot.keycloak").count();
    assert_eq!(boots, 1, "one Keycloak boot for both releases:\n{log}");
    assert_eq!(log.matches(" in /").count(), 1, "one run dir:\n{log}");

    let mut any_failed = false;
    for release in RELEASES {
        let dir = out.join(format!("{KEYCLOAK}-{release}"));
        for file in ["report.json", "report.md", "junit.xml"] {
            assert!(dir.join(file).is_file(), "{}/{file} missing", dir.display());
        }
        let report = read(&dir.join("report.json"));
        assert_eq!(report["components"]["mcp-server"], release, "{report:#}");
        assert_eq!(report["components"]["keycloak"], KEYCLOAK, "{report:#}");
        assert_eq!(report["run_id"], run_id.as_str(), "the cells share the run");
        let teardown = &report["teardown"];
        for counter in ["processes_left", "clients_left", "realms_left", "dirs_left"] {
            assert_eq!(teardown[counter], 0, "{release}: {teardown}");
        }
        let checks = report["checks"].as_array().unwrap();
        let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["REALM-01", "MCP-01", "MCP-02"], "{release}");
        any_failed |=
            (checks.iter()).any(|c| matches!(c["status"].as_str(), Some("fail" | "xpass")));
    }

    let matrix = read(&out.join("matrix.json"));
    let cells = matrix["cells"].as_array().unwrap();
    let keys: Vec<(&str, &str)> = (cells.iter())
        .map(|c| {
            (
                c["keycloak"].as_str().unwrap(),
                c["mcp_server"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [(KEYCLOAK, RELEASES[0]), (KEYCLOAK, RELEASES[1])]);
    for row in matrix["checks"].as_array().unwrap() {
        let results = row["results"].as_array().unwrap();
        assert!(results.iter().all(|r| !r.is_null()), "{row}");
    }
    assert!(out.join("matrix.md").is_file());

    let want = if any_failed { 1 } else { 0 };
    assert_eq!(status.code(), Some(want), "{log}");
    assert_nothing_left(&run_id, &run_dir, Duration::from_secs(10));
}
