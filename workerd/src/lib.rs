//! **Internal crate of durable-schema. Not a public API: it is exempt from
//! semver and may change in any release. Depend on `durable-schema`.**
//!
//! The model of a Durable Object's SQLite, as workerd runs it, defined once
//! for everything in durable-schema that must behave like it:
//!
//! - **the authorizer's rules** ([`rules`]: [`rules::decide`] and its
//!   tables, [`Rule`], [`Denial`]): no `BEGIN`/`SAVEPOINT`, only workerd's
//!   PRAGMA allowlist, no `ATTACH`, no `TEMP` objects, only the
//!   fts5/rtree modules, no `_cf_` names, only workerd's SQL functions;
//!   and [`rename_denial`], the rule a stock SQLite's authorizer cannot
//!   see (the new name of `ALTER TABLE … RENAME TO`), read from the
//!   statement's [`words`];
//! - **the connection setup** ([`configure`], [`Authorizer`]): workerd's
//!   limits ([`MAX_STATEMENT_BYTES`], [`MAX_COLUMNS`], [`MAX_VDBE_OPS`], …),
//!   defensive mode, foreign keys on, the math functions, the authorizer
//!   installed on the connection and deciding during prepare and step;
//!   and a clock that stands still ([`ClockedConnection`]), so the replay
//!   can tell which values came from the clock;
//! - **the transaction model** ([`DurableObjectDb`]): an implicit
//!   transaction per event, `transactionSync` as a savepoint inside it,
//!   deferred foreign keys checked at the event's commit.
//!
//! **Source of truth.** The facts are mirrored from workerd
//! (`cloudflare/workerd`, release 2026-08-22): the authorizer
//! `SqliteDatabase::isAuthorized`, its allowlists `ALLOWED_SQLITE_FUNCTIONS`
//! and `ALLOWED_PRAGMAS`, `isAllowedName` and the limits of
//! `setupSecurity` in `src/workerd/util/sqlite.c++`; its build defines in
//! `build/BUILD.sqlite3` (`SQLITE_DEFAULT_FOREIGN_KEYS=1`,
//! `SQLITE_ENABLE_MATH_FUNCTIONS`); its SQLite patch showing the authorizer
//! the `RENAME TO` target
//! (`patches/sqlite/0004-authorizer-rename-to-destination-name.patch`); the
//! transaction model of a SQLite-backed object's storage (`ActorSqlite`'s
//! implicit transaction, `src/workerd/io/actor-sqlite.c++`). When workerd
//! changes, this crate changes with it, and nothing else does.
//!
//! **Who uses it.**
//! - the compile-time check (`durable-schema-compiler`): its replay runs
//!   every migration on a connection [`configure_with`] set up, with the
//!   tracking table protected too, and reads the replay's own findings
//!   (foreign keys, dropped tables) off the actions the rules allow;
//! - the facade's `durable_schema::testing`: [`DurableObjectDb`],
//!   re-exported, so a user's upgrade test runs under the rules its
//!   migrations were checked against;
//! - the compile-time checked queries (`durable_schema_compiler::query`),
//!   which prepare statements against the head schema under the same
//!   authorizer and limits ([`configure`] with no tracking table).
//!
//! **Why a crate of its own.** The model used to live in the compiler
//! (`do_sqlite`, `rules`) and the facade (`testing`): `testing` then
//! pulled the whole compiler (sqlparser, the replay, the verdict cache) as
//! a normal dependency of a user's tests, and the compiler's connection
//! setup and its replay imported each other for the rename check. Here the
//! model depends only on rusqlite and on the runtime's tracking-table
//! names and backend seam; the compiler and the facade depend on it, and
//! nothing depends back.
//!
//! ```
//! use durable_schema_workerd::{DurableObjectDb, Rule};
//!
//! let db = DurableObjectDb::new();
//! db.exec("CREATE TABLE t (x)")?;
//! let err = db.exec("ALTER TABLE t RENAME TO _cf_t").unwrap_err();
//! assert!(err.message().contains("reserved name"), "{err}");
//! let denial = durable_schema_workerd::rename_denial("ALTER TABLE t RENAME TO _cf_t", None);
//! assert_eq!(denial.map(|d| d.rule), Some(Rule::ReservedName));
//! # Ok::<(), durable_schema_runtime::backend::BackendError>(())
//! ```
#![warn(missing_docs, unreachable_pub)]

// SQLite's VFS, through FFI: the one `unsafe` of this crate, each block
// with its `SAFETY` comment.
#[allow(unsafe_code)]
mod clock;
mod connection;
mod object;
pub mod rules;
pub mod words;

pub use clock::{unix_ms_now, ClockedConnection};
pub use connection::{
    configure, configure_with, Authorizer, MAX_COLUMNS, MAX_STATEMENT_BYTES, MAX_VDBE_OPS,
    TRANSACTION_REFUSED,
};
pub use object::DurableObjectDb;
pub use rules::{rename_denial, Denial, Rule};
