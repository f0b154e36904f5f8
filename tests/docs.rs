//! Generated documentation stays in step with the code and the committed data.
//! `UPDATE_DOCS=1 cargo test --test docs` rewrites every generated file.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `docs/<name>` with `want`, or rewrites it under `UPDATE_DOCS`.
fn check_generated(name: &str, want: &str) {
    let path = root().join("docs").join(name);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/{name} is stale; regenerate it with `UPDATE_DOCS=1 cargo test --test docs`"
    );
}

#[test]
fn docs_catalogue_md_is_up_to_date() {
    check_generated(
        "catalogue.md",
        &mcp_authz_harness::checks::catalogue_markdown(),
    );
}

#[test]
fn docs_checks_per_backend_md_is_up_to_date() {
    check_generated(
        "checks-per-backend.md",
        &mcp_authz_harness::report::backends_markdown(),
    );
}

#[test]
fn docs_mutation_md_is_up_to_date() {
    let path = root().join("fixtures/mutation/mutation.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/mutation/mutation.json");
    let mut report: mcp_authz_harness::mutants::MutationReport =
        serde_json::from_str(&text).unwrap();
    // The committed statuses, covered with today's reasons (which must still fit them).
    let reasons = mcp_authz_harness::mutants::unkillable_reasons(
        &root().join("fixtures/mutation/unkillable.toml"),
    )
    .unwrap();
    let all = mcp_authz_harness::checks::catalogue();
    let ids: Vec<&str> = all.iter().map(|c| c.id).collect();
    report.cover(&ids, &reasons);
    assert!(
        report.holds(),
        "the committed mutation run does not hold: {:?} {:?}",
        report.problems,
        report.coverage_problems
    );
    check_generated(
        "mutation.md",
        &mcp_authz_harness::mutants::markdown(&report),
    );
}

/// The trimmed reports (`*.json`) a script keeps in `dir`.
fn trimmed_reports(dir: &str) -> Vec<serde_json::Value> {
    let mut reports = Vec::new();
    for entry in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            reports.push(serde_json::from_str(&text).unwrap());
        }
    }
    reports
}

#[test]
fn docs_mcp_release_matrix_md_is_up_to_date() {
    let releases = trimmed_reports("fixtures/releases");
    assert!(
        !releases.is_empty(),
        "fixtures/releases/ holds no release report"
    );
    check_generated(
        "mcp-release-matrix.md",
        &mcp_authz_harness::report::matrix::render(releases),
    );
}

#[test]
fn docs_mcp_subjects_md_is_up_to_date() {
    let reports = trimmed_reports("fixtures/subjects/reports");
    assert_eq!(
        reports.len(),
        2,
        "one report per subject (scripts/subjects.sh)"
    );
    check_generated(
        "mcp-subjects.md",
        &mcp_authz_harness::report::matrix::subjects::render(reports),
    );
}

#[test]
fn docs_token_storage_md_is_up_to_date() {
    let want = mcp_authz_harness::storage::docs::token_storage_markdown(root()).unwrap();
    check_generated("token-storage.md", &want);
}

/// The timing section of docs/validate-a-config-change.md is what
/// `bench/validate_realm.py` renders from the committed raw figures.
#[test]
fn docs_validate_realm_timing_is_rendered_from_the_raw_figures() {
    let out = std::process::Command::new("python3")
        .arg(root().join("bench/validate_realm.py"))
        .arg("--print-section")
        .output()
        .expect("python3 runs bench/validate_realm.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/validate-a-config-change.md")).unwrap();
    assert!(
        doc.contains(section.trim_end()),
        "docs/validate-a-config-change.md: the timing section is stale; \
         regenerate it with `python3 bench/validate_realm.py --render-only`"
    );
}

#[test]
fn docs_performance_md_is_up_to_date() {
    // Rendered by bench/measure.py from the committed raw measurements (bench/results/)
    // and bench/notes.md; no measurement runs here.
    let out = std::process::Command::new("python3")
        .arg(root().join("bench/measure.py"))
        .args(["--render-only", "--stdout"])
        .output()
        .expect("python3 runs bench/measure.py");
    assert!(
        out.status.success(),
        "bench/measure.py --render-only failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_generated(
        "performance.md",
        &String::from_utf8(out.stdout).expect("the rendered doc is UTF-8"),
    );
}
