//! The executor against real SQLite files: fresh apply, reruns, upgrades,
//! the one-statement up-to-date check, history checks, a database ahead of
//! the code, data-dependent failures, adoption and refusal of foreign tables.

use crate::common::*;
use durable_schema_runtime::__private::MigrateTarget;
use durable_schema_runtime::{MigrateError, Schema, SchemaState};
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::Connection;
use std::cell::RefCell;

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn data_version(conn: &Connection) -> i64 {
    count(conn, "PRAGMA data_version")
}

#[test]
fn fresh_database_gets_every_migration() {
    let dir = TempDir::new("fresh");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);

    let report = schema.migrate(&conn).unwrap();

    assert_eq!(report.from_version(), 0);
    assert_eq!(report.to_version(), 4);
    let names: Vec<_> = report.applied().iter().map(|m| m.name()).collect();
    assert_eq!(
        names,
        [
            "0001_create_users.sql",
            "0002_create_rooms.sql",
            "0003_add_email.sql",
            "0004_create_messages.sql"
        ]
    );
    assert_eq!(report.ahead(), None);
    assert!(!report.adopted());
    assert!(!report.is_noop());
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 4));
    assert_eq!(
        conn.query_row("SELECT email FROM users WHERE id = 1", [], |r| r
            .get::<_, String>(0))
            .unwrap(),
        "root@example.com"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM messages"), 1);
    assert_eq!(
        report.to_string(),
        "migrated from version 0 to 4 (0001_create_users.sql, 0002_create_rooms.sql, \
         0003_add_email.sql, 0004_create_messages.sql)"
    );
}

#[test]
fn rerun_is_a_no_op() {
    let dir = TempDir::new("rerun");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);
    schema.migrate(&conn).unwrap();
    let before = dump(&conn);
    let changes = conn.total_changes();

    let report = schema.migrate(&conn).unwrap();

    assert!(report.is_noop());
    assert!(report.applied().is_empty());
    assert_eq!((report.from_version(), report.to_version()), (4, 4));
    assert_eq!(report.rows_read(), 1);
    assert_eq!(conn.total_changes(), changes, "a no-op run wrote rows");
    assert_eq!(dump(&conn), before);
    assert_eq!(count(&conn, "SELECT count(*) FROM users"), 1);
    assert_eq!(report.to_string(), "database current at version 4");
}

#[test]
fn upgrade_applies_only_the_new_versions_and_keeps_data() {
    let dir = TempDir::new("upgrade");
    let path = dir.db("app.db");
    let schema = schema(CHAT);
    {
        let conn = open(&path);
        let old = prefix(&schema, 2);
        assert_eq!(old.migrate(&conn).unwrap().to_version(), 2);
        conn.execute_batch(
            "INSERT INTO users (name) VALUES ('ada');
             INSERT INTO rooms (title) VALUES ('lobby');
             INSERT INTO members VALUES (1, 2);",
        )
        .unwrap();
    }
    // Reopen: a new deploy against the same file.
    let conn = open(&path);
    let counting = Counting::new(&conn);

    let report = schema.migrate(&counting).unwrap();

    assert_eq!((report.from_version(), report.to_version()), (2, 4));
    let versions: Vec<_> = report.applied().iter().map(|m| m.version()).collect();
    assert_eq!(versions, [3, 4]);
    // One transaction per pending migration; the head query, and the
    // query for a batch's progress (another text's committed phases stop
    // the run), nothing else.
    assert_eq!(counting.transactions.get(), 2);
    assert_eq!(counting.queries.get(), 2);
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 4));
    assert_eq!(count(&conn, "SELECT count(*) FROM members"), 1);
    assert_eq!(
        conn.query_row("SELECT email FROM users WHERE name = 'ada'", [], |r| r
            .get::<_, String>(
            0
        ))
        .unwrap(),
        "ada@example.com"
    );
}

#[test]
fn descriptions_checksums_and_times_are_recorded() {
    let dir = TempDir::new("recorded");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);
    schema.migrate(&conn).unwrap();

    let rows = tracking(&conn, "migrations");
    for (row, m) in rows.iter().zip(schema.migrations()) {
        assert_eq!(row.0, i64::from(m.version()));
        assert_eq!(row.1, m.description());
        assert_eq!(row.2.as_deref(), Some(m.checksum()));
        assert_eq!(row.3.as_deref(), Some(m.chain()));
    }
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2].1, "add_email");

    // applied_at is written by SQLite as UTC ISO 8601 with milliseconds.
    let mut stmt = conn
        .prepare("SELECT applied_at FROM migrations ORDER BY version")
        .unwrap();
    let times: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in &times {
        assert_eq!(t.len(), "2025-01-31T12:00:00.000Z".len(), "{t}");
        assert_eq!(&t[10..11], "T", "{t}");
        assert!(t.ends_with('Z'), "{t}");
    }

    let status = schema.status(&conn).unwrap();
    assert_eq!(status.state(), SchemaState::Current);
    assert_eq!(status.applied()[1].description(), "create_rooms");
    assert_eq!(
        status.applied()[1].checksum(),
        Some(schema.migrations()[1].checksum())
    );
    assert_eq!(status.applied()[1].applied_at(), times[1]);
}

thread_local! {
    /// What the trace hook saw on this thread: statements, and rows stepped.
    /// rusqlite 0.40 takes a plain `fn` as the hook, so its state lives here;
    /// SQLite calls the hook on the thread running the statement.
    static TRACE: RefCell<(Vec<String>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

fn on_trace(event: TraceEvent<'_>) {
    TRACE.with(|t| {
        let mut t = t.borrow_mut();
        match event {
            TraceEvent::Stmt(_, sql) => t.0.push(sql.to_owned()),
            TraceEvent::Row(_) => t.1 += 1,
            _ => {}
        }
    });
}

/// Statements and rows SQLite runs while `f` runs, via the trace hook.
fn traced<T>(conn: &mut Connection, f: impl FnOnce(&Connection) -> T) -> (T, Vec<String>, usize) {
    TRACE.with(|t| *t.borrow_mut() = (Vec::new(), 0));
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT | TraceEventCodes::SQLITE_TRACE_ROW,
        Some(on_trace),
    );
    let out = f(conn);
    conn.trace_v2(TraceEventCodes::empty(), None);
    let (statements, rows) = TRACE.with(|t| t.borrow().clone());
    (out, statements, rows)
}

fn assert_one_statement_one_row(n: usize) {
    let dir = TempDir::new("fastpath");
    let mut conn = open(&dir.db("app.db"));
    let files = generated(n);
    let schema = schema(&as_pairs(&files));
    assert_eq!(schema.migrate(&conn).unwrap().applied().len(), n);

    let (report, statements, rows) = traced(&mut conn, |c| schema.migrate(c).unwrap());

    assert!(report.is_noop());
    assert_eq!(
        statements,
        ["SELECT version, chain, breaks_below FROM \"migrations\" ORDER BY version DESC LIMIT 1"],
        "at {n} migrations"
    );
    assert_eq!(rows, 1, "rows at {n} migrations");
    assert_eq!(report.rows_read(), 1);

    // The same through the Backend seam: one query, nothing else.
    let counting = Counting::new(&conn);
    schema.migrate(&counting).unwrap();
    assert_eq!(counting.queries.get(), 1);
    assert_eq!(counting.transactions.get(), 0);
}

#[test]
fn up_to_date_check_is_one_statement_reading_one_row_at_3_migrations() {
    assert_one_statement_one_row(3);
}

#[test]
fn up_to_date_check_is_one_statement_reading_one_row_at_300_migrations() {
    assert_one_statement_one_row(300);
}

/// The macro's packed schema: the decoder runs only when something needs
/// the migrations, never for a database already at the head.
#[test]
fn up_to_date_check_does_not_decode_the_packed_migrations() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static DECODED: AtomicUsize = AtomicUsize::new(0);
    fn decoded() -> &'static [durable_schema_runtime::Migration] {
        static CHAIN: OnceLock<&'static [durable_schema_runtime::Migration]> = OnceLock::new();
        DECODED.fetch_add(1, Ordering::SeqCst);
        CHAIN.get_or_init(|| migrations(&CHAT[..3]))
    }
    let plain = schema(&CHAT[..3]);
    let head = plain.migrations().last().unwrap();
    let packed = Schema::__packed("migrations", false, 3, head.chain(), decoded);

    let conn = Connection::open_in_memory().unwrap();
    plain.migrate(&conn).unwrap();
    let report = packed.migrate(&conn).unwrap();
    assert!(report.is_noop());
    assert_eq!(DECODED.load(Ordering::SeqCst), 0);
    // `status` lists the migrations, so it may decode them.
    assert_eq!(packed.status(&conn).unwrap().state(), SchemaState::Current);

    // A database behind the head needs them: decoded, and the same chain.
    let behind = Connection::open_in_memory().unwrap();
    schema(&CHAT[..2]).migrate(&behind).unwrap();
    assert_eq!(packed.migrate(&behind).unwrap().to_version(), 3);
    assert!(DECODED.load(Ordering::SeqCst) > 0);
    assert_eq!(packed.migrations(), plain.migrations());
}

#[test]
fn edited_migration_is_rejected_and_nothing_applied() {
    let dir = TempDir::new("edited");
    let conn = open(&dir.db("app.db"));
    let original = schema(&CHAT[..3]);
    original.migrate(&conn).unwrap();
    let before = dump(&conn);

    let mut files = CHAT.to_vec();
    files[1].1 = "CREATE TABLE rooms (id INTEGER PRIMARY KEY, title TEXT NOT NULL, topic TEXT);\n\
                  CREATE TABLE members (room INTEGER NOT NULL, user INTEGER NOT NULL);\n\
                  CREATE INDEX members_room ON members(room);\n";
    let edited = schema(&files);

    let err = edited.migrate(&conn).unwrap_err();

    assert_eq!(
        err,
        MigrateError::Edited {
            version: 2,
            file: "0002_create_rooms.sql",
            table: "migrations"
        }
    );
    let text = err.to_string();
    assert!(text.contains("0002_create_rooms.sql"), "{text}");
    assert!(text.contains("new migration"), "{text}");
    assert_eq!(dump(&conn), before, "something was applied");
    assert!(!has_table(&conn, "messages"));

    let status = edited.status(&conn).unwrap();
    assert_eq!(status.state(), SchemaState::Diverged { version: 2 });
    assert!(status.pending().is_empty());
}

#[test]
fn edit_below_the_head_is_found_by_the_walk() {
    // Only the last row is read on the fast path; the walk must still name
    // the first edited file, not the head.
    let dir = TempDir::new("edited-low");
    let conn = open(&dir.db("app.db"));
    schema(CHAT).migrate(&conn).unwrap();
    let mut files = CHAT.to_vec();
    files[0].1 = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n\
                  INSERT INTO users (name) VALUES ('root');\n";

    let err = schema(&files).migrate(&conn).unwrap_err();

    assert!(
        matches!(
            err,
            MigrateError::Edited {
                version: 1,
                file: "0001_create_users.sql",
                ..
            }
        ),
        "{err:?}"
    );
}

/// The compiler normalizes a BOM and CRLF line endings before hashing and
/// splitting, so a copy of the files checked out with CRLF embeds the same
/// text, statements (positions included), checksums and chain. The runtime
/// must accept the database migrated from the LF copy without re-applying
/// or rejecting anything.
#[test]
fn crlf_copy_with_the_same_checksum_passes() {
    let dir = TempDir::new("crlf");
    let conn = open(&dir.db("app.db"));
    let lf = schema(CHAT);
    lf.migrate(&conn).unwrap();

    let crlf_text: Vec<(String, String)> = CHAT
        .iter()
        .map(|(n, s)| {
            (
                n.to_string(),
                format!("\u{feff}{}", s.replace('\n', "\r\n")),
            )
        })
        .collect();
    let crlf = schema(&as_pairs(&crlf_text));
    assert_ne!(crlf_text[0].1, CHAT[0].1);
    assert_eq!(
        crlf.migrations()[3].checksum(),
        lf.migrations()[3].checksum()
    );
    // `sql()` is the normalized text, the statements slices of it.
    assert_eq!(crlf.migrations(), lf.migrations());

    let report = crlf.migrate(&conn).unwrap();
    assert!(report.is_noop());
    assert_eq!(crlf.status(&conn).unwrap().state(), SchemaState::Current);
}

#[test]
fn database_ahead_is_tolerated_and_nothing_is_written() {
    let dir = TempDir::new("ahead");
    let path = dir.db("app.db");
    let full = schema(CHAT);
    let mut conn = open(&path);
    full.migrate(&conn).unwrap();
    let before = dump(&conn);
    let rows_before = tracking(&conn, "migrations");
    // data_version, read on another connection, moves when any connection
    // commits a change to the file.
    let observer = open(&path);
    let observed = data_version(&observer);
    let changes = conn.total_changes();

    let rolled_back = prefix(&full, 3);
    let (report, statements, _) = traced(&mut conn, |c| rolled_back.migrate(c).unwrap());

    assert_eq!(report.ahead(), Some(4));
    assert!(report.applied().is_empty());
    assert_eq!((report.from_version(), report.to_version()), (4, 4));
    assert!(report.to_string().contains("ahead"), "{report}");
    // The head query and the check of the known prefix, both reads.
    assert_eq!(statements.len(), 2, "{statements:?}");
    assert!(
        statements.iter().all(|s| s.starts_with("SELECT")),
        "{statements:?}"
    );
    assert_eq!(conn.total_changes(), changes);
    assert_eq!(data_version(&observer), observed, "the file was written");
    assert_eq!(dump(&conn), before);
    assert_eq!(tracking(&conn, "migrations"), rows_before);

    let status = rolled_back.status(&conn).unwrap();
    assert_eq!(status.state(), SchemaState::Ahead);
    assert_eq!((status.db_version(), status.code_version()), (4, 3));
    assert!(status.pending().is_empty());
}

#[test]
fn database_ahead_is_an_error_when_strict() {
    let dir = TempDir::new("strict");
    let conn = open(&dir.db("app.db"));
    schema(CHAT).migrate(&conn).unwrap();
    let before = dump(&conn);
    let strict = schema_with("migrations", true, &CHAT[..2]);

    let err = strict.migrate(&conn).unwrap_err();

    assert_eq!(err, MigrateError::Ahead { db: 4, code: 2 });
    assert!(err.to_string().contains("strict"), "{err}");
    assert_eq!(dump(&conn), before);
}

#[test]
fn database_ahead_with_an_edited_prefix_is_rejected() {
    let dir = TempDir::new("ahead-edited");
    let conn = open(&dir.db("app.db"));
    schema(CHAT).migrate(&conn).unwrap();
    let mut files = CHAT[..3].to_vec();
    files[2].1 = "ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';\n";

    let err = schema(&files).migrate(&conn).unwrap_err();

    assert!(
        matches!(err, MigrateError::Edited { version: 3, .. }),
        "{err:?}"
    );
}

const UNIQUE: &[(&str, &str)] = &[
    (
        "0001_create_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n\
         INSERT INTO users (email) VALUES ('a@x'), ('a@x'), ('b@x');\n",
    ),
    (
        "0002_create_audit.sql",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);\n",
    ),
    (
        "0003_unique_email.sql",
        "-- emails become unique\n\
         ALTER TABLE users ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;\n\
         \n  CREATE UNIQUE INDEX users_email ON users(email);\n\
         CREATE TABLE after_index (x);\n",
    ),
];

#[test]
fn data_dependent_failure_rolls_back_that_migration_only() {
    let dir = TempDir::new("unique");
    let conn = open(&dir.db("app.db"));
    let schema = schema(UNIQUE);

    let err = schema.migrate(&conn).unwrap_err();

    // Statement 2 of 0003, at line 4, column 3 of the file. The leading
    // comment is not a statement: statement 1 starts at line 2.
    let first = schema.migrations()[2].statements().get(0).unwrap();
    assert_eq!((first.line(), first.column()), (2, 1));
    match &err {
        MigrateError::Statement {
            version,
            file,
            statement,
            line,
            column,
            message,
        } => {
            assert_eq!(*version, 3);
            assert_eq!(*file, "0003_unique_email.sql");
            assert_eq!(*statement, 2);
            assert_eq!((*line, *column), (4, 3));
            assert_eq!(message, "UNIQUE constraint failed: users.email");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("0003_unique_email.sql"), "{text}");
    assert!(
        text.contains("UNIQUE constraint failed: users.email"),
        "{text}"
    );
    assert!(text.contains("0003_unique_email.sql:4:3"), "{text}");

    // 1 and 2 stay applied; 3 is gone entirely, including its first statement.
    assert_eq!(tracking(&conn, "migrations"), expected_tracking(&schema, 2));
    assert!(has_table(&conn, "audit"));
    assert!(!has_table(&conn, "after_index"));
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'verified'"
        ),
        0
    );

    // Fix the data and run again: only 3 is applied.
    conn.execute("DELETE FROM users WHERE id = 2", []).unwrap();
    let report = schema.migrate(&conn).unwrap();
    assert_eq!((report.from_version(), report.to_version()), (2, 3));
    assert!(has_table(&conn, "after_index"));
}

const HAND_ROLLED: &str = "CREATE TABLE migrations (version INTEGER PRIMARY KEY, \
                           applied_at TEXT NOT NULL, description TEXT NOT NULL)";

#[test]
fn hand_rolled_table_is_adopted() {
    let dir = TempDir::new("adopt");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);
    // What a hand-rolled migrator left: the first two files' SQL, applied,
    // plus its three-column table.
    for m in &schema.migrations()[..2] {
        conn.execute_batch(m.sql()).unwrap();
    }
    conn.execute_batch(HAND_ROLLED).unwrap();
    conn.execute_batch(
        "INSERT INTO migrations VALUES (1, '2024-05-01 10:00:00', 'create users');
         INSERT INTO migrations VALUES (2, '2024-05-02 10:00:00', 'create rooms');
         INSERT INTO users (name) VALUES ('ada');",
    )
    .unwrap();
    let status = schema.status(&conn).unwrap();
    assert_eq!(status.state(), SchemaState::Unadopted);
    assert_eq!(status.db_version(), 2);
    assert_eq!(status.pending().len(), 2);
    assert_eq!(status.applied()[0].checksum(), None);

    let report = schema.migrate(&conn).unwrap();

    assert!(report.adopted());
    assert_eq!((report.from_version(), report.to_version()), (2, 4));
    assert_eq!(report.applied().len(), 2);
    assert!(report.to_string().contains("adopted"), "{report}");
    // Columns added, recorded rows trusted (their descriptions and times
    // kept) and given the code's checksums, later versions applied.
    let rows = tracking(&conn, "migrations");
    let expected = expected_tracking(&schema, 4);
    assert_eq!(rows[0].1, "create users");
    assert_eq!(rows[0].2, expected[0].2);
    assert_eq!(rows[1].3, expected[1].3);
    assert_eq!(rows[2..], expected[2..]);
    assert_eq!(
        conn.query_row(
            "SELECT applied_at FROM migrations WHERE version = 1",
            [],
            |r| r.get::<_, String>(0)
        )
        .unwrap(),
        "2024-05-01 10:00:00"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM users"), 2);
    // From now on, the fast path.
    let counting = Counting::new(&conn);
    assert!(schema.migrate(&counting).unwrap().is_noop());
    assert_eq!(counting.queries.get(), 1);
    assert_eq!(schema.status(&conn).unwrap().state(), SchemaState::Current);
}

#[test]
fn hand_rolled_table_with_nothing_pending_is_adopted() {
    let dir = TempDir::new("adopt-current");
    let conn = open(&dir.db("app.db"));
    let schema = schema(&CHAT[..1]);
    conn.execute_batch(schema.migrations()[0].sql()).unwrap();
    conn.execute_batch(HAND_ROLLED).unwrap();
    conn.execute(
        "INSERT INTO migrations VALUES (1, 'then', 'create_users')",
        [],
    )
    .unwrap();

    let report = schema.migrate(&conn).unwrap();

    assert!(report.adopted());
    assert!(report.applied().is_empty());
    assert_eq!(report.to_version(), 1);
    assert_eq!(
        tracking(&conn, "migrations")[0].3.as_deref(),
        Some(schema.migrations()[0].chain())
    );
}

#[test]
fn hand_rolled_table_with_a_gap_or_unknown_versions_is_refused() {
    let dir = TempDir::new("adopt-bad");
    let schema = schema(&CHAT[..2]);

    let conn = open(&dir.db("gap.db"));
    conn.execute_batch(HAND_ROLLED).unwrap();
    conn.execute_batch(
        "INSERT INTO migrations VALUES (1, 't', 'a'); INSERT INTO migrations VALUES (3, 't', 'c');",
    )
    .unwrap();
    let before = dump(&conn);
    let err = schema.migrate(&conn).unwrap_err();
    assert_eq!(
        err,
        MigrateError::Gap {
            table: "migrations",
            missing: 2
        }
    );
    assert_eq!(dump(&conn), before);

    let conn = open(&dir.db("unknown.db"));
    conn.execute_batch(HAND_ROLLED).unwrap();
    conn.execute_batch(
        "INSERT INTO migrations VALUES (1, 't', 'a');
         INSERT INTO migrations VALUES (2, 't', 'b');
         INSERT INTO migrations VALUES (3, 't', 'c');",
    )
    .unwrap();
    let before = dump(&conn);
    let err = schema.migrate(&conn).unwrap_err();
    assert_eq!(
        err,
        MigrateError::UnknownVersion {
            table: "migrations",
            version: 3,
            code: 2
        }
    );
    assert!(err.to_string().contains("version 3"), "{err}");
    assert_eq!(dump(&conn), before);
}

#[test]
fn foreign_table_is_refused_and_left_untouched() {
    let dir = TempDir::new("foreign");
    let conn = open(&dir.db("app.db"));
    conn.execute_batch(
        "CREATE TABLE migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT);
         INSERT INTO migrations (name, applied_at) VALUES ('20240101_init', 'yesterday');",
    )
    .unwrap();
    let before = dump(&conn);
    let changes = conn.total_changes();
    let schema = schema(CHAT);

    let err = schema.migrate(&conn).unwrap_err();

    assert_eq!(
        err,
        MigrateError::ForeignTable {
            table: "migrations",
            columns: vec!["id".into(), "name".into(), "applied_at".into()]
        }
    );
    let text = err.to_string();
    assert!(text.contains("id, name, applied_at"), "{text}");
    assert!(text.contains("table = "), "{text}");
    assert_eq!(dump(&conn), before);
    assert_eq!(conn.total_changes(), changes);
    assert_eq!(count(&conn, "SELECT count(*) FROM migrations"), 1);
    assert!(matches!(
        schema.status(&conn),
        Err(MigrateError::ForeignTable { .. })
    ));

    // A view by that name is refused too.
    let conn = open(&dir.db("view.db"));
    conn.execute_batch("CREATE VIEW migrations AS SELECT 1 AS version")
        .unwrap();
    assert!(matches!(
        schema.migrate(&conn),
        Err(MigrateError::ForeignTable { .. })
    ));
}

#[test]
fn three_columns_without_a_version_primary_key_are_foreign() {
    let dir = TempDir::new("nopk");
    let conn = open(&dir.db("app.db"));
    conn.execute_batch(
        "CREATE TABLE migrations (version INTEGER, applied_at TEXT, description TEXT)",
    )
    .unwrap();
    assert!(matches!(
        schema(CHAT).migrate(&conn),
        Err(MigrateError::ForeignTable { .. })
    ));
}

#[test]
fn custom_table_name_is_quoted() {
    let dir = TempDir::new("table-name");
    let mut conn = open(&dir.db("app.db"));
    let schema = schema_with("schema \"log\" v1", false, CHAT);

    schema.migrate(&conn).unwrap();
    let (report, statements, _) = traced(&mut conn, |c| schema.migrate(c).unwrap());

    assert!(report.is_noop());
    assert_eq!(
        statements,
        ["SELECT version, chain, breaks_below FROM \"schema \"\"log\"\" v1\" ORDER BY version DESC LIMIT 1"]
    );
    assert!(has_table(&conn, "schema \"log\" v1"));
    assert!(!has_table(&conn, "migrations"));
}

#[test]
fn status_tracks_fresh_behind_and_current() {
    let dir = TempDir::new("status");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);

    let fresh = schema.status(&conn).unwrap();
    assert_eq!(fresh.state(), SchemaState::Fresh);
    assert_eq!((fresh.db_version(), fresh.code_version()), (0, 4));
    assert_eq!(fresh.pending().len(), 4);
    assert!(dump(&conn).is_empty(), "status created something");

    prefix(&schema, 1).migrate(&conn).unwrap();
    let behind = schema.status(&conn).unwrap();
    assert_eq!(behind.state(), SchemaState::Behind);
    assert_eq!(behind.db_version(), 1);
    let pending: Vec<_> = behind.pending().iter().map(|m| m.version()).collect();
    assert_eq!(pending, [2, 3, 4]);
    let shown = behind.to_string();
    assert!(shown.starts_with("schema behind: database at version 1, code at version 4"));
    assert!(
        shown.contains("pending  0004  0004_create_messages.sql"),
        "{shown}"
    );

    schema.migrate(&conn).unwrap();
    let current = schema.status(&conn).unwrap();
    assert_eq!(current.state(), SchemaState::Current);
    assert!(current.pending().is_empty());
    assert_eq!(current.applied().len(), 4);
}

#[test]
fn generated_hook_shape_works_for_a_connection() {
    // What `#[durable_schema]` generates, minus the const (the test schema
    // is built at run time).
    fn migrate<T: MigrateTarget + ?Sized>(target: &T, schema: &Schema) -> T::Output {
        target.__migrate(schema)
    }
    let dir = TempDir::new("hook");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);

    let report = migrate(&conn, &schema).unwrap();
    assert_eq!(report.to_version(), 4);
    let counting = Counting::new(&conn);
    assert!(migrate(&counting, &schema).unwrap().is_noop());
}

#[test]
fn empty_schema_on_a_fresh_database_does_nothing() {
    let dir = TempDir::new("empty");
    let conn = open(&dir.db("app.db"));
    let schema = schema(&[]);
    let report = schema.migrate(&conn).unwrap();
    assert!(report.is_noop());
    assert_eq!(report.to_version(), 0);
    assert!(dump(&conn).is_empty());
}

#[test]
fn extra_columns_on_the_tracking_table_are_tolerated() {
    let dir = TempDir::new("extra-column");
    let conn = open(&dir.db("app.db"));
    let schema = schema(CHAT);
    prefix(&schema, 2).migrate(&conn).unwrap();
    conn.execute_batch("ALTER TABLE migrations ADD COLUMN deployed_by TEXT")
        .unwrap();

    let report = schema.migrate(&conn).unwrap();

    assert_eq!((report.from_version(), report.to_version()), (2, 4));
    assert_eq!(schema.status(&conn).unwrap().state(), SchemaState::Current);
}

#[test]
fn missing_row_below_a_bad_head_is_reported_as_a_gap() {
    let dir = TempDir::new("gap");
    let conn = open(&dir.db("app.db"));
    schema(CHAT).migrate(&conn).unwrap();
    conn.execute_batch("DELETE FROM migrations WHERE version = 2")
        .unwrap();
    let mut files = CHAT.to_vec();
    files[3].1 = "CREATE TABLE messages (id INTEGER PRIMARY KEY);\n";
    let edited = schema(&files);

    let err = edited.migrate(&conn).unwrap_err();

    assert_eq!(
        err,
        MigrateError::Gap {
            table: "migrations",
            missing: 2
        }
    );
    assert_eq!(
        edited.status(&conn).unwrap().state(),
        SchemaState::Diverged { version: 2 }
    );
}
