//! Is the live realm what the realm file says? A structural subset comparison.
//!
//! The realm's own settings (each top-level scalar the file sets: token lifetimes,
//! refresh-token rotation, session timeouts, `sslRequired`, registration, brute-force
//! protection, ...) are compared with `GET /admin/realms/<realm>`, and the sections
//! (clients, client scopes, registration and client policies) with their own endpoints.
//! Every value the file sets must be found in the live realm: objects key by key, lists of
//! plain values as sets, lists of objects matched by their identity (`clientId`, `name`,
//! or `name` + `subType` for components). Keycloak stores attribute values as strings, so
//! `true` in the file equals `"true"` live. Secrets and credentials are not compared (the
//! admin API masks them; their effect is checked by the token checks).

use std::fmt;

use serde_json::Value;

use super::admin::AdminClient;

/// The component type of client-registration policies.
pub const REGISTRATION_POLICY_TYPE: &str =
    "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy";

/// Keys never compared: secrets, and ids Keycloak mints itself.
const IGNORED_KEYS: &[&str] = &[
    "secret",
    "credentials",
    "id",
    "containerId",
    "parentId",
    "subComponents",
];

/// One difference, with the JSON path in the realm file.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Top-level scalars of a realm file that are not settings to compare.
const NOT_SETTINGS: &[&str] = &[
    // The name the live realm was read by: comparing it compares the name with itself
    // (and a variant the harness imported under another name has the new name live).
    "realm",
];

/// The parts of a live realm the comparison reads.
#[derive(Clone, Debug, Default)]
pub struct LiveRealm {
    /// `GET /admin/realms/<realm>`: the realm representation, settings at the top level.
    pub settings: Value,
    pub clients: Vec<Value>,
    pub client_scopes: Vec<Value>,
    pub registration_policies: Vec<Value>,
    pub client_profiles: Value,
    pub client_policies: Value,
}

impl LiveRealm {
    pub async fn read(admin: &AdminClient, realm: &str) -> anyhow::Result<Self> {
        let settings = admin.get_json(&format!("/realms/{realm}")).await?;
        let clients = admin
            .get_json(&format!("/realms/{realm}/clients?first=0&max=10000"))
            .await?;
        let client_scopes = admin
            .get_json(&format!("/realms/{realm}/client-scopes"))
            .await?;
        let registration_policies = admin.components(realm, REGISTRATION_POLICY_TYPE).await?;
        let client_profiles = admin
            .get_json(&format!("/realms/{realm}/client-policies/profiles"))
            .await?;
        let client_policies = admin
            .get_json(&format!("/realms/{realm}/client-policies/policies"))
            .await?;
        Ok(Self {
            settings,
            clients: as_list(clients),
            client_scopes: as_list(client_scopes),
            registration_policies,
            client_profiles,
            client_policies,
        })
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// Differences between the (filled) realm file and the live realm, in file order.
pub fn file_subset_of_live(file: &Value, live: &LiveRealm) -> Vec<Mismatch> {
    let mut out = Vec::new();
    settings(file, &live.settings, &mut out);
    let sections: [(&str, &Value, Value); 4] = [
        (
            "clients",
            &file["clients"],
            Value::Array(live.clients.clone()),
        ),
        (
            "clientScopes",
            &file["clientScopes"],
            Value::Array(live.client_scopes.clone()),
        ),
        (
            "components.ClientRegistrationPolicy",
            &file["components"][REGISTRATION_POLICY_TYPE],
            Value::Array(live.registration_policies.clone()),
        ),
        (
            "clientPolicies.policies",
            &file["clientPolicies"]["policies"],
            live.client_policies["policies"].clone(),
        ),
    ];
    for (path, f, l) in sections {
        if !f.is_null() {
            subset(f, &l, path, &mut out);
        }
    }
    if !file["clientProfiles"]["profiles"].is_null() {
        subset(
            &file["clientProfiles"]["profiles"],
            &live.client_profiles["profiles"],
            "clientProfiles.profiles",
            &mut out,
        );
    }
    out
}

/// The realm settings the file sets: its top-level scalars, but the realm's name. Keys
/// the file leaves out are not compared: Keycloak fills them with its defaults.
pub fn setting_keys(file: &Value) -> Vec<&str> {
    file.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_))
                && !NOT_SETTINGS.contains(&k.as_str())
                && !IGNORED_KEYS.contains(&k.as_str())
        })
        .map(|(k, _)| k.as_str())
        .collect()
}

/// Each realm setting the file sets, against the live realm representation.
fn settings(file: &Value, live: &Value, out: &mut Vec<Mismatch>) {
    for key in setting_keys(file) {
        match live.get(key) {
            Some(lv) if same_in_keycloak_form(key, &file[key], lv) => {}
            Some(lv) => subset(&file[key], lv, key, out),
            None => out.push(Mismatch {
                path: key.to_owned(),
                problem: format!("set to {} in the file, absent live", short(&file[key])),
            }),
        }
    }
}

/// Whether the file's and the live value of a setting Keycloak keeps in a form of its
/// own are the same in that form.
fn same_in_keycloak_form(key: &str, file: &Value, live: &Value) -> bool {
    match (key, file, live) {
        // An enum in Keycloak: a file's "EXTERNAL" imports, and is answered as "external"
        // (seen on 26.7.3, by import and by PUT alike), so the case says nothing.
        ("sslRequired", Value::String(f), Value::String(l)) => f.eq_ignore_ascii_case(l),
        _ => false,
    }
}

fn subset(file: &Value, live: &Value, path: &str, out: &mut Vec<Mismatch>) {
    let mut miss = |problem: String| {
        out.push(Mismatch {
            path: path.to_owned(),
            problem,
        })
    };
    match (file, live) {
        (Value::Object(f), Value::Object(l)) => {
            for (k, fv) in f {
                if IGNORED_KEYS.contains(&k.as_str()) {
                    continue;
                }
                match l.get(k) {
                    Some(lv) => subset(fv, lv, &format!("{path}.{k}"), out),
                    None if is_empty(fv) => {}
                    None => out.push(Mismatch {
                        path: format!("{path}.{k}"),
                        problem: format!("set to {} in the file, absent live", short(fv)),
                    }),
                }
            }
        }
        (Value::Array(f), Value::Array(l)) => {
            for (i, fv) in f.iter().enumerate() {
                match identity(fv) {
                    Some(id) => match l.iter().find(|lv| identity(lv).as_deref() == Some(&id)) {
                        Some(lv) => subset(fv, lv, &format!("{path}[{id}]"), out),
                        None => out.push(Mismatch {
                            path: format!("{path}[{id}]"),
                            problem: "defined in the file, absent live".into(),
                        }),
                    },
                    None if fv.is_object() => {
                        if !l.iter().any(|lv| {
                            let mut inner = Vec::new();
                            subset(fv, lv, path, &mut inner);
                            inner.is_empty()
                        }) {
                            out.push(Mismatch {
                                path: format!("{path}[{i}]"),
                                problem: format!("no live element matches {}", short(fv)),
                            });
                        }
                    }
                    None => {
                        if !l.iter().any(|lv| loosely_equal(fv, lv)) {
                            out.push(Mismatch {
                                path: path.to_owned(),
                                problem: format!(
                                    "{} is in the file's list, not in the live list {}",
                                    short(fv),
                                    short(live)
                                ),
                            });
                        }
                    }
                }
            }
        }
        (f, l) if loosely_equal(f, l) => {}
        (f, l) => miss(format!("the file says {}, live is {}", short(f), short(l))),
    }
}

/// The key that names an element of a list: components by name and subType.
fn identity(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    if let (Some(name), Some(sub)) = (
        o.get("name").and_then(Value::as_str),
        o.get("subType").and_then(Value::as_str),
    ) {
        return Some(format!("{name}/{sub}"));
    }
    [
        "clientId",
        "name",
        "alias",
        "username",
        "executor",
        "condition",
    ]
    .iter()
    .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned))
}

fn loosely_equal(f: &Value, l: &Value) -> bool {
    match (f, l) {
        (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
            s == &b.to_string()
        }
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s == &n.to_string()
        }
        _ => f == l,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn short(v: &Value) -> String {
    crate::http::truncate(&v.to_string(), 120)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file() -> Value {
        json!({
            "realm": "r", "enabled": true, "sslRequired": "external",
            "accessTokenLifespan": 300, "ssoSessionIdleTimeout": 1800,
            "revokeRefreshToken": true, "refreshTokenMaxReuse": 0,
            "registrationAllowed": false, "bruteForceProtected": false,
            "clients": [{
                "clientId": "c1", "secret": "s", "publicClient": false,
                "redirectUris": ["http://127.0.0.1/*"],
                "attributes": {"standard.token.exchange.enabled": "true", "pkce.code.challenge.method": "S256"},
                "optionalClientScopes": ["notes.read"]
            }],
            "clientScopes": [{"name": "notes.read", "attributes": {"include.in.token.scope": "true"}}],
            "components": {REGISTRATION_POLICY_TYPE: [
                {"name": "Trusted Hosts", "subType": "anonymous", "providerId": "trusted-hosts",
                 "config": {"trusted-hosts": ["127.0.0.1", "localhost"]}}
            ]}
        })
    }

    /// The admin API's answer for a realm imported from `file()`, with Keycloak's additions.
    fn live() -> LiveRealm {
        LiveRealm {
            settings: json!({
                "id": "uuid-r", "realm": "r", "enabled": true, "sslRequired": "external",
                "accessTokenLifespan": 300, "accessTokenLifespanForImplicitFlow": 900,
                "ssoSessionIdleTimeout": 1800, "ssoSessionMaxLifespan": 36000,
                "revokeRefreshToken": true, "refreshTokenMaxReuse": 0,
                "registrationAllowed": false, "bruteForceProtected": false, "failureFactor": 30
            }),
            clients: vec![json!({
                "id": "uuid-1", "clientId": "c1", "secret": "**********", "publicClient": false, "enabled": true,
                "redirectUris": ["http://127.0.0.1/*"],
                "attributes": {"standard.token.exchange.enabled": "true", "pkce.code.challenge.method": "S256",
                               "post.logout.redirect.uris": "+"},
                "optionalClientScopes": ["notes.read", "offline_access"]
            })],
            client_scopes: vec![
                json!({"id": "x", "name": "notes.read", "attributes": {"include.in.token.scope": "true"}}),
            ],
            registration_policies: vec![json!({
                "id": "p", "name": "Trusted Hosts", "subType": "anonymous", "providerId": "trusted-hosts",
                "config": {"trusted-hosts": ["localhost", "127.0.0.1"]}
            })],
            ..Default::default()
        }
    }

    #[test]
    fn the_live_realm_with_keycloak_additions_matches() {
        assert_eq!(file_subset_of_live(&file(), &live()), vec![]);
    }

    #[test]
    fn a_changed_attribute_is_reported_with_its_path() {
        let mut l = live();
        l.clients[0]["attributes"]["standard.token.exchange.enabled"] = json!("false");
        let m = file_subset_of_live(&file(), &l);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0].path,
            "clients[c1].attributes.standard.token.exchange.enabled"
        );
    }

    #[test]
    fn a_missing_redirect_uri_scope_or_policy_host_is_reported() {
        let mut l = live();
        l.clients[0]["redirectUris"] = json!([]);
        l.clients[0]["optionalClientScopes"] = json!(["offline_access"]);
        l.registration_policies[0]["config"]["trusted-hosts"] = json!(["localhost"]);
        let paths: Vec<String> = file_subset_of_live(&file(), &l)
            .into_iter()
            .map(|m| m.path)
            .collect();
        assert!(
            paths.contains(&"clients[c1].redirectUris".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"clients[c1].optionalClientScopes".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"components.ClientRegistrationPolicy[Trusted Hosts/anonymous].config.trusted-hosts".to_owned()),
            "{paths:?}"
        );
    }

    #[test]
    fn a_missing_client_or_scope_is_reported() {
        let mut l = live();
        l.clients.clear();
        l.client_scopes.clear();
        let paths: Vec<String> = file_subset_of_live(&file(), &l)
            .into_iter()
            .map(|m| m.path)
            .collect();
        assert_eq!(paths, ["clients[c1]", "clientScopes[notes.read]"]);
    }

    #[test]
    fn changed_or_missing_realm_settings_are_reported_with_their_key() {
        let mut l = live();
        l.settings["accessTokenLifespan"] = json!(3600);
        l.settings["revokeRefreshToken"] = json!(false);
        l.settings["bruteForceProtected"] = json!(true);
        l.settings
            .as_object_mut()
            .unwrap()
            .remove("ssoSessionIdleTimeout");
        let shown: Vec<String> = file_subset_of_live(&file(), &l)
            .iter()
            .map(Mismatch::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "accessTokenLifespan: the file says 300, live is 3600",
                "ssoSessionIdleTimeout: set to 1800 in the file, absent live",
                "revokeRefreshToken: the file says true, live is false",
                "bruteForceProtected: the file says false, live is true",
            ]
        );
    }

    #[test]
    fn ssl_required_differing_only_in_case_matches() {
        let mut f = file();
        f["sslRequired"] = json!("EXTERNAL");
        assert_eq!(file_subset_of_live(&f, &live()), vec![]);
        f["sslRequired"] = json!("ALL");
        assert_eq!(
            file_subset_of_live(&f, &live())[0].to_string(),
            r#"sslRequired: the file says "ALL", live is "external""#
        );
    }

    #[test]
    fn the_realm_name_is_not_a_setting_to_compare() {
        let mut l = live();
        l.settings["realm"] = json!("r-variant");
        assert_eq!(file_subset_of_live(&file(), &l), vec![]);
    }

    #[test]
    fn booleans_match_their_string_form() {
        assert!(loosely_equal(&json!(true), &json!("true")));
        assert!(!loosely_equal(&json!(true), &json!("false")));
    }
}
