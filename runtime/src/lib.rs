//! Runtime of [durable-schema](https://docs.rs/durable-schema): the data types
//! that `#[durable_schema]` generates and the executor that applies them.
//!
//! Users depend on the `durable-schema` facade, which re-exports this crate.
//!
//! - [`Schema`], [`Migration`], [`Statement`]: the checked migrations, embedded
//!   at compile time.
//! - [`Schema::migrate`] and [`Schema::status`]: the executor, over a
//!   `rusqlite::Connection` (feature `rusqlite`), a Durable Object's storage
//!   ([`worker`], on wasm32) or any [`backend::Backend`].
//! - [`query`]: checked queries at run time (what `query!` and `query_as!`
//!   generate) and their seam to a database, [`query::Executor`].
//! - [`Report`], [`Status`], [`SchemaState`], [`AppliedMigration`],
//!   [`MigrateError`]: what happened, where the database stands, what went
//!   wrong.
//!
//! The runtime has no SQL parser and no hasher: statements are split and the
//! checksum chain computed at compile time, so at run time it only compares
//! strings.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
// The example is a whole build script, where `fn main` is the point.
#[allow(clippy::needless_doctest_main)]
pub mod build;
mod error;
mod json;
mod migrate;
mod number;
#[doc(hidden)]
pub mod packed;
pub mod query;
mod report;
mod schema;
#[cfg(feature = "rusqlite")]
mod sqlite;
mod status;
#[doc(hidden)]
pub mod tracking;
#[cfg(any(target_arch = "wasm32", feature = "worker"))]
#[cfg_attr(docsrs, doc(cfg(target_arch = "wasm32")))]
pub mod worker;

pub use error::MigrateError;
pub use report::{AppliedMigration, FailureRecord, Mismatch, Report, SchemaState, Status, Wake};
#[doc(hidden)]
pub use schema::__ChainLink;
pub use schema::{Baseline, Class, Migration, Schema, Statement, StatementIter, Statements};

/// Support for the code `#[durable_schema]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    use crate::backend::Backend;
    use crate::{MigrateError, Migration, Report, Schema};

    pub use crate::packed::check_tag;

    /// What `query!`/`query_as!` expand to: the [`query`](crate::query)
    /// module's items under one path the generated code names.
    pub mod query {
        pub use crate::query::{
            check_arg, Any, Arg, BindsTo, Blob, Decode, Encode, Executor, FromColumn, Integer,
            Query, QueryError, QueryErrorKind, Real, Row, Text, Value, ValueRef,
        };
    }
    use crate::packed::decode;

    /// Where the generated code keeps its decoded migrations (a `static`).
    pub type DecodedCell = std::sync::OnceLock<Vec<Migration>>;

    /// The generated `SCHEMA`'s migrations, decoded from the packed `meta`
    /// the first time the process asks and kept in `cell`.
    ///
    /// # Panics
    ///
    /// When `meta` does not decode to one migration per text. The macro
    /// wrote it for these texts with this crate's encoder and the build
    /// checked its format tag ([`check_tag`]), so this takes a bug or
    /// mismatched crates; `Schema::migrations` cannot carry an error, and
    /// running fewer migrations than the schema's version says would be
    /// worse than stopping.
    pub fn decoded(
        cell: &'static DecodedCell,
        texts: &'static [&'static str],
        meta: &'static str,
    ) -> &'static [Migration] {
        cell.get_or_init(|| match decode(texts, meta) {
            Ok(migrations) => migrations,
            Err(e) => panic!(
                "durable-schema: the embedded migrations do not decode ({e}); \
                 durable-schema-macros and durable-schema-runtime must be the same version"
            ),
        })
    }

    /// The total length of the embedded texts, for the generated code's
    /// check that rustc read the files the macro checked.
    pub const fn total_len(texts: &[&str]) -> usize {
        let (mut i, mut total) = (0, 0);
        while i < texts.len() {
            total += texts[i].len();
            i += 1;
        }
        total
    }

    /// What the generated constructor hook accepts, so it is written once
    /// without cfgs:
    ///
    /// ```ignore
    /// pub fn migrate<T: ::durable_schema::__private::MigrateTarget + ?Sized>(
    ///     target: &T,
    /// ) -> T::Output {
    ///     target.__migrate(&Self::SCHEMA)
    /// }
    /// ```
    ///
    /// Every [`Backend`] (so `rusqlite::Connection` and test wrappers) returns
    /// `Result<Report, MigrateError>`. On wasm32, `worker::State` returns `()`:
    /// it runs [`Schema::wake`] under `blockConcurrencyWhile` and never
    /// fails the constructor (see [`worker`](crate::worker)).
    pub trait MigrateTarget {
        /// What the hook returns for this target.
        type Output;

        /// Runs (or starts) the migration of `schema` on `self`.
        fn __migrate(&self, schema: &Schema) -> Self::Output;
    }

    impl<B: Backend + ?Sized> MigrateTarget for B {
        type Output = Result<Report, MigrateError>;

        fn __migrate(&self, schema: &Schema) -> Self::Output {
            schema.migrate(self)
        }
    }
}
