//! `validate-realm --static-only` as users and scripts run it: the built binary, its exit
//! status, stdout and stderr. Nothing here starts Keycloak.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-authz-harness"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("KEYCLOAK_VERSION")
        .output()
        .expect("the harness binary runs")
}

fn validate(path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().unwrap();
    let mut args = vec!["validate-realm", path];
    args.extend_from_slice(extra);
    harness(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new("fixtures/realms").join(name)
}

/// A file with `text` in a fresh temp dir (kept alive by the returned guard).
fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn the_baseline_passes_with_exit_0() {
    let out = validate(Path::new("keycloak/realm-export.json"), &["--static-only"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("0 error(s)"), "{}", stdout(&out));
}

#[test]
fn an_error_finding_exits_1_and_is_in_the_json() {
    let path = fixture("lint-02-exchange-without-audience.json");
    let out = validate(&path, &["--static-only", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["file"], path.to_str().unwrap());
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "LINT-02")
        .unwrap_or_else(|| panic!("no LINT-02 in {report:#}"));
    assert_eq!(finding["severity"], "error");
    assert_eq!(
        finding["path"],
        "clients[nextcloud-mcp-server].attributes.standard.token.exchange.enabled"
    );
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("Add an oidc-audience-mapper")
    );
    for key in ["regressions", "fixes", "not_applicable"] {
        assert_eq!(report[key], serde_json::json!([]), "{key}");
    }
}

#[test]
fn the_misnamed_switch_is_an_error_naming_the_right_key() {
    let out = validate(
        &fixture("lint-01-unknown-attribute.json"),
        &["--static-only"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("client.token.exchange.standard.enabled"),
        "{text}"
    );
    assert!(
        text.contains("rename the key to `standard.token.exchange.enabled`"),
        "{text}"
    );
}

#[test]
fn markdown_and_junit_render() {
    let path = fixture("lint-04-wildcard-redirect.json");
    let md = validate(&path, &["--static-only", "--format", "markdown"]);
    assert_eq!(md.status.code(), Some(1));
    assert!(
        stdout(&md).contains("| LINT-04 | error |"),
        "{}",
        stdout(&md)
    );
    let junit = validate(&path, &["--static-only", "--format", "junit"]);
    assert_eq!(junit.status.code(), Some(1));
    let xml = stdout(&junit);
    assert_eq!(
        xml.matches("<testcase ").count(),
        mcp_authz_harness::keycloak::lint::RULES.len(),
        "one case per rule: {xml}"
    );
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
}

#[test]
fn malformed_json_exits_2_naming_the_file_and_position() {
    let (_dir, path) = temp_file("broken.json", "{\n  \"realm\": \"x\",\n}\n");
    let out = validate(&path, &["--static-only"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn json_that_is_not_a_realm_exits_2() {
    let (_dir, path) = temp_file("clients.json", r#"{"clients": []}"#);
    let out = validate(&path, &["--static-only"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("not a realm representation"), "{err}");
}

#[test]
fn a_value_of_the_wrong_type_exits_2_naming_its_json_path() {
    let (_dir, path) = temp_file(
        "typed.json",
        r#"{"realm": "x", "clients": [{"clientId": "a"}, {"clientId": "b", "attributes": ["x"]}]}"#,
    );
    let out = validate(&path, &["--static-only"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("clients[1].attributes"), "{err}");
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let out = validate(
        Path::new("fixtures/realms/no-such-realm.json"),
        &["--static-only"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("fixtures/realms/no-such-realm.json"), "{err}");
    assert!(
        err.contains("check the path") || err.contains("Check the path"),
        "{err}"
    );
}

#[test]
fn an_unknown_only_exits_2_before_starting_anything() {
    let out = validate(Path::new("keycloak/realm-export.json"), &["--only", "NOPE"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown area or check ID"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreachable_mcp_url_exits_2_naming_it() {
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = validate(
        Path::new("keycloak/realm-export.json"),
        &["--static-only", "--mcp-url", &url],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("--mcp-url {url}")),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn scopes_listed_by_the_mcp_server_but_undefined_are_warnings() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-protected-resource"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "resource": format!("{}/mcp", server.uri()),
            "scopes_supported": ["openid", "notes.read", "offline_access"]
        })))
        .mount(&server)
        .await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-authz-harness"))
        .args([
            "validate-realm",
            "fixtures/realms/lint-11-undefined-mcp-scope.json",
        ])
        .args([
            "--static-only",
            "--format",
            "json",
            "--mcp-url",
            &server.uri(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["findings"],
        serde_json::json!([{
            "rule": "LINT-11",
            "severity": "warning",
            "path": "clientScopes[notes.read]",
            "message": report["findings"][0]["message"]
        }])
    );
}
