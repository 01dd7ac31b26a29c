//! Test helpers for the executor tests (and the bench): build `Schema`
//! values without the macro, file-backed temp databases, schema dumps and
//! backend wrappers.
//!
//! Schemas are built the way the compiler builds them for the macro: the
//! text normalized by `normalize_text`, split by the real splitter
//! (`spans`, the one way the compiler splits a migration), hashed by `checksum` and
//! chained by `chain`. Only the checks (replay, Durable Object rules) are
//! skipped, so tests can also build schemas the compiler would refuse.
#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use durable_schema_compiler::{chain, checksum, encode_spans, normalize_text, spans};
use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::{Migration, Schema};
use rusqlite::types::FromSql;
use rusqlite::Connection;

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// An in-memory database at version 1 of `schema` (its first migration).
pub(crate) fn at_v1(schema: &Schema) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    prefix(schema, 1).migrate(&conn).unwrap();
    conn
}

/// The highest version in the tracking table `migrations`.
pub(crate) fn version(conn: &Connection) -> i64 {
    conn.query_row("SELECT max(version) FROM migrations", [], |r| r.get(0))
        .unwrap()
}

/// The statements of a migration's normalized `text` as the macro embeds
/// them (located by the compiler's splitter), leaked.
pub(crate) fn statements(text: &str) -> &'static str {
    leak(&encode_spans(&spans(text)))
}

/// Builds the migrations for `files` (`NNNN_description.sql`, text), with
/// versions 1, 2, 3, ... in order, with the compiler's checksums and chain.
pub(crate) fn migrations(files: &[(&str, &str)]) -> &'static [Migration] {
    let mut previous = String::new();
    let mut out = Vec::with_capacity(files.len());
    for (i, (name, sql)) in files.iter().enumerate() {
        let version = i as u32 + 1;
        let prefix: u32 = name
            .split('_')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("test file names start with a number");
        assert_eq!(prefix, version, "test files must be numbered 1, 2, 3, ...");
        let description = name
            .trim_end_matches(".sql")
            .split_once('_')
            .map_or("", |(_, d)| d);
        // Like the compiler: checksum and statements come from the
        // normalized text, which is also what `sql()` embeds.
        let text = leak(&normalize_text(sql));
        let checksum = checksum(text);
        previous = chain(&previous, version, &checksum);
        out.push(Migration::__new(
            version,
            leak(name),
            leak(description),
            text,
            leak(&checksum),
            leak(&previous),
            statements(text),
        ));
    }
    Box::leak(out.into_boxed_slice())
}

/// A schema with the default tracking table `migrations`, not strict.
pub(crate) fn schema(files: &[(&str, &str)]) -> Schema {
    Schema::__new("migrations", false, migrations(files))
}

/// A schema with the given table name and strictness.
pub(crate) fn schema_with(table: &'static str, strict: bool, files: &[(&str, &str)]) -> Schema {
    Schema::__new(table, strict, migrations(files))
}

/// The first `n` migrations of `schema` as a schema of their own (an older
/// build of the same code).
pub(crate) fn prefix(schema: &Schema, n: usize) -> Schema {
    Schema::__new(schema.table(), schema.strict(), &schema.migrations()[..n])
}

/// Four small migrations with several statements each, some writing data.
pub(crate) const CHAT: &[(&str, &str)] = &[
    (
        "0001_create_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         INSERT INTO users (name) VALUES ('root');\n",
    ),
    (
        "0002_create_rooms.sql",
        "CREATE TABLE rooms (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n\
         CREATE TABLE members (room INTEGER NOT NULL REFERENCES rooms(id), \
         user INTEGER NOT NULL REFERENCES users(id));\n\
         CREATE INDEX members_room ON members(room);\n",
    ),
    (
        "0003_add_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n\
         UPDATE users SET email = name || '@example.com';\n",
    ),
    (
        "0004_create_messages.sql",
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, room INTEGER NOT NULL, body TEXT);\n\
         CREATE INDEX messages_room ON messages(room);\n\
         INSERT INTO messages (room, body) VALUES (1, 'hello');\n",
    ),
];

/// `n` generated migrations, each creating a table and an index and
/// inserting a row, for scale tests and benchmarks.
pub(crate) fn generated(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|v| {
            (
                format!("{v:04}_create_t{v}.sql"),
                format!(
                    "CREATE TABLE t{v} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);\n\
                     CREATE INDEX t{v}_name ON t{v}(name);\n\
                     INSERT INTO t{v} (name, n) VALUES ('row', {v});\n"
                ),
            )
        })
        .collect()
}

/// Borrows generated files as the `(&str, &str)` pairs `schema` takes.
pub(crate) fn as_pairs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect()
}

/// A temporary directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "durable-schema-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// A database file path inside the directory.
    pub(crate) fn db(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a file database like a Durable Object sees it (foreign keys on).
pub(crate) fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open database");
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("enable foreign keys");
    conn
}

/// `SELECT type, name, sql FROM sqlite_master ORDER BY name`.
pub(crate) fn dump(conn: &Connection) -> Vec<(String, String, Option<String>)> {
    triples(
        conn,
        "SELECT type, name, sql FROM sqlite_master ORDER BY name",
    )
}

/// The rows of a three-column query.
pub(crate) fn triples<A: FromSql, B: FromSql, C: FromSql>(
    conn: &Connection,
    sql: &str,
) -> Vec<(A, B, C)> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One tracking row: version, description, checksum, chain.
pub(crate) type TrackingRow = (i64, String, Option<String>, Option<String>);

/// The tracking table's rows (executor shape), by version.
pub(crate) fn tracking(conn: &Connection, table: &str) -> Vec<TrackingRow> {
    let sql =
        format!("SELECT version, description, checksum, chain FROM \"{table}\" ORDER BY version");
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The tracking rows `schema`'s first `n` migrations should have left.
pub(crate) fn expected_tracking(schema: &Schema, n: usize) -> Vec<TrackingRow> {
    schema.migrations()[..n]
        .iter()
        .map(|m| {
            (
                i64::from(m.version()),
                m.description().to_owned(),
                Some(m.checksum().to_owned()),
                Some(m.chain().to_owned()),
            )
        })
        .collect()
}

/// Whether a table exists.
pub(crate) fn has_table(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

/// A backend wrapper that counts calls and transaction steps.
pub(crate) struct Counting<B> {
    pub inner: B,
    pub queries: Cell<usize>,
    pub transactions: Cell<usize>,
    pub steps: Cell<usize>,
}

impl<B> Counting<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            queries: Cell::new(0),
            transactions: Cell::new(0),
            steps: Cell::new(0),
        }
    }
}

impl<B: Backend> Backend for Counting<B> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        self.queries.set(self.queries.get() + 1);
        self.inner.query(sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        self.transactions.set(self.transactions.get() + 1);
        self.steps.set(self.steps.get() + steps.len());
        self.inner.transaction(steps)
    }
}

/// A backend wrapper that makes the `fail_at`-th (1-based, counted over all
/// transaction steps this wrapper sees) statement fail, by substituting a
/// statement SQLite rejects at run time.
pub(crate) struct FailAt<B> {
    pub inner: B,
    pub fail_at: usize,
    pub seen: Cell<usize>,
}

/// The message SQLite gives for the substituted statement.
pub(crate) const INJECTED: &str = "no such table: injected_fault";

impl<B> FailAt<B> {
    pub(crate) fn new(inner: B, fail_at: usize) -> Self {
        Self {
            inner,
            fail_at,
            seen: Cell::new(0),
        }
    }
}

impl<B: Backend> Backend for FailAt<B> {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        self.inner.query(sql, params)
    }

    fn transaction(&self, mut steps: Vec<Step>) -> Result<u64, TxError> {
        let before = self.seen.get();
        self.seen.set(before + steps.len());
        if self.fail_at > before && self.fail_at <= before + steps.len() {
            let step = &mut steps[self.fail_at - before - 1];
            // Replace the whole step, parameters too: binding parameters the
            // substitute does not have would fail for another reason.
            *step = Step::new("INSERT INTO injected_fault VALUES (1)");
        }
        self.inner.transaction(steps)
    }
}

/// Every user table's rows (all but the tracking table `skip`), rendered as
/// text, by table name then rowid: with [`dump`], the whole state of a
/// database except the tracking table's `applied_at` times.
pub(crate) fn content(conn: &Connection, skip: &str) -> Vec<(String, Vec<Vec<String>>)> {
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let names: Vec<String> = tables
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
        .into_iter()
        .filter(|n| n != skip)
        .map(|name| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))
                .unwrap();
            let columns = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..columns)
                        .map(|i| {
                            let v: rusqlite::types::Value = r.get(i)?;
                            Ok(format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (name, rows)
        })
        .collect()
}

/// `schema` with the baseline the compiler derives for `files` (the same
/// files `schema` was built from), as the macro embeds it.
pub(crate) fn with_baseline(schema: Schema, files: &[(&str, &str)]) -> Schema {
    let dir = TempDir::new("baseline");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let options = durable_schema_compiler::Options {
        table: schema.table().to_owned(),
        ..Default::default()
    };
    let plan = durable_schema_compiler::check_dir(
        dir.path(),
        ".",
        &options
            .clone()
            .with_cache(durable_schema_compiler::CacheSetting::Off),
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    // The baseline as the macro embeds it.
    let embedded = durable_schema_compiler::runtime_schema(&plan, schema.table()).unwrap();
    let baseline = embedded
        .baseline()
        .unwrap_or_else(|| panic!("no baseline: {:?}", embedded.baseline_note()));
    schema.__with_baseline(baseline)
}
