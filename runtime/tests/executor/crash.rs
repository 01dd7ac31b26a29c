//! A process killed (SIGKILL) in the middle of a slow migration leaves the
//! database file at a whole version; the next run completes.
//!
//! The test re-executes its own binary as the child, running the ignored
//! `crash_child` helper (by its full path in the binary, `crash::crash_child`)
//! with `DS_CRASH_DB` set.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::Schema;

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
#[ignore = "helper: run as a child process by killed_mid_migration_leaves_a_whole_version"]
fn crash_child() {
    let path = std::env::var("DS_CRASH_DB").expect("DS_CRASH_DB is set by the parent test");
    let conn = open(std::path::Path::new(&path));
    slow_schema().migrate(&Announce(&conn)).unwrap();
    // Reaching this line means the parent did not kill us in time.
    println!("DS_CRASH_CHILD_FINISHED");
}

#[test]
fn killed_mid_migration_leaves_a_whole_version() {
    let dir = TempDir::new("crash");
    let path = dir.db("app.db");
    let schema = slow_schema();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            child_test().as_str(),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DS_CRASH_DB", &path)
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
