//! Old code over a newer schema (a rolled-back deploy, an object that has
//! not restarted yet), natively on both backends: SQLite through rusqlite,
//! and the Durable Object model of `durable_schema::testing`.
//!
//! Code at version 3 over a database an additive version 4 migrated keeps
//! serving; over a breaking version 4 (a dropped column) it stops with the
//! typed error of kind `incompatible`, before any query of the dropped
//! column, while status keeps working. The schemas are built by the
//! compiler from scratch directories, so the classes are the build's.

use std::path::PathBuf;

use durable_schema::testing::DurableObjectDb;
use durable_schema::{Class, MigrateError, Schema, SchemaState};
use durable_schema_compiler::{check_dir, runtime_schema, CacheSetting, Options};
use durable_schema_runtime::backend::Backend;
use rusqlite::Connection;

const V1: &str = "CREATE TABLE rooms (id TEXT PRIMARY KEY);\n";
const V2: &str =
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, room TEXT REFERENCES rooms (id), body TEXT);\n";
const V3: &str = "CREATE INDEX messages_room ON messages (room);\n";
const ADDITIVE: &str = "ALTER TABLE messages ADD COLUMN sent_at TEXT;\n";
const BREAKING: &str = "-- durable-schema: breaking\nALTER TABLE messages DROP COLUMN body;\n";

/// The schema the compiler builds from `files` (`0001_x.sql`, ...), in a
/// scratch directory named `name`.
fn schema(name: &str, files: &[(&str, &str)]) -> Schema {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("compat-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("m")).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join("m").join(file), text).unwrap();
    }
    let options = Options::default().with_cache(CacheSetting::Off);
    let plan = check_dir(&dir, "m", &options).unwrap_or_else(|e| panic!("{e:#?}"));
    let _ = std::fs::remove_dir_all(&dir);
    runtime_schema(&plan, "migrations").unwrap()
}

/// Code at version 4 whose last migration is `v4`, and the build of the
/// same code at version 3.
fn builds(name: &str, v4: &str) -> (Schema, Schema) {
    let new = schema(
        name,
        &[
            ("0001_rooms.sql", V1),
            ("0002_messages.sql", V2),
            ("0003_index.sql", V3),
            ("0004_change.sql", v4),
        ],
    );
    let old = Schema::__new("migrations", false, &new.migrations()[..3]);
    (new, old)
}

/// Runs `check` on a fresh rusqlite database and on a fresh Durable Object.
fn on_both(check: impl Fn(&dyn Backend, &dyn Fn(&str) -> rusqlite::Result<usize>)) {
    let conn = Connection::open_in_memory().unwrap();
    check(&conn, &|sql| conn.execute(sql, []));
    let db = DurableObjectDb::new();
    check(&db, &|sql| {
        db.execute(sql, [])
            .map_err(|e| rusqlite::Error::InvalidParameterName(e.to_string()))
    });
    db.end_event().unwrap();
}

#[test]
fn old_code_serves_over_an_additive_newer_migration() {
    let (new, old) = builds("additive", ADDITIVE);
    assert_eq!(new.migrations()[3].class(), Class::Additive);
    on_both(|backend, execute| {
        new.migrate(backend).unwrap();
        let report = old.migrate(backend).unwrap();
        assert_eq!(report.ahead(), Some(4));
        // Its queries still run.
        execute("INSERT INTO rooms VALUES ('r')").unwrap();
        execute("INSERT INTO messages (room, body) VALUES ('r', 'hello')").unwrap();
        assert_eq!(old.status(backend).unwrap().state(), SchemaState::Ahead);
    });
}

#[test]
fn old_code_over_a_breaking_newer_migration_stops_and_status_works() {
    let (new, old) = builds("breaking", BREAKING);
    let v4 = &new.migrations()[3];
    assert_eq!(v4.class(), Class::Breaking);
    assert_eq!(
        v4.findings(),
        "BC103 column `messages.body` dropped; DS102 values of column `messages.body` dropped"
    );
    on_both(|backend, _| {
        new.migrate(backend).unwrap();
        let err = old.migrate(backend).unwrap_err();
        assert_eq!(err.kind(), "incompatible");
        assert_eq!(
            err,
            MigrateError::Incompatible {
                db: 4,
                code: 3,
                version: 4,
                migration: "change".into(),
                findings: v4.findings().into(),
            }
        );
        assert!(
            err.to_string().starts_with(
                "database is at version 4, and version 4 (change) breaks code of version 3: BC103"
            ),
            "{err}"
        );
        let status = old.status(backend).unwrap();
        assert_eq!(status.state(), SchemaState::Incompatible { version: 4 });
        assert_eq!(status.incompatible(), Some(&err));
        assert_eq!(status.applied()[3].class(), Some(Class::Breaking));
        assert!(status
            .to_string()
            .contains("  breaks   0004  change  BC103"));
        // The code of version 4 serves again.
        assert!(new.migrate(backend).unwrap().is_noop());
    });
}

#[test]
fn the_check_reads_the_head_row_and_one_more() {
    let (new, old) = builds("rows", BREAKING);
    let conn = Connection::open_in_memory().unwrap();
    new.migrate(&conn).unwrap();
    let queries = std::cell::RefCell::new(Vec::new());
    let counting = Recording {
        conn: &conn,
        queries: &queries,
    };
    assert!(old.migrate(&counting).is_err());
    let queries = queries.borrow();
    assert_eq!(queries.len(), 2, "{queries:#?}");
    assert!(queries[1].contains("WHERE version = ?1"), "{queries:#?}");
    // Code and database agree: the one-row check, one statement.
    queries_of(&new, &conn, 1);
}

fn queries_of(schema: &Schema, conn: &Connection, expected: usize) {
    let queries = std::cell::RefCell::new(Vec::new());
    let recording = Recording {
        conn,
        queries: &queries,
    };
    assert!(schema.migrate(&recording).unwrap().is_noop());
    assert_eq!(queries.borrow().len(), expected, "{:#?}", queries.borrow());
}

/// A backend that records the queries it runs.
struct Recording<'a> {
    conn: &'a Connection,
    queries: &'a std::cell::RefCell<Vec<String>>,
}

impl Backend for Recording<'_> {
    fn query(
        &self,
        sql: &str,
        params: &[durable_schema_runtime::backend::Value],
    ) -> Result<durable_schema_runtime::backend::Rows, durable_schema_runtime::backend::BackendError>
    {
        self.queries.borrow_mut().push(sql.to_owned());
        self.conn.query(sql, params)
    }

    fn transaction(
        &self,
        steps: Vec<durable_schema_runtime::backend::Step>,
    ) -> Result<u64, durable_schema_runtime::backend::TxError> {
        self.conn.transaction(steps)
    }
}

#[test]
fn a_breaking_migration_stays_breaking_under_later_additive_ones() {
    let v5 = schema(
        "later",
        &[
            ("0001_rooms.sql", V1),
            ("0002_messages.sql", V2),
            ("0003_index.sql", V3),
            ("0004_change.sql", BREAKING),
            ("0005_more.sql", "CREATE TABLE reactions (emoji TEXT);\n"),
        ],
    );
    let at = |n: usize| Schema::__new("migrations", false, &v5.migrations()[..n]);
    on_both(|backend, _| {
        v5.migrate(backend).unwrap();
        let err = at(3).migrate(backend).unwrap_err();
        assert!(
            matches!(
                err,
                MigrateError::Incompatible {
                    db: 5,
                    version: 4,
                    ..
                }
            ),
            "{err}"
        );
        // Code that has the breaking migration runs as before.
        assert_eq!(at(4).migrate(backend).unwrap().ahead(), Some(5));
    });
}

#[test]
fn strict_still_refuses_any_newer_migration() {
    let (new, old) = builds("strict", ADDITIVE);
    let strict = Schema::__new("migrations", true, old.migrations());
    let conn = Connection::open_in_memory().unwrap();
    new.migrate(&conn).unwrap();
    assert!(old.migrate(&conn).is_ok());
    assert_eq!(
        strict.migrate(&conn).unwrap_err(),
        MigrateError::Ahead { db: 4, code: 3 }
    );
}

#[test]
fn tables_of_earlier_versions_are_upgraded_in_place() {
    let (new, old) = builds("upgrade", BREAKING);
    on_both(|backend, execute| {
        new.migrate(backend).unwrap();
        // The tracking table as durable-schema wrote it before classes.
        for column in ["class", "findings", "breaks_below"] {
            execute(&format!("ALTER TABLE migrations DROP COLUMN {column}")).unwrap();
        }
        // The first run of the new code upgrades it, applying nothing.
        let report = new.migrate(backend).unwrap();
        assert!(report.applied().is_empty());
        assert_eq!(report.to_version(), 4);
        let classes: Vec<Option<Class>> = new
            .status(backend)
            .unwrap()
            .applied()
            .iter()
            .map(|r| r.class())
            .collect();
        assert_eq!(
            classes,
            [
                Some(Class::Additive),
                Some(Class::Additive),
                Some(Class::Additive),
                Some(Class::Breaking)
            ]
        );
        assert!(new.migrate(backend).unwrap().is_noop());
        assert_eq!(old.migrate(backend).unwrap_err().kind(), "incompatible");
    });
}
