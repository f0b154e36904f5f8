//! The MCP side of the harness: a client for the streamable HTTP transport, the
//! protected resource metadata the server publishes (RFC 9728), and the alignment of the
//! realm with the scopes the server names.

pub mod arguments;
pub mod challenge;
pub mod client;
pub mod prm;
pub mod provision;
pub mod scope_map;
pub mod scopes;
mod session_ids;

pub use client::{
    ElicitationPolicy, McpClient, McpClientOptions, ServerRequest, ToolInfo, ToolOutcome,
};
pub use prm::ProtectedResourceMetadata;
pub use scopes::ScopeAlignment;

/// The reference MCP server's package on PyPI (and the name its images carry).
pub const REFERENCE_PACKAGE: &str = "nextcloud-mcp-server";
