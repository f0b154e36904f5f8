//! LINT-08 (error): a service account on a public client.
//!
//! A service account obtains tokens with the client credentials grant (RFC 6749 §4.4),
//! which is for confidential clients only: a public client has no secret, so its
//! service account would be open to anyone who knows the clientId. Keycloak's admin
//! console refuses the combination; an import does not check it.

use super::{Ctx, Finding, Severity};

const RULE: &str = "LINT-08";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, client) in ctx.realm.clients.iter().enumerate() {
        if client.is_public() && client.service_accounts_enabled == Some(true) {
            out.push(Finding::new(
                RULE,
                Severity::Error,
                format!("{}.serviceAccountsEnabled", ctx.paths.client(i)),
                format!(
                    "public client `{}` has a service account: client credentials need a \
                     confidential client (RFC 6749 §4.4). Set serviceAccountsEnabled to false, or \
                     make the client confidential (publicClient false, with a secret)",
                    client.client_id()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_fixture_yields_an_error() {
        let found = findings(&fixture("lint-08-public-service-account.json"));
        assert_finding(
            &found,
            RULE,
            Severity::Error,
            "clients[mcp-inspector].serviceAccountsEnabled",
        );
    }

    #[test]
    fn the_baseline_service_account_is_on_a_confidential_client() {
        assert_eq!(of(&findings(&baseline()), RULE), vec![]);
    }
}
