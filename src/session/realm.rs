//! The realm a session runs against: imported by the session, or found already present
//! on an external Keycloak.

use anyhow::Context;
use serde_json::Value;

use crate::evidence::Evidence;
use crate::keycloak::admin::AdminClient;
use crate::keycloak::realm::{Placeholders, RealmFile};
use crate::secret::{Secret, SecretKind};

/// A check cannot run on this realm: something it needs is not there (a client, a user).
/// The runner records it as a skip saying "not applicable" on a realm the user brings, and
/// as a failure on the built-in baseline; `validate-realm` keeps such checks apart from
/// regressions.
#[derive(Debug, thiserror::Error)]
#[error("not applicable: {0}")]
pub struct NotApplicable(pub String);

/// How the realm came to be there.
#[derive(Clone, Debug, PartialEq)]
pub enum RealmSource {
    /// `POST /admin/realms` answered with this status (201 on success).
    Imported { status: u16, summary: String },
    /// It existed before the run (external backend); secrets were read or reset.
    AlreadyPresent,
}

/// A realm in the running Keycloak, with the secrets the harness needs for it.
#[derive(Clone, Debug)]
pub struct DeployedRealm {
    pub name: String,
    pub file: RealmFile,
    pub values: Placeholders,
    pub keycloak_url: String,
    pub source: RealmSource,
}

impl DeployedRealm {
    pub fn issuer(&self) -> String {
        format!("{}/realms/{}", self.keycloak_url, self.name)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// Why the realm cannot be used, if it cannot.
    pub fn unusable(&self) -> Option<String> {
        match &self.source {
            RealmSource::Imported { status: 201, .. } | RealmSource::AlreadyPresent => None,
            RealmSource::Imported { summary, .. } => {
                Some(format!("its import was refused: {summary}"))
            }
        }
    }

    pub fn imported_by_us(&self) -> bool {
        matches!(self.source, RealmSource::Imported { status: 201, .. })
    }

    /// The realm file with placeholders filled: what Keycloak was given.
    pub fn filled(&self) -> Value {
        self.file.filled(&self.values)
    }

    /// A client's secret as the realm file gives it (placeholders filled).
    pub fn client_secret(&self, client_id: &str) -> Option<Secret> {
        let filled = self.filled();
        let client = filled["clients"]
            .as_array()?
            .iter()
            .find(|c| c["clientId"] == client_id)?;
        client["secret"]
            .as_str()
            .map(|s| Secret::new(SecretKind::ClientSecret, s))
    }

    /// A user's password as the realm file gives it (placeholders filled).
    pub fn user_password(&self, username: &str) -> Option<Secret> {
        let filled = self.filled();
        let user = filled["users"]
            .as_array()?
            .iter()
            .find(|u| u["username"] == username)?;
        user["credentials"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "password")?["value"]
            .as_str()
            .map(|s| Secret::new(SecretKind::Password, s))
    }

    /// A user's password, or "not applicable" when the realm file gives none.
    pub fn require_password(&self, username: &str) -> Result<Secret, NotApplicable> {
        self.user_password(username).ok_or_else(|| {
            NotApplicable(format!(
                "the realm file defines no user {username:?} with a password"
            ))
        })
    }

    /// A client's secret, or "not applicable" when the realm file gives none.
    pub fn require_client_secret(&self, client_id: &str) -> Result<Secret, NotApplicable> {
        self.client_secret(client_id).ok_or_else(|| {
            NotApplicable(format!(
                "the realm file defines no client {client_id:?} with a secret"
            ))
        })
    }

    /// `clientId`s the realm file defines.
    pub fn file_client_ids(&self) -> Vec<String> {
        self.file.json["clients"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["clientId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Imports `file` (placeholders filled with fresh values) into the running Keycloak.
pub async fn import(
    admin: &AdminClient,
    file: &RealmFile,
    evidence: &Evidence,
) -> anyhow::Result<DeployedRealm> {
    let values = Placeholders::generate(&file.placeholders());
    let filled = file.filled(&values);
    evidence.step(format!(
        "import realm {:?} from {}",
        file.name(),
        file.origin
    ));
    let resp = admin.recording(evidence).import_realm(&filled).await?;
    Ok(DeployedRealm {
        name: file.name().to_owned(),
        file: file.clone(),
        values,
        keycloak_url: admin.base_url().to_owned(),
        source: RealmSource::Imported {
            status: resp.status,
            summary: resp.summary(),
        },
    })
}

/// Uses a realm that already exists on an external Keycloak. Secrets the file writes as
/// placeholders cannot be known, so the harness reads client secrets through the admin
/// API and sets fresh passwords for the users the file defines with placeholders.
pub async fn adopt(
    admin: &AdminClient,
    file: &RealmFile,
    evidence: &Evidence,
) -> anyhow::Result<DeployedRealm> {
    let realm = file.name().to_owned();
    let admin = admin.recording(evidence);
    evidence.step(format!(
        "use the existing realm {realm:?}: read client secrets, reset test-user passwords"
    ));
    let mut values = Placeholders::default();
    for (client_id, name) in
        placeholder_fields(&file.json, "clients", "clientId", |c| c["secret"].as_str())
    {
        let c = admin
            .client_by_client_id(&realm, &client_id)
            .await?
            .with_context(|| {
                format!("the realm {realm:?} on the external Keycloak has no client {client_id:?}")
            })?;
        let v = admin
            .get_json(&format!("/realms/{realm}/clients/{}/client-secret", c.id))
            .await?;
        let secret = v["value"]
            .as_str()
            .context("client-secret response without value")?;
        values.insert(&name, Secret::new(SecretKind::ClientSecret, secret));
    }
    for (username, name) in placeholder_fields(&file.json, "users", "username", |u| {
        u["credentials"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "password")?["value"]
            .as_str()
    }) {
        let users = admin
            .get_json(&format!(
                "/realms/{realm}/users?exact=true&username={username}"
            ))
            .await?;
        let id = users[0]["id"]
            .as_str()
            .with_context(|| format!("the realm {realm:?} has no user {username:?}"))?;
        let password = Secret::generate(SecretKind::Password, 18);
        let resp = admin
            .put(
                &format!("/realms/{realm}/users/{id}/reset-password"),
                &serde_json::json!({"type": "password", "value": password.expose(), "temporary": false}),
            )
            .await?;
        anyhow::ensure!(
            resp.status == 204,
            "resetting the password of {username}: {}",
            resp.summary()
        );
        values.insert(&name, password);
    }
    Ok(DeployedRealm {
        name: realm,
        file: file.clone(),
        values,
        keycloak_url: admin.base_url().to_owned(),
        source: RealmSource::AlreadyPresent,
    })
}

/// `(key, placeholder name)` for each element of `list` whose field is a placeholder.
fn placeholder_fields<'a>(
    json: &'a Value,
    list: &str,
    key: &str,
    field: impl Fn(&'a Value) -> Option<&'a str>,
) -> Vec<(String, String)> {
    json[list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let name = field(item)?
                        .strip_prefix("${")?
                        .strip_suffix('}')?
                        .to_owned();
                    Some((item[key].as_str()?.to_owned(), name))
                })
                .collect()
        })
        .unwrap_or_default()
}
