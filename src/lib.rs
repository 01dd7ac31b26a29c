//! # durable-schema
//!
//! Versioned SQLite migrations for Cloudflare Durable Objects, checked at
//! compile time and applied on every construction.
//!
//! A SQLite-backed Durable Object keeps its database across deploys while a
//! running instance may keep old code. Hand-rolled `CREATE TABLE IF NOT
//! EXISTS` plus in-memory `initialized` flags leave objects stuck on an old
//! schema. durable-schema replaces them with a recorded, transactional chain:
//!
//! ```ignore
//! use worker::*;
//!
//! #[durable_object]
//! #[durable_schema::durable_schema(dir = "migrations")]
//! pub struct Chat {
//!     state: State,
//! }
//!
//! impl DurableObject for Chat {
//!     fn new(state: State, _env: Env) -> Self {
//!         // blockConcurrencyWhile + apply pending migrations
//!         Self::migrate(&state);
//!         Self { state }
//!     }
//!     // fetch ...
//! }
//! ```
//!
//! The Durable Object backend ([`worker`], `migrate(&State)`) is always
//! there on wasm32, and on the host through the default feature `worker`,
//! so a Worker crate checks on the host (`cargo check`, rust-analyzer) with
//! a plain `durable-schema` dependency. Native-only users (feature
//! `rusqlite`, no Worker) can drop it with `default-features = false`.
//!
//! ## At compile time
//! `#[durable_schema(dir = "migrations")]` reads `migrations/NNNN_description.sql`
//! (relative to `Cargo.toml`), checks names and order (versions 1, 2, 3…),
//! splits every file into statements exactly as SQLite does, and replays the
//! chain in an in-memory SQLite configured like a Durable Object's (foreign
//! keys on, workerd's limits and authorizer: no BEGIN/COMMIT, no
//! `PRAGMA journal_mode`, no TEMP tables, only fts5/rtree virtual tables, no
//! `_cf_` names…). Every problem becomes a compile error pointing at
//! `migrations/0003_x.sql:LINE:COL`. It then generates, on the struct:
//!
//! - `pub const CURRENT_SCHEMA_VERSION: u32`: the highest version;
//! - `pub const SCHEMA: `[`Schema`]: the embedded, checked migrations;
//! - `pub fn migrate(target)`: the constructor hook.
//!
//! Arguments: `dir` (required), `table = "migrations"` (the tracking table),
//! `strict = true` (a database ahead of the code is an error instead of being
//! tolerated during a rollback), `retry_after = 60` (seconds before the hook
//! runs a migration again that failed with the same code), `baseline =
//! false` (new objects run every migration instead of the [`Baseline`]).
//!
//! ## At run time
//! The migrator reads one row of the tracking table (the highest version and
//! its checksum chain value) to know the database is current. Otherwise it
//! applies each pending migration together with its tracking row in one
//! transaction. An empty database (a new object) is created in one
//! transaction from the schema's [`Baseline`], verified at compile time to
//! give the same database and tracking rows as the whole chain, when the
//! chain has one ([`Schema::baseline_note`] says why not).
//!
//! Natively (feature `rusqlite`), the same schema runs on a local file, which
//! is how the tests and the native demo use it; `Chat::SCHEMA.migrate(&conn)`
//! and `Chat::SCHEMA.status(&conn)` work on any [`backend::Backend`]:
//!
//! ```
//! #[durable_schema::durable_schema(dir = "migrations")]
//! pub struct Chat;
//!
//! let conn = rusqlite::Connection::open_in_memory().unwrap();
//! let report = Chat::migrate(&conn).unwrap();
//! assert_eq!(report.to_version(), Chat::CURRENT_SCHEMA_VERSION);
//! assert_eq!(Chat::CURRENT_SCHEMA_VERSION, 3);
//! ```
//!
//! ## New files and rebuilds
//! Each migration is embedded with `include_str!`, so editing one rebuilds the
//! crate. To rebuild when a file is *added*, call [`build::watch`] from
//! `build.rs` (with `durable-schema` in `[build-dependencies]`):
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     durable_schema::build::watch("migrations");
//! }
//! ```
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The build-script example is a whole build.rs, where `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

/// Checks a directory of SQL migrations at compile time and generates
/// `CURRENT_SCHEMA_VERSION`, `SCHEMA` and `migrate` on the struct.
///
/// See the [crate documentation](crate) for the arguments and what is checked.
pub use durable_schema_macros::durable_schema;

pub use durable_schema_runtime::build;
pub use durable_schema_runtime::{
    AppliedMigration, Baseline, FailureRecord, MigrateError, Migration, Mismatch, Report, Schema,
    SchemaState, Statement, Status, Wake,
};

/// The seam between the executor and a database, for writing a backend or
/// a test wrapper (fault injection, counters). Migrating needs none of it.
pub use durable_schema_runtime::backend;

/// The Durable Object backend: `DurableObjectSql`, `sql` (the database
/// once the schema is current), and `status` and `last_wake` for a
/// `/schema` debug route. Always on wasm32; elsewhere with the default
/// feature `worker`.
#[cfg(any(target_arch = "wasm32", feature = "worker"))]
#[cfg_attr(docsrs, doc(cfg(any(target_arch = "wasm32", feature = "worker"))))]
pub use durable_schema_runtime::worker;

// Test your upgrade paths with `cargo test` (documented in the module).
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[doc(hidden)]
pub mod __private {
    pub use durable_schema_runtime::__ChainLink as ChainLink;
    pub use durable_schema_runtime::__private::{
        check_tag, decoded, total_len, DecodedCell, MigrateTarget,
    };
    pub use durable_schema_runtime::{Baseline, Migration, Schema, Statement};
}
