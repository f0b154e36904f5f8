//! Settings shared by the CLI and the `cargo test` harness: a flag beats an environment
//! variable, which beats the default. The test harness has no flags of its own, so it
//! parses these from the environment alone.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::keycloak::realm::RealmFile;
use crate::nextcloud::UidMapping;
use crate::secret::{Secret, SecretKind};
use crate::session::SessionOptions;
use crate::stack::{
    Backend, BuildOptions, ContainersOptions, ExternalStack, KeycloakOptions, McpServerOptions,
    McpSubject, Need, StackConfig,
};

/// The Keycloak version used when none is given.
pub const DEFAULT_KEYCLOAK_VERSION: &str = "26.7.3";

/// The `nextcloud-mcp-server` release used when none is given.
pub const DEFAULT_MCP_SERVER_VERSION: &str = "0.202.1";

/// A release version as Maven Central and PyPI spell them (`26.7.3`, `0.202.1`,
/// `1.0rc1`): it becomes part of cache paths and of a Maven coordinate and a pip
/// requirement, so nothing else (no `/`, `..`, spaces or shell characters) is accepted.
pub fn version_arg(s: &str) -> Result<String, String> {
    let ok = s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
        && !s.contains("..");
    match ok {
        true => Ok(s.to_owned()),
        false => Err(format!(
            "{s:?} is not a release version; give one like {DEFAULT_KEYCLOAK_VERSION} \
             (digits and dots, as Maven Central or PyPI list it)"
        )),
    }
}

/// An `http://` URL (this build speaks no TLS; the stack is on loopback).
pub fn http_url_arg(s: &str) -> Result<String, String> {
    match url::Url::parse(s) {
        Ok(u) if u.scheme() == "http" && u.host().is_some() => Ok(s.to_owned()),
        Ok(u) => Err(format!(
            "{s:?}: only http:// URLs with a host are supported here, not {}:// (e.g. http://127.0.0.1:8080)",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "{s:?} is not a URL ({e}); give one like http://127.0.0.1:8080"
        )),
    }
}

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

    /// Keycloak version (native and containers backends; the containers backend's image tag).
    #[arg(long, env = "KEYCLOAK_VERSION", default_value = DEFAULT_KEYCLOAK_VERSION, value_parser = version_arg)]
    pub keycloak_version: String,

    /// A Keycloak distribution to use instead of the cache: a zip or an unpacked directory.
    #[arg(long, env = "KEYCLOAK_HOME")]
    pub keycloak_dist: Option<PathBuf>,

    /// Seconds to wait for Keycloak to become ready.
    #[arg(long, env = "MCP_AUTHZ_HARNESS_BOOT_TIMEOUT", default_value_t = 180, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub boot_timeout: u64,

    /// The realm file to import (default: the built-in baseline, keycloak/realm-export.json).
    #[arg(long, env = "MCP_AUTHZ_HARNESS_REALM")]
    pub realm: Option<PathBuf>,

    /// `nextcloud-mcp-server` release (native backend: from PyPI; containers backend: the
    /// image tag).
    #[arg(long, env = "MCP_SERVER_VERSION", default_value = DEFAULT_MCP_SERVER_VERSION, value_parser = version_arg)]
    pub mcp_server_version: String,

    /// Which MCP server the checks judge: nextcloud-mcp-server (every check), or a generic
    /// MCP server (the checks of MCP authorization that need nothing of Nextcloud; the
    /// native backend starts FastMCP as one, the external backend reaches --mcp-url).
    #[arg(
        long,
        env = "MCP_AUTHZ_HARNESS_MCP_SUBJECT",
        value_enum,
        default_value = "nextcloud-mcp-server"
    )]
    pub mcp_subject: McpSubject,

    /// Containers backend: Keycloak's image, tagged with --keycloak-version unless it names
    /// a tag (`images build` makes mcp-authz-harness/keycloak).
    #[arg(long, env = "MCP_AUTHZ_HARNESS_KEYCLOAK_IMAGE", default_value = crate::stack::containers::images::KEYCLOAK_OFFICIAL)]
    pub keycloak_image: String,

    /// Containers backend: the MCP server's image, tagged with --mcp-server-version unless
    /// it names a tag (`images build` makes mcp-authz-harness/nextcloud-mcp-server).
    #[arg(long, env = "MCP_AUTHZ_HARNESS_MCP_SERVER_IMAGE", default_value = crate::stack::containers::images::MCP_SERVER_OFFICIAL)]
    pub mcp_server_image: String,

    /// External backend: the MCP server's base URL (e.g. http://127.0.0.1:8000).
    #[arg(long, env = "MCP_URL", value_parser = http_url_arg)]
    pub mcp_url: Option<String>,

    /// The redirect URI of the harness's MCP client (`mcp-authz-harness`) at the MCP
    /// server's authorization proxy [default: a free loopback port]. An external MCP
    /// server must allow it: `ALLOWED_MCP_CLIENTS=mcp-authz-harness|<URI>`.
    #[arg(long, env = "MCP_REDIRECT_URI", value_parser = http_url_arg)]
    pub mcp_redirect_uri: Option<String>,

    /// External backend: a `stack.json` as `up` writes it (Keycloak URL and admin
    /// credentials, the MCP server, the resource server, the harness's redirect URI);
    /// flags given as well take precedence over it.
    #[arg(long = "stack", env = "MCP_AUTHZ_HARNESS_STACK", value_name = "PATH")]
    pub stack_file: Option<PathBuf>,

    /// External backend: the resource server's base URL (a Nextcloud with user_oidc).
    #[arg(long, env = "RESOURCE_SERVER_URL", value_parser = http_url_arg)]
    pub resource_server_url: Option<String>,

    /// External backend: how the resource server's user_oidc names users:
    /// unique:<provider id>, prefix:<provider identifier> or plain [default: unique:1].
    #[arg(long, env = "USER_OIDC_UID_MAPPING", value_parser = UidMapping::parse)]
    pub uid_mapping: Option<UidMapping>,

    /// External and containers backends: a WebDriver server (e.g. http://127.0.0.1:4444,
    /// a Selenium image on the host network) driving a Chromium that reaches Keycloak;
    /// without it a local ChromeDriver is started.
    #[arg(long, env = "WEBDRIVER_URL", value_parser = http_url_arg)]
    pub webdriver_url: Option<String>,

    /// External backend: Keycloak's base URL.
    #[arg(long, env = "KEYCLOAK_URL", value_parser = http_url_arg)]
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

    /// The external deployment: `--stack` read first, then the flags over it.
    pub fn external(&self) -> anyhow::Result<Option<ExternalStack>> {
        if self.backend != Backend::External {
            return Ok(None);
        }
        let file = match &self.stack_file {
            Some(path) => Some(StackFile::load(path)?),
            None => None,
        };
        let from_file = |f: fn(&StackFile) -> Option<String>| file.as_ref().and_then(f);
        let keycloak_url = self
            .keycloak_url
            .clone()
            .or_else(|| from_file(|f| f.keycloak_url.clone()))
            .context(
                "--backend external needs --stack PATH or --keycloak-url URL (or KEYCLOAK_URL)",
            )?;
        let admin_user = self
            .admin_user
            .clone()
            .or_else(|| from_file(|f| f.admin_user.clone()))
            .context(
                "--backend external needs --stack PATH or --admin-user U (or KEYCLOAK_ADMIN_USER)",
            )?;
        let admin_password = match (&self.admin_password_env, &file) {
            (Some(var), _) => std::env::var(var).with_context(|| {
                format!("--admin-password-env {var}: the environment variable {var} is not set")
            })?,
            (None, Some(f)) => f.admin_password.clone().with_context(|| {
                format!("{}: keycloak.admin_password is missing", f.path.display())
            })?,
            (None, None) => anyhow::bail!(
                "--backend external needs --stack PATH or --admin-password-env VAR, naming the variable that holds the admin password"
            ),
        };
        Ok(Some(ExternalStack {
            keycloak_url,
            admin_user,
            admin_password: Secret::new(SecretKind::Password, admin_password),
            mcp_url: self
                .mcp_url
                .clone()
                .or_else(|| from_file(|f| f.mcp_url.clone())),
            // Only for the server the file describes: a --mcp-url flag names another.
            mcp_version: match &self.mcp_url {
                Some(_) => None,
                None => from_file(|f| f.mcp_version.clone()),
            },
            resource_server_url: self
                .resource_server_url
                .clone()
                .or_else(|| from_file(|f| f.resource_server_url.clone())),
            uid_mapping: self
                .uid_mapping
                .clone()
                .or_else(|| file.as_ref().and_then(|f| f.uid_mapping.clone()))
                .unwrap_or_default(),
            webdriver_url: self.webdriver_url.clone(),
        }))
    }

    /// The redirect URI of the harness's client at the MCP server's proxy: the flag, else
    /// the one `stack.json` names.
    pub fn redirect_uri(&self) -> anyhow::Result<Option<String>> {
        if let Some(uri) = &self.mcp_redirect_uri {
            return Ok(Some(uri.clone()));
        }
        match (&self.stack_file, self.backend) {
            (Some(path), Backend::External) => Ok(StackFile::load(path)?.redirect_uri),
            _ => Ok(None),
        }
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
            !(self.mcp_subject == McpSubject::Generic && self.backend == Backend::Containers),
            "--mcp-subject generic runs on --backend native (the harness starts FastMCP) or \
             --backend external (your MCP server at --mcp-url); the containers backend has no \
             image for it"
        );
        let stack = StackConfig {
            backend: self.backend,
            keycloak: self.keycloak_options(BuildOptions::session(&self.keycloak_version)),
            external: self.external()?,
            needs,
            mcp_server: McpServerOptions::new(&self.mcp_server_version),
            subject: self.mcp_subject,
            stand_in_leniency: Default::default(),
            containers: ContainersOptions {
                keycloak_image: self.keycloak_image.clone(),
                mcp_server_image: self.mcp_server_image.clone(),
                webdriver_url: self.webdriver_url.clone(),
            },
        };
        let redirect_uri = self.redirect_uri()?;
        if let Some(uri) = &redirect_uri {
            ensure_listenable(uri)?;
        }
        Ok(SessionOptions {
            stack,
            realm: self.realm_file()?,
            keep: self.keep,
            run_id: None,
            redirect_uri,
            update_pins: false,
        })
    }
}

/// The harness listens on 127.0.0.1 at the port of its redirect URI: a port another
/// process holds is said now, before Keycloak boots, not after.
fn ensure_listenable(uri: &str) -> anyhow::Result<()> {
    let Some(port) = url::Url::parse(uri).ok().and_then(|u| u.port()) else {
        return Ok(());
    };
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|e| {
            anyhow::anyhow!(
                "the redirect URI {uri} needs the harness to listen on 127.0.0.1:{port}, \
                 and that port is taken: {e}"
            )
        })
}

/// What the external backend reads from a `stack.json` that `up` wrote.
struct StackFile {
    path: PathBuf,
    keycloak_url: Option<String>,
    admin_user: Option<String>,
    admin_password: Option<String>,
    mcp_url: Option<String>,
    /// The MCP server `up` started, e.g. `fastmcp-4.2.3`.
    mcp_version: Option<String>,
    resource_server_url: Option<String>,
    uid_mapping: Option<UidMapping>,
    redirect_uri: Option<String>,
}

impl StackFile {
    fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "--stack {}: cannot read it (it is the stack.json that `mcp-authz-harness up` prints)",
                path.display()
            )
        })?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--stack {}: not JSON", path.display()))?;
        let text_at = |pointer: &str| {
            json.pointer(pointer)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let uid_mapping = match text_at("/resource_server/uid_mapping") {
            Some(m) => Some(UidMapping::parse(&m).map_err(|e| {
                anyhow::anyhow!(
                    "--stack {}: resource_server.uid_mapping: {e}",
                    path.display()
                )
            })?),
            None => None,
        };
        Ok(Self {
            path: path.to_owned(),
            keycloak_url: text_at("/keycloak/url"),
            admin_user: text_at("/keycloak/admin_user"),
            admin_password: text_at("/keycloak/admin_password"),
            mcp_url: text_at("/mcp/base_url"),
            mcp_version: text_at("/mcp/version"),
            resource_server_url: text_at("/resource_server/url"),
            uid_mapping,
            redirect_uri: text_at("/harness_mcp_client/redirect_uri"),
        })
    }
}

/// Where `cargo test` and the CLI put reports by default.
pub fn default_report_dir() -> PathBuf {
    PathBuf::from("target/conformance")
}

/// The crate's `fixtures/` directory (realms, expectations, pins, the mutation lists).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The expectations directory: `MCP_AUTHZ_HARNESS_EXPECTATIONS`, else the crate's own.
pub fn expectations_dir() -> PathBuf {
    std::env::var_os("MCP_AUTHZ_HARNESS_EXPECTATIONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/expectations"))
}
