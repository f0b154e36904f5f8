//! `validate-realm` with its live diff, as users run it: the built binary boots one
//! Keycloak, imports the baseline and the changed realm side by side, runs the selected
//! checks on both, and leaves nothing behind.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{BIN, assert_nothing_left, boot_slot};
use serde_json::{Value, json};

/// The run id and run dir from the `run <id> in <dir>` line on stderr.
fn run_started(stderr: &str) -> (String, std::path::PathBuf) {
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("run 2").map(|(_, rest)| format!("2{rest}")))
        .unwrap_or_else(|| panic!("no `run <id> in <dir>` line:\n{stderr}"));
    let (id, dir) = line.split_once(" in ").unwrap();
    (id.trim().to_owned(), dir.trim().into())
}

/// `validate-realm <realm> --only <only> --format json` from the repository root, which
/// exits 1 (the change regresses checks): its JSON report, stdout and stderr.
fn live_diff(realm: &str, only: &str, report_dir: &Path) -> (Value, String, String) {
    let out = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate-realm", realm, "--only", only, "--format", "json"])
        .arg("--report-dir")
        .arg(report_dir)
        .env("CI", "true")
        .env_remove("KEYCLOAK_VERSION")
        .output()
        .expect("the harness binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report = serde_json::from_str(&stdout).expect("JSON on stdout");
    (report, stdout, stderr)
}

/// The done-when of issue 8: the MCP server's client with the misnamed keys instead of
/// `standard.token.exchange.enabled` makes the exchange checks that need the switch
/// regress, and only them.
#[test]
fn the_misnamed_exchange_attribute_regresses_the_checks_that_need_the_switch() {
    let _slot = boot_slot();
    let report_dir = tempfile::tempdir().unwrap();
    let (report, stdout, stderr) = live_diff(
        "fixtures/realms/misnamed-exchange-attribute.json",
        "EXCHANGE,REALM",
        report_dir.path(),
    );

    // Keycloak refuses "not enabled" before it looks at the subject token, the audience
    // or the requested type, so every exchange by nextcloud-mcp-server that is not refused
    // earlier for an unsupported parameter (EXCHANGE-03, -04) now fails; EXCHANGE-01, -07
    // and -08 do not exchange as that client.
    assert_eq!(
        report["regressions"],
        json!([
            "EXCHANGE-02",
            "EXCHANGE-05",
            "EXCHANGE-06",
            "EXCHANGE-09",
            "EXCHANGE-10",
            "EXCHANGE-11",
            "EXCHANGE-12"
        ]),
        "{stdout}"
    );
    assert_eq!(report["fixes"], json!([]));
    assert_eq!(report["not_applicable"], json!([]));
    let live = &report["live"];
    let checks = live["checks"].as_array().unwrap();
    let exchange_02 = checks.iter().find(|c| c["id"] == "EXCHANGE-02").unwrap();
    assert_eq!(
        (&exchange_02["baseline"], &exchange_02["changed"]),
        (&json!("pass"), &json!("fail"))
    );
    let detail = exchange_02["detail"].as_str().unwrap();
    assert!(
        detail.contains("Standard token exchange is not enabled"),
        "{detail}"
    );
    for c in checks
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("REALM-"))
    {
        assert_eq!(c["change"], "unchanged", "{c}");
    }
    assert!(live.get("problems").is_none(), "{live}");
    assert_eq!(live["changed"]["realm"], "nextcloud-mcp-changed");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "LINT-01"),
        "the static lint still runs first"
    );

    for side in ["baseline", "changed"] {
        let path = report_dir.path().join(side).join("report.json");
        let side_report: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            side_report["teardown"],
            json!({"processes_left": 0, "containers_left": 0, "clients_deleted": side_report["teardown"]["clients_deleted"],
                   "clients_deleted_by_admin_fallback": 0, "clients_left": 0, "dirs_left": 0,
                   "realms_left": 0}),
            "{side}"
        );
    }
    let (run_id, run_dir) = run_started(&stderr);
    assert_nothing_left(&run_id, &run_dir, Duration::from_secs(5));
}

/// A change that drops the `basic` scope (tokens lose `sub`): the live diff runs the MCP
/// server and the resource server of each realm, so it says what they make of such tokens,
/// not only what Keycloak does.
#[test]
fn dropping_the_basic_scope_regresses_the_resource_server_and_the_mcp_server() {
    let _slot = boot_slot();
    let report_dir = tempfile::tempdir().unwrap();
    let (report, stdout, stderr) = live_diff(
        "fixtures/realms/change-no-basic-scope.json",
        "PKCE-02,RS-01,RS-03,MCP-03,MCP-11",
        report_dir.path(),
    );
    assert_eq!(
        report["regressions"],
        json!(["PKCE-02", "RS-01", "MCP-11"]),
        "{stdout}"
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "LINT-13"),
        "the static lint names the missing basic scope: {stdout}"
    );
    let live = &report["live"];
    assert!(live.get("problems").is_none(), "{live}");
    let (run_id, run_dir) = run_started(&stderr);
    assert_nothing_left(&run_id, &run_dir, Duration::from_secs(5));
}
