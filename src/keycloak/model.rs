//! A typed, read-only view of a realm file: the parts the lint rules read.
//!
//! Fields the rules do not read are simply not declared, so any realm export (and any
//! later Keycloak version's additions) parses; the file itself is never rewritten. Values
//! are read the way Keycloak's Jackson mapper reads them: a scalar where a string is
//! expected is taken as its text, `"true"`/`"false"` are booleans, and `null` is absent.
//! A `${...}` placeholder (the harness's, or Keycloak's vault and message keys) is a valid
//! string anywhere, and where a boolean is expected it means "unknown".
//!
//! Type errors name the file, the JSON path (`clients[3].attributes`), the position and
//! what to do: [`serde_path_to_error`] tracks the path while serde_json deserializes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::realm::RealmFile;

/// The realm export: only what the lint rules read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Realm {
    pub realm: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub clients: Vec<Client>,
    /// `None` when the file has no `clientScopes`: Keycloak then creates its built-in
    /// scopes at import (`RealmManager.isCreateDefaultClientScopes`).
    #[serde(default)]
    pub client_scopes: Option<Vec<ClientScope>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<User>,
    /// Provider type → components, as exported (`MultivaluedHashMap`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub components: BTreeMap<String, Vec<Component>>,
    #[serde(default)]
    pub default_default_client_scopes: Option<Vec<String>>,
    #[serde(default)]
    pub default_optional_client_scopes: Option<Vec<String>>,
    #[serde(default)]
    pub client_profiles: Option<ClientProfiles>,
    #[serde(default)]
    pub client_policies: Option<ClientPolicies>,
    /// Refresh-token rotation: a refresh token is single use (`false` when absent).
    #[serde(default)]
    pub revoke_refresh_token: Option<bool>,
    /// How often a refresh token may be reused before it is revoked (with rotation on).
    #[serde(default)]
    pub refresh_token_max_reuse: Option<i64>,
}

/// A client (`ClientRepresentation`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub public_client: Option<bool>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub bearer_only: Option<bool>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub standard_flow_enabled: Option<bool>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub direct_access_grants_enabled: Option<bool>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub service_accounts_enabled: Option<bool>,
    #[serde(default, deserialize_with = "loose_string")]
    pub secret: Option<String>,
    #[serde(default)]
    pub root_url: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub redirect_uris: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub attributes: StringMap,
    #[serde(default)]
    pub default_client_scopes: Option<Vec<String>>,
    #[serde(default)]
    pub optional_client_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub protocol_mappers: Vec<ProtocolMapper>,
}

impl Client {
    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or_default()
    }

    /// Keycloak's defaults: confidential, standard flow on, OIDC.
    pub fn is_public(&self) -> bool {
        self.public_client.unwrap_or(false)
    }

    pub fn is_bearer_only(&self) -> bool {
        self.bearer_only.unwrap_or(false)
    }

    pub fn standard_flow(&self) -> bool {
        self.standard_flow_enabled.unwrap_or(true)
    }

    pub fn is_oidc(&self) -> bool {
        self.protocol
            .as_deref()
            .is_none_or(|p| p == "openid-connect")
    }

    /// Whether users can obtain tokens for this client (through a browser or a password).
    pub fn issues_user_tokens(&self) -> bool {
        self.is_oidc()
            && !self.is_bearer_only()
            && (self.standard_flow() || self.direct_access_grants_enabled.unwrap_or(false))
    }

    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }

    /// The client's default and optional scopes after import. A client listing neither
    /// gets the realm's defaults (the `ClientProtocolUpdatedEvent` listener of
    /// `AbstractLoginProtocolFactory`); a client listing one list gets exactly its lists
    /// (`RepresentationToModel.updateClientScopes`).
    pub fn effective_scopes(&self, realm: &Realm) -> (Vec<String>, Vec<String>) {
        match (&self.default_client_scopes, &self.optional_client_scopes) {
            (None, None) => (realm.default_scopes(), realm.optional_scopes()),
            (d, o) => (d.clone().unwrap_or_default(), o.clone().unwrap_or_default()),
        }
    }
}

/// A client scope (`ClientScopeRepresentation`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientScope {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub protocol_mappers: Vec<ProtocolMapper>,
}

impl ClientScope {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// A protocol mapper on a client or a client scope.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolMapper {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub protocol_mapper: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: StringMap,
}

/// A user with the credentials an import may carry in clear.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub credentials: Vec<Credential>,
}

/// A credential; `value` is the clear text an import may carry (exports hash it).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Credential {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "loose_string")]
    pub value: Option<String>,
}

/// A component (`ComponentExportRepresentation`): `config` values are always lists.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub provider_id: Option<String>,
    #[serde(default)]
    pub sub_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, Vec<LooseString>>,
}

impl Component {
    /// The values of a config key; empty when it is absent.
    pub fn config_values(&self, key: &str) -> Vec<&str> {
        self.config
            .get(key)
            .map(|v| v.iter().filter_map(|s| s.0.as_deref()).collect())
            .unwrap_or_default()
    }
}

/// `clientProfiles`: `{"profiles": [...]}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClientProfiles {
    #[serde(default, deserialize_with = "null_as_default")]
    pub profiles: Vec<ClientProfile>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClientProfile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub executors: Vec<Executor>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Executor {
    #[serde(default)]
    pub executor: Option<String>,
}

/// `clientPolicies`: `{"policies": [...]}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClientPolicies {
    #[serde(default, deserialize_with = "null_as_default")]
    pub policies: Vec<ClientPolicy>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClientPolicy {
    #[serde(default)]
    pub name: Option<String>,
    /// Absent means disabled (`ClientPoliciesUtil.getEnabledClientPolicies`).
    #[serde(default, deserialize_with = "loose_bool")]
    pub enabled: Option<bool>,
    /// `DEFAULT` or `STRICT` (26.7 only).
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conditions: Vec<Condition>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub profiles: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Condition {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub configuration: Value,
}

/// Keycloak's built-in client scopes, created when a file has no `clientScopes`
/// (`OIDCLoginProtocolFactory.createDefaultClientScopesImpl`): realm defaults, then
/// realm optional ones.
const BUILT_IN_DEFAULT_SCOPES: &[&str] =
    &["profile", "email", "roles", "web-origins", "acr", "basic"];
const BUILT_IN_OPTIONAL_SCOPES: &[&str] = &[
    "address",
    "phone",
    "offline_access",
    "microprofile-jwt",
    "organization",
];

impl Realm {
    /// Reads, checks and types a realm file. Errors name the file, the position or JSON
    /// path, and what to do; nothing is written.
    pub fn load(path: &Path) -> anyhow::Result<(RealmFile, Realm)> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the realm file {}: {e}. Check the path (a readable UTF-8 JSON file)",
                path.display()
            )
        })?;
        let origin = path.display().to_string();
        let file = RealmFile::parse(&text, &origin, Some(path.to_owned()))?;
        let realm = Self::from_text(&text, &origin)?;
        Ok((file, realm))
    }

    /// Types a realm from its text; `origin` names it in errors.
    pub fn from_text(text: &str, origin: &str) -> anyhow::Result<Realm> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| type_error(origin, e))
    }

    /// Types an already parsed realm (e.g. [`RealmFile::baseline`]).
    pub fn from_value(json: &Value, origin: &str) -> anyhow::Result<Realm> {
        serde_path_to_error::deserialize(json).map_err(|e| type_error(origin, e))
    }

    pub fn client_scopes(&self) -> &[ClientScope] {
        self.client_scopes.as_deref().unwrap_or_default()
    }

    /// Whether a client scope of that name exists after import.
    pub fn defines_scope(&self, name: &str) -> bool {
        match &self.client_scopes {
            Some(scopes) => scopes.iter().any(|s| s.name() == name),
            None => BUILT_IN_DEFAULT_SCOPES
                .iter()
                .chain(BUILT_IN_OPTIONAL_SCOPES)
                .any(|s| *s == name),
        }
    }

    pub fn scope(&self, name: &str) -> Option<&ClientScope> {
        self.client_scopes().iter().find(|s| s.name() == name)
    }

    /// The realm's default default scopes after import: what every new client, and so
    /// every dynamically registered one, gets as default scopes.
    pub fn default_scopes(&self) -> Vec<String> {
        scope_list(
            &self.default_default_client_scopes,
            &self.client_scopes,
            BUILT_IN_DEFAULT_SCOPES,
        )
    }

    /// The realm's default optional scopes after import.
    pub fn optional_scopes(&self) -> Vec<String> {
        scope_list(
            &self.default_optional_client_scopes,
            &self.client_scopes,
            BUILT_IN_OPTIONAL_SCOPES,
        )
    }

    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id() == client_id)
    }
}

/// A listed realm default wins; without a list, built-ins exist only when Keycloak
/// creates them (no `clientScopes` in the file).
fn scope_list(
    listed: &Option<Vec<String>>,
    scopes: &Option<Vec<ClientScope>>,
    built_in: &[&str],
) -> Vec<String> {
    match (listed, scopes) {
        (Some(list), _) => list.clone(),
        (None, None) => built_in.iter().map(|s| (*s).to_owned()).collect(),
        (None, Some(_)) => Vec::new(),
    }
}

fn type_error<E: fmt::Display>(origin: &str, e: serde_path_to_error::Error<E>) -> anyhow::Error {
    let path = e.path().to_string();
    let path = if path == "." {
        "the top level".to_owned()
    } else {
        path
    };
    anyhow::anyhow!(
        "{origin}: {path}: {}. Fix the value at {path} so it has the type Keycloak's realm \
         representation expects there (compare with a realm exported by `kc.sh export` or \
         the admin console)",
        e.inner()
    )
}

/// Whether a string is, or contains, a `${...}` placeholder.
pub fn has_placeholder(s: &str) -> bool {
    s.find("${").is_some_and(|i| s[i..].contains('}'))
}

/// A JSON object of strings, in file order (client attributes, mapper config).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StringMap(pub Vec<(String, Option<String>)>);

impl StringMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StringMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object whose values are strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, LooseString>()? {
                    out.push((k, v.0));
                }
                Ok(StringMap(out))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

/// A string as Jackson reads one: scalars become their text, `null` is absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LooseString(pub Option<String>);

impl<'de> Deserialize<'de> for LooseString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StringVisitor;
        impl Visitor<'_> for StringVisitor {
            type Value = LooseString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string (Keycloak stores these values as strings)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseString, E> {
                Ok(LooseString(Some(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LooseString, E> {
                Ok(LooseString(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseString, E> {
                Ok(LooseString(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseString, E> {
                Ok(LooseString(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LooseString, E> {
                Ok(LooseString(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LooseString, E> {
                Ok(LooseString(None))
            }
        }
        d.deserialize_any(StringVisitor)
    }
}

fn loose_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    LooseString::deserialize(d).map(|s| s.0)
}

/// A boolean as Jackson reads one (`true`, `"true"`, `"TRUE"`); a placeholder or `null`
/// is unknown (`None`), so Keycloak's default applies.
fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct BoolVisitor;
    impl Visitor<'_> for BoolVisitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean (true or false)")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<bool>, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<bool>, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ if has_placeholder(v) => Ok(None),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<bool>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(BoolVisitor)
}

/// `null` where a list or object is expected is the same as absent.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Realm> {
        Realm::from_text(text, "test.json")
    }

    #[test]
    fn the_baseline_types() {
        let realm = Realm::from_value(&RealmFile::baseline().json, "baseline").unwrap();
        let mcp = realm.client("nextcloud-mcp-server").unwrap();
        assert_eq!(
            mcp.attribute("standard.token.exchange.enabled"),
            Some("true")
        );
        assert!(!mcp.is_public());
        assert!(realm.defines_scope("offline_access"));
        assert!(realm.default_scopes().contains(&"mcp-audiences".to_owned()));
    }

    #[test]
    fn unknown_fields_scalars_nulls_and_placeholders_are_tolerated() {
        let realm = parse(
            r#"{"realm": "r", "somethingNew": {"x": [1]}, "users": null,
                "clients": [{"clientId": "c", "publicClient": "${MCP_HARNESS_FLAG}",
                  "serviceAccountsEnabled": "TRUE", "secret": "${MCP_HARNESS_SECRET_C}",
                  "attributes": {"a": true, "b": 3, "c": null, "d": "${vault.x}"}}]}"#,
        )
        .unwrap();
        let c = &realm.clients[0];
        assert_eq!(c.public_client, None);
        assert_eq!(c.service_accounts_enabled, Some(true));
        assert_eq!(c.attribute("a"), Some("true"));
        assert_eq!(c.attribute("b"), Some("3"));
        assert!(c.attributes.contains_key("c"));
        assert!(realm.users.is_empty());
    }

    #[test]
    fn a_type_error_names_the_file_the_path_the_position_and_what_to_do() {
        let err = parse("{\"realm\": \"r\", \"clients\": [{}, {},\n {\"attributes\": [\"x\"]}]}")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("test.json: clients[2].attributes: "),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
        assert!(
            err.contains("Fix the value at clients[2].attributes"),
            "{err}"
        );
    }

    #[test]
    fn a_nested_type_error_names_the_attribute_key() {
        let err = parse(r#"{"realm": "r", "clients": [{"attributes": {"pkce.code.challenge.method": ["S256"]}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("clients[0].attributes.pkce.code.challenge.method"),
            "{err}"
        );
    }

    #[test]
    fn clients_without_scope_lists_get_the_realm_defaults() {
        let realm = parse(
            r#"{"realm": "r", "defaultDefaultClientScopes": ["a"], "defaultOptionalClientScopes": ["b"],
                "clientScopes": [{"name": "a"}, {"name": "b"}],
                "clients": [{"clientId": "x"}, {"clientId": "y", "defaultClientScopes": ["a"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            realm.clients[0].effective_scopes(&realm),
            (vec!["a".to_owned()], vec!["b".to_owned()])
        );
        assert_eq!(
            realm.clients[1].effective_scopes(&realm),
            (vec!["a".to_owned()], vec![])
        );
    }

    #[test]
    fn without_client_scopes_keycloak_creates_its_built_ins() {
        let realm = parse(r#"{"realm": "r"}"#).unwrap();
        assert!(realm.defines_scope("offline_access"));
        assert!(
            realm
                .optional_scopes()
                .contains(&"offline_access".to_owned())
        );
    }
}
