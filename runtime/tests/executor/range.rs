//! Range batches at run time (issue 21's speed goal): a statement marked
//! `-- durable-schema: batch over <table> limit <n>` runs on slices of at
//! most `n` rows in rowid order, read before each repetition's
//! transaction; the statement is bound to the slice's first and last rowid
//! (`:from`, `:to`) and the cursor commits with it, so the batch ends by the
//! cursor (not by a slice that changed nothing), a kill never re-does a
//! committed slice, and progress written by the release before range
//! batches (no `cursor` column) still resumes.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::common::*;
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::{MigrateError, Schema};
use rusqlite::Connection;

/// 2,500 items, each with `v`.
const CREATE: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\n\
     WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500)\n\
     INSERT INTO items (id, v) SELECT x, x FROM c;\n";

/// A backfill as a range batch of `limit` rows a slice, with `filter`
/// added to the statement's `WHERE`. `w` accumulates, so a slice run twice
/// leaves `w = 4 * v`.
fn backfill(limit: u32, filter: &str) -> String {
    format!(
        "ALTER TABLE items ADD COLUMN w INTEGER;\n\
         -- durable-schema: batch over items limit {limit}\n\
         UPDATE items SET w = coalesce(w, 0) + v * 2 WHERE id BETWEEN :from AND :to{filter};\n\
         CREATE INDEX items_w ON items (w);\n"
    )
}

fn range_schema(limit: u32, filter: &str) -> Schema {
    schema(&[
        ("0001_items.sql", CREATE),
        ("0002_backfill.sql", &backfill(limit, filter)),
    ])
}

/// Items whose `w` is not what one run of the backfill gives (`v * 2` where
/// `filter_keeps`, NULL elsewhere).
fn wrong(conn: &Connection, filter_keeps: &str) -> i64 {
    conn.query_row(
        &format!(
            "SELECT count(*) FROM items WHERE w IS NOT (CASE WHEN {filter_keeps} THEN v * 2 END)"
        ),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// `(statement, repetitions, changed, cursor)` of the progress row.
fn progress(conn: &Connection) -> Option<(i64, i64, i64, Option<i64>)> {
    conn.query_row(
        "SELECT statement, repetitions, changed, cursor FROM migrations_failure \
         WHERE progress_chain IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

/// A transaction's statements with their parameters.
type Recorded = Vec<(String, Vec<Value>)>;

/// Records the slice queries and each transaction's statements with their
/// parameters; panics (a kill) at the transaction numbered `kill_at`.
struct Recorder<'c> {
    conn: &'c Connection,
    slices: RefCell<Vec<Vec<Value>>>,
    transactions: RefCell<Vec<Recorded>>,
    kill_at: Cell<Option<usize>>,
}

impl<'c> Recorder<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            slices: RefCell::default(),
            transactions: RefCell::default(),
            kill_at: Cell::new(None),
        }
    }

    /// The bounds each run of the batch statement was bound to.
    fn bounds(&self) -> Vec<(i64, i64)> {
        self.transactions
            .borrow()
            .iter()
            .flatten()
            .filter(|(sql, _)| sql.starts_with("UPDATE items"))
            .map(|(_, p)| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
            .collect()
    }
}

impl Backend for Recorder<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        if sql.starts_with("SELECT (SELECT rowid FROM") {
            self.slices.borrow_mut().push(params.to_vec());
        }
        Backend::query(self.conn, sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        let n = self.transactions.borrow().len() + 1;
        if self.kill_at.get() == Some(n) {
            panic!("killed before transaction {n}");
        }
        let recorded = steps
            .iter()
            .map(|s| (s.sql().to_owned(), s.params().to_vec()))
            .collect();
        self.transactions.borrow_mut().push(recorded);
        Backend::transaction(self.conn, steps)
    }
}

/// 2,500 rows, 1,000 a slice: three slices bound to their rowid bounds,
/// the short third one ends the batch in its own transaction; each slice
/// query reads only its own rows. A multiple of the limit takes one more,
/// empty, slice that runs nothing.
#[test]
fn slices_bind_their_bounds_and_a_short_slice_ends_the_batch() {
    let schema = range_schema(1000, "");
    let conn = at_v1(&schema);
    let rec = Recorder::new(&conn);
    schema.migrate(&rec).unwrap();
    assert_eq!(wrong(&conn, "1"), 0);
    assert_eq!(version(&conn), 2);
    assert_eq!(progress(&conn), None, "progress ends with the migration");
    assert_eq!(rec.bounds(), [(1, 1000), (1001, 2000), (2001, 2500)]);
    // No lower bound on the first slice, then the committed cursor.
    assert_eq!(
        *rec.slices.borrow(),
        [
            vec![],
            vec![Value::from(1000i64)],
            vec![Value::from(2000i64)]
        ]
    );
    // The statements before the batch commit first, then one transaction
    // a slice, then the rest with the tracking row.
    let statements: Vec<Vec<String>> = rec
        .transactions
        .borrow()
        .iter()
        .map(|tx| {
            tx.iter()
                .filter(|(sql, _)| !sql.contains("migrations"))
                .map(|(sql, _)| sql.split(' ').take(2).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        })
        .filter(|tx| !tx.is_empty())
        .collect();
    assert_eq!(
        statements,
        [
            ["ALTER TABLE"],
            ["UPDATE items"],
            ["UPDATE items"],
            ["UPDATE items"],
            ["CREATE INDEX"],
        ]
    );

    // 2,500 rows by 500: five full slices and an empty one.
    let schema = range_schema(500, "");
    let conn = at_v1(&schema);
    let rec = Recorder::new(&conn);
    schema.migrate(&rec).unwrap();
    assert_eq!(wrong(&conn, "1"), 0);
    assert_eq!(rec.bounds().len(), 5);
    assert_eq!(rec.slices.borrow().len(), 6);
    assert_eq!(
        rec.slices.borrow().last(),
        Some(&vec![Value::from(2500i64)])
    );
}

/// The statement's own filter may skip a whole slice: the batch goes on,
/// since the cursor, not a slice that changed nothing, ends it (a plain
/// batch would stop there).
#[test]
fn a_slice_that_changes_nothing_does_not_end_the_batch() {
    let schema = range_schema(1000, " AND id > 1000").__with_budget_ms(0);
    let conn = at_v1(&schema);
    // One slice per wake: the first changes no row and the batch goes on.
    let wake = schema.wake(&conn);
    assert!(
        matches!(
            wake.error(),
            Some(MigrateError::InProgress {
                repetitions: 1,
                rows: 0,
                ..
            })
        ),
        "{:?}",
        wake.error()
    );
    assert_eq!(progress(&conn), Some((1, 1, 0, Some(1000))));
    let mut wakes = 1;
    while schema.wake(&conn).error().is_some() {
        wakes += 1;
        assert!(wakes < 10, "no end in sight");
    }
    assert_eq!(version(&conn), 2);
    assert_eq!(wrong(&conn, "id > 1000"), 0);
}

/// A kill at any transaction of the run loses no committed slice and
/// never runs one twice: `w` accumulates, so a slice run again would show.
/// Before the next run, the cursor is exactly the rows done.
#[test]
fn a_kill_never_reruns_a_committed_slice() {
    let schema = range_schema(1000, "");
    let mut mid_batch = 0;
    // Transaction 1 is the started record; 2 the statements before the
    // batch; 3 to 5 the slices; 6 the rest.
    for kill_at in 2..=6 {
        let conn = at_v1(&schema);
        let rec = Recorder::new(&conn);
        rec.kill_at.set(Some(kill_at));
        let outcome = catch_unwind(AssertUnwindSafe(|| schema.wake(&rec)));
        assert!(
            outcome.is_err(),
            "the run ended before transaction {kill_at}"
        );
        if let Some((statement, repetitions, changed, cursor)) = progress(&conn) {
            let done: i64 = conn
                .query_row("SELECT count(*) FROM items WHERE w IS NOT NULL", [], |r| {
                    r.get(0)
                })
                .unwrap();
            if statement > 1 {
                // Past the batch (statement 1): every row, and the cursor
                // cleared with the move.
                assert_eq!((cursor, done), (None, 2500), "kill at {kill_at}");
            } else {
                assert_eq!(cursor.unwrap_or(0), done, "kill at {kill_at}");
            }
            assert_eq!(changed, done);
            mid_batch += usize::from(repetitions > 0);
            let wake = schema.wake(&conn);
            assert!(
                wake.error().is_none(),
                "kill at {kill_at}: {:?}",
                wake.error()
            );
        } else {
            // Killed before any phase committed: interrupted at once, like
            // any migration; `migrate` runs it.
            let wake = schema.wake(&conn);
            assert!(
                matches!(wake.error(), Some(MigrateError::Interrupted { .. })),
                "kill at {kill_at}: {:?}",
                wake.error()
            );
            schema.migrate(&conn).unwrap();
        }
        assert_eq!(version(&conn), 2);
        assert_eq!(wrong(&conn, "1"), 0, "kill at {kill_at}");
    }
    assert_eq!(mid_batch, 3, "kills after a slice committed");
}

/// Progress written by the release before range batches (a failure table
/// without `cursor`), half-way through a plain batch: the run reads it,
/// adds the column and completes, here with a range batch after the plain
/// one in the same migration (its start writes the cursor).
#[test]
fn progress_without_the_cursor_column_resumes() {
    let plain_then_range = "ALTER TABLE items ADD COLUMN w INTEGER;\n\
         -- durable-schema: batch\n\
         UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n\
         ALTER TABLE items ADD COLUMN x INTEGER;\n\
         -- durable-schema: batch over items limit 700\n\
         UPDATE items SET x = v WHERE id BETWEEN :from AND :to;\n";
    let plain = "ALTER TABLE items ADD COLUMN w INTEGER;\n\
         -- durable-schema: batch\n\
         UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n\
         ALTER TABLE items ADD COLUMN x INTEGER;\n\
         UPDATE items SET x = v;\n";
    for text in [plain_then_range, plain] {
        let files = [("0001_items.sql", CREATE), ("0002_backfill.sql", text)];
        let stopping = schema(&files).__with_budget_ms(0);
        let conn = at_v1(&stopping);
        let wake = stopping.wake(&conn);
        assert!(
            matches!(
                wake.error(),
                Some(MigrateError::InProgress { repetitions: 1, .. })
            ),
            "{:?}",
            wake.error()
        );
        // As the previous release left it.
        conn.execute_batch("ALTER TABLE migrations_failure DROP COLUMN cursor")
            .unwrap();
        let status = stopping.status(&conn).unwrap();
        assert!(status.in_progress().is_some(), "{status}");
        let wake = schema(&files).wake(&conn);
        assert!(wake.error().is_none(), "{:?}", wake.error());
        assert_eq!(version(&conn), 2);
        let wrong: i64 = conn
            .query_row(
                "SELECT count(*) FROM items WHERE w IS NOT v * 2 OR x IS NOT v",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(wrong, 0);
        let cursor: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('migrations_failure') WHERE name = 'cursor'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cursor, 1, "the run added the column");
    }
}

/// The slice query reads its slice and nothing before it: past a cursor
/// near the end, the 500 rows of the last slice take fewer of SQLite's
/// virtual-machine steps than the 1,000 of the first, where a query that
/// walked from the start (a plain batch's `IN (SELECT … LIMIT n)` past the
/// rows done) would take more; it only skips over the slice's rows, at
/// most three steps a row. And its plan is a search on the rowid.
#[test]
fn the_slice_query_reads_only_its_slice() {
    use durable_schema_runtime::tracking;
    use rusqlite::StatementStatus;
    let conn = at_v1(&range_schema(1000, ""));
    let steps = |cursor: Option<i64>| {
        let sql = tracking::slice("items", 1000, cursor.is_some());
        let mut stmt = conn.prepare(&sql).unwrap();
        let rows: (Option<i64>, Option<i64>, i64) = stmt
            .query_row(rusqlite::params_from_iter(cursor), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        (rows, stmt.get_status(StatementStatus::VmStep))
    };
    let (first, first_steps) = steps(None);
    let (last, last_steps) = steps(Some(2000));
    let (none, none_steps) = steps(Some(2500));
    // Full, then the short last slice up to the greatest rowid, then no
    // first rowid (its last is still the greatest: fewer rows are left).
    assert_eq!(first, (Some(1), Some(1000), 1));
    assert_eq!(last, (Some(2001), Some(2500), 0));
    assert_eq!(none, (None, Some(2500), 0));
    assert!(
        last_steps < first_steps,
        "{last_steps} steps for the last 500 rows, {first_steps} for the first 1000"
    );
    // About two steps a row it skips over: the `min`/`max`/`count(*)` of a
    // `LIMIT` subquery it replaced took 13 a row (13,016 here), which
    // cost about 30% of the backfill itself. Past the last row, a search.
    assert!(first_steps <= 3 * 1000, "{first_steps} steps for 1000 rows");
    assert!(none_steps < 100, "{none_steps} steps past the last row");
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            tracking::slice("items", 1000, true)
        ))
        .unwrap()
        .query_map([2000], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|d| d.contains("SEARCH items USING INTEGER PRIMARY KEY (rowid>?)")),
        "{plan:?}"
    );
}

/// Two batches in a row: the second starts from its own first row (the
/// first one's cursor is cleared when it ends) and shows its own counts
/// (they restart when the first ends), for a range batch and a plain one
/// after a range batch.
#[test]
fn adjacent_batches_start_afresh() {
    let second = "ALTER TABLE items ADD COLUMN w INTEGER;\n\
         ALTER TABLE items ADD COLUMN z INTEGER;\n\
         ALTER TABLE items ADD COLUMN y INTEGER;\n\
         -- durable-schema: batch over items limit 1000\n\
         UPDATE items SET w = v * 2 WHERE id BETWEEN :from AND :to;\n\
         -- durable-schema: batch over items limit 1000\n\
         UPDATE items SET z = v WHERE id BETWEEN :from AND :to;\n\
         -- durable-schema: batch\n\
         UPDATE items SET y = 1 WHERE id IN (SELECT id FROM items WHERE y IS NULL LIMIT 1000);\n";
    let schema =
        schema(&[("0001_items.sql", CREATE), ("0002_two.sql", second)]).__with_budget_ms(0);
    let conn = at_v1(&schema);
    let mut seen = Vec::new();
    loop {
        let wake = schema.wake(&conn);
        match wake.error() {
            Some(MigrateError::InProgress {
                statement,
                repetitions,
                rows,
                ..
            }) => seen.push((*statement, *repetitions, *rows)),
            None => break,
            other => panic!("{other:?}"),
        }
        assert!(seen.len() < 20, "{seen:?}");
    }
    assert_eq!(version(&conn), 2);
    let missed: i64 = conn
        .query_row(
            "SELECT count(*) FROM items WHERE w IS NOT v * 2 OR z IS NOT v OR y IS NOT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missed, 0, "every batch visits every row");
    // Each wake stops after one repetition. The first batch's third slice
    // is short and ends it: the stop there names the second batch, with
    // nothing done yet; likewise the second's end names the plain batch.
    assert_eq!(
        seen,
        [
            (4, 1, 1000),
            (4, 2, 2000),
            (5, 0, 0),
            (5, 1, 1000),
            (5, 2, 2000),
            (6, 0, 0),
            (6, 1, 1000),
            (6, 2, 2000),
            (6, 3, 2500),
            (6, 4, 2500),
        ]
    );
}

/// Another migrator (a second process on the same file) that applies the
/// whole migration between this run's reading of its progress and its next
/// slice: that slice's transaction fails as `concurrent`, before its rows
/// are run a second time (the other migrator cleared the progress with the
/// migration, so comparing the progress alone found nothing to differ).
#[test]
fn a_migration_another_migrator_completed_meanwhile_is_concurrent() {
    let schema = range_schema(1000, "");
    // Applies the whole chain before the first slice's transaction.
    struct Meddling<'c> {
        conn: &'c Connection,
        schema: &'c Schema,
        meddle: Cell<bool>,
    }
    impl Backend for Meddling<'_> {
        fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
            Backend::query(self.conn, sql, params)
        }
        fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
            if steps.iter().any(|s| s.sql().starts_with("UPDATE items")) && self.meddle.get() {
                self.meddle.set(false);
                self.schema.migrate(self.conn).unwrap();
            }
            Backend::transaction(self.conn, steps)
        }
    }
    // The batch first in its migration: its first slice's transaction is
    // the migration's first, where the run expects no progress.
    let first = crate::common::schema(&[
        ("0001_items.sql", CREATE),
        ("0002_w.sql", "ALTER TABLE items ADD COLUMN w INTEGER;\n"),
        (
            "0003_backfill.sql",
            "-- durable-schema: batch over items limit 1000\n\
             UPDATE items SET w = coalesce(w, 0) + v * 2 WHERE id BETWEEN :from AND :to;\n",
        ),
    ]);
    for (schema, from_start) in [(&schema, true), (&schema, false), (&first, true)] {
        let conn = at_v1(schema);
        let head = if std::ptr::eq(schema, &first) {
            // At version 2: the column is there, the batch pending.
            prefix(schema, 2).migrate(&conn).unwrap();
            3
        } else {
            2
        };
        if !from_start {
            // Half-way: the first slice committed by an earlier run.
            let wake = schema.__with_budget_ms(0).wake(&conn);
            assert!(
                matches!(wake.error(), Some(MigrateError::InProgress { .. })),
                "{:?}",
                wake.error()
            );
        }
        let meddling = Meddling {
            conn: &conn,
            schema,
            meddle: Cell::new(true),
        };
        let err = schema.migrate(&meddling).unwrap_err();
        assert!(
            matches!(err, MigrateError::Concurrent { version, .. } if i64::from(version) == head),
            "{err:?}"
        );
        assert_eq!(version(&conn), head);
        assert_eq!(wrong(&conn, "1"), 0, "a slice ran twice");
    }
}

/// A Durable Object hands integers to Rust as JavaScript numbers: beyond
/// ±(2^53 − 1) a rowid arrives inexact (the worker backend reads it as
/// text). A slice whose bounds are such a rowid cannot be bound exactly,
/// so the batch fails there, naming the statement, instead of reading it
/// as an empty slice (the batch ended, the rows from there on never
/// visited, the migration recorded as applied).
#[test]
fn a_slice_beyond_the_exact_integers_of_javascript_fails() {
    /// Integers as workerd and workers-rs deliver them.
    struct JsNumbers<'c>(&'c Connection);
    impl Backend for JsNumbers<'_> {
        fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
            let rows = Backend::query(self.0, sql, params)?;
            let read = rows.rows_read();
            let exact = |v: &Value| match v {
                Value::Integer(i) if i.unsigned_abs() > (1u64 << 53) - 1 => {
                    Value::Text(format!("{:e}", *i as f64))
                }
                other => other.clone(),
            };
            let rows = rows
                .rows()
                .iter()
                .map(|r| r.iter().map(exact).collect())
                .collect();
            Ok(Rows::new(rows, read))
        }
        fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
            Backend::transaction(self.0, steps)
        }
    }
    let schema = range_schema(1000, "");
    let conn = at_v1(&schema);
    // Snowflake-like ids past the first 2,500.
    conn.execute_batch(
        "INSERT INTO items (id, v) SELECT (1 << 60) + id, id FROM items WHERE id <= 10",
    )
    .unwrap();
    let err = schema.migrate(&JsNumbers(&conn)).unwrap_err();
    assert!(
        matches!(&err, MigrateError::Statement { version: 2, statement: 2, message, .. }
            if message.contains("2^53")),
        "{err:?}"
    );
    assert_eq!(version(&conn), 1, "not recorded as applied");
    // The slices before the inexact one stay done; none was skipped.
    let done: i64 = conn
        .query_row("SELECT count(*) FROM items WHERE w IS NOT NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(done, 2000);
}
