//! Checked queries at run time: what `query!` and `query_as!` build.
//!
//! **Stand-in** written with the compile-time half (helper Q1) so its
//! tests compile and run on rusqlite; the runtime module proper (every
//! backend, decoding rules, `unsafe_integer` on a Durable Object) replaces
//! it, with the same names and signatures (see the contract of issue 19).

use std::fmt;

/// A statement checked at compile time, with its arguments and the mapping
/// of a row to `R`.
pub struct Query<R> {
    sql: &'static str,
    args: Vec<Arg>,
    map: fn(&Row<'_>) -> Result<R, QueryError>,
}

impl<R> fmt::Debug for Query<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("sql", &self.sql)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl<R> Query<R> {
    /// Built by the generated code only.
    #[doc(hidden)]
    pub fn __new(
        sql: &'static str,
        args: Vec<Arg>,
        map: fn(&Row<'_>) -> Result<R, QueryError>,
    ) -> Self {
        Self { sql, args, map }
    }

    /// The statement, as written in the macro.
    pub fn sql(&self) -> &'static str {
        self.sql
    }

    /// Every row.
    pub fn fetch_all<E: Executor + ?Sized>(self, db: &E) -> Result<Vec<R>, QueryError> {
        let mut rows = Vec::new();
        db.run(self.sql, &self.args, &mut |row| {
            rows.push((self.map)(row)?);
            Ok(true)
        })?;
        Ok(rows)
    }

    /// The first row, or `None`.
    pub fn fetch_optional<E: Executor + ?Sized>(self, db: &E) -> Result<Option<R>, QueryError> {
        let mut first = None;
        db.run(self.sql, &self.args, &mut |row| {
            first = Some((self.map)(row)?);
            Ok(false)
        })?;
        Ok(first)
    }

    /// The first row; no row is an error of kind [`QueryErrorKind::NoRows`].
    pub fn fetch_one<E: Executor + ?Sized>(self, db: &E) -> Result<R, QueryError> {
        let sql = self.sql;
        self.fetch_optional(db)?.ok_or_else(|| {
            QueryError::new(QueryErrorKind::NoRows, format!("`{sql}` returned no row"))
        })
    }

    /// Runs the statement; the number of rows it changed.
    pub fn execute<E: Executor + ?Sized>(self, db: &E) -> Result<u64, QueryError> {
        db.run(self.sql, &self.args, &mut |_| Ok(true))
    }
}

/// An argument, as bound.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// A blob.
    Blob(Vec<u8>),
}

/// A value that binds as an argument. Not for `u64`, `usize` or `i128`:
/// SQLite's integers are `i64`, and a silent wrap would store another
/// number.
pub trait Encode {
    /// The argument.
    fn encode(&self) -> Arg;
}

macro_rules! encode_int {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self) -> Arg {
                Arg::Integer(i64::from(*self))
            }
        }
    )*};
}
encode_int!(i64, i32, i16, i8, u32, u16, u8, bool);

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

/// A column declared `INTEGER`.
#[derive(Debug)]
pub struct Integer;
/// A column declared `REAL`.
#[derive(Debug)]
pub struct Real;
/// A column declared `TEXT`.
#[derive(Debug)]
pub struct Text;
/// A column declared `BLOB`.
#[derive(Debug)]
pub struct Blob;
/// A column of no or `NUMERIC` affinity.
#[derive(Debug)]
pub struct Any;

/// A Rust type whose values can be bound to a column of kind `K`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be bound to a column of kind `{K}`",
    label = "this argument's type does not fit the column it is compared with or written to"
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

/// Compiles only when `T` binds to a column of kind `K`.
pub fn check_arg<K, T: BindsTo<K> + ?Sized>(_: &T) {}

/// A value as SQLite returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// A blob.
    Blob(Vec<u8>),
}

/// One row of a result.
#[derive(Debug)]
pub struct Row<'a> {
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// A row of these values (for executors).
    pub fn new(values: &'a [Value]) -> Self {
        Self { values }
    }

    /// Column `index`, named `column` in errors, decoded as `T`.
    pub fn get<T: Decode>(&self, index: usize, column: &'static str) -> Result<T, QueryError> {
        let value = self.values.get(index).ok_or_else(|| {
            QueryError::new(
                QueryErrorKind::Decode,
                format!("the row has no column `{column}`"),
            )
        })?;
        T::decode(value).ok_or_else(|| {
            QueryError::new(
                QueryErrorKind::Decode,
                format!(
                    "column `{column}` holds {value:?}, not a `{}`",
                    std::any::type_name::<T>()
                ),
            )
        })
    }

    /// Column `index` decoded as its inferred type `I`, into a field of
    /// type `F` (a field that cannot hold an `I` does not compile).
    pub fn get_checked<I: Decode, F: FromColumn<I>>(
        &self,
        index: usize,
        column: &'static str,
    ) -> Result<F, QueryError> {
        self.get::<I>(index, column).map(F::from_column)
    }
}

/// A type a column decodes to.
pub trait Decode: Sized {
    /// The value as `Self`, or `None` when it is not one.
    fn decode(value: &Value) -> Option<Self>;
}

impl Decode for i64 {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i),
            #[allow(clippy::cast_possible_truncation)]
            Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Some(*r as i64),
            _ => None,
        }
    }
}
impl Decode for f64 {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Real(r) => Some(*r),
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl Decode for String {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}
impl Decode for Vec<u8> {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b.clone()),
            _ => None,
        }
    }
}
impl Decode for bool {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(0) => Some(false),
            Value::Integer(1) => Some(true),
            _ => None,
        }
    }
}
impl Decode for Value {
    fn decode(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}
impl<T: Decode> Decode for Option<T> {
    fn decode(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::decode(other).map(Some),
        }
    }
}

/// A field of type `Self` can hold a column inferred as `I`.
#[diagnostic::on_unimplemented(
    message = "a column inferred as `{I}` does not fit a field of type `{Self}`",
    label = "the field's type must be the column's inferred type (a nullable column needs `Option`)"
)]
pub trait FromColumn<I> {
    /// The field's value.
    fn from_column(value: I) -> Self;
}
impl<T: Decode> FromColumn<T> for T {
    fn from_column(value: T) -> Self {
        value
    }
}
impl<T: Decode> FromColumn<T> for Option<T> {
    fn from_column(value: T) -> Self {
        Some(value)
    }
}

/// A database a checked query runs on.
pub trait Executor {
    /// Runs `sql` with `args`, calling `each` per row until it returns
    /// `false`; the number of rows changed.
    fn run(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool, QueryError>,
    ) -> Result<u64, QueryError>;
}

#[cfg(feature = "rusqlite")]
impl Executor for rusqlite::Connection {
    fn run(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool, QueryError>,
    ) -> Result<u64, QueryError> {
        use rusqlite::types::{Value as V, ValueRef};
        let backend = |e: rusqlite::Error| QueryError::new(QueryErrorKind::Backend, e.to_string());
        let mut stmt = self.prepare(sql).map_err(backend)?;
        let params: Vec<V> = args
            .iter()
            .map(|a| match a {
                Arg::Null => V::Null,
                Arg::Integer(i) => V::Integer(*i),
                Arg::Real(r) => V::Real(*r),
                Arg::Text(t) => V::Text(t.clone()),
                Arg::Blob(b) => V::Blob(b.clone()),
            })
            .collect();
        let width = stmt.column_count();
        let readonly = stmt.readonly();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(backend)?;
        let mut values = Vec::with_capacity(width);
        while let Some(row) = rows.next().map_err(backend)? {
            values.clear();
            for i in 0..width {
                values.push(match row.get_ref(i).map_err(backend)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(r) => Value::Real(r),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            if !each(&Row::new(&values))? {
                break;
            }
        }
        drop(rows);
        Ok(if readonly { 0 } else { self.changes() })
    }
}

/// What went wrong running a checked query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryErrorKind {
    /// The statement did not prepare.
    Prepare,
    /// An argument did not bind.
    Bind,
    /// `fetch_one` found no row.
    NoRows,
    /// A value did not decode to its field's type.
    Decode,
    /// An integer beyond ±2^53 on a Durable Object.
    UnsafeInteger,
    /// The database failed.
    Backend,
}

/// A checked query's run-time error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    kind: QueryErrorKind,
    message: String,
}

impl QueryError {
    fn new(kind: QueryErrorKind, message: String) -> Self {
        Self { kind, message }
    }

    /// What went wrong.
    pub fn kind(&self) -> QueryErrorKind {
        self.kind
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QueryError {}
