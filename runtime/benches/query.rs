//! Checked queries (`query::Query`, what `query!` generates) against
//! hand-written rusqlite with manual mapping, on the same statements and
//! the same in-memory database (issue 19: goal within 1.1x).
//!
//! - `many`: 100 rows of `(i64, String, Option<String>)` by a text argument;
//! - `one`: one row by primary key (`fetch_one` vs `query_row`);
//! - `execute`: an UPDATE of one row by primary key (rows changed).
//!
//! Both sides prepare the statement on every call (`prepare`, not
//! `prepare_cached`: the checked path's rusqlite backend does not use
//! rusqlite's statement cache, see `query::Executor`), so the difference is
//! the checked path's own cost: its arguments as owned `Arg`s, the row
//! callback, and the lossless decoding.
//!
//! `cargo bench -p durable-schema-runtime --features rusqlite --bench query`
//! (results in `runtime/benches/RESULTS.md`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use durable_schema_runtime::query::{Encode, Query};
use rusqlite::Connection;

#[derive(Debug, PartialEq)]
struct Message {
    id: i64,
    author: String,
    body: Option<String>,
}

const MANY: &str = "SELECT id, author, body FROM messages WHERE author = ? ORDER BY id";
const ONE: &str = "SELECT id, author, body FROM messages WHERE id = ?";
const UPDATE: &str = "UPDATE messages SET body = ? WHERE id = ?";

fn db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, author TEXT NOT NULL, body TEXT);
         CREATE INDEX messages_by_author ON messages (author, id);",
    )
    .unwrap();
    for i in 0..1000 {
        let body = (i % 7 != 0).then(|| format!("message number {i} with some text"));
        conn.execute(
            "INSERT INTO messages (author, body) VALUES (?1, ?2)",
            (format!("author{}", i % 10), body),
        )
        .unwrap();
    }
    conn
}

/// What `query!(Chat, MANY, author)` expands to.
fn checked_many(author: &str) -> Query<Message> {
    Query::__new(MANY, vec![Encode::encode(&author)], |row| {
        Ok(Message {
            id: row.get(0, "id")?,
            author: row.get(1, "author")?,
            body: row.get(2, "body")?,
        })
    })
}

fn checked_one(id: i64) -> Query<Message> {
    Query::__new(ONE, vec![Encode::encode(&id)], |row| {
        Ok(Message {
            id: row.get(0, "id")?,
            author: row.get(1, "author")?,
            body: row.get(2, "body")?,
        })
    })
}

fn checked_update(body: &str, id: i64) -> Query<()> {
    Query::__new(
        UPDATE,
        vec![Encode::encode(&body), Encode::encode(&id)],
        |_| Ok(()),
    )
}

fn map(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        author: r.get(1)?,
        body: r.get(2)?,
    })
}

fn hand_many(conn: &Connection, author: &str) -> Vec<Message> {
    let mut stmt = conn.prepare(MANY).unwrap();
    let rows = stmt.query_map([author], map).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

fn hand_one(conn: &Connection, id: i64) -> Message {
    conn.query_row(ONE, [id], map).unwrap()
}

fn hand_update(conn: &Connection, body: &str, id: i64) -> usize {
    conn.execute(UPDATE, (body, id)).unwrap()
}

fn queries(c: &mut Criterion) {
    let conn = db();
    assert_eq!(
        checked_many("author3").fetch_all(&conn).unwrap(),
        hand_many(&conn, "author3")
    );
    assert_eq!(
        checked_one(42).fetch_one(&conn).unwrap(),
        hand_one(&conn, 42)
    );
    assert_eq!(checked_update("x", 7).execute(&conn).unwrap(), 1);
    assert_eq!(hand_update(&conn, "y", 7), 1);

    let mut group = c.benchmark_group("query");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("many/checked", |b| {
        b.iter(|| checked_many("author3").fetch_all(&conn).unwrap())
    });
    group.bench_function("many/hand_written", |b| {
        b.iter(|| hand_many(&conn, "author3"))
    });
    group.bench_function("one/checked", |b| {
        b.iter(|| checked_one(42).fetch_one(&conn).unwrap())
    });
    group.bench_function("one/hand_written", |b| b.iter(|| hand_one(&conn, 42)));
    group.bench_function("execute/checked", |b| {
        b.iter(|| checked_update("z", 9).execute(&conn).unwrap())
    });
    group.bench_function("execute/hand_written", |b| {
        b.iter(|| hand_update(&conn, "z", 9))
    });
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
