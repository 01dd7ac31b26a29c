//! Failure on a fleet: what `Schema::wake` (the constructor hook's run)
//! does when a migration fails on an object's data, the foreign-key check
//! before commit, safe adoption, and the smaller defects of issue 8.

use durable_schema_runtime::backend::{Backend, Value};
use durable_schema_runtime::{MigrateError, Mismatch, Schema, SchemaState};
use rusqlite::Connection;

use crate::common::*;

/// v1 creates `items` with a row twice over; v2 adds a UNIQUE index, which
/// fails on that data; v3 exists to show what a run reaches.
const DUPLICATES: &[(&str, &str)] = &[
    (
        "0001_create_items.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         INSERT INTO items (name) VALUES ('a'), ('a');\n",
    ),
    (
        "0002_add_notes.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n",
    ),
    (
        "0003_unique_items.sql",
        "CREATE TABLE marker (x);\nCREATE UNIQUE INDEX items_name ON items(name);\n",
    ),
];

fn failure_rows(conn: &Connection) -> Vec<(i64, String, i64)> {
    if !has_table(conn, "migrations_failure") {
        return Vec::new();
    }
    triples(
        conn,
        "SELECT version, error, attempts FROM migrations_failure",
    )
}

/// The failing migration's statements run once; the next wake-up of the same
/// code reads the failure record and executes nothing; earlier migrations of
/// the run stay; after `retry_after` it tries once more.
#[test]
fn a_failed_migration_is_recorded_and_not_rerun_before_retry_after() {
    let dir = TempDir::new("wake-deferred");
    let conn = open(&dir.db("app.db"));
    let v1 = prefix(&schema(DUPLICATES), 1);
    v1.migrate(&conn).unwrap();

    let schema = schema(DUPLICATES);
    let counting = Counting::new(&conn);
    let wake = schema.wake(&counting);

    // 0002 applied and kept, 0003 rolled back (its first statement too).
    let err = wake.error().expect("0003 fails on the duplicates");
    assert!(
        matches!(
            err,
            MigrateError::Statement {
                version: 3,
                statement: 2,
                line: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(wake.report().from_version(), 1);
    assert_eq!(wake.report().to_version(), 2);
    assert_eq!(wake.report().applied().len(), 1);
    assert!(wake.report().rows_written() >= 1);
    assert_eq!(tracking(&conn, "migrations").len(), 2);
    assert!(
        !has_table(&conn, "marker"),
        "the failing migration is rolled back whole"
    );
    assert!(has_table(&conn, "notes"));
    let recorded = failure_rows(&conn);
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].0, recorded[0].2), (3, 1));
    assert!(
        recorded[0].1.contains("UNIQUE constraint failed"),
        "{recorded:?}"
    );

    // 30 more wake-ups of the same code: each reads the head and the record
    // and executes nothing.
    let before = counting.transactions.get();
    for _ in 0..30 {
        let again = schema.wake(&counting);
        match again.error() {
            Some(MigrateError::Deferred {
                version: 3,
                attempts: 1,
                retry_in_secs,
                error,
            }) => {
                assert!(*retry_in_secs > 0 && *retry_in_secs <= 60);
                assert!(error.contains("0003_unique_items.sql"), "{error}");
            }
            other => panic!("expected Deferred, got {other:?}"),
        }
        assert_eq!(again.report().from_version(), 2);
    }
    assert_eq!(counting.transactions.get(), before, "nothing re-executed");

    // Once retry_after has passed, one new attempt (which fails again).
    conn.execute_batch(
        "UPDATE migrations_failure SET attempted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-61 seconds')",
    )
    .unwrap();
    let retried = schema.wake(&counting);
    assert!(matches!(
        retried.error(),
        Some(MigrateError::Statement { version: 3, .. })
    ));
    assert_eq!(
        counting.transactions.get(),
        before + 3,
        "its started record, one attempt, its failure record"
    );
    assert_eq!(failure_rows(&conn)[0].2, 2, "second attempt counted");
}

#[test]
fn new_code_tries_at_once_and_a_success_clears_the_record() {
    let dir = TempDir::new("wake-new-code");
    let conn = open(&dir.db("app.db"));
    prefix(&schema(DUPLICATES), 2).migrate(&conn).unwrap();
    let bad = schema(DUPLICATES);
    assert!(bad.wake(&conn).error().is_some());
    assert!(matches!(
        bad.wake(&conn).error(),
        Some(MigrateError::Deferred { .. })
    ));

    // The fix: a different 0003 (a new deploy: another chain value).
    let mut fixed_files = DUPLICATES.to_vec();
    fixed_files[2] = (
        "0003_unique_items.sql",
        "DELETE FROM items WHERE id NOT IN (SELECT min(id) FROM items GROUP BY name);\n\
         CREATE UNIQUE INDEX items_name ON items(name);\n",
    );
    let fixed = schema(&fixed_files);
    let wake = fixed.wake(&conn);
    assert_eq!(wake.error(), None);
    assert_eq!(wake.report().to_version(), 3);
    assert!(failure_rows(&conn).is_empty(), "record cleared");
    let line = wake.log_line("obj", 1.5).unwrap();
    assert!(line.contains("\"outcome\":\"applied\""), "{line}");
    // The fast path afterwards logs nothing.
    assert_eq!(fixed.wake(&conn).log_line("obj", 0.0), None);
}

/// A run that fails before applying anything still reports where the
/// database stands (for the log line and `/schema`).
#[test]
fn an_early_failure_reports_the_database_version() {
    let dir = TempDir::new("wake-early");
    let conn = open(&dir.db("app.db"));
    let schema = schema(&CHAT[..2]);
    schema.migrate(&conn).unwrap();
    let mut edited = CHAT[..2].to_vec();
    edited[1].1 = "CREATE TABLE rooms (id INTEGER PRIMARY KEY);\n";
    let wake = self::schema(&edited).wake(&conn);
    assert!(matches!(
        wake.error(),
        Some(MigrateError::Edited { version: 2, .. })
    ));
    assert_eq!(
        (wake.report().from_version(), wake.report().to_version()),
        (2, 2)
    );
    let line = wake.log_line("o", 0.0).unwrap();
    assert!(line.contains("\"from\":2,\"to\":2"), "{line}");
}

#[test]
fn retry_after_zero_tries_on_every_wake() {
    let dir = TempDir::new("wake-zero");
    let conn = open(&dir.db("app.db"));
    prefix(&schema(DUPLICATES), 2).migrate(&conn).unwrap();
    let schema = schema(DUPLICATES).__with_retry_after(0);
    for attempt in 1..=3 {
        let wake = schema.wake(&conn);
        assert!(matches!(wake.error(), Some(MigrateError::Statement { .. })));
        assert_eq!(failure_rows(&conn)[0].2, attempt);
    }
}

#[test]
fn migrate_itself_records_nothing() {
    let dir = TempDir::new("migrate-pure");
    let conn = open(&dir.db("app.db"));
    let schema = schema(DUPLICATES);
    assert!(schema.migrate(&conn).is_err());
    assert!(schema.migrate(&conn).is_err(), "no deferral without wake");
    assert!(!has_table(&conn, "migrations_failure"));
}

#[test]
fn the_log_line_is_one_json_object_with_the_failure() {
    let dir = TempDir::new("wake-log");
    let conn = open(&dir.db("app.db"));
    prefix(&schema(DUPLICATES), 1).migrate(&conn).unwrap();
    let wake = schema(DUPLICATES).wake(&conn);
    let line = wake.log_line("do-\"1\"", 2.0).unwrap();
    assert!(!line.contains('\n'));
    for field in [
        "{\"event\":\"durable-schema\"",
        "\"object\":\"do-\\\"1\\\"\"",
        "\"outcome\":\"failed\"",
        "\"from\":1",
        "\"to\":2",
        "\"applied\":[2]",
        "\"duration_ms\":2",
        "\"rows_written\":",
        "\"error\":{\"kind\":\"statement\",\"version\":3,\"file\":\"0003_unique_items.sql\",\"statement\":2,\"line\":2,\"column\":1,\"sqlite\":\"UNIQUE constraint failed: items.name\"",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
    assert!(line.ends_with("}}"), "{line}");
}

/// A rebuild of `users` that loses the row `posts` references, with
/// deferred keys: SQLite would commit it silently after `defer_foreign_keys
/// = OFF`, or fail at the outermost commit on a Durable Object. The check the
/// compiler asks for fails the migration inside its transaction.
#[test]
fn a_foreign_key_violation_fails_the_migration_before_commit() {
    let dir = TempDir::new("fk-check");
    let conn = open(&dir.db("app.db"));
    let files: &[(&str, &str)] = &[
        (
            "0001_users_posts.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n\
             CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id));\n\
             INSERT INTO users VALUES (1, 'a'), (2, 'b');\nINSERT INTO posts VALUES (10, 2);\n",
        ),
        (
            "0002_rebuild_users.sql",
            "PRAGMA defer_foreign_keys = ON;\n\
             CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
             INSERT INTO users_new SELECT id, name FROM users WHERE id = 1;\n\
             DROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n\
             PRAGMA defer_foreign_keys = OFF;\n",
        ),
    ];
    let plain = schema(files);
    let checked = with_checks(&plain, 2, &["posts"]);

    // Without the check the orphan commits (what the issue reproduced).
    let unchecked_conn = open(&dir.db("unchecked.db"));
    plain.migrate(&unchecked_conn).unwrap();
    let orphans: i64 = unchecked_conn
        .query_row(
            "SELECT count(*) FROM pragma_foreign_key_check('posts')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 1);

    let err = checked.migrate(&conn).unwrap_err();
    assert_eq!(
        err,
        MigrateError::ForeignKey {
            version: 2,
            file: "0002_rebuild_users.sql",
            table: "posts".into(),
            rowid: Some(10),
            parent: "users".into(),
        }
    );
    assert!(err.to_string().contains("row 10 of \"posts\""), "{err}");
    // Rolled back: version 1, both users there.
    assert_eq!(tracking(&conn, "migrations").len(), 1);
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 2);
}

#[test]
fn deferral_does_not_leak_into_the_next_migration() {
    let dir = TempDir::new("fk-defer-off");
    let conn = open(&dir.db("app.db"));
    let files: &[(&str, &str)] = &[
        (
            "0001_p_c.sql",
            "CREATE TABLE p (id INTEGER PRIMARY KEY);\n\
             CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));\n",
        ),
        (
            "0002_defer.sql",
            "PRAGMA defer_foreign_keys = ON;\nINSERT INTO p VALUES (1);\n",
        ),
        ("0003_orphan.sql", "INSERT INTO c VALUES (1, 42);\n"),
    ];
    let checked = with_checks(&schema(files), 2, &["c"]);
    // 0003's orphan fails at once (deferral is off again), naming 0003.
    let err = checked.migrate(&conn).unwrap_err();
    assert!(
        matches!(err, MigrateError::Statement { version: 3, ref message, .. } if message.contains("FOREIGN KEY")),
        "{err:?}"
    );
}

/// `schema` with `tables` as migration `version`'s foreign-key checks, as
/// the compiler would list them.
fn with_checks(schema: &Schema, version: u32, tables: &'static [&'static str]) -> Schema {
    let migrations: Vec<_> = schema
        .migrations()
        .iter()
        .map(|m| {
            if m.version() == version {
                m.__with_foreign_key_checks(tables)
            } else {
                *m
            }
        })
        .collect();
    Schema::__new(
        schema.table(),
        schema.strict(),
        Box::leak(migrations.into_boxed_slice()),
    )
}

const HAND_ROLLED: &str = "CREATE TABLE migrations (version INTEGER PRIMARY KEY, \
                           applied_at TEXT NOT NULL, description TEXT NOT NULL)";

/// A hand-rolled table whose version 2 means something else: refused with
/// the list, nothing written; `status` says the same.
#[test]
fn adoption_compares_descriptions_and_refuses_a_mismatch() {
    let dir = TempDir::new("adopt-mismatch");
    let conn = open(&dir.db("app.db"));
    let schema = schema(&CHAT[..3]);
    conn.execute_batch(schema.migrations()[0].sql()).unwrap();
    conn.execute_batch(HAND_ROLLED).unwrap();
    conn.execute_batch(
        "INSERT INTO migrations VALUES (1, 't', '0001_Create Users.sql');
         INSERT INTO migrations VALUES (2, 't', 'price_to_cents');",
    )
    .unwrap();
    let before = dump(&conn);
    let err = schema.migrate(&conn).unwrap_err();
    assert_eq!(
        err,
        MigrateError::AdoptionMismatch {
            table: "migrations",
            mismatches: vec![Mismatch {
                version: 2,
                recorded: "price_to_cents".into(),
                expected: "0002_create_rooms.sql",
            }],
        }
    );
    assert_eq!(dump(&conn), before, "nothing written");
    assert_eq!(schema.status(&conn).unwrap_err(), err, "status agrees");

    // Normalized: case, spaces, a NNNN_ prefix and .sql do not count.
    conn.execute_batch("UPDATE migrations SET description = 'Create-Rooms' WHERE version = 2")
        .unwrap();
    assert_eq!(
        schema.status(&conn).unwrap().state(),
        SchemaState::Unadopted
    );
}

#[test]
fn an_emptied_tracking_table_over_user_tables_is_refused() {
    let dir = TempDir::new("empty-history");
    let conn = open(&dir.db("app.db"));
    let schema = schema(&CHAT[..2]);
    schema.migrate(&conn).unwrap();
    conn.execute_batch("DELETE FROM migrations").unwrap();
    let before = dump(&conn);
    let err = schema.migrate(&conn).unwrap_err();
    assert!(
        matches!(&err, MigrateError::EmptyHistory { table: "migrations", user_table } if ["users", "rooms", "members"].contains(&user_table.as_str())),
        "{err:?}"
    );
    assert_eq!(dump(&conn), before);

    // Over a database with no user tables it is a fresh start.
    let fresh = open(&dir.db("fresh.db"));
    fresh
        .execute_batch(&durable_schema_compiler::tracking::create_table(
            "migrations",
        ))
        .unwrap();
    assert_eq!(schema.migrate(&fresh).unwrap().applied().len(), 2);
}

/// Idempotent DDL and seed rows, as hand-rolled migrators often write them:
/// run again over live data, they succeed and insert the seeds again.
const SEEDED: &[(&str, &str)] = &[
    (
        "0001_create_users.sql",
        "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         INSERT INTO users (name) VALUES ('admin');\n",
    ),
    (
        "0002_create_settings.sql",
        "CREATE TABLE IF NOT EXISTS settings (key TEXT NOT NULL, value TEXT);\n\
         INSERT INTO settings VALUES ('theme', 'dark');\n",
    ),
];

/// Hand-rolled tracking tables the executor adopts (`version` the primary
/// key, exactly these three columns in any order or case, any types and
/// constraints), each empty.
const LEGACY_SHAPES: &[&str] = &[
    "CREATE TABLE migrations (version INTEGER PRIMARY KEY, \
     applied_at TEXT NOT NULL, description TEXT NOT NULL)",
    "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at, description)",
    "CREATE TABLE Migrations (Description TEXT, VERSION INTEGER NOT NULL PRIMARY KEY, \
     applied_at DATETIME DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE migrations (version INTEGER, applied_at TEXT, description TEXT, \
     PRIMARY KEY (version)) WITHOUT ROWID",
];

/// What the seeded schema's first version left, by a hand-rolled migrator
/// whose tracking table (`tracking`) records nothing: `users` with its seed
/// row and one of the user's, or `users` alone and empty.
fn seeded_database(path: &std::path::Path, tracking: &str, rows: bool) -> Connection {
    let conn = open(path);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    )
    .unwrap();
    if rows {
        conn.execute_batch("INSERT INTO users (name) VALUES ('admin'), ('ada')")
            .unwrap();
    }
    conn.execute_batch(tracking).unwrap();
    conn
}

#[test]
fn an_empty_hand_rolled_table_over_user_tables_is_refused_like_our_own() {
    let dir = TempDir::new("empty-legacy");
    let schema = schema(SEEDED);
    let own = durable_schema_compiler::tracking::create_table("migrations");
    for (i, shape) in LEGACY_SHAPES.iter().enumerate() {
        // A user table holds the user's data whether or not it has rows
        // yet: the own-shape table decides the same way.
        for rows in [true, false] {
            let label = format!("shape {i}, rows {rows}");
            let path = dir.db(&format!("legacy-{i}-{rows}.db"));
            let conn = seeded_database(&path, shape, rows);
            let (before, content_before) = (dump(&conn), content(&conn, "migrations"));
            let changes = conn.total_changes();
            let bytes = std::fs::read(&path).unwrap();

            let err = schema.migrate(&conn).unwrap_err();
            assert_eq!(
                err,
                MigrateError::EmptyHistory {
                    table: "migrations",
                    user_table: "users".into()
                },
                "{label}"
            );
            assert_eq!(err.kind(), "empty_history");
            // The executor's own table, emptied over the same data: the
            // same error, to the byte of its JSON.
            let mirror = seeded_database(&dir.db(&format!("own-{i}-{rows}.db")), &own, rows);
            let own_err = schema.migrate(&mirror).unwrap_err();
            assert_eq!(own_err, err, "{label}");
            assert_eq!(own_err.to_json(), err.to_json(), "{label}");

            // The wake-up hook: the same refusal, no failure record (as for
            // our own table), so the next wake-up refuses again rather than
            // deferring.
            for _ in 0..2 {
                let wake = schema.wake(&conn);
                assert_eq!(wake.error(), Some(&err), "{label}");
                assert!(wake.report().applied().is_empty(), "{label}");
                let own_wake = schema.wake(&mirror);
                assert_eq!(own_wake.error(), Some(&err), "{label}");
            }
            assert!(!has_table(&conn, "migrations_failure"), "{label}");
            assert!(!has_table(&mirror, "migrations_failure"), "{label}");
            // `status` reports what a run would do, without writing.
            assert_eq!(schema.status(&conn).unwrap_err(), err, "{label}");

            // Nothing applied, nothing written: not a seed row twice, not
            // a column added to the table.
            assert_eq!(dump(&conn), before, "{label}");
            assert_eq!(content(&conn, "migrations"), content_before, "{label}");
            assert_eq!(conn.total_changes(), changes, "{label}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{label}");
            assert_eq!(
                conn.query_row("SELECT count(*) FROM migrations", [], |r| r
                    .get::<_, i64>(0))
                    .unwrap(),
                0,
                "{label}"
            );
        }
    }
}

/// `status` on the executor's own tracking table left empty over the
/// user's tables: the error a run returns, as for a hand-rolled one, not
/// `Behind` with every migration pending (which a run would refuse).
#[test]
fn status_of_our_own_empty_table_over_user_tables_is_the_runs_error() {
    let dir = TempDir::new("empty-own-status");
    let schema = schema(SEEDED);
    let own = durable_schema_compiler::tracking::create_table("migrations");
    for rows in [true, false] {
        let conn = seeded_database(&dir.db(&format!("own-{rows}.db")), &own, rows);
        let before = dump(&conn);
        let run = schema.migrate(&conn).unwrap_err();
        assert!(
            matches!(run, MigrateError::EmptyHistory { .. }),
            "rows {rows}: {run:?}"
        );
        assert_eq!(schema.status(&conn).unwrap_err(), run, "rows {rows}");
        assert_eq!(dump(&conn), before, "rows {rows}: status wrote");
    }
    // Over a database without user tables the same empty table is a start
    // from nothing, which `status` shows as everything pending.
    let conn = open(&dir.db("own-empty.db"));
    conn.execute_batch(&own).unwrap();
    let status = schema.status(&conn).unwrap();
    assert_eq!(status.state(), SchemaState::Behind);
    assert_eq!(status.pending().len(), SEEDED.len());
    assert_eq!(schema.migrate(&conn).unwrap().applied().len(), SEEDED.len());
}

#[test]
fn an_empty_hand_rolled_table_over_an_empty_database_is_a_fresh_start() {
    let dir = TempDir::new("empty-legacy-fresh");
    let schema = schema(SEEDED);
    for (i, shape) in LEGACY_SHAPES.iter().enumerate() {
        let conn = open(&dir.db(&format!("fresh-{i}.db")));
        conn.execute_batch(shape).unwrap();

        let report = schema.migrate(&conn).unwrap();

        assert_eq!(report.applied().len(), 2, "shape {i}");
        assert_eq!(
            tracking(&conn, "migrations"),
            expected_tracking(&schema, 2),
            "shape {i}"
        );
        let users: Vec<String> = conn
            .prepare("SELECT name FROM users")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(users, ["admin"], "shape {i}: seeded once");
        assert!(schema.migrate(&conn).unwrap().is_noop(), "shape {i}");
    }
}

#[test]
fn a_failing_tracking_insert_is_not_blamed_on_another_migrator() {
    let dir = TempDir::new("insert-fails");
    let conn = open(&dir.db("app.db"));
    // Our shape plus a NOT NULL column without default: the insert fails
    // for a reason that has nothing to do with concurrency.
    conn.execute_batch(
        "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, \
         description TEXT NOT NULL, checksum TEXT, chain TEXT, owner TEXT NOT NULL)",
    )
    .unwrap();
    let err = schema(&CHAT[..1]).migrate(&conn).unwrap_err();
    match &err {
        MigrateError::Backend { context, message } => {
            assert!(context.starts_with("recording version 1"), "{context}");
            assert!(message.contains("NOT NULL constraint failed"), "{message}");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[test]
fn a_trigger_named_like_the_tracking_table_does_not_confuse_the_shape_check() {
    let dir = TempDir::new("trigger-name");
    let conn = open(&dir.db("app.db"));
    conn.execute_batch(
        "CREATE TABLE t (x); CREATE TRIGGER migrations AFTER INSERT ON t BEGIN SELECT 1; END;",
    )
    .unwrap();
    let schema = schema(&CHAT[..1]);
    assert_eq!(schema.status(&conn).unwrap().state(), SchemaState::Fresh);
    assert_eq!(schema.migrate(&conn).unwrap().applied().len(), 1);
}

#[test]
fn rows_written_counts_what_the_run_wrote() {
    let dir = TempDir::new("rows-written");
    let conn = open(&dir.db("app.db"));
    let report = schema(&CHAT[..1]).migrate(&conn).unwrap();
    // the tracking row and the seeded user (CREATE TABLE writes no row).
    assert_eq!(report.rows_written(), 2);
    let rows = Backend::query(&conn, "SELECT count(*) FROM users", &[]).unwrap();
    assert_eq!(rows.rows(), [vec![Value::Integer(1)]]);
}

/// `Report`'s line after a failed wake-up says what the run did and what
/// stopped it, never that the database is current.
#[test]
fn the_report_of_a_failed_wake_says_what_failed() {
    let dir = TempDir::new("wake-report");
    let schema = schema(DUPLICATES);

    // Part of the run applied, then the failure.
    let partial = open(&dir.db("partial.db"));
    prefix(&schema, 1).migrate(&partial).unwrap();
    let wake = schema.wake(&partial);
    let report = wake.report();
    assert_eq!(report.failed(), wake.error());
    assert!(
        matches!(
            report.failed(),
            Some(MigrateError::Statement { version: 3, .. })
        ),
        "{:?}",
        report.failed()
    );
    assert_eq!(
        report.to_string(),
        "migrated from version 1 to 2 (0002_add_notes.sql), then 0003_unique_items.sql failed \
         at statement 2 (0003_unique_items.sql:2:1): UNIQUE constraint failed: items.name"
    );

    // Nothing applied before the failure.
    let none = open(&dir.db("none.db"));
    prefix(&schema, 2).migrate(&none).unwrap();
    let wake = schema.wake(&none);
    assert_eq!(
        wake.report().to_string(),
        "stayed at version 2: 0003_unique_items.sql failed at statement 2 \
         (0003_unique_items.sql:2:1): UNIQUE constraint failed: items.name"
    );

    // Deferred: the same code right after, nothing executed.
    let deferred = schema.wake(&none);
    let text = deferred.report().to_string();
    assert!(
        text.starts_with("stayed at version 2: schema not current: version 3 failed 1 time(s)"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");

    // An error before any migration (an edited history) stays the error's line.
    let mut edited = DUPLICATES.to_vec();
    edited[1].1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n";
    let text = self::schema(&edited).wake(&none).report().to_string();
    assert!(
        text.starts_with("stayed at version 2: migration 0002_add_notes.sql (version 2) differs"),
        "{text}"
    );

    // A completed run has no failure.
    let fresh = open(&dir.db("fresh.db"));
    let ok = prefix(&schema, 2).wake(&fresh);
    assert_eq!(ok.report().failed(), None);
    assert_eq!(
        ok.report().to_string(),
        "migrated from version 0 to 2 (0001_create_items.sql, 0002_add_notes.sql)"
    );
    assert_eq!(
        prefix(&schema, 2).wake(&fresh).report().to_string(),
        "database current at version 2"
    );
}

/// A hand-rolled table is adopted in the transaction of the first pending
/// migration: when that migration fails, nothing was adopted, and the
/// report does not say so.
#[test]
fn a_failed_adoption_is_not_reported_as_adopted() {
    let dir = TempDir::new("wake-adopt-fails");
    let conn = open(&dir.db("app.db"));
    let schema = schema(DUPLICATES);
    for m in &schema.migrations()[..2] {
        conn.execute_batch(m.sql()).unwrap();
    }
    conn.execute_batch(HAND_ROLLED).unwrap();
    conn.execute_batch(
        "INSERT INTO migrations VALUES (1, 't', 'create_items');
         INSERT INTO migrations VALUES (2, 't', 'add_notes');",
    )
    .unwrap();
    let wake = schema.wake(&conn);
    assert!(matches!(
        wake.error(),
        Some(MigrateError::Statement { version: 3, .. })
    ));
    assert!(!wake.report().adopted());
    let text = wake.report().to_string();
    assert!(text.starts_with("stayed at version 2: "), "{text}");
    assert!(!text.contains("adopted"), "{text}");
    assert_eq!(
        schema.status(&conn).unwrap().state(),
        SchemaState::Unadopted,
        "the hand-rolled table is as it was"
    );
}

/// `Status` shows the failure record a wake-up left, read-only: which
/// version and file, the error, attempts, when, and when the next attempt
/// is allowed; other code does not wait for it; a success clears it.
#[test]
fn status_shows_the_failure_record() {
    let dir = TempDir::new("status-failure");
    let path = dir.db("app.db");
    let conn = open(&path);
    let schema = schema(DUPLICATES);
    prefix(&schema, 2).migrate(&conn).unwrap();
    let read_only =
        || Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    // No failure table yet: no record, and no error.
    assert_eq!(schema.status(&read_only()).unwrap().failure(), None);

    assert!(schema.wake(&conn).error().is_some());
    assert!(schema.wake(&conn).error().is_some(), "deferred");
    let status = schema.status(&read_only()).unwrap();
    assert_eq!(status.state(), SchemaState::Behind);
    let failure = status.failure().expect("the record");
    assert_eq!(failure.version(), 3);
    assert_eq!(failure.file(), Some("0003_unique_items.sql"));
    assert!(
        failure.error().starts_with(
            "migration 0003_unique_items.sql (version 3) failed at statement 2 \
             (0003_unique_items.sql:2:1): UNIQUE constraint failed: items.name"
        ),
        "{}",
        failure.error()
    );
    assert_eq!(failure.attempts(), 1, "a deferred wake-up is no attempt");
    let recorded: String = conn
        .query_row("SELECT attempted_at FROM migrations_failure", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(failure.failed_at(), recorded);
    assert!(failure.by_this_code());
    assert!((1..=60).contains(&failure.retry_in_secs()));
    let next = failure.next_attempt_after().expect("this code waits");
    let gap: i64 = conn
        .query_row(
            "SELECT CAST(round((julianday(?2) - julianday(?1)) * 86400) AS INTEGER)",
            [failure.failed_at(), next],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gap, 60, "retry_after after the failure: {next}");
    let shown = status.to_string();
    assert!(
        shown.contains(&format!(
            "\n  failed   0003  0003_unique_items.sql  1 attempt, last {recorded}: migration \
             0003_unique_items.sql (version 3) failed at statement 2"
        )),
        "{shown}"
    );
    assert!(
        shown
            .trim_end()
            .ends_with(&format!("; next attempt after {next} or with new code")),
        "{shown}"
    );

    // New code does not wait for it.
    let mut fixed_files = DUPLICATES.to_vec();
    fixed_files[2] = (
        "0003_unique_items.sql",
        "DELETE FROM items WHERE id NOT IN (SELECT min(id) FROM items GROUP BY name);\n\
         CREATE UNIQUE INDEX items_name ON items(name);\n",
    );
    let fixed = self::schema(&fixed_files);
    let other = fixed.status(&read_only()).unwrap();
    let failure = other.failure().expect("the record");
    assert!(!failure.by_this_code());
    assert_eq!(
        (failure.retry_in_secs(), failure.next_attempt_after()),
        (0, None)
    );
    assert!(
        other.to_string().contains("recorded by other code"),
        "{other}"
    );

    // A success clears it.
    assert_eq!(fixed.wake(&conn).error(), None);
    assert_eq!(fixed.status(&read_only()).unwrap().failure(), None);
}

/// The first migration of a new object fails: the tracking table was rolled
/// back with it, the failure record was not, and `status` shows it.
#[test]
fn status_shows_the_failure_record_of_a_new_object() {
    let dir = TempDir::new("status-failure-fresh");
    let conn = open(&dir.db("app.db"));
    conn.execute_batch("CREATE TABLE items (x)").unwrap();
    let schema = schema(DUPLICATES);
    let wake = schema.wake(&conn);
    assert!(
        wake.report().to_string().starts_with(
            "stayed at version 0: 0001_create_items.sql failed at statement 1 \
             (0001_create_items.sql:1:1): table items already exists"
        ),
        "{}",
        wake.report()
    );
    assert!(!has_table(&conn, "migrations"));
    let status = schema.status(&conn).unwrap();
    assert_eq!(status.state(), SchemaState::Fresh);
    let failure = status.failure().expect("the record");
    assert_eq!(
        (failure.version(), failure.file()),
        (1, Some("0001_create_items.sql"))
    );
}
