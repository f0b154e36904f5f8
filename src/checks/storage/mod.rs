//! STORAGE: what the MCP server keeps at rest, and how. The server's SQLite database is
//! read directly (read-only, `crate::storage`) with the Fernet key the run gave it, after
//! driving each way credentials get there as a user would (`flows`): background
//! provisioning (Flow 2), Login Flow v2, the authorization proxy (Flow 1), and the
//! server's own registration at Keycloak when it has no static client (`dcr`).
//!
//! The session's own MCP server is only read, never changed: flows run against the
//! STORAGE lab (`lab`, another instance of the same configuration), and checks that
//! restart or re-key a server start an instance of their own.

mod at_rest;
mod dcr;
mod flows;
pub(crate) mod lab;
mod lifecycle;
mod provisioning;

pub(crate) use lab::Lab;

use super::{Area, Check, Need, Subject};
use crate::check_fn;

/// Every STORAGE check reads a database of a nextcloud-mcp-server instance the harness
/// started.
const NEEDS: &[Need] = &[
    Need::NextcloudMcpServer,
    Need::McpServer,
    Need::ResourceServer,
    Need::Browser,
    Need::McpInstances,
];
/// Checks that start their own instance and need no user in a browser.
const INSTANCE_NEEDS: &[Need] = &[
    Need::NextcloudMcpServer,
    Need::McpServer,
    Need::ResourceServer,
    Need::McpInstances,
];

const fn check(
    id: &'static str,
    title: &'static str,
    spec: &'static str,
    needs: &'static [Need],
    run: super::CheckFn,
) -> Check {
    Check {
        id,
        title,
        area: Area::Storage,
        spec,
        subject: Subject::McpServer,
        needs,
        spec_revisions: crate::checks::NO_REVISION,
        run,
    }
}

pub const CHECKS: &[Check] = &[
    check(
        "STORAGE-01",
        "the token database sits at the configured TOKEN_STORAGE_DB with mode 0600, its journals too, and nowhere else",
        "RFC6819-5.1.4.1.1",
        INSTANCE_NEEDS,
        check_fn!(at_rest::path_and_mode),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-02",
        "without TOKEN_STORAGE_DB the ephemeral database is gone from the temp dir after SIGTERM",
        "RFC6749-10.4; reference config.py get_token_db_path (deleted at exit)",
        NEEDS,
        check_fn!(lifecycle::ephemeral_removed),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-03",
        "after Flow 2 the user's refresh token is stored Fernet-encrypted and decrypts to their active Keycloak offline token",
        "RFC6749-10.4; RFC6819-5.1.4.1.3; RFC7662-2.2",
        NEEDS,
        check_fn!(provisioning::flow2_stored),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-04",
        "after the proxy flow (Flow 1) no IdP token is persisted anywhere in the database, encrypted or not",
        "RFC6749-10.4; RFC9700-4.14",
        NEEDS,
        check_fn!(provisioning::flow1_not_stored),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-05",
        "after Login Flow v2 the app password is stored Fernet-encrypted under the user's sub and logs in as that user",
        "RFC6819-5.1.4.1.3; Nextcloud-Login-Flow-v2",
        NEEDS,
        check_fn!(provisioning::app_password_stored),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-06",
        "the raw bytes of the database and its journals hold no token, secret or password the run handled, nor any JWT segment of one",
        "RFC6819-5.1.4.1.3; RFC6749-10.3; RFC6749-10.4",
        NEEDS,
        check_fn!(at_rest::no_secret_in_clear),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-07",
        "every stored encrypted value opens with its instance's TOKEN_ENCRYPTION_KEY, has an IV no other stored value shares, and was made during the run",
        "RFC6819-5.1.4.1.4; Fernet-spec (a unique IV per token; the timestamp of its making)",
        NEEDS,
        check_fn!(at_rest::keying),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-08",
        "restarted with another key, the server refuses clearly in the tool result and re-provisioning works",
        "OWASP-ASVS-4.0.3-V6.2.1 (fail securely); RFC6819-5.1.4.1.4",
        NEEDS,
        check_fn!(lifecycle::rekeyed),
    ),
    check(
        "STORAGE-09",
        "revoke_nextcloud_access removes the stored refresh token and Keycloak then says it is inactive",
        "RFC7009-2.1; RFC9700-4.14",
        NEEDS,
        check_fn!(provisioning::revoked),
    ),
    check(
        "STORAGE-10",
        "without a static client the server registers itself at Keycloak",
        "RFC7591-3; MCP-authz-2025-06-18-DCR (SHOULD; MAY from 2025-11-25; deprecated in favour of CIMD in 2026-07-28)",
        INSTANCE_NEEDS,
        check_fn!(dcr::registers),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-11",
        "oauth_clients: the client secret and registration access token are stored encrypted and are Keycloak's",
        "RFC6819-5.1.4.1.3; RFC7592-2.1",
        INSTANCE_NEEDS,
        check_fn!(dcr::clients_encrypted),
    ).revisions(crate::checks::ALL_REVISIONS),
    check(
        "STORAGE-12",
        "a restart keeps the registered client (client_secret_expires_at 0 never expires): no orphan at Keycloak",
        "RFC7591-3.2.1",
        INSTANCE_NEEDS,
        check_fn!(dcr::restart_keeps_client),
    ),
    check(
        "STORAGE-13",
        "what the server stores, table by table, is all encrypted where it is a credential and matches the pinned inventory",
        "OWASP-ASVS-4.0.3-V8.3.4; RFC6819-5.1.4.1.3",
        NEEDS,
        check_fn!(at_rest::inventory),
    ).revisions(crate::checks::ALL_REVISIONS),
];
