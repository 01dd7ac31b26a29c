use super::*;

fn decode<T: Decode>(v: ValueRef<'_>) -> Result<T, QueryError> {
    T::decode(v)
}

fn text(s: &str) -> ValueRef<'_> {
    ValueRef::Text(Cow::Borrowed(s))
}

fn blob(b: &[u8]) -> ValueRef<'_> {
    ValueRef::Blob(Cow::Borrowed(b))
}

#[test]
fn every_encode_impl_gives_its_storage_class() {
    assert_eq!(Encode::encode(&-7i64), Arg::Integer(-7));
    assert_eq!(Encode::encode(&i32::MIN), Arg::Integer(i64::from(i32::MIN)));
    assert_eq!(Encode::encode(&-3i16), Arg::Integer(-3));
    assert_eq!(Encode::encode(&-2i8), Arg::Integer(-2));
    assert_eq!(Encode::encode(&u32::MAX), Arg::Integer(4_294_967_295));
    assert_eq!(Encode::encode(&7u16), Arg::Integer(7));
    assert_eq!(Encode::encode(&255u8), Arg::Integer(255));
    assert_eq!(Encode::encode(&true), Arg::Integer(1));
    assert_eq!(Encode::encode(&false), Arg::Integer(0));
    assert_eq!(Encode::encode(&1.5f64), Arg::Real(1.5));
    assert_eq!(Encode::encode(&0.25f32), Arg::Real(0.25));
    assert_eq!(Encode::encode("é"), Arg::Text("é".into()));
    assert_eq!(Encode::encode(&String::from("x")), Arg::Text("x".into()));
    assert_eq!(Encode::encode(&b"ab"[..]), Arg::Blob(b"ab".to_vec()));
    assert_eq!(Encode::encode(&vec![0u8, 255]), Arg::Blob(vec![0, 255]));
    assert_eq!(Encode::encode(&None::<i64>), Arg::Null);
    assert_eq!(Encode::encode(&Some("s")), Arg::Text("s".into()));
    assert_eq!(Encode::encode(&&&5i64), Arg::Integer(5));
    assert_eq!(Encode::encode(&Value::Real(2.5)), Arg::Real(2.5));
    assert_eq!(Encode::encode(&Value::Null), Arg::Null);
}

#[test]
fn check_arg_accepts_what_binds() {
    // A type that does not bind fails to compile (see the facade's ui tests);
    // these must compile.
    check_arg::<Integer, _>(&1i64);
    check_arg::<Integer, _>(&Some(true));
    check_arg::<Real, _>(&1u8);
    check_arg::<Real, _>(&1.5f32);
    check_arg::<Text, _>(&"a");
    check_arg::<Text, _>(&String::new());
    check_arg::<Text, _>(&None::<&str>);
    check_arg::<Text, str>("a");
    check_arg::<Blob, _>(&vec![1u8]);
    check_arg::<Blob, [u8]>(b"a");
    check_arg::<Any, _>(&1.5f64);
    check_arg::<Any, _>(&Some(vec![1u8]));
}

#[test]
fn decode_takes_only_lossless_conversions() {
    assert_eq!(
        decode::<i64>(ValueRef::Integer(i64::MIN)).unwrap(),
        i64::MIN
    );
    assert_eq!(decode::<i64>(ValueRef::Real(3.0)).unwrap(), 3);
    assert_eq!(decode::<i64>(ValueRef::Real(-0.0)).unwrap(), 0);
    for v in [
        ValueRef::Real(3.5),
        ValueRef::Real(9.3e18),
        ValueRef::Real(f64::NAN),
        text("3"),
        blob(b"3"),
    ] {
        let err = decode::<i64>(v.clone()).unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::Decode, "{v:?}");
    }

    assert_eq!(decode::<f64>(ValueRef::Real(0.1)).unwrap(), 0.1);
    assert_eq!(
        decode::<f64>(ValueRef::Integer(1 << 53)).unwrap(),
        9_007_199_254_740_992.0
    );
    assert_eq!(decode::<f64>(ValueRef::Integer(-3)).unwrap(), -3.0);
    let err = decode::<f64>(ValueRef::Integer((1 << 53) + 1)).unwrap_err();
    assert_eq!(err.kind(), QueryErrorKind::Decode);
    assert!(decode::<f64>(text("1.5")).is_err());

    assert!(decode::<bool>(ValueRef::Integer(1)).unwrap());
    assert!(!decode::<bool>(ValueRef::Integer(0)).unwrap());
    assert!(decode::<bool>(ValueRef::Number(1.0)).unwrap());
    assert_eq!(
        decode::<bool>(ValueRef::Integer(2)).unwrap_err().kind(),
        QueryErrorKind::Decode
    );
    assert!(decode::<bool>(text("true")).is_err());

    assert_eq!(decode::<String>(text("é")).unwrap(), "é");
    assert!(decode::<String>(ValueRef::Integer(1)).is_err());
    assert!(decode::<String>(blob(b"a")).is_err());

    assert_eq!(decode::<Vec<u8>>(blob(&[0, 1])).unwrap(), [0, 1]);
    assert!(decode::<Vec<u8>>(text("a")).is_err());

    assert_eq!(decode::<Option<i64>>(ValueRef::Null).unwrap(), None);
    assert_eq!(
        decode::<Option<String>>(text("a")).unwrap(),
        Some("a".into())
    );
    assert!(decode::<Option<i64>>(text("a")).is_err());

    for (v, want) in [
        (ValueRef::Null, Value::Null),
        (ValueRef::Integer(1), Value::Integer(1)),
        (ValueRef::Real(1.0), Value::Real(1.0)),
        (text("t"), Value::Text("t".into())),
        (blob(b"b"), Value::Blob(b"b".to_vec())),
    ] {
        assert_eq!(decode::<Value>(v).unwrap(), want);
    }
}

#[test]
fn null_into_a_non_option_names_the_column() {
    let row = [Value::Integer(1), Value::Null];
    let row = Row::from_values(&row);
    assert_eq!(row.get::<i64>(0, "id").unwrap(), 1);
    let err = row.get::<String>(1, "body").unwrap_err();
    assert_eq!(err.kind(), QueryErrorKind::Decode);
    assert_eq!(err.column(), Some("body"));
    assert_eq!(
        err.to_string(),
        "query row did not decode: column `body` (index 1) is NULL but the field is `String`, \
         not an `Option`"
    );
    assert_eq!(row.get::<Option<String>>(1, "body").unwrap(), None);
    let err = row.get::<i64>(2, "missing").unwrap_err();
    assert_eq!(err.column(), Some("missing"));
    assert_eq!(
        err.to_string(),
        "query row did not decode: the row has no column 2 (`missing`)"
    );
}

#[test]
fn a_wrong_storage_class_names_the_column_and_the_class() {
    let row = [Value::Text("x".into())];
    let err = Row::from_values(&row).get::<i64>(0, "n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "query row did not decode: column `n` (index 0) holds TEXT, which does not decode into \
         `i64`"
    );
}

/// What workerd returns: every INTEGER and REAL as a JavaScript number.
#[test]
fn durable_object_numbers_beyond_2_pow_53_are_refused_for_integers() {
    assert_eq!(
        decode::<i64>(ValueRef::Number(9_007_199_254_740_991.0)).unwrap(),
        MAX_SAFE_INTEGER
    );
    assert_eq!(
        decode::<i64>(ValueRef::Number(-9_007_199_254_740_991.0)).unwrap(),
        -MAX_SAFE_INTEGER
    );
    assert_eq!(decode::<i64>(ValueRef::Number(2.0)).unwrap(), 2);
    // `SELECT 9007199254740993` arrives as 9007199254740992.
    for n in [9_007_199_254_740_992.0, -9_007_199_254_740_992.0, 1e20] {
        let err = decode::<i64>(ValueRef::Number(n)).unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::UnsafeInteger, "{n}");
        assert_eq!(
            decode::<Value>(ValueRef::Number(n)).unwrap_err().kind(),
            QueryErrorKind::UnsafeInteger
        );
        assert_eq!(
            decode::<Option<i64>>(ValueRef::Number(n))
                .unwrap_err()
                .kind(),
            QueryErrorKind::UnsafeInteger
        );
        assert_eq!(
            decode::<bool>(ValueRef::Number(n)).unwrap_err().kind(),
            QueryErrorKind::UnsafeInteger
        );
        assert_eq!(decode::<f64>(ValueRef::Number(n)).unwrap(), n);
    }
    assert_eq!(
        decode::<i64>(ValueRef::Number(1.5)).unwrap_err().kind(),
        QueryErrorKind::Decode
    );
    assert_eq!(
        decode::<Value>(ValueRef::Number(1.5)).unwrap(),
        Value::Real(1.5)
    );
    assert_eq!(
        decode::<Value>(ValueRef::Number(-4.0)).unwrap(),
        Value::Integer(-4)
    );
    let row = [Value::Null];
    let _ = Row::from_values(&row);
    let err = unsafe_integer(9_007_199_254_740_992.0).in_column("big", 0);
    assert_eq!(
        err.to_string(),
        "unsafe integer: column `big` (index 0) holds 9007199254740992, beyond JavaScript's \
         safe integers (±2^53 - 1): workerd returns integers as numbers, so the stored value may \
         have been rounded; keep such values in TEXT or BLOB columns on a Durable Object"
    );
}

#[test]
fn from_column_lets_a_non_null_column_fill_an_option() {
    fn fill<I, F: FromColumn<I>>(row: &Row<'_>) -> F {
        row.get_checked::<I, F>(0, "c").unwrap()
    }
    let values = [Value::Integer(1)];
    let row = Row::from_values(&values);
    assert_eq!(fill::<i64, i64>(&row), 1);
    assert_eq!(fill::<i64, Option<i64>>(&row), Some(1));
    assert!(fill::<i64, bool>(&row));
    assert_eq!(fill::<Option<i64>, Option<bool>>(&row), Some(true));
    assert_eq!(fill::<Value, Value>(&row), Value::Integer(1));
}

#[test]
fn kinds_have_stable_names() {
    let names: Vec<_> = [
        QueryErrorKind::Prepare,
        QueryErrorKind::Bind,
        QueryErrorKind::NoRows,
        QueryErrorKind::Decode,
        QueryErrorKind::UnsafeInteger,
        QueryErrorKind::Backend,
        QueryErrorKind::Incompatible,
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    assert_eq!(
        names,
        [
            "prepare",
            "bind",
            "no_rows",
            "decode",
            "unsafe_integer",
            "backend",
            "incompatible"
        ]
    );
}

#[cfg(feature = "rusqlite")]
mod on_rusqlite {
    use super::*;
    use rusqlite::Connection;

    #[derive(Debug, PartialEq)]
    struct Message {
        id: i64,
        body: Option<String>,
    }

    fn messages(room: &str) -> Query<Message> {
        Query::__new(
            "SELECT id, body FROM m WHERE room = ? ORDER BY id",
            vec![Encode::encode(&room)],
            |row| {
                Ok(Message {
                    id: row.get(0, "id")?,
                    body: row.get(1, "body")?,
                })
            },
        )
    }

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE m (id INTEGER PRIMARY KEY, room TEXT NOT NULL, body TEXT);
             INSERT INTO m VALUES (1, 'a', 'hi'), (2, 'a', NULL), (3, 'b', 'no');",
        )
        .unwrap();
        conn
    }

    #[test]
    fn fetch_all_one_optional() {
        let conn = conn();
        assert_eq!(
            messages("a").fetch_all(&conn).unwrap(),
            [
                Message {
                    id: 1,
                    body: Some("hi".into())
                },
                Message { id: 2, body: None }
            ]
        );
        assert_eq!(messages("a").fetch_one(&conn).unwrap().id, 1);
        assert_eq!(
            messages("b").fetch_optional(&conn).unwrap().map(|m| m.id),
            Some(3)
        );
        assert_eq!(messages("z").fetch_optional(&conn).unwrap(), None);
        assert!(messages("z").fetch_all(&conn).unwrap().is_empty());
        let err = messages("z").fetch_one(&conn).unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::NoRows);
        assert_eq!(
            err.to_string(),
            "query returned no row: `SELECT id, body FROM m WHERE room = ? ORDER BY id`; use \
             `fetch_optional` when none is a valid answer"
        );
        // Through a `dyn Executor` and a reference too.
        let db: &dyn Executor = &conn;
        assert_eq!(messages("a").fetch_all(&db).unwrap().len(), 2);
    }

    #[test]
    fn fetch_one_runs_the_statement_to_its_end() {
        let conn = conn();
        let q = Query::<i64>::__new(
            "INSERT INTO m (room) VALUES ('c'), ('c'), ('c') RETURNING id",
            vec![],
            |row| row.get(0, "id"),
        );
        assert_eq!(q.fetch_one(&conn).unwrap(), 4);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM m WHERE room = 'c'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn execute_counts_the_rows_the_statement_changed() {
        let conn = conn();
        let exec = |sql: &'static str, args: Vec<Arg>| {
            Query::<()>::__new(sql, args, |_| Ok(()))
                .execute(&conn)
                .unwrap()
        };
        assert_eq!(
            exec(
                "INSERT INTO m (room, body) VALUES (?1, ?2), (?1, ?2)",
                vec![Arg::Text("d".into()), Arg::Null]
            ),
            2
        );
        // Not the stale count of the INSERT before.
        assert_eq!(exec("SELECT * FROM m", vec![]), 0);
        assert_eq!(exec("CREATE TABLE log (n)", vec![]), 0);
        assert_eq!(exec("UPDATE m SET body = 'x' WHERE room = 'z'", vec![]), 0);
        conn.execute_batch(
            "CREATE TRIGGER t AFTER UPDATE ON m BEGIN INSERT INTO log VALUES (new.id); END",
        )
        .unwrap();
        // Rows changed by a trigger are not counted (SQLite's `changes()`).
        assert_eq!(exec("UPDATE m SET body = 'x' WHERE room = 'a'", vec![]), 2);
        assert_eq!(exec("DELETE FROM m RETURNING id", vec![]), 5);
    }

    #[test]
    fn every_storage_class_round_trips() {
        let conn = conn();
        #[derive(Debug, PartialEq)]
        struct All {
            i: i64,
            f: f64,
            t: String,
            b: Vec<u8>,
            n: Option<i64>,
            yes: bool,
            v: Value,
        }
        let q = Query::<All>::__new(
            "SELECT ?, ?, ?, ?, ?, ?, ?",
            vec![
                Encode::encode(&i64::MAX),
                Encode::encode(&-0.5f64),
                Encode::encode("é\0x"),
                Encode::encode(&vec![0u8, 159, 255]),
                Encode::encode(&None::<i64>),
                Encode::encode(&true),
                Encode::encode(&Value::Blob(vec![1])),
            ],
            |row| {
                Ok(All {
                    i: row.get(0, "i")?,
                    f: row.get(1, "f")?,
                    t: row.get(2, "t")?,
                    b: row.get(3, "b")?,
                    n: row.get(4, "n")?,
                    yes: row.get(5, "yes")?,
                    v: row.get(6, "v")?,
                })
            },
        );
        assert_eq!(
            q.fetch_one(&conn).unwrap(),
            All {
                i: i64::MAX,
                f: -0.5,
                t: "é\0x".into(),
                b: vec![0, 159, 255],
                n: None,
                yes: true,
                v: Value::Blob(vec![1]),
            }
        );
    }

    #[test]
    fn errors_have_kinds() {
        let conn = conn();
        let q = |sql: &'static str, args: Vec<Arg>| Query::<()>::__new(sql, args, |_| Ok(()));
        let err = q("SELECT nope FROM m", vec![])
            .fetch_all(&conn)
            .unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::Prepare);
        assert_eq!(
            err.to_string(),
            "query did not prepare: no such column: nope; the database's schema is not the one \
             the query was checked against (run the migrations first)"
        );
        let err = q("SELECT ?, ?", vec![Arg::Null])
            .fetch_all(&conn)
            .unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::Bind);
        assert_eq!(
            err.to_string(),
            "query arguments did not bind: the statement has 2 parameter(s) and got 1 argument(s)"
        );
        let err = q("INSERT INTO m (id, room) VALUES (1, 'a')", vec![])
            .execute(&conn)
            .unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::Backend);
        assert_eq!(
            err.to_string(),
            "query failed: UNIQUE constraint failed: m.id"
        );
        // A mapper's error stops the statement and comes back as it is.
        let err = Query::<String>::__new("SELECT id FROM m", vec![], |row| row.get(0, "id"))
            .fetch_all(&conn)
            .unwrap_err();
        assert_eq!(err.kind(), QueryErrorKind::Decode);
        assert_eq!(err.column(), Some("id"));
    }
}
