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

#[durable_schema(dir = "tests/fixtures/testing/seeded")]
struct Seeded;

fn count(db: &DurableObjectDb, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn version(db: &DurableObjectDb, schema: &Schema) -> u32 {
    schema.status(db).unwrap().db_version()
}

// The example of docs/testing.md ("Test your upgrade paths"), as it is written there
// (`readme_example_is_this_file` keeps the two equal): run with the first
// 0004, which must fail with the message the page shows, and with the
// fixed one.
macro_rules! readme_example {
    ($(#[$attr:meta])*) => {
        #[test]
        $(#[$attr])*
        fn objects_with_duplicate_emails_upgrade_to_4() {
            // An object that has lived at version 3, holding what it could hold then.
            let db = testing::at_version(&Chat::SCHEMA, 3);
            db.exec(
                "INSERT INTO users (id, email, name) VALUES (1, 'ada@example.com', 'Ada'), (2, 'ADA@example.com', 'Ada L.');
                 INSERT INTO posts (user_id, body) VALUES (1, 'hello'), (2, 'again');",
            )
            .unwrap();
            db.end_event().unwrap(); // the request that wrote them is over: workerd commits

            // The new deploy: its constructor migrates, then workerd commits the event.
            let report = Chat::SCHEMA.migrate(&db).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(report.to_version(), 4);
            db.end_event().unwrap();

            let users: i64 = db.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
            assert_eq!(users, 1);
            let posts: i64 = db.query_row("SELECT count(*) FROM posts WHERE user_id = 1", [], |r| r.get(0)).unwrap();
            assert_eq!(posts, 2, "no post lost");
        }
    };
}

mod readme_first_0004 {
    use durable_schema::testing;

    #[durable_schema::durable_schema(dir = "tests/fixtures/testing/unique-email")]
    struct Chat;

    readme_example!(#[should_panic(
        expected = "migration 0004_unique_email.sql (version 4) failed at statement 1 (0004_unique_email.sql:1:1): UNIQUE constraint failed: index 'users_email'; it was rolled back: fix the statement or the data it trips over, then deploy again"
    )]);
}

mod readme_fixed_0004 {
    use durable_schema::testing;

    #[durable_schema::durable_schema(dir = "tests/fixtures/testing/unique-email-fixed")]
    struct Chat;

    readme_example!();
}

/// The lines of `text` from the one starting with `first` to the next one
/// that is `}` alone, trimmed.
fn block<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("no line starts with {first:?}"));
    let len = lines[start..]
        .iter()
        .position(|l| *l == "}")
        .expect("the block ends");
    lines[start..=start + len].to_vec()
}

#[test]
fn readme_example_is_this_file() {
    let readme = include_str!("../docs/testing.md");
    let this = include_str!("testing.rs");
    let first = "fn objects_with_duplicate_emails_upgrade_to_4()";
    assert_eq!(block(readme, first), block(this, first));
    for sql in [
        "unique-email/0004_unique_email.sql",
        "unique-email-fixed/0004_unique_email.sql",
    ] {
        let path = format!(
            "{}/tests/fixtures/testing/{sql}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        assert!(readme.contains(&text), "docs/testing.md shows {sql}");
    }
    // What `readme_first_0004` expects.
    let message = "migration 0004_unique_email.sql (version 4) failed at statement 1 (0004_unique_email.sql:1:1): UNIQUE constraint failed: index 'users_email'; it was rolled back: fix the statement or the data it trips over, then deploy again";
    assert!(readme.contains(&format!("```text\n{message}\n```")));
}

#[test]
fn the_fixed_0004_does_not_lose_posts_of_merged_accounts() {
    let db = testing::at_version(&Fixed::SCHEMA, 3);
    db.exec(
        "INSERT INTO users (id, email) VALUES (1, 'b@x'), (2, 'a@x'), (3, 'B@X'), (4, 'A@x');
         INSERT INTO posts (user_id, body) VALUES (1, 'b1'), (2, 'a2'), (3, 'b3'), (4, 'a4');",
    )
    .unwrap();
    db.end_event().unwrap();
    Fixed::SCHEMA.migrate(&db).unwrap();
    db.end_event().unwrap();
    let owners = db
        .query_rows("SELECT body, user_id FROM posts ORDER BY body", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .unwrap();
    let expected = [("a2", 2), ("a4", 2), ("b1", 1), ("b3", 1)];
    let expected: Vec<(String, i64)> = expected.iter().map(|(b, u)| (b.to_string(), *u)).collect();
    assert_eq!(owners, expected);
    // Broken's 0004 fails on the same rows; its 0001..0003 are the same files.
    assert_eq!(
        Broken::SCHEMA.migrations()[2].chain(),
        Fixed::SCHEMA.migrations()[2].chain()
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
                m.statements().__spans(),
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

/// The whole database as text: every schema object, then every table's
/// rows by rowid. Reading it opens an event, which this ends.
fn snapshot(db: &DurableObjectDb) -> Vec<String> {
    let objects: Vec<(String, String)> = db
        .query_rows(
            "SELECT type, name FROM sqlite_master ORDER BY name",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut out = Vec::new();
    for (kind, name) in objects {
        out.push(format!("{kind} {name}"));
        if kind != "table" {
            continue;
        }
        let rows = db
            .query_rows(
                &format!("SELECT * FROM \"{name}\" ORDER BY rowid"),
                [],
                |r| {
                    let values = (0..r.as_ref().column_count())
                        .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(format!("  {}", values.join(", ")))
                },
            )
            .unwrap();
        out.extend(rows);
    }
    db.end_event().unwrap();
    out
}

/// An object at version 1 of `Seeded` (its seed row and a user's row)
/// whose tracking table records nothing: the executor's own table emptied,
/// or a hand-rolled `(version, applied_at, description)` one.
fn seeded_without_history(hand_rolled: bool) -> DurableObjectDb {
    let db = testing::at_version(&Seeded::SCHEMA, 1);
    db.exec("INSERT INTO users (name) VALUES ('ada')").unwrap();
    if hand_rolled {
        db.exec(
            "DROP TABLE migrations; CREATE TABLE migrations (version INTEGER PRIMARY KEY, \
             applied_at TEXT NOT NULL, description TEXT NOT NULL)",
        )
        .unwrap();
    } else {
        db.exec("DELETE FROM migrations").unwrap();
    }
    db.end_event().unwrap();
    db
}

#[test]
fn an_empty_hand_rolled_table_over_user_data_is_refused_like_our_own() {
    let expected = MigrateError::EmptyHistory {
        table: "migrations",
        user_table: "users".into(),
    };
    for hand_rolled in [true, false] {
        let db = seeded_without_history(hand_rolled);
        let before = snapshot(&db);
        assert_eq!(Seeded::SCHEMA.migrate(&db).unwrap_err(), expected);
        // The constructor's hook: the same refusal on every wake-up, no
        // failure record (nothing was attempted), and the event commits.
        for _ in 0..2 {
            let wake = Seeded::SCHEMA.wake(&db);
            assert_eq!(wake.error(), Some(&expected), "hand-rolled {hand_rolled}");
            assert!(wake.report().applied().is_empty());
            db.end_event().unwrap();
        }
        // Not a seed row twice, not a column added: nothing written.
        assert_eq!(snapshot(&db), before, "hand-rolled {hand_rolled}");
        assert_eq!(count(&db, "SELECT count(*) FROM users"), 2);
    }
}

#[test]
fn an_empty_hand_rolled_table_over_an_empty_object_is_a_fresh_start() {
    let db = DurableObjectDb::new();
    db.exec("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at, description)")
        .unwrap();
    db.end_event().unwrap();
    let wake = Seeded::SCHEMA.wake(&db);
    assert!(wake.error().is_none(), "{:?}", wake.error());
    assert_eq!(wake.report().applied().len(), 2);
    db.end_event().unwrap();
    assert_eq!(version(&db, &Seeded::SCHEMA), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM users"), 1, "seeded once");
}

/// The failure record through the Durable Object backend: `status` (the
/// same code as natively) shows it, between events too, and `Report`'s
/// line says what the failed run did.
#[test]
fn status_shows_the_failure_record_on_a_durable_object() {
    let db = testing::at_version(&Broken::SCHEMA, 2);
    db.exec("INSERT INTO users (id, email) VALUES (1, 'a@example.com'), (2, 'A@example.com')")
        .unwrap();
    db.end_event().unwrap();
    // No failure table: no record, no error.
    assert_eq!(Broken::SCHEMA.status(&db).unwrap().failure(), None);

    let wake = Broken::SCHEMA.wake(&db);
    db.end_event().unwrap();
    let text = wake.report().to_string();
    assert!(
        text.starts_with(
            "migrated from version 2 to 3 (0003_add_user_name.sql), then 0004_unique_email.sql \
             failed at statement "
        ),
        "{text}"
    );
    let status = Broken::SCHEMA.status(&db).unwrap();
    let failure = status.failure().expect("the record");
    assert_eq!(
        (failure.version(), failure.file(), failure.attempts()),
        (4, Some("0004_unique_email.sql"), 1)
    );
    assert!(failure.by_this_code());
    assert!(failure.next_attempt_after().is_some());
    assert!(
        status
            .to_string()
            .contains("\n  failed   0004  0004_unique_email.sql  1 attempt, last "),
        "{status}"
    );
    // The fixed code does not wait for it.
    let other = Fixed::SCHEMA.status(&db).unwrap();
    assert_eq!(other.failure().map(|f| f.by_this_code()), Some(false));
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

/// The example Worker's `bad` build (examples/worker-chat: migrations/ plus
/// variants/v3 and variants/bad), copied: `scripts/e2e.sh` runs the same
/// failure in workerd and compares its error with this one.
#[durable_schema(dir = "tests/fixtures/crosscheck")]
struct ChatRoomBad;

#[test]
fn crosscheck_fixture_is_the_example_workers_bad_build() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (copy, source) in [
        (
            "0001_create_messages.sql",
            "migrations/0001_create_messages.sql",
        ),
        (
            "0002_index_messages_by_author.sql",
            "migrations/0002_index_messages_by_author.sql",
        ),
        (
            "0003_add_reactions.sql",
            "variants/v3/0003_add_reactions.sql",
        ),
        (
            "0004_unique_messages.sql",
            "variants/bad/0004_unique_messages.sql",
        ),
    ] {
        let copy = std::fs::read(root.join("tests/fixtures/crosscheck").join(copy)).unwrap();
        let source = std::fs::read(root.join("examples/worker-chat").join(source)).unwrap();
        assert_eq!(
            copy, source,
            "tests/fixtures/crosscheck drifted from the example"
        );
    }
}

/// The e2e's room alpha when the bad build meets it: version 3, a reaction,
/// a double-post. The model gives the error workerd gives (the e2e compares
/// the two, field by field, with `DS_CROSSCHECK_OUT` set).
#[test]
fn crosscheck_the_bad_0004_on_alpha() {
    let db = testing::at_version(&ChatRoomBad::SCHEMA, 3);
    db.exec(
        "INSERT INTO messages (author, body, reactions) VALUES \
         ('alice', 'hello', 1), ('bob', 'hi', 0), ('bob', 'hi', 0)",
    )
    .unwrap();
    db.end_event().unwrap();
    let wake = ChatRoomBad::SCHEMA.wake(&db);
    let err = wake.error().expect("0004 fails on the double-post");
    assert_eq!(
        err,
        &MigrateError::Statement {
            version: 4,
            file: "0004_unique_messages.sql",
            statement: 2,
            line: 9,
            column: 1,
            message: "UNIQUE constraint failed: messages.author, messages.body".into(),
        }
    );
    db.end_event().unwrap();
    // The first statement left no trace; version 3 stays.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sqlite_master WHERE name = 'moderation'"
        ),
        0
    );
    assert_eq!(version(&db, &ChatRoomBad::SCHEMA), 3);
    if let Some(out) = std::env::var_os("DS_CROSSCHECK_OUT") {
        std::fs::write(out, err.to_json()).unwrap();
    }
}
