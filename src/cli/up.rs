//! `up`: the stack for manual debugging and for `run --backend external --stack`,
//! described in `stack.json`, until Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use serde_json::json;

use super::UpArgs;
use crate::checks::{catalogue, needs_of};
use crate::progress::Progress;
use crate::runner::Interrupt;
use crate::runner::orchestrate;
use crate::session::Session;

pub async fn up(args: UpArgs) -> u8 {
    let opts = match args.stack.session_options(needs_of(&catalogue())) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let interrupt = Interrupt::install();
    let progress = Arc::new(Progress::new());
    let report_dir = crate::config::default_report_dir();
    let session = orchestrate::start(&opts, progress.clone(), &report_dir, &interrupt).await;
    progress.finish();
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    // The MCP server allows the session's redirect URI: free its port for the runs that
    // use this stack (`run --backend external --stack`), which listen there instead.
    session.listener.close();
    let path = session.run.path("stack.json");
    match write_stack_json(&session, &path) {
        Ok(()) => {
            println!("{}", path.display());
            eprintln!(
                "stack is up; its description (with credentials, mode 0600) is in the file above. \
                 Run checks against it with `run --backend external --stack {}`. Ctrl-C to stop.",
                path.display()
            );
        }
        Err(e) => eprintln!("error: writing {}: {e:#}", path.display()),
    }
    interrupt.cancelled().await;
    let report = session.teardown(None).await;
    if report.is_clean() {
        0
    } else {
        eprintln!("teardown left something behind: {report:?}");
        1
    }
}

/// The contract's `stack.json`: URLs, realm, admin user and password (mode 0600), and
/// what `run --backend external --stack` needs to use this stack as the native run does.
fn write_stack_json(session: &Session, path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let kc = &session.stack.keycloak;
    let realm = &session.realm;
    let subjects = &session.stack.subjects;
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
    let mcp = match &subjects.mcp {
        crate::stack::McpServerState::Running(m) => {
            Some(json!({"url": m.mcp_url(), "base_url": m.base_url, "version": m.version}))
        }
        _ => None,
    };
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
        "mcp": mcp,
        "harness_mcp_client": subjects.harness_client.as_ref().map(|h| json!({
            "client_id": h.client_id,
            "redirect_uri": h.redirect_uri,
        })),
        "resource_server": subjects.resource_server.as_ref().map(|rs| json!({
            "url": rs.base_url,
            "version": rs.version,
            "uid_mapping": rs.uid_mapping.setting(),
        })),
    });
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(serde_json::to_string_pretty(&doc)?.as_bytes())?;
    Ok(())
}
