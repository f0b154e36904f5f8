//! `sweep`: remove clients that runs registered and never deleted (a run killed with
//! SIGKILL cannot delete its clients; its watchdog can only stop processes), and with
//! `--containers` the containers runs left on the Docker engine. What belongs to a run
//! still under way on this machine is left alone whatever its age. Sweep touches nothing
//! else: no realm, no directory.

use std::time::Duration;

use time::OffsetDateTime;

use super::SweepArgs;
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::secret::{Secret, SecretKind};
use crate::session::parse_client_name;
use crate::stack::run::running_here;

pub async fn sweep(args: SweepArgs) -> u8 {
    match run(&args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let older_than = parse_duration(&args.older_than)?;
    if let (Some(url), Some(user), Some(env)) = (
        &args.keycloak_url,
        &args.admin_user,
        &args.admin_password_env,
    ) {
        sweep_clients(args, url, user, env, older_than).await?;
    }
    if args.containers {
        sweep_containers(args, older_than).await?;
    }
    Ok(())
}

/// Containers labelled by a run, older than `older_than`, of no run under way here.
async fn sweep_containers(args: &SweepArgs, older_than: time::Duration) -> anyhow::Result<()> {
    let engine = crate::stack::containers::engine::Engine::connect().await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (mut found, mut removed) = (0, 0);
    for (id, created, run_id) in engine.labelled(None).await? {
        let short = crate::stack::containers::engine::short_id(&id);
        if now - created < older_than.whole_seconds() {
            continue;
        }
        if let Some(holder) = running_here(&run_id) {
            println!(
                "container {short}  run {run_id}  left alone: that run is still running here ({holder})"
            );
            continue;
        }
        found += 1;
        println!("container {short}  run {run_id}  ({}s old)", now - created);
        if args.yes {
            engine.remove(&id).await?;
            removed += 1;
        }
    }
    println!(
        "sweep: {found} harness container(s) older than {} on the engine at {}; {removed} removed{}",
        args.older_than,
        engine.socket.display(),
        if args.yes || found == 0 {
            ""
        } else {
            " (pass --yes to remove)"
        }
    );
    Ok(())
}

async fn sweep_clients(
    args: &SweepArgs,
    keycloak_url: &str,
    admin_user: &str,
    password_env: &str,
    older_than: time::Duration,
) -> anyhow::Result<()> {
    let password = std::env::var(password_env).map_err(|_| {
        anyhow::anyhow!("--admin-password-env {password_env}: the environment variable {password_env} is not set")
    })?;
    let admin = AdminClient::new(
        Http::new(DEFAULT_TIMEOUT),
        keycloak_url,
        admin_user,
        Secret::new(SecretKind::Password, password),
    );
    let now = OffsetDateTime::now_utc();
    let clients = admin.clients(&args.realm).await?;
    let (mut found, mut deleted, mut young, mut live) = (0, 0, 0, 0);
    for c in clients {
        let Some((run_id, created)) = c.name.as_deref().and_then(parse_client_name) else {
            continue;
        };
        let age = now - created;
        if age < older_than {
            young += 1;
            continue;
        }
        // Even `--older-than 0s` must not pull clients from under a run still checking;
        // a run on another machine is invisible here, and only the age protects it.
        if let Some(holder) = running_here(&run_id) {
            live += 1;
            println!(
                "{}  run {run_id}  left alone: that run is still running here ({holder})",
                c.client_id
            );
            continue;
        }
        found += 1;
        println!(
            "{}  run {run_id}  created {created}  ({}s old)",
            c.client_id,
            age.whole_seconds()
        );
        if args.yes {
            let resp = admin.delete_client(&args.realm, &c.id).await?;
            anyhow::ensure!(
                resp.status == 204,
                "deleting {}: {}",
                c.client_id,
                resp.summary()
            );
            deleted += 1;
        }
    }
    println!(
        "sweep: {found} harness client(s) older than {} in realm {}; {deleted} deleted; {young} younger left alone; {live} of running runs left alone{}",
        args.older_than,
        args.realm,
        if args.yes || found == 0 {
            ""
        } else {
            " (pass --yes to delete)"
        }
    );
    Ok(())
}

/// `30m`, `0s`, `2h`, `1d`, or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| {
        anyhow::anyhow!("--older-than {s:?}: expected a duration like 30m, 0s, 2h or 1d")
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--older-than {s:?}: unknown unit {unit:?}; use s, m, h or d"),
    };
    Ok(time::Duration::try_from(Duration::from_secs(secs))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30m").unwrap(), time::Duration::minutes(30));
        assert_eq!(parse_duration("0s").unwrap(), time::Duration::ZERO);
        assert_eq!(parse_duration("45").unwrap(), time::Duration::seconds(45));
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("m").is_err());
    }
}
