//! Settings shared by the CLI and the `cargo test` harness: a flag beats an environment
//! variable, which beats the default. The test harness has no flags of its own, so it
//! parses these from the environment alone.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::checks::Need;
use crate::keycloak::realm::RealmFile;
use crate::secret::{Secret, SecretKind};
use crate::session::SessionOptions;
use crate::stack::{
    Backend, BuildOptions, ExternalKeycloak, KeycloakOptions, McpServerOptions, StackConfig,
};

/// The Keycloak version used when none is given.
pub const DEFAULT_KEYCLOAK_VERSION: &str = "26.7.3";

/// The `nextcloud-mcp-server` release used when none is given.
pub const DEFAULT_MCP_SERVER_VERSION: &str = "0.202.1";

/// Where and what to run against.
#[derive(Clone, Debug, clap::Args)]
pub struct StackArgs {
    /// Where the components come from.
    #[arg(
        long,
        env = "MCP_AUTHZ_HARNESS_BACKEND",
        value_enum,
        default_value = "native"
    )]
    pub backend: Backend,

    /// Keycloak version (native backend).
    #[arg(long, env = "KEYCLOAK_VERSION", default_value = DEFAULT_KEYCLOAK_VERSION)]
    pub keycloak_version: String,

    /// A Keycloak distribution to use instead of the cache: a zip or an unpacked directory.
    #[arg(long, env = "KEYCLOAK_HOME")]
    pub keycloak_dist: Option<PathBuf>,

    /// Seconds to wait for Keycloak to become ready.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_BOOT_TIMEOUT", default_value_t = 180)]
    pub boot_timeout: u64,

    /// The realm file to import (default: the built-in baseline, keycloak/realm-export.json).
    #[arg(long, env = "MCP_AUTHZ_HARNESS_REALM")]
    pub realm: Option<PathBuf>,

    /// `nextcloud-mcp-server` release from PyPI (native backend).
    #[arg(long, env = "MCP_SERVER_VERSION", default_value = DEFAULT_MCP_SERVER_VERSION)]
    pub mcp_server_version: String,

    /// External backend: the MCP server's base URL (e.g. http://127.0.0.1:8000).
    #[arg(long, env = "MCP_URL")]
    pub mcp_url: Option<String>,

    /// The redirect URI of the harness's MCP client (`mcp-authz-harness`) at the MCP
    /// server's authorization proxy [default: a free loopback port]. An external MCP
    /// server must allow it: `ALLOWED_MCP_CLIENTS=mcp-authz-harness|<URI>`.
    #[arg(long, env = "MCP_REDIRECT_URI")]
    pub mcp_redirect_uri: Option<String>,

    /// External backend: Keycloak's base URL.
    #[arg(long, env = "KEYCLOAK_URL")]
    pub keycloak_url: Option<String>,

    /// External backend: the admin user (master realm).
    #[arg(long, env = "KEYCLOAK_ADMIN_USER")]
    pub admin_user: Option<String>,

    /// External backend: the name of the environment variable holding the admin password.
    #[arg(long, env = "KEYCLOAK_ADMIN_PASSWORD_ENV")]
    pub admin_password_env: Option<String>,

    /// Keep the run directory and component logs (redacted) after the run; never processes.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_KEEP")]
    pub keep: bool,
}

impl StackArgs {
    /// Parses the settings from the environment only (the `cargo test` harness).
    pub fn from_env() -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct EnvOnly {
            #[command(flatten)]
            args: StackArgs,
        }
        use clap::Parser;
        EnvOnly::try_parse_from(["conformance"])
            .map(|e| e.args)
            .map_err(|e| anyhow::anyhow!("invalid setting in the environment: {e}"))
    }

    pub fn realm_file(&self) -> anyhow::Result<RealmFile> {
        match &self.realm {
            Some(path) => RealmFile::load(path),
            None => Ok(RealmFile::baseline()),
        }
    }

    pub fn external(&self) -> anyhow::Result<Option<ExternalKeycloak>> {
        if self.backend != Backend::External {
            return Ok(None);
        }
        let url = self
            .keycloak_url
            .clone()
            .context("--backend external needs --keycloak-url URL (or KEYCLOAK_URL)")?;
        let admin_user = self
            .admin_user
            .clone()
            .context("--backend external needs --admin-user U (or KEYCLOAK_ADMIN_USER)")?;
        let var = self.admin_password_env.clone().context(
            "--backend external needs --admin-password-env VAR, naming the variable that holds the admin password",
        )?;
        let password = std::env::var(&var).with_context(|| {
            format!("--admin-password-env {var}: the environment variable {var} is not set")
        })?;
        Ok(Some(ExternalKeycloak {
            url,
            admin_user,
            admin_password: Secret::new(SecretKind::Password, password),
        }))
    }

    pub fn keycloak_options(&self, build: BuildOptions) -> KeycloakOptions {
        KeycloakOptions {
            version: self.keycloak_version.clone(),
            dist: self.keycloak_dist.clone(),
            build,
            boot_timeout: Duration::from_secs(self.boot_timeout),
        }
    }

    /// The session to bring up for checks needing `needs`.
    pub fn session_options(&self, needs: Vec<Need>) -> anyhow::Result<SessionOptions> {
        anyhow::ensure!(
            self.backend != Backend::Containers,
            "--backend containers is not available yet in this version of mcp-authz-harness; \
             use --backend native (the default) or --backend external"
        );
        let stack = StackConfig {
            backend: self.backend,
            keycloak: self.keycloak_options(BuildOptions::default()),
            external: self.external()?,
            needs,
            mcp_server: McpServerOptions::new(&self.mcp_server_version),
            mcp_url: self.mcp_url.clone(),
            mcp_redirect_uri: self.mcp_redirect_uri.clone(),
        };
        Ok(SessionOptions {
            stack,
            realm: self.realm_file()?,
            keep: self.keep,
        })
    }
}

/// Where `cargo test` and the CLI put reports by default.
pub fn default_report_dir() -> PathBuf {
    PathBuf::from("target/conformance")
}

/// The expectations directory: `MCP_AUTHZ_HARNESS_EXPECTATIONS`, else the crate's own.
pub fn expectations_dir() -> PathBuf {
    std::env::var_os("MCP_AUTHZ_HARNESS_EXPECTATIONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/expectations"))
}
