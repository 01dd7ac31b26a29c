//! # durable-schema
//!
//! Schema migrations for Cloudflare Durable Objects (SQLite-backed), correct
//! by construction: checked against real SQLite and workerd's rules **at
//! compile time**, applied in order, one transaction per migration, **on
//! every construction**, under `blockConcurrencyWhile`.
//!
//! ```ignore
//! use worker::*;
//!
//! #[durable_object]
//! #[durable_schema::durable_schema(dir = "migrations")] // relative to Cargo.toml
//! pub struct Chat {
//!     state: State,
//! }
//!
//! impl DurableObject for Chat {
//!     fn new(state: State, _env: Env) -> Self {
//!         Self::migrate(&state); // blockConcurrencyWhile + apply pending migrations
//!         Self { state }
//!     }
//!     // fetch: `durable_schema::worker::sql(&self.state, &Self::SCHEMA)` is the
//!     // database once the schema is current, else the migration's error
//! }
//! ```
//!
//! [`durable_schema`] reads `migrations/NNNN_description.sql`, replays the
//! chain in an SQLite configured like a Durable Object's (every problem is a
//! compile error at `migrations/0003_x.sql:LINE:COL`), and generates on the
//! struct `CURRENT_SCHEMA_VERSION`, `SCHEMA` (a [`Schema`]) and
//! `migrate(target)`. The Durable Object backend ([`worker`]) is always
//! there on wasm32, and on the host through the default feature `worker`;
//! native-only users (feature `rusqlite`) drop it with
//! `default-features = false`. Natively the same schema migrates any
//! [`backend::Backend`]:
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
//! Editing a migration rebuilds the crate; to rebuild when a file is
//! *added*, call [`build::watch`] from `build.rs` (with `durable-schema` in
//! `[build-dependencies]`):
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     durable_schema::build::watch("migrations");
//! }
//! ```
//!
//! The repository's README has the attribute's arguments and the API at a
//! glance; its `docs/` pages have the rest: the quickstart
//! (`docs/quickstart.md`), the CLI and the history lock
//! (`docs/workflow.md`), drizzle (`docs/drizzle.md`), what is checked
//! (`docs/checks.md`), checked queries ([`query!`], `docs/queries.md`),
//! run time, the baseline and failures (`docs/runtime.md`,
//! `docs/baseline.md`, `docs/failures.md`), testing (`docs/testing.md`) and
//! performance (`docs/performance.md`).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The build-script example is a whole build.rs, where `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

/// Checks a directory of SQL migrations at compile time and generates
/// `CURRENT_SCHEMA_VERSION`, `SCHEMA` and `migrate` on the struct.
///
/// Arguments: `dir` (required, relative to `Cargo.toml`), `table =
/// "migrations"` (the tracking table), `strict = true` (a database ahead of
/// the code is an error instead of being tolerated during a rollback),
/// `retry_after = 60` (seconds before the hook runs a migration again that
/// failed with the same code), `budget_ms = 10000` (milliseconds of batch
/// repetitions one wake runs; from 1 to 29999, under workerd's 30-second
/// gate), `baseline = false` (new objects run
/// every migration instead of the [`Baseline`]). What is checked: the
/// repository's `docs/checks.md`.
pub use durable_schema_macros::durable_schema;

pub use durable_schema_runtime::build;

/// A SQL statement checked at compile time against the schema of a type
/// carrying `#[durable_schema]`, at its head version: `query!(Chat, "SQL",
/// args…)`. Its rows are a generated record whose fields are the result
/// columns, typed from the declared column types, `Option` where a value
/// may be null. The rules, their limits and sqlx side by side: the
/// repository's `docs/queries.md`.
///
/// ```
/// use durable_schema::{durable_schema, query};
///
/// #[durable_schema(dir = "migrations")]
/// pub struct Chat;
///
/// let db = rusqlite::Connection::open_in_memory().unwrap();
/// Chat::migrate(&db).unwrap();
/// let added = query!(Chat, "INSERT INTO users (email) VALUES (?)", "ada@example.com")
///     .execute(&db)
///     .unwrap();
/// assert_eq!(added, 1);
///
/// let user = query!(Chat, "SELECT id, email, last_seen_at FROM users WHERE email = ?", "ada@example.com")
///     .fetch_one(&db)
///     .unwrap();
/// let (id, email, seen): (i64, String, Option<String>) = (user.id, user.email, user.last_seen_at);
/// assert_eq!((id, email.as_str(), seen), (1, "ada@example.com", None));
///
/// // A LEFT JOIN's right side may be missing; `count(*)` needs an alias.
/// let rows = query!(
///     Chat,
///     "SELECT u.email, count(m.id) AS sent FROM users u LEFT JOIN messages m ON m.user_id = u.id GROUP BY u.id",
/// )
/// .fetch_all(&db)
/// .unwrap();
/// assert_eq!((rows[0].email.as_str(), rows[0].sent), ("ada@example.com", 0));
/// ```
///
/// A statement that does not prepare there does not compile:
///
/// ```compile_fail
/// #[durable_schema::durable_schema(dir = "migrations")]
/// pub struct Chat;
///
/// // error: no such column: nickname (at `nickname`, 1:8 of the query)
/// let _ = durable_schema::query!(Chat, "SELECT nickname FROM users");
/// ```
pub use durable_schema_macros::query;

/// [`query!`] into your own struct: `query_as!(Row, Chat, "SQL", args…)`.
/// Each field is checked against its column at compile time: a field that
/// cannot hold the column's inferred type (a nullable column into a
/// non-`Option` field), a column without a field or a field without a
/// column does not compile.
///
/// ```
/// use durable_schema::{durable_schema, query, query_as};
///
/// #[durable_schema(dir = "migrations")]
/// pub struct Chat;
///
/// #[derive(Debug, PartialEq)]
/// struct Message {
///     id: i64,
///     body: String,
///     author: Option<String>,
/// }
///
/// let db = rusqlite::Connection::open_in_memory().unwrap();
/// Chat::migrate(&db).unwrap();
/// query!(Chat, "INSERT INTO users (id, email, name) VALUES (?, ?, ?)", 1, "ada@example.com", "Ada")
///     .execute(&db)
///     .unwrap();
/// query!(Chat, "INSERT INTO messages (user_id, body) VALUES (?, ?)", 1, "hello")
///     .execute(&db)
///     .unwrap();
/// let messages = query_as!(
///     Message,
///     Chat,
///     "SELECT m.id, m.body, u.name AS author FROM messages m LEFT JOIN users u ON u.id = m.user_id WHERE m.user_id = ?",
///     1,
/// )
/// .fetch_all(&db)
/// .unwrap();
/// assert_eq!(messages, [Message { id: 1, body: "hello".into(), author: Some("Ada".into()) }]);
/// ```
pub use durable_schema_macros::query_as;

pub use durable_schema_runtime::{
    AppliedMigration, Baseline, Class, FailureRecord, MigrateError, Migration, Mismatch, Report,
    Schema, SchemaState, Statement, Status, Wake,
};

/// The seam between the executor and a database, for writing a backend or
/// a test wrapper (fault injection, counters). Migrating needs none of it.
pub use durable_schema_runtime::backend;

/// Checked queries at run time: [`Query`](query::Query) (what `query!`
/// and `query_as!` generate, run with `fetch_all`, `fetch_one`,
/// `fetch_optional` or `execute`), the argument and column types
/// ([`Encode`](query::Encode), [`Decode`](query::Decode),
/// [`Value`](query::Value)), [`QueryError`](query::QueryError) and the seam
/// to a database, [`Executor`](query::Executor): a Durable Object's
/// `worker::SqlStorage`, a `rusqlite::Connection` (feature `rusqlite`) or
/// `testing::DurableObjectDb`.
pub use durable_schema_runtime::query;

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
    pub use durable_schema_macros::checked_query;
    pub use durable_schema_runtime::__ChainLink as ChainLink;
    pub use durable_schema_runtime::__private::{
        check_tag, decoded, total_len, DecodedCell, MigrateTarget,
    };
    pub use durable_schema_runtime::{Baseline, Migration, Schema, Statement};

    /// What `query!`/`query_as!` expand to.
    pub use durable_schema_runtime::__private::query;
}
