//! How Nextcloud's `user_oidc` app names the user a bearer token logs in, as its
//! documentation and source (`LocalIdService::getId`, `UserMapper::getOrCreate`) state it.
//!
//! Checks compute the user id they expect from this, never from the stand-in's own code:
//! a mapping bug shared by both would otherwise go unseen. The provider's settings are
//! the deployment's, so the backend supplies them.

use sha2::{Digest, Sha256};

/// user_oidc's provider settings that decide the local user id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UidMapping {
    /// "Use unique user id" on (the default): hex SHA-256 of `"<provider id>_0_<sub>"`,
    /// with the provider's database id.
    Unique { provider_id: u32 },
    /// "Use provider identifier as prefix for ids": `"<provider identifier>-<sub>"`.
    ProviderPrefix { identifier: String },
    /// Neither: the mapped claim as it is.
    Plain,
}

impl Default for UidMapping {
    /// The reference deployment: one provider (database id 1), unique user ids on.
    fn default() -> Self {
        UidMapping::Unique { provider_id: 1 }
    }
}

impl UidMapping {
    /// The Nextcloud user id for a token whose mapped claim (`sub`) is `sub`. Ids longer
    /// than 64 characters are hashed once more (Nextcloud's user id limit).
    pub fn user_id(&self, sub: &str) -> String {
        let id = match self {
            UidMapping::Unique { provider_id } => sha256_hex(&format!("{provider_id}_0_{sub}")),
            UidMapping::ProviderPrefix { identifier } => format!("{identifier}-{sub}"),
            UidMapping::Plain => sub.to_owned(),
        };
        if id.len() > 64 { sha256_hex(&id) } else { id }
    }

    /// The mapping from a setting: `unique:<provider id>`, `prefix:<identifier>` or `plain`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a user_oidc uid mapping: use unique:<provider id> (the default, unique:1), \
                 prefix:<provider identifier> or plain"
            )
        };
        match s.split_once(':') {
            Some(("unique", id)) => id
                .parse()
                .map(|provider_id| UidMapping::Unique { provider_id })
                .map_err(|_| bad()),
            Some(("prefix", name)) if !name.is_empty() => Ok(UidMapping::ProviderPrefix {
                identifier: name.to_owned(),
            }),
            None if s == "plain" => Ok(UidMapping::Plain),
            _ => Err(bad()),
        }
    }

    /// The setting's form, as [`UidMapping::parse`] reads it.
    pub fn setting(&self) -> String {
        match self {
            UidMapping::Unique { provider_id } => format!("unique:{provider_id}"),
            UidMapping::ProviderPrefix { identifier } => format!("prefix:{identifier}"),
            UidMapping::Plain => "plain".into(),
        }
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers computed outside this code: `printf '1_0_<sub>' | sha256sum`.
    #[test]
    fn unique_ids_are_the_sha256_of_provider_zero_sub() {
        let sub = "6f1b6c3e-2a7d-4f0e-9b1a-5c3d2e1f0a9b";
        assert_eq!(
            UidMapping::Unique { provider_id: 1 }.user_id(sub),
            "9b17465d771075530220d64795524701b82acc47f363c38449e0d9fa07bbc14f"
        );
    }

    #[test]
    fn prefixed_and_plain_ids_keep_the_sub() {
        let prefix = UidMapping::ProviderPrefix {
            identifier: "keycloak".into(),
        };
        assert_eq!(prefix.user_id("alice"), "keycloak-alice");
        assert_eq!(UidMapping::Plain.user_id("alice"), "alice");
        // `printf 'x%.0s' $(seq 70) | sha256sum`
        assert_eq!(
            UidMapping::Plain.user_id(&"x".repeat(70)),
            "c71bd109227e23434ecf71fd0a344a209136c79ae5a0bda2b5ca442d699a3cd9"
        );
    }

    #[test]
    fn settings_round_trip_and_bad_ones_say_what_to_write() {
        for m in [
            UidMapping::default(),
            UidMapping::Plain,
            UidMapping::ProviderPrefix {
                identifier: "kc".into(),
            },
        ] {
            assert_eq!(UidMapping::parse(&m.setting()).unwrap(), m);
        }
        assert!(
            UidMapping::parse("unique:x")
                .unwrap_err()
                .contains("unique:<provider id>")
        );
    }
}
