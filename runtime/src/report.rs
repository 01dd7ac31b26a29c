//! What a migration run did ([`Report`]) and what a database looks like
//! compared with the code ([`Status`]).

use std::fmt;

use crate::json::{self, Object};
use crate::{MigrateError, Migration};

/// What a migration run did: the outcome of [`Schema::migrate`](crate::Schema::migrate),
/// or of a [`Schema::wake`](crate::Schema::wake) up to its failure
/// ([`failed`](Report::failed)).
///
/// Its `Display` is one line: `migrated from version 1 to 3 (0002_a.sql,
/// 0003_b.sql)`, `created from the verified baseline at version 3 (one
/// transaction)`, `migrated from version 1 to 2 (0002_a.sql), then
/// 0003_b.sql failed at statement 2 (0003_b.sql:2:1): UNIQUE constraint
/// failed: items.name`, `stayed at version 2: ...`, `database current at
/// version 3`.
///
/// # Example
///
/// ```no_run
/// # #[cfg(feature = "rusqlite")]
/// # fn demo(schema: &durable_schema_runtime::Schema, conn: &rusqlite::Connection)
/// # -> Result<(), durable_schema_runtime::MigrateError> {
/// let report = schema.migrate(conn)?;
/// for m in report.applied() {
///     println!("applied {}", m.name());
/// }
/// if let Some(db) = report.ahead() {
///     println!("database at version {db} is ahead of the code");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub(crate) from_version: u32,
    pub(crate) to_version: u32,
    pub(crate) applied: Vec<&'static Migration>,
    pub(crate) ahead: Option<u32>,
    pub(crate) adopted: bool,
    pub(crate) rows_read: u64,
    pub(crate) rows_written: u64,
    pub(crate) baseline: bool,
    pub(crate) baseline_error: Option<String>,
    pub(crate) failed: Option<MigrateError>,
}

impl Report {
    /// A run that found the database at `version` and, so far, changed nothing.
    pub(crate) fn unchanged(version: u32, rows_read: u64) -> Self {
        Self {
            from_version: version,
            to_version: version,
            applied: Vec::new(),
            ahead: None,
            adopted: false,
            rows_read,
            rows_written: 0,
            baseline: false,
            baseline_error: None,
            failed: None,
        }
    }

    /// A run that found the database at `db`, ahead of the code, and
    /// tolerated it.
    pub(crate) fn tolerated_ahead(db: u32, rows_read: u64) -> Self {
        Self {
            ahead: Some(db),
            ..Self::unchanged(db, rows_read)
        }
    }

    /// The version the database was at before the run (0 for a fresh one).
    pub fn from_version(&self) -> u32 {
        self.from_version
    }

    /// The version the database is at after the run. Equals
    /// [`from_version`](Report::from_version) when nothing was applied; when
    /// the database is ahead of the code it is the database's version.
    pub fn to_version(&self) -> u32 {
        self.to_version
    }

    /// The migrations applied by this run, in order.
    pub fn applied(&self) -> &[&'static Migration] {
        &self.applied
    }

    /// `Some(db_version)` when the database is ahead of the code (it records
    /// versions the code does not know) and the run tolerated it: nothing was
    /// applied.
    pub fn ahead(&self) -> Option<u32> {
        self.ahead
    }

    /// Whether this run adopted a hand-rolled three-column tracking table
    /// (added the `checksum` and `chain` columns).
    pub fn adopted(&self) -> bool {
        self.adopted
    }

    /// Whether the run changed nothing (the database was current or ahead).
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty() && !self.adopted
    }

    /// Rows read by the history checks, as the backend reported them. On a
    /// current database this is the single row of the up-to-date check.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// Whether the run created a new object from the schema's
    /// [`Baseline`](crate::Baseline) (one transaction) instead of running
    /// every migration; [`applied`](Report::applied) lists every version
    /// either way, and the tracking rows are the same.
    pub fn baseline(&self) -> bool {
        self.baseline
    }

    /// When the baseline was tried on an empty database and failed (the
    /// run then applied the migrations one by one): what failed. A compile
    /// time verified baseline fails only where the database differs from
    /// the one it was verified on, so this is worth a look.
    pub fn baseline_error(&self) -> Option<&str> {
        self.baseline_error.as_deref()
    }

    /// Rows written by the applied migrations and their tracking rows, as
    /// the backend counted them (0 when nothing was applied).
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// The error that stopped the run, when this is the report of a failed
    /// [`Schema::wake`](crate::Schema::wake) (the same as
    /// [`Wake::error`]); `None` for a run that completed, and always for
    /// [`Schema::migrate`](crate::Schema::migrate), which returns the error
    /// instead. [`applied`](Report::applied) still lists what the run
    /// committed before it.
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
    /// let report = Db::SCHEMA.wake(&conn).report().clone();
    /// assert!(matches!(report.failed(), Some(MigrateError::Statement { version: 1, .. })));
    /// assert!(report.applied().is_empty());
    /// assert_eq!(
    ///     report.to_string(),
    ///     "stayed at version 0: 0001_users.sql failed at statement 1 \
    ///      (0001_users.sql:1:1): table users already exists"
    /// );
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn failed(&self) -> Option<&MigrateError> {
        self.failed.as_ref()
    }
}

/// What [`Schema::wake`](crate::Schema::wake) did: the run's [`Report`],
/// complete even when the run failed (migrations applied before the failure
/// stay applied), and the error that stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    pub(crate) report: Report,
    pub(crate) error: Option<MigrateError>,
}

impl Wake {
    /// What the run did, up to the failure if there was one.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// What stopped the run; `None` when the schema is current (or ahead).
    pub fn error(&self) -> Option<&MigrateError> {
        self.error.as_ref()
    }

    /// The error, or the report of a run that completed.
    pub fn into_result(self) -> Result<Report, MigrateError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.report),
        }
    }

    /// The one structured log line (JSON) this run deserves, or `None` for
    /// a run that changed nothing and failed nothing (the fast path logs
    /// nothing). `object` names the object (a Durable Object's id);
    /// `duration_ms` is what the caller measured around the run.
    ///
    /// Fields: `event` (`"durable-schema"`), `object`, `outcome`
    /// (`adopted`, `applied`, `failed`, `deferred`, `in_progress`), `from`,
    /// `to`, `applied`
    /// (versions), `duration_ms`, `rows_written`, `path` when migrations
    /// were applied or tried (`baseline`: a new object created from the
    /// [`Baseline`](crate::Baseline); `chain`: one migration at a time),
    /// `baseline_error` when the baseline failed, and on failure `error`
    /// with `kind`, `message` and, where known, `version`, `file`,
    /// `statement`, `line`, `column`, `table`, `rowid`, `parent`.
    pub fn log_line(&self, object: &str, duration_ms: f64) -> Option<String> {
        let r = &self.report;
        let outcome = match &self.error {
            Some(MigrateError::Deferred { .. }) => "deferred",
            // Not a failure: a batch goes on in the next run.
            Some(MigrateError::InProgress { .. }) => "in_progress",
            Some(_) => "failed",
            // An adoption is the news even when the run also applied
            // migrations (`applied` lists them).
            None if r.adopted => "adopted",
            None if !r.applied.is_empty() => "applied",
            None => return None,
        };
        let mut o = Object::new();
        o.str("event", "durable-schema");
        o.str("object", object);
        o.str("outcome", outcome);
        o.uint("from", r.from_version.into());
        o.uint("to", r.to_version.into());
        let out = o.key("applied");
        out.push('[');
        for (i, m) in r.applied.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::push_uint(out, m.version().into());
        }
        out.push(']');
        let duration = if duration_ms.is_finite() {
            duration_ms.max(0.0)
        } else {
            0.0
        };
        o.key("duration_ms")
            .push_str(&crate::number::f64_text(duration));
        o.uint("rows_written", r.rows_written);
        if !r.applied.is_empty() || r.baseline_error.is_some() {
            o.str("path", if r.baseline { "baseline" } else { "chain" });
        }
        if let Some(e) = &r.baseline_error {
            o.str("baseline_error", e);
        }
        if let Some(e) = &self.error {
            o.key("error").push_str(&e.to_json());
        }
        Some(o.finish())
    }
}

/// A recorded migration whose description differs from the code's, found
/// when adopting a hand-rolled tracking table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The version.
    pub version: u32,
    /// The description the table records.
    pub recorded: String,
    /// The code's migration of that version.
    pub expected: &'static str,
}

impl fmt::Display for Report {
    /// One line: where the run took the database (or that it stayed), how
    /// (the baseline, or the migrations it applied), and what stopped it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = self.ahead {
            return write!(
                f,
                "database at version {db} is ahead of the code; nothing applied"
            );
        }
        if self.baseline {
            write!(
                f,
                "created from the verified baseline at version {} (one transaction)",
                self.to_version
            )?;
        } else if !self.applied.is_empty() {
            write!(
                f,
                "migrated from version {} to {} (",
                self.from_version, self.to_version
            )?;
            for (i, m) in self.applied.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(m.name())?;
            }
            f.write_str(")")?;
        } else if self.failed.is_some() {
            write!(f, "stayed at version {}", self.to_version)?;
        } else {
            write!(f, "database current at version {}", self.to_version)?;
        }
        if let Some(e) = &self.failed {
            f.write_str(if self.applied.is_empty() {
                ": "
            } else {
                ", then "
            })?;
            write_failure(f, e)?;
        }
        if let Some(e) = &self.baseline_error {
            f.write_str("; the verified baseline failed first (")?;
            write_one_line(f, e)?;
            f.write_str("), so the migrations ran one by one")?;
        }
        if self.adopted {
            f.write_str("; adopted the existing history")?;
        }
        Ok(())
    }
}

/// What stopped a run, for [`Report`]'s line: the file and SQLite's message
/// where the error names a migration's statement or reference (without
/// the advice the error's own text adds), else the error's own line.
fn write_failure(f: &mut fmt::Formatter<'_>, e: &MigrateError) -> fmt::Result {
    match e {
        MigrateError::Statement {
            file,
            statement,
            line,
            column,
            message,
            ..
        } => {
            write!(
                f,
                "{file} failed at statement {statement} ({file}:{line}:{column}): "
            )?;
            write_one_line(f, message)
        }
        MigrateError::ForeignKey {
            file,
            table,
            rowid,
            parent,
            ..
        } => {
            let row = rowid.map_or_else(|| "a row".to_owned(), |r| format!("row {r}"));
            write!(
                f,
                "{file} failed: {row} of \"{table}\" points at a missing row of \"{parent}\""
            )
        }
        other => write_one_line(f, &other.to_string()),
    }
}

/// `text` with line breaks as spaces: a database's message may span lines,
/// the report may not.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for (i, part) in text
        .split(['\r', '\n'])
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        if i > 0 {
            f.write_str(" ")?;
        }
        f.write_str(part)?;
    }
    Ok(())
}

/// Where a database stands relative to the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaState {
    /// No tracking table: every migration is pending.
    Fresh,
    /// The database has exactly the code's migrations.
    Current,
    /// Some migrations are pending.
    Behind,
    /// The database records versions the code does not know (a rolled-back
    /// deploy); the known prefix matches.
    Ahead,
    /// A hand-rolled `(version, applied_at, description)` tracking table, or
    /// drizzle's history (`__drizzle_migrations`, for a schema from a
    /// drizzle-kit journal), that the next migration run will adopt.
    Unadopted,
    /// The recorded history differs from the code from this version on: an
    /// applied migration was edited, or a version is missing. Migrating fails
    /// until it is fixed.
    Diverged {
        /// The first version that differs or is missing.
        version: u32,
    },
    /// The database is ahead, and its migration `version` breaks the code
    /// (see [`Status::incompatible`]): schema routes are refused until code
    /// of that version or newer is deployed.
    Incompatible {
        /// The newest recorded migration that breaks the code.
        version: u32,
    },
}

impl fmt::Display for SchemaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaState::Fresh => f.write_str("fresh"),
            SchemaState::Current => f.write_str("current"),
            SchemaState::Behind => f.write_str("behind"),
            SchemaState::Ahead => f.write_str("ahead"),
            SchemaState::Unadopted => f.write_str("unadopted"),
            SchemaState::Diverged { version } => write!(f, "diverged at version {version}"),
            SchemaState::Incompatible { version } => {
                write!(f, "incompatible (version {version} breaks this code)")
            }
        }
    }
}

/// One row of the tracking table, as [`Status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub(crate) version: u32,
    pub(crate) description: String,
    pub(crate) applied_at: String,
    pub(crate) checksum: Option<String>,
    pub(crate) class: Option<crate::Class>,
}

impl AppliedMigration {
    /// The recorded version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The recorded description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// When it was applied, as recorded (the executor writes UTC ISO 8601,
    /// `2025-01-31T12:00:00.000Z`; adopted rows keep what they had).
    pub fn applied_at(&self) -> &str {
        &self.applied_at
    }

    /// The recorded checksum of the file (`None` in a table not yet adopted).
    pub fn checksum(&self) -> Option<&str> {
        self.checksum.as_deref()
    }

    /// The class the row records (`None` for a row written before classes
    /// were recorded, or by another tool).
    pub fn class(&self) -> Option<crate::Class> {
        self.class
    }
}

/// The failure record of a database, as [`Status::failure`] reports it: the
/// last failed attempt of [`Schema::wake`](crate::Schema::wake) (table
/// `<table>_failure`), kept until a run succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    pub(crate) version: u32,
    pub(crate) file: Option<&'static str>,
    pub(crate) error: String,
    pub(crate) attempts: u32,
    pub(crate) failed_at: String,
    pub(crate) by_this_code: bool,
    pub(crate) retry_in_secs: u32,
    pub(crate) next_attempt_after: Option<String>,
    /// A started record (a run announced, not a failure).
    pub(crate) started: bool,
}

impl FailureRecord {
    /// The version that failed.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The file of that version in the code (`None` when the code has no
    /// such version).
    pub fn file(&self) -> Option<&'static str> {
        self.file
    }

    /// The error, as recorded: the [`MigrateError`]'s one-line text.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// How many attempts of the code that recorded it failed so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the last attempt failed (UTC ISO 8601,
    /// `2025-01-31T12:00:00.000Z`).
    pub fn failed_at(&self) -> &str {
        &self.failed_at
    }

    /// Whether the code this status was computed with recorded it (the same
    /// migrations). Other code (a new deploy) tries at once.
    pub fn by_this_code(&self) -> bool {
        self.by_this_code
    }

    /// Seconds, as of this status, until a wake-up of this code runs the
    /// failed migration again ([`Schema::retry_after`](crate::Schema::retry_after)
    /// after [`failed_at`](FailureRecord::failed_at)); 0 when the next
    /// wake-up does.
    pub fn retry_in_secs(&self) -> u32 {
        self.retry_in_secs
    }

    /// When wake-ups of this code run the failed migration again
    /// ([`failed_at`](FailureRecord::failed_at) plus
    /// [`Schema::retry_after`](crate::Schema::retry_after), UTC ISO 8601);
    /// `None` when other code recorded it, which this code does not wait for.
    pub fn next_attempt_after(&self) -> Option<&str> {
        self.next_attempt_after.as_deref()
    }
}

impl fmt::Display for FailureRecord {
    /// `3 attempts, last 2026-12-06T10:00:00.000Z: <error>; next attempt
    /// after 2026-12-06T10:01:00.000Z or with new code`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "{} attempt{plural}, last {}: ",
            self.attempts, self.failed_at
        )?;
        write_one_line(f, &self.error)?;
        match &self.next_attempt_after {
            Some(at) => write!(f, "; next attempt after {at} or with new code"),
            None => {
                f.write_str("; recorded by other code: the next wake-up of this code tries at once")
            }
        }
    }
}

/// The applied/pending view of a database, computed without changing it.
///
/// Unlike a migration run, this reads the whole tracking table: it is for
/// tools and debug routes, not for every wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub(crate) code_version: u32,
    pub(crate) db_version: u32,
    pub(crate) state: SchemaState,
    pub(crate) applied: Vec<AppliedMigration>,
    pub(crate) pending: Vec<&'static Migration>,
    pub(crate) failure: Option<FailureRecord>,
    pub(crate) rows_read: u64,
    pub(crate) incompatible: Option<MigrateError>,
    pub(crate) in_progress: Option<MigrateError>,
}

impl Status {
    /// When the first pending migration has batched statements and a run
    /// stopped (or was killed) half-way through it: the error of kind
    /// `in_progress` naming the batch, its repetitions and rows so far.
    pub fn in_progress(&self) -> Option<&MigrateError> {
        self.in_progress.as_ref()
    }

    /// When a newer migration recorded in the database breaks this code
    /// ([`SchemaState::Incompatible`]): the error of kind `incompatible`
    /// that [`Schema::migrate`](crate::Schema::migrate) and schema routes
    /// get, naming that migration and its findings.
    pub fn incompatible(&self) -> Option<&MigrateError> {
        self.incompatible.as_ref()
    }

    /// The highest version the code knows.
    pub fn code_version(&self) -> u32 {
        self.code_version
    }

    /// The highest version recorded in the database (0 when fresh).
    pub fn db_version(&self) -> u32 {
        self.db_version
    }

    /// Where the database stands.
    pub fn state(&self) -> SchemaState {
        self.state
    }

    /// The tracking table's rows, by version.
    pub fn applied(&self) -> &[AppliedMigration] {
        &self.applied
    }

    /// The migrations a run would apply, in order (empty when the history
    /// diverged or the database is ahead).
    pub fn pending(&self) -> &[&'static Migration] {
        &self.pending
    }

    /// The failure record, when a [`Schema::wake`](crate::Schema::wake)
    /// failed and no run has succeeded since: which version, the error, how
    /// many attempts, when, and when the next one is allowed.
    pub fn failure(&self) -> Option<&FailureRecord> {
        self.failure.as_ref()
    }

    /// Rows read to compute this status, as the backend reported them.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }
}

impl fmt::Display for Status {
    /// A small multi-line table, handy for a `/schema` debug route.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schema {}: database at version {}, code at version {}",
            self.state, self.db_version, self.code_version
        )?;
        for row in &self.applied {
            let checksum = row.checksum.as_deref().unwrap_or("-");
            let short = checksum.get(..12).unwrap_or(checksum);
            writeln!(
                f,
                "  applied  {:04}  {}  {}  {}",
                row.version, row.applied_at, short, row.description
            )?;
        }
        for m in &self.pending {
            writeln!(f, "  pending  {:04}  {}", m.version(), m.name())?;
        }
        if let Some(MigrateError::InProgress {
            version,
            file,
            statement,
            line,
            column,
            repetitions,
            rows,
        }) = &self.in_progress
        {
            writeln!(
                f,
                "  running  {version:04}  {file}  statement {statement} ({file}:{line}:{column}): \
                 {repetitions} repetition(s), {rows} row(s) so far"
            )?;
        }
        if let Some(MigrateError::Incompatible {
            version,
            migration,
            findings,
            ..
        }) = &self.incompatible
        {
            writeln!(f, "  breaks   {version:04}  {migration}  {findings}")?;
        }
        if let Some(failure) = &self.failure {
            let file = failure.file.unwrap_or("-");
            writeln!(f, "  failed   {:04}  {file}  {failure}", failure.version)?;
        }
        Ok(())
    }
}
