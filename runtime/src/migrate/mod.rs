//! The executor: one wake-up of a database, read as its steps.
//!
//! Cost model. A Durable Object runs the migrator on every wake-up, so the
//! common case (database current) must be one statement reading one row,
//! [`tracking::head_query`]. `version` is the `INTEGER PRIMARY KEY` (the
//! rowid), so SQLite reads just the last row of the b-tree. Its `chain`
//! vouches for the whole history because each chain value is hash(previous
//! chain, version, checksum), precomputed by the compiler: comparing one
//! string with the code's value compares every applied file. Everything else
//! (history walk, shape inspection, adoption) happens only when that check
//! does not say "current".
//!
//! The steps, one module each, in the order a wake-up meets them:
//! - [`head`]: the up-to-date check on the head row, and naming where an
//!   edited history differs;
//! - [`adopt`]: when there is no head row to read, what exists under the
//!   tracking table's name (nothing, a hand-rolled table, another tool's);
//! - [`drizzle`]: taking over drizzle-kit's history;
//! - [`failure`]: under [`Schema::wake`], the failure record that defers a
//!   retry of the same code;
//! - [`started`]: under [`Schema::wake`], the started record that makes a
//!   run killed mid-migration a failure (`interrupted`), not a reset loop;
//! - [`apply`]: the pending migrations, one transaction each;
//! - [`batch`]: a migration with batched statements, in phases that a
//!   later run resumes, within `wake`'s time budget;
//! - [`baseline`]: a new object created in one transaction instead;
//! - [`transaction`]: one transaction's steps, and what a failed step means.
//!
//! Each step returns what it found or did. A step that stops the run
//! returns a [`Stopped`], the error together with the report so far, which
//! [`Schema::wake`] keeps in its [`Wake`].

mod adopt;
mod apply;
mod baseline;
pub(crate) mod batch;
mod drizzle;
mod failure;
mod head;
mod started;
mod transaction;

#[cfg(any(target_arch = "wasm32", feature = "worker"))]
pub(crate) use started::{Resume, WakeStep};

use transaction::Batch;

use std::borrow::Cow;

use crate::backend::{Backend, BackendError, Rows, Value};
use crate::error::MigrateError;
use crate::report::{Report, Wake};
use crate::tracking;
use crate::{Migration, Schema};

impl Schema {
    /// Brings the database behind `backend` to this schema's version.
    ///
    /// `backend` is a `rusqlite::Connection` (feature `rusqlite`), a Durable
    /// Object's storage ([`worker::DurableObjectSql`](crate::worker)), or
    /// any other [`Backend`].
    ///
    /// When the database is current this runs exactly one query reading one
    /// row. Otherwise it applies each pending migration, statement by
    /// statement, in its own transaction together with its tracking row;
    /// see [`MigrateError`] for what stops it. A migration with batched
    /// statements runs in phases, each repetition of a batch its own
    /// transaction, to the end: `migrate` has no time budget.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(feature = "rusqlite")] {
    /// // migrations/0001_users.sql creates table `users`.
    /// #[durable_schema::durable_schema(dir = "migrations")]
    /// struct Db;
    ///
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// let report = Db::SCHEMA.migrate(&conn)?;
    /// assert_eq!(report.to_version(), 1);
    /// assert!(Db::SCHEMA.migrate(&conn)?.is_noop());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migrate<B: Backend + ?Sized>(&self, backend: &B) -> Result<Report, MigrateError> {
        Executor::new(self, &backend)
            .run()
            .map_err(|stopped| stopped.error)
    }

    /// What a Durable Object's constructor hook runs on every wake-up:
    /// [`migrate`](Schema::migrate), made cheap and visible on a fleet.
    ///
    /// - When a migration fails, the failure is recorded in the database
    ///   (table `<table>_failure`: which code, which version, the error,
    ///   when), and the next wake-ups of the same code do not run it again
    ///   for [`retry_after`](Schema::retry_after) seconds: they return
    ///   [`MigrateError::Deferred`] after reading that record, without
    ///   executing anything. New code (a deploy that changes the migrations)
    ///   tries at once. A success clears the record.
    /// - Before the first migration it executes, the run commits a started
    ///   record in the same table; a wake-up of the same code that finds it
    ///   (the run was killed, or the object reset past a time limit) returns
    ///   [`MigrateError::Interrupted`] naming the file, records it as that
    ///   failure, and executes nothing.
    /// - A batched statement (`-- durable-schema: batch`) is repeated, each
    ///   repetition committed with its progress, until the run has spent
    ///   [`budget_ms`](Schema::budget_ms): it then stops between two
    ///   repetitions with [`MigrateError::InProgress`] (not a failure), and
    ///   the next wake-up resumes where it stopped.
    /// - The returned [`Wake`] keeps what the run did even when it failed
    ///   (migrations applied before the failure stay applied), and renders
    ///   the one structured log line a run deserves.
    ///
    /// The fast path is the same as `migrate`'s: one statement reading one
    /// row; the failure record is read only when there is work to do.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(feature = "rusqlite")] {
    /// use durable_schema_runtime::MigrateError;
    /// // migrations/0001_users.sql creates table `users`.
    /// #[durable_schema::durable_schema(dir = "migrations")]
    /// struct Db;
    ///
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE users (x)")?; // 0001 will fail on this database
    /// let first = Db::SCHEMA.wake(&conn);
    /// assert!(matches!(first.error(), Some(MigrateError::Statement { .. })));
    /// println!("{}", first.log_line("object-1", 0.0).unwrap());
    /// // The same code, right after: deferred, nothing executed.
    /// let second = Db::SCHEMA.wake(&conn);
    /// assert!(matches!(second.error(), Some(MigrateError::Deferred { attempts: 1, .. })));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake<B: Backend + ?Sized>(&self, backend: &B) -> Wake {
        let exec = Executor {
            retry: Some(self.retry_after()),
            budget: Some(batch::Budget::new(self.budget_ms())),
            ..Executor::new(self, &backend)
        };
        Wake::from_run(exec.run())
    }

    /// The migrations after `version` (all of them for 0).
    pub(crate) fn pending_after(&self, version: u32) -> &'static [Migration] {
        // At the head there is nothing to decode (see `Schema::__packed`):
        // the up-to-date check, the common case, stays one row read.
        if version >= self.version() {
            return &[];
        }
        let migrations = self.migrations();
        let start = usize::try_from(version)
            .unwrap_or(usize::MAX)
            .min(migrations.len());
        &migrations[start..]
    }
}

/// The executor's paths that only some schemas can take, as function
/// pointers that the schema's builders set: taking drizzle's history over
/// (a schema read from a drizzle-kit journal) and creating a new object from
/// the baseline (a schema that embeds one). A program links a path only
/// when a schema it builds can take it, so a Worker whose schema has neither
/// does not carry their code. Unset, the path is one a run with this schema
/// never takes: without a journal there is no drizzle history to match
/// (the run finds a fresh database, as before), without a baseline the
/// chain runs.
#[derive(Clone, Copy)]
pub(crate) struct Paths {
    drizzle: Option<DrizzlePath>,
    baseline: Option<BaselineFn>,
    phased: Option<PhasedFn>,
}

/// See [`Executor::apply_phased`]: a migration with a batched statement,
/// run as phases.
pub(crate) type PhasedFn = fn(
    &Executor<'_>,
    &'static Migration,
    &str,
    Option<batch::Progress>,
    batch::Ends,
    &mut Report,
) -> Result<batch::Phased, MigrateError>;

/// drizzle's history: reading and matching it, and the steps recording it.
#[derive(Clone, Copy)]
struct DrizzlePath {
    history: fn(&Executor<'_>) -> Result<Option<drizzle::DrizzleHistory>, Stopped>,
    steps: fn(&Executor<'_>, &[(u32, i64)], &mut Batch),
}

/// See [`Executor::baseline`].
type BaselineFn = fn(
    &Executor<'_>,
    &'static crate::Baseline,
    &Batch,
    &str,
    &mut Report,
) -> Result<bool, MigrateError>;

impl Paths {
    /// No optional path: a schema without a journal and without a baseline.
    pub(crate) const NONE: Self = Self {
        drizzle: None,
        baseline: None,
        phased: None,
    };

    /// With drizzle's history (a schema from a drizzle-kit journal).
    pub(crate) const fn with_drizzle(mut self) -> Self {
        self.drizzle = Some(DrizzlePath {
            history: drizzle::read_history,
            steps: drizzle::history_steps,
        });
        self
    }

    /// With the baseline path (a schema that embeds a baseline).
    pub(crate) const fn with_baseline(mut self) -> Self {
        self.baseline = Some(baseline::create);
        self
    }

    /// With batched statements run as phases (a schema with a statement
    /// marked `-- durable-schema: batch`).
    pub(crate) const fn with_batches(mut self) -> Self {
        self.phased = Some(batch::phased);
        self
    }

    /// The phases of a batched migration, when the schema has one.
    pub(crate) fn phased(&self) -> Option<PhasedFn> {
        self.phased
    }
}

// Set from the schema's other fields (its journal, its baseline), so they
// add nothing to a comparison; printed as which paths are linked.
impl PartialEq for Paths {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Paths {}

impl std::fmt::Debug for Paths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paths")
            .field("drizzle", &self.drizzle.is_some())
            .field("baseline", &self.baseline.is_some())
            .field("batches", &self.phased.is_some())
            .finish()
    }
}

/// One migration run (or status) against one backend.
///
/// Over `dyn Backend`, not generic: a program has one copy of the executor
/// whatever its backends, and the optional paths a schema links
/// are plain function pointers (see `Paths` in `schema.rs`).
pub(crate) struct Executor<'a> {
    schema: &'a Schema,
    backend: &'a dyn Backend,
    /// `Some(seconds)` under [`Schema::wake`]: record failures and defer
    /// retries of the same code.
    retry: Option<u32>,
    /// Under [`Schema::wake`]: whether the run pauses after committing a
    /// started record ([`Schema::wake_step`]).
    pace: started::Pace,
    /// Under [`Schema::wake`]: when it stops repeating a batched statement
    /// (see [`batch`]); `None` runs every batch to its end.
    budget: Option<batch::Budget>,
}

/// A run that stopped: the error, and the report of what the run found and
/// did before it (refinery's `Error { kind, report }`). Migrations applied
/// before the error stay applied, so [`Wake`] reports them.
pub(crate) struct Stopped {
    pub(crate) error: MigrateError,
    /// Boxed: the error path alone pays for carrying it.
    pub(crate) report: Box<Report>,
}

impl Stopped {
    /// The error of a step taken after `report` (moved, not cloned: a
    /// `Report` clone is code every Worker would carry).
    fn new(error: MigrateError, report: Report) -> Self {
        Self {
            error,
            report: Box::new(report),
        }
    }

    /// For `map_err`: the error of a step that found the database at
    /// `version` after reading `rows_read` rows, and changed nothing.
    fn at(version: u32, rows_read: u64) -> impl Fn(MigrateError) -> Stopped + Copy {
        move |error| Stopped::unchanged(error, version, rows_read)
    }

    /// See [`Stopped::at`]. Out of line: the early steps stop in many
    /// places, and each inlined copy built the whole report there.
    #[inline(never)]
    fn unchanged(error: MigrateError, version: u32, rows_read: u64) -> Self {
        Stopped::new(error, Report::unchanged(version, rows_read))
    }

    /// The same stop, counting `rows` read by the steps before the one that
    /// stopped.
    fn plus_read(mut self, rows: u64) -> Self {
        self.report.rows_read += rows;
        self
    }
}

/// [`Schema::status`] and [`Schema::migrate`] keep only the error.
impl From<Stopped> for MigrateError {
    fn from(stopped: Stopped) -> Self {
        stopped.error
    }
}

/// Where the database stands, as the head check or the adoption found it:
/// what [`Executor::apply`] starts from.
struct Start {
    /// The version found and the rows read to find it.
    report: Report,
    /// What has to happen before the first pending migration.
    preamble: Option<Preamble>,
    /// The head row's chain when it is not the code's own history (it went
    /// through a replaced text): what the next tracking row chains onto.
    prev: Option<String>,
}

impl Start {
    /// The database at `version` in a tracking table of the executor's
    /// shape, after reading `rows_read` rows.
    // Out of line, like `Stopped::unchanged`: called from many steps.
    #[inline(never)]
    fn at(version: u32, rows_read: u64) -> Self {
        Self::new(Report::unchanged(version, rows_read), None)
    }

    fn new(report: Report, preamble: Option<Preamble>) -> Self {
        Self {
            report,
            preamble,
            prev: None,
        }
    }
}

/// What has to happen before the first pending migration's statements when
/// the tracking table is not (yet) in the executor's shape.
enum Preamble {
    /// Fresh database: create the tracking table.
    Create,
    /// Hand-rolled table recording `1..=n`: add the columns, fill them.
    Adopt(u32),
    /// drizzle's history recording versions `1..=n` (their `created_at`):
    /// create the tracking table and record them, leaving drizzle's alone.
    DrizzleHistory(Vec<(u32, i64)>),
}

impl<'a> Executor<'a> {
    /// A run over `backend`; a caller holding `backend: &B` for an unsized
    /// `B` passes `&backend` (`&B` is a `Backend` too).
    pub(crate) fn new(schema: &'a Schema, backend: &'a dyn Backend) -> Self {
        Self {
            schema,
            backend,
            retry: None,
            pace: started::Pace::default(),
            budget: None,
        }
    }

    /// The whole run: the up-to-date check, then whatever it calls for.
    fn run(&self) -> Result<Report, Stopped> {
        // Embedded by the macro, so the common case builds nothing.
        let head = match self.schema.__head_query() {
            Some(query) => Cow::Borrowed(query),
            None => Cow::Owned(tracking::head_query(self.table())),
        };
        let start = match self.backend.query(&head, &[]) {
            // The fast path: the head row says where the database stands.
            Ok(rows) => self.check_head(rows)?,
            // No such table, or no `chain` column: a fresh database, a
            // hand-rolled table, or another tool's table. Find out which.
            Err(head_error) => self.inspect_and_adopt(head_error)?,
        };
        // Nothing when current; otherwise each pending migration (or the
        // baseline), under `wake`'s retry rules.
        self.apply(start)
    }

    pub(crate) fn table(&self) -> &'static str {
        self.schema.table()
    }

    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, MigrateError> {
        self.backend
            .query(sql, params)
            .map_err(|e| self.read_error(&e))
    }

    fn read_error(&self, e: &BackendError) -> MigrateError {
        MigrateError::Backend {
            context: format!("reading table \"{}\"", self.table()),
            message: e.message().to_owned(),
        }
    }

    /// A tracking row's version: `INTEGER PRIMARY KEY` guarantees an
    /// integer, but not that it is a plausible version.
    pub(crate) fn version_of(&self, value: Option<&Value>) -> Result<u32, MigrateError> {
        let detail = match value {
            Some(Value::Integer(v)) => match u32::try_from(*v) {
                Ok(v) if v > 0 => return Ok(v),
                _ => format!("version {v}"),
            },
            Some(Value::Text(t)) => format!("version '{t}'"),
            Some(Value::Null) | None => "version NULL".to_owned(),
        };
        Err(MigrateError::InvalidRecord {
            table: self.table(),
            detail,
        })
    }

    fn gap(&self, missing: u32) -> MigrateError {
        MigrateError::Gap {
            table: self.table(),
            missing,
        }
    }
}

/// What differs in the history up to `upto` (the first edited version, or a
/// gap), for a reader outside the executor ([`Schema::checked`]).
pub(crate) fn divergence<B: Backend + ?Sized>(
    schema: &Schema,
    backend: &B,
    upto: u32,
) -> MigrateError {
    Executor::new(schema, &backend).divergence(upto)
}

pub(crate) fn text_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// For the executor's unit tests: a schema of `files` (version 1, 2, …) as
/// the compiler builds it for the macro, a statement after the line
/// `-- durable-schema: batch` marked a batch.
#[cfg(all(test, feature = "rusqlite"))]
pub(crate) fn test_schema(files: &[&str]) -> Schema {
    use durable_schema_compiler::{chain, checksum, encode_spans, normalize_text, spans};
    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }
    let mut prev = String::new();
    let mut out = Vec::new();
    for (i, sql) in files.iter().enumerate() {
        let version = u32::try_from(i + 1).unwrap();
        let text = leak(normalize_text(sql));
        let sum = checksum(text);
        prev = chain(&prev, version, &sum);
        out.push(Migration::__new(
            version,
            leak(format!("{version:04}_m.sql")),
            "m",
            text,
            leak(sum),
            leak(prev.clone()),
            leak(encode_spans(&spans(text))),
        ));
    }
    Schema::__new("migrations", false, Box::leak(out.into_boxed_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Step, TxError};

    struct NoDb;

    impl Backend for NoDb {
        fn query(&self, _: &str, _: &[Value]) -> Result<Rows, BackendError> {
            Err(BackendError::new("unreachable"))
        }
        fn transaction(&self, _: Vec<Step>) -> Result<u64, TxError> {
            Err(TxError::outside_steps(BackendError::new("unreachable")))
        }
    }

    #[test]
    fn a_failing_backend_is_a_backend_error() {
        let schema = Schema::__new("migrations", false, &[]);
        let err = schema.migrate(&NoDb).unwrap_err();
        assert_eq!(
            err,
            MigrateError::Backend {
                context: "reading table \"migrations\"".into(),
                message: "unreachable".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "database error while reading table \"migrations\": unreachable"
        );
    }
}
