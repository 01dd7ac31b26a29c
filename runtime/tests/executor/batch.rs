//! Batched statements at run time (issue 21): a migration with a
//! `-- durable-schema: batch` statement runs in phases, each repetition of
//! the batch in its own transaction; `wake` stops between repetitions once
//! its budget is spent and the next run resumes; a kill loses only the
//! repetition it interrupted, and the same repetition killed twice in a row
//! is `interrupted`.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::common::*;
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::{MigrateError, Schema};
use rusqlite::Connection;

/// 2,500 items, each with `v`; `log` records every update of `w` by a
/// trigger, and an index on `w`: a storage engine's rows-written figure
/// counts both, `changes()` neither.
const CREATE: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\n\
     WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500)\n\
     INSERT INTO items (id, v) SELECT x, x FROM c;\n\
     CREATE TABLE log (item INTEGER);\n";

/// The backfill: a column, its batch (1,000 rows a repetition), an index
/// and a trigger after it.
const BACKFILL: &str = "ALTER TABLE items ADD COLUMN w INTEGER;\n\
     CREATE TRIGGER items_w AFTER UPDATE OF w ON items BEGIN INSERT INTO log VALUES (new.id); END;\n\
     -- durable-schema: batch\n\
     UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n\
     CREATE INDEX items_w ON items (w);\n";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![("0001_items.sql", CREATE), ("0002_backfill.sql", BACKFILL)]
}

fn backfill_schema() -> Schema {
    schema(&files())
}

/// Whether the backfill is complete and right.
fn backfilled(conn: &Connection) -> bool {
    let wrong: i64 = conn
        .query_row("SELECT count(*) FROM items WHERE w IS NOT v * 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    wrong == 0
}

/// `(statement, repetitions, changed, unfinished)` of the progress row.
type Progress = (i64, i64, i64, i64);

/// The progress row, if any.
fn progress(conn: &Connection) -> Option<Progress> {
    conn.query_row(
        "SELECT statement, repetitions, changed, unfinished FROM migrations_failure \
         WHERE progress_chain IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

/// Records each transaction's statements and the progress after it; panics
/// (a kill: nothing after it runs, the transaction never begins) at the
/// transaction numbered `kill_at` (1-based), if set.
struct Recorder<'c> {
    conn: &'c Connection,
    /// Each transaction's statements and the progress after it.
    transactions: RefCell<Vec<(Vec<String>, Option<Progress>)>>,
    kill_at: Cell<Option<usize>>,
}

impl<'c> Recorder<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            transactions: RefCell::default(),
            kill_at: Cell::new(None),
        }
    }

    /// How many transactions ran the batch statement.
    fn repetitions(&self) -> usize {
        self.transactions
            .borrow()
            .iter()
            .filter(|(steps, _)| steps.iter().any(|s| s.starts_with("UPDATE items")))
            .count()
    }
}

impl Backend for Recorder<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        Backend::query(self.conn, sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        let n = self.transactions.borrow().len() + 1;
        if self.kill_at.get() == Some(n) {
            panic!("killed before transaction {n}");
        }
        let sql = steps.iter().map(|s| s.sql().to_owned()).collect();
        let result = Backend::transaction(self.conn, steps);
        self.transactions
            .borrow_mut()
            .push((sql, progress(self.conn)));
        result
    }
}

/// A run killed at its `n`-th transaction: nothing after it runs.
fn killed(schema: &Schema, conn: &Connection, n: usize) {
    let rec = Recorder::new(conn);
    rec.kill_at.set(Some(n));
    let outcome = catch_unwind(AssertUnwindSafe(|| schema.wake(&rec)));
    assert!(outcome.is_err(), "the run ended before transaction {n}");
}

/// 2,500 rows at 1,000 a repetition: the statements before the batch in one
/// transaction, three repetitions that change rows and one that changes
/// none, each its own, then the rest with the tracking row. Progress counts
/// the statement's own rows (`changes()`), not the trigger's or the index's.
#[test]
fn phases_and_counts() {
    let schema = backfill_schema();
    let conn = at_v1(&schema);
    let rec = Recorder::new(&conn);
    let report = schema.migrate(&rec).unwrap();
    assert_eq!(report.to_version(), 2);
    let txs = rec.transactions.borrow();
    assert_eq!(txs.len(), 6, "{:#?}", *txs);
    assert!(txs[0].0.iter().any(|s| s.starts_with("ALTER TABLE items")));
    assert!(txs[0].0.iter().any(|s| s.starts_with("CREATE TRIGGER")));
    assert!(!txs[0].0.iter().any(|s| s.starts_with("UPDATE items")));
    assert_eq!(txs[0].1, Some((2, 0, 0, 1)));
    let counts: Vec<_> = txs[1..5].iter().map(|t| t.1).collect();
    assert_eq!(
        counts,
        [
            Some((2, 1, 1000, 1)),
            Some((2, 2, 2000, 1)),
            Some((2, 3, 2500, 1)),
            // The repetition that changed nothing ends the batch.
            Some((3, 4, 2500, 1)),
        ]
    );
    assert_eq!(rec.repetitions(), 4);
    assert!(txs[5]
        .0
        .iter()
        .any(|s| s.starts_with("CREATE INDEX items_w")));
    assert_eq!(txs[5].1, None, "the last transaction clears the progress");
    drop(txs);
    assert!(backfilled(&conn));
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 2500, "the trigger ran once per row");
    // Under `migrate` the progress row was progress alone: gone.
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM migrations_failure", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    assert!(schema.migrate(&conn).unwrap().is_noop());
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 2));
}

/// A budget of 0 ms stops after one repetition, each time: the repetitions
/// stay committed, the migration stays pending, `in_progress` names the
/// batch; the next wake continues. The fourth repetition changes no row and
/// ends the batch, and the wake stops there too (what follows a batch gets
/// a run of its own): the fifth wake completes.
#[test]
fn a_spent_budget_stops_between_repetitions_and_the_next_wake_continues() {
    for budget in [0, 1] {
        let schema = backfill_schema().__with_budget_ms(budget);
        let conn = at_v1(&schema);
        let mut seen = Vec::new();
        let last = loop {
            let wake = schema.wake(&conn);
            match wake.error() {
                Some(MigrateError::InProgress {
                    version: 2,
                    file: "0002_backfill.sql",
                    statement: 3,
                    line: 4,
                    column: 1,
                    repetitions,
                    rows,
                }) => {
                    assert_eq!(version(&conn), 1, "the migration stays pending");
                    seen.push((*repetitions, *rows));
                    // A clean stop: the next run counts no kill.
                    assert_eq!(progress(&conn).map(|p| p.3), Some(0));
                    let status = schema.status(&conn).unwrap();
                    assert_eq!(status.in_progress(), wake.error());
                    assert_eq!(status.failure(), None, "{status}");
                    assert!(status.to_string().contains(&format!(
                        "  running  0002  0002_backfill.sql  statement 3 \
                         (0002_backfill.sql:4:1): {repetitions} repetition(s), {rows} row(s) so far"
                    )));
                    assert!(seen.len() < 10, "no end in sight: {seen:?}");
                }
                None => break wake,
                other => panic!("{other:?}"),
            }
        };
        // Budget 1 ms on a fast machine may run more than one repetition a
        // wake; 0 ms runs exactly one.
        if budget == 0 {
            assert_eq!(seen, [(1, 1000), (2, 2000), (3, 2500), (4, 2500)]);
        }
        assert!(!seen.is_empty());
        assert_eq!(last.report().to_version(), 2);
        assert_eq!(
            last.report()
                .applied()
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>(),
            ["0002_backfill.sql"]
        );
        assert!(backfilled(&conn));
        assert_eq!(progress(&conn), None);
        assert_eq!(schema.status(&conn).unwrap().in_progress(), None);
    }
}

/// `migrate` has no budget, and resumes what a `wake` left: the column is
/// not added twice.
#[test]
fn migrate_runs_to_the_end_from_where_a_wake_stopped() {
    let schema = backfill_schema().__with_budget_ms(0);
    let conn = at_v1(&schema);
    assert!(matches!(
        schema.wake(&conn).error(),
        Some(MigrateError::InProgress { repetitions: 1, .. })
    ));
    let rec = Recorder::new(&conn);
    let report = schema.migrate(&rec).unwrap();
    assert_eq!(report.applied().len(), 1);
    assert_eq!(rec.repetitions(), 3, "2 that change rows, 1 that does not");
    assert!(!rec
        .transactions
        .borrow()
        .iter()
        .any(|(steps, _)| steps.iter().any(|s| s.starts_with("ALTER TABLE"))));
    assert!(backfilled(&conn));
    // The started record the wake wrote is cleared with the migration.
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM migrations_failure", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

/// A kill during a repetition loses only that repetition: the next wake
/// retries it once and completes. Killed twice in a row, the same
/// repetition is `interrupted`, nothing runs, and the retry after
/// `retry_after` resumes from the committed repetitions.
#[test]
fn a_kill_loses_one_repetition_and_two_in_a_row_are_interrupted() {
    let schema = backfill_schema().__with_retry_after(0);
    // Transactions of a wake from version 1: 1 started record, 2 the
    // statements before the batch, 3.. repetitions.
    let conn = at_v1(&schema);
    killed(&schema, &conn, 5);
    assert_eq!(progress(&conn), Some((2, 2, 2000, 1)));
    let rec = Recorder::new(&conn);
    let wake = schema.wake(&rec);
    assert!(wake.error().is_none(), "{:?}", wake.error());
    assert_eq!(rec.repetitions(), 2, "the killed repetition and the last");
    assert!(backfilled(&conn));

    let schema = backfill_schema().__with_retry_after(3600);
    let conn = at_v1(&schema);
    killed(&schema, &conn, 4);
    assert_eq!(progress(&conn), Some((2, 1, 1000, 1)));
    // The retry: its first transaction counts the run on the phase, its
    // second is the repetition, killed again.
    killed(&schema, &conn, 2);
    assert_eq!(progress(&conn), Some((2, 1, 1000, 2)));
    // Status says what the next wake will: the run that never finished,
    // not only a batch going on.
    let status = schema.status(&conn).unwrap();
    assert!(
        status.failure().is_some_and(|f| f.version() == 2),
        "{status}"
    );
    assert!(status.in_progress().is_some(), "{status}");
    let rec = Recorder::new(&conn);
    let wake = schema.wake(&rec);
    assert!(
        matches!(
            wake.error(),
            Some(MigrateError::Interrupted {
                version: 2,
                file: "0002_backfill.sql",
                ..
            })
        ),
        "{:?}",
        wake.error()
    );
    assert_eq!(rec.repetitions(), 0, "nothing executed");
    assert!(matches!(
        schema.wake(&conn).error(),
        Some(MigrateError::Deferred { version: 2, .. })
    ));
    // After `retry_after` (here: a deploy with another retry_after is the
    // same code; let the record age instead).
    conn.execute_batch(
        "UPDATE migrations_failure SET attempted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')",
    )
    .unwrap();
    let rec = Recorder::new(&conn);
    let wake = schema.wake(&rec);
    assert!(wake.error().is_none(), "{:?}", wake.error());
    assert_eq!(rec.repetitions(), 3, "resumed after the committed one");
    assert!(backfilled(&conn));
    assert_eq!(version(&conn), 2);
}

/// A kill before the first phase committed is interrupted at once, like
/// any migration's (nothing of it is committed).
#[test]
fn a_kill_before_any_phase_is_interrupted_at_once() {
    let schema = backfill_schema();
    let conn = at_v1(&schema);
    killed(&schema, &conn, 2);
    assert_eq!(progress(&conn), None);
    assert!(matches!(
        schema.wake(&conn).error(),
        Some(MigrateError::Interrupted { version: 2, .. })
    ));
}

/// Progress belongs to the migration's text: newer code that appends a
/// migration resumes it; code whose migration at that version is another
/// text stops with `edited` and executes nothing.
#[test]
fn progress_of_other_code() {
    let schema = backfill_schema().__with_budget_ms(0);
    let conn = at_v1(&schema);
    assert!(schema.wake(&conn).error().is_some());
    let mut newer = files();
    newer.push(("0003_after.sql", "CREATE TABLE after_backfill (x);\n"));
    let newer = schema_from(&newer);
    let rec = Recorder::new(&conn);
    let wake = newer.wake(&rec);
    assert!(wake.error().is_none(), "{:?}", wake.error());
    assert_eq!(wake.report().to_version(), 3);
    assert_eq!(rec.repetitions(), 3);
    assert!(backfilled(&conn));

    let conn = at_v1(&schema);
    assert!(schema.wake(&conn).error().is_some());
    // The same version, another text: with a batch of its own or without,
    // both runs read the progress and stop before executing anything.
    let edited = schema_from(&[
        ("0001_items.sql", CREATE),
        (
            "0002_backfill.sql",
            "ALTER TABLE items ADD COLUMN w INTEGER;\n\
             -- durable-schema: batch\n\
             UPDATE items SET w = v * 3 WHERE rowid IN (SELECT rowid FROM items WHERE w IS NULL LIMIT 10);\n",
        ),
    ]);
    let unbatched = schema_from(&[
        ("0001_items.sql", CREATE),
        (
            "0002_backfill.sql",
            "ALTER TABLE items ADD COLUMN w INTEGER;\n\
             UPDATE items SET w = v * 3;\n",
        ),
    ]);
    // The edited text again, declared in the lock as replacing the text
    // whose phases are committed (`lock --replace`, the usual repair of a
    // migration that failed half-way): still another text, never resumed.
    let old = schema.migrations()[1];
    let replacing = {
        let ms = edited.migrations();
        let link =
            durable_schema_runtime::__ChainLink::__new(ms[0].chain(), old.checksum(), old.chain());
        let replaced: Vec<durable_schema_runtime::Migration> = vec![
            ms[0],
            ms[1].__with_replacements(
                Box::leak(vec![old.checksum()].into_boxed_slice()),
                Box::leak(vec![link].into_boxed_slice()),
            ),
        ];
        Schema::__new("migrations", false, Box::leak(replaced.into_boxed_slice()))
    };
    let before = dump(&conn);
    let rec = Recorder::new(&conn);
    for err in [
        edited.wake(&rec).error().cloned(),
        edited.migrate(&rec).err(),
        unbatched.wake(&rec).error().cloned(),
        unbatched.migrate(&rec).err(),
        replacing.wake(&rec).error().cloned(),
        replacing.migrate(&rec).err(),
    ] {
        assert!(
            matches!(
                err,
                Some(MigrateError::Edited {
                    version: 2,
                    file: "0002_backfill.sql",
                    ..
                })
            ),
            "{err:?}"
        );
    }
    assert!(rec.transactions.borrow().is_empty());
    assert_eq!(dump(&conn), before);
}

/// A failure table written before the progress columns existed (with a
/// record of another code in it) gets them on the first run that applies
/// a batch, and the run completes.
#[test]
fn an_older_failure_table_is_upgraded_in_place() {
    let schema = backfill_schema();
    for wake in [false, true] {
        let conn = at_v1(&schema);
        conn.execute_batch(
            "CREATE TABLE migrations_failure (id INTEGER PRIMARY KEY CHECK (id = 1), \
             chain TEXT NOT NULL, version INTEGER NOT NULL, error TEXT NOT NULL, \
             attempts INTEGER NOT NULL, attempted_at TEXT NOT NULL DEFAULT \
             (strftime('%Y-%m-%dT%H:%M:%fZ','now')));\n\
             INSERT INTO migrations_failure (id, chain, version, error, attempts) \
             VALUES (1, 'other code', 2, 'old error', 3);",
        )
        .unwrap();
        if wake {
            let w = schema.wake(&conn);
            assert!(w.error().is_none(), "{:?}", w.error());
        } else {
            schema.migrate(&conn).unwrap();
        }
        assert!(backfilled(&conn));
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('migrations_failure')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for c in durable_schema_runtime::tracking::PROGRESS_COLUMNS {
            assert!(columns.iter().any(|n| n == c), "{c} in {columns:?}");
        }
    }
}

/// Another migrator (a second process on the same file) that committed a
/// phase meanwhile: this run's next phase fails before anything runs twice,
/// as `concurrent`.
#[test]
fn a_phase_committed_by_another_migrator_is_concurrent() {
    let schema = backfill_schema();
    let dir = TempDir::new("batch-concurrent");
    let path = dir.db("db.sqlite");
    let a = open(&path);
    prefix(&schema, 1).migrate(&a).unwrap();
    let b = open(&path);
    // `b` runs a repetition between `a`'s reading of the progress and its
    // first repetition.
    struct Meddling<'c> {
        conn: &'c Connection,
        other: &'c Connection,
        schema: &'c Schema,
        done: Cell<bool>,
    }
    impl Backend for Meddling<'_> {
        fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
            Backend::query(self.conn, sql, params)
        }
        fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
            if steps.iter().any(|s| s.sql().starts_with("UPDATE items")) && !self.done.get() {
                self.done.set(true);
                let slow = self.schema.__with_budget_ms(0);
                assert!(matches!(
                    slow.wake(self.other).error(),
                    Some(MigrateError::InProgress { .. })
                ));
            }
            Backend::transaction(self.conn, steps)
        }
    }
    // `a` starts from the same progress: let it commit the first phase.
    let slow = schema.__with_budget_ms(0);
    let _ = slow.wake(&a);
    let meddling = Meddling {
        conn: &a,
        other: &b,
        schema: &schema,
        done: Cell::new(false),
    };
    let err = schema.migrate(&meddling).unwrap_err();
    assert!(
        matches!(err, MigrateError::Concurrent { version: 2, .. }),
        "{err:?}"
    );
    // Running again finds the work where the other migrator left it.
    schema.migrate(&a).unwrap();
    assert!(backfilled(&a));
}

/// The same on a Durable Object's model (workerd's authorizer and
/// transaction model): `changes()` is allowed, the phases run, and an older
/// failure table is upgraded.
#[test]
fn on_the_durable_object_model() {
    use durable_schema_workerd::DurableObjectDb;
    let schema = backfill_schema().__with_budget_ms(0);
    let db = DurableObjectDb::new();
    prefix(&schema, 1).migrate(&db).unwrap();
    db.exec(
        "CREATE TABLE migrations_failure (id INTEGER PRIMARY KEY CHECK (id = 1), \
         chain TEXT NOT NULL, version INTEGER NOT NULL, error TEXT NOT NULL, \
         attempts INTEGER NOT NULL, attempted_at TEXT NOT NULL DEFAULT \
         (strftime('%Y-%m-%dT%H:%M:%fZ','now')))",
    )
    .unwrap();
    db.end_event().unwrap();
    let mut wakes = 0;
    loop {
        let wake = schema.wake(&db);
        db.end_event().unwrap();
        wakes += 1;
        match wake.error() {
            Some(MigrateError::InProgress { repetitions, .. }) => {
                assert_eq!(*repetitions, wakes);
            }
            None => break,
            other => panic!("{other:?}"),
        }
    }
    // Four repetitions (the fourth ends the batch), then the rest.
    assert_eq!(wakes, 5);
    let wrong: i64 = db
        .query_row("SELECT count(*) FROM items WHERE w IS NOT v * 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(wrong, 0);
}

/// On a Durable Object's model, a batched migration under
/// `defer_foreign_keys` whose repetition leaves an orphan fails as
/// `foreign_key` naming the row, commits nothing of that repetition, and
/// leaves the event's commit clean. (Each phase ends with the migration's
/// foreign-key checks and deferral off, as a whole migration does.)
#[test]
fn each_phase_checks_foreign_keys_on_the_durable_object_model() {
    use durable_schema_runtime::Migration;
    use durable_schema_workerd::DurableObjectDb;
    let files = [
        (
            "0001_tree.sql",
            "CREATE TABLE parents (id INTEGER PRIMARY KEY);
             CREATE TABLE kids (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id), moved INTEGER);
             INSERT INTO parents VALUES (1), (2);
             INSERT INTO kids (id, parent) VALUES (1, 1), (2, 1), (3, 2);
",
        ),
        (
            "0002_move.sql",
            "PRAGMA defer_foreign_keys = ON;
             -- durable-schema: batch
             UPDATE kids SET parent = parent + 10, moved = 1 WHERE id IN (SELECT id FROM kids WHERE moved IS NULL LIMIT 1);
",
        ),
    ];
    let built = schema(&files);
    let ms: Vec<Migration> = vec![
        built.migrations()[0],
        built.migrations()[1].__with_foreign_key_checks(&["kids"]),
    ];
    let schema = Schema::__new("migrations", false, Box::leak(ms.into_boxed_slice()));
    let db = DurableObjectDb::new();
    prefix(&schema, 1).migrate(&db).unwrap();
    db.end_event().unwrap();
    let err = schema.migrate(&db).unwrap_err();
    assert!(
        matches!(err, MigrateError::ForeignKey { version: 2, .. }),
        "{err:?}"
    );
    db.end_event().unwrap();
    let orphans: i64 = db
        .query_row("SELECT count(*) FROM kids WHERE parent > 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(orphans, 0);
}

fn schema_from(files: &[(&str, &str)]) -> Schema {
    schema(files)
}

/// 200,000 items and their backfill, 1,000 rows a repetition: for a child
/// process to be killed in the middle of.
fn big_files() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "0001_items.sql",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\n\
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)\n\
             INSERT INTO items (id, v) SELECT x, x FROM c;\n",
        ),
        (
            "0002_backfill.sql",
            "ALTER TABLE items ADD COLUMN w INTEGER;\n\
             -- durable-schema: batch\n\
             UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n",
        ),
    ]
}

/// Prints `DS_BATCH_REPETITION n` once the transaction of repetition `n`
/// committed.
struct Announce<'c>(&'c Connection);

impl Backend for Announce<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        Backend::query(self.0, sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        let repetition = steps.iter().any(|s| s.sql().starts_with("UPDATE items"));
        let result = Backend::transaction(self.0, steps);
        if repetition && result.is_ok() {
            use std::io::Write;
            let n = progress(self.0).map_or(0, |p| p.1);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "DS_BATCH_REPETITION {n}");
            let _ = out.flush();
        }
        result
    }
}

#[test]
#[ignore = "helper: run as a child process by the kill test below"]
fn batch_kill_child() {
    let path = std::env::var("DS_BATCH_DB").expect("DS_BATCH_DB is set by the parent test");
    let conn = open(std::path::Path::new(&path));
    let wake = schema(&big_files()).wake(&Announce(&conn));
    assert!(wake.error().is_none(), "{:?}", wake.error());
    println!("DS_BATCH_CHILD_FINISHED");
}

/// A real kill (SIGKILL of a child process running `wake`) in the middle of
/// the repetitions: every repetition the child saw committed is in the
/// database, the next `wake` retries from there (not `interrupted`) and
/// completes.
#[test]
fn a_process_killed_mid_batch_keeps_its_committed_repetitions() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = TempDir::new("batch-kill");
    let path = dir.db("app.db");
    let schema = schema(&big_files());
    prefix(&schema, 1).migrate(&open(&path)).unwrap();
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, m)| m);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("{module}::batch_kill_child"),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DS_BATCH_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        assert!(
            !line.contains("DS_BATCH_CHILD_FINISHED"),
            "the backfill finished before the kill"
        );
        if let Some(n) = line.strip_prefix("DS_BATCH_REPETITION ") {
            seen = n.trim().parse().unwrap();
            if seen >= 5 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    assert!(!child.wait().unwrap().success());
    let conn = open(&path);
    let (_, repetitions, changed, unfinished) = progress(&conn).expect("progress survives");
    assert!(
        repetitions >= seen,
        "{repetitions} < {seen}: a committed repetition was lost"
    );
    assert_eq!(changed, repetitions * 1000);
    assert_eq!(unfinished, 1);
    let rec = Recorder::new(&conn);
    let wake = schema.wake(&rec);
    assert!(wake.error().is_none(), "{:?}", wake.error());
    // The rest: 200 that change rows and one that changes none, in all.
    assert_eq!(rec.repetitions() as i64, 201 - repetitions);
    assert!(backfilled(&conn));
    assert_eq!(version(&conn), 2);
}
