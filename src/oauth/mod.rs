//! OAuth and OpenID Connect: discovery, JWKS and JWT validation, token calls.

pub mod dcr;
pub mod discovery;
pub mod forge;
pub mod jwt;
pub mod pkce;
pub mod token;
