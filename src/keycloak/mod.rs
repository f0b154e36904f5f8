//! Keycloak: its admin REST API, realm files, and the realm lint.

pub mod admin;
pub mod augment;
pub mod diff;
pub mod features;
pub mod lint;
pub mod model;
pub mod realm;
