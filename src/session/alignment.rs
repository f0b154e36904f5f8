//! The realm aligned with the MCP server's scopes: after the MCP server starts, the
//! session compares the scopes it lists and asks for with the realm's client scopes and,
//! when the session imported the realm, creates what is missing. MCP-02 reports it.

use crate::evidence::Evidence;
use crate::http::{DEFAULT_TIMEOUT, Http};
use crate::keycloak::admin::AdminClient;
use crate::keycloak::realm::MCP_SERVER_CLIENT;
use crate::mcp::{ProtectedResourceMetadata, ScopeAlignment, prm, scopes};
use crate::stack::RunningMcp;

use super::DeployedRealm;

/// Compares the server's scopes with the realm and, when the session imported the realm,
/// creates what is missing. Recorded in the session's setup evidence.
pub(super) async fn align(
    admin: &AdminClient,
    realm: &DeployedRealm,
    mcp: &RunningMcp,
    setup: &Evidence,
) -> anyhow::Result<ScopeAlignment> {
    setup.step("align the realm with the MCP server's scopes");
    let http = Http::new(DEFAULT_TIMEOUT).recording(setup);
    let [inserted, _] = prm::well_known_urls(&mcp.base_url);
    let meta = ProtectedResourceMetadata::fetch(&http, &inserted).await?;
    let change = realm.imported_by_us();
    if !change {
        setup.note("the realm was not imported by this run: compared only, nothing created");
    }
    let admin = admin.recording(setup);
    let out = scopes::align(
        &admin,
        &realm.name,
        MCP_SERVER_CLIENT,
        &meta.scopes_supported,
        &mcp.requested_scopes,
        change,
    )
    .await?;
    setup.note(format!(
        "listed {}, requested {}; missing {:?}, not offered to {MCP_SERVER_CLIENT} {:?}; created {:?}",
        out.listed.len(),
        out.requested.len(),
        out.missing,
        out.not_offered,
        out.created
    ));
    Ok(out)
}
