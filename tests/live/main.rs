//! The tests that drive the built binary as a user would, most of them against real
//! components (Keycloak, the MCP server, Chromium, a containers engine), one module per
//! concern. They are one test binary rather than one per file so that libtest runs them
//! side by side across concerns: cargo runs test binaries one after another, which left a
//! core idle whenever a file's last long test ran alone. Tests that boot a stack hold one
//! of `common::boot_slot`'s slots. One concern alone: `cargo test --test live faults::`.

mod common;

mod bad_input;
mod concurrency;
mod containers;
mod exposure;
mod faults;
mod lifecycle;
mod matrix;
mod validate_realm;
