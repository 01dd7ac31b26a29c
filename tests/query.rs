//! Checked queries that must compile, with the types the rules infer
//! (`docs/queries.md`): each case pins its fields' types with `is::<T>`,
//! then runs on a migrated SQLite so a case that compiled with the wrong
//! mapping fails here.

use durable_schema::{durable_schema, query, query_as};
use rusqlite::Connection;

#[durable_schema(dir = "tests/fixtures/query/types")]
struct Kinds;

/// Compiles only when `value` is a `T`.
fn is<T>(_: &T) {}

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    Kinds::migrate(&conn).unwrap();
    let changed = query!(
        Kinds,
        "INSERT INTO kinds (i, r, t, b, n, v, oi, orl, ot, ob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        7,
        1.5,
        "seven",
        vec![7u8],
        "12",
        Some(3),
        None::<i64>,
        None::<f64>,
        Some("x"),
        None::<Vec<u8>>
    )
    .execute(&conn)
    .unwrap();
    assert_eq!(changed, 1);
    conn
}

#[test]
fn declared_types_and_not_null_map_to_rust_types() {
    let conn = db();
    let row = query!(
        Kinds,
        "SELECT id, i, r, t, b, n, v, oi, orl, ot, ob FROM kinds"
    )
    .fetch_one(&conn)
    .unwrap();
    is::<i64>(&row.id);
    is::<i64>(&row.i);
    is::<f64>(&row.r);
    is::<String>(&row.t);
    is::<Vec<u8>>(&row.b);
    is::<durable_schema::query::Value>(&row.n);
    is::<durable_schema::query::Value>(&row.v);
    is::<Option<i64>>(&row.oi);
    is::<Option<f64>>(&row.orl);
    is::<Option<String>>(&row.ot);
    is::<Option<Vec<u8>>>(&row.ob);
    assert_eq!((row.id, row.i, row.r), (1, 7, 1.5));
    assert_eq!((row.t.as_str(), row.b.as_slice()), ("seven", &[7u8][..]));
    // NUMERIC affinity stored the text `12` as an integer.
    assert_eq!(row.n, durable_schema::query::Value::Integer(12));
    assert_eq!(row.v, durable_schema::query::Value::Integer(3));
    assert_eq!(
        (row.oi, row.orl, row.ot.as_deref(), row.ob),
        (None, None, Some("x"), None)
    );
}

#[test]
fn keys_joins_aggregates_and_overrides() {
    let conn = db();
    query!(
        Kinds,
        "INSERT INTO notes (kind_id, body) VALUES (?1, ?2)",
        1,
        "a"
    )
    .execute(&conn)
    .unwrap();
    query!(
        Kinds,
        "INSERT INTO notes (kind_id, body) VALUES (:kind, :body)",
        None::<i64>,
        "orphan"
    )
    .execute(&conn)
    .unwrap();
    query!(
        Kinds,
        "INSERT INTO tags (name, weight) VALUES (?, ?)",
        "x",
        2
    )
    .execute(&conn)
    .unwrap();
    // INTEGER PRIMARY KEY and a WITHOUT ROWID key: never null.
    let tag = query!(Kinds, "SELECT name, weight FROM tags")
        .fetch_one(&conn)
        .unwrap();
    is::<String>(&tag.name);
    is::<i64>(&tag.weight);
    // LEFT JOIN: the right side's NOT NULL columns become Option.
    let rows = query!(
        Kinds,
        "SELECT n.id, n.body, k.i, k.t FROM notes n LEFT JOIN kinds k ON k.id = n.kind_id ORDER BY n.id"
    )
    .fetch_all(&conn)
    .unwrap();
    is::<i64>(&rows[0].id);
    is::<String>(&rows[0].body);
    is::<Option<i64>>(&rows[0].i);
    is::<Option<String>>(&rows[0].t);
    assert_eq!(rows[1].i, None);
    assert_eq!(rows[0].t.as_deref(), Some("seven"));
    // An aggregate without GROUP BY: one row even over nothing; count is
    // a non-null integer, a bare column may be null.
    let empty = query!(
        Kinds,
        "SELECT count(*) AS n, max(i) AS m, t FROM kinds WHERE i < 0"
    )
    .fetch_one(&conn)
    .unwrap();
    is::<i64>(&empty.n);
    is::<durable_schema::query::Value>(&empty.m);
    is::<Option<String>>(&empty.t);
    assert_eq!((empty.n, empty.t), (0, None));
    // Overrides in the alias.
    let o = query!(
        Kinds,
        r#"SELECT max(i) AS "m!: i64", ot AS "ot!", i AS "i?", i = 7 AS "seven: bool" FROM kinds"#
    )
    .fetch_one(&conn)
    .unwrap();
    is::<i64>(&o.m);
    is::<String>(&o.ot);
    is::<Option<i64>>(&o.i);
    is::<bool>(&o.seven);
    assert_eq!((o.m, o.ot.as_str(), o.i, o.seven), (7, "x", Some(7), true));
    // RETURNING a key and a NOT NULL column.
    let id = query!(
        Kinds,
        "INSERT INTO notes (body) VALUES (?) RETURNING id, body",
        "r"
    )
    .fetch_one(&conn)
    .unwrap();
    is::<i64>(&id.id);
    is::<String>(&id.body);
}

#[derive(Debug, PartialEq)]
struct Note {
    id: i64,
    body: String,
    kind: Option<i64>,
}

#[test]
fn query_as_fills_the_callers_struct() {
    let conn = db();
    query!(
        Kinds,
        "INSERT INTO notes (kind_id, body) VALUES (?, ?)",
        1,
        "a"
    )
    .execute(&conn)
    .unwrap();
    // A non-null column fits an `Option` field too.
    let notes = query_as!(
        Note,
        Kinds,
        "SELECT id, body, kind_id AS kind FROM notes WHERE body = ?",
        "a"
    )
    .fetch_all(&conn)
    .unwrap();
    assert_eq!(
        notes,
        [Note {
            id: 1,
            body: "a".into(),
            kind: Some(1)
        }]
    );
    let none = query_as!(
        Note,
        Kinds,
        "SELECT id, body, kind_id AS kind FROM notes WHERE id = ?",
        99
    )
    .fetch_optional(&conn)
    .unwrap();
    assert_eq!(none, None);
    let q = query!(Kinds, "DELETE FROM notes");
    assert_eq!(q.sql(), "DELETE FROM notes");
    assert_eq!(q.execute(&conn).unwrap(), 1);
}

mod elsewhere {
    /// The schema's macro comes along with the type, by path or import.
    #[test]
    fn a_schema_is_found_by_path() {
        let conn = super::db();
        let n = durable_schema::query!(crate::Kinds, "SELECT count(*) AS n FROM kinds")
            .fetch_one(&conn)
            .unwrap();
        assert_eq!(n.n, 1);
    }
}
