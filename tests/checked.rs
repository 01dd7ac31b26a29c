//! The exact judgement of old code over a newer schema: code at version 1
//! with checked queries, over a database a version 2 migrated by dropping
//! a column one of those queries reads. Through `Schema::checked`, the
//! query that does not use the column runs; the one that does is refused
//! with kind `incompatible`, naming the migration and the finding, and
//! never reaches the database. On a current database `checked` costs what
//! the up-to-date check costs: one statement, one row.
//!
//! On both native backends: SQLite through rusqlite, and the Durable
//! Object model of `durable_schema::testing`.

use std::cell::Cell;

use durable_schema::query::{Arg, Executor, QueryError, QueryErrorKind, Row};
use durable_schema::testing::DurableObjectDb;
use durable_schema::{durable_schema, query, MigrateError};
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use rusqlite::Connection;

/// The code at version 1: `messages (id, author, body, reactions)`.
#[durable_schema(dir = "tests/fixtures/query/exact-v1")]
struct V1;

/// The same code, refusing any newer database.
#[durable_schema(dir = "tests/fixtures/query/exact-v1", strict = true)]
struct V1Strict;

/// Version 2: `0002_drop_reactions.sql` drops `messages.reactions`.
#[durable_schema(dir = "tests/fixtures/query/exact-v2")]
struct V2;

/// A backend and executor that counts every statement that reaches the
/// database, and the rows the schema check read.
struct Counting<D> {
    db: D,
    statements: Cell<usize>,
    rows_read: Cell<u64>,
}

impl<D> Counting<D> {
    fn new(db: D) -> Self {
        Self {
            db,
            statements: Cell::new(0),
            rows_read: Cell::new(0),
        }
    }

    fn reset(&self) {
        self.statements.set(0);
        self.rows_read.set(0);
    }

    fn bump(&self) {
        self.statements.set(self.statements.get() + 1);
    }
}

impl<D: Backend> Backend for Counting<D> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        self.bump();
        let rows = self.db.query(sql, params)?;
        self.rows_read.set(self.rows_read.get() + rows.rows_read());
        Ok(rows)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        self.bump();
        self.db.transaction(steps)
    }
}

impl<D: Executor> Executor for Counting<D> {
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        self.bump();
        self.db.fetch(sql, args, each)
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError> {
        self.bump();
        self.db.execute(sql, args)
    }
}

/// Runs `check` on a fresh rusqlite database and on a fresh Durable Object.
fn on_both(check: impl Fn(&dyn Db)) {
    check(&Counting::new(Connection::open_in_memory().unwrap()));
    let db = Counting::new(DurableObjectDb::new());
    check(&db);
    db.db.end_event().unwrap();
}

/// Both traits, behind one reference.
trait Db: Backend + Executor {
    fn counted(&self) -> (usize, u64);
    fn reset(&self);
}

impl<D: Backend + Executor> Db for Counting<D> {
    fn counted(&self) -> (usize, u64) {
        (self.statements.get(), self.rows_read.get())
    }

    fn reset(&self) {
        Counting::reset(self);
    }
}

/// Two messages written by the version 1 code, then version 2 applied.
fn migrated_to_v2(db: &dyn Db) {
    V1::SCHEMA.migrate(db).unwrap();
    for (author, body) in [("ann", "first"), ("ben", "second")] {
        query!(
            V1,
            "INSERT INTO messages (author, body) VALUES (?, ?)",
            author,
            body
        )
        .execute(db)
        .unwrap();
    }
    let report = V2::SCHEMA.migrate(db).unwrap();
    assert_eq!(report.to_version(), 2);
}

#[test]
fn over_a_dropped_column_only_the_query_reading_it_is_refused() {
    on_both(|db| {
        {
            migrated_to_v2(db);
            // The conservative guard refuses the version 1 code as a whole.
            assert!(matches!(
                V1::SCHEMA.migrate(db),
                Err(MigrateError::Incompatible { version: 2, .. })
            ));

            let checked = V1::SCHEMA.checked(db).unwrap();
            let breaking = checked.breaking();
            assert_eq!(breaking.len(), 1);
            assert_eq!(
                (breaking[0].version(), breaking[0].migration()),
                (2, "drop_reactions")
            );
            assert!(breaking[0]
                .findings()
                .contains("BC103 column `messages.reactions` dropped"));

            // A query that does not use `reactions` runs.
            let rows = query!(V1, "SELECT id, author, body FROM messages ORDER BY id")
                .fetch_all(&checked)
                .unwrap();
            let authors: Vec<&str> = rows.iter().map(|r| r.author.as_str()).collect();
            assert_eq!(authors, ["ann", "ben"]);
            // So does a write that leaves it out.
            let added = query!(
                V1,
                "INSERT INTO messages (author, body) VALUES (?, ?)",
                "cid",
                "third"
            )
            .execute(&checked)
            .unwrap();
            assert_eq!(added, 1);

            // The ones that read or write it are refused before the database.
            db.reset();
            let read = query!(V1, "SELECT id, reactions FROM messages ORDER BY id")
                .fetch_all(&checked)
                .unwrap_err();
            let star = query!(V1, "SELECT * FROM messages")
                .fetch_optional(&checked)
                .unwrap_err();
            let react = query!(
                V1,
                "UPDATE messages SET reactions = reactions + 1 WHERE id = ?",
                1
            )
            .execute(&checked)
            .unwrap_err();
            assert_eq!(db.counted().0, 0, "a refused query reached the database");
            for e in [&read, &star, &react] {
                assert_eq!(e.kind(), QueryErrorKind::Incompatible, "{e}");
                assert_eq!(e.kind().as_str(), "incompatible");
                let text = e.to_string();
                assert!(text.contains("version 2 (drop_reactions)"), "{text}");
                assert!(
                    text.contains("BC103 column `messages.reactions` dropped"),
                    "{text}"
                );
            }
            // A raw statement has no recorded uses: refused too.
            let raw = checked
                .fetch("SELECT id FROM messages", &[], &mut |_| Ok(()))
                .unwrap_err();
            assert_eq!(raw.kind(), QueryErrorKind::Incompatible);
            assert_eq!(db.counted().0, 0);
        }
    });
}

#[test]
fn on_a_current_database_checked_reads_what_the_up_to_date_check_reads() {
    on_both(|db| {
        V2::SCHEMA.migrate(db).unwrap();
        db.reset();
        V2::SCHEMA.wake(db).into_result().unwrap();
        let wake = db.counted();
        assert_eq!(wake, (1, 1));
        db.reset();
        let checked = V2::SCHEMA.checked(db).unwrap();
        assert_eq!(db.counted(), wake);
        assert!(checked.breaking().is_empty());
        assert_eq!(
            query!(V2, r#"SELECT count(*) AS "n!: i64" FROM messages"#)
                .fetch_one(&checked)
                .unwrap()
                .n,
            0
        );
    });
}

#[test]
fn checked_refuses_what_wake_refuses_except_a_breaking_newer_migration() {
    on_both(|db| {
        {
            migrated_to_v2(db);
            db.reset();
            // Ahead and breaking: the head row, then one statement for the
            // breaking rows (and the code's own row's chain).
            let checked = V1::SCHEMA.checked(db).unwrap();
            assert_eq!(checked.breaking().len(), 1);
            assert_eq!(db.counted().0, 3);
            // `strict` refuses any newer database, breaking or not.
            assert!(matches!(
                V1Strict::SCHEMA.checked(db),
                Err(MigrateError::Ahead { db: 2, code: 1 })
            ));
        }
    });
}

/// A newer row left unclassified (written by a durable-schema before
/// classes, and upgraded in place by code that did not know its version)
/// cannot be judged: once a classified newer row makes the database
/// incompatible, every query is judged against it conservatively, instead
/// of being let through to a column it may have dropped.
#[test]
fn an_unclassified_newer_row_is_judged_conservatively() {
    on_both(|db| {
        migrated_to_v2(db);
        let table = V1::SCHEMA.table();
        db.execute(
            &format!(
                "UPDATE \"{table}\" SET class = NULL, findings = NULL, breaks_below = NULL \
                 WHERE version = 2"
            ),
            &[],
        )
        .unwrap();
        db.execute(
            &format!(
                "INSERT INTO \"{table}\" (version, applied_at, description, checksum, chain, \
                 class, findings, breaks_below) VALUES (3, '', 'drop_other', 'x', 'y', \
                 'breaking', 'BC101 table `other` dropped', 3)"
            ),
            &[],
        )
        .unwrap();
        let checked = V1::SCHEMA.checked(db).unwrap();
        db.reset();
        let read = query!(V1, "SELECT id, reactions FROM messages ORDER BY id")
            .fetch_all(&checked)
            .unwrap_err();
        assert_eq!(read.kind(), QueryErrorKind::Incompatible, "{read}");
        assert!(read.to_string().contains("version 2"), "{read}");
        assert_eq!(db.counted().0, 0, "a refused query reached the database");
    });
}
