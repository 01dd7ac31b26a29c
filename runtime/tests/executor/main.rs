//! The executor against real SQLite files, as one test binary (one link of
//! the bundled SQLite):
//!
//! - `migrate`: fresh apply, reruns, upgrades, the one-statement up-to-date
//!   check, history checks, a database ahead of the code, adoption, foreign
//!   tables;
//! - `faults`: a failure injected at every statement from every version;
//! - `crash`: a process killed mid-migration;
//! - `batch`: batched statements in phases, budgets, kills (issue 21);
//! - `fleet`: failure on a fleet (`Schema::wake`), foreign-key checks before
//!   commit, safe adoption;
//! - `drizzle`: adopting drizzle-orm's Durable Object history;
//! - `replace`: a released migration deliberately replaced;
//! - `baseline`: new objects created from the compile-time baseline.
//!
//! Needs the `rusqlite` feature (the backend under test):
//! `cargo test -p durable-schema-runtime --features rusqlite`.
#![cfg(feature = "rusqlite")]

mod baseline;
mod batch;
mod common;
mod crash;
mod drizzle;
mod faults;
mod fleet;
mod migrate;
mod range;
mod replace;
