//! Test your upgrade paths with `cargo test`, under a Durable Object's rules
//! and transaction model (feature `testing`, native only).
//!
//! A migration the compile-time check accepts can still fail on the rows a
//! live object holds (a `UNIQUE` index over duplicates, a rebuild that
//! loses a referenced row). [`DurableObjectDb`] is an in-memory SQLite that
//! behaves like a SQLite-backed Durable Object's, so a test can put the
//! rows of an older version in it and run the upgrade the way workerd
//! would:
//!
//! - **workerd's rules and limits**, the very definition the compile-time
//!   check uses: its authorizer (no `BEGIN`/`SAVEPOINT`, only its PRAGMA
//!   allowlist, no `ATTACH`, no `TEMP` objects, only fts5/rtree virtual
//!   tables, no `_cf_` names, only its SQL functions), its limits (100 KB
//!   statements, 100 columns, 5 compound terms, 100 bound parameters, …),
//!   defensive mode, foreign keys on, the math functions. They apply to
//!   the test's own SQL too: a fixture a Durable Object would refuse fails
//!   here.
//! - **workerd's transaction model**: the statements of an *event* (a
//!   request, the constructor's `blockConcurrencyWhile`) run in an implicit
//!   transaction that workerd commits when the event ends;
//!   `transactionSync` (each migration, see [`Backend::transaction`](crate::backend::Backend::transaction)) is a
//!   savepoint inside it, rolled back to when it fails and released when it
//!   succeeds. So deferred foreign keys are checked only at the event's
//!   commit, `PRAGMA defer_foreign_keys = ON` lasts until then, and
//!   `PRAGMA foreign_keys = OFF` does nothing. [`DurableObjectDb::end_event`]
//!   is that commit: when it fails (a deferred foreign key still violated),
//!   the whole event is rolled back, as workerd resets the object.
//!
//! `SCHEMA.migrate(&db)` and `SCHEMA.wake(&db)` run the executor exactly as
//! the constructor hook runs it on a Durable Object, and return the same
//! [`Report`](crate::Report), [`Wake`](crate::Wake) and
//! [`MigrateError`](crate::MigrateError).
//!
//! ```
//! use durable_schema::testing;
//!
//! #[durable_schema::durable_schema(dir = "migrations")]
//! pub struct Chat;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An object that has lived at version 2 and holds a user and a session.
//! let db = testing::at_version(&Chat::SCHEMA, 2);
//! db.exec(
//!     "INSERT INTO users (id, email) VALUES (1, 'ada@example.com');
//!      INSERT INTO sessions (token, user_id, expires_at) VALUES ('t1', 1, 0);",
//! )?;
//! db.end_event()?;
//!
//! // The new deploy's constructor upgrades it; workerd commits the event.
//! let report = Chat::SCHEMA.migrate(&db)?;
//! assert_eq!((report.from_version(), report.to_version()), (2, 3));
//! db.end_event()?;
//!
//! let users: i64 = db.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
//! assert_eq!(users, 1);
//! // What a Durable Object refuses is refused here, fixtures included.
//! assert!(db.exec("PRAGMA journal_mode = WAL").is_err());
//! # Ok(())
//! # }
//! ```
//!
//! Add it to your tests only:
//!
//! ```toml
//! [dev-dependencies]
//! durable-schema = { version = "0.1", features = ["testing"] }
//! ```
//!
//! The database runs the SQLite the compile-time check uses (rusqlite's
//! bundled build, the minor version workerd ships); [`rusqlite`] is
//! re-exported for the row closures of [`DurableObjectDb::query_row`] and
//! [`DurableObjectDb::query_rows`].

use durable_schema_runtime::Schema;

// Defined, with workerd's rules, limits and transaction model, in
// durable-schema's model of workerd's SQLite (`workerd/`), the one the
// compile-time check replays under.
pub use durable_schema_workerd::DurableObjectDb;

/// The rusqlite the database runs on: [`Row`](rusqlite::Row) in the
/// closures of [`DurableObjectDb::query_row`], its error type, its
/// `params!` macro.
pub use rusqlite;

/// A database at version `version` of `schema`: a fresh [`DurableObjectDb`]
/// on which migrations `1..=version` were applied by the executor (as an
/// object deployed with that older code), the event ended. Put the rows a
/// live object of that version would hold in it, then run
/// `SCHEMA.migrate(&db)` or `SCHEMA.wake(&db)` to test the upgrade.
///
/// `version` 0 is an empty database.
///
/// ```
/// #[durable_schema::durable_schema(dir = "migrations")]
/// pub struct Chat;
///
/// let db = durable_schema::testing::at_version(&Chat::SCHEMA, 1);
/// let status = Chat::SCHEMA.status(&db)?;
/// assert_eq!((status.db_version(), status.pending().len()), (1, 2));
/// # Ok::<(), durable_schema::MigrateError>(())
/// ```
///
/// # Panics
///
/// If `version` is above [`Schema::version`], or applying the migrations
/// to an empty database fails (the compile-time check replays them on one,
/// so that means a schema built by hand).
#[track_caller]
pub fn at_version(schema: &Schema, version: u32) -> DurableObjectDb {
    let migrations = schema.migrations();
    let Some(older) = usize::try_from(version)
        .ok()
        .and_then(|n| migrations.get(..n))
    else {
        panic!(
            "at_version({version}): the schema's highest version is {}",
            schema.version()
        );
    };
    let older = Schema::__new(schema.table(), schema.strict(), older)
        .__with_retry_after(schema.retry_after());
    let db = DurableObjectDb::new();
    if let Err(e) = older.migrate(&db) {
        panic!("at_version({version}): migrating an empty database failed: {e}");
    }
    if let Err(e) = db.end_event() {
        panic!("at_version({version}): {e}");
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MigrateError;
    use durable_schema_runtime::Migration;

    const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)";
    const UNIQUE: &str = "CREATE UNIQUE INDEX users_email ON users (email)";

    fn schema() -> Schema {
        const M: &[Migration] = &[
            Migration::__new(1, "0001_users.sql", "users", USERS, "c1", "h1", "0,55,1,1"),
            Migration::__new(
                2,
                "0002_unique.sql",
                "unique",
                UNIQUE,
                "c2",
                "h2",
                "0,48,1,1",
            ),
        ];
        Schema::__new("migrations", false, M)
    }

    #[test]
    fn at_version_applies_a_prefix_and_ends_the_event() {
        let db = at_version(&schema(), 1);
        assert!(!db.in_event());
        db.exec("INSERT INTO users (email) VALUES ('a'), ('a')")
            .unwrap();
        db.end_event().unwrap();
        let err = schema().migrate(&db).unwrap_err();
        assert!(
            matches!(
                &err,
                MigrateError::Statement {
                    file: "0002_unique.sql",
                    ..
                }
            ),
            "{err}"
        );
        db.end_event().unwrap();
        assert_eq!(schema().status(&db).unwrap().db_version(), 1);
        assert!(!at_version(&schema(), 0).in_event());
    }

    #[test]
    #[should_panic(expected = "highest version is 2")]
    fn at_version_above_the_schema_panics() {
        at_version(&schema(), 3);
    }
}
