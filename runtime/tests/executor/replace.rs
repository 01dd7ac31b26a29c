//! A released migration deliberately replaced (`replaces` in the history
//! lock): objects that applied the old text keep working without re-running
//! anything, objects that had not applied it apply the new text. The
//! chain links are computed here as the compiler derives them from the lock.

use durable_schema_compiler::chain;
use durable_schema_runtime::__ChainLink;
use durable_schema_runtime::{MigrateError, Migration, Schema, SchemaState};

use crate::common::*;

const OLD: &[(&str, &str)] = &[
    ("0001_create_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nINSERT INTO items (name) VALUES ('a'), ('a');\n"),
    ("0002_unique_items.sql", "CREATE UNIQUE INDEX items_name ON items(name);\n"),
    ("0003_notes.sql", "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n"),
    ("0004_tags.sql", "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n"),
];

/// 0002 fixed: remove the duplicates first.
const FIXED_0002: &str = "DELETE FROM items WHERE id NOT IN (SELECT min(id) FROM items GROUP BY name);\nCREATE UNIQUE INDEX items_name ON items(name);\n";

/// The code after the fix, first `n` migrations, with what the compiler
/// derives from a lock entry `2 0002_unique_items.sql <new> replaces <old>`:
/// the chain values of every history through the old text.
fn fixed(n: usize) -> Schema {
    let old = schema(OLD);
    let mut files = OLD.to_vec();
    files[1].1 = FIXED_0002;
    let new = schema(&files[..n]);
    let old_2 = old.migrations()[1];
    let mut links: Vec<Vec<__ChainLink>> = vec![Vec::new(); n];
    // Version 2 through the old text, then every later version on top.
    let mut prev = chain(old.migrations()[0].chain(), 2, old_2.checksum());
    links[1].push(__ChainLink::__new(
        leak(old.migrations()[0].chain()),
        leak(old_2.checksum()),
        leak(&prev),
    ));
    for m in &new.migrations()[2..] {
        let next = chain(&prev, m.version(), m.checksum());
        links[(m.version() - 1) as usize].push(__ChainLink::__new(
            leak(&prev),
            m.checksum(),
            leak(&next),
        ));
        prev = next;
    }
    let migrations: Vec<Migration> = new
        .migrations()
        .iter()
        .zip(links)
        .map(|(m, l)| {
            let replaces: &'static [&'static str] = if m.version() == 2 {
                Box::leak(vec![old_2.checksum()].into_boxed_slice())
            } else {
                &[]
            };
            m.__with_replacements(replaces, Box::leak(l.into_boxed_slice()))
        })
        .collect();
    Schema::__new(
        "migrations",
        false,
        Box::leak(migrations.into_boxed_slice()),
    )
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn unique_old_object(dir: &TempDir, name: &str) -> rusqlite::Connection {
    // An object whose data had no duplicates: the old 0002 applied fine.
    let conn = open(&dir.db(name));
    let old = schema(&OLD[..3]);
    prefix(&old, 1).migrate(&conn).unwrap();
    conn.execute_batch("DELETE FROM items WHERE id = 2")
        .unwrap();
    old.migrate(&conn).unwrap();
    conn
}

#[test]
fn an_object_that_applied_the_old_text_stays_current_on_the_fast_path() {
    let dir = TempDir::new("replace-current");
    let conn = unique_old_object(&dir, "app.db");
    let before = dump(&conn);
    let new = fixed(3);
    let counting = Counting::new(&conn);
    let report = new.migrate(&counting).unwrap();
    assert!(report.is_noop());
    assert_eq!(
        (counting.queries.get(), report.rows_read()),
        (1, 1),
        "one statement, one row"
    );
    assert_eq!(dump(&conn), before);
    assert_eq!(new.status(&conn).unwrap().state(), SchemaState::Current);
    // Without the lock entry the same code calls it an edit.
    let plain = {
        let mut files = OLD.to_vec();
        files[1].1 = FIXED_0002;
        schema(&files[..3])
    };
    assert!(matches!(
        plain.migrate(&conn),
        Err(MigrateError::Edited { version: 2, .. })
    ));
}

#[test]
fn later_migrations_chain_onto_the_old_text_and_stay_on_the_fast_path() {
    let dir = TempDir::new("replace-later");
    let conn = unique_old_object(&dir, "app.db");
    let new = fixed(4);
    let report = new.migrate(&conn).unwrap();
    assert_eq!(report.applied().len(), 1, "only 0004 ran");
    let counting = Counting::new(&conn);
    assert!(new.migrate(&counting).unwrap().is_noop());
    assert_eq!(counting.queries.get(), 1);
    assert_eq!(new.status(&conn).unwrap().state(), SchemaState::Current);
}

#[test]
fn an_object_that_failed_the_old_text_applies_the_new_one() {
    let dir = TempDir::new("replace-failed");
    let conn = open(&dir.db("app.db"));
    let old = schema(OLD);
    assert!(matches!(
        old.migrate(&conn),
        Err(MigrateError::Statement { version: 2, .. })
    ));
    let new = fixed(4);
    let report = new.migrate(&conn).unwrap();
    assert_eq!((report.from_version(), report.to_version()), (1, 4));
    // The new text's own history: the code's main chain values.
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&new, 4));
    let items: i64 = conn
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(items, 1, "the fixed 0002 removed the duplicate");
}
