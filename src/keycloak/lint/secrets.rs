//! LINT-05: literal secrets that look like examples or defaults.
//!
//! A client `secret` or a user credential `value` written in the file is imported as is:
//! a value copied from an example (`change-in-production`, `changeme`, `secret`...) or a
//! short one is a credential anyone can guess. **error** for those; nothing for `${...}`
//! placeholders (the harness fills `${MCP_HARNESS_...}` with per-run values; Keycloak
//! resolves vault references); **info** for `**********`, the mask Keycloak's exports and
//! admin API write instead of a secret, which the harness replaces before import.
//!
//! Messages never repeat the value (secrets stay out of reports): they name the marker
//! word or the length.

use super::{Ctx, Finding, Severity};
use crate::keycloak::model::has_placeholder;
use crate::keycloak::realm::{password_placeholder, secret_placeholder};

const RULE: &str = "LINT-05";

/// Words example and default secrets contain, lower case.
const MARKERS: &[&str] = &[
    "change-in-production",
    "changeme",
    "change-me",
    "secret",
    "password",
    "example",
];

/// Shorter literal secrets are guessable.
const MIN_LEN: usize = 16;

/// What Keycloak writes instead of a secret.
const MASK: &str = "**********";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, client) in ctx.realm.clients.iter().enumerate() {
        if let Some(secret) = &client.secret {
            let path = format!("{}.secret", ctx.paths.client(i));
            let placeholder = secret_placeholder(client.client_id());
            judge(secret, path, &placeholder, out);
        }
    }
    for (i, user) in ctx.realm.users.iter().enumerate() {
        for (j, cred) in user.credentials.iter().enumerate() {
            if let Some(value) = &cred.value {
                let path = format!("{}.credentials[{j}].value", ctx.paths.user(i));
                let placeholder =
                    password_placeholder(user.username.as_deref().unwrap_or_default());
                judge(value, path, &placeholder, out);
            }
        }
    }
}

fn judge(value: &str, path: String, placeholder: &str, out: &mut Vec<Finding>) {
    if has_placeholder(value) {
        return;
    }
    if value == MASK {
        out.push(Finding::new(
            RULE,
            Severity::Info,
            path,
            format!(
                "masked (`{MASK}`): exports mask secrets; the harness replaces them with per-run \
                 values before import. Write `${{{placeholder}}}` to say so explicitly"
            ),
        ));
        return;
    }
    let lower = value.to_lowercase();
    let why = match MARKERS.iter().find(|m| lower.contains(*m)) {
        Some(marker) => format!("contains `{marker}`, like example and default values do"),
        None if value.chars().count() < MIN_LEN => format!(
            "is {} characters long (fewer than {MIN_LEN})",
            value.chars().count()
        ),
        None => return,
    };
    out.push(Finding::new(
        RULE,
        Severity::Error,
        path,
        format!(
            "a literal secret that {why}: anyone can guess it. Replace it with the placeholder \
             `${{{placeholder}}}` (the harness fills it per run), or a vault reference in \
             production"
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_fixture_yields_an_error_for_the_example_secret() {
        let found = findings(&fixture("lint-05-example-secret.json"));
        assert_finding(
            &found,
            RULE,
            Severity::Error,
            "clients[nextcloud-mcp-server].secret",
        );
        assert!(
            found
                .iter()
                .all(|f| !f.message.contains("change-in-production-0")),
            "the secret must not be repeated: {found:#?}"
        );
    }

    #[test]
    fn the_baseline_uses_placeholders() {
        assert_eq!(of(&findings(&baseline()), RULE), vec![]);
    }

    #[test]
    fn verdicts() {
        let verdict = |v: &str| {
            let mut out = Vec::new();
            judge(v, "p".into(), "MCP_HARNESS_X", &mut out);
            out.first().map(|f| f.severity)
        };
        assert_eq!(verdict("${MCP_HARNESS_SECRET_X}"), None);
        assert_eq!(verdict("${vault.mcp_secret}"), None);
        assert_eq!(verdict("**********"), Some(Severity::Info));
        assert_eq!(verdict("ChangeMe-0123456789abcdef"), Some(Severity::Error));
        assert_eq!(verdict("short"), Some(Severity::Error));
        assert_eq!(verdict("q8Zr2LwX0pTn4VbKs7YdHf3M"), None);
    }
}
