//! LINT-06: anonymous dynamic client registration (RFC 7591, how MCP clients register)
//! that the realm's registration policies refuse from loopback.
//!
//! Keycloak's `trusted-hosts` policy (`TrustedHostClientRegistrationPolicy`) refuses a
//! registration with 403 `Host not trusted.` unless the sender's address matches a
//! `trusted-hosts` entry (`host-sending-registration-request-must-match`), and refuses
//! redirect URIs whose host is not an entry (`client-uris-must-match`); both options are
//! on when absent. At import Keycloak adds its default policies only when the file has
//! none at all (`DefaultClientRegistrationPolicies.addDefaultPolicies`), and the default
//! anonymous Trusted Hosts policy trusts no host. Hence:
//!
//! - **error**: no registration policy in the file (the defaults refuse every anonymous
//!   registration), or an anonymous `trusted-hosts` policy whose list has neither
//!   `127.0.0.1` nor `localhost`.
//! - **warning**: policies present but no anonymous `trusted-hosts` one (Keycloak adds
//!   nothing, so anonymous registration is open to any host, without the default limits);
//!   or a list with only one of the two loopback names while redirect URIs are checked
//!   (clients registering `http://localhost:...` or `http://127.0.0.1:...` are refused).

use super::{Ctx, Finding, REGISTRATION_POLICIES_PATH, Severity, registration_policies};
use crate::keycloak::model::Component;

const RULE: &str = "LINT-06";
const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let policies = registration_policies(ctx.realm);
    if policies.is_empty() {
        out.push(Finding::new(
            RULE,
            Severity::Error,
            REGISTRATION_POLICIES_PATH,
            "the file defines no client-registration policy, so Keycloak adds its defaults at \
             import, among them an anonymous Trusted Hosts policy that trusts no host: anonymous \
             DCR is refused from everywhere with 403 \"Host not trusted.\". Add the anonymous \
             policies with a trusted-hosts policy listing 127.0.0.1 and localhost (as the \
             baseline realm does)",
        ));
        return;
    }
    let trusted_hosts: Vec<(usize, &Component)> = policies
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.provider_id.as_deref() == Some("trusted-hosts")
                && p.sub_type.as_deref() == Some("anonymous")
        })
        .collect();
    if trusted_hosts.is_empty() {
        out.push(Finding::new(
            RULE,
            Severity::Warning,
            REGISTRATION_POLICIES_PATH,
            "no anonymous trusted-hosts policy: because the file has other registration policies, \
             Keycloak adds none of its defaults, so anonymous DCR is accepted from any host with \
             redirect URIs on any host. Add an anonymous trusted-hosts policy listing the hosts \
             that may register (127.0.0.1 and localhost for local MCP clients)",
        ));
        return;
    }
    for (i, policy) in trusted_hosts {
        let checks_sender = option(policy, "host-sending-registration-request-must-match");
        let checks_uris = option(policy, "client-uris-must-match");
        if !checks_sender && !checks_uris {
            continue;
        }
        let hosts = policy.config_values("trusted-hosts");
        let listed = LOOPBACK.map(|h| hosts.iter().any(|x| x.eq_ignore_ascii_case(h)));
        let path = format!("{}.config.trusted-hosts", ctx.paths.registration_policy(i));
        match listed {
            [false, false] => out.push(Finding::new(
                RULE,
                Severity::Error,
                path,
                "lists neither 127.0.0.1 nor localhost, so anonymous DCR from this machine is \
                 refused with 403 \"Host not trusted.\". Add both",
            )),
            [true, false] | [false, true] if checks_uris => {
                let (has, lacks) = if listed[0] {
                    (LOOPBACK[0], LOOPBACK[1])
                } else {
                    (LOOPBACK[1], LOOPBACK[0])
                };
                out.push(Finding::new(
                    RULE,
                    Severity::Warning,
                    path,
                    format!(
                        "lists {has} but not {lacks}: clients whose redirect URIs use {lacks} are \
                         refused (client-uris-must-match compares host names). Add {lacks}"
                    ),
                ));
            }
            _ => {}
        }
    }
}

/// A boolean option of the policy: on unless its first value is not `true`.
fn option(policy: &Component, key: &str) -> bool {
    policy
        .config_values(key)
        .first()
        .is_none_or(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::keycloak::model::Realm;

    #[test]
    fn the_fixture_yields_an_error_for_a_policy_without_loopback() {
        let found = findings(&fixture("lint-06-dcr-refused-from-loopback.json"));
        assert_finding(
            &found,
            RULE,
            Severity::Error,
            "components.ClientRegistrationPolicy[Trusted Hosts/anonymous].config.trusted-hosts",
        );
    }

    #[test]
    fn the_baseline_trusts_loopback() {
        assert_eq!(of(&findings(&baseline()), RULE), vec![]);
    }

    fn realm(policies: &str) -> Realm {
        Realm::from_text(
            &format!(
                r#"{{"realm": "r", "components": {{"org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy": {policies}}}}}"#
            ),
            "t",
        )
        .unwrap()
    }

    fn verdict(policies: &str) -> Vec<(Severity, String)> {
        of(&findings(&realm(policies)), RULE)
            .into_iter()
            .map(|f| (f.severity, f.path))
            .collect()
    }

    #[test]
    fn no_policy_at_all_means_keycloaks_refusing_defaults() {
        let r = Realm::from_text(r#"{"realm": "r"}"#, "t").unwrap();
        let found = of(&findings(&r), RULE);
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!(found[0].path, REGISTRATION_POLICIES_PATH);
    }

    #[test]
    fn policies_without_anonymous_trusted_hosts_warn() {
        let v = verdict(
            r#"[{"name": "Max", "providerId": "max-clients", "subType": "anonymous", "config": {"max-clients": ["200"]}}]"#,
        );
        assert_eq!(
            v,
            [(Severity::Warning, REGISTRATION_POLICIES_PATH.to_owned())]
        );
    }

    #[test]
    fn one_loopback_name_warns_and_disabled_checks_refuse_nothing() {
        let th = |hosts: &str, uris: &str| {
            format!(
                r#"[{{"name": "TH", "providerId": "trusted-hosts", "subType": "anonymous",
                    "config": {{"trusted-hosts": {hosts}, "client-uris-must-match": ["{uris}"],
                               "host-sending-registration-request-must-match": ["false"]}}}}]"#
            )
        };
        let path = "components.ClientRegistrationPolicy[TH/anonymous].config.trusted-hosts";
        assert_eq!(
            verdict(&th(r#"["localhost"]"#, "true")),
            [(Severity::Warning, path.to_owned())]
        );
        assert_eq!(verdict(&th(r#"["localhost"]"#, "false")), []);
        assert_eq!(verdict(&th("[]", "false")), []);
        assert_eq!(verdict(&th(r#"["LOCALHOST", "127.0.0.1"]"#, "true")), []);
    }
}
