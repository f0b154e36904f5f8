//! mcp-authz-harness: brings up a real OAuth deployment of an MCP server (Keycloak as the
//! authorization server, Nextcloud or its stand-in as the resource server, the reference
//! `nextcloud-mcp-server`) and runs a conformance catalogue against it.
//!
//! The machinery ([`stack`], [`session`], [`runner`], [`report`]) is separate from the
//! catalogue ([`checks`]): a check is a plain async function in a static table, and never
//! knows which backend runs the stack. The stack owns every component; the session holds
//! handles and the resources checks create; the runner orchestrates a run for every
//! command.

#![forbid(unsafe_code)]

pub mod browser;
pub mod checks;
pub mod cli;
pub mod config;
pub mod evidence;
pub mod expectations;
pub mod http;
pub mod keycloak;
pub mod markdown;
pub mod mcp;
pub mod mutants;
pub(crate) mod nextcloud;
pub mod oauth;
pub mod pins;
pub mod progress;
pub mod report;
pub mod repro;
pub mod runner;
pub mod secret;
pub mod session;
pub mod stack;
pub mod storage;
pub(crate) mod validate;

pub use checks::{Area, Check, CheckCtx, Selection, catalogue};
pub use report::{Report, Status};
pub use secret::{Secret, SecretKind};
pub use session::{Session, SessionOptions};
pub use stack::{Backend, Stack, StackConfig};
