//! Users and app passwords, in memory.
//!
//! Users appear the way user_oidc's bearer provisioning makes them: on their first valid
//! bearer token. App passwords are what Login Flow v2 hands out; like Nextcloud, the
//! stand-in keeps only a hash of each, keyed to the user and login name it belongs to.

use std::collections::HashMap;

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::secret::{Secret, SecretKind};

/// Length of an app password: Nextcloud generates 72 characters of `[A-Za-z0-9]`.
const APP_PASSWORD_LEN: usize = 72;

/// An app password's owner; the password itself is not kept.
#[derive(Clone, Debug)]
pub(crate) struct AppPassword {
    pub(crate) uid: String,
    /// The user name a Basic login must give with it (the uid, for user_oidc users).
    pub(crate) login_name: String,
}

/// The key an app password is stored under: the hex SHA-256 of its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AppPasswordKey(String);

impl AppPasswordKey {
    fn of(password: &str) -> Self {
        let digest = Sha256::digest(password.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[derive(Default)]
pub(crate) struct Accounts {
    display_names: HashMap<String, String>,
    app_passwords: HashMap<AppPasswordKey, AppPassword>,
}

impl Accounts {
    /// Creates the user, or refreshes its display name (bearer provisioning).
    pub(crate) fn provision(&mut self, uid: &str, display_name: &str) {
        self.display_names
            .insert(uid.to_owned(), display_name.to_owned());
    }

    pub(crate) fn display_name(&self, uid: &str) -> String {
        self.display_names
            .get(uid)
            .cloned()
            .unwrap_or_else(|| uid.to_owned())
    }

    /// A new app password for `uid`, usable at once.
    pub(crate) fn issue_app_password(&mut self, uid: &str) -> Secret {
        let value: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(APP_PASSWORD_LEN)
            .map(char::from)
            .collect();
        let password = Secret::new(SecretKind::AppPassword, value);
        self.app_passwords.insert(
            AppPasswordKey::of(password.expose()),
            AppPassword {
                uid: uid.to_owned(),
                login_name: uid.to_owned(),
            },
        );
        password
    }

    /// The app password with this value, if it exists.
    pub(crate) fn app_password(&self, password: &str) -> Option<(AppPasswordKey, AppPassword)> {
        let key = AppPasswordKey::of(password);
        let found = self.app_passwords.get(&key)?.clone();
        Some((key, found))
    }

    pub(crate) fn revoke(&mut self, key: &AppPasswordKey) -> bool {
        self.app_passwords.remove(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_passwords_are_72_alphanumerics_and_revocable() {
        let mut accounts = Accounts::default();
        let pw = accounts.issue_app_password("u1");
        assert_eq!(pw.expose().len(), 72);
        assert!(pw.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        let (key, owner) = accounts.app_password(pw.expose()).unwrap();
        assert_eq!(
            (owner.uid.as_str(), owner.login_name.as_str()),
            ("u1", "u1")
        );
        assert!(accounts.revoke(&key));
        assert!(accounts.app_password(pw.expose()).is_none());
    }
}
