//! Valid SQLite that a Durable Object accepts must compile: each case below
//! is a migration directory the attribute checks at build time. The tests
//! then check the generated constants and apply the schema to a real SQLite,
//! so a case that compiled but embedded the wrong statements fails here.

use durable_schema::durable_schema;
use rusqlite::Connection;

fn objects(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT type || ':' || name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY 1")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn migrated(schema: &durable_schema::Schema) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    let report = schema.migrate(&conn).unwrap();
    assert_eq!(report.to_version(), schema.version());
    conn
}

/// The `body` of every row of the fixtures' `notes` table, in id order.
fn note_bodies(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT body FROM notes ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn has(conn: &Connection, object: &str) -> bool {
    objects(conn).iter().any(|o| o == object)
}

#[durable_schema(dir = "tests/fixtures/pass/triggers")]
struct Triggers;

#[test]
fn trigger_bodies_stay_whole() {
    assert_eq!(Triggers::CURRENT_SCHEMA_VERSION, 2);
    let m = &Triggers::SCHEMA.migrations()[1];
    assert_eq!(m.statements().len(), 2, "{:#?}", m.statements());
    assert!(m
        .statements()
        .get(0)
        .unwrap()
        .sql()
        .trim_end()
        .ends_with("END"));
    assert_eq!(m.statements().get(0).unwrap().line(), 2);
    let conn = migrated(&Triggers::SCHEMA);
    conn.execute_batch(
        "INSERT INTO items (name) VALUES ('a'); UPDATE items SET name = 'b'; DELETE FROM items;",
    )
    .unwrap();
    let actions: Vec<String> = conn
        .prepare("SELECT action FROM audit ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["update", "delete; with a semicolon"]);
}

#[durable_schema(dir = "tests/fixtures/pass/trigger-if-not-exists")]
struct TriggerIfNotExists;

#[test]
fn create_trigger_if_not_exists() {
    assert_eq!(TriggerIfNotExists::CURRENT_SCHEMA_VERSION, 1);
    assert_eq!(
        TriggerIfNotExists::SCHEMA.migrations()[0]
            .statements()
            .len(),
        3
    );
    let conn = migrated(&TriggerIfNotExists::SCHEMA);
    assert!(has(&conn, "trigger:t_bump"));
}

#[durable_schema(dir = "tests/fixtures/pass/fts5-options")]
struct Fts5Options;

#[test]
fn fts5_with_content_and_tokenize_options() {
    assert_eq!(Fts5Options::CURRENT_SCHEMA_VERSION, 1);
    let conn = migrated(&Fts5Options::SCHEMA);
    assert!(has(&conn, "table:docs_fts"));
    assert!(has(&conn, "table:docs_vocab"));
}

#[durable_schema(dir = "tests/fixtures/pass/strict-without-rowid")]
struct StrictWithoutRowid;

#[test]
fn strict_and_without_rowid_tables() {
    assert_eq!(StrictWithoutRowid::CURRENT_SCHEMA_VERSION, 1);
    let conn = migrated(&StrictWithoutRowid::SCHEMA);
    // STRICT is really in force: a text in an INTEGER column is refused.
    assert!(conn
        .execute("INSERT INTO kv (k, n) VALUES ('a', 'not a number')", [])
        .is_err());
}

#[durable_schema(dir = "tests/fixtures/pass/generated-columns")]
struct GeneratedColumns;

#[test]
fn generated_columns() {
    assert_eq!(GeneratedColumns::CURRENT_SCHEMA_VERSION, 1);
    let conn = migrated(&GeneratedColumns::SCHEMA);
    conn.execute_batch("INSERT INTO people (first, last, data) VALUES ('Ada', 'Lovelace', '{\"city\":\"London\"}')")
        .unwrap();
    let (full, city): (String, String) = conn
        .query_row("SELECT full_name, city FROM people", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((full.as_str(), city.as_str()), ("Ada Lovelace", "London"));
}

#[durable_schema(dir = "tests/fixtures/pass/partial-expression-indexes")]
struct PartialExpressionIndexes;

#[test]
fn partial_and_expression_indexes() {
    assert_eq!(PartialExpressionIndexes::CURRENT_SCHEMA_VERSION, 1);
    let conn = migrated(&PartialExpressionIndexes::SCHEMA);
    for index in ["orders_open", "orders_email_ci", "orders_total_rounded"] {
        assert!(has(&conn, &format!("index:{index}")), "{index}");
    }
}

#[durable_schema(dir = "tests/fixtures/pass/foreign-keys-off")]
struct ForeignKeysOff;

#[test]
fn pragma_foreign_keys_off_is_accepted() {
    assert_eq!(ForeignKeysOff::CURRENT_SCHEMA_VERSION, 2);
    let m = &ForeignKeysOff::SCHEMA.migrations()[1];
    assert_eq!(
        m.statements().get(0).unwrap().sql(),
        "PRAGMA foreign_keys=OFF"
    );
    migrated(&ForeignKeysOff::SCHEMA);
}

#[durable_schema(dir = "tests/fixtures/pass/defer-foreign-keys")]
struct DeferForeignKeys;

#[test]
fn pragma_defer_foreign_keys() {
    assert_eq!(DeferForeignKeys::CURRENT_SCHEMA_VERSION, 1);
    let conn = migrated(&DeferForeignKeys::SCHEMA);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[durable_schema(dir = "tests/fixtures/pass/table-rebuild")]
struct TableRebuild;

#[test]
fn table_rebuild_keeps_data() {
    assert_eq!(TableRebuild::CURRENT_SCHEMA_VERSION, 2);
    let conn = migrated(&TableRebuild::SCHEMA);
    let ages: i64 = conn
        .query_row(
            "SELECT sum(age) FROM users WHERE typeof(age) = 'integer'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ages, 77);
    assert!(!has(&conn, "table:users_new"));
}

#[durable_schema(dir = "tests/fixtures/pass/comments-strings")]
struct CommentsStrings;

#[test]
fn semicolons_in_comments_strings_and_identifiers() {
    assert_eq!(CommentsStrings::CURRENT_SCHEMA_VERSION, 1);
    assert_eq!(
        CommentsStrings::SCHEMA.migrations()[0].statements().len(),
        2
    );
    let conn = migrated(&CommentsStrings::SCHEMA);
    assert_eq!(
        note_bodies(&conn),
        ["it's; fine", "-- not a comment", "/* nor this */"]
    );
}

#[durable_schema(dir = "tests/fixtures/pass/drizzle-breakpoints")]
struct DrizzleBreakpoints;

#[test]
fn drizzle_statement_breakpoints() {
    assert_eq!(DrizzleBreakpoints::CURRENT_SCHEMA_VERSION, 1);
    assert_eq!(
        DrizzleBreakpoints::SCHEMA.migrations()[0]
            .statements()
            .len(),
        3
    );
    let conn = migrated(&DrizzleBreakpoints::SCHEMA);
    assert!(has(&conn, "index:accounts_email_unique"));
}

/// A drizzle-kit directory, as drizzle-kit writes it: `meta/_journal.json`
/// decides the order and the names, the files keep their `0000_` names.
#[durable_schema(dir = "tests/fixtures/pass/drizzle-journal")]
struct DrizzleJournal;

#[test]
fn drizzle_journal_directory() {
    assert_eq!(DrizzleJournal::CURRENT_SCHEMA_VERSION, 3);
    let seen: Vec<(u32, &str, &str, usize)> = DrizzleJournal::SCHEMA
        .migrations()
        .iter()
        .map(|m| (m.version(), m.name(), m.description(), m.statements().len()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "0000_wild_drizzle.sql", "wild_drizzle", 2),
            (2, "0001_brave_posts.sql", "brave_posts", 2),
            (3, "0002_quiet_flag.sql", "quiet_flag", 1),
        ]
    );
    let conn = Connection::open_in_memory().unwrap();
    // Foreign keys on, as on a Durable Object.
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let report = DrizzleJournal::migrate(&conn).unwrap();
    assert_eq!((report.from_version(), report.to_version()), (0, 3));
    conn.execute_batch(
        "INSERT INTO users (id, email) VALUES (1, 'a@example.com');
         INSERT INTO posts (author_id, body) VALUES (1, 'hello');",
    )
    .unwrap();
    let published: i64 = conn
        .query_row("SELECT published FROM posts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(published, 0);
    assert!(conn
        .execute(
            "INSERT INTO posts (author_id, body) VALUES (2, 'orphan')",
            []
        )
        .is_err());
    assert!(DrizzleJournal::migrate(&conn).unwrap().is_noop());

    // The journal's `when` of each entry comes through the compiler's plan,
    // next to what the macro embedded.
    let plan = durable_schema_compiler::check_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "tests/fixtures/pass/drizzle-journal",
        &durable_schema_compiler::Options::default(),
    )
    .unwrap();
    let whens: Vec<(u32, Option<u64>)> = plan
        .migrations
        .iter()
        .map(|m| (m.source.version, m.source.journal_when))
        .collect();
    assert_eq!(
        whens,
        [
            (1, Some(1_700_000_000_000)),
            (2, Some(1_700_000_360_000)),
            (3, Some(1_700_086_400_000)),
        ]
    );
    for (planned, embedded) in plan
        .migrations
        .iter()
        .zip(DrizzleJournal::SCHEMA.migrations())
    {
        assert_eq!(planned.checksum, embedded.checksum());
        assert_eq!(planned.chain, embedded.chain());
        // The runtime matches drizzle's ledger against these.
        assert_eq!(planned.source.journal_when, embedded.journal_when());
    }
    assert!(Example::SCHEMA
        .migrations()
        .iter()
        .all(|m| m.journal_when().is_none()));
}

/// The macro links the executor's drizzle path into a schema from a journal
/// (and only there: see `Paths`): a database with drizzle's history of the
/// first two files is taken over at version 2, and only the third runs.
#[test]
fn a_journal_schema_takes_drizzles_history_over() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE \"__drizzle_migrations\" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)",
    )
    .unwrap();
    for m in &DrizzleJournal::SCHEMA.migrations()[..2] {
        for s in m.statements().iter() {
            conn.execute_batch(s.sql()).unwrap();
        }
        let when = i64::try_from(m.journal_when().unwrap()).unwrap();
        conn.execute(
            "INSERT INTO \"__drizzle_migrations\" (hash, created_at) VALUES ('', ?1)",
            [when],
        )
        .unwrap();
    }
    let report = DrizzleJournal::migrate(&conn).unwrap();
    assert!(report.adopted());
    assert_eq!((report.from_version(), report.to_version()), (2, 3));
    assert_eq!(report.applied().len(), 1);
    // The same database under a schema without a journal: not drizzle's
    // history to take over, so the run starts from a fresh tracking table.
    let plain = Connection::open_in_memory().unwrap();
    plain
        .execute_batch(
            "CREATE TABLE \"__drizzle_migrations\" (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric)",
        )
        .unwrap();
    let report = Example::migrate(&plain).unwrap();
    assert!(!report.adopted());
    assert_eq!(report.from_version(), 0);
}

#[durable_schema(dir = "tests/fixtures/pass/crlf-bom")]
struct CrlfBom;

#[test]
fn crlf_and_bom_are_normalized() {
    assert_eq!(CrlfBom::CURRENT_SCHEMA_VERSION, 2);
    let m = &CrlfBom::SCHEMA.migrations()[0];
    assert!(!m.sql().contains('\r') && !m.sql().starts_with('\u{feff}'));
    // The checksum is that of the normalized text: the LF twin of the file
    // has the same one, so a Windows checkout never looks like an edit.
    let twin = "CREATE TABLE win (id INTEGER PRIMARY KEY,\n  label TEXT);\nINSERT INTO win (label) VALUES ('line');\n";
    assert_eq!(m.sql(), twin);
    assert_eq!(m.checksum(), durable_schema_compiler::checksum(twin));
    migrated(&CrlfBom::SCHEMA);
}

#[durable_schema(dir = "tests/fixtures/pass/raw-fences")]
struct RawFences;

/// The macro writes large texts as raw string literals, fenced with enough
/// `#`s, and falls back to an escaped literal for a carriage return (which
/// a raw literal cannot hold): the embedded texts must be the checked ones,
/// byte for byte.
#[test]
fn texts_with_quotes_hashes_and_carriage_returns_are_embedded_exactly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = "tests/fixtures/pass/raw-fences";
    let plan =
        durable_schema_compiler::check_dir(root, dir, &durable_schema_compiler::Options::default())
            .unwrap();
    let file = std::fs::read_to_string(root.join(dir).join("0001_quotes.sql")).unwrap();
    // CRLF, so the text is a literal of the macro's rather than the file's
    // own `include_str!`.
    assert!(file.contains("\r\n"));
    // The packed metadata decodes to the plan's migrations.
    let embedded = RawFences::SCHEMA.migrations();
    assert_eq!(embedded.len(), plan.migrations.len());
    assert_eq!(
        RawFences::SCHEMA.version(),
        RawFences::CURRENT_SCHEMA_VERSION
    );
    for (e, p) in embedded.iter().zip(&plan.migrations) {
        assert_eq!(
            (e.version(), e.name()),
            (p.source.version, p.source.name.as_str())
        );
        assert_eq!(
            (e.checksum(), e.chain()),
            (p.checksum.as_str(), p.chain.as_str())
        );
    }
    let m = &embedded[0];
    assert_eq!(m.sql(), file.replace("\r\n", "\n"));
    assert!(m.sql().contains("'\"##'"));
    let embedded = RawFences::SCHEMA.baseline().expect("a baseline");
    let planned = plan.baseline.as_ref().expect("a baseline");
    assert_eq!(embedded.sql(), planned.sql);
    assert!(embedded.sql().contains("say \"#hi\"#") && embedded.sql().contains('\r'));
    let conn = migrated(&RawFences::SCHEMA);
    assert_eq!(
        note_bodies(&conn),
        [
            "say \"#hi\"#",
            "\"##",
            "tab\there",
            "a carriage return: \r."
        ]
    );
}

#[durable_schema(dir = "tests/fixtures/pass/window-view")]
struct WindowView;

#[test]
fn view_with_window_functions() {
    assert_eq!(WindowView::CURRENT_SCHEMA_VERSION, 1);
    let conn = migrated(&WindowView::SCHEMA);
    conn.execute_batch("INSERT INTO scores VALUES ('a', 1, 10), ('b', 1, 20), ('a', 2, 5)")
        .unwrap();
    let place: i64 = conn
        .query_row(
            "SELECT place FROM leaderboard WHERE player = 'b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(place, 1);
}

/// The example schema of this repository (users, sessions, an index, a
/// trigger and an fts5 table) passes too, with a custom tracking table.
#[durable_schema(dir = "migrations", table = "schema_history", strict = true)]
struct Example;

#[test]
fn example_schema_with_options() {
    assert_eq!(Example::CURRENT_SCHEMA_VERSION, 3);
    assert_eq!(Example::SCHEMA.table(), "schema_history");
    assert!(Example::SCHEMA.strict());
    let conn = Connection::open_in_memory().unwrap();
    Example::migrate(&conn).unwrap();
    assert!(has(&conn, "table:schema_history"));
    assert!(has(&conn, "table:messages_fts"));
    // Chain values are consistent with the compiler's definition.
    let mut previous = String::new();
    for m in Example::SCHEMA.migrations() {
        assert_eq!(m.checksum(), durable_schema_compiler::checksum(m.sql()));
        previous = durable_schema_compiler::chain(&previous, m.version(), m.checksum());
        assert_eq!(m.chain(), previous);
    }
}

/// The user's item is re-emitted untouched: other attributes keep working in
/// either order around ours, and generic structs get the items too.
#[derive(Debug, Default, Clone, PartialEq)]
#[durable_schema(dir = "tests/fixtures/pass/triggers")]
#[allow(dead_code)]
struct DeriveBefore {
    field: u32,
}

#[durable_schema(dir = "tests/fixtures/pass/triggers")]
#[derive(Debug, Default)]
#[allow(dead_code)]
struct DeriveAfter<T: Default> {
    field: T,
}

#[test]
fn other_attributes_and_generics_keep_working() {
    let before = DeriveBefore { field: 7 };
    assert_eq!(before.clone(), before);
    assert_eq!(format!("{before:?}"), "DeriveBefore { field: 7 }");
    assert_eq!(DeriveBefore::CURRENT_SCHEMA_VERSION, 2);
    let after = DeriveAfter::<u8>::default();
    assert_eq!(format!("{after:?}"), "DeriveAfter { field: 0 }");
    assert_eq!(DeriveAfter::<u8>::CURRENT_SCHEMA_VERSION, 2);
    assert_eq!(DeriveAfter::<u8>::SCHEMA, Triggers::SCHEMA);
}

#[durable_schema(dir = "tests/fixtures/pass/deferred-rebuild")]
struct DeferredRebuild;

#[test]
fn rebuild_of_a_referenced_table_keeps_its_children() {
    assert_eq!(DeferredRebuild::CURRENT_SCHEMA_VERSION, 2);
    let conn = Connection::open_in_memory().unwrap();
    // Foreign keys on, as on a Durable Object.
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    DeferredRebuild::SCHEMA.migrate(&conn).unwrap();
    let posts: i64 = conn
        .query_row(
            "SELECT count(*) FROM posts JOIN users ON users.id = posts.user_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(posts, 1);
    assert!(!has(&conn, "table:users_backup"));
    // The rebuild defers its keys and drops a referenced table: the
    // executor checks the children of `users` before it commits; the first
    // migration (immediate keys only) needs no check.
    let checks: Vec<&[&str]> = DeferredRebuild::SCHEMA
        .migrations()
        .iter()
        .map(|m| m.foreign_key_checks())
        .collect();
    assert_eq!(checks, [&[][..], &["posts"][..]]);
}

/// Each file's text is embedded once: every statement is a slice of its
/// migration's text, not a copy.
#[test]
fn statements_are_slices_of_the_embedded_text() {
    for m in Example::SCHEMA.migrations() {
        let text = m.sql().as_bytes().as_ptr_range();
        assert!(!m.statements().is_empty());
        for s in m.statements() {
            let range = s.sql().as_bytes().as_ptr_range();
            assert!(
                text.start <= range.start && range.end <= text.end,
                "{}: `{}` is not inside the file's text",
                m.name(),
                s.sql()
            );
        }
    }
}

/// A released migration deliberately replaced: `replaces` in the lock.
#[durable_schema(dir = "tests/fixtures/pass/replaced-old")]
struct ReplacedOld;

#[durable_schema(dir = "tests/fixtures/pass/replaced")]
struct Replaced;

#[test]
fn a_replaced_release_keeps_objects_that_applied_the_old_text() {
    let old_checksum = ReplacedOld::SCHEMA.migrations()[1].checksum();
    assert_eq!(Replaced::SCHEMA.migrations()[1].replaces(), [old_checksum]);
    assert!(Replaced::SCHEMA.migrations()[0].replaces().is_empty());

    // An object on the old 0002: current on the fast path, then 0003 only.
    let conn = Connection::open_in_memory().unwrap();
    ReplacedOld::SCHEMA.migrate(&conn).unwrap();
    let report = Replaced::SCHEMA.migrate(&conn).unwrap();
    assert_eq!(
        (
            report.from_version(),
            report.to_version(),
            report.applied().len()
        ),
        (2, 3, 1)
    );
    let again = Replaced::SCHEMA.migrate(&conn).unwrap();
    assert!(again.is_noop());
    assert_eq!(again.rows_read(), 1);

    // An object whose old 0002 failed on duplicates: the new text applies.
    let conn = Connection::open_in_memory().unwrap();
    durable_schema::Schema::__new("migrations", false, &ReplacedOld::SCHEMA.migrations()[..1])
        .migrate(&conn)
        .unwrap();
    conn.execute_batch("INSERT INTO items (name) VALUES ('a'), ('a')")
        .unwrap();
    assert!(ReplacedOld::SCHEMA.migrate(&conn).is_err());
    let fixed = Replaced::SCHEMA.migrate(&conn).unwrap();
    assert_eq!((fixed.from_version(), fixed.to_version()), (1, 3));
}

#[durable_schema(dir = "tests/fixtures/pass/triggers", retry_after = 5)]
struct QuickRetry;

#[test]
fn retry_after_is_embedded() {
    assert_eq!(QuickRetry::SCHEMA.retry_after(), 5);
    assert_eq!(Example::SCHEMA.retry_after(), 60, "the default");
}

/// The macro embeds the up-to-date query; it must be the very statement the
/// executor would build (same quoting), or the fast path would diverge.
#[test]
fn embedded_head_query_matches_the_executor() {
    let schema = Example::SCHEMA;
    assert_eq!(
        schema.__head_query(),
        Some("SELECT version, chain, breaks_below FROM \"schema_history\" ORDER BY version DESC LIMIT 1")
    );
    let by_hand =
        durable_schema::Schema::__new(schema.table(), schema.strict(), schema.migrations());
    let conn = Connection::open_in_memory().unwrap();
    // A database migrated through the embedded query is current for the
    // formatted one, and the other way round.
    by_hand.migrate(&conn).unwrap();
    assert!(schema.migrate(&conn).unwrap().is_noop());
    assert!(by_hand.migrate(&conn).unwrap().is_noop());
}

/// A drizzle-kit directory with the lock `durable-schema lock --dir` wrote
/// (versions `idx` + 1, drizzle-kit's names): the build takes it, like
/// `check --locked` does.
#[durable_schema(dir = "tests/fixtures/pass/drizzle-locked")]
struct DrizzleLocked;

#[test]
fn a_drizzle_directory_with_its_lock() {
    assert_eq!(DrizzleLocked::CURRENT_SCHEMA_VERSION, 2);
    let plan = durable_schema_compiler::check_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "tests/fixtures/pass/drizzle-locked",
        &durable_schema_compiler::Options::default().require_lock(),
    )
    .unwrap();
    let locked: Vec<(u32, &str)> = plan
        .lock
        .as_ref()
        .unwrap()
        .entries
        .iter()
        .map(|e| (e.version, e.name.as_str()))
        .collect();
    assert_eq!(
        locked,
        [
            (1, "0000_create_messages.sql"),
            (2, "0001_index_by_author.sql")
        ]
    );
    let names: Vec<&str> = DrizzleLocked::SCHEMA
        .migrations()
        .iter()
        .map(|m| m.name())
        .collect();
    assert_eq!(
        names,
        ["0000_create_messages.sql", "0001_index_by_author.sql"]
    );
}

/// A D1 directory as wrangler's `d1 migrations create` numbered it for
/// years, from `0000_`: version = number + 1, the files keep their names.
#[durable_schema(dir = "tests/fixtures/pass/d1-zero")]
struct D1Zero;

#[test]
fn a_d1_directory_numbered_from_zero() {
    assert_eq!(D1Zero::CURRENT_SCHEMA_VERSION, 2);
    let seen: Vec<(u32, &str, &str)> = D1Zero::SCHEMA
        .migrations()
        .iter()
        .map(|m| (m.version(), m.name(), m.description()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, "0000_initial.sql", "initial"),
            (2, "0001_add_x.sql", "add_x")
        ]
    );
    let conn = migrated(&D1Zero::SCHEMA);
    let recorded: Vec<(u32, String)> = conn
        .prepare("SELECT version, description FROM migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        recorded,
        [(1, "initial".to_owned()), (2, "add_x".to_owned())]
    );
    conn.execute("INSERT INTO notes (body) VALUES ('hi')", [])
        .unwrap();
    let x: i64 = conn
        .query_row("SELECT x FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(x, 0);
    assert!(D1Zero::migrate(&conn).unwrap().is_noop());
}

#[durable_schema(dir = "tests/fixtures/pass/batch", budget_ms = 2500)]
struct Batched;

/// The statement after `-- durable-schema: batch`, and only it, is a batch
/// in the built schema; `budget_ms` reaches it (and defaults to 10000).
#[test]
fn a_batch_migration_compiles_with_its_mark_and_budget() {
    let marks: Vec<Vec<bool>> = Batched::SCHEMA
        .migrations()
        .iter()
        .map(|m| m.statements().iter().map(|s| s.is_batch()).collect())
        .collect();
    assert_eq!(marks, [vec![false, false], vec![false, true, false]]);
    let batch = Batched::SCHEMA.migrations()[1].statements().get(1).unwrap();
    assert_eq!((batch.line(), batch.column()), (4, 1));
    assert!(batch.sql().starts_with("UPDATE items SET w = v * 2"));
    assert_eq!(Batched::SCHEMA.budget_ms(), 2500);
    assert_eq!(Triggers::SCHEMA.budget_ms(), 10_000);
}

#[durable_schema(dir = "tests/fixtures/pass/batch", baseline = false)]
struct BatchedChain;

/// The macro links the phases of batched statements into a program whose
/// schema has a batch (`__with_batches`): without them the run would refuse
/// the migration instead of repeating its batch.
#[test]
fn a_batch_migration_runs_its_phases_through_the_macro() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let report = BatchedChain::SCHEMA.migrate(&conn).unwrap();
    assert_eq!(report.to_version(), 2);
    let (filled, wrong): (i64, i64) = conn
        .query_row(
            "SELECT count(w), count(*) FILTER (WHERE w IS NOT v * 2) FROM items",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((filled, wrong), (2500, 0));
}
