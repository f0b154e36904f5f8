//! The mutants: deliberately broken deployments, each with the checks that must catch it.
//!
//! A mutant names the defect, why it matters, the checks it runs, and the checks that must
//! fail on it (`kills`). Defects are kept small and real: each is a setting someone could
//! ship, a leniency a resource server could have, or a component that breaks under load.

use serde_json::Value;

use super::interposer::Fault;
use super::patches::*;
use crate::nextcloud::Leniency;

/// What is broken.
#[derive(Clone, Copy, Debug)]
pub enum Defect {
    /// A patch to the baseline realm, imported next to it (a joined session).
    Realm(fn(&mut Value)),
    /// The Nextcloud stand-in with a leniency, and an MCP server wired to it.
    ResourceServer(Leniency),
    /// The MCP server with extra settings, or another release.
    McpServer {
        set_env: &'static [(&'static str, &'static str)],
        release: Option<&'static str>,
    },
    /// Keycloak booted with these features disabled (a session of its own).
    Keycloak {
        features_disabled: &'static [&'static str],
    },
    /// Between the harness and one component, every request answers 503 or stalls,
    /// switched on after bring-up: none of the checks it runs may pass.
    Fault { component: Component, fault: Fault },
}

/// A component a fault mutant cuts off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    Keycloak,
    McpServer,
    ResourceServer,
}

/// One mutant.
#[derive(Clone, Copy, Debug)]
pub struct Mutant {
    /// Stable, like check IDs: `M-` plus a short name.
    pub id: &'static str,
    pub title: &'static str,
    pub defect: Defect,
    /// What to run on it: areas and check IDs, as `--only` takes them.
    pub runs: &'static str,
    /// Checks that pass on the baseline and must fail here (fault mutants: none may pass
    /// instead, so this is empty).
    pub kills: &'static [&'static str],
}

impl Mutant {
    pub fn kind(&self) -> &'static str {
        match self.defect {
            Defect::Realm(_) => "realm",
            Defect::ResourceServer(_) => "resource-server",
            Defect::McpServer { .. } => "mcp-server",
            Defect::Keycloak { .. } => "keycloak",
            Defect::Fault { .. } => "fault",
        }
    }
}

const STRICT: Leniency = Leniency {
    accept_alg_none: false,
    skip_signature: false,
    ignore_exp: false,
    ignore_iss: false,
    ignore_aud: false,
    sub_optional: false,
};

pub const MUTANTS: &[Mutant] = &[
    Mutant {
        id: "M-REALM-ROTATION",
        title: "refresh tokens are not rotated (revokeRefreshToken false)",
        defect: Defect::Realm(no_rotation),
        runs: "TOKEN",
        kills: &["TOKEN-01"],
    },
    Mutant {
        id: "M-REALM-EXCHANGE-OFF",
        title: "Standard Token Exchange switched off on the MCP server's client",
        defect: Defect::Realm(exchange_off),
        runs: "EXCHANGE,RS-01",
        kills: &["EXCHANGE-02", "EXCHANGE-05", "EXCHANGE-06", "RS-01"],
    },
    Mutant {
        id: "M-REALM-NO-TRUSTED-HOSTS",
        title: "the Trusted Hosts policy of anonymous registration removed",
        defect: Defect::Realm(no_trusted_hosts),
        runs: "DCR",
        kills: &["DCR-03"],
    },
    Mutant {
        id: "M-REALM-ANY-SCOPE",
        title: "the Allowed Client Scopes policy of anonymous registration removed",
        defect: Defect::Realm(any_scope),
        runs: "DCR",
        kills: &["DCR-04"],
    },
    Mutant {
        id: "M-REALM-DCR-CLOSED",
        title: "anonymous registration trusts no host the harness can register from",
        defect: Defect::Realm(dcr_closed),
        runs: "DCR-01,DCR-02",
        kills: &["DCR-01"],
    },
    Mutant {
        id: "M-REALM-ES256-ONLY",
        title: "the realm signs with an ES256 key only (no RS256 key)",
        defect: Defect::Realm(es256_only),
        runs: "REALM-02,REALM-03",
        kills: &["REALM-03"],
    },
    Mutant {
        id: "M-REALM-NO-BASIC",
        title: "the basic scope removed from the clients and the realm defaults (tokens lose sub)",
        defect: Defect::Realm(no_basic_scope),
        runs: "PKCE-01,PKCE-02,RS-01,MCP-11",
        kills: &["PKCE-01", "PKCE-02", "RS-01", "MCP-11"],
    },
    Mutant {
        id: "M-REALM-NO-PKCE-POLICY",
        title: "the client policy that makes DCR public clients use PKCE S256 removed",
        defect: Defect::Realm(no_pkce_policy),
        runs: "PKCE",
        kills: &["PKCE-03"],
    },
    Mutant {
        id: "M-REALM-NO-MCP-AUDIENCE",
        title: "the audience mappers for the MCP server and Nextcloud removed",
        defect: Defect::Realm(no_audiences),
        runs: "PKCE-01,EXCHANGE-02,MCP-10",
        kills: &["PKCE-01", "EXCHANGE-02", "MCP-10"],
    },
    Mutant {
        id: "M-REALM-NO-SERVICE-ACCOUNT",
        title: "the MCP server's client loses its service account",
        defect: Defect::Realm(no_service_account),
        runs: "REALM-05,EXCHANGE-01",
        kills: &["REALM-05", "EXCHANGE-01"],
    },
    Mutant {
        id: "M-REALM-NO-OFFLINE-ACCESS",
        title: "offline_access is no scope any client can ask for",
        defect: Defect::Realm(no_offline_access),
        runs: "TOKEN",
        kills: &["TOKEN-02"],
    },
    Mutant {
        id: "M-REALM-NO-NOTES-WRITE",
        title: "the realm lacks the notes.write scope the MCP server lists",
        defect: Defect::Realm(no_notes_write),
        runs: "MCP-02",
        kills: &["MCP-02"],
    },
    Mutant {
        id: "M-RS-ALG-NONE",
        title: "the resource server accepts alg none",
        defect: Defect::ResourceServer(Leniency {
            accept_alg_none: true,
            ..STRICT
        }),
        runs: "RS",
        kills: &["RS-05"],
    },
    Mutant {
        id: "M-RS-NO-SIGNATURE",
        title: "the resource server does not verify signatures",
        defect: Defect::ResourceServer(Leniency {
            skip_signature: true,
            ..STRICT
        }),
        runs: "RS",
        kills: &["RS-04", "RS-05", "RS-06", "RS-07"],
    },
    Mutant {
        id: "M-RS-NO-EXP",
        title: "the resource server ignores exp",
        defect: Defect::ResourceServer(Leniency {
            ignore_exp: true,
            ..STRICT
        }),
        runs: "RS",
        kills: &["RS-03"],
    },
    Mutant {
        id: "M-RS-NO-ISS",
        title: "the resource server ignores iss",
        defect: Defect::ResourceServer(Leniency {
            ignore_iss: true,
            ..STRICT
        }),
        runs: "RS",
        kills: &["RS-08"],
    },
    Mutant {
        id: "M-RS-NO-AUD",
        title: "the resource server ignores aud",
        defect: Defect::ResourceServer(Leniency {
            ignore_aud: true,
            ..STRICT
        }),
        runs: "RS",
        kills: &["RS-02"],
    },
    Mutant {
        id: "M-RS-NO-SUB",
        title: "the resource server logs a token without sub in (by preferred_username, else azp)",
        defect: Defect::ResourceServer(Leniency {
            sub_optional: true,
            ..STRICT
        }),
        runs: "RS",
        kills: &["RS-09"],
    },
    Mutant {
        id: "M-MCP-OPEN-DCR",
        title: "the MCP server's proxy accepts unknown clients (ENABLE_DCR=true)",
        defect: Defect::McpServer {
            set_env: &[("ENABLE_DCR", "true")],
            release: None,
        },
        runs: "MCP-06,MCP-07,MCP-09",
        kills: &["MCP-09"],
    },
    Mutant {
        id: "M-MCP-NO-DISCOVERY",
        title: "the MCP server pointed at an OIDC discovery URL that does not answer",
        defect: Defect::McpServer {
            set_env: &[(
                "OIDC_DISCOVERY_URL",
                "http://127.0.0.1:9/realms/none/.well-known/openid-configuration",
            )],
            release: None,
        },
        runs: "MCP-01,MCP-03",
        kills: &["MCP-01"],
    },
    Mutant {
        id: "M-MCP-0.147.2",
        title: "an MCP server release whose tools/call enforces no scopes (0.147.2)",
        defect: Defect::McpServer {
            set_env: &[],
            release: Some("0.147.2"),
        },
        runs: "MCP-11,MCP-12",
        kills: &["MCP-11", "MCP-12"],
    },
    Mutant {
        id: "M-MCP-0.68.3",
        title: "an MCP server release that passes the client's token on to Nextcloud (0.68.3)",
        defect: Defect::McpServer {
            set_env: &[],
            release: Some("0.68.3"),
        },
        runs: "MCP-32",
        kills: &["MCP-32"],
    },
    Mutant {
        id: "M-KC-NO-STANDARD-EXCHANGE",
        title: "Keycloak without Standard Token Exchange (token-exchange-standard disabled)",
        defect: Defect::Keycloak {
            features_disabled: &["token-exchange-standard"],
        },
        runs: "REALM-02,EXCHANGE-02",
        kills: &["REALM-02", "EXCHANGE-02"],
    },
    Mutant {
        id: "M-KC-NO-CIMD",
        title: "Keycloak without Client ID Metadata Documents (cimd disabled)",
        defect: Defect::Keycloak {
            features_disabled: &["cimd"],
        },
        runs: "DCR-10",
        kills: &["DCR-10"],
    },
    Mutant {
        id: "M-FAULT-KEYCLOAK-5XX",
        title: "Keycloak answers 503 to the harness",
        defect: Defect::Fault {
            component: Component::Keycloak,
            fault: Fault::ServerError,
        },
        runs: "REALM-02,REALM-03,REALM-05,DCR-01,DCR-05,PKCE-01,TOKEN-04,EXCHANGE-01,EXCHANGE-02",
        kills: &[],
    },
    Mutant {
        id: "M-FAULT-KEYCLOAK-STALL",
        title: "Keycloak stops answering the harness",
        defect: Defect::Fault {
            component: Component::Keycloak,
            fault: Fault::Stall,
        },
        runs: "REALM-02,REALM-05,DCR-01,EXCHANGE-01",
        kills: &[],
    },
    Mutant {
        id: "M-FAULT-MCP-5XX",
        title: "the MCP server answers 503 to the harness",
        defect: Defect::Fault {
            component: Component::McpServer,
            fault: Fault::ServerError,
        },
        runs: "MCP-01,MCP-03,MCP-04,MCP-05,MCP-06,MCP-10,MCP-14",
        kills: &[],
    },
    Mutant {
        id: "M-FAULT-RS-5XX",
        title: "the resource server answers 503 to the harness",
        defect: Defect::Fault {
            component: Component::ResourceServer,
            fault: Fault::ServerError,
        },
        runs: "RS",
        kills: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{Selection, catalogue};

    #[test]
    fn ids_are_unique_and_every_kill_is_a_check_the_mutant_runs() {
        let all = catalogue();
        let mut ids: Vec<&str> = MUTANTS.iter().map(|m| m.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), MUTANTS.len(), "duplicate mutant IDs");
        for m in MUTANTS {
            let sel = Selection::parse(m.runs, &all).unwrap_or_else(|e| panic!("{}: {e}", m.id));
            for k in m.kills {
                let check = all.iter().find(|c| c.id == *k);
                let check = check.unwrap_or_else(|| panic!("{}: no check {k}", m.id));
                assert!(
                    sel.matches(check),
                    "{}: kills {k} but does not run it",
                    m.id
                );
            }
            let is_fault = matches!(m.defect, Defect::Fault { .. });
            assert_eq!(m.kills.is_empty(), is_fault, "{}: kills", m.id);
        }
    }

    #[test]
    fn each_realm_patch_changes_the_baseline() {
        let baseline = crate::keycloak::realm::RealmFile::baseline().json;
        for m in MUTANTS {
            if let Defect::Realm(patch) = m.defect {
                let mut changed = baseline.clone();
                patch(&mut changed);
                assert_ne!(changed, baseline, "{} changes nothing", m.id);
            }
        }
    }
}
