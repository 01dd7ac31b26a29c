//! Checked queries on a Durable Object's `worker::SqlStorage`: the cursor's
//! `raw()` rows (JavaScript arrays) decoded in place, no serde.
//!
//! workerd's `exec` takes numbers, strings, `ArrayBuffer`s and `null` as
//! bindings and returns the same kinds (`src/workerd/api/sql.c++`: every
//! INTEGER becomes a `double`), which is why an integer beyond ±2^53 is
//! refused both ways (see the module documentation of
//! [`query`](super)).

use std::borrow::Cow;

use ::worker::worker_sys::{SqlStorage as RawSql, SqlStorageCursor};
use ::worker::SqlStorage;
use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::{
    changed_rows, check_javascript_args, Arg, Executor, QueryError, QueryErrorKind, Row, ValueRef,
};
use crate::backend::sqlite_message;

/// workerd's message of a thrown error, without its result-code suffix.
fn js_error(e: &JsValue) -> QueryError {
    let text = match e.dyn_ref::<js_sys::Error>() {
        Some(e) => String::from(e.message()),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    };
    let message = sqlite_message(&text).to_owned();
    // workerd checks the count itself, before preparing anything else.
    let kind = if message.contains("Wrong number of parameter bindings") {
        QueryErrorKind::Bind
    } else {
        QueryErrorKind::Backend
    };
    QueryError::new(kind, message)
}

/// The arguments as `exec` takes them.
fn bindings(args: &[Arg]) -> Result<Array, QueryError> {
    check_javascript_args(args)?;
    let array = Array::new_with_length(args.len() as u32);
    for (i, arg) in args.iter().enumerate() {
        let value = match arg {
            Arg::Null => JsValue::NULL,
            Arg::Integer(n) => JsValue::from_f64(*n as f64),
            Arg::Real(f) => JsValue::from_f64(*f),
            Arg::Text(t) => JsValue::from_str(t),
            Arg::Blob(b) => Uint8Array::from(b.as_slice()).buffer().into(),
        };
        array.set(i as u32, value);
    }
    Ok(array)
}

fn exec(sql: &SqlStorage, query: &str, args: &[Arg]) -> Result<SqlStorageCursor, QueryError> {
    let raw: &RawSql = sql.as_ref().unchecked_ref();
    raw.exec(query, bindings(args)?).map_err(|e| js_error(&e))
}

/// Steps `cursor` to its end through `raw()`, whose `next()` catches a
/// JavaScript exception (a constraint failing on a later row) instead of
/// trapping the instance.
fn each_row(
    cursor: &SqlStorageCursor,
    each: &mut dyn FnMut(&Array) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    let rows = cursor.raw();
    loop {
        let next = rows.next().map_err(|e| js_error(&e))?;
        if next.done() {
            return Ok(());
        }
        each(next.value().unchecked_ref())?;
    }
}

/// Column `index` of a `raw()` row.
pub(super) fn value(row: &Array, index: usize) -> Option<ValueRef<'static>> {
    if index >= row.length() as usize {
        return None;
    }
    let v = row.get(index as u32);
    Some(if v.is_null() || v.is_undefined() {
        ValueRef::Null
    } else if let Some(n) = v.as_f64() {
        ValueRef::Number(n)
    } else if let Some(s) = v.as_string() {
        ValueRef::Text(Cow::Owned(s))
    } else if let Some(buffer) = v.dyn_ref::<ArrayBuffer>() {
        ValueRef::Blob(Cow::Owned(Uint8Array::new(buffer).to_vec()))
    } else if let Some(bytes) = v.dyn_ref::<Uint8Array>() {
        ValueRef::Blob(Cow::Owned(bytes.to_vec()))
    } else {
        // workerd returns nothing else; a boolean would be a new kind.
        ValueRef::Text(Cow::Owned(format!("{v:?}")))
    })
}

/// A one-row, one-column integer (`SELECT total_changes()` and the like).
fn counter(sql: &SqlStorage, query: &str) -> Result<Vec<u64>, QueryError> {
    let mut out = Vec::new();
    let cursor = exec(sql, query, &[])?;
    each_row(&cursor, &mut |row| {
        for i in 0..row.length() {
            out.push(row.get(i).as_f64().unwrap_or(0.0) as u64);
        }
        Ok(())
    })?;
    Ok(out)
}

/// A Durable Object's storage, as `durable_schema::worker::sql` returns it.
impl Executor for SqlStorage {
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let cursor = exec(self, sql, args)?;
        each_row(&cursor, &mut |row| {
            each(&Row {
                inner: super::Inner::Js(row),
                numbers: false,
            })
        })
    }

    /// workerd's `rowsWritten` counts index entries too (it is the billed
    /// figure), so the count comes from SQLite's counters, read with one
    /// statement before and one after.
    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError> {
        let before = counter(self, "SELECT total_changes()")?;
        let cursor = exec(self, sql, args)?;
        each_row(&cursor, &mut |_| Ok(()))?;
        let after = counter(self, "SELECT total_changes(), changes()")?;
        match (before.as_slice(), after.as_slice()) {
            ([before], [total, changes]) => Ok(changed_rows(*before, *total, *changes)),
            _ => Err(QueryError::new(
                QueryErrorKind::Backend,
                "`SELECT total_changes(), changes()` did not return one row of two integers",
            )),
        }
    }
}

/// `?` in a Durable Object's `fetch`: a checked query's error becomes
/// `worker::Error::RustError` with its one-line message (which names the
/// kind and, where there is one, the column).
impl From<QueryError> for ::worker::Error {
    fn from(e: QueryError) -> Self {
        ::worker::Error::RustError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_error_is_a_worker_error_with_its_message() {
        let e = QueryError::new(QueryErrorKind::NoRows, "the statement returned no row");
        let text = e.to_string();
        match ::worker::Error::from(e) {
            ::worker::Error::RustError(m) => assert_eq!(m, text),
            other => panic!("expected RustError, got {other:?}"),
        }
    }
}
