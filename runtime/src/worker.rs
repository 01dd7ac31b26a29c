//! The Durable Object backend (workers-rs 0.8.7): on wasm32 it needs no
//! feature flag.
//!
//! - Statements run one at a time through `SqlStorage::exec` (synchronous).
//! - A transaction is `ctx.storage.transactionSync(callback)`: workerd refuses
//!   `BEGIN` through `exec`, and workers-rs 0.8.7 has no binding for
//!   `transactionSync`, so it is called through `Storage::as_raw()`. The
//!   callback throws (returns `Err`) on the first failing statement, which
//!   makes workerd roll that migration back (a savepoint inside the object's
//!   implicit transaction).
//! - The constructor hook (`Self::migrate(&state)` in the generated code)
//!   runs [`Schema::wake`] under workerd's `blockConcurrencyWhile` (called
//!   directly, not through `State::block_concurrency_while`: the same gate,
//!   less wasm), so no event reaches the object before the run is over. It
//!   never fails the constructor: a failed migration does not reset the
//!   object (which would discard the run's earlier migrations and retry on
//!   every request).
//!   Instead the object stays reachable, schema-dependent code asks [`sql`]
//!   and gets the typed [`MigrateError`] until the schema is current, and
//!   the next attempt waits for `retry_after` seconds or a new deploy.
//! - Before a run's first migration it commits a started record, and awaits
//!   `storage.sync()` before the migration runs (a `transactionSync` alone is
//!   a savepoint that a reset would roll back with the migration): a run
//!   killed by the 30-second gate or the CPU limit is then reported by the
//!   next wake-up as `interrupted`, not run again on every request. One
//!   migration per step, each made durable before the next starts (a new
//!   object syncs once, before its first migration).
//! - A migration with batched statements (`-- durable-schema: batch`) runs
//!   in phases, each repetition synced like a started record, so a reset
//!   loses at most the repetition it interrupted. The budget (`budget_ms`)
//!   is measured across those awaits (workerd's clock stands still in
//!   synchronous code); once it is spent between two repetitions the
//!   `blockConcurrencyWhile` slice ends with [`MigrateError::InProgress`],
//!   the events queued behind it get that error from [`sql`], and the next
//!   slice starts on its own (a background task: a zero-delay timer, then
//!   `blockConcurrencyWhile` again), until the migration is applied.
//! - A run that changed something or failed logs one JSON line
//!   ([`Wake::log_line`]): `console.log`, or `console.error` on failure.
//!
//! ```no_run
//! use durable_schema_runtime::{worker as ds, Schema};
//! use worker::{Response, Result, State};
//!
//! // A route that needs the schema: 503 with the reason until it is current.
//! fn count(state: &State, schema: &Schema) -> Result<Response> {
//!     let sql = match ds::sql(state, schema) {
//!         Ok(sql) => sql,
//!         Err(e) => return Ok(Response::error(e.to_string(), 503)?),
//!     };
//!     let rows: Vec<serde_json::Value> = sql.exec("SELECT count(*) AS n FROM users", None)?.to_array()?;
//!     Response::from_json(&rows)
//! }
//!
//! // A `/schema` debug route: works whatever state the schema is in.
//! fn schema_route(state: &State, schema: &Schema) -> Result<Response> {
//!     let mut body = match ds::status(state, schema) {
//!         Ok(status) => status.to_string(),
//!         Err(e) => format!("error: {e}\n"),
//!     };
//!     if let Some(wake) = ds::last_wake(state) {
//!         body.push_str(&format!("last run: {}\n", wake.report()));
//!     }
//!     Response::ok(body)
//! }
//! ```

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use ::worker::{SqlStorage, SqlStorageValue, State, Storage};
use js_sys::{Function, Reflect};
use wasm_bindgen::closure::{Closure, ScopedClosure};
use wasm_bindgen::{JsCast, JsValue};

use crate::__private::MigrateTarget;
use crate::backend::{sqlite_message, Backend, BackendError, Rows, Step, TxError, Value};
use crate::migrate::WakeStep;
use crate::{MigrateError, Schema, Status, Wake};

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
        SqlStorageValue::Float(f) => Value::Text(crate::number::f64_text(f)),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// workerd's own message (e.g. `UNIQUE constraint failed: users.email:
/// SQLITE_CONSTRAINT`), without workers-rs's `Error: ` prefix.
fn message(e: ::worker::Error) -> BackendError {
    let text = match e {
        ::worker::Error::UnknownJsError { message, .. } | ::worker::Error::JsError(message) => {
            message
        }
        other => other.to_string(),
    };
    BackendError::new(sqlite_message(&text))
}

fn js_message(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// Runs one statement to the end and returns the rows it wrote, or the
/// first row of a [`Step::check`]. workerd steps a statement lazily once it
/// has produced a row, so the cursor is drained: a statement that returns
/// rows (`... RETURNING`, a PRAGMA) must still run to completion. Drained
/// through `raw()`, whose `next()` catches a JavaScript exception: an error
/// after the first row (a constraint failing on the tenth row of an
/// `UPDATE ... RETURNING`) comes back as an `Err` naming the statement,
/// where the plain cursor iterator's binding would trap the instance.
fn run(sql: &SqlStorage, step: &Step) -> Result<(Option<Vec<Value>>, u64), BackendError> {
    let cursor = sql
        .exec(step.sql(), bindings(step.params()))
        .map_err(message)?;
    for row in cursor.raw() {
        let row = row.map_err(message)?;
        if step.is_check() {
            return Ok((Some(row.into_iter().map(value).collect()), 0));
        }
    }
    let written = u64::try_from(cursor.rows_written()).unwrap_or(u64::MAX);
    Ok((None, written))
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

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        let raw: &JsValue = self.storage.as_raw().as_ref();
        // Looked up first: without it there is no transaction to run.
        let transaction_sync = Reflect::get(raw, &JsValue::from_str("transactionSync"))
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or_else(|| {
                TxError::outside_steps(BackendError::new(
                    "ctx.storage.transactionSync is not available (not a SQLite-backed \
                     Durable Object? add the class to `new_sqlite_classes` in wrangler.toml)",
                ))
            })?;

        // A borrowed closure: `transactionSync` calls it before it returns
        // and keeps no reference, so the steps, the slot for the failing
        // step and the counter stay on this stack (no `'static` copies, no
        // reference counts), and dropping the closure invalidates it.
        let mut failed: Option<TxError> = None;
        let mut written = 0u64;
        let sql = &self.sql;
        let mut body = || -> Result<(), JsValue> {
            for (i, step) in steps.iter().enumerate() {
                let failure = match run(sql, step) {
                    Ok((None, n)) => {
                        written = written.saturating_add(n);
                        continue;
                    }
                    Ok((Some(row), _)) => TxError::with_row(i, row),
                    Err(e) => TxError::at_step(i, e),
                };
                let thrown = JsValue::from_str(failure.error().message());
                failed = Some(failure);
                // Throwing out of the callback rolls the transaction back.
                return Err(thrown);
            }
            Ok(())
        };
        // Assert unwind safe: DO builds abort on panic; with unwinding, a
        // panic here leaves nothing half-updated on the Rust side (the slot
        // is written last) and workerd rolls the transaction back.
        let callback =
            ScopedClosure::<dyn FnMut() -> Result<(), JsValue>>::borrow_mut_assert_unwind_safe(
                &mut body,
            );
        let called = transaction_sync.call1(raw, callback.as_js_value());
        drop(callback);
        match called {
            Ok(_) => Ok(written),
            Err(thrown) => Err(failed.unwrap_or_else(|| {
                TxError::outside_steps(BackendError::new(sqlite_message(&js_message(&thrown))))
            })),
        }
    }
}

/// How many objects' outcomes an isolate keeps.
const MAX_OBJECTS: usize = 64;

/// The last run for one object in this isolate, and when [`sql`] may try
/// again after a failure (milliseconds since the epoch).
struct Outcome {
    wake: Wake,
    retry_at_ms: f64,
}

thread_local! {
    /// The outcome per object id. An isolate (one wasm instance) may host
    /// several objects of a class, so it is keyed. A list, not a `HashMap`:
    /// at most [`MAX_OBJECTS`] ids (nearly always one), and a hash map with
    /// its hasher costs every Worker several KB of wasm.
    static OUTCOMES: RefCell<Vec<(String, Outcome)>> = const { RefCell::new(Vec::new()) };
}

/// The object's id as text (`ctx.id.toString()`): the key of its kept
/// outcome and the `object` of its log line. Read through workerd's
/// binding, not `state.id().to_string()`, which formats it through
/// `Display` (code every Worker would carry for the same text).
fn object_id(state: &State) -> String {
    state
        .as_raw()
        .id()
        .and_then(|id| id.to_string())
        .unwrap_or_default()
}

/// The outcome kept for object `id`.
fn outcome<'a>(outcomes: &'a [(String, Outcome)], id: &str) -> Option<&'a Outcome> {
    outcomes.iter().find(|(k, _)| k == id).map(|(_, o)| o)
}

/// Runs [`Schema::wake`] for this object now, logs it, remembers it, and
/// returns its error. Synchronous: for an object that was not migrated in
/// this isolate (a batch then runs one repetition here, and the rest in
/// [`slices`]).
fn wake_now(id: String, storage: Storage, schema: &Schema) -> Option<MigrateError> {
    let started = js_sys::Date::now();
    let wake = schema.wake(&DurableObjectSql::from_storage(storage));
    remember(id, schema, wake, started)
}

/// [`Schema::wake`] for this object under `blockConcurrencyWhile`, with
/// each started record made durable before its migration runs: a
/// `transactionSync` is only a savepoint inside the object's implicit
/// transaction, which a reset past the 30-second gate would roll back
/// together with the migration. `storage.sync()` resolves once that
/// transaction is committed; no other event runs meanwhile (the gate).
///
/// A batched statement's repetitions are made durable the same way, one
/// `sync` each, so a reset loses at most the repetition it interrupted.
/// workerd's clock advances only across I/O, so the budget is measured
/// here, across those awaits: once `budget_ms` is spent between two
/// repetitions, the slice ends with [`MigrateError::InProgress`] and this
/// returns `true`: [`slices`] runs the next one.
async fn wake_durably(id: String, storage: Storage, schema: Schema) -> bool {
    let started = js_sys::Date::now();
    let db = DurableObjectSql::from_storage(storage);
    let mut step = schema.wake_step(&db, None);
    // Whether to try ending the slice at the next pause once the budget is
    // spent. A stop that cannot read the progress hands the pause back; the
    // run then steps once more before trying again, never spinning on the
    // same pause until the gate resets the object.
    let mut try_stop = true;
    let wake = loop {
        match step {
            WakeStep::Done(wake) => break wake,
            WakeStep::Paused(resume) => {
                // workerd's `sync()` called directly (as `Storage::sync`
                // does), and the warning pushed, not formatted.
                let synced = match db.storage.as_raw().sync() {
                    Ok(promise) => ::worker::wasm_bindgen_futures::JsFuture::from(promise)
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = synced {
                    // The migration still runs, unguarded: refusing it would
                    // not make the storage any healthier.
                    let mut text =
                        String::from("durable-schema: storage.sync() failed before a migration (");
                    text.push_str(&::worker::Error::from(e).to_string());
                    text.push_str("); a reset during it will not be reported as interrupted");
                    ::worker::web_sys::console::warn_1(&JsValue::from_str(&text));
                }
                step = next_step(&schema, &db, resume, started, &mut try_stop);
            }
        }
    };
    let in_progress = matches!(wake.error(), Some(MigrateError::InProgress { .. }));
    remember(id, &schema, wake, started);
    in_progress
}

/// [`wake_durably`]'s step after a pause was made durable: the next
/// migration, or the end of the slice once the budget is spent mid-batch.
/// Synchronous and out of line, so the run's future only awaits.
#[inline(never)]
fn next_step(
    schema: &Schema,
    db: &DurableObjectSql,
    resume: crate::migrate::Resume,
    started: f64,
    try_stop: &mut bool,
) -> WakeStep {
    let spent = js_sys::Date::now() - started >= f64::from(schema.budget_ms());
    if spent && *try_stop && resume.mid_batch {
        *try_stop = false;
        schema.wake_stop(db, resume)
    } else {
        *try_stop = true;
        schema.wake_step(db, Some(resume))
    }
}

/// One slice: [`wake_durably`] under `blockConcurrencyWhile`. The gate
/// closes at this call (not when the future is first polled), so the
/// constructor hook can call it and return; the future says whether a
/// batch goes on.
///
/// workerd's `blockConcurrencyWhile` is called directly, not through
/// `State::block_concurrency_while`: that wrapper nests the run's future in
/// three more generic layers (its own future, a result slot, the promise
/// glue), and each copy of the glue carries the whole nested type in its
/// name: about 10 KB of every Worker's wasm. Here the glue is generic over
/// one short closure, and the result comes back through a `Cell`.
fn slice(state: &State, schema: Schema) -> impl std::future::Future<Output = bool> + 'static {
    let (id, storage) = (object_id(state), state.storage());
    let more = Rc::new(Cell::new(false));
    let slot = Rc::clone(&more);
    // Called by `blockConcurrencyWhile` at once; the run starts inside the
    // gate, as a task of the promise the gate waits for. Never rejected:
    // resetting the object would discard the run's earlier migrations and
    // re-run the failing one on every request. The outcome is remembered
    // for `sql` instead. AssertUnwindSafe: DO builds abort on panic.
    let callback = Closure::once_into_js(move || {
        ::worker::wasm_bindgen_futures::future_to_promise(AssertUnwindSafe(async move {
            slot.set(wake_durably(id, storage, schema).await);
            Ok(JsValue::UNDEFINED)
        }))
    });
    let gate = state
        .as_raw()
        .block_concurrency_while(callback.unchecked_ref());
    async move {
        match gate {
            Ok(promise) => {
                ::worker::wasm_bindgen_futures::JsFuture::from(promise)
                    .await
                    .is_ok()
                    && more.get()
            }
            Err(_) => false,
        }
    }
}

/// Runs a first slice when `gate_now` (it closes the gate before this
/// returns; without it, a synchronous run just left a batch going on),
/// then, while a batch goes on, the next slices without a new request:
/// after each, a zero-delay timer lets the events queued behind the gate in
/// (they get [`MigrateError::InProgress`] from [`sql`]), then the next
/// slice closes the gate again. Runs in the object's background; an evicted
/// object resumes in its next constructor.
fn slices(state: &State, schema: Schema, gate_now: bool) {
    // Closed here, synchronously; one concrete future type either way (a
    // generic `first` was one copy of the task per caller).
    let first = gate_now.then(|| slice(state, schema));
    // `DurableObjectState` is not `Clone`; its JavaScript object is.
    let raw: JsValue = AsRef::<JsValue>::as_ref(state.as_raw()).clone();
    ::worker::wasm_bindgen_futures::spawn_local(async move {
        let mut more = match first {
            Some(gate) => gate.await,
            None => true,
        };
        while more {
            next_turn().await;
            let state = State::from(
                raw.clone()
                    .unchecked_into::<::worker::worker_sys::DurableObjectState>(),
            );
            more = slice(&state, schema).await;
        }
    });
}

/// Resolves on a later turn of the event loop: a zero-delay `setTimeout`
/// (a task, not a microtask: the events queued behind the gate get in
/// first). workerd's timer called directly, not through `worker::Delay`,
/// whose waker closure and timer bindings were code in every Worker.
async fn next_turn() {
    let global = js_sys::global();
    let set_timeout = Reflect::get(&global, &JsValue::from_str("setTimeout"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    // Always there in workerd; without it the next slice starts at once.
    let Some(set_timeout) = set_timeout else {
        return;
    };
    let timer = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
    });
    let _ = ::worker::wasm_bindgen_futures::JsFuture::from(timer).await;
}

/// Logs a run that ended (it started at `started`, ms since the epoch),
/// keeps its outcome for [`sql`] and returns its error. The `Wake` is moved
/// into the list, not cloned: a `Report` clone is code every Worker would
/// carry.
fn remember(id: String, schema: &Schema, wake: Wake, started: f64) -> Option<MigrateError> {
    // workerd advances its clock only at I/O, so a synchronous run usually
    // measures 0 ms; the figure still orders runs and spans their awaits.
    let now = js_sys::Date::now();
    // The console is called directly: workers-rs's `console_*!` macros
    // format their text again, a formatting call site each.
    use ::worker::web_sys::console;
    if let Some(line) = wake.log_line(&id, now - started) {
        let line = JsValue::from_str(&line);
        // A batch going on is news, not an error.
        if wake
            .error()
            .is_some_and(|e| !matches!(e, MigrateError::InProgress { .. }))
        {
            console::error_1(&line);
        } else {
            console::log_1(&line);
        }
    }
    if let Some(db) = wake.report().ahead() {
        let mut text = String::from("durable-schema: database at version ");
        crate::json::push_uint(&mut text, db.into());
        text.push_str(" is ahead of the code (version ");
        crate::json::push_uint(&mut text, schema.version().into());
        text.push_str("); nothing applied");
        console::warn_1(&JsValue::from_str(&text));
    }
    let wait_ms = match wake.error() {
        Some(MigrateError::Deferred { retry_in_secs, .. }) => f64::from(*retry_in_secs) * 1000.0,
        // The next slice is already on its way; `sql` starts one itself
        // only if none came by then (the isolate lost it).
        Some(MigrateError::InProgress { .. }) => f64::from(schema.budget_ms()) * 2.0 + 1000.0,
        _ => f64::from(schema.retry_after()) * 1000.0,
    };
    let error = wake.error().cloned();
    let outcome = Outcome {
        wake,
        retry_at_ms: now + wait_ms,
    };
    // `try_with`, not `with`: a wasm instance keeps its thread-locals for
    // its whole life, and `with` would carry a panic path and its message
    // into every Worker. (Without them nothing is kept: `sql` runs again.)
    let _ = OUTCOMES.try_with(|outcomes| {
        let mut outcomes = outcomes.borrow_mut();
        if let Some(slot) = outcomes.iter_mut().find(|(k, _)| *k == id) {
            slot.1 = outcome;
            return;
        }
        // An isolate may host many objects over its life; keep the list small.
        if outcomes.len() >= MAX_OBJECTS {
            outcomes.clear();
        }
        outcomes.push((id, outcome));
    });
    error
}

/// The object's SQL storage once its schema is current: the way for code
/// that needs the schema to reach the database.
///
/// Reads nothing on the common path (the constructor hook's outcome is kept
/// in memory). After a failed run it returns that run's [`MigrateError`]
/// (map it to a 503), and starts one new attempt when `retry_after` seconds
/// have passed: under `blockConcurrencyWhile` (so its started record is
/// durable first), answering this call with the last error and the calls
/// after it with the attempt's outcome. A new deploy tries at once, in its
/// constructor. Older code over a database whose newer migration breaks it
/// (a rollback after a dropped column) gets [`MigrateError::Incompatible`]
/// here, instead of queries failing one by one; [`status`] keeps working.
/// While a batched statement is being repeated across slices it returns
/// [`MigrateError::InProgress`] (map it to a 503 too): the object's own
/// slices finish the migration, no request needs to.
pub fn sql(state: &State, schema: &Schema) -> Result<SqlStorage, MigrateError> {
    let id = object_id(state);
    // The kept outcome: `Some(None)` when the schema is current, else its
    // error and whether a retry is due. A due retry's deadline is pushed
    // here, in the same look-up: retried once per `retry_after`, not once
    // per request until the gate closes. (Only the error is cloned, never
    // the whole `Wake`: a `Report` clone is code every Worker would carry.)
    let known = OUTCOMES.try_with(|outcomes| {
        let mut outcomes = outcomes.borrow_mut();
        let (_, o) = outcomes.iter_mut().find(|(k, _)| *k == id)?;
        let Some(error) = o.wake.error() else {
            return Some(None);
        };
        let error = error.clone();
        let now = js_sys::Date::now();
        let due = now >= o.retry_at_ms;
        if due {
            o.retry_at_ms = now + f64::from(schema.retry_after()) * 1000.0;
        }
        Some(Some((error, due)))
    });
    match known.ok().flatten() {
        Some(None) => Ok(state.storage().sql()),
        Some(Some((e, false))) => Err(e),
        // A retry is due: it runs under `blockConcurrencyWhile`, where its
        // started record can be made durable first (a retry killed by the
        // time limit is then reported, not retried on every wake-up). This
        // request gets the last outcome; the next ones wait for the retry's.
        Some(Some((last, true))) => {
            slices(state, *schema, true);
            Err(last)
        }
        // Not migrated in this isolate yet (no constructor hook ran).
        // Synchronous, so no other event of this object runs in between.
        None => match wake_now(id, state.storage(), schema) {
            None => Ok(state.storage().sql()),
            Some(e) => {
                if matches!(e, MigrateError::InProgress { .. }) {
                    slices(state, *schema, false);
                }
                Err(e)
            }
        },
    }
}

/// The object's SQL storage for checked queries (`query!`): [`sql`], except
/// that a database whose newer migration breaks older code is not refused
/// as a whole. Then the findings of every newer breaking migration are read
/// (one statement, only in that case) and each checked query is judged
/// before it runs: one that uses what a migration removed or changed gets a
/// [`QueryError`](crate::query::QueryError) of kind `incompatible` (map it
/// to a 503) and nothing runs; the others serve. Everything else [`sql`]
/// refuses (a failed, deferred or interrupted run, `strict`, edited
/// history) is refused here too. Raw statements through
/// [`Checked::inner`](crate::query::Checked::inner) are not judged.
pub fn checked(
    state: &State,
    schema: &Schema,
) -> Result<crate::query::Checked<SqlStorage>, MigrateError> {
    match sql(state, schema) {
        Ok(storage) => Ok(crate::query::Checked::current(storage)),
        Err(refusal @ MigrateError::Incompatible { .. }) => {
            let db = DurableObjectSql::new(state);
            let breaking = crate::query::checked::breaking_after(schema, &db, refusal)?;
            Ok(crate::query::Checked::ahead(
                state.storage().sql(),
                breaking,
            ))
        }
        Err(e) => Err(e),
    }
}

/// The last run of the constructor hook (or of [`sql`]) for this object in
/// this isolate: its report and error. For debug routes.
pub fn last_wake(state: &State) -> Option<Wake> {
    let id = object_id(state);
    OUTCOMES
        .try_with(|outcomes| outcome(&outcomes.borrow(), &id).map(|o| o.wake.clone()))
        .ok()
        .flatten()
}

/// The applied/pending view of this object's database, for a `/schema`
/// debug route: works whatever state the schema is in. Reads the whole
/// tracking table; changes nothing.
pub fn status(state: &State, schema: &Schema) -> Result<Status, MigrateError> {
    schema.status(&DurableObjectSql::new(state))
}

/// The constructor hook on a Durable Object: `Self::migrate(&state)` in
/// `new`.
impl MigrateTarget for State {
    type Output = ();

    fn __migrate(&self, schema: &Schema) {
        let schema = *schema;
        // The gate closes at this call, and the constructor cannot await:
        // the migration runs before any event is delivered, and a batch
        // that needs more than one budget goes on in later slices.
        slices(self, schema, true);
    }
}
