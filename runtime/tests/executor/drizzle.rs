//! Adopting drizzle-orm's Durable Object history (`__drizzle_migrations`)
//! when the code comes from a drizzle-kit journal directory.

use durable_schema_runtime::{MigrateError, Schema, SchemaState};
use rusqlite::Connection;

use crate::common::*;

/// drizzle-kit's files, with the journal `when` of each entry.
const FILES: &[(&str, &str, u64)] = &[
    (
        "0000_create_users.sql",
        "CREATE TABLE `users` (`id` integer PRIMARY KEY NOT NULL, `name` text NOT NULL);\n",
        1_700_000_000_000,
    ),
    (
        "0001_create_posts.sql",
        "CREATE TABLE `posts` (`id` integer PRIMARY KEY NOT NULL, `user_id` integer REFERENCES `users`(`id`));\n\
         --> statement-breakpoint\nCREATE INDEX `posts_user` ON `posts` (`user_id`);\n",
        1_700_000_100_000,
    ),
    (
        "0002_add_email.sql",
        "ALTER TABLE `users` ADD `email` text;\n",
        1_700_000_200_000,
    ),
];

/// The schema the macro builds from a journal directory: versions 1, 2, 3
/// for 0000, 0001, 0002, each with its `when`.
fn journal_schema(n: usize) -> Schema {
    let pairs: Vec<(String, String)> = FILES[..n]
        .iter()
        .enumerate()
        .map(|(i, (name, sql, _))| {
            // The test helper numbers files from 1; the names keep drizzle's.
            let (_, tag) = name.split_once('_').unwrap();
            (format!("{:04}_{tag}", i + 1), sql.to_string())
        })
        .collect();
    let base = schema(&as_pairs(&pairs));
    let migrations: Vec<_> = base
        .migrations()
        .iter()
        .zip(FILES)
        .map(|(m, (_, _, when))| m.__with_journal_when(*when))
        .collect();
    Schema::__new(
        "migrations",
        false,
        Box::leak(migrations.into_boxed_slice()),
    )
}

/// What drizzle's migrator leaves: its table (as 0.45 creates it) and the
/// files it applied, by index.
fn drizzle_applied(conn: &Connection, indexes: &[usize]) {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS \"__drizzle_migrations\" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)",
    )
    .unwrap();
    for &i in indexes {
        let (_, sql, when) = FILES[i];
        conn.execute_batch(sql).unwrap();
        conn.execute(
            "INSERT INTO \"__drizzle_migrations\" (\"hash\", \"created_at\") VALUES ('', ?1)",
            [when as i64],
        )
        .unwrap();
    }
}

fn drizzle_rows(conn: &Connection) -> Vec<(Option<i64>, String, i64)> {
    triples(
        conn,
        "SELECT id, hash, created_at FROM __drizzle_migrations ORDER BY created_at",
    )
}

#[test]
fn drizzle_history_is_adopted_and_the_rest_applied_once() {
    let dir = TempDir::new("drizzle-adopt");
    let conn = open(&dir.db("app.db"));
    drizzle_applied(&conn, &[0, 1]);
    conn.execute_batch("INSERT INTO users VALUES (1, 'ada')")
        .unwrap();
    let ledger_before = drizzle_rows(&conn);
    let schema = journal_schema(3);
    assert_eq!(
        schema.status(&conn).unwrap().state(),
        SchemaState::Unadopted
    );
    assert_eq!(schema.status(&conn).unwrap().db_version(), 2);

    let wake = schema.wake(&conn);
    // The log says it adopted, even though it also applied 0002.
    let line = wake.log_line("o", 0.0).unwrap();
    assert!(line.contains("\"outcome\":\"adopted\""), "{line}");
    assert!(line.contains("\"applied\":[3]"), "{line}");
    let report = wake.into_result().unwrap();
    assert!(report.adopted());
    assert_eq!(report.from_version(), 2);
    assert_eq!(report.to_version(), 3);
    assert_eq!(report.applied().len(), 1, "only 0002 ran");
    let rows = tracking(&conn, "migrations");
    assert_eq!(rows, expected_tracking(&schema, 3));
    // applied_at carries drizzle's created_at.
    let applied_at: String = conn
        .query_row(
            "SELECT applied_at FROM migrations WHERE version = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(applied_at, "2023-11-14T22:13:20.000Z");
    assert_eq!(
        drizzle_rows(&conn),
        ledger_before,
        "drizzle's table untouched"
    );
    let name: String = conn
        .query_row("SELECT name FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "ada", "data kept");

    // The next run is the one-row fast path.
    let counting = Counting::new(&conn);
    let again = schema.migrate(&counting).unwrap();
    assert!(again.is_noop());
    assert_eq!(
        (counting.queries.get(), counting.transactions.get()),
        (1, 0)
    );
    assert_eq!(again.rows_read(), 1);
}

#[test]
fn a_fully_applied_drizzle_history_is_adopted_alone() {
    let dir = TempDir::new("drizzle-current");
    let conn = open(&dir.db("app.db"));
    drizzle_applied(&conn, &[0, 1, 2]);
    let schema = journal_schema(3);
    let report = schema.migrate(&conn).unwrap();
    assert!(report.adopted() && report.applied().is_empty());
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 3));
}

/// drizzle applied 0000 and 0002 and skipped 0001 (its `when` was older
/// than 0002's when it was merged): reported, not skipped, nothing written.
#[test]
fn a_file_drizzle_skipped_is_reported() {
    let dir = TempDir::new("drizzle-gap");
    let conn = open(&dir.db("app.db"));
    // 0002 without 0001: run its SQL by hand as drizzle would have.
    drizzle_applied(&conn, &[0]);
    conn.execute_batch(FILES[2].1).unwrap();
    conn.execute(
        "INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('', ?1)",
        [FILES[2].2 as i64],
    )
    .unwrap();
    let before = dump(&conn);
    let schema = journal_schema(3);
    let err = schema.migrate(&conn).unwrap_err();
    assert_eq!(
        err,
        MigrateError::LedgerMismatch {
            table: "__drizzle_migrations",
            unmatched: vec![],
            missing: vec![2],
        }
    );
    assert!(
        err.to_string().contains("skipped by drizzle: version 2"),
        "{err}"
    );
    let json = err.to_json();
    assert!(
        json.contains("\"kind\":\"ledger_mismatch\",\"unmatched\":[],\"missing\":[2]"),
        "{json}"
    );
    // The run reports where drizzle left the object.
    assert_eq!(schema.wake(&conn).report().from_version(), 3);
    assert_eq!(dump(&conn), before, "nothing written");
    assert_eq!(schema.status(&conn).unwrap_err(), err);
}

#[test]
fn an_entry_matching_no_journal_entry_is_refused() {
    let dir = TempDir::new("drizzle-unmatched");
    let conn = open(&dir.db("app.db"));
    drizzle_applied(&conn, &[0]);
    conn.execute(
        "INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('', 42)",
        [],
    )
    .unwrap();
    let before = dump(&conn);
    let err = journal_schema(3).migrate(&conn).unwrap_err();
    assert_eq!(
        err,
        MigrateError::LedgerMismatch {
            table: "__drizzle_migrations",
            unmatched: vec![42],
            missing: vec![],
        }
    );
    assert_eq!(dump(&conn), before);
}

#[test]
fn a_plain_schema_never_reads_drizzles_table() {
    let dir = TempDir::new("drizzle-plain");
    let conn = open(&dir.db("app.db"));
    let plain = schema(&CHAT[..1]);
    let counting = Counting::new(&conn);
    plain.migrate(&counting).unwrap();
    // head query, what holds the name: nothing about drizzle.
    assert_eq!(counting.queries.get(), 2);
}
