//! What the catalogue needs in a realm and an export lacks, added before a live diff.
//!
//! A realm exported from Keycloak masks client secrets (`**********`), and a partial export
//! has no users; the catalogue authenticates as the realm's clients and logs in as the
//! baseline's test users. So, before import, secrets masked in the export become harness
//! placeholders (filled with fresh values at import), the baseline's test users are added
//! when absent, and users without a password the harness can know get the baseline's
//! placeholder. Nothing else changes: what the file says about clients, scopes and
//! policies is the subject of the diff. Every addition is reported as a note.

use serde_json::{Value, json};

use super::realm::{default_role_name, password_placeholder, secret_placeholder};

/// How Keycloak's admin console and `kc.sh export` write a secret they do not show.
pub const MASKED: &str = "**********";

/// `realm` with what the catalogue needs added (the test users taken from `baseline`),
/// and one note per addition.
pub fn augment(realm: &Value, baseline: &Value) -> (Value, Vec<String>) {
    let mut out = realm.clone();
    let mut notes = Vec::new();
    unmask_client_secrets(&mut out, &mut notes);
    add_test_users(&mut out, baseline, &mut notes);
    give_passwords(&mut out, baseline, &mut notes);
    (out, notes)
}

fn unmask_client_secrets(realm: &mut Value, notes: &mut Vec<String>) {
    let clients = realm.get_mut("clients").and_then(Value::as_array_mut);
    for client in clients.into_iter().flatten() {
        if client["secret"] != MASKED {
            continue;
        }
        let id = client["clientId"].as_str().unwrap_or_default().to_owned();
        let placeholder = format!("${{{}}}", secret_placeholder(&id));
        notes.push(format!(
            "clients[{id}].secret: masked in the export ({MASKED}); set to {placeholder}, a fresh value at import"
        ));
        client["secret"] = json!(placeholder);
    }
}

/// The baseline's users who log in (service-account users belong to their client).
fn test_users(baseline: &Value) -> impl Iterator<Item = &Value> {
    baseline["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u.get("serviceAccountClientId").is_none())
}

fn username(user: &Value) -> String {
    user["username"].as_str().unwrap_or_default().to_lowercase()
}

fn add_test_users(realm: &mut Value, baseline: &Value, notes: &mut Vec<String>) {
    let (old_role, new_role) = (default_role_name(baseline), default_role_name(realm));
    let present: Vec<String> = realm["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(username)
        .collect();
    let mut added = Vec::new();
    for user in test_users(baseline).filter(|u| !present.contains(&username(u))) {
        let mut user = user.clone();
        for role in user
            .get_mut("realmRoles")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if role.as_str() == Some(&old_role) {
                *role = json!(new_role);
            }
        }
        notes.push(format!(
            "users[{}]: absent; added as the baseline defines it (password {})",
            username(&user),
            password_of(&user).unwrap_or("none")
        ));
        added.push(user);
    }
    if added.is_empty() {
        return;
    }
    match realm.get_mut("users").and_then(Value::as_array_mut) {
        Some(users) => users.extend(added),
        None => realm["users"] = Value::Array(added),
    }
}

/// The `value` of a user's password credential, if the file gives one.
fn password_of(user: &Value) -> Option<&str> {
    user["credentials"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "password")?["value"]
        .as_str()
}

fn give_passwords(realm: &mut Value, baseline: &Value, notes: &mut Vec<String>) {
    let baseline_password = |name: &str| {
        test_users(baseline)
            .find(|u| username(u) == name)
            .and_then(password_of)
            .map(str::to_owned)
    };
    let users = realm.get_mut("users").and_then(Value::as_array_mut);
    for user in users.into_iter().flatten() {
        if user.get("serviceAccountClientId").is_some() || password_of(user).is_some() {
            continue;
        }
        let name = username(user);
        let password = baseline_password(&name)
            .unwrap_or_else(|| format!("${{{}}}", password_placeholder(&name)));
        let hashed = user["credentials"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "password"));
        notes.push(format!(
            "users[{name}]: {}; set to {password}",
            if hashed {
                "password stored hashed (unknown to the harness)"
            } else {
                "no password"
            }
        ));
        let mut credentials: Vec<Value> = user["credentials"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["type"] != "password")
            .cloned()
            .collect();
        credentials.push(json!({"type": "password", "value": password, "temporary": false}));
        user["credentials"] = Value::Array(credentials);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keycloak::realm::RealmFile;

    fn baseline() -> Value {
        RealmFile::baseline().json
    }

    fn user<'a>(realm: &'a Value, name: &str) -> &'a Value {
        realm["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap_or_else(|| panic!("no user {name}"))
    }

    #[test]
    fn the_baseline_needs_nothing() {
        let (out, notes) = augment(&baseline(), &baseline());
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(out, baseline());
    }

    #[test]
    fn masked_client_secrets_become_harness_placeholders() {
        let realm = json!({"realm": "r", "clients": [
            {"clientId": "nextcloud-mcp-server", "secret": MASKED},
            {"clientId": "literal", "secret": "kept-as-is"},
            {"clientId": "public", "publicClient": true}]});
        let (out, notes) = augment(&realm, &json!({"realm": "b"}));
        assert_eq!(
            out["clients"][0]["secret"],
            "${MCP_HARNESS_SECRET_NEXTCLOUD_MCP_SERVER}"
        );
        assert_eq!(out["clients"][1]["secret"], "kept-as-is");
        assert!(out["clients"][2].get("secret").is_none());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("clients[nextcloud-mcp-server].secret: masked"),
            "{notes:?}"
        );
    }

    #[test]
    fn absent_test_users_are_added_with_the_realms_default_role() {
        let realm = json!({"realm": "Changed", "users": [
            {"username": "alice", "credentials": [{"type": "password", "value": "${MCP_HARNESS_PASSWORD_ALICE}"}]}]});
        let (out, notes) = augment(&realm, &baseline());
        let names: Vec<&str> = out["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alice", "admin", "bob", "carol"]);
        let bob = user(&out, "bob");
        assert_eq!(password_of(bob), Some("${MCP_HARNESS_PASSWORD_BOB}"));
        assert_eq!(bob["realmRoles"], json!(["default-roles-changed"]));
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes.contains(&"users[bob]: absent; added as the baseline defines it (password ${MCP_HARNESS_PASSWORD_BOB})".to_owned()),
            "{notes:?}"
        );
    }

    #[test]
    fn an_export_without_users_gets_every_test_user() {
        let (out, notes) = augment(&json!({"realm": "r"}), &baseline());
        assert_eq!(out["users"].as_array().unwrap().len(), 4);
        assert_eq!(notes.len(), 4, "{notes:?}");
    }

    #[test]
    fn users_without_a_known_password_get_a_placeholder() {
        let hashed =
            json!({"type": "password", "secretData": "{\"value\":\"x\"}", "credentialData": "{}"});
        let otp = json!({"type": "otp", "secretData": "s"});
        let realm = json!({"realm": "r", "users": [
            {"username": "Alice", "credentials": [hashed, otp]},
            {"username": "dave"},
            {"username": "service-account-x", "serviceAccountClientId": "x"}]});
        let (out, notes) = augment(&realm, &baseline());
        let alice = user(&out, "Alice");
        assert_eq!(password_of(alice), Some("${MCP_HARNESS_PASSWORD_ALICE}"));
        assert_eq!(
            alice["credentials"].as_array().unwrap().len(),
            2,
            "the OTP credential stays, the hashed password goes"
        );
        assert_eq!(
            password_of(user(&out, "dave")),
            Some("${MCP_HARNESS_PASSWORD_DAVE}")
        );
        assert!(
            user(&out, "service-account-x").get("credentials").is_none(),
            "service accounts have no password"
        );
        assert!(
            notes.contains(&"users[alice]: password stored hashed (unknown to the harness); set to ${MCP_HARNESS_PASSWORD_ALICE}".to_owned()),
            "{notes:?}"
        );
        assert!(
            notes.contains(
                &"users[dave]: no password; set to ${MCP_HARNESS_PASSWORD_DAVE}".to_owned()
            ),
            "{notes:?}"
        );
    }
}
