//! New objects created from the compile-time baseline: one transaction,
//! the same database and the same tracking rows as the chain, later
//! upgrades unchanged; anything but an empty database runs the chain, and
//! a baseline that fails falls back to it.

use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::{Baseline, Schema};
use rusqlite::Connection;

use crate::common::{
    content, dump, expected_tracking, open, prefix, schema, tracking, with_baseline, Counting,
    TempDir, CHAT,
};

fn fresh(dir: &TempDir, name: &str) -> Connection {
    open(&dir.db(name))
}

#[test]
fn a_new_object_is_created_from_the_baseline_in_one_transaction() {
    let dir = TempDir::new("baseline-new");
    let plain = schema(CHAT);
    let fast = with_baseline(plain, CHAT);

    let by_chain = fresh(&dir, "chain.db");
    let chain_report = plain.migrate(&by_chain).unwrap();
    assert!(!chain_report.baseline());

    let by_baseline = fresh(&dir, "baseline.db");
    let counting = Counting::new(&by_baseline);
    let report = fast.migrate(&counting).unwrap();
    assert!(report.baseline());
    assert_eq!(report.baseline_error(), None);
    assert_eq!((report.from_version(), report.to_version()), (0, 4));
    assert_eq!(report.applied().len(), 4);
    assert_eq!(counting.transactions.get(), 1, "one transaction");
    // The head query, the tracking table's shape, the emptiness check.
    assert_eq!(counting.queries.get(), 3);
    assert!(report.rows_written() > 0);

    assert_eq!(dump(&by_baseline), dump(&by_chain));
    assert_eq!(
        content(&by_baseline, "migrations"),
        content(&by_chain, "migrations")
    );
    assert_eq!(
        tracking(&by_baseline, "migrations"),
        expected_tracking(&plain, 4)
    );
    // Current now: the next run reads one row and writes nothing.
    assert!(fast.migrate(&by_baseline).unwrap().is_noop());
}

#[test]
fn later_upgrades_apply_on_top_of_a_baseline() {
    let dir = TempDir::new("baseline-upgrade");
    let full = schema(CHAT);
    let old = with_baseline(prefix(&full, 2), &CHAT[..2]);
    let conn = fresh(&dir, "room.db");
    assert!(old.migrate(&conn).unwrap().baseline());
    conn.execute("INSERT INTO rooms (title) VALUES ('lobby')", [])
        .unwrap();

    let report = with_baseline(full, CHAT).migrate(&conn).unwrap();
    assert!(!report.baseline(), "not an empty database any more");
    let applied: Vec<u32> = report.applied().iter().map(|m| m.version()).collect();
    assert_eq!(applied, [3, 4]);
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&full, 4));
    let email: String = conn
        .query_row("SELECT email FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(email, "root@example.com");
}

#[test]
fn a_database_holding_anything_runs_the_chain() {
    let dir = TempDir::new("baseline-nonempty");
    let fast = with_baseline(schema(CHAT), CHAT);
    for (i, object) in ["CREATE TABLE legacy (x)", "CREATE VIEW answer AS SELECT 42"]
        .iter()
        .enumerate()
    {
        let conn = fresh(&dir, &format!("db{i}.db"));
        conn.execute_batch(object).unwrap();
        let report = fast.migrate(&conn).unwrap();
        assert!(!report.baseline(), "{object}");
        assert_eq!(report.applied().len(), 4);
    }
}

#[test]
fn an_empty_tracking_table_over_an_empty_database_gets_the_baseline() {
    let dir = TempDir::new("baseline-empty-table");
    let fast = with_baseline(schema(CHAT), CHAT);
    let conn = fresh(&dir, "room.db");
    conn.execute_batch(&durable_schema_runtime::tracking::create_table(
        "migrations",
    ))
    .unwrap();
    let report = fast.migrate(&conn).unwrap();
    assert!(report.baseline());
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&fast, 4));
}

/// A backend whose transactions fail when they hold a step with `marker`.
struct Refusing<'a> {
    inner: &'a Connection,
    marker: &'static str,
}

impl Backend for Refusing<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        self.inner.query(sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        match steps.iter().position(|s| s.sql().contains(self.marker)) {
            Some(i) => Err(TxError::at_step(
                i,
                BackendError::new("database or disk is full"),
            )),
            None => self.inner.transaction(steps),
        }
    }
}

#[test]
fn a_baseline_that_fails_leaves_nothing_and_the_chain_runs() {
    let dir = TempDir::new("baseline-fails");
    let plain = schema(CHAT);
    // A baseline the database refuses (say workerd's SQLite differs).
    const SQL: &str =
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);\n";
    const BASELINE: Baseline = Baseline::__new(SQL, "0,43,1,1 45,75,2,1");
    let broken: Schema = plain.__with_baseline(&BASELINE);
    let conn = fresh(&dir, "room.db");
    let wake = broken.wake(&conn);
    let report = wake.report();
    assert_eq!(wake.error(), None);
    assert!(!report.baseline());
    assert_eq!(
        report.baseline_error(),
        Some("statement 2 of the baseline: no such table: nowhere")
    );
    assert_eq!(report.applied().len(), 4);
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&plain, 4));
    let line = wake.log_line("room", 0.0).unwrap();
    assert!(line.contains("\"path\":\"chain\""), "{line}");
    assert!(
        line.contains("\"baseline_error\":\"statement 2 of the baseline: no such table: nowhere\""),
        "{line}"
    );

    // The same through a backend error on the tracking rows.
    let fast = with_baseline(plain, CHAT);
    let other = fresh(&dir, "other.db");
    let refusing = Refusing {
        inner: &other,
        marker: "INSERT INTO \"migrations\"",
    };
    let report = fast.migrate(&refusing);
    // Every transaction records a version, so the chain fails too: the
    // error is the chain's, and the database holds nothing.
    assert!(report.is_err());
    assert!(dump(&other).is_empty(), "{:?}", dump(&other));
}

#[test]
fn the_log_line_says_the_baseline_ran() {
    let dir = TempDir::new("baseline-log");
    let fast = with_baseline(schema(CHAT), CHAT);
    let conn = fresh(&dir, "room.db");
    let wake = fast.wake(&conn);
    let line = wake.log_line("room", 0.0).unwrap();
    assert!(line.contains("\"outcome\":\"applied\""), "{line}");
    assert!(line.contains("\"applied\":[1,2,3,4]"), "{line}");
    assert!(line.contains("\"path\":\"baseline\""), "{line}");
    assert!(!line.contains("baseline_error"), "{line}");
}

#[test]
fn a_migration_sees_its_own_tracking_row_as_the_last_write() {
    // The executor writes a migration's tracking row before its statements
    // (`runtime/src/migrate.rs`): until the migration's own first write,
    // `last_insert_rowid()` is its version and `changes()` is 1, whatever
    // the migrations before it wrote. The compiler gives such a chain no
    // baseline (the replay writes no tracking row).
    let files: &[(&str, &str)] = &[
        (
            "0001_t.sql",
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);\n\
             INSERT INTO t (a, b) VALUES (10, 10), (11, 11), (12, 12);\n",
        ),
        (
            "0002_seed.sql",
            "INSERT INTO t (a, b) VALUES (last_insert_rowid(), changes());\n\
             INSERT INTO t (a, b) VALUES (last_insert_rowid(), changes());\n",
        ),
    ];
    let dir = TempDir::new("baseline-connection-state");
    let conn = fresh(&dir, "t.db");
    assert_eq!(schema(files).migrate(&conn).unwrap().to_version(), 2);
    let rows: Vec<(i64, i64)> = conn
        .prepare("SELECT a, b FROM t WHERE id > 3 ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(2, 1), (4, 1)]);
}

/// `Report`'s line names the baseline, and the fallback when it failed.
#[test]
fn the_report_says_how_the_object_was_created() {
    let dir = TempDir::new("baseline-report");
    let plain = schema(CHAT);
    let fast = with_baseline(plain, CHAT);
    let report = fast.migrate(&fresh(&dir, "room.db")).unwrap();
    assert_eq!(
        report.to_string(),
        "created from the verified baseline at version 4 (one transaction)"
    );

    const SQL: &str =
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);\n";
    const BASELINE: Baseline = Baseline::__new(SQL, "0,43,1,1 45,75,2,1");
    let broken: Schema = plain.__with_baseline(&BASELINE);
    let names: Vec<&str> = plain.migrations().iter().map(|m| m.name()).collect();
    let report = broken.migrate(&fresh(&dir, "fallback.db")).unwrap();
    assert_eq!(
        report.to_string(),
        format!(
            "migrated from version 0 to 4 ({}); the verified baseline failed first \
             (statement 2 of the baseline: no such table: nowhere), so the migrations ran one by one",
            names.join(", ")
        )
    );

    // The baseline fails, then the chain fails too (on its second migration).
    let other = fresh(&dir, "both.db");
    let refusing = Refusing {
        inner: &other,
        marker: plain.migrations()[1].statements().get(0).unwrap().sql(),
    };
    let wake = broken.wake(&refusing);
    assert!(wake.error().is_some());
    let text = wake.report().to_string();
    assert!(
        text.starts_with(&format!(
            "migrated from version 0 to 1 ({}), then {} failed at statement 1",
            names[0], names[1]
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "; the verified baseline failed first (statement 2 of the baseline: no such table: \
             nowhere), so the migrations ran one by one"
        ),
        "{text}"
    );
}
