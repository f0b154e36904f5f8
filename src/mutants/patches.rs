//! The realm mutants' patches: each takes the baseline realm and breaks one thing.

use serde_json::Value;

fn clients(realm: &mut Value) -> impl Iterator<Item = &mut Value> {
    realm["clients"].as_array_mut().into_iter().flatten()
}

pub(super) fn no_rotation(realm: &mut Value) {
    realm["revokeRefreshToken"] = Value::Bool(false);
}

pub(super) fn exchange_off(realm: &mut Value) {
    for c in clients(realm) {
        if let Some(attrs) = c["attributes"].as_object_mut() {
            attrs.remove("standard.token.exchange.enabled");
        }
    }
}

pub(super) fn no_trusted_hosts(realm: &mut Value) {
    if let Some(policies) = realm["components"][REGISTRATION_POLICIES].as_array_mut() {
        policies.retain(|p| p["providerId"] != "trusted-hosts");
    }
}

pub(super) fn any_scope(realm: &mut Value) {
    if let Some(policies) = realm["components"][REGISTRATION_POLICIES].as_array_mut() {
        policies.retain(|p| {
            !(p["providerId"] == "allowed-client-templates" && p["subType"] == "anonymous")
        });
    }
}

const REGISTRATION_POLICIES: &str =
    "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy";

pub(super) fn dcr_closed(realm: &mut Value) {
    for p in realm["components"][REGISTRATION_POLICIES]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter(|p| p["providerId"] == "trusted-hosts")
    {
        p["config"]["trusted-hosts"] = serde_json::json!(["registration.invalid"]);
    }
}

/// The realm's keys from one ES256 provider: Keycloak then generates no RSA key.
pub(super) fn es256_only(realm: &mut Value) {
    realm["defaultSignatureAlgorithm"] = Value::from("ES256");
    realm["components"]["org.keycloak.keys.KeyProvider"] = serde_json::json!([{
        "name": "ecdsa-generated",
        "providerId": "ecdsa-generated",
        "subComponents": {},
        "config": {"priority": ["100"], "ecdsaEllipticCurveKey": ["P-256"]}
    }]);
}

fn without(list: &mut Value, name: &str) {
    if let Some(items) = list.as_array_mut() {
        items.retain(|s| s != name);
    }
}

pub(super) fn no_basic_scope(realm: &mut Value) {
    without(&mut realm["defaultDefaultClientScopes"], "basic");
    for c in clients(realm) {
        without(&mut c["defaultClientScopes"], "basic");
    }
}

pub(super) fn no_service_account(realm: &mut Value) {
    for c in clients(realm) {
        if c["clientId"] == crate::keycloak::realm::MCP_SERVER_CLIENT {
            c["serviceAccountsEnabled"] = Value::Bool(false);
        }
    }
}

pub(super) fn no_offline_access(realm: &mut Value) {
    without(&mut realm["defaultOptionalClientScopes"], "offline_access");
    for c in clients(realm) {
        without(&mut c["optionalClientScopes"], "offline_access");
    }
}

/// The scope gone from the realm, its clients and the registration policy's allowed list.
pub(super) fn no_notes_write(realm: &mut Value) {
    const SCOPE: &str = "notes.write";
    if let Some(scopes) = realm["clientScopes"].as_array_mut() {
        scopes.retain(|s| s["name"] != SCOPE);
    }
    without(&mut realm["defaultOptionalClientScopes"], SCOPE);
    for c in clients(realm) {
        without(&mut c["optionalClientScopes"], SCOPE);
        without(&mut c["defaultClientScopes"], SCOPE);
    }
    for p in realm["components"][REGISTRATION_POLICIES]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        without(&mut p["config"]["allowed-client-scopes"], SCOPE);
    }
}

pub(super) fn no_pkce_policy(realm: &mut Value) {
    realm["clientPolicies"] = serde_json::json!({"policies": []});
}

pub(super) fn no_audiences(realm: &mut Value) {
    let scopes = realm["clientScopes"].as_array_mut().into_iter().flatten();
    for s in scopes {
        if let Some(mappers) = s["protocolMappers"].as_array_mut() {
            mappers.retain(|m| m["protocolMapper"] != "oidc-audience-mapper");
        }
    }
}
