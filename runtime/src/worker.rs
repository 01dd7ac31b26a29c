//! The Durable Object backend (workers-rs 0.8.7): on wasm32 it needs no
//! feature flag.
//!
//! - Statements run one at a time through `SqlStorage::exec` (synchronous).
//! - A transaction is `ctx.storage.transactionSync(callback)`: workerd refuses
//!   `BEGIN` through `exec`, and workers-rs 0.8.7 has no binding for
//!   `transactionSync`, so it is called through `Storage::as_raw()`. The
//!   callback throws (returns `Err`) on the first failing statement, which
//!   makes workerd roll the whole transaction back.
//! - The constructor hook (`Self::migrate(&state)` in the generated code, see
//!   [`MigrateTarget`]) starts the migrator under
//!   `State::block_concurrency_while` without awaiting: the input gate closes
//!   at that call, so no event reaches the object before the schema is
//!   current, and an error resets the object. Observed in workerd (wrangler
//!   4.164, workerd 2026-11-17): the reset also discards every write of that
//!   run, including migrations that committed before the failing one, so the
//!   object retries from its previous version on the next request; each
//!   attempt logs the error with `console.error`.
//!
//! ```no_run
//! use durable_schema_runtime::{worker as ds, Schema};
//! use worker::{Response, Result, State};
//!
//! // In a `/schema` debug route of a Durable Object holding `state`:
//! fn schema_route(state: &State, schema: &Schema) -> Result<Response> {
//!     let mut body = match ds::status(state, schema) {
//!         Ok(status) => status.to_string(),
//!         Err(e) => format!("error: {e}\n"),
//!     };
//!     if let Some(report) = ds::last_report(state) {
//!         body.push_str(&format!("last run: {report}\n"));
//!     }
//!     Response::ok(body)
//! }
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use ::worker::{SqlStorage, SqlStorageValue, State, Storage};
use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::__private::MigrateTarget;
use crate::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use crate::{MigrateError, Report, Schema, Status};

/// A Durable Object's SQLite storage as a [`Backend`].
///
/// ```no_run
/// # fn demo(state: &worker::State, schema: &durable_schema_runtime::Schema) {
/// use durable_schema_runtime::worker::DurableObjectSql;
///
/// // What the constructor hook does, without `blockConcurrencyWhile`:
/// let report = schema.migrate(&DurableObjectSql::new(state));
/// # let _ = report;
/// # }
/// ```
pub struct DurableObjectSql {
    storage: Storage,
    sql: SqlStorage,
}

impl std::fmt::Debug for DurableObjectSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableObjectSql").finish_non_exhaustive()
    }
}

impl DurableObjectSql {
    /// The storage of the Durable Object behind `state`.
    pub fn new(state: &State) -> Self {
        Self::from_storage(state.storage())
    }

    /// Wraps a `Storage` (`state.storage()`).
    pub fn from_storage(storage: Storage) -> Self {
        let sql = storage.sql();
        Self { storage, sql }
    }
}

fn bindings(params: &[Value]) -> Option<Vec<SqlStorageValue>> {
    if params.is_empty() {
        return None;
    }
    Some(
        params
            .iter()
            .map(|p| match p {
                Value::Null => SqlStorageValue::Null,
                Value::Integer(i) => SqlStorageValue::Integer(*i),
                Value::Text(t) => SqlStorageValue::String(t.clone()),
            })
            .collect(),
    )
}

fn value(v: SqlStorageValue) -> Value {
    match v {
        SqlStorageValue::Null => Value::Null,
        SqlStorageValue::Boolean(b) => Value::Integer(i64::from(b)),
        SqlStorageValue::Integer(i) => Value::Integer(i),
        SqlStorageValue::Float(f) => Value::Text(f.to_string()),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// workerd's own message (e.g. `UNIQUE constraint failed: users.email:
/// SQLITE_CONSTRAINT`), without workers-rs's `Error: ` prefix.
fn message(e: ::worker::Error) -> BackendError {
    match e {
        ::worker::Error::UnknownJsError { message, .. } | ::worker::Error::JsError(message) => {
            BackendError::new(message)
        }
        other => BackendError::new(other.to_string()),
    }
}

fn js_message(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// Runs one statement to the end. workerd steps a statement lazily once it
/// has produced a row, so the cursor is drained: a migration statement that
/// returns rows (`... RETURNING`, a PRAGMA) must still run to completion.
fn run(sql: &SqlStorage, text: &str, params: &[Value]) -> Result<(), BackendError> {
    let cursor = sql.exec(text, bindings(params)).map_err(message)?;
    for row in cursor {
        row.map_err(message)?;
    }
    Ok(())
}

impl Backend for DurableObjectSql {
    /// `rows_read` is `SqlCursor::rows_read()`: the rows workerd bills.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let cursor = self.sql.exec(sql, bindings(params)).map_err(message)?;
        let mut rows = Vec::new();
        // Never `SqlCursor::one()`: on zero rows it throws inside a binding
        // that does not catch, which breaks the wasm instance.
        for row in cursor.raw() {
            rows.push(row.map_err(message)?.into_iter().map(value).collect());
        }
        let read = u64::try_from(cursor.rows_read()).unwrap_or(u64::MAX);
        Ok(Rows::new(rows, read))
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<(), TxError> {
        let raw: &JsValue = self.storage.as_raw().as_ref();
        // Looked up before the callback exists: a `once_into_js` closure
        // that is never called is never freed.
        let transaction_sync = Reflect::get(raw, &JsValue::from_str("transactionSync"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| {
                TxError::outside_steps(BackendError::new(
                    "ctx.storage.transactionSync is not available (not a SQLite-backed \
                     Durable Object? add the class to `new_sqlite_classes` in wrangler.toml)",
                ))
            })?;

        // The callback must be 'static, hence owned steps and a shared slot
        // for the failing step's index and message.
        let failed: Rc<RefCell<Option<(usize, BackendError)>>> = Rc::default();
        let slot = Rc::clone(&failed);
        let sql = self.sql.clone();
        // AssertUnwindSafe: DO builds abort on panic; with unwinding, a
        // panic here leaves nothing half-updated on the Rust side (the slot
        // is written last) and workerd rolls the transaction back.
        let callback = Closure::once_into_js(AssertUnwindSafe(move || -> Result<(), JsValue> {
            for (i, step) in steps.iter().enumerate() {
                if let Err(e) = run(&sql, step.sql(), step.params()) {
                    let thrown = JsValue::from_str(e.message());
                    *slot.borrow_mut() = Some((i, e));
                    // Throwing out of the callback rolls the transaction back.
                    return Err(thrown);
                }
            }
            Ok(())
        }));

        match transaction_sync.call1(raw, &callback) {
            Ok(_) => Ok(()),
            Err(thrown) => {
                let failed = failed.borrow_mut().take();
                Err(match failed {
                    Some((i, e)) => TxError::at_step(i, e),
                    None => TxError::outside_steps(BackendError::new(js_message(&thrown))),
                })
            }
        }
    }
}

/// How many objects' last reports an isolate keeps.
const MAX_LAST_REPORTS: usize = 64;

thread_local! {
    /// The last successful report per object id. An isolate (one wasm
    /// instance) may host several objects of a class, so it is keyed.
    static LAST_REPORTS: RefCell<HashMap<String, Report>> = RefCell::new(HashMap::new());
}

/// The report of the last migration run the constructor hook made for this
/// object in this isolate, if it succeeded. For debug routes.
pub fn last_report(state: &State) -> Option<Report> {
    let id = state.id().to_string();
    LAST_REPORTS.with(|reports| reports.borrow().get(&id).cloned())
}

/// The applied/pending view of this object's database, for a `/schema`
/// debug route. Reads the whole tracking table; changes nothing.
pub fn status(state: &State, schema: &Schema) -> Result<Status, MigrateError> {
    schema.status(&DurableObjectSql::new(state))
}

/// The constructor hook on a Durable Object: `Self::migrate(&state)` in
/// `new`.
impl MigrateTarget for State {
    type Output = ();

    fn __migrate(&self, schema: &Schema) {
        let schema = *schema;
        let backend = DurableObjectSql::new(self);
        let id = self.id().to_string();
        let gate = self.block_concurrency_while(async move {
            match schema.migrate(&backend) {
                Ok(report) => {
                    if let Some(db) = report.ahead() {
                        ::worker::console_warn!(
                            "durable-schema: database at version {db} is ahead of the code \
                             (version {}); nothing applied",
                            schema.version()
                        );
                    }
                    LAST_REPORTS.with(|reports| {
                        let mut reports = reports.borrow_mut();
                        // An isolate may host many objects over its life;
                        // keep the map small (the reports are debug data).
                        if reports.len() >= MAX_LAST_REPORTS && !reports.contains_key(&id) {
                            reports.clear();
                        }
                        reports.insert(id, report);
                    });
                    Ok(())
                }
                Err(e) => {
                    // The message names the version, file, statement, line
                    // and SQLite's message where one applies.
                    ::worker::console_error!("durable-schema: migration failed: {e}");
                    // Err makes workerd reset the object; the next request
                    // constructs it again and retries.
                    Err(::worker::Error::RustError(e.to_string()))
                }
            }
        });
        // Deliberately not awaited: the gate closed when
        // `block_concurrency_while` was called, and the constructor cannot
        // await. The migration runs before any event is delivered.
        drop(gate);
    }
}
