//! Realm files: loading with clear errors, the harness's placeholders, and variants.
//!
//! Secrets in a realm file are written as `${MCP_HARNESS_<NAME>}`. Keycloak resolves
//! `${...}` only when it imports at boot, so for realms imported through the admin API
//! the harness fills its own placeholders with values generated per run, and leaves
//! everything else (Keycloak's message keys such as `${role_offline-access}`) alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, bail};
use regex::Regex;
use serde_json::Value;

use crate::secret::{Secret, SecretKind};

/// The harness's placeholder prefix.
pub const PLACEHOLDER_PREFIX: &str = "MCP_HARNESS_";

/// The MCP server's own confidential client in the baseline realm (and the audience its
/// tokens carry for the MCP server).
pub const MCP_SERVER_CLIENT: &str = "nextcloud-mcp-server";

/// The resource server's client in the baseline realm: user_oidc's provider client id,
/// which a token's `aud` must name for Nextcloud to accept it.
pub const RESOURCE_SERVER_CLIENT: &str = "nextcloud";

const BUILTIN_ORIGIN: &str = "keycloak/realm-export.json (built in)";

/// The baseline realm shipped with the harness.
pub const BASELINE_JSON: &str = include_str!("../../keycloak/realm-export.json");

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{(MCP_HARNESS_[A-Z0-9_]+)\}").expect("static regex"));

/// A realm file as written, placeholders unfilled.
#[derive(Clone, Debug)]
pub struct RealmFile {
    /// Where it came from, for messages: a path or "the built-in baseline".
    pub origin: String,
    pub path: Option<PathBuf>,
    pub json: Value,
}

impl RealmFile {
    pub fn baseline() -> Self {
        Self::parse(BASELINE_JSON, BUILTIN_ORIGIN, None)
            .expect("the built-in baseline realm is valid (a unit test proves it)")
    }

    /// The built-in baseline under another name (a further session on the same Keycloak):
    /// still the baseline, so a check it lacks something for fails as on the original.
    pub fn baseline_as(name: &str) -> Self {
        let json = renamed(&Self::baseline().json, name);
        Self {
            origin: BUILTIN_ORIGIN.to_owned(),
            path: None,
            json,
        }
    }

    /// Reads and parses a realm file; errors name the file, the position and what to do.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the realm file {}: check the path",
                path.display()
            )
        })?;
        Self::parse(&text, &path.display().to_string(), Some(path.to_owned()))
    }

    pub fn parse(text: &str, origin: &str, path: Option<PathBuf>) -> anyhow::Result<Self> {
        let json: Value = serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{origin}: not valid JSON at line {}, column {}: {e}. Fix the file (a realm \
                 export from Keycloak's admin console is valid JSON)",
                e.line(),
                e.column()
            )
        })?;
        let Some(obj) = json.as_object() else {
            bail!(
                "{origin}: the top level is not a JSON object, so this is not a realm representation"
            );
        };
        match obj.get("realm") {
            Some(Value::String(name)) if !name.is_empty() => {}
            Some(_) => bail!("{origin}: `realm` must be a non-empty string (the realm's name)"),
            None => bail!(
                "{origin}: no `realm` field at the top level, so this is not a realm representation \
                 (export one with `kc.sh export --realm <name>` or the admin console)"
            ),
        }
        Ok(Self {
            origin: origin.to_owned(),
            path,
            json,
        })
    }

    /// Whether this is the baseline shipped with the harness (not a file the user gave).
    pub fn is_builtin(&self) -> bool {
        self.path.is_none() && self.origin == BUILTIN_ORIGIN
    }

    pub fn name(&self) -> &str {
        self.json["realm"].as_str().unwrap_or_default()
    }

    /// Names of the harness placeholders used anywhere in the file.
    pub fn placeholders(&self) -> Vec<String> {
        let mut names = Vec::new();
        visit_strings(&self.json, &mut |s| {
            for c in PLACEHOLDER.captures_iter(s) {
                names.push(c[1].to_owned());
            }
        });
        names.sort();
        names.dedup();
        names
    }

    /// The realm as JSON with every harness placeholder replaced by its value in `values`.
    pub fn filled(&self, values: &Placeholders) -> Value {
        map_strings(&self.json, &|s| {
            PLACEHOLDER
                .replace_all(s, |c: &regex::Captures<'_>| {
                    values
                        .get(&c[1])
                        .map(|v| v.expose().to_owned())
                        .unwrap_or_else(|| c[0].to_owned())
                })
                .into_owned()
        })
    }
}

/// Values for the harness's placeholders, generated per run.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    values: BTreeMap<String, Secret>,
}

impl Placeholders {
    /// A fresh random value for each name: a password for `*_PASSWORD`, else a client secret.
    pub fn generate(names: &[String]) -> Self {
        let values = names
            .iter()
            .map(|n| {
                let kind = if n.ends_with("_PASSWORD") {
                    SecretKind::Password
                } else {
                    SecretKind::ClientSecret
                };
                (n.clone(), Secret::generate(kind, 24))
            })
            .collect();
        Self { values }
    }

    pub fn insert(&mut self, name: &str, value: Secret) {
        self.values.insert(name.to_owned(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Secret)> {
        self.values.iter()
    }
}

/// The conventional placeholder name of a user's password: `MCP_HARNESS_PASSWORD_<USER>`.
pub fn password_placeholder(username: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}PASSWORD_{}", env_name(username))
}

/// The conventional placeholder name of a client's secret: `MCP_HARNESS_SECRET_<CLIENT>`.
pub fn secret_placeholder(client_id: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}SECRET_{}", env_name(client_id))
}

fn env_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn visit_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| visit_strings(x, f)),
        Value::Object(o) => o.values().for_each(|x| visit_strings(x, f)),
        _ => {}
    }
}

fn map_strings(v: &Value, f: &impl Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_strings(x, f)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), map_strings(x, f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `realm` renamed to `name` for import next to the original: the realm's own `id`
/// follows the name, and every other `id` is dropped so Keycloak mints new ones (ids are
/// unique across realms in Keycloak's database).
///
/// A realm without an explicit `defaultRole` gets `default-roles-<name>` from Keycloak,
/// and an import creates any role a user names as a plain role: so users' references to
/// the old default role follow the rename, or they would lose its composites
/// (`offline_access`, `uma_authorization`).
pub fn renamed(realm: &Value, name: &str) -> Value {
    let mut out = strip_ids(realm);
    if out.get("defaultRole").is_none() {
        let old = default_role_name(realm);
        let new = default_role_name(&serde_json::json!({ "realm": name }));
        for roles in users_realm_roles(&mut out) {
            if roles.as_str() == Some(&old) {
                *roles = Value::String(new.clone());
            }
        }
    }
    out["realm"] = Value::String(name.to_owned());
    out["id"] = Value::String(name.to_owned());
    out
}

/// The name of the realm's default role: its `defaultRole`, else what Keycloak creates
/// on import (`default-roles-<realm name in lower case>`).
pub fn default_role_name(realm: &Value) -> String {
    realm["defaultRole"]["name"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let name = realm["realm"].as_str().unwrap_or_default();
            format!("default-roles-{}", name.to_lowercase())
        })
}

/// Every entry of every user's `realmRoles`.
fn users_realm_roles(realm: &mut Value) -> impl Iterator<Item = &mut Value> {
    realm
        .get_mut("users")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|u| u.get_mut("realmRoles").and_then(Value::as_array_mut))
        .flatten()
}

fn strip_ids(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "containerId" | "parentId"))
                .map(|(k, x)| (k.clone(), strip_ids(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_ids).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_parses_and_uses_only_harness_placeholders_for_secrets() {
        let realm = RealmFile::baseline();
        assert_eq!(realm.name(), "nextcloud-mcp");
        let names = realm.placeholders();
        assert!(
            names.contains(&secret_placeholder("nextcloud-mcp-server")),
            "{names:?}"
        );
        assert!(names.contains(&password_placeholder("alice")), "{names:?}");
    }

    #[test]
    fn the_baseline_under_another_name_is_still_the_baseline() {
        let realm = RealmFile::baseline_as("nextcloud-mcp-0-202-1");
        assert_eq!(realm.name(), "nextcloud-mcp-0-202-1");
        assert!(realm.is_builtin());
        assert_eq!(realm.placeholders(), RealmFile::baseline().placeholders());
    }

    #[test]
    fn filling_replaces_harness_placeholders_and_keeps_keycloak_message_keys() {
        let realm = RealmFile::parse(
            r#"{"realm":"r","clients":[{"secret":"${MCP_HARNESS_SECRET_X}","description":"${role_offline-access}"}]}"#,
            "test",
            None,
        )
        .unwrap();
        let values = Placeholders::generate(&realm.placeholders());
        let filled = realm.filled(&values);
        let secret = values.get("MCP_HARNESS_SECRET_X").unwrap();
        assert_eq!(filled["clients"][0]["secret"], secret.expose());
        assert_eq!(
            filled["clients"][0]["description"],
            "${role_offline-access}"
        );
    }

    #[test]
    fn malformed_json_names_the_file_and_position() {
        let err = RealmFile::parse("{\n  \"realm\": \"x\",\n}", "my-realm.json", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("my-realm.json"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn json_that_is_not_a_realm_is_refused() {
        let err = RealmFile::parse(r#"{"clients": []}"#, "x.json", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `realm` field"), "{err}");
        assert!(RealmFile::parse("[1,2]", "x.json", None).is_err());
    }

    #[test]
    fn renaming_drops_ids_and_renames_the_realm() {
        let v = serde_json::json!({"id": "old", "realm": "old", "clients": [{"id": "u-1", "clientId": "c"}]});
        let r = renamed(&v, "new");
        assert_eq!(r["realm"], "new");
        assert_eq!(r["id"], "new");
        assert!(r["clients"][0].get("id").is_none());
        assert_eq!(r["clients"][0]["clientId"], "c");
    }

    #[test]
    fn renaming_moves_users_to_the_new_default_role_unless_the_realm_names_one() {
        let v = serde_json::json!({"realm": "Old", "users": [
            {"username": "a", "realmRoles": ["default-roles-old", "other"]}]});
        let r = renamed(&v, "new");
        assert_eq!(
            r["users"][0]["realmRoles"],
            serde_json::json!(["default-roles-new", "other"])
        );
        let mut explicit = v.clone();
        explicit["defaultRole"] = serde_json::json!({"name": "default-roles-old"});
        let r = renamed(&explicit, "new");
        assert_eq!(r["users"][0]["realmRoles"][0], "default-roles-old");
        assert_eq!(default_role_name(&r), "default-roles-old");
        assert!(
            renamed(&serde_json::json!({"realm": "x"}), "y")
                .get("users")
                .is_none()
        );
    }
}
