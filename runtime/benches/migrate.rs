//! The executor against plain rusqlite, at 10, 200 and 1000 generated
//! migrations (each: CREATE TABLE, CREATE INDEX, INSERT).
//!
//! - `up_to_date/*`: the check a Durable Object runs on every wake-up, on a
//!   file database that is already current. Baselines: the usual hand-rolled
//!   check (`SELECT max(version)`, verifies nothing) and a full walk
//!   comparing every recorded checksum (what verifying history costs without
//!   a chain).
//! - `fresh_apply/*`: migrating an empty database, against plain rusqlite
//!   running the same files with one transaction per file and no tracking.
//!   In-memory databases, so the figure is the executor's CPU overhead, not
//!   fsync (which is the same per transaction on both sides).
//!
//! Sample sizes are small so the bench finishes in a few minutes on 2 cores:
//! `cargo bench -p durable-schema-runtime --features rusqlite --bench migrate`
//! (results in `runtime/benches/RESULTS.md`).
//!
//! The schemas are built by the executor tests' helpers, on the compiler's
//! splitter and checksums.

#[path = "../tests/executor/common.rs"]
mod common;

use std::time::Duration;

use common::{as_pairs, generated, schema, TempDir};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use durable_schema_runtime::Schema;
use rusqlite::Connection;

const SIZES: [usize; 3] = [10, 200, 1000];

/// Plain rusqlite: each file's SQL in its own transaction.
fn plain_apply(conn: &Connection, schema: &Schema) {
    for m in schema.migrations() {
        conn.execute_batch("BEGIN").unwrap();
        conn.execute_batch(m.sql()).unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }
}

fn up_to_date(c: &mut Criterion) {
    let mut group = c.benchmark_group("up_to_date");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let dir = TempDir::new("bench");
    for n in SIZES {
        let files = generated(n);
        let schema = schema(&as_pairs(&files));
        let conn = Connection::open(dir.db(&format!("current-{n}.db"))).unwrap();
        schema.migrate(&conn).unwrap();

        group.bench_with_input(BenchmarkId::new("durable_schema", n), &n, |b, _| {
            b.iter(|| {
                let report = schema.migrate(&conn).unwrap();
                assert!(report.is_noop());
            })
        });
        group.bench_with_input(BenchmarkId::new("hand_rolled_max", n), &n, |b, _| {
            b.iter(|| {
                let v: u32 = conn
                    .query_row("SELECT max(version) FROM migrations", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(v, schema.version());
            })
        });
        group.bench_with_input(BenchmarkId::new("checksum_walk", n), &n, |b, _| {
            b.iter(|| {
                let mut stmt = conn
                    .prepare("SELECT version, checksum FROM migrations ORDER BY version")
                    .unwrap();
                let mut rows = stmt.query([]).unwrap();
                let mut known = schema.migrations().iter();
                while let Some(row) = rows.next().unwrap() {
                    let m = known.next().unwrap();
                    let (v, sum): (u32, String) = (row.get(0).unwrap(), row.get(1).unwrap());
                    assert!(v == m.version() && sum == m.checksum());
                }
            })
        });
    }
    group.finish();
}

fn fresh_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("fresh_apply");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let files = generated(n);
        let schema = schema(&as_pairs(&files));
        group.bench_with_input(BenchmarkId::new("durable_schema", n), &n, |b, _| {
            b.iter_batched(
                || Connection::open_in_memory().unwrap(),
                |conn| {
                    assert_eq!(schema.migrate(&conn).unwrap().applied().len(), n);
                    conn
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_with_input(BenchmarkId::new("plain_rusqlite", n), &n, |b, _| {
            b.iter_batched(
                || Connection::open_in_memory().unwrap(),
                |conn| {
                    plain_apply(&conn, &schema);
                    conn
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// What the foreign-key check before commit costs on a table of 100k rows:
/// D1's rebuild of `users` (100k rows) that `posts` (100k rows) references,
/// applied with and without the check of `posts` the compiler plans for it,
/// and the check alone.
fn foreign_key_check(c: &mut Criterion) {
    const ROWS: u32 = 100_000;
    let mut group = c.benchmark_group("foreign_key_check_100k");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(5));
    let setup_sql = format!(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id));\n\
         CREATE INDEX posts_user ON posts (user_id);\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \
         INSERT INTO users SELECT i, 'user ' || i FROM n;\n\
         INSERT INTO posts SELECT id, id FROM users;\n"
    );
    let rebuild = "PRAGMA defer_foreign_keys = ON;\n\
        CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
        INSERT INTO users_new SELECT id, coalesce(name, '') FROM users;\n\
        DROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n\
        PRAGMA defer_foreign_keys = OFF;\n";
    let plain = schema(&[
        ("0001_setup.sql", &setup_sql),
        ("0002_rebuild.sql", rebuild),
    ]);
    let checked_migrations: Vec<_> = plain
        .migrations()
        .iter()
        .map(|m| {
            if m.version() == 2 {
                m.__with_foreign_key_checks(&["posts"])
            } else {
                *m
            }
        })
        .collect();
    let checked = Schema::__new(
        plain.table(),
        plain.strict(),
        Box::leak(checked_migrations.into_boxed_slice()),
    );
    let at_v1 = || {
        let conn = Connection::open_in_memory().unwrap();
        common::prefix(&plain, 1).migrate(&conn).unwrap();
        conn
    };
    for (name, schema) in [
        ("rebuild_without_check", &plain),
        ("rebuild_with_check", &checked),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                at_v1,
                |conn| {
                    assert_eq!(schema.migrate(&conn).unwrap().to_version(), 2);
                    conn
                },
                BatchSize::PerIteration,
            )
        });
    }
    let conn = at_v1();
    group.bench_function("check_alone", |b| {
        b.iter(|| {
            let mut stmt = conn.prepare("PRAGMA foreign_key_check(\"posts\")").unwrap();
            assert!(stmt.query([]).unwrap().next().unwrap().is_none());
        })
    });
    group.finish();
}

criterion_group!(benches, up_to_date, fresh_apply, foreign_key_check);
criterion_main!(benches);
