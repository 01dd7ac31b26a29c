//! Checked queries on a `rusqlite::Connection` (feature `rusqlite`).

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef as SqlValueRef};
use rusqlite::{Connection, ToSql};

use super::{changed_rows, check_count, Arg, Executor, QueryError, QueryErrorKind, Row, ValueRef};

/// A parameter bound as its storage class.
impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Null => SqlValueRef::Null,
            Arg::Integer(i) => SqlValueRef::Integer(*i),
            Arg::Real(f) => SqlValueRef::Real(*f),
            Arg::Text(t) => SqlValueRef::Text(t.as_bytes()),
            Arg::Blob(b) => SqlValueRef::Blob(b),
        }))
    }
}

impl<'a> From<SqlValueRef<'a>> for ValueRef<'a> {
    /// TEXT that is not UTF-8 (SQLite does not check what it is given) is
    /// read with replacement characters rather than refused.
    #[inline]
    fn from(v: SqlValueRef<'a>) -> Self {
        match v {
            SqlValueRef::Null => ValueRef::Null,
            SqlValueRef::Integer(i) => ValueRef::Integer(i),
            SqlValueRef::Real(f) => ValueRef::Real(f),
            // `from_utf8` first: the lossy path is slower on valid text.
            SqlValueRef::Text(t) => ValueRef::Text(match std::str::from_utf8(t) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(t),
            }),
            SqlValueRef::Blob(b) => ValueRef::Blob(Cow::Borrowed(b)),
        }
    }
}

/// Column `index` of a rusqlite row.
#[inline]
pub(super) fn value<'a>(
    row: &'a rusqlite::Row<'a>,
    index: usize,
) -> rusqlite::Result<ValueRef<'a>> {
    row.get_ref(index).map(ValueRef::from)
}

/// SQLite's own message, without rusqlite's decoration.
fn error(kind: QueryErrorKind, e: &rusqlite::Error) -> QueryError {
    let message = match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    QueryError::new(kind, message)
}

/// Prepares `sql` and binds `args`. Not from a statement cache: rusqlite's
/// is its `cache` feature (two more crates), and this backend serves tests
/// and tools; a Durable Object caches statements in workerd.
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[Arg],
) -> Result<rusqlite::Statement<'c>, QueryError> {
    let mut stmt = conn
        .prepare(sql)
        .map_err(|e| error(QueryErrorKind::Prepare, &e))?;
    check_count(stmt.parameter_count(), args)?;
    for (i, arg) in args.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, arg)
            .map_err(|e| error(QueryErrorKind::Bind, &e))?;
    }
    Ok(stmt)
}

/// Statements run by stepping (`raw_query`), never `Statement::execute`,
/// which refuses statements that return rows (`... RETURNING`).
impl Executor for Connection {
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let mut stmt = prepare(self, sql, args)?;
        let mut rows = stmt.raw_query();
        while let Some(row) = rows
            .next()
            .map_err(|e| error(QueryErrorKind::Backend, &e))?
        {
            each(&Row::from_rusqlite(row))?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError> {
        let mut stmt = prepare(self, sql, args)?;
        let before = self.total_changes();
        let mut rows = stmt.raw_query();
        while rows
            .next()
            .map_err(|e| error(QueryErrorKind::Backend, &e))?
            .is_some()
        {}
        drop(rows);
        Ok(changed_rows(before, self.total_changes(), self.changes()))
    }
}
