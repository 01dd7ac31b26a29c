//! The inference rules on a schema that exercises each of them.

use super::*;

const SCHEMA: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, score REAL, avatar BLOB, data, flag BOOLEAN, age NUMERIC);
CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), title TEXT NOT NULL);
CREATE TABLE tags (name TEXT PRIMARY KEY, n INT NOT NULL) WITHOUT ROWID;
CREATE TABLE loose (code TEXT PRIMARY KEY, big INTEGER);
CREATE TABLE s (k ANY, i INTEGER NOT NULL) STRICT;
CREATE VIEW user_posts AS SELECT u.email, p.title FROM users u LEFT JOIN posts p ON p.user_id = u.id;
";

fn db() -> HeadDb {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let objects = crate::head_schema(&conn, "migrations").unwrap();
    HeadDb::new(&objects, "migrations").unwrap()
}

/// Each column's name and Rust type.
fn types(db: &HeadDb, sql: &str) -> Vec<String> {
    let d = db.describe(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    d.columns
        .iter()
        .map(|c| format!("{}: {}", c.name, c.rust_type()))
        .collect()
}

fn message(db: &HeadDb, sql: &str) -> Diagnostic {
    *db.describe(sql).expect_err(sql)
}

#[test]
fn declared_types_map_by_affinity() {
    let db = db();
    assert_eq!(
        types(
            &db,
            "SELECT id, email, name, score, avatar, data, flag, age FROM users"
        ),
        [
            "id: i64",
            "email: String",
            "name: Option<String>",
            "score: Option<f64>",
            "avatar: Option<Vec<u8>>",
            "data: Value",
            "flag: Value",
            "age: Value",
        ]
    );
    assert_eq!(types(&db, "SELECT k, i FROM s"), ["k: Value", "i: i64"]);
    assert_eq!(
        types(&db, "SELECT id + 1 AS x, 'a' AS y FROM users"),
        ["x: Value", "y: Value"]
    );
}

#[test]
fn keys_and_rowids_are_never_null() {
    let db = db();
    assert_eq!(types(&db, "SELECT rowid AS r FROM users"), ["r: i64"]);
    assert_eq!(
        types(&db, "SELECT name, n FROM tags"),
        ["name: String", "n: i64"]
    );
    // A rowid table's TEXT key can hold NULL (SQLite's quirk).
    assert_eq!(
        types(&db, "SELECT code FROM loose"),
        ["code: Option<String>"]
    );
}

#[test]
fn outer_joins_aggregates_and_compounds_make_columns_nullable() {
    let db = db();
    assert_eq!(
        types(
            &db,
            "SELECT u.email, p.title FROM users u LEFT JOIN posts p ON p.user_id = u.id"
        ),
        ["email: String", "title: Option<String>"]
    );
    assert_eq!(
        types(
            &db,
            "SELECT u.email, p.title FROM posts p RIGHT JOIN users u ON p.user_id = u.id"
        ),
        ["email: String", "title: Option<String>"]
    );
    assert_eq!(
        types(
            &db,
            "SELECT u.email, p.title FROM users u JOIN posts p ON p.user_id = u.id"
        ),
        ["email: String", "title: String"]
    );
    // Through a view with an outer join inside.
    assert_eq!(
        types(&db, "SELECT email, title FROM user_posts"),
        ["email: String", "title: Option<String>"]
    );
    assert_eq!(
        types(&db, "SELECT email, count(*) AS n FROM users"),
        ["email: Option<String>", "n: i64"]
    );
    assert_eq!(
        types(&db, "SELECT email, count(*) AS n FROM users GROUP BY email"),
        ["email: String", "n: i64"]
    );
    assert_eq!(types(&db, "SELECT max(id) AS m FROM users"), ["m: Value"]);
    assert_eq!(
        types(&db, "SELECT email FROM users UNION SELECT title FROM posts"),
        ["email: Option<String>"]
    );
    // A scalar subquery can be empty: its origin is not read directly.
    assert_eq!(
        types(
            &db,
            "SELECT (SELECT title FROM posts LIMIT 1) AS t FROM users"
        ),
        ["t: Option<String>"]
    );
}

#[test]
fn aliases_override_nullability_and_type() {
    let db = db();
    assert_eq!(
        types(
            &db,
            r#"SELECT name AS "name!", email AS "email?", flag AS "flag: bool", max(id) AS "m!: i64" FROM users"#
        ),
        [
            "name: String",
            "email: Option<String>",
            "flag: bool",
            "m: i64"
        ]
    );
}

#[test]
fn parameters_get_the_column_they_are_compared_with() {
    let db = db();
    let d = db
        .describe("SELECT id FROM users WHERE email = ? AND score > ?2 OR ? = id")
        .unwrap_err();
    assert!(d.message.contains("skip"), "{d}");
    let d = db
        .describe("SELECT u.id FROM users u JOIN posts p ON p.user_id = ? WHERE u.email = :email AND p.title IN (?, ?)")
        .unwrap();
    let columns: Vec<Option<(String, SqlType)>> = d
        .parameters
        .iter()
        .map(|p| p.column.as_ref().map(|c| (c.column.clone(), c.ty)))
        .collect();
    assert_eq!(
        columns,
        [
            Some(("user_id".to_owned(), SqlType::Integer)),
            Some(("email".to_owned(), SqlType::Text)),
            Some(("title".to_owned(), SqlType::Text)),
            Some(("title".to_owned(), SqlType::Text)),
        ]
    );
    assert_eq!(d.parameters[1].name.as_deref(), Some(":email"));
    let d = db
        .describe("INSERT INTO posts (user_id, title) VALUES (?, ?) RETURNING id")
        .unwrap();
    assert_eq!(d.kind, StatementKind::Insert);
    assert_eq!(
        d.parameters
            .iter()
            .map(|p| p.column.as_ref().map(|c| c.ty))
            .collect::<Vec<_>>(),
        [Some(SqlType::Integer), Some(SqlType::Text)]
    );
    let d = db
        .describe("UPDATE users SET score = ?1, name = ?2 WHERE id = ?3")
        .unwrap();
    assert_eq!(
        d.parameters
            .iter()
            .map(|p| p.column.as_ref().map(|c| c.ty))
            .collect::<Vec<_>>(),
        [
            Some(SqlType::Real),
            Some(SqlType::Text),
            Some(SqlType::Integer)
        ]
    );
    assert!(d.columns.is_empty());
    // Unclear: an expression.
    let d = db
        .describe("SELECT id FROM users WHERE length(email) = ?")
        .unwrap();
    assert_eq!(d.parameters[0].column, None);
}

#[test]
fn statements_that_do_not_prepare_point_into_the_query() {
    let db = db();
    let e = message(&db, "SELECT id\nFORM users");
    assert_eq!(
        e.message,
        "near \"users\": syntax error (at `users`, 2:6 of the query)"
    );
    let e = message(&db, "SELECT nope FROM users");
    assert!(
        e.message
            .starts_with("no such column: nope (at `nope`, 1:8"),
        "{e}"
    );
    let e = message(&db, "SELECT * FROM nope");
    assert!(e.message.starts_with("no such table: nope"), "{e}");
    let e = message(&db, "SELECT randomblob(4) AS b, sqlite_version() AS v");
    assert!(e.message.contains("sqlite_version"), "{e}");
    let e = message(&db, "PRAGMA user_version");
    assert!(e.message.contains("Durable Object rule"), "{e}");
    assert_eq!(e.rule, Some("pragma"));
    let e = message(&db, "SELECT 1 AS a; SELECT 2 AS b");
    assert!(e.message.contains("more than one statement"), "{e}");
    let e = message(&db, "SELECT count(*) FROM users");
    assert!(e.message.contains("`count(*)`"), "{e}");
    assert_eq!(
        e.help.as_deref(),
        Some("give it an alias, e.g. `count(*) AS \"count\"`")
    );
    let many: Vec<&str> = vec!["?"; 101];
    let e = message(
        &db,
        &format!("SELECT id FROM users WHERE id IN ({})", many.join(", ")),
    );
    assert!(e.message.contains("too many SQL variables"), "{e}");
    let e = message(&db, &format!("SELECT '{}' AS x", "x".repeat(100_001)));
    assert!(e.message.contains("over a Durable Object's limit"), "{e}");
    assert!(message(&db, "  ;").message.contains("empty"));
}

#[test]
fn the_head_database_is_built_once_per_head() {
    let scratch = crate::tests::Scratch::new(
        "query-head",
        &[(
            "0001_init.sql",
            b"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n",
        )],
    );
    let options = crate::Options::default().with_cache(crate::CacheSetting::Off);
    let plan = crate::check_dir(&scratch.0, ".", &options).unwrap();
    let a = head_db(&plan, "migrations").unwrap();
    let b = head_db(&plan, "migrations").unwrap();
    assert!(Rc::ptr_eq(&a, &b));
    // The tracking table is readable, as on a real object.
    assert_eq!(
        types(&a, "SELECT version FROM migrations"),
        ["version: i64"]
    );
    assert_eq!(types(&a, "SELECT v FROM t"), ["v: String"]);
}

#[test]
fn returning_columns_are_typed_like_the_row_written() {
    let db = db();
    assert_eq!(
        types(
            &db,
            "INSERT INTO posts (user_id, title) VALUES (?, ?) RETURNING id, title, user_id AS u"
        ),
        ["id: i64", "title: String", "u: i64"]
    );
    assert_eq!(
        types(
            &db,
            "UPDATE users SET name = ? WHERE id = ? RETURNING id, name"
        ),
        ["id: i64", "name: Option<String>"]
    );
    assert_eq!(
        types(&db, "DELETE FROM users WHERE id = ? RETURNING email"),
        ["email: String"]
    );
}

#[test]
fn a_query_sqlparser_cannot_parse_is_typed_conservatively() {
    use sqlparser::dialect::SQLiteDialect;
    use sqlparser::parser::Parser;
    let db = db();
    // The postfix `ISNULL` is SQLite's; sqlparser does not parse it.
    let joined = "SELECT u.email, p.title FROM users u LEFT JOIN posts p ON p.user_id = u.id WHERE p.title ISNULL";
    assert!(Parser::parse_sql(&SQLiteDialect {}, joined).is_err());
    assert_eq!(
        types(&db, joined),
        ["email: Option<String>", "title: Option<String>"]
    );
    let plain = "SELECT u.email FROM users u WHERE u.name ISNULL";
    assert!(Parser::parse_sql(&SQLiteDialect {}, plain).is_err());
    assert_eq!(types(&db, plain), ["email: String"]);
    assert!(shape::Shape::unparsed("SELECT max(x) FROM t").all_nullable);
    assert!(shape::Shape::unparsed("SELECT x FROM a UNION SELECT y FROM b").all_nullable);
}

#[test]
fn the_plan_is_memoized_until_a_file_changes() {
    let scratch = crate::tests::Scratch::new(
        "query-plan",
        &[(
            "0001_init.sql",
            b"CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
        )],
    );
    let options = crate::Options::default().with_cache(crate::CacheSetting::Off);
    let a = plan(&scratch.0, ".", &options).unwrap();
    let b = plan(&scratch.0, ".", &options).unwrap();
    assert!(Rc::ptr_eq(&a, &b));
    // A new migration, and an edit that changes the length: checked again.
    std::fs::write(
        scratch.0.join("0002_more.sql"),
        "ALTER TABLE t ADD COLUMN v TEXT;\n",
    )
    .unwrap();
    let c = plan(&scratch.0, ".", &options).unwrap();
    assert_eq!(c.version(), 2);
    assert!(types(&head_db(&c, "migrations").unwrap(), "SELECT v FROM t") == ["v: Option<String>"]);
    std::fs::write(
        scratch.0.join("0002_more.sql"),
        "ALTER TABLE t ADD COLUMN w TEXT NOT NULL DEFAULT '';\n",
    )
    .unwrap();
    let d = plan(&scratch.0, ".", &options).unwrap();
    assert!(!Rc::ptr_eq(&c, &d));
    assert_eq!(
        types(&head_db(&d, "migrations").unwrap(), "SELECT w FROM t"),
        ["w: String"]
    );
}

/// What a query uses, recorded from the authorizer ([`Description::uses`]).
mod uses {
    use super::*;

    const SCHEMA: &str = "
CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL, topic TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY, room_id INTEGER REFERENCES rooms (id), body TEXT, reactions INTEGER NOT NULL DEFAULT 0);
CREATE TABLE audit (at TEXT, what TEXT);
CREATE VIEW named AS SELECT id, name FROM rooms;
CREATE VIEW busy AS SELECT n.name, m.body FROM named n JOIN messages m ON m.room_id = n.id;
CREATE TRIGGER messages_audit AFTER INSERT ON messages BEGIN INSERT INTO audit (what) VALUES (new.body); END;
CREATE TRIGGER rooms_guard BEFORE UPDATE OF topic ON rooms BEGIN SELECT RAISE(ABORT, 'no') WHERE new.topic = ''; END;
";

    fn uses(sql: &str) -> String {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let objects = crate::head_schema(&conn, "migrations").unwrap();
        let db = HeadDb::new(&objects, "migrations").unwrap();
        db.describe(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .uses
    }

    #[test]
    fn select_star_reads_every_column_and_count_reads_none() {
        assert_eq!(uses("SELECT * FROM rooms"), "rrooms:id,name,topic");
        assert_eq!(uses("SELECT count(*) AS n FROM audit"), "raudit");
        assert_eq!(uses("SELECT 1 AS one"), "");
    }

    #[test]
    fn joins_read_the_columns_named_anywhere() {
        assert_eq!(
            uses(
                "SELECT r.name, m.body FROM rooms r LEFT JOIN messages m ON m.room_id = r.id \
                 WHERE r.topic IS NULL"
            ),
            "rmessages:body,room_id;rrooms:id,name,topic"
        );
    }

    #[test]
    fn views_record_the_view_and_the_tables_behind_it() {
        assert_eq!(
            uses("SELECT name FROM busy"),
            "rbusy:name;rmessages:body,room_id;rnamed:id,name;rrooms:id,name"
        );
    }

    #[test]
    fn ctes_record_the_tables_they_read() {
        assert_eq!(
            uses("WITH t AS (SELECT id, body FROM messages) SELECT body FROM t"),
            "rmessages:body,id"
        );
    }

    #[test]
    fn inserts_write_their_listed_columns_and_what_their_triggers_do() {
        assert_eq!(
            uses("INSERT INTO messages (room_id, body) VALUES (?, ?)"),
            // The trigger's insert: every column of `audit`; the foreign
            // key's check reads its parent.
            "waudit:at,what;wmessages:body,room_id;rrooms:id;tmessages_audit"
        );
        // Without a list: every column.
        assert_eq!(
            uses("INSERT INTO rooms VALUES (?, ?, ?)"),
            "wrooms:id,name,topic"
        );
    }

    #[test]
    fn updates_write_their_columns_and_fire_the_triggers_on_them() {
        assert_eq!(
            uses("UPDATE rooms SET name = ? WHERE id = ?"),
            "wrooms:id,name"
        );
        assert_eq!(
            uses("UPDATE rooms SET topic = ? WHERE id = ?"),
            "wrooms:id,topic;trooms_guard"
        );
    }

    #[test]
    fn deletes_write_the_table_and_read_their_filter() {
        assert_eq!(uses("DELETE FROM audit"), "waudit");
        assert_eq!(
            uses("DELETE FROM messages WHERE body = ?"),
            // The foreign key's check of the deleted rows' parent.
            "wmessages:body;rrooms:id"
        );
    }

    #[test]
    fn returning_reads_its_columns() {
        assert_eq!(
            uses("UPDATE messages SET reactions = reactions + 1 WHERE id = ? RETURNING id, body"),
            "wmessages:body,id,reactions"
        );
        assert_eq!(
            uses("INSERT INTO rooms (name) VALUES (?) RETURNING id, topic"),
            // A new `rooms.id` may meet orphans referencing it.
            "rmessages:room_id;wrooms:id,name,topic"
        );
    }

    #[test]
    fn an_upsert_writes_its_do_update_columns() {
        assert_eq!(
            uses("INSERT INTO rooms (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET topic = excluded.name"),
            "rmessages:room_id;wrooms:id,name,topic;trooms_guard"
        );
    }
}
