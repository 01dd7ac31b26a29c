//! Checked queries at run time: what `durable_schema::query!` and
//! `query_as!` expand to, and the seam to the database ([`Executor`]).
//!
//! The macros prepare the statement at compile time against the schema's
//! head version and generate a [`Query`]: the SQL text, its arguments
//! already [`Encode`]d into [`Arg`]s, and a mapper from a [`Row`] to the
//! record type. Running it is one call:
//!
//! - [`Query::fetch_all`]: every row;
//! - [`Query::fetch_one`]: the first row, or a [`QueryError`] of kind
//!   [`no_rows`](QueryErrorKind::NoRows);
//! - [`Query::fetch_optional`]: the first row, if any;
//! - [`Query::execute`]: the rows the statement changed.
//!
//! The statement always runs to its end, whatever the call keeps: rows after
//! the first are stepped over, not decoded, by `fetch_one` and
//! `fetch_optional`, so a statement's effect never depends on how it is read.
//!
//! The database is anything that implements [`Executor`]: a Durable Object's
//! storage (`worker::SqlStorage`, what `durable_schema::worker::sql`
//! returns), a `rusqlite::Connection` (feature `rusqlite`) or
//! `durable_schema::testing::DurableObjectDb`; or one of those in a
//! [`Checked`] (`durable_schema::worker::checked`, `Schema::checked`),
//! which judges each query by what it uses ([`Query::uses`], module
//! [`uses`]) against the newer migrations that break older code.
//!
//! # Types
//!
//! Arguments: [`Encode`] is implemented for `i64`, `i32`, `i16`, `i8`, `u32`,
//! `u16`, `u8`, `bool` (0 or 1), `f64`, `f32`, `str`, `String`, `[u8]`,
//! `Vec<u8>`, `Option<T>` (`None` binds NULL) and references to those. Not for
//! `u64`, `usize` or `i128`: SQLite's integers are `i64`, and a value above
//! `i64::MAX` would have to wrap or fail at run time; convert with
//! `i64::try_from` where the value is known to fit.
//!
//! Columns: [`Decode`] is implemented for `i64`, `f64`, `String`, `Vec<u8>`,
//! `bool`, [`Value`] (any storage class) and `Option<T>` (NULL is `None`).
//! A value is decoded from its storage class, not the column's declared
//! type (SQLite's affinity lets an `INTEGER` column hold text that does not
//! look like a number), and only where nothing is lost:
//!
//! | into      | from                                                      |
//! |-----------|-----------------------------------------------------------|
//! | `i64`     | INTEGER; REAL only when it is a whole number that fits    |
//! | `f64`     | REAL; INTEGER only within ±2^53 (exactly representable)   |
//! | `bool`    | INTEGER 0 or 1 (or a REAL 0.0 / 1.0)                      |
//! | `String`  | TEXT                                                      |
//! | `Vec<u8>` | BLOB                                                      |
//!
//! Anything else, and a NULL into a type that is not an `Option`, is a
//! [`QueryError`] of kind [`decode`](QueryErrorKind::Decode) naming the
//! column.
//!
//! # On a Durable Object
//!
//! Rows are read through the cursor's `raw()` iterator and decoded from the
//! JavaScript values directly (numbers, strings, `ArrayBuffer`s, `null`),
//! with no JSON or serde round trip. workerd hands SQLite's integers to
//! JavaScript as numbers (`double`s, `src/workerd/api/sql.c++`), so an
//! integer beyond ±2^53 arrives rounded: decoding a number that is not a
//! safe integer into `i64` or [`Value`] is a [`QueryError`] of kind
//! [`unsafe_integer`](QueryErrorKind::UnsafeInteger), never a rounded value.
//! (A REAL that is a whole number beyond 2^53, e.g. `1e20`, is refused the
//! same way for those two types, as workerd's number cannot tell it from a
//! rounded integer; it decodes into `f64`.) Bindings are numbers too, so an
//! `i64` argument beyond ±2^53 is refused with the same kind before the
//! statement runs. workerd does not tell INTEGER from REAL either: a REAL
//! `2.0` reads back as the number 2, which decodes into `i64` as natively.
//!
//! # Example
//!
//! What the macro generates, written by hand:
//!
//! ```
//! # #[cfg(feature = "rusqlite")] {
//! use durable_schema_runtime::query::{Encode, Query};
//!
//! #[derive(Debug, PartialEq)]
//! struct Record {
//!     id: i64,
//!     body: Option<String>,
//! }
//!
//! let conn = rusqlite::Connection::open_in_memory().unwrap();
//! conn.execute_batch("CREATE TABLE m (id INTEGER PRIMARY KEY, room TEXT NOT NULL, body TEXT);
//!                     INSERT INTO m VALUES (1, 'a', 'hi'), (2, 'a', NULL), (3, 'b', 'no')").unwrap();
//! let room = "a";
//! let query = Query::<Record>::__new(
//!     "SELECT id, body FROM m WHERE room = ? ORDER BY id",
//!     vec![Encode::encode(&room)],
//!     |row| Ok(Record { id: row.get(0, "id")?, body: row.get(1, "body")? }),
//! );
//! let rows = query.fetch_all(&conn).unwrap();
//! assert_eq!(rows, [Record { id: 1, body: Some("hi".into()) }, Record { id: 2, body: None }]);
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;

pub(crate) mod checked;
#[cfg(any(target_arch = "wasm32", feature = "worker"))]
mod js;
pub mod uses;

pub use checked::{Breaking, Checked};
pub use uses::Uses;
#[cfg(feature = "rusqlite")]
mod sqlite;

/// The largest integer a JavaScript number holds exactly (2^53 - 1), and so
/// the largest a Durable Object reads or binds without rounding.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A statement checked at compile time, its arguments, and how to turn a row
/// into `R`. Built by `query!`/`query_as!`; run with one of its `fetch_*`
/// methods or [`execute`](Query::execute).
#[must_use = "a query does nothing until it is run with fetch_all, fetch_one, fetch_optional or execute"]
pub struct Query<R> {
    sql: &'static str,
    args: Vec<Arg>,
    map: fn(&Row<'_>) -> Result<R, QueryError>,
    uses: Option<Uses<'static>>,
}

impl<R> fmt::Debug for Query<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("sql", &self.sql)
            .field("args", &self.args)
            .field("uses", &self.uses)
            .finish_non_exhaustive()
    }
}

impl<R> Query<R> {
    /// What the macros generate. Not a public API: the statement was checked
    /// at compile time, which a hand-written call skips.
    #[doc(hidden)]
    pub fn __new(
        sql: &'static str,
        args: Vec<Arg>,
        map: fn(&Row<'_>) -> Result<R, QueryError>,
    ) -> Self {
        Self {
            sql,
            args,
            map,
            uses: None,
        }
    }

    /// What the macros generate after [`__new`](Query::__new): what the
    /// statement reads and writes, recorded at compile time (see
    /// [`Uses`]). Not a public API.
    #[doc(hidden)]
    pub fn __with_uses(mut self, uses: &'static str) -> Self {
        self.uses = Some(Uses::new(uses));
        self
    }

    /// What the statement reads and writes, as `query!` recorded it at
    /// compile time; `None` for a query built without the macro (then a
    /// [`Checked`] database judges it as using everything).
    pub fn uses(&self) -> Option<Uses<'static>> {
        self.uses
    }

    /// The SQL text, as written in the macro call.
    pub fn sql(&self) -> &'static str {
        self.sql
    }

    /// The arguments, in parameter order.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// Runs the statement and maps every row.
    pub fn fetch_all<E: Executor + ?Sized>(self, db: &E) -> Result<Vec<R>, QueryError> {
        let mut out = Vec::new();
        let map = self.map;
        db.fetch_checked(self.uses, self.sql, &self.args, &mut |row| {
            out.push(map(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs the statement and maps its first row; no row is a [`QueryError`]
    /// of kind [`NoRows`](QueryErrorKind::NoRows). The statement still runs
    /// to its end; further rows are not decoded.
    pub fn fetch_one<E: Executor + ?Sized>(self, db: &E) -> Result<R, QueryError> {
        let sql = self.sql;
        self.fetch_optional(db)?
            .ok_or_else(|| QueryError::new(QueryErrorKind::NoRows, format!("`{sql}`")))
    }

    /// Runs the statement and maps its first row, if there is one. The
    /// statement still runs to its end; further rows are not decoded.
    pub fn fetch_optional<E: Executor + ?Sized>(self, db: &E) -> Result<Option<R>, QueryError> {
        let mut first = None;
        let map = self.map;
        db.fetch_checked(self.uses, self.sql, &self.args, &mut |row| {
            if first.is_none() {
                first = Some(map(row)?);
            }
            Ok(())
        })?;
        Ok(first)
    }

    /// Runs the statement to its end and returns the rows it inserted,
    /// updated or deleted (SQLite's `changes()`: not counting rows changed
    /// by triggers or foreign-key actions; 0 for a statement that changes
    /// no row, such as a `SELECT` or DDL). Rows it returns are not decoded.
    pub fn execute<E: Executor + ?Sized>(self, db: &E) -> Result<u64, QueryError> {
        db.execute_checked(self.uses, self.sql, &self.args)
    }
}

/// A database a [`Query`] runs on: the seam between checked queries and a
/// backend.
///
/// Implemented for `rusqlite::Connection` (feature `rusqlite`), a Durable Object's
/// `worker::SqlStorage` (on wasm32, or with feature `worker`) and
/// `durable_schema::testing::DurableObjectDb`. Both methods run exactly
/// one statement to its end with `args` bound positionally (`?1` is
/// `args[0]`); a statement expecting another number of parameters is a
/// [`QueryError`] of kind [`Bind`](QueryErrorKind::Bind).
pub trait Executor {
    /// Runs `sql` and calls `each` with every row it returns, in order. An
    /// error from `each` stops and is returned as is.
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError>;

    /// Runs `sql` to its end and returns the rows it changed, as
    /// [`Query::execute`] documents.
    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError>;

    /// [`fetch`](Executor::fetch) for a checked query, with what it uses
    /// ([`Query::uses`]): what a [`Query`] calls. A database that judges
    /// queries ([`Checked`]) decides here; the others just run it.
    fn fetch_checked(
        &self,
        uses: Option<Uses<'_>>,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let _ = uses;
        self.fetch(sql, args, each)
    }

    /// [`execute`](Executor::execute) for a checked query, as
    /// [`fetch_checked`](Executor::fetch_checked).
    fn execute_checked(
        &self,
        uses: Option<Uses<'_>>,
        sql: &str,
        args: &[Arg],
    ) -> Result<u64, QueryError> {
        let _ = uses;
        self.execute(sql, args)
    }
}

impl<E: Executor + ?Sized> Executor for &E {
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        (**self).fetch(sql, args, each)
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError> {
        (**self).execute(sql, args)
    }

    fn fetch_checked(
        &self,
        uses: Option<Uses<'_>>,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        (**self).fetch_checked(uses, sql, args, each)
    }

    fn execute_checked(
        &self,
        uses: Option<Uses<'_>>,
        sql: &str,
        args: &[Arg],
    ) -> Result<u64, QueryError> {
        (**self).execute_checked(uses, sql, args)
    }
}

/// An argument bound to a statement: one of SQLite's storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `NULL`.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A Rust value bound as a statement's argument.
pub trait Encode {
    /// The value as SQLite will store it.
    fn encode(&self) -> Arg;
}

macro_rules! encode_integer {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self) -> Arg {
                Arg::Integer(i64::from(*self))
            }
        }
    )*};
}
encode_integer!(i64, i32, i16, i8, u32, u16, u8, bool);

impl Encode for f64 {
    fn encode(&self) -> Arg {
        Arg::Real(*self)
    }
}

impl Encode for f32 {
    fn encode(&self) -> Arg {
        Arg::Real(f64::from(*self))
    }
}

impl Encode for str {
    fn encode(&self) -> Arg {
        Arg::Text(self.to_owned())
    }
}

impl Encode for String {
    fn encode(&self) -> Arg {
        Arg::Text(self.clone())
    }
}

impl Encode for [u8] {
    fn encode(&self) -> Arg {
        Arg::Blob(self.to_vec())
    }
}

impl Encode for Vec<u8> {
    fn encode(&self) -> Arg {
        Arg::Blob(self.clone())
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self) -> Arg {
        self.as_ref().map_or(Arg::Null, Encode::encode)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self) -> Arg {
        (**self).encode()
    }
}

/// Marker: a parameter compared with or stored into an `INTEGER` column.
#[derive(Debug)]
pub enum Integer {}
/// Marker: a parameter compared with or stored into a `REAL` column.
#[derive(Debug)]
pub enum Real {}
/// Marker: a parameter compared with or stored into a `TEXT` column.
#[derive(Debug)]
pub enum Text {}
/// Marker: a parameter compared with or stored into a `BLOB` column.
#[derive(Debug)]
pub enum Blob {}
/// Marker: a parameter whose column has no declared type (or `NUMERIC`):
/// anything [`Encode`] binds to it.
#[derive(Debug)]
pub enum Any {}

/// `Self` can be bound to a parameter whose column has the type `K`
/// ([`Integer`], [`Real`], [`Text`], [`Blob`], [`Any`]). The macros check it
/// where the statement makes the column clear (`col = ?`, `INSERT INTO t
/// (col) VALUES (?)`, `SET col = ?`), through [`check_arg`].
///
/// Integers bind to `REAL` columns too (SQLite stores them as REAL); floats
/// do not bind to `INTEGER` columns (a fractional value would be stored as
/// REAL in an INTEGER column). `Option<T>` binds wherever `T` does.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be bound to a parameter of column type `{K}`",
    label = "this argument's type does not match the column the statement compares it with or stores it into",
    note = "INTEGER takes i64, i32, i16, i8, u32, u16, u8, bool; REAL takes f64, f32 and the integers; TEXT takes &str, String; BLOB takes &[u8], Vec<u8>; Option<T> binds NULL"
)]
pub trait BindsTo<K> {}

macro_rules! binds {
    ($k:ty: $($t:ty),*) => {$( impl BindsTo<$k> for $t {} )*};
}
binds!(Integer: i64, i32, i16, i8, u32, u16, u8, bool);
binds!(Real: f64, f32, i64, i32, i16, i8, u32, u16, u8);
binds!(Text: str, String);
binds!(Blob: [u8], Vec<u8>);
binds!(Any: i64, i32, i16, i8, u32, u16, u8, bool, f64, f32, str, String, [u8], Vec<u8>);

impl<K, T: BindsTo<K>> BindsTo<K> for Option<T> {}
impl<K, T: BindsTo<K> + ?Sized> BindsTo<K> for &T {}

/// Fails to compile unless `T` binds to a column of type `K` (see
/// [`BindsTo`]); does nothing at run time.
#[inline(always)]
pub fn check_arg<K, T: BindsTo<K> + ?Sized>(_: &T) {}

/// A value read from a column, borrowed from the backend's row where it
/// can be.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// `NULL`.
    Null,
    /// An INTEGER.
    Integer(i64),
    /// A REAL.
    Real(f64),
    /// A number from a Durable Object, where workerd makes every INTEGER
    /// and REAL a JavaScript number (an integer beyond ±2^53 is already
    /// rounded).
    Number(f64),
    /// TEXT.
    Text(Cow<'a, str>),
    /// A BLOB.
    Blob(Cow<'a, [u8]>),
}

impl ValueRef<'_> {
    /// The storage class, as an error names it.
    fn class(&self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "an INTEGER",
            ValueRef::Real(_) | ValueRef::Number(_) => "a REAL",
            ValueRef::Text(_) => "TEXT",
            ValueRef::Blob(_) => "a BLOB",
        }
    }
}

/// A column value of any storage class, read as it is: for result columns
/// without a declared type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL`.
    Null,
    /// An INTEGER.
    Integer(i64),
    /// A REAL.
    Real(f64),
    /// TEXT.
    Text(String),
    /// A BLOB.
    Blob(Vec<u8>),
}

impl Encode for Value {
    fn encode(&self) -> Arg {
        match self {
            Value::Null => Arg::Null,
            Value::Integer(i) => Arg::Integer(*i),
            Value::Real(f) => Arg::Real(*f),
            Value::Text(t) => Arg::Text(t.clone()),
            Value::Blob(b) => Arg::Blob(b.clone()),
        }
    }
}

/// One row of a result, as the backend produced it. The generated mapper
/// reads it with [`get`](Row::get) (or [`get_checked`](Row::get_checked)).
pub struct Row<'a> {
    inner: Inner<'a>,
    numbers: bool,
}

enum Inner<'a> {
    Values(&'a [Value]),
    #[cfg(feature = "rusqlite")]
    Sqlite(&'a rusqlite::Row<'a>),
    #[cfg(any(target_arch = "wasm32", feature = "worker"))]
    Js(&'a js_sys::Array),
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Row").finish_non_exhaustive()
    }
}

impl<'a> Row<'a> {
    /// A row of values, for a backend that reads them itself (or a test).
    pub fn from_values(values: &'a [Value]) -> Self {
        Self {
            inner: Inner::Values(values),
            numbers: false,
        }
    }

    /// A rusqlite row, read in place.
    #[cfg(feature = "rusqlite")]
    pub fn from_rusqlite(row: &'a rusqlite::Row<'a>) -> Self {
        Self {
            inner: Inner::Sqlite(row),
            numbers: false,
        }
    }

    /// Reads INTEGER and REAL values as a Durable Object returns them, as
    /// JavaScript numbers ([`ValueRef::Number`]): for a model of one, such
    /// as `testing::DurableObjectDb`, so that an integer beyond ±2^53 fails
    /// in a test as it would in production.
    pub fn as_javascript_numbers(mut self) -> Self {
        self.numbers = true;
        self
    }

    /// The value of column `index` (0-based); `column` is its name, for the
    /// error.
    // `#[inline]` on the per-column path (here, `get`, the `Decode` impls):
    // the generated mapper calls it from the user's crate, where a
    // non-generic function is otherwise an opaque call per column.
    #[inline]
    pub fn value(&self, index: usize, column: &'static str) -> Result<ValueRef<'_>, QueryError> {
        let value = self.exact(index, column)?;
        Ok(match value {
            ValueRef::Integer(i) if self.numbers => ValueRef::Number(i as f64),
            ValueRef::Real(f) if self.numbers => ValueRef::Number(f),
            other => other,
        })
    }

    #[inline]
    fn exact(&self, index: usize, column: &'static str) -> Result<ValueRef<'_>, QueryError> {
        let missing = || {
            QueryError::new(
                QueryErrorKind::Decode,
                format!("the row has no column {index} (`{column}`)"),
            )
            .with_column(column)
        };
        match &self.inner {
            Inner::Values(values) => Ok(match values.get(index).ok_or_else(missing)? {
                Value::Null => ValueRef::Null,
                Value::Integer(i) => ValueRef::Integer(*i),
                Value::Real(f) => ValueRef::Real(*f),
                Value::Text(t) => ValueRef::Text(Cow::Borrowed(t)),
                Value::Blob(b) => ValueRef::Blob(Cow::Borrowed(b)),
            }),
            #[cfg(feature = "rusqlite")]
            Inner::Sqlite(row) => sqlite::value(row, index).map_err(|_| missing()),
            #[cfg(any(target_arch = "wasm32", feature = "worker"))]
            Inner::Js(array) => js::value(array, index).ok_or_else(missing),
        }
    }

    /// Column `index` (0-based) as `T`; `column` is its name, for the
    /// error.
    #[inline]
    pub fn get<T: Decode>(&self, index: usize, column: &'static str) -> Result<T, QueryError> {
        T::decode(self.value(index, column)?)
            .map_err(|e| e.with_column(column).in_column(column, index))
    }

    /// [`get`](Row::get) for `query_as!`: compiles only when a column the
    /// macro inferred as `I` can fill a field of type `F` (see
    /// [`FromColumn`]).
    pub fn get_checked<I, F: FromColumn<I>>(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<F, QueryError> {
        self.get::<F>(index, column)
    }
}

/// A Rust type read from a column value.
pub trait Decode: Sized {
    /// Reads `value`; an error says what the column held and what was
    /// expected ([`Row::get`] adds the column's name).
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError>;
}

fn mismatch(value: &ValueRef<'_>, expected: &str) -> QueryError {
    let message = match value {
        ValueRef::Null => format!("is NULL but the field is `{expected}`, not an `Option`"),
        other => format!(
            "holds {}, which does not decode into `{expected}`",
            other.class()
        ),
    };
    QueryError::new(QueryErrorKind::Decode, message)
}

/// A JavaScript number that is not a safe integer, read for an integer.
/// Printed by `number::f64_text`, not `{:e}`: core's float formatting would
/// add several KB to every Worker for this one message.
fn unsafe_integer(n: f64) -> QueryError {
    QueryError::new(
        QueryErrorKind::UnsafeInteger,
        format!(
            "holds {}, beyond JavaScript's safe integers (±2^53 - 1): workerd returns integers \
             as numbers, so the stored value may have been rounded",
            crate::number::f64_text(n)
        ),
    )
}

/// A whole number that an `i64` holds exactly, from a JavaScript number.
fn number_to_i64(n: f64, expected: &str, value: &ValueRef<'_>) -> Result<i64, QueryError> {
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(mismatch(value, expected));
    }
    if n.abs() > MAX_SAFE_INTEGER as f64 {
        return Err(unsafe_integer(n));
    }
    Ok(n as i64)
}

impl Decode for i64 {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        match value {
            ValueRef::Integer(i) => Ok(i),
            ValueRef::Number(n) => number_to_i64(n, "i64", &value),
            // Exact: whole, and inside i64's range (2^63 is itself a float).
            ValueRef::Real(f)
                if f.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) =>
            {
                Ok(f as i64)
            }
            other => Err(mismatch(&other, "i64")),
        }
    }
}

impl Decode for f64 {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        match value {
            ValueRef::Real(f) | ValueRef::Number(f) => Ok(f),
            ValueRef::Integer(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 + 1 => Ok(i as f64),
            other => Err(mismatch(&other, "f64")),
        }
    }
}

impl Decode for bool {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        match i64::decode(value.clone()) {
            Ok(0) => Ok(false),
            Ok(1) => Ok(true),
            Ok(_) => Err(QueryError::new(
                QueryErrorKind::Decode,
                "holds an INTEGER other than 0 or 1, which does not decode into `bool`",
            )),
            Err(e) if e.kind() == QueryErrorKind::UnsafeInteger => Err(e),
            Err(_) => Err(mismatch(&value, "bool")),
        }
    }
}

impl Decode for String {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        match value {
            ValueRef::Text(t) => Ok(t.into_owned()),
            other => Err(mismatch(&other, "String")),
        }
    }
}

impl Decode for Vec<u8> {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        match value {
            ValueRef::Blob(b) => Ok(b.into_owned()),
            other => Err(mismatch(&other, "Vec<u8>")),
        }
    }
}

impl Decode for Value {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            // workerd's numbers: an integer when it is one, never a rounded one.
            ValueRef::Number(n) if n.fract() == 0.0 && n.is_finite() => {
                if n.abs() > MAX_SAFE_INTEGER as f64 {
                    return Err(unsafe_integer(n));
                }
                Value::Integer(n as i64)
            }
            ValueRef::Number(n) => Value::Real(n),
            ValueRef::Text(t) => Value::Text(t.into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.into_owned()),
        })
    }
}

impl<T: Decode> Decode for Option<T> {
    #[inline]
    fn decode(value: ValueRef<'_>) -> Result<Self, QueryError> {
        match value {
            ValueRef::Null => Ok(None),
            other => T::decode(other).map(Some),
        }
    }
}

/// A field of type `Self` can be filled from a column `query_as!` inferred
/// as `I`: the same type, an `Option` of it (a non-null column into a
/// nullable field), or `bool` from an INTEGER column.
#[diagnostic::on_unimplemented(
    message = "a column of type `{I}` cannot fill a field of type `{Self}`",
    label = "the field's type does not match the column",
    note = "a nullable column needs an `Option` field, or the `AS \"name!\"` override when it is never NULL"
)]
pub trait FromColumn<I>: Decode {}

impl<T: Decode> FromColumn<T> for T {}
impl<T: Decode> FromColumn<T> for Option<T> {}
impl FromColumn<i64> for bool {}
impl FromColumn<i64> for Option<bool> {}
impl FromColumn<Option<i64>> for Option<bool> {}

/// What kind of [`QueryError`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueryErrorKind {
    /// The statement did not prepare (e.g. the database's schema is not the
    /// one the query was checked against).
    Prepare,
    /// The arguments did not bind (their number differs from the
    /// statement's parameters).
    Bind,
    /// `fetch_one` got no row.
    NoRows,
    /// A column's value does not decode into the field's type.
    Decode,
    /// On a Durable Object, an integer beyond ±2^53 - 1 read or bound:
    /// workerd would round it.
    UnsafeInteger,
    /// The database failed while running the statement (a constraint, a
    /// limit, workerd's rules).
    Backend,
    /// A newer migration recorded in the database breaks this query (it
    /// dropped, renamed or tightened something the query uses): refused
    /// by a [`Checked`] database before anything ran. Map it to a 503, as
    /// `MigrateError::Incompatible`.
    Incompatible,
}

impl QueryErrorKind {
    /// The kind as a lowercase word: `prepare`, `bind`, `no_rows`, `decode`,
    /// `unsafe_integer`, `backend`, `incompatible`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryErrorKind::Prepare => "prepare",
            QueryErrorKind::Bind => "bind",
            QueryErrorKind::NoRows => "no_rows",
            QueryErrorKind::Decode => "decode",
            QueryErrorKind::UnsafeInteger => "unsafe_integer",
            QueryErrorKind::Backend => "backend",
            QueryErrorKind::Incompatible => "incompatible",
        }
    }
}

impl fmt::Display for QueryErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a [`Query`] failed: its [`kind`](QueryError::kind), the column
/// when a value did not decode, and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    kind: QueryErrorKind,
    column: Option<&'static str>,
    message: String,
}

impl QueryError {
    /// An error of `kind` with `message` (for a backend: the database's own
    /// message).
    pub fn new(kind: QueryErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            column: None,
            message: message.into(),
        }
    }

    fn with_column(mut self, column: &'static str) -> Self {
        self.column.get_or_insert(column);
        self
    }

    /// Prefixes a decoding error with the column it is about.
    fn in_column(mut self, column: &'static str, index: usize) -> Self {
        if matches!(
            self.kind,
            QueryErrorKind::Decode | QueryErrorKind::UnsafeInteger
        ) && !self.message.starts_with("the row has no column")
        {
            self.message = format!("column `{column}` (index {index}) {}", self.message);
        }
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> QueryErrorKind {
        self.kind
    }

    /// The column whose value did not decode.
    pub fn column(&self) -> Option<&'static str> {
        self.column
    }

    /// The message, without the kind's prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            QueryErrorKind::Prepare => write!(
                f,
                "query did not prepare: {}; the database's schema is not the one the query was \
                 checked against (run the migrations first)",
                self.message
            ),
            QueryErrorKind::Bind => write!(f, "query arguments did not bind: {}", self.message),
            QueryErrorKind::NoRows => write!(
                f,
                "query returned no row: {}; use `fetch_optional` when none is a valid answer",
                self.message
            ),
            QueryErrorKind::Decode => write!(f, "query row did not decode: {}", self.message),
            QueryErrorKind::UnsafeInteger => write!(
                f,
                "unsafe integer: {}; keep such values in TEXT or BLOB columns on a Durable Object",
                self.message
            ),
            QueryErrorKind::Backend => write!(f, "query failed: {}", self.message),
            QueryErrorKind::Incompatible => {
                write!(f, "query incompatible with the database: {}", self.message)
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// The argument count check every backend makes before binding.
#[allow(dead_code)]
pub(crate) fn check_count(expected: usize, args: &[Arg]) -> Result<(), QueryError> {
    if expected == args.len() {
        return Ok(());
    }
    Err(QueryError::new(
        QueryErrorKind::Bind,
        format!(
            "the statement has {expected} parameter(s) and got {} argument(s)",
            args.len()
        ),
    ))
}

/// For a backend that binds through JavaScript numbers (a Durable Object,
/// or a model of one): an [`Arg::Integer`] beyond ±2^53 - 1 would be
/// stored rounded, so it is a [`QueryError`] of kind
/// [`UnsafeInteger`](QueryErrorKind::UnsafeInteger) naming the argument.
pub fn check_javascript_args(args: &[Arg]) -> Result<(), QueryError> {
    for (i, arg) in args.iter().enumerate() {
        if let Arg::Integer(n) = arg {
            if n.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
                return Err(QueryError::new(
                    QueryErrorKind::UnsafeInteger,
                    format!(
                        "argument {} is {n}, beyond JavaScript's safe integers (±2^53 - 1): \
                         workerd binds numbers, so it would store a rounded value",
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// For a backend's [`Executor::execute`]: the rows a statement changed, from
/// SQLite's `total_changes()` before it and `total_changes()` and
/// `changes()` after it. `changes()` alone is the count of the last INSERT,
/// UPDATE or DELETE that completed, stale after any other statement; when
/// `total_changes()` did not move, the statement changed nothing.
pub fn changed_rows(total_before: u64, total_after: u64, changes: u64) -> u64 {
    if total_after == total_before {
        0
    } else {
        changes
    }
}

#[cfg(test)]
mod tests;
