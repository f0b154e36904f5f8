//! Which MCP server the checks judge. The reference, `nextcloud-mcp-server`, gets every
//! check; a generic MCP server, only those of MCP authorization that need nothing of
//! Nextcloud: what the others test (the reference's authorization proxy, its Login Flow
//! v2 provisioning, its token database, Nextcloud's tools and user_oidc) it does not have.

use super::Need;

/// The MCP server under test, as `--mcp-subject` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum McpSubject {
    /// nextcloud-mcp-server, the reference: every check.
    #[default]
    NextcloudMcpServer,
    /// Any MCP server that validates Keycloak's tokens itself (RFC 9728 metadata, Bearer
    /// challenges): the native backend starts FastMCP from PyPI as one; the external
    /// backend reaches yours at --mcp-url.
    Generic,
}

impl McpSubject {
    pub fn name(self) -> &'static str {
        match self {
            McpSubject::NextcloudMcpServer => "nextcloud-mcp-server",
            McpSubject::Generic => "generic",
        }
    }

    /// What a check cannot have with this subject, and why: a skip by design.
    pub fn lacks(self) -> &'static [(Need, &'static str)] {
        match self {
            McpSubject::NextcloudMcpServer => &[],
            McpSubject::Generic => &[
                (
                    Need::NextcloudMcpServer,
                    "Nextcloud-specific: the subject is a generic MCP server (--mcp-subject \
                     generic), and this check tests what only nextcloud-mcp-server has (its \
                     authorization proxy, Login Flow v2 provisioning, token database or \
                     Nextcloud tools)",
                ),
                (
                    Need::McpInstances,
                    "the harness starts further MCP server instances (other configurations, \
                     or a stack of a check's own) only of nextcloud-mcp-server, and the \
                     subject is a generic MCP server",
                ),
                (
                    Need::ResourceServerLog,
                    "a generic MCP server calls no resource server the harness can watch",
                ),
            ],
        }
    }
}
