//! worker-chat: a small chat service on a SQLite-backed Durable Object whose
//! schema is managed by durable-schema.
//!
//! One `ChatRoom` object per room. Routes (the Worker forwards `/rooms/:room/*`
//! to the room's object):
//!
//! - `GET  /`                                  readiness: `worker-chat ok: schema version N`
//! - `GET  /rooms/:room/messages`              the room's messages (JSON)
//! - `POST /rooms/:room/messages`              `{"author": "...", "body": "..."}`
//! - `POST /rooms/:room/messages/:id/react`    +1 reaction (schema version 3 on)
//! - `GET  /rooms/:room/schema`                debug: code version, stored version,
//!   applied migrations (with their checksums), and what the constructor's migration run did
//!   (including `rows_read` of its up-to-date check, and its error).
//! - `GET  /rooms/:room/export`                every table with its columns and rows,
//!   read without the schema guard: an operator can look inside a stuck room.
//! - `GET  /rooms/:room/q/by-author/:author`   the author's messages;
//!   `.../q/first/:author` the first one (404 `no_rows`);
//!   `POST .../q/rename/:from/:to` renames an author (rows changed);
//!   `GET .../q/roundtrip` binds and reads back i64, f64, text, blob and NULL;
//!   `GET .../q/big` reads `SELECT 9007199254740993` (500 `unsafe_integer`);
//!   `GET .../q/bind-big` binds 2^53 (500 `unsafe_integer`). See `mod checked`.
//!
//! Routes that need the schema reach the database through
//! `durable_schema::worker::checked`, which answers the migration's error
//! until the schema is current: those routes answer 503 with it (file,
//! statement, SQLite's message), while `schema` and `export` keep working.
//! Over a database whose newer migration breaks older code (a rollback),
//! `checked` judges each query instead of the whole code: a query that uses
//! what the migration removed or changed answers 503 `incompatible`, the
//! others serve. `/q/roundtrip`, `/q/big` and `/q/bind-big` stay on
//! `durable_schema::worker::sql`, which refuses everything in that case (it
//! hands out raw storage, which cannot be judged): they use no table, and
//! still answer 503 there.
//!
//! Every statement of those routes is a checked query
//! (`durable_schema::query!`/`query_as!`): prepared at compile time against
//! the schema the migrations leave behind, so a migration that drops or
//! renames a column they use fails the build. `schema` uses the library's
//! status API and `export` reads tables whose names it only learns at run
//! time, so they stay on the raw storage API.
//!
//! The code adapts to the migrations it ships with: the same source builds
//! with or without `migrations/0003_add_reactions.sql`. A checked query
//! naming `reactions` does not compile without it, so `build.rs` sets
//! `cfg(reactions)` when that file ships, and the queries that use the
//! column are compiled under it.

use durable_schema::query::{Checked, QueryError, QueryErrorKind};
use durable_schema::worker as ds;
use durable_schema::{durable_schema, query, query_as};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::*;

#[durable_object]
#[durable_schema(dir = "migrations")]
pub struct ChatRoom {
    state: State,
}

/// `messages.reactions` exists when `0003_add_reactions.sql` ships (set by
/// `build.rs`; the queries that name the column need it at compile time).
const HAS_REACTIONS: bool = cfg!(reactions);
/// Longest author name / message body accepted, in bytes.
const MAX_AUTHOR: usize = 64;
const MAX_BODY: usize = 4000;

#[derive(Serialize, Deserialize)]
struct Message {
    id: i64,
    author: String,
    body: String,
    sent_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reactions: Option<i64>,
}

#[derive(Deserialize)]
struct NewMessage {
    author: String,
    body: String,
}

fn json_status(value: &serde_json::Value, status: u16) -> Result<Response> {
    Ok(Response::from_json(value)?.with_status(status))
}

fn error(status: u16, message: impl Into<String>) -> Result<Response> {
    json_status(&json!({ "error": message.into() }), status)
}

/// A query's error as the routes report it when it is not one they answer
/// themselves: a failed request (the Worker answers 500 for the room).
fn failed(e: QueryError) -> Error {
    Error::RustError(e.to_string())
}

/// A query refused by `ds::checked` because a newer migration breaks it
/// (kind `incompatible`): 503, like the migration errors. Anything else is
/// a failed request (500).
fn query_failed(e: QueryError) -> Result<Response> {
    if e.kind() == QueryErrorKind::Incompatible {
        return json_status(
            &json!({ "error": "query incompatible", "kind": e.kind().as_str(), "message": e.to_string() }),
            503,
        );
    }
    Err(failed(e))
}

/// 503 with the migration error: `kind`, `file`, `sqlite`, `message`...
fn unavailable(e: &durable_schema::MigrateError) -> Result<Response> {
    let detail: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap_or_default();
    json_status(
        &json!({ "error": "schema unavailable", "migration": detail }),
        503,
    )
}

impl DurableObject for ChatRoom {
    fn new(state: State, _env: Env) -> Self {
        // Brings this room's database to CURRENT_SCHEMA_VERSION under
        // blockConcurrencyWhile: no request reaches `fetch` before it is done.
        Self::migrate(&state);
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method(), segments.as_slice()) {
            (Method::Get, ["rooms", _, "messages"]) => self.list(),
            (Method::Post, ["rooms", _, "messages"]) => match req.json::<NewMessage>().await {
                Ok(m) => self.post(m),
                Err(e) => error(400, format!("expected {{\"author\", \"body\"}}: {e}")),
            },
            (Method::Post, ["rooms", _, "messages", id, "react"]) => self.react(id),
            (Method::Get, ["rooms", _, "schema"]) => self.schema(),
            (Method::Get, ["rooms", _, "export"]) => self.export(),
            (method, ["rooms", _, "q", rest @ ..]) => self.checked(method, rest),
            _ => error(404, "no such route"),
        }
    }
}

impl ChatRoom {
    fn list(&self) -> Result<Response> {
        let sql = match ds::checked(&self.state, &Self::SCHEMA) {
            Ok(sql) => sql,
            Err(e) => return unavailable(&e),
        };
        #[cfg(reactions)]
        let messages = query_as!(
            Message,
            ChatRoom,
            "SELECT id, author, body, sent_at, reactions FROM messages ORDER BY id LIMIT 1000"
        );
        // Without the column the field stays `None`, left out of the JSON.
        #[cfg(not(reactions))]
        let messages = query_as!(
            Message,
            ChatRoom,
            r#"SELECT id, author, body, sent_at, NULL AS "reactions: Option<i64>"
               FROM messages ORDER BY id LIMIT 1000"#
        );
        let messages = match messages.fetch_all(&sql) {
            Ok(messages) => messages,
            Err(e) => return query_failed(e),
        };
        json_status(
            &json!({
                "code_version": Self::CURRENT_SCHEMA_VERSION,
                "count": messages.len(),
                "messages": messages,
            }),
            200,
        )
    }

    fn post(&self, m: NewMessage) -> Result<Response> {
        let (author, body) = (m.author.trim(), m.body.trim());
        if author.is_empty() || author.len() > MAX_AUTHOR {
            return error(400, format!("author must be 1 to {MAX_AUTHOR} bytes"));
        }
        if body.is_empty() || body.len() > MAX_BODY {
            return error(400, format!("body must be 1 to {MAX_BODY} bytes"));
        }
        let sql = match ds::checked(&self.state, &Self::SCHEMA) {
            Ok(sql) => sql,
            Err(e) => return unavailable(&e),
        };
        // `reactions` left out (`None`) even where the column exists: the
        // answer to a POST has never carried it.
        let inserted = query_as!(
            Message,
            ChatRoom,
            r#"INSERT INTO messages (author, body) VALUES (?, ?)
               RETURNING id, author, body, sent_at, NULL AS "reactions: Option<i64>""#,
            author,
            body
        )
        .fetch_all(&sql);
        match inserted {
            Ok(mut rows) if !rows.is_empty() => {
                let message = rows.swap_remove(0);
                json_status(&serde_json::to_value(message)?, 201)
            }
            Ok(_) => error(500, "INSERT returned no row"),
            // From 0004_unique_messages.sql on: a double-post.
            Err(e) if e.to_string().contains("UNIQUE constraint failed") => {
                error(409, "duplicate message")
            }
            Err(e) => query_failed(e),
        }
    }

    fn react(&self, id: &str) -> Result<Response> {
        if !HAS_REACTIONS {
            return error(404, "reactions need schema version 3");
        }
        let Ok(id) = id.parse::<i64>() else {
            return error(400, "message id must be an integer");
        };
        let sql = match ds::checked(&self.state, &Self::SCHEMA) {
            Ok(sql) => sql,
            Err(e) => return unavailable(&e),
        };
        self.react_to(&sql, id)
    }

    #[cfg(reactions)]
    fn react_to(&self, sql: &Checked<SqlStorage>, id: i64) -> Result<Response> {
        let rows = query_as!(
            Message,
            ChatRoom,
            "UPDATE messages SET reactions = reactions + 1 WHERE id = ? \
             RETURNING id, author, body, sent_at, reactions",
            id
        )
        .fetch_all(sql);
        let mut rows = match rows {
            Ok(rows) => rows,
            Err(e) => return query_failed(e),
        };
        if rows.is_empty() {
            return error(404, "no such message");
        }
        json_status(&serde_json::to_value(rows.swap_remove(0))?, 200)
    }

    /// Unreachable: `react` answers 404 first when the column is missing.
    #[cfg(not(reactions))]
    fn react_to(&self, _sql: &Checked<SqlStorage>, _id: i64) -> Result<Response> {
        error(404, "reactions need schema version 3")
    }

    /// Debug view of the schema: what the code has, what the database has,
    /// and what the constructor's migration run did in this isolate.
    fn schema(&self) -> Result<Response> {
        let status = match ds::status(&self.state, &Self::SCHEMA) {
            Ok(status) => status,
            // E.g. a hand-rolled tracking table that cannot be adopted.
            Err(e) => {
                let detail: serde_json::Value =
                    serde_json::from_str(&e.to_json()).unwrap_or_default();
                return json_status(
                    &json!({
                        "code_version": Self::CURRENT_SCHEMA_VERSION,
                        "object_id": self.state.id().to_string(),
                        "status_error": detail,
                    }),
                    200,
                );
            }
        };
        let applied: Vec<_> = status
            .applied()
            .iter()
            .map(|a| {
                json!({
                    "version": a.version(),
                    "description": a.description(),
                    "applied_at": a.applied_at(),
                    // NULL only in a hand-rolled table not adopted yet.
                    "checksum": a.checksum(),
                })
            })
            .collect();
        let pending: Vec<_> = status.pending().iter().map(|m| m.name()).collect();
        let last_run = ds::last_wake(&self.state).map(|w| {
            let r = w.report();
            json!({
                "from_version": r.from_version(),
                "to_version": r.to_version(),
                "applied": r.applied().iter().map(|m| m.name()).collect::<Vec<_>>(),
                "ahead": r.ahead(),
                // Rows the run read to check the history: 1 when the
                // database was already current (the one-row fast path).
                "rows_read": r.rows_read(),
                "rows_written": r.rows_written(),
                "adopted": r.adopted(),
                // A new object created from the compile-time baseline (one
                // transaction) rather than migration by migration.
                "baseline": r.baseline(),
                "baseline_error": r.baseline_error(),
                "summary": r.to_string(),
                "error": w.error().map(|e| {
                    serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap_or_default()
                }),
            })
        });
        json_status(
            &json!({
                "code_version": Self::CURRENT_SCHEMA_VERSION,
                "object_id": self.state.id().to_string(),
                "stored_version": status.db_version(),
                "state": status.state().to_string(),
                "applied": applied,
                "pending": pending,
                // A batched statement half-way through the first pending
                // migration: its repetitions and rows so far.
                "in_progress": status.in_progress().map(|e| {
                    serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap_or_default()
                }),
                "last_run": last_run,
            }),
            200,
        )
    }
}

impl ChatRoom {
    /// Every table (Cloudflare's `_cf_` ones left out) with its columns and
    /// rows, straight from storage: no schema needed.
    fn export(&self) -> Result<Response> {
        let sql = self.state.storage().sql();
        #[derive(Deserialize)]
        struct Table {
            name: String,
        }
        let tables: Vec<Table> = sql
            .exec(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 ORDER BY name",
                None,
            )?
            .to_array()?;
        let mut out = serde_json::Map::new();
        for t in tables {
            let quoted = format!("\"{}\"", t.name.replace('"', "\"\""));
            let cursor = sql.exec(&format!("SELECT * FROM {quoted} LIMIT 1000"), None)?;
            let columns = cursor.column_names();
            let rows: Vec<serde_json::Value> = cursor.to_array()?;
            out.insert(t.name, json!({ "columns": columns, "rows": rows }));
        }
        json_status(&serde_json::Value::Object(out), 200)
    }
}

fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= 64
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => Response::ok(format!(
            "worker-chat ok: schema version {}\n",
            ChatRoom::CURRENT_SCHEMA_VERSION
        )),
        ["rooms", room, _, ..] if valid_room(room) => {
            let stub = env.durable_object("CHAT")?.id_from_name(room)?.get_stub()?;
            match stub.fetch_with_request(req).await {
                Ok(response) => Ok(response),
                // The object itself answers 503 when its schema is not
                // current; this is for failures of the stub call itself.
                Err(e) => {
                    console_error!("room {room}: {e}");
                    error(500, format!("room {room} unavailable: {e}"))
                }
            }
        }
        _ => error(404, "no such route"),
    }
}

/// The `/q/*` routes' rows and error responses: the run time of checked
/// queries (decoding, the ±2^53 guard, `no_rows`) proven in workerd.
mod checked {
    use durable_schema::query::QueryError;
    use serde_json::json;

    /// A row of `SELECT id, author, body FROM messages ...`.
    #[derive(Debug)]
    pub(crate) struct ByAuthor {
        pub(crate) id: i64,
        pub(crate) author: String,
        pub(crate) body: String,
    }

    /// i64, f64, text, blob and NULL, bound and read back.
    #[derive(Debug, PartialEq)]
    pub(crate) struct RoundTrip {
        pub(crate) i: i64,
        pub(crate) f: f64,
        pub(crate) t: String,
        pub(crate) b: Vec<u8>,
        pub(crate) n: Option<i64>,
    }

    /// 500 (404 for `no_rows`, 503 for `incompatible`) with the error's
    /// kind, column and message.
    pub(crate) fn failed(e: &QueryError) -> worker::Result<worker::Response> {
        let status = match e.kind().as_str() {
            "no_rows" => 404,
            "incompatible" => 503,
            _ => 500,
        };
        Ok(worker::Response::from_json(&json!({
            "error": e.to_string(),
            "kind": e.kind().as_str(),
            "column": e.column(),
        }))?
        .with_status(status))
    }
}

impl ChatRoom {
    fn checked(&self, method: Method, rest: &[&str]) -> Result<Response> {
        // The routes that read the transport, not the schema, stay on
        // `ds::sql` (see the crate's documentation).
        if let (Method::Get, ["roundtrip" | "big" | "bind-big"]) = (&method, rest) {
            let sql = match ds::sql(&self.state, &Self::SCHEMA) {
                Ok(sql) => sql,
                Err(e) => return unavailable(&e),
            };
            return Self::transport(rest, &sql);
        }
        let sql = match ds::checked(&self.state, &Self::SCHEMA) {
            Ok(sql) => sql,
            Err(e) => return unavailable(&e),
        };
        let message =
            |m: checked::ByAuthor| json!({ "id": m.id, "author": m.author, "body": m.body });
        let by_author = |author: &str| {
            query_as!(
                checked::ByAuthor,
                ChatRoom,
                "SELECT id, author, body FROM messages WHERE author = ? ORDER BY id",
                author
            )
        };
        match (method, rest) {
            (Method::Get, ["by-author", author]) => match by_author(author).fetch_all(&sql) {
                Ok(rows) => json_status(
                    &json!(rows.into_iter().map(message).collect::<Vec<_>>()),
                    200,
                ),
                Err(e) => checked::failed(&e),
            },
            (Method::Get, ["first", author]) => match by_author(author).fetch_one(&sql) {
                Ok(m) => json_status(&message(m), 200),
                Err(e) => checked::failed(&e),
            },
            (Method::Post, ["rename", from, to]) => match query!(
                ChatRoom,
                "UPDATE messages SET author = ? WHERE author = ?",
                *to,
                *from
            )
            .execute(&sql)
            {
                Ok(changed) => json_status(&json!({ "changed": changed }), 200),
                Err(e) => checked::failed(&e),
            },
            _ => error(404, "no such route"),
        }
    }

    /// `/q/roundtrip`, `/q/big`, `/q/bind-big`.
    fn transport(rest: &[&str], sql: &SqlStorage) -> Result<Response> {
        match rest {
            ["roundtrip"] => {
                let sent = checked::RoundTrip {
                    i: -9_007_199_254_740_991,
                    f: -0.1,
                    t: "é \u{1F600} \0 end".into(),
                    b: vec![0, 159, 255],
                    n: None,
                };
                let got = query_as!(
                    checked::RoundTrip,
                    ChatRoom,
                    r#"SELECT ? AS "i!: i64", ? AS "f!: f64", ? AS "t!: String",
                              ? AS "b!: Vec<u8>", ? AS "n: Option<i64>""#,
                    sent.i,
                    sent.f,
                    &sent.t,
                    &sent.b,
                    sent.n
                )
                .fetch_one(sql);
                match got {
                    Ok(got) => json_status(
                        &json!({
                            "equal": got == sent,
                            "i": got.i,
                            "f": got.f,
                            "t": got.t,
                            "b": got.b,
                            "n": got.n,
                        }),
                        200,
                    ),
                    Err(e) => checked::failed(&e),
                }
            }
            // workerd returns it as the number 9007199254740992: refused.
            ["big"] => {
                match query!(ChatRoom, r#"SELECT 9007199254740993 AS "n!: i64""#).fetch_one(sql) {
                    Ok(row) => json_status(&json!({ "n": row.n }), 200),
                    Err(e) => checked::failed(&e),
                }
            }
            ["bind-big"] => {
                match query!(ChatRoom, r#"SELECT ? AS "n: Option<i64>""#, 1_i64 << 53)
                    .fetch_one(sql)
                {
                    Ok(row) => json_status(&json!({ "n": row.n }), 200),
                    Err(e) => checked::failed(&e),
                }
            }
            _ => error(404, "no such route"),
        }
    }
}
