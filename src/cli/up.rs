//! `up`: the stack for manual debugging, described in `stack.json`, until Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use serde_json::json;

use super::UpArgs;
use super::signals::{INTERRUPTED, next_signal};
use crate::checks::{catalogue, needs_of};
use crate::progress::Progress;
use crate::session::Session;

pub async fn up(args: UpArgs) -> u8 {
    let opts = match args.stack.session_options(needs_of(&catalogue())) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let progress = Arc::new(Progress::new());
    let report_dir = crate::config::default_report_dir();
    let session = tokio::select! {
        s = Session::start(&opts, progress.clone(), &report_dir) => s,
        _ = next_signal() => return INTERRUPTED,
    };
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            progress.finish();
            eprintln!("error: the stack could not be brought up:\n{e}");
            return 2;
        }
    };
    progress.finish();
    let path = session.run.path("stack.json");
    match write_stack_json(&session, &path) {
        Ok(()) => {
            println!("{}", path.display());
            eprintln!(
                "stack is up; its description (with credentials, mode 0600) is in the file above. Ctrl-C to stop."
            );
        }
        Err(e) => eprintln!("error: writing {}: {e:#}", path.display()),
    }
    let sig = next_signal().await;
    eprintln!("{sig}: tearing down");
    let report = session.teardown(None).await;
    if report.is_clean() {
        0
    } else {
        eprintln!("teardown left something behind: {report:?}");
        1
    }
}

/// The contract's `stack.json`: URLs, realm, admin user and password (mode 0600).
fn write_stack_json(session: &Session, path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let kc = &session.stack.keycloak;
    let realm = &session.realm;
    let users: serde_json::Map<String, serde_json::Value> = realm.file.json["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["username"].as_str())
        .filter_map(|name| {
            realm
                .user_password(name)
                .map(|p| (name.to_owned(), json!(p.expose())))
        })
        .collect();
    let doc = json!({
        "run_id": session.run.id,
        "run_dir": session.run.dir,
        "backend": session.stack.backend.name(),
        "keycloak": {
            "url": kc.base_url,
            "version": kc.version,
            "admin_user": kc.admin_user,
            "admin_password": kc.admin_password.expose(),
        },
        "realm": {
            "name": realm.name,
            "issuer": realm.issuer(),
            "discovery": realm.discovery_url(),
            "users": users,
        },
        "components": session.components().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "mcp": session.stack.mcp.as_ref().map(|m| json!({"url": m.mcp_url(), "base_url": m.base_url, "version": m.version})),
        "harness_mcp_client": {
            "client_id": session.subjects.harness_client.client_id,
            "redirect_uri": session.subjects.harness_client.redirect_uri,
        },
        "resource_server": session.subjects.stand_in_url(),
    });
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
    Ok(())
}
