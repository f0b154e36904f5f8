//! The mutation self-test: the catalogue run against deliberately broken deployments
//! ([`catalogue::MUTANTS`]), each of which must be caught by the checks it names. It is
//! the proof that a green run means something: a check that no broken deployment can
//! make fail is listed with the reason it cannot be killed here
//! (`fixtures/mutation/unkillable.toml`).
//!
//! One Keycloak serves the baseline and every realm, resource-server and MCP-server
//! mutant (each a joined session with its own realm, stand-in and MCP server); a Keycloak
//! mutant boots its own; fault mutants run last, on the baseline session, through the
//! [`interposer`] every request of the harness passes.

pub mod catalogue;
pub mod interposer;
mod patches;
mod report;
mod run;

pub use catalogue::{Component, Defect, MUTANTS, Mutant};
pub use report::{MutantOutcome, MutationReport, markdown, unkillable_reasons};
pub use run::{MutantsOptions, run, select as run_select};
