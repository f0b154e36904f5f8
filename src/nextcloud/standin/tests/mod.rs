//! The stand-in over HTTP, against a mock Keycloak (wiremock) serving discovery and a
//! JWKS of keys made here.

mod bearer;
mod login_flow;
mod notes;
mod ocs;
mod support;
