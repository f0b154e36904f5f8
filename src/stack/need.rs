//! What a check may need from the stack beyond Keycloak, and why a stack cannot offer it.

/// A component or capability a check needs, beyond Keycloak (always there).
///
/// Components are started only when a selected check needs them. Capabilities are what a
/// backend may or may not offer; a check that needs one declares it, and where the
/// backend lacks it the check is reported unavailable with the backend's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Need {
    /// A WebDriver session on Chromium, for Keycloak's real login page.
    Browser,
    /// The MCP server under test.
    McpServer,
    /// The resource server (Nextcloud, or its stand-in).
    ResourceServer,
    /// Further instances of the MCP server with other settings (another key, no static
    /// client, ...), whose token database the harness can read.
    McpInstances,
    /// What the resource server received, request by request (the harness's stand-in
    /// keeps that log; a Nextcloud the harness did not start shows it nobody).
    ResourceServerLog,
    /// The MCP server is nextcloud-mcp-server: the check tests its authorization proxy,
    /// its Login Flow v2 provisioning, its token database or its Nextcloud tools.
    NextcloudMcpServer,
}

impl Need {
    pub fn name(self) -> &'static str {
        match self {
            Need::Browser => "browser",
            Need::McpServer => "mcp-server",
            Need::ResourceServer => "resource-server",
            Need::McpInstances => "mcp-instances",
            Need::ResourceServerLog => "resource-server-log",
            Need::NextcloudMcpServer => "nextcloud-mcp-server",
        }
    }
}

/// Why a need cannot be met in this stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Unavailable {
    pub need: Need,
    pub reason: String,
    /// The backend does not offer this by design (an external deployment has no further
    /// MCP server instances): a skip even under `CI=true`. Otherwise something the
    /// backend should have had is missing (ChromeDriver not installed): a failure in CI.
    pub by_design: bool,
}

impl Unavailable {
    /// Something this backend should offer is missing here.
    pub fn missing(need: Need, reason: impl Into<String>) -> Self {
        Self {
            need,
            reason: reason.into(),
            by_design: false,
        }
    }

    /// This backend does not offer it.
    pub fn by_design(need: Need, reason: impl Into<String>) -> Self {
        Self {
            need,
            reason: reason.into(),
            by_design: true,
        }
    }
}
