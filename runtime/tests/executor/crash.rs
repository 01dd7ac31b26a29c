//! A process killed (SIGKILL) in the middle of a slow migration leaves the
//! database file at a whole version; the next run completes. Under
//! `Schema::wake` the next run reports the killed one as `interrupted`
//! instead, and re-executes nothing before `retry_after`.
//!
//! The test re-executes its own binary as the child, running the ignored
//! `crash_child` helper (by its full path in the binary, `crash::crash_child`)
//! with `DS_CRASH_DB` set (and `DS_CRASH_WAKE=1` to run `wake`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::{MigrateError, Schema};

const ROWS: u32 = 1_500_000;

fn slow_schema() -> Schema {
    let fill = format!(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, payload BLOB NOT NULL);\n\
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS})\n\
         INSERT INTO big (id, payload) SELECT x, randomblob(48) FROM c;\n\
         CREATE INDEX big_payload ON big(payload);\n"
    );
    schema(&[
        (
            "0001_create_items.sql",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\n\
             INSERT INTO items (name) VALUES ('kept');\n",
        ),
        ("0002_fill_big.sql", &fill),
        ("0003_after.sql", "CREATE TABLE after_big (x);\n"),
    ])
}

const MARKER: &str = "DS_CRASH_SLOW_MIGRATION_STARTED";

/// Announces on stdout when the slow migration's transaction starts.
struct Announce<'c>(&'c rusqlite::Connection);

impl Backend for Announce<'_> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        Backend::query(self.0, sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        if steps.iter().any(|s| s.sql().contains("WITH RECURSIVE")) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{MARKER}");
            let _ = out.flush();
        }
        Backend::transaction(self.0, steps)
    }
}

/// `crash_child`'s path in this test binary, as `--exact` wants it: this
/// module's path without the crate name (`crash::crash_child`).
fn child_test() -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, m)| m);
    format!("{module}::crash_child")
}

#[test]
#[ignore = "helper: run as a child process by the kill tests below"]
fn crash_child() {
    let path = std::env::var("DS_CRASH_DB").expect("DS_CRASH_DB is set by the parent test");
    let conn = open(std::path::Path::new(&path));
    if std::env::var_os("DS_CRASH_WAKE").is_some() {
        let wake = slow_schema().wake(&Announce(&conn));
        assert!(wake.error().is_none(), "{:?}", wake.error());
    } else {
        slow_schema().migrate(&Announce(&conn)).unwrap();
    }
    // Reaching this line means the parent did not kill us in time.
    println!("DS_CRASH_CHILD_FINISHED");
}

/// Runs the slow schema in a child process on `dir`'s `app.db` (`wake`
/// instead of `migrate` when `wake`), and kills it with SIGKILL once the
/// slow migration's transaction has written megabytes to the file.
fn kill_mid_migration(dir: &TempDir, wake: bool) {
    let path = dir.db("app.db");
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        child_test().as_str(),
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command.env("DS_CRASH_DB", &path);
    if wake {
        command.env("DS_CRASH_WAKE", "1");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("child exited before the slow migration")
            .unwrap();
        if line.contains(MARKER) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "child too slow"
        );
    }
    // Wait until the insert has spilled well past SQLite's page cache into
    // the database file (new pages go straight to the file; the journal only
    // keeps the originals of pages that existed), then kill without warning.
    let journal = dir.db("app.db-journal");
    let waiting = Instant::now();
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 8 * 1024 * 1024 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the slow migration finished before the kill: raise ROWS"
        );
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "the database file never grew"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the slow migration finished before the kill: raise ROWS"
    );
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        std::fs::metadata(&journal).map_or(0, |m| m.len()) > 0,
        "no hot journal: the kill did not land inside the transaction"
    );
}

#[test]
fn killed_mid_migration_leaves_a_whole_version() {
    let dir = TempDir::new("crash");
    let path = dir.db("app.db");
    let schema = slow_schema();

    kill_mid_migration(&dir, false);
    // Reopening rolls the hot journal back: version 1, whole.
    let conn = open(&path);
    let clean = open(&dir.db("reference.db"));
    prefix(&schema, 1).migrate(&clean).unwrap();
    assert_eq!(dump(&conn), dump(&clean));
    assert_eq!(content(&conn, "migrations"), content(&clean, "migrations"));
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 1));
    assert!(!has_table(&conn, "big"));

    let report = schema.migrate(&conn).unwrap();
    assert_eq!((report.from_version(), report.to_version()), (1, 3));
    assert_eq!(
        conn.query_row("SELECT count(*) FROM big", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        i64::from(ROWS)
    );
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 3));
}

/// The started record: a `wake` killed in the slow migration is reported by
/// the next `wake` as `interrupted` (the file, when it started) at once, and
/// nothing of it runs again before `retry_after`; then one new attempt.
#[test]
fn a_wake_killed_mid_migration_is_reported_interrupted_and_not_rerun() {
    let dir = TempDir::new("interrupted");
    let path = dir.db("app.db");
    let schema = slow_schema();

    kill_mid_migration(&dir, true);
    let conn = open(&path);
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 1));
    assert!(!has_table(&conn, "big"));
    // What the killed run left: its started record, committed before 0002.
    let (version, attempts): (i64, i64) = conn
        .query_row(
            "SELECT version, attempts FROM migrations_failure",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, attempts), (2, -1));

    let counting = Counting::new(&conn);
    let wake = schema.wake(&counting);
    let Some(MigrateError::Interrupted {
        version: 2,
        file,
        started_at,
    }) = wake.error()
    else {
        panic!("expected interrupted, got {:?}", wake.error());
    };
    assert_eq!(*file, "0002_fill_big.sql");
    assert!(
        started_at.ends_with('Z') && started_at.len() == 24,
        "{started_at}"
    );
    let err = wake.error().unwrap();
    assert_eq!(err.kind(), "interrupted");
    assert!(
        err.to_string().contains("0002_fill_big.sql") && err.to_string().contains(started_at),
        "{err}"
    );
    let line = wake.log_line("object-1", 0.0).unwrap();
    assert!(
        line.contains("\"outcome\":\"failed\"") && line.contains("\"kind\":\"interrupted\""),
        "{line}"
    );
    assert_eq!(
        (wake.report().from_version(), wake.report().to_version()),
        (1, 1)
    );
    // One transaction: the started record becomes the failure record. None
    // of the migrations' statements ran.
    assert_eq!(counting.transactions.get(), 1);
    assert_eq!(counting.steps.get(), 1);
    let (error, attempts): (String, i64) = conn
        .query_row("SELECT error, attempts FROM migrations_failure", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((error.as_str(), attempts), (err.to_string().as_str(), 1));

    // 30 more wake-ups of the same code within retry_after: deferred,
    // naming the interrupted file, nothing executed.
    for _ in 0..30 {
        let again = schema.wake(&counting);
        match again.error() {
            Some(MigrateError::Deferred {
                version: 2,
                attempts: 1,
                error,
                ..
            }) => assert!(
                error.contains("0002_fill_big.sql was")
                    || error.contains("0002_fill_big.sql (version 2) was interrupted"),
                "{error}"
            ),
            other => panic!("expected deferred, got {other:?}"),
        }
    }
    assert_eq!(counting.transactions.get(), 1, "nothing re-executed");
    let status = schema.status(&conn).unwrap();
    let failure = status.failure().expect("the interrupted run is recorded");
    assert_eq!((failure.version(), failure.attempts()), (2, 1));
    assert!(
        failure.error().contains("interrupted"),
        "{}",
        failure.error()
    );

    // After retry_after: one new attempt, which completes and clears it.
    conn.execute_batch(
        "UPDATE migrations_failure SET attempted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-61 seconds')",
    )
    .unwrap();
    let retried = schema.wake(&conn);
    assert!(retried.error().is_none(), "{:?}", retried.error());
    assert_eq!(retried.report().to_version(), 3);
    assert_eq!(
        conn.query_row("SELECT count(*) FROM migrations_failure", [], |r| r
            .get::<_, i64>(0))
            .unwrap(),
        0
    );
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 3));
}
