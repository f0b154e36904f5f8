//! A stack like this one with Keycloak built otherwise: for a check that needs a Keycloak
//! feature applying realm-wide (so not in the session's build), which it boots next to the
//! session's stack with a session of its own, and tears down.

use super::{Need, Stack, StackConfig};

impl Stack {
    /// This stack's configuration (backend, versions, distribution, images) with
    /// `features` added to Keycloak's build options, starting `needs`.
    pub fn config_with_features(&self, features: &[&str], needs: Vec<Need>) -> StackConfig {
        let mut cfg = self.config.clone();
        for f in features {
            if !cfg.keycloak.build.features.iter().any(|x| x == f) {
                cfg.keycloak.build.features.push((*f).to_owned());
            }
        }
        cfg.keycloak
            .build
            .features_disabled
            .retain(|x| !features.contains(&x.as_str()));
        cfg.needs = needs;
        cfg
    }
}
