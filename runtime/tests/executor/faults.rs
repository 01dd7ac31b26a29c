//! Fault injection: make the k-th statement the executor runs fail, for every
//! k, from every starting version. The database must always end at a whole
//! version (schema and data equal to a clean run of exactly that many
//! migrations, tracking table consistent), and a rerun without the fault must
//! complete.

use crate::common::*;
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::{MigrateError, Schema};
use rusqlite::Connection;

/// A clean database after `n` migrations, as reference.
fn reference(dir: &TempDir, schema: &Schema, n: usize) -> Connection {
    let conn = open(&dir.db(&format!("reference-{n}.db")));
    prefix(schema, n).migrate(&conn).unwrap();
    conn
}

#[test]
fn every_failing_statement_leaves_a_whole_version() {
    let dir = TempDir::new("faults");
    let schema = schema(CHAT);
    let total = schema.migrations().len();
    let references: Vec<_> = (0..=total).map(|n| reference(&dir, &schema, n)).collect();
    let mut cases = 0;

    for start in 0..total {
        // Steps per transaction when migrating from `start`: the first one
        // also creates the tracking table on a fresh database; each holds
        // the tracking row (written first) and the migration's statements.
        let mut ends = Vec::new();
        let mut steps = 0;
        for (i, m) in schema.migrations()[start..].iter().enumerate() {
            steps += usize::from(start == 0 && i == 0) + m.statements().len() + 1;
            ends.push(steps);
        }

        for k in 1..=steps {
            let path = dir.db(&format!("from-{start}-fail-{k}.db"));
            let conn = open(&path);
            prefix(&schema, start).migrate(&conn).unwrap();
            let faulty = FailAt::new(&conn, k);

            let err = schema.migrate(&faulty).unwrap_err();

            // Transactions that ended before step k committed; the one
            // holding step k rolled back whole.
            let done = start + ends.iter().filter(|&&end| end < k).count();
            let case = format!("from version {start}, failing step {k}: {err}");
            match &err {
                MigrateError::Statement {
                    message, version, ..
                } => {
                    assert_eq!(message, INJECTED, "{case}");
                    assert_eq!(*version as usize, done + 1, "{case}");
                }
                MigrateError::Backend { message, .. } => assert_eq!(message, INJECTED, "{case}"),
                other => panic!("{case}: unexpected {other:?}"),
            }
            let reference = &references[done];
            assert_eq!(dump(&conn), dump(reference), "{case}: schema");
            assert_eq!(
                content(&conn, "migrations"),
                content(reference, "migrations"),
                "{case}: data"
            );
            if done > 0 {
                assert_eq!(
                    tracking(&conn, "migrations"),
                    expected_tracking(&schema, done),
                    "{case}: tracking table"
                );
            }
            assert!(conn.is_autocommit(), "{case}: transaction left open");
            assert_eq!(
                schema.status(&conn).unwrap().db_version() as usize,
                done,
                "{case}"
            );

            let report = schema.migrate(&conn).unwrap();
            assert_eq!(report.from_version() as usize, done, "{case}: rerun");
            assert_eq!(report.to_version() as usize, total, "{case}: rerun");
            let full = &references[total];
            assert_eq!(dump(&conn), dump(full), "{case}: schema after rerun");
            assert_eq!(
                content(&conn, "migrations"),
                content(full, "migrations"),
                "{case}: data after rerun"
            );
            assert_eq!(
                tracking(&conn, "migrations"),
                expected_tracking(&schema, total),
                "{case}: tracking after rerun"
            );
            drop(conn);
            let _ = std::fs::remove_file(&path);
            cases += 1;
        }
    }
    // 4 migrations of 2, 3, 2 and 3 statements, plus one tracking row each,
    // plus CREATE TABLE from a fresh database: 15 + 11 + 7 + 4.
    assert_eq!(cases, 37);
}

#[test]
fn failing_adoption_step_leaves_the_hand_rolled_table_as_it_was() {
    let dir = TempDir::new("adopt-faults");
    let schema = schema(CHAT);
    // Adopting 2 recorded versions: 2 ALTERs + 2 UPDATEs, then 0003's two
    // statements and its row, in one transaction.
    for k in 1..=7 {
        let conn = open(&dir.db(&format!("adopt-{k}.db")));
        for m in &schema.migrations()[..2] {
            conn.execute_batch(m.sql()).unwrap();
        }
        conn.execute_batch(
            "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, \
             description TEXT NOT NULL);
             INSERT INTO migrations VALUES (1, 't1', 'create_users');
             INSERT INTO migrations VALUES (2, 't2', 'create_rooms');",
        )
        .unwrap();
        let before = dump(&conn);

        let err = schema.migrate(&FailAt::new(&conn, k)).unwrap_err();

        assert!(err.to_string().contains(INJECTED), "step {k}: {err}");
        if k <= 4 {
            assert!(
                matches!(&err, MigrateError::Backend { context, .. } if context.contains("adopting")),
                "step {k}: {err:?}"
            );
        }
        assert_eq!(dump(&conn), before, "step {k}: adoption half-done");
        let report = schema.migrate(&conn).unwrap();
        assert!(report.adopted(), "step {k}");
        assert_eq!(report.to_version(), 4, "step {k}");
    }
}

/// A backend whose head query answers as a migrator that read the tracking
/// table just before another one applied the next version.
struct StaleHead<'a> {
    conn: &'a Connection,
    version: i64,
    chain: &'static str,
}

impl Backend for StaleHead<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        if sql.starts_with("SELECT version, chain, breaks_below FROM") {
            return Ok(Rows::new(
                vec![vec![
                    Value::Integer(self.version),
                    Value::Text(self.chain.to_owned()),
                ]],
                1,
            ));
        }
        Backend::query(self.conn, sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        Backend::transaction(self.conn, steps)
    }
}

#[test]
fn a_concurrently_applied_version_is_reported_as_such_and_nothing_changes() {
    let dir = TempDir::new("race");
    let schema = schema(CHAT);
    let conn = open(&dir.db("race.db"));
    // The other migrator got there first and applied everything.
    schema.migrate(&conn).unwrap();
    let before = dump(&conn);
    let stale = StaleHead {
        conn: &conn,
        version: 1,
        chain: schema.migrations()[0].chain(),
    };
    let err = schema.migrate(&stale).unwrap_err();
    // The tracking row runs first, so the primary key conflict is what
    // fails, not a statement of the migration ("table already exists"), and
    // it names the version this run tried to apply.
    assert_eq!(
        err,
        MigrateError::Concurrent {
            version: 2,
            file: "0002_create_rooms.sql",
            table: "migrations"
        }
    );
    assert!(err.to_string().contains("another migrator"), "{err}");
    assert_eq!(dump(&conn), before);
    assert_eq!(
        tracking(&conn, "migrations"),
        expected_tracking(&schema, schema.migrations().len())
    );
}
