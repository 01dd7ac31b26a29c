//! The seam between the executor and a database: [`Backend`].
//!
//! The executor needs two things from a database: run a query and get its
//! rows back, and run a list of statements in one transaction. Everything
//! else (which version is applied, what to apply, what went wrong) is decided
//! in [`Schema::migrate`](crate::Schema::migrate) on top of these two calls,
//! so the rusqlite backend, the Durable Object backend and test wrappers
//! (fault injection, counters) share all the logic.
//!
//! Only needed to write a backend or a wrapper; migrating needs none of it.

use std::borrow::Cow;
use std::fmt;

/// A value bound to, or read from, a statement.
///
/// Deliberately minimal: the tracking table only holds integers, text and
/// NULL. A backend that meets another storage class (REAL, BLOB) renders it as
/// [`Value::Text`], so reading a hand-edited tracking table never fails on a
/// type the executor does not care about.
///
/// With feature `rusqlite` it converts from `rusqlite::types::ValueRef` and
/// binds as a parameter (`ToSql`), for backends built on rusqlite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// UTF-8 text.
    Text(String),
}

impl Value {
    /// The integer, if this is [`Value::Integer`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is [`Value::Text`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The result of [`Backend::query`]: the rows, and how many rows the database
/// says it read to produce them.
///
/// `rows_read` is whatever the backend can measure: the Durable Object
/// backend reports `SqlCursor::rows_read()` (the billed figure), the rusqlite
/// backend reports the number of rows returned. The executor sums it into
/// [`Report::rows_read`](crate::Report::rows_read) so the cost of the
/// up-to-date check is observable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    rows: Vec<Vec<Value>>,
    rows_read: u64,
}

impl Rows {
    /// Wraps the rows a backend produced and the rows-read figure it measured.
    pub fn new(rows: Vec<Vec<Value>>, rows_read: u64) -> Self {
        Self { rows, rows_read }
    }

    /// The rows, each a list of column values in `SELECT` order.
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }

    /// Rows the database read, as the backend reported it.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }
}

/// One statement of a [`Backend::transaction`]: SQL text plus positional
/// parameters (`?1`, `?2`, ...).
///
/// Steps are data rather than a Rust closure because the Durable Object
/// backend must run them inside a JavaScript `transactionSync` callback, which
/// has to be `'static`. Migration statements are `&'static str` (embedded at
/// compile time), so [`Cow`] keeps them borrowed; only the tracking-table
/// statements own their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    sql: Cow<'static, str>,
    params: Vec<Value>,
    check: bool,
}

impl Step {
    /// A statement without parameters.
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self::with_params(sql, Vec::new())
    }

    /// A statement with positional parameters.
    pub fn with_params(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Self {
            sql: sql.into(),
            params,
            check: false,
        }
    }

    /// A check: a statement that must return no row (e.g. `PRAGMA
    /// foreign_key_check("t")`). A row fails the transaction with
    /// [`TxError::with_row`].
    pub fn check(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            check: true,
            ..Self::new(sql)
        }
    }

    /// A [`check`](Step::check) with positional parameters.
    pub fn check_with_params(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Self {
            check: true,
            ..Self::with_params(sql, params)
        }
    }

    /// Whether this step is a [`check`](Step::check).
    pub fn is_check(&self) -> bool {
        self.check
    }

    /// The SQL text (exactly one statement).
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The positional parameters.
    pub fn params(&self) -> &[Value] {
        &self.params
    }
}

/// An error reported by a backend: the database's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendError {
    message: String,
}

impl BackendError {
    /// Wraps the database's message (for SQLite, e.g. `no such table: x`).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The database's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BackendError {}

/// SQLite's own message from workerd's, which appends the result code:
/// `UNIQUE constraint failed: t.x: SQLITE_CONSTRAINT (extended:
/// SQLITE_CONSTRAINT_UNIQUE)` becomes `UNIQUE constraint failed: t.x`, so a
/// `MigrateError` reads the same on a Durable Object as natively.
#[cfg(any(target_arch = "wasm32", feature = "worker", test))]
pub(crate) fn sqlite_message(raw: &str) -> &str {
    let is_code = |c: &str| {
        c.len() > "SQLITE_".len()
            && c.starts_with("SQLITE_")
            && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    };
    // ` (extended: SQLITE_X_Y)` first, if there is one.
    let base = match raw
        .strip_suffix(')')
        .and_then(|r| rsplit_once(r, " (extended: "))
    {
        Some((base, extended)) if is_code(extended) => base,
        Some(_) => return raw,
        None => raw,
    };
    match rsplit_once(base, ": ") {
        Some((message, code)) if is_code(code) => message,
        _ => raw,
    }
}

/// `text.rsplit_once(pattern)`, by a plain byte comparison at each offset.
///
/// core's substring search (Two-Way, with its searcher state) costs every
/// Worker about 2 KB of wasm, for the few short messages the runtime looks
/// into. A match of valid UTF-8 in valid UTF-8 starts at a character
/// boundary, so the slices are whole characters.
#[cfg(any(target_arch = "wasm32", feature = "worker", test))]
fn rsplit_once<'a>(text: &'a str, pattern: &str) -> Option<(&'a str, &'a str)> {
    let at = text
        .as_bytes()
        .windows(pattern.len())
        .rposition(|w| w == pattern.as_bytes())?;
    Some((&text[..at], &text[at + pattern.len()..]))
}

/// `text.contains(pattern)`, without core's substring search (see
/// [`rsplit_once`]).
pub(crate) fn contains(text: &str, pattern: &str) -> bool {
    text.as_bytes()
        .windows(pattern.len())
        .any(|w| w == pattern.as_bytes())
}

/// Why [`Backend::transaction`] failed: which step (0-based index into the
/// steps it was given) and the database's message. `step` is `None` when the
/// transaction itself could not begin or commit.
///
/// Either way the backend has rolled the transaction back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxError {
    step: Option<usize>,
    error: BackendError,
    row: Option<Vec<Value>>,
}

impl TxError {
    /// Step `index` (0-based) failed with `error`.
    pub fn at_step(index: usize, error: BackendError) -> Self {
        Self {
            step: Some(index),
            error,
            row: None,
        }
    }

    /// Check step `index` (see [`Step::check`]) returned `row`.
    pub fn with_row(index: usize, row: Vec<Value>) -> Self {
        Self {
            row: Some(row),
            ..Self::at_step(index, BackendError::new("check returned a row"))
        }
    }

    /// Beginning or committing the transaction failed.
    pub fn outside_steps(error: BackendError) -> Self {
        Self {
            step: None,
            error,
            row: None,
        }
    }

    /// The first row a failing check returned.
    pub fn row(&self) -> Option<&[Value]> {
        self.row.as_deref()
    }

    /// The 0-based index of the failing step, if a step failed.
    pub fn step(&self) -> Option<usize> {
        self.step
    }

    /// The database's error.
    pub fn error(&self) -> &BackendError {
        &self.error
    }
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(i) => write!(f, "step {i} failed: {}", self.error),
            None => write!(f, "transaction failed: {}", self.error),
        }
    }
}

impl std::error::Error for TxError {}

/// A database the executor can migrate.
///
/// Implemented for `rusqlite::Connection` (feature `rusqlite`) and, on
/// wasm32, for the Durable Object storage (`worker::DurableObjectSql`). Test
/// code wraps a backend to count or break what runs through it.
///
/// [`query`](Backend::query) executes exactly one SQL statement, and
/// [`transaction`](Backend::transaction) one per step: the executor never hands a backend
/// a multi-statement string, because workerd limits the length of the whole
/// remaining text and because per-statement execution is what lets an error
/// name its statement.
///
/// # Example
///
/// A wrapper that counts queries, delegating to another backend:
///
/// ```
/// use std::cell::Cell;
/// use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
///
/// struct Counting<B> {
///     inner: B,
///     queries: Cell<u32>,
/// }
///
/// impl<B: Backend> Backend for Counting<B> {
///     fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
///         self.queries.set(self.queries.get() + 1);
///         self.inner.query(sql, params)
///     }
///     fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
///         self.inner.transaction(steps)
///     }
/// }
/// ```
pub trait Backend {
    /// Runs one statement that returns rows and collects all of them.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError>;

    /// Runs `steps` in order inside one transaction and commits; returns the
    /// rows the steps wrote, as the database counts them. On the first
    /// failing step (or a [`check`](Step::check) that returns a row), rolls
    /// everything back and returns its index.
    ///
    /// Takes the steps by value so a backend that must hand them to a
    /// `'static` callback (the Durable Object's `transactionSync`) can move
    /// them there without copying.
    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError>;
}

impl<B: Backend + ?Sized> Backend for &B {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        (**self).query(sql, params)
    }

    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        (**self).transaction(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::{contains, rsplit_once, sqlite_message};

    #[test]
    fn substring_helpers_agree_with_str() {
        for (text, pattern) in [
            ("a: b: c", ": "),
            ("no match", ": "),
            ("", ": "),
            (": ", ": "),
            ("é: ü: ", ": "),
            ("x (extended: y (extended: z", " (extended: "),
        ] {
            assert_eq!(
                rsplit_once(text, pattern),
                text.rsplit_once(pattern),
                "{text:?}"
            );
            assert_eq!(contains(text, pattern), text.contains(pattern), "{text:?}");
        }
    }

    #[test]
    fn workerds_result_code_suffix_is_dropped() {
        assert_eq!(
            sqlite_message("UNIQUE constraint failed: messages.author, messages.body: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"),
            "UNIQUE constraint failed: messages.author, messages.body"
        );
        assert_eq!(
            sqlite_message("no such table: x: SQLITE_ERROR"),
            "no such table: x"
        );
        // Anything else stays as it is.
        assert_eq!(
            sqlite_message("near \"x\": syntax error"),
            "near \"x\": syntax error"
        );
        assert_eq!(sqlite_message("a: SQLITE_lower"), "a: SQLITE_lower");
        assert_eq!(
            sqlite_message("a: SQLITE_X (extended: nope)"),
            "a: SQLITE_X (extended: nope)"
        );
    }
}
