//! LINT-04: redirect URIs with wildcards beyond loopback.
//!
//! Keycloak (`RedirectUtils`) honours `*` only as the last character: `*` alone accepts
//! any http(s) URI; otherwise the entry is a prefix. A prefix that ends inside the
//! authority reaches other hosts: `https://app.example.com*` also matches
//! `https://app.example.com.attacker.net/` in 26.4 (26.7 reads it as `.../*`, but both
//! versions are supported). Authorization codes go wherever the redirect URI says, so:
//!
//! - **error**: `*` alone; a wildcard in the scheme or host (`http://*`,
//!   `https://app.example.com*`); a `*` anywhere in the host (`https://*.example.com/cb`:
//!   Keycloak has no host wildcards, so the entry matches no real host at all).
//! - **warning**: a wildcard path or port on a host other than loopback
//!   (`https://app.example.com/*`): any page of that host can receive codes, and one open
//!   redirect there leaks them; list the exact callback URIs. A relative entry (`/*`) is
//!   judged on the client's `rootUrl`, or is a wildcard path on Keycloak's own host.
//! - nothing: wildcards on loopback (`http://127.0.0.1/*`; RFC 8252 §7.3 lets native
//!   clients pick any port, and Keycloak already ignores the port of loopback URIs), and
//!   private-use schemes (`com.example.app:/*`, RFC 8252 §7.1).

use super::{Ctx, Finding, Severity};

const RULE: &str = "LINT-04";

/// Keycloak's `RedirectUtils.LOOPBACK_INTERFACES`.
const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

pub(super) fn check(ctx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, client) in ctx.realm.clients.iter().enumerate() {
        for (j, uri) in client.redirect_uris.iter().enumerate() {
            let resolved = match (uri.starts_with('/'), client.root_url.as_deref()) {
                (true, Some(root)) => format!("{}{uri}", root.trim_end_matches('/')),
                _ => uri.clone(),
            };
            if let Some((severity, why)) = judge(&resolved) {
                out.push(Finding::new(
                    RULE,
                    severity,
                    format!("{}.redirectUris[{j}]", ctx.paths.client(i)),
                    format!("redirect URI `{uri}`: {why}"),
                ));
            }
        }
    }
}

/// The verdict on one (resolved) redirect URI, with what to do.
fn judge(uri: &str) -> Option<(Severity, String)> {
    const LIST: &str = "list the exact callback URIs instead";
    if uri == "*" {
        return Some((
            Severity::Error,
            format!("accepts any http(s) redirect URI, so codes can be sent anywhere; {LIST}"),
        ));
    }
    let wildcard = uri.ends_with('*') && !uri.contains('?') && !uri.contains('#');
    if uri.starts_with('/') {
        return wildcard.then(|| {
            (
                Severity::Warning,
                format!(
                    "a wildcard path on Keycloak's own host (the client has no rootUrl): any page \
                     there can receive codes; {LIST}"
                ),
            )
        });
    }
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        // Private-use schemes belong to the app (RFC 8252 §7.1).
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(k) => (&rest[..k], Some(&rest[k..])),
        None => (rest, None),
    };
    let host = host_of(authority);
    let loopback = LOOPBACK.iter().any(|l| host.eq_ignore_ascii_case(l));
    if wildcard && path.is_none() {
        if authority.ends_with(":*") && !host.contains('*') {
            return (!loopback).then(|| {
                (
                    Severity::Warning,
                    format!("a wildcard port on `{host}`: any service on that host can receive codes; {LIST}"),
                )
            });
        }
        let why = if authority == "*" {
            "the wildcard covers every host, so codes can be sent anywhere".to_owned()
        } else {
            format!(
                "the wildcard reaches into the host: Keycloak 26.4 matches it as a prefix, so \
                 `{}.attacker.example/` matches too; end the host with `/`",
                uri.trim_end_matches('*')
            )
        };
        return Some((Severity::Error, format!("{why}; {LIST}")));
    }
    if host.contains('*') {
        return Some((
            Severity::Error,
            format!(
                "a `*` in the host: Keycloak has no host wildcards (`*` counts only as the last \
                 character), so this entry matches no real host; {LIST}"
            ),
        ));
    }
    if !wildcard || loopback {
        return None;
    }
    Some((
        Severity::Warning,
        format!(
            "a wildcard path on `{host}`, which is not loopback: any page there can receive codes, \
             and one open redirect on it leaks them; {LIST}"
        ),
    ))
}

/// The host of an authority: without user info and port (IPv6 literals keep brackets).
fn host_of(authority: &str) -> &str {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') {
        return hostport.find(']').map_or(hostport, |k| &hostport[..=k]);
    }
    hostport.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn the_fixture_yields_an_error_for_a_host_wildcard() {
        let found = findings(&fixture("lint-04-wildcard-redirect.json"));
        assert_finding(
            &found,
            RULE,
            Severity::Error,
            "clients[nextcloud-mcp-server].redirectUris[1]",
        );
    }

    #[test]
    fn the_baseline_uses_loopback_wildcards_only() {
        assert_eq!(of(&findings(&baseline()), RULE), vec![]);
    }

    #[test]
    fn verdicts_follow_the_module_doc() {
        let severity = |u: &str| judge(u).map(|(s, _)| s);
        use Severity::{Error, Warning};
        for (uri, expected) in [
            ("*", Some(Error)),
            ("http://*", Some(Error)),
            ("https://app.example.com*", Some(Error)),
            ("http://localhost*", Some(Error)),
            ("https://*.example.com/cb", Some(Error)),
            ("https://*.example.com/*", Some(Error)),
            ("https://app.example.com/*", Some(Warning)),
            ("https://app.example.com:*", Some(Warning)),
            ("/*", Some(Warning)),
            ("https://app.example.com/cb", None),
            ("http://127.0.0.1/*", None),
            ("http://localhost:*", None),
            ("http://[::1]/*", None),
            ("http://user@127.0.0.1:8080/*", None),
            ("com.example.app:/*", None),
            ("https://app.example.com/cb?x=*", None),
        ] {
            assert_eq!(severity(uri), expected, "{uri}");
        }
    }

    #[test]
    fn relative_uris_are_judged_on_the_root_url() {
        let realm = crate::keycloak::model::Realm::from_text(
            r#"{"realm": "r", "clients": [{"clientId": "c", "rootUrl": "http://127.0.0.1:3000/", "redirectUris": ["/*"]}]}"#,
            "t",
        )
        .unwrap();
        assert_eq!(of(&findings(&realm), RULE), vec![]);
    }
}
