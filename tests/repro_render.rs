//! docs/impersonation-findings.md is the rendering of the committed raw results of
//! `repro impersonation` (fixtures/repro/impersonation-*.json).

use std::path::Path;

use mcp_authz_harness::repro::{self, render};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn impersonation_findings_md_is_up_to_date() {
    let runs = render::committed_runs(root()).unwrap();
    assert!(
        !runs.is_empty(),
        "no fixtures/repro/impersonation-*.json: commit a real run"
    );
    let want = render::findings(&runs);
    let path = root().join("docs/impersonation-findings.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/impersonation-findings.md is stale; regenerate it with `UPDATE_DOCS=1 cargo test --test repro_render`"
    );
}

#[test]
fn committed_results_are_complete_real_runs_without_secrets() {
    for (rel, r) in render::committed_runs(root()).unwrap() {
        let text = std::fs::read_to_string(root().join(&rel)).unwrap();
        repro::ensure_no_secrets(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(r.schema_version, repro::model::SCHEMA_VERSION, "{rel}");
        assert!(r.all_booted(), "{rel}: a boot failed");
        assert_eq!(r.columns.len(), 3, "{rel}");
        let file_version = rel
            .trim_start_matches("fixtures/repro/impersonation-")
            .trim_end_matches(".json");
        assert_eq!(render::versions(&r), file_version, "{rel}");
        for c in &r.columns {
            assert_eq!(c.cells.len(), r.requests.len(), "{rel}: column {}", c.id);
        }
    }
}
