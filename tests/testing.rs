//! Upgrade paths tested the way users test theirs (`durable_schema::testing`):
//! schemas built by the attribute from fixture directories, the rows of an
//! older version put in a database that behaves like a Durable Object's,
//! then the upgrade, and what survives each event.
//!
//! The cases a plain SQLite cannot show: a foreign key left violated under
//! deferral passes its migration's savepoint and fails only at workerd's
//! commit of the whole event, unless the migration ends with the check the
//! compiler planned; and a failing migration is rolled back alone while
//! the run's earlier ones stay committed.
//!
//! The facade's tests run with the feature `testing` on (the package's
//! dev-dependency on itself), so `cargo test --workspace` runs this file.

use durable_schema::testing::{self, DurableObjectDb};
use durable_schema::{durable_schema, MigrateError, Migration, Schema};

#[durable_schema(dir = "tests/fixtures/testing/unique-email")]
struct Broken;

#[durable_schema(dir = "tests/fixtures/testing/unique-email-fixed")]
struct Fixed;

#[durable_schema(dir = "tests/fixtures/testing/lost-parent")]
struct LostParent;

fn count(db: &DurableObjectDb, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn version(db: &DurableObjectDb, schema: &Schema) -> u32 {
    schema.status(db).unwrap().db_version()
}

/// The README's example ("Test your upgrade paths"), as it is written there.
#[test]
fn readme_unique_email_fails_on_duplicates_and_the_fix_passes() {
    fn seeded(schema: &Schema) -> DurableObjectDb {
        let db = testing::at_version(schema, 3);
        db.exec(
            "INSERT INTO users (id, email, name) VALUES (1, 'ada@example.com', 'Ada'), (2, 'ADA@example.com', 'Ada L.');
             INSERT INTO posts (user_id, body) VALUES (1, 'hello'), (2, 'again');",
        )
        .unwrap();
        db.end_event().unwrap();
        db
    }

    // The first 0004: a unique index over data that has duplicates.
    let db = seeded(&Broken::SCHEMA);
    let err = Broken::SCHEMA.migrate(&db).unwrap_err();
    assert!(
        matches!(
            &err,
            MigrateError::Statement { version: 4, file: "0004_unique_email.sql", statement: 1, message, .. }
                if message.contains("UNIQUE constraint failed")
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0004_unique_email.sql"), "{err}");
    db.end_event().unwrap();
    assert_eq!(version(&db, &Broken::SCHEMA), 3);

    // The fixed 0004 merges the duplicates first.
    let db = seeded(&Fixed::SCHEMA);
    let report = Fixed::SCHEMA.migrate(&db).unwrap();
    assert_eq!((report.from_version(), report.to_version()), (3, 4));
    db.end_event().unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM posts WHERE user_id = 1"),
        2,
        "no post lost"
    );
}

/// The schema `LostParent::SCHEMA` without the foreign-key check the
/// compiler planned for its migrations: what a migrator that trusts the
/// savepoint would run.
fn without_planned_checks(schema: &Schema) -> Schema {
    let unchecked: Vec<Migration> = schema
        .migrations()
        .iter()
        .map(|m| {
            Migration::__new(
                m.version(),
                m.name(),
                m.description(),
                m.sql(),
                m.checksum(),
                m.chain(),
                m.statements(),
            )
        })
        .collect();
    Schema::__new(
        schema.table(),
        schema.strict(),
        Box::leak(unchecked.into_boxed_slice()),
    )
}

/// Version 1 with a post whose author has no name: the rebuild to
/// `name NOT NULL` drops that author.
fn lost_parent_at_1() -> DurableObjectDb {
    let db = testing::at_version(&LostParent::SCHEMA, 1);
    db.exec(
        "INSERT INTO users (id, name) VALUES (1, 'ada'), (2, NULL);
         INSERT INTO posts (id, user_id) VALUES (10, 1), (11, 2);",
    )
    .unwrap();
    db.end_event().unwrap();
    db
}

#[test]
fn the_compiler_plans_a_foreign_key_check_for_the_deferred_rebuild() {
    let m = &LostParent::SCHEMA.migrations()[1];
    assert_eq!(m.foreign_key_checks(), ["posts"]);
    let unchecked = without_planned_checks(&LostParent::SCHEMA);
    assert!(unchecked.migrations()[1].foreign_key_checks().is_empty());
    assert_eq!(unchecked.migrations()[1].chain(), m.chain(), "same files");
}

#[test]
fn without_the_check_a_deferred_violation_passes_the_savepoint_and_fails_the_event() {
    let unchecked = without_planned_checks(&LostParent::SCHEMA);
    let db = lost_parent_at_1();
    // The migration's savepoint is released: the run reports success.
    let report = unchecked.migrate(&db).unwrap();
    assert_eq!(report.to_version(), 2);
    assert_eq!(version(&db, &unchecked), 2, "inside the event");
    // workerd's commit of the event finds the orphan and resets the object.
    let err = db.end_event().unwrap_err();
    assert!(
        err.message().contains("FOREIGN KEY constraint failed"),
        "{err}"
    );
    assert_eq!(version(&db, &unchecked), 1, "the whole event is gone");
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 2);
    // Nothing recorded the failure either, so every wake-up runs it again.
    let wake = unchecked.wake(&db);
    assert!(wake.error().is_none(), "{:?}", wake.error());
    assert_eq!(wake.report().to_version(), 2);
    db.end_event().unwrap_err();
    assert_eq!(version(&db, &unchecked), 1);
}

#[test]
fn with_the_planned_check_the_migration_fails_naming_its_file() {
    let db = lost_parent_at_1();
    let err = LostParent::SCHEMA.migrate(&db).unwrap_err();
    match &err {
        MigrateError::ForeignKey {
            version,
            file,
            table,
            rowid,
            parent,
        } => {
            assert_eq!(*version, 2);
            assert_eq!(*file, "0002_users_name_not_null.sql");
            assert_eq!(
                (table.as_str(), *rowid, parent.as_str()),
                ("posts", Some(11), "users")
            );
        }
        other => panic!("expected a foreign-key error, got {other}"),
    }
    assert!(
        err.to_string().contains("0002_users_name_not_null.sql"),
        "{err}"
    );
    // Rolled back to its savepoint: the event commits, at version 1.
    db.end_event().unwrap();
    assert_eq!(version(&db, &LostParent::SCHEMA), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 2);
    assert_eq!(
        count(&db, "PRAGMA defer_foreign_keys"),
        0,
        "deferral does not outlive the event"
    );
}

#[test]
fn wake_rolls_back_the_failing_migration_alone_and_keeps_the_earlier_ones() {
    let db = testing::at_version(&Broken::SCHEMA, 2);
    db.exec("INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'A@example.com')")
        .unwrap();
    db.end_event().unwrap();

    // The constructor's event: 0003 applies, 0004 fails.
    let wake = Broken::SCHEMA.wake(&db);
    assert!(
        matches!(
            wake.error(),
            Some(MigrateError::Statement {
                file: "0004_unique_email.sql",
                ..
            })
        ),
        "{:?}",
        wake.error()
    );
    assert_eq!(wake.report().from_version(), 2);
    assert_eq!(wake.report().to_version(), 3);
    assert_eq!(wake.report().applied().len(), 1);
    // The hook never fails the constructor, so workerd commits the event.
    db.end_event().unwrap();
    assert_eq!(version(&db, &Broken::SCHEMA), 3, "0003 stays applied");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'name'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'users_email'"
        ),
        0,
        "0004 is rolled back"
    );

    // The failure is recorded: the same code does not run it again...
    let again = Broken::SCHEMA.wake(&db);
    assert!(
        matches!(
            again.error(),
            Some(MigrateError::Deferred {
                version: 4,
                attempts: 1,
                ..
            })
        ),
        "{:?}",
        again.error()
    );
    db.end_event().unwrap();
    // ...and a deploy with the fixed 0004 runs at once and clears it.
    let fixed = Fixed::SCHEMA.wake(&db);
    assert!(fixed.error().is_none(), "{:?}", fixed.error());
    assert_eq!(fixed.report().to_version(), 4);
    db.end_event().unwrap();
    assert_eq!(version(&db, &Fixed::SCHEMA), 4);
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 1);
    assert!(Fixed::SCHEMA.wake(&db).report().is_noop());
}

#[test]
fn fixtures_a_durable_object_would_refuse_fail_here_too() {
    let db = testing::at_version(&Broken::SCHEMA, 4);
    for sql in [
        "BEGIN; INSERT INTO users (email) VALUES ('x'); COMMIT",
        "CREATE TEMP TABLE scratch (x)",
        "CREATE TABLE _cf_fixture (x)",
        "PRAGMA user_version = 3",
    ] {
        assert!(db.exec(sql).is_err(), "{sql}");
    }
    // The tracking table is the application's to read (and a test's to
    // write, as on a Durable Object).
    assert_eq!(count(&db, "SELECT max(version) FROM migrations"), 4);
}
