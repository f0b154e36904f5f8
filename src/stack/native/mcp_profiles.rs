//! Launch profiles of `nextcloud-mcp-server`: how each range of releases is started.
//!
//! Releases differ in how they are told to run in OAuth mode and how their command line is
//! shaped. Those differences live in [`PROFILES`], a table keyed by release range, so a new
//! release starts without code changes and the checks never know which release runs.
//! Each row says where its facts come from (the release's own source, read from its wheel).

use std::cmp::Ordering;

/// How the command line is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliShape {
    /// `nextcloud-mcp-server run --host H --port P --transport streamable-http`
    /// (a click group with a `run` subcommand).
    RunSubcommand,
    /// `nextcloud-mcp-server --host H --port P --transport streamable-http` (one command).
    Bare,
}

/// How the release is put into its OAuth mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthMode {
    /// Set the mode variable to this value.
    Explicit(&'static str),
    /// Leave it unset: with no Nextcloud username and password the release picks OAuth.
    AutoDetect,
}

/// One row of the table: releases from `from` (inclusive) up to the next row's `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchProfile {
    /// The first release this row applies to, as `major.minor.patch`.
    pub from: &'static str,
    pub cli: CliShape,
    pub mode: OAuthMode,
    /// The environment variable naming the deployment mode (read only when explicit).
    pub mode_var: &'static str,
    /// The variable naming the IdP's discovery URL; `None` when the release can only
    /// discover from `NEXTCLOUD_HOST` (it cannot be pointed at Keycloak).
    pub discovery_var: Option<&'static str>,
    pub client_id_var: &'static str,
    pub client_secret_var: &'static str,
    /// The source file (in the installed package) whose click option declares the
    /// default of `NEXTCLOUD_OIDC_SCOPES`, read to learn what a default deployment asks
    /// the IdP for.
    pub cli_source: &'static str,
    /// Where the row's facts come from.
    pub source: &'static str,
}

/// Newest first. Ranges end where the previous row begins.
pub const PROFILES: &[LaunchProfile] = &[
    LaunchProfile {
        from: "0.86.0",
        cli: CliShape::RunSubcommand,
        mode: OAuthMode::Explicit("login_flow"),
        mode_var: "MCP_DEPLOYMENT_MODE",
        discovery_var: Some("OIDC_DISCOVERY_URL"),
        client_id_var: "NEXTCLOUD_OIDC_CLIENT_ID",
        client_secret_var: "NEXTCLOUD_OIDC_CLIENT_SECRET",
        cli_source: "cli.py",
        source: "config_validators.py of 0.86.0, 0.130.0 and 0.202.1: modes single_user_basic, \
                 multi_user_basic, login_flow; 0.202.1 run live",
    },
    LaunchProfile {
        from: "0.65.3",
        cli: CliShape::RunSubcommand,
        mode: OAuthMode::Explicit("oauth_single_audience"),
        mode_var: "MCP_DEPLOYMENT_MODE",
        discovery_var: Some("OIDC_DISCOVERY_URL"),
        client_id_var: "NEXTCLOUD_OIDC_CLIENT_ID",
        client_secret_var: "NEXTCLOUD_OIDC_CLIENT_SECRET",
        cli_source: "cli.py",
        source: "config_validators.py of 0.65.3 and 0.85.1: oauth_single_audience (no login_flow); \
                 0.65.3 run live",
    },
    LaunchProfile {
        from: "0.0.0",
        cli: CliShape::Bare,
        mode: OAuthMode::AutoDetect,
        mode_var: "MCP_DEPLOYMENT_MODE",
        discovery_var: None,
        client_id_var: "NEXTCLOUD_OIDC_CLIENT_ID",
        client_secret_var: "NEXTCLOUD_OIDC_CLIENT_SECRET",
        cli_source: "app.py",
        source: "0.17.1 (yanked): entry point app:run, no `run` subcommand, OIDC discovery only \
                 from NEXTCLOUD_HOST; not expected to start against Keycloak",
    },
];

/// The profile of `version` (`0.202.1`); an error when it is not a release number.
pub fn profile_for(version: &str) -> anyhow::Result<&'static LaunchProfile> {
    let v = parse(version).ok_or_else(|| {
        anyhow::anyhow!(
            "--mcp-server-version {version:?} is not a release number like 0.202.1 \
             (see `pip index versions nextcloud-mcp-server`)"
        )
    })?;
    Ok(PROFILES
        .iter()
        .find(|p| compare(&v, &parse(p.from).expect("table versions parse")) != Ordering::Less)
        .expect("the last row starts at 0.0.0"))
}

impl LaunchProfile {
    /// The arguments after the executable.
    pub fn args(&self, port: u16) -> Vec<String> {
        let mut args = Vec::new();
        if self.cli == CliShape::RunSubcommand {
            args.push("run".to_owned());
        }
        args.extend(
            [
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--transport",
                "streamable-http",
            ]
            .map(str::to_owned),
        );
        args
    }
}

/// `0.202.1` as numbers; `None` unless every part is a number (no pre-releases on PyPI).
fn parse(version: &str) -> Option<Vec<u64>> {
    let parts: Option<Vec<u64>> = version.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty() && p.len() <= 4)
}

fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_release_range_gets_its_row() {
        assert_eq!(profile_for("0.202.1").unwrap().from, "0.86.0");
        assert_eq!(profile_for("0.86.0").unwrap().from, "0.86.0");
        assert_eq!(profile_for("0.85.1").unwrap().from, "0.65.3");
        assert_eq!(profile_for("0.65.3").unwrap().from, "0.65.3");
        assert_eq!(profile_for("0.17.1").unwrap().cli, CliShape::Bare);
        assert_eq!(
            profile_for("0.202.1").unwrap().mode,
            OAuthMode::Explicit("login_flow")
        );
    }

    #[test]
    fn numbers_compare_as_numbers_not_text() {
        assert_eq!(profile_for("0.100.0").unwrap().from, "0.86.0");
        assert_eq!(profile_for("0.9.0").unwrap().from, "0.0.0");
        assert!(profile_for("latest").is_err());
        assert!(profile_for("0.202.1rc1").is_err());
    }

    #[test]
    fn rows_are_newest_first() {
        let froms: Vec<Vec<u64>> = PROFILES.iter().map(|p| parse(p.from).unwrap()).collect();
        assert!(froms.windows(2).all(|w| compare(&w[0], &w[1]).is_gt()));
    }

    #[test]
    fn the_command_line_follows_the_shape() {
        let run = profile_for("0.202.1").unwrap().args(8123);
        assert_eq!(
            run.join(" "),
            "run --host 127.0.0.1 --port 8123 --transport streamable-http"
        );
        let bare = profile_for("0.17.1").unwrap().args(8123);
        assert_eq!(bare[0], "--host");
    }
}
