//! LINT-01: client attribute keys Keycloak does not know.
//!
//! Keycloak stores any attribute key without looking at it, so a misspelt switch is
//! silently off: the reference project shipped `client.token.exchange.standard.enabled`
//! believing it enabled Standard Token Exchange (the key is
//! `standard.token.exchange.enabled`).
//!
//! Severity:
//! - **error** for a *near miss*: the key is one edit away from a known key, either at
//!   most two characters apart (case ignored), or, over tokens split at `.`, `_`, `-` and
//!   camel case, one token added, removed or replaced, in any order, with at least three
//!   tokens each. Such a key was almost surely meant to be the known one, so the setting
//!   its author believes is on is off, and nothing else will tell. If the client also
//!   sets the known key, the near miss is deliberate or leftover: warning. SAML keys
//!   are never errors (legacy spellings in old exports; no SAML in an MCP deployment).
//! - **warning** for any other unknown key: it may be read by an extension.
//! - **info** for a key only Keycloak 26.7 reads: 26.4 stores it and ignores it.
//!
//! A key under a family prefix (`saml.`, `oid4vci.`, ...) whose members are not all
//! listed is accepted unless it is a near miss.

use super::known_keys::{self, BOTH, ONLY_26_7, PREFIXES};
use super::{Ctx, Finding, Severity};

const RULE: &str = "LINT-01";

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, client) in ctx.realm.clients.iter().enumerate() {
        for (key, _) in client.attributes.iter() {
            let path = format!("{}.attributes.{key}", ctx.paths.client(i));
            if BOTH.contains(&key) {
                continue;
            }
            if ONLY_26_7.contains(&key) {
                out.push(Finding::new(
                    RULE,
                    Severity::Info,
                    path,
                    format!(
                        "`{key}` is read by Keycloak 26.7 and later only; 26.4 stores it and \
                         ignores it. Keep it only if you run 26.7 or later"
                    ),
                ));
                continue;
            }
            let nearest = nearest_known(key);
            match nearest {
                Some(Nearest {
                    key: known,
                    near_miss: true,
                }) if !client.attributes.contains_key(known) && !is_saml(key) => {
                    out.push(Finding::new(
                        RULE,
                        Severity::Error,
                        path,
                        format!(
                            "Keycloak does not know the client attribute `{key}`: it stores it and \
                             ignores it, so this setting has no effect. It is one edit away from \
                             `{known}`: rename the key to `{known}`"
                        ),
                    ));
                }
                _ if PREFIXES.iter().any(|p| key.starts_with(p)) => {}
                _ => {
                    let hint = nearest
                        .map(|n| format!(" Did you mean `{}`?", n.key))
                        .unwrap_or_default();
                    out.push(Finding::new(
                        RULE,
                        Severity::Warning,
                        path,
                        format!(
                            "Keycloak does not know the client attribute `{key}`: it stores it and \
                             ignores it.{hint} Rename it to a key Keycloak reads, or remove it \
                             unless an extension of yours reads it"
                        ),
                    ));
                }
            }
        }
    }
}

/// SAML keys: old exports carry legacy spellings (`saml.force.name.id.format` next to
/// `saml_force_name_id_format`), and SAML clients play no part in an MCP deployment.
fn is_saml(key: &str) -> bool {
    key.starts_with("saml.") || key.starts_with("saml_")
}

/// The known key most like `key`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Nearest {
    pub key: &'static str,
    pub near_miss: bool,
}

/// Similarity below which no key is suggested.
const SUGGEST_FROM: f64 = 0.5;

/// The nearest known key: near misses first, then the highest similarity (the better of
/// token overlap and character similarity), if it reaches [`SUGGEST_FROM`].
pub(crate) fn nearest_known(key: &str) -> Option<Nearest> {
    let mut best: Option<(bool, f64, &'static str)> = None;
    for known in known_keys::all() {
        let candidate = (is_near_miss(key, known), similarity(key, known), known);
        let better = match best {
            None => true,
            Some((near, score, _)) => (candidate.0, candidate.1) > (near, score),
        };
        if better {
            best = Some(candidate);
        }
    }
    best.filter(|(near, score, _)| *near || *score >= SUGGEST_FROM)
        .map(|(near_miss, _, key)| Nearest { key, near_miss })
}

/// One edit apart: see the module doc.
fn is_near_miss(key: &str, known: &str) -> bool {
    let (a, b) = (key.to_lowercase(), known.to_lowercase());
    if a == b || (a.len().min(b.len()) >= 8 && strsim::levenshtein(&a, &b) <= 2) {
        return true;
    }
    let (ta, tb) = (tokens(key), tokens(known));
    let matched = matched_tokens(&ta, &tb);
    ta.len() >= 3
        && tb.len() >= 3
        && matched >= 2
        && ta.len() - matched <= 1
        && tb.len() - matched <= 1
}

fn similarity(key: &str, known: &str) -> f64 {
    let (ta, tb) = (tokens(key), tokens(known));
    let matched = matched_tokens(&ta, &tb) as f64;
    let union = (ta.len() + tb.len()) as f64 - matched;
    let jaccard = if union > 0.0 { matched / union } else { 0.0 };
    jaccard.max(strsim::normalized_levenshtein(
        &key.to_lowercase(),
        &known.to_lowercase(),
    ))
}

/// Lower-case words of a key: split at `.`, `_`, `-` and camel-case humps.
fn tokens(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        let boundary = matches!(c, '.' | '_' | '-') || (c.is_uppercase() && prev_lower);
        if boundary && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !matches!(c, '.' | '_' | '-') {
            word.extend(c.to_lowercase());
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// How many tokens of `a` pair with a distinct token of `b`: equal, or (four letters or
/// more) one character apart (`enable`/`enabled`).
fn matched_tokens(a: &[String], b: &[String]) -> usize {
    let mut used = vec![false; b.len()];
    let mut paired = vec![false; a.len()];
    let mut matched = 0;
    for pass in [true, false] {
        for (i, t) in a.iter().enumerate() {
            if paired[i] {
                continue;
            }
            let hit = b.iter().enumerate().position(|(j, u)| {
                !used[j]
                    && if pass {
                        t == u
                    } else {
                        t.len() >= 4 && u.len() >= 4 && strsim::levenshtein(t, u) <= 1
                    }
            });
            if let Some(j) = hit {
                used[j] = true;
                paired[i] = true;
                matched += 1;
            }
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_fixture_yields_an_error_with_the_right_key() {
        let found = findings(&fixture("lint-01-unknown-attribute.json"));
        let path =
            "clients[nextcloud-mcp-server].attributes.client.token.exchange.standard.enabled";
        assert_finding(&found, RULE, Severity::Error, path);
        let f = found.iter().find(|f| f.path == path).unwrap();
        assert!(
            f.message
                .contains("rename the key to `standard.token.exchange.enabled`"),
            "{}",
            f.message
        );
    }

    #[test]
    fn the_baseline_has_only_known_keys() {
        assert_eq!(of(&findings(&baseline()), RULE), vec![]);
    }

    #[test]
    fn near_misses_suggest_the_intended_key() {
        for (key, known) in [
            (
                "client.token.exchange.standard.enabled",
                "standard.token.exchange.enabled",
            ),
            (
                "token.exchange.grant.enabled",
                "standard.token.exchange.enabled",
            ),
            ("pkce.code.challenge.methd", "pkce.code.challenge.method"),
            ("use.refresh.token", "use.refresh.tokens"),
            (
                "standard.token.exchange.enable",
                "standard.token.exchange.enabled",
            ),
            ("logoURI", "logoUri"),
        ] {
            assert_eq!(
                nearest_known(key),
                Some(Nearest {
                    key: known,
                    near_miss: true
                }),
                "{key}"
            );
        }
    }

    #[test]
    fn unrelated_keys_are_not_near_misses() {
        for key in ["my.custom.flag", "foo", "nextcloud.app.id"] {
            assert!(
                nearest_known(key).is_none_or(|n| !n.near_miss),
                "{key}: {:?}",
                nearest_known(key)
            );
        }
    }

    #[test]
    fn tokens_split_at_separators_and_camel_case() {
        assert_eq!(
            tokens("standard.token.exchange.enableRefreshRequestedTokenType"),
            [
                "standard",
                "token",
                "exchange",
                "enable",
                "refresh",
                "requested",
                "token",
                "type"
            ]
        );
        assert_eq!(
            tokens("saml_name_id-format"),
            ["saml", "name", "id", "format"]
        );
    }

    #[test]
    fn severities_follow_the_module_doc() {
        let realm = crate::keycloak::model::Realm::from_text(
            r#"{"realm": "r", "clients": [{"clientId": "c", "attributes": {
                "my.custom.flag": "x", "saml.vendor.thing": "x", "external.token.enabled": "true",
                "use.refresh.token": "true", "use.refresh.tokens": "true", "standard.token.exchange.enable": "true",
                "saml.force.name.id.format": "false"}}]}"#,
            "t",
        )
        .unwrap();
        let found = of(&findings(&realm), RULE);
        let severity = |k: &str| {
            found
                .iter()
                .find(|f| f.path == format!("clients[c].attributes.{k}"))
                .map(|f| f.severity)
        };
        assert_eq!(severity("my.custom.flag"), Some(Severity::Warning));
        assert_eq!(severity("saml.vendor.thing"), None);
        assert_eq!(severity("external.token.enabled"), Some(Severity::Info));
        assert_eq!(severity("use.refresh.token"), Some(Severity::Warning));
        assert_eq!(
            severity("standard.token.exchange.enable"),
            Some(Severity::Error)
        );
        assert_eq!(severity("saml.force.name.id.format"), None);
    }
}
