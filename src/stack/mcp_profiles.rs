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

/// How `ALLOWED_MCP_CLIENTS` names the clients its authorization proxy accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowedClients {
    /// `client_id|exact-redirect-uri` (a bare id still allows any loopback redirect).
    IdWithRedirect,
    /// Bare client ids only, each allowing any loopback redirect URI.
    IdOnly,
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
    pub allowed_clients: AllowedClients,
    /// The source file (in the installed package) whose click option declares the
    /// default of `NEXTCLOUD_OIDC_SCOPES`, read to learn what a default deployment asks
    /// the IdP for.
    pub cli_source: &'static str,
    /// Packages pip installs next to the release: imports the release makes without
    /// declaring them, which its dependencies no longer bring along.
    pub extra_requirements: &'static [&'static str],
    /// Where the row's facts come from.
    pub source: &'static str,
}

/// What every row shares unless it says otherwise (the names all releases since 0.17
/// read).
const BASE: LaunchProfile = LaunchProfile {
    from: "0.0.0",
    cli: CliShape::RunSubcommand,
    mode: OAuthMode::Explicit("login_flow"),
    mode_var: "MCP_DEPLOYMENT_MODE",
    discovery_var: Some("OIDC_DISCOVERY_URL"),
    client_id_var: "NEXTCLOUD_OIDC_CLIENT_ID",
    client_secret_var: "NEXTCLOUD_OIDC_CLIENT_SECRET",
    allowed_clients: AllowedClients::IdWithRedirect,
    cli_source: "cli.py",
    extra_requirements: &[],
    source: "",
};

/// Newest first. Ranges end where the previous row begins.
pub const PROFILES: &[LaunchProfile] = &[
    LaunchProfile {
        from: "0.169.1",
        source: "0.169.1 imports importlib.metadata (stdlib) in observability/tracing.py; \
                 0.202.1 run live",
        ..BASE
    },
    LaunchProfile {
        from: "0.86.0",
        extra_requirements: &["importlib-metadata"],
        source: "config_validators.py of 0.86.0, 0.130.0 and 0.202.1: modes single_user_basic, \
                 multi_user_basic, login_flow; observability/tracing.py up to 0.169.0 imports \
                 importlib_metadata, undeclared",
        ..BASE
    },
    LaunchProfile {
        from: "0.68.3",
        mode: OAuthMode::Explicit("oauth_single_audience"),
        // No upper bound on starlette before 0.85.1; 1.x removed `app.middleware`, which
        // these releases use (0.85.1 declares `starlette<1.0` itself: harmless there).
        extra_requirements: &["importlib-metadata", "starlette<1.0"],
        source: "config_validators.py of 0.85.1: oauth_single_audience (no login_flow); \
                 auth/client_registry.py of 0.68.3 parses `id|redirect_uri`",
        ..BASE
    },
    LaunchProfile {
        from: "0.65.3",
        mode: OAuthMode::Explicit("oauth_single_audience"),
        allowed_clients: AllowedClients::IdOnly,
        extra_requirements: &["importlib-metadata", "starlette<1.0"],
        source: "0.65.3 run live: fails at import without importlib-metadata, and with \
                 starlette 1.10 on `'Starlette' object has no attribute 'middleware'`; \
                 ALLOWED_MCP_CLIENTS is a list of bare ids up to 0.68.2",
        ..BASE
    },
    LaunchProfile {
        from: "0.0.0",
        cli: CliShape::Bare,
        mode: OAuthMode::AutoDetect,
        discovery_var: None,
        allowed_clients: AllowedClients::IdOnly,
        cli_source: "app.py",
        source: "0.17.1 (yanked): entry point app:run, no `run` subcommand, OIDC discovery only \
                 from NEXTCLOUD_HOST; not expected to start against Keycloak",
        ..BASE
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
    /// The `ALLOWED_MCP_CLIENTS` value that allows `client_id` with `redirect_uri`, as
    /// narrowly as the release can express it.
    pub fn allowed_mcp_clients(&self, client_id: &str, redirect_uri: &str) -> String {
        match self.allowed_clients {
            AllowedClients::IdWithRedirect => format!("{client_id}|{redirect_uri}"),
            AllowedClients::IdOnly => client_id.to_owned(),
        }
    }

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
        assert_eq!(profile_for("0.202.1").unwrap().from, "0.169.1");
        assert!(
            profile_for("0.202.1")
                .unwrap()
                .extra_requirements
                .is_empty()
        );
        assert_eq!(profile_for("0.169.0").unwrap().from, "0.86.0");
        assert_eq!(profile_for("0.86.0").unwrap().from, "0.86.0");
        assert_eq!(profile_for("0.85.1").unwrap().from, "0.68.3");
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
        assert_eq!(
            profile_for("0.65.3").unwrap().extra_requirements,
            ["importlib-metadata", "starlette<1.0"]
        );
        assert_eq!(profile_for("0.68.4").unwrap().from, "0.68.3");
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
    fn allowed_clients_are_as_narrow_as_the_release_allows() {
        let uri = "http://127.0.0.1:9/callback";
        assert_eq!(
            profile_for("0.202.1")
                .unwrap()
                .allowed_mcp_clients("c", uri),
            "c|http://127.0.0.1:9/callback"
        );
        assert_eq!(
            profile_for("0.68.2").unwrap().allowed_mcp_clients("c", uri),
            "c"
        );
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
