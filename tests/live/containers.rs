//! The containers backend's lifecycle against a real Docker engine: a SIGKILLed run leaves
//! no container, `sweep --containers` removes what a dead run left, and a missing engine or
//! image is one clear line before anything starts.
//!
//! Needs an engine (`DOCKER_HOST`, else /var/run/docker.sock) holding the images named by
//! `MCP_AUTHZ_HARNESS_KEYCLOAK_IMAGE` (default: the official one); `.ci/run` starts one and
//! builds the images. Without an engine these tests say so and pass, except under
//! `CI=true`, where a missing engine is a failure.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{BIN, Harness, boot_slot};
use mcp_authz_harness::stack::containers::engine::{Engine, RUN_LABEL};
use mcp_authz_harness::stack::process::processes_with_marker;

/// The engine, or `None` (printed) when there is none and `CI` is not `true`.
fn engine() -> Option<Engine> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(Engine::connect()) {
        Ok(e) => Some(e),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and no Docker engine: {e:#} (.ci/run starts one)")
        }
        Err(e) => {
            eprintln!("skipped: no Docker engine: {e:#}");
            None
        }
    }
}

fn labelled(engine: &Engine, run_id: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(engine.labelled(Some(run_id)))
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect()
}

#[test]
fn sigkill_of_a_containers_run_leaves_no_container() {
    let Some(engine) = engine() else { return };
    let _slot = boot_slot();
    let mut h = Harness::spawn(&["run", "--backend", "containers", "--only", "REALM"], &[]);
    let (run_id, run_dir) = h.run_started();
    h.wait_for_line("phase provision.keycloak", Duration::from_secs(600));
    h.wait_until(
        Duration::from_secs(600),
        "Keycloak's container with the run label",
        || !labelled(&engine, &run_id).is_empty(),
    );
    h.signal(nix::sys::signal::Signal::SIGKILL);
    h.wait(Duration::from_secs(10));
    // Only the watchdog can clean up now: it stops the container's processes (the engine
    // removes a stopped container of the run) and removes the rest by label.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = labelled(&engine, &run_id);
        let procs = processes_with_marker(&run_id);
        if left.is_empty() && procs.is_empty() && !run_dir.exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "30s after SIGKILL: containers {left:?}, processes {procs:?}, run dir exists: {}",
            run_dir.exists()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_matrix_runs_each_backend_with_its_own_keycloak_and_merges_them() {
    let Some(_engine) = engine() else { return };
    let _slot = boot_slot();
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(BIN)
        .args(["matrix", "--backends", "native,containers"])
        .args(["--only", "REALM-01,MCP-01", "--report-dir"])
        .arg(out.path())
        .env("CI", "true")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "matrix failed:\n{log}");
    assert_eq!(log.matches("phase boot.keycloak").count(), 2, "{log}");
    let version = mcp_authz_harness::config::DEFAULT_KEYCLOAK_VERSION;
    let release = mcp_authz_harness::config::DEFAULT_MCP_SERVER_VERSION;
    for (dir, backend) in [("", "native"), ("-containers", "containers")] {
        let path = out
            .path()
            .join(format!("{version}-{release}{dir}/report.json"));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(report["backend"], backend, "{}", path.display());
        assert_eq!(report["summary"]["pass"], 2, "{report:#}");
    }
    let matrix = std::fs::read_to_string(out.path().join("matrix.md")).unwrap();
    assert!(
        matrix.contains(&format!("{version} / {release} / containers"))
            && matrix.contains(&format!("{version} / {release} / native")),
        "{matrix}"
    );
}

#[test]
fn sweep_removes_the_containers_a_dead_run_left() {
    let Some(engine) = engine() else { return };
    let run_id = format!("dead-run-{}", std::process::id());
    let image = local_base_image(&engine);
    let created = Command::new("docker")
        .args(["create", "--network", "host", "--label"])
        .arg(format!("{RUN_LABEL}={run_id}"))
        .args([&image, "true"])
        .output()
        .expect("the docker CLI runs");
    assert!(
        created.status.success(),
        "docker create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert_eq!(labelled(&engine, &run_id).len(), 1);
    let out = Command::new(BIN)
        .args(["sweep", "--containers", "--older-than", "0s", "--yes"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sweep: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&run_id), "sweep names the run: {stdout}");
    assert!(
        labelled(&engine, &run_id).is_empty(),
        "sweep left it: {stdout}"
    );
}

/// An image the engine holds, to create a stopped container from.
fn local_base_image(engine: &Engine) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let kc = std::env::var("MCP_AUTHZ_HARNESS_KEYCLOAK_IMAGE")
        .unwrap_or_else(|_| "quay.io/keycloak/keycloak".into());
    let candidates = [
        "mcp-authz-harness/debian:bookworm".to_owned(),
        format!(
            "{kc}:{}",
            mcp_authz_harness::config::DEFAULT_KEYCLOAK_VERSION
        ),
    ];
    candidates
        .into_iter()
        .find(|c| rt.block_on(engine.image_id(c)).ok().flatten().is_some())
        .expect("the engine holds the base image or the Keycloak image (images build)")
}

#[test]
fn a_missing_image_is_one_clear_line_naming_it_and_the_fix() {
    let Some(_engine) = engine() else { return };
    let out = Command::new(BIN)
        .args(["run", "--backend", "containers", "--only", "REALM-01"])
        .args(["--keycloak-image", "mcp-authz-harness/no-such-image"])
        .args([
            "--report-dir",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mcp-authz-harness/no-such-image:") && stderr.contains("images build"),
        "{stderr}"
    );
}

#[test]
fn no_engine_is_one_clear_line_before_anything_starts() {
    let out = Command::new(BIN)
        .args(["run", "--backend", "containers", "--only", "REALM-01"])
        .args([
            "--report-dir",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no Docker engine answers at /nonexistent/docker.sock"),
        "{stderr}"
    );
}
