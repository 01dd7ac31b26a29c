//! The rusqlite backend (feature `rusqlite`): native tests, local tools, the
//! CLI. `SCHEMA.migrate(&conn)` with a `rusqlite::Connection`; each pending
//! migration runs in a `BEGIN IMMEDIATE` transaction, so `conn` must not be
//! inside a transaction already.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use rusqlite::ToSql;

use crate::backend::{Backend, BackendError, Rows, Step, TxError, Value};

/// The SQLite error's own message, without rusqlite's decoration (the SQL
/// text and offset it appends to syntax errors): the executor adds the file
/// and line itself.
fn message(e: &rusqlite::Error) -> BackendError {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => BackendError::new(msg.as_str()),
        rusqlite::Error::SqlInputError { msg, .. } => BackendError::new(msg.as_str()),
        other => BackendError::new(other.to_string()),
    }
}

/// A column as the executor sees it: REAL and BLOB read as text (see
/// [`Value`]). Shared with other rusqlite-based backends (the facade's
/// `testing` database).
impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Text(f.to_string()),
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                Value::Text(String::from_utf8_lossy(t).into_owned())
            }
        }
    }
}

/// A parameter bound as SQLite's NULL, INTEGER or TEXT.
impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        })
    }
}

/// The first `columns` values of `row`.
fn values(row: &rusqlite::Row<'_>, columns: usize) -> Result<Vec<Value>, BackendError> {
    (0..columns)
        .map(|i| row.get_ref(i).map(Value::from).map_err(|e| message(&e)))
        .collect()
}

/// Prepares `sql` (exactly one statement) and binds `params` positionally.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Value],
) -> Result<rusqlite::Statement<'c>, BackendError> {
    let mut stmt = conn.prepare(sql).map_err(|e| message(&e))?;
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, p).map_err(|e| message(&e))?;
    }
    Ok(stmt)
}

/// Runs one statement to its end. Steps rather than `Statement::execute`,
/// which refuses statements that return rows (a PRAGMA, `... RETURNING`): a
/// migration may legitimately contain those.
///
/// Returns the first row of a [`Step::check`], which must return none.
fn run(conn: &Connection, step: &Step) -> Result<Option<Vec<Value>>, BackendError> {
    let mut stmt = prepare(conn, step.sql(), step.params())?;
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(|e| message(&e))? {
        if step.is_check() {
            return values(row, columns).map(Some);
        }
    }
    Ok(None)
}

/// Rolls back if a transaction is still open. SQLite may already have rolled
/// back on its own (e.g. after SQLITE_FULL), in which case there is nothing to
/// do; a failing ROLLBACK cannot be reported better than the original error.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// `rows_read` is the number of rows returned: rusqlite has no per-statement
/// "rows scanned" counter like the Durable Object's, and the executor's
/// queries read only the rows they return (primary-key order with LIMIT, or
/// small system tables).
impl Backend for Connection {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let mut stmt = prepare(self, sql, params)?;
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| message(&e))? {
            out.push(values(row, columns)?);
        }
        let read = out.len() as u64;
        Ok(Rows::new(out, read))
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        // A Durable Object runs every migration with foreign keys on
        // (`PRAGMA foreign_keys = OFF` is a no-op inside its transaction), so
        // a local run does the same: a rebuild that would cascade-delete rows
        // in production does it here too, instead of passing silently. The
        // connection's own setting is restored afterwards.
        if !self.is_autocommit() {
            // Our BEGIN would fail, and the caller's transaction would hold
            // pragmas and commit timing we rely on: refuse clearly.
            return Err(TxError::outside_steps(BackendError::new(
                "the connection is already inside a transaction; call migrate outside any transaction (each migration runs in its own)",
            )));
        }
        let _keys = ForeignKeysOn::enable(self).map_err(TxError::outside_steps)?;
        // IMMEDIATE takes the write lock up front, so two processes
        // migrating one file serialise here instead of failing on a lock
        // upgrade halfway through.
        self.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
            TxError::outside_steps(BackendError::new(format!(
                "cannot begin the migration's transaction: {}",
                message(&e).message()
            )))
        })?;
        let changes_before = self.total_changes();
        for (i, step) in steps.iter().enumerate() {
            let failed = match run(self, step) {
                Ok(None) => continue,
                Ok(Some(row)) => TxError::with_row(i, row),
                Err(e) => TxError::at_step(i, e),
            };
            rollback(self);
            return Err(failed);
        }
        let written = self.total_changes().saturating_sub(changes_before);
        if let Err(e) = self.execute_batch("COMMIT") {
            rollback(self);
            return Err(TxError::outside_steps(BackendError::new(format!(
                "commit failed: {}",
                message(&e).message()
            ))));
        }
        Ok(written)
    }
}

/// Turns foreign keys on for the life of the guard, if they were off.
/// (The pragma cannot change inside a transaction, so this wraps BEGIN …
/// COMMIT.)
struct ForeignKeysOn<'c> {
    conn: &'c Connection,
    restore: bool,
}

impl<'c> ForeignKeysOn<'c> {
    fn enable(conn: &'c Connection) -> Result<Self, BackendError> {
        let on: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .map_err(|e| message(&e))?;
        if on == 0 {
            conn.execute_batch("PRAGMA foreign_keys = ON")
                .map_err(|e| message(&e))?;
        }
        Ok(Self {
            conn,
            restore: on == 0,
        })
    }
}

impl Drop for ForeignKeysOn<'_> {
    fn drop(&mut self) {
        if self.restore {
            // Best effort: the transaction is over (committed or rolled
            // back), so the pragma applies.
            let _ = self.conn.execute_batch("PRAGMA foreign_keys = OFF");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")
            .unwrap();
        conn
    }

    #[test]
    fn failing_step_rolls_back_and_names_its_index() {
        let conn = conn();
        let err = conn
            .transaction(vec![
                Step::with_params("INSERT INTO t VALUES (?1)", vec![Value::Integer(1)]),
                Step::new("INSERT INTO t VALUES (2)"),
                Step::new("INSERT INTO t VALUES (1)"),
            ])
            .unwrap_err();
        assert_eq!(err.step(), Some(2));
        assert_eq!(err.error().message(), "UNIQUE constraint failed: t.x");
        assert!(conn.is_autocommit());
        let rows = Backend::query(&conn, "SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(rows.rows(), [vec![Value::Integer(0)]]);
        assert_eq!(rows.rows_read(), 1);
    }

    #[test]
    fn rows_written_are_counted_and_a_check_returning_a_row_fails_with_it() {
        let conn = conn();
        let written = conn
            .transaction(vec![
                Step::new("INSERT INTO t VALUES (1), (2)"),
                Step::check("SELECT x FROM t WHERE x > 2"),
            ])
            .unwrap();
        assert_eq!(written, 2);
        let err = conn
            .transaction(vec![
                Step::new("INSERT INTO t VALUES (3)"),
                Step::check("SELECT x, 'why' FROM t WHERE x > 2"),
            ])
            .unwrap_err();
        assert_eq!(err.step(), Some(1));
        assert_eq!(
            err.row(),
            Some(&[Value::Integer(3), Value::Text("why".into())][..])
        );
        assert!(conn.is_autocommit());
        let rows = Backend::query(&conn, "SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(rows.rows(), [vec![Value::Integer(2)]], "rolled back");
    }

    #[test]
    fn refuses_to_run_inside_the_callers_transaction() {
        let conn = conn();
        conn.execute_batch("BEGIN").unwrap();
        let err = conn
            .transaction(vec![Step::new("INSERT INTO t VALUES (1)")])
            .unwrap_err();
        assert_eq!(err.step(), None);
        assert!(err
            .error()
            .message()
            .contains("already inside a transaction"));
        conn.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn migrations_run_with_foreign_keys_on_and_the_setting_is_restored() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; CREATE TABLE p (id INTEGER PRIMARY KEY); \
             CREATE TABLE c (p INTEGER REFERENCES p (id) ON DELETE CASCADE); \
             INSERT INTO p VALUES (1); INSERT INTO c VALUES (1);",
        )
        .unwrap();
        conn.transaction(vec![Step::new("DELETE FROM p")]).unwrap();
        let children = Backend::query(&conn, "SELECT count(*) FROM c", &[]).unwrap();
        assert_eq!(
            children.rows(),
            [vec![Value::Integer(0)]],
            "the cascade ran"
        );
        let fk = Backend::query(&conn, "PRAGMA foreign_keys", &[]).unwrap();
        assert_eq!(fk.rows(), [vec![Value::Integer(0)]], "setting restored");
    }

    #[test]
    fn statements_returning_rows_run_to_completion() {
        let conn = conn();
        conn.transaction(vec![
            Step::new("INSERT INTO t VALUES (1), (2), (3) RETURNING x"),
            Step::new("PRAGMA foreign_key_check"),
        ])
        .unwrap();
        let rows = Backend::query(&conn, "SELECT x FROM t ORDER BY x", &[]).unwrap();
        assert_eq!(rows.rows().len(), 3);
    }

    #[test]
    fn messages_are_sqlites_own() {
        let conn = conn();
        let err = run(&conn, &Step::new("CREATE TABLE (")).unwrap_err();
        assert_eq!(err.message(), "near \"(\": syntax error");
        let err = run(&conn, &Step::new("SELECT 1; SELECT 2")).unwrap_err();
        assert!(err.message().contains("ultiple"), "{err}");
    }

    #[test]
    fn values_round_trip() {
        let conn = conn();
        let rows = Backend::query(
            &conn,
            "SELECT ?1, ?2, ?3, 1.5, x'41'",
            &[Value::Null, Value::Integer(-7), Value::from("é")],
        )
        .unwrap();
        assert_eq!(
            rows.rows(),
            [vec![
                Value::Null,
                Value::Integer(-7),
                Value::Text("é".into()),
                Value::Text("1.5".into()),
                Value::Text("A".into())
            ]]
        );
    }
}
