//! A stack like this one with Keycloak built otherwise: for a check that needs a Keycloak
//! feature applying realm-wide (so not in the session's build), which it boots next to the
//! session's stack with a session of its own, and tears down.

use std::time::Duration;

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

/// One own stack boots at a time in a process. A matrix runs a check that boots one in
/// every cell at once; four Keycloak boots at a time on two cores each took over the 180 s
/// boot timeout, which failed three of the four checks for the harness's own load.
static OWN_STACK_BOOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

impl Stack {
    /// Waits until no other own stack of this process is booting; the boot holds the
    /// permit. Returns it with how long the wait took.
    pub async fn own_stack_boot_slot() -> (tokio::sync::SemaphorePermit<'static>, Duration) {
        let asked = std::time::Instant::now();
        let permit = OWN_STACK_BOOTS
            .acquire()
            .await
            .expect("the own-stack semaphore is never closed");
        (permit, asked.elapsed())
    }
}
