//! The subjects beyond Keycloak, as checks reach them whichever backend runs them: the
//! resource server and the MCP server, each a URL plus the capabilities the backend
//! offers (a request log, further MCP server instances, the token database).

use std::path::PathBuf;

use super::instances::McpInstances;
use crate::nextcloud::{RequestLog, UidMapping};
use crate::secret::Secret;

/// The client id the harness uses at the MCP server's authorization proxy.
pub const HARNESS_MCP_CLIENT: &str = "mcp-authz-harness";

/// What the subjects are pointed at: the session's realm, and the harness's client at the
/// MCP server's proxy. The session fills it once the realm is deployed.
#[derive(Clone, Debug)]
pub struct SubjectWiring {
    pub issuer: String,
    pub discovery_url: String,
    /// The MCP server's own confidential client in the realm, and its secret there.
    pub mcp_client_id: String,
    pub mcp_client_secret: Option<Secret>,
    /// The redirect URI the session listens on, which the MCP server's proxy must allow
    /// for [`HARNESS_MCP_CLIENT`].
    pub harness_redirect_uri: String,
}

/// The harness's MCP client as the server's proxy allows it (`ALLOWED_MCP_CLIENTS`):
/// one client id with one exact loopback redirect URI.
#[derive(Clone, Debug)]
pub struct HarnessClient {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_port: u16,
    /// Whether this run configured the MCP server to allow the client (it did not when
    /// it reached an external server, which must have been configured for it).
    pub allowed_by_this_run: bool,
}

impl HarnessClient {
    /// The harness's client redirecting to `redirect_uri`, not yet allowed by anything.
    pub fn new(redirect_uri: String) -> Self {
        let redirect_port = url::Url::parse(&redirect_uri)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(0);
        Self {
            client_id: HARNESS_MCP_CLIENT.into(),
            redirect_uri,
            redirect_port,
            allowed_by_this_run: false,
        }
    }
}

/// The resource server: a Nextcloud-compatible server reached by URL.
#[derive(Clone)]
pub struct ResourceServer {
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// `stand-in`, or the Nextcloud version the server reports.
    pub version: String,
    /// How it maps a token's `sub` to a user id (user_oidc's provider settings).
    pub uid_mapping: UidMapping,
    /// Every request it received, where the backend can see them (the stand-in).
    pub request_log: Option<RequestLog>,
}

impl ResourceServer {
    /// Whether this is the harness's Nextcloud stand-in.
    pub fn is_stand_in(&self) -> bool {
        self.version == STAND_IN
    }

    /// The Nextcloud user id a token with this `sub` logs in as.
    pub fn user_id(&self, sub: &str) -> String {
        self.uid_mapping.user_id(sub)
    }

    /// How many requests the log holds now (0 without a log), to read what follows.
    pub fn log_mark(&self) -> usize {
        self.request_log.as_ref().map_or(0, |l| l.snapshot().len())
    }
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("base_url", &self.base_url)
            .field("version", &self.version)
            .finish()
    }
}

/// The version the report gives the resource server when it is the stand-in.
pub const STAND_IN: &str = "stand-in";

/// The MCP server as the checks may use it.
#[derive(Clone, Debug)]
pub struct RunningMcp {
    /// Base URL without a trailing slash (the server's `NEXTCLOUD_MCP_SERVER_URL`).
    pub base_url: String,
    /// The release (an external server's from its `/api/v1/status`, else `external`).
    pub version: String,
    /// `TOKEN_ENCRYPTION_KEY`, when the harness started it.
    pub fernet_key: Option<Secret>,
    /// `TOKEN_STORAGE_DB`, when the harness started it.
    pub db_path: Option<PathBuf>,
    /// The directory holding its working dir, data and `TMPDIR`, when the harness
    /// started it.
    pub home: Option<PathBuf>,
    /// What it asks the IdP for, when known.
    pub requested_scopes: Vec<String>,
    /// Its command line, when the harness started it.
    pub argv: Vec<String>,
}

impl RunningMcp {
    /// The streamable HTTP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

/// Whether the MCP server is there for the checks.
#[derive(Clone, Debug)]
pub enum McpServerState {
    /// No selected check needs it.
    NotNeeded,
    Running(RunningMcp),
    /// It was needed and did not start; the message carries its log tail.
    Failed {
        message: String,
        log: Option<PathBuf>,
    },
    /// It was needed but there is nothing to start or reach.
    Unavailable(String),
}

/// The subjects of a stack beyond Keycloak.
pub struct Subjects {
    pub resource_server: Option<ResourceServer>,
    pub mcp: McpServerState,
    /// Further MCP server instances, where the backend can start them.
    pub instances: Option<McpInstances>,
    pub harness_client: Option<HarnessClient>,
}

impl Default for Subjects {
    fn default() -> Self {
        Self {
            resource_server: None,
            mcp: McpServerState::NotNeeded,
            instances: None,
            harness_client: None,
        }
    }
}
