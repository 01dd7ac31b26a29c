//! The executor's decisions: what the tracking table says, and what to apply.
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

use std::borrow::Cow;

use crate::backend::{Backend, BackendError, Rows, Step, Value};
use crate::error::MigrateError;
use crate::report::{Mismatch, Report, Wake};
use crate::tracking::{self, Shape};
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
    /// see [`MigrateError`] for what stops it.
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(feature = "rusqlite")] {
    /// use durable_schema_runtime::{Migration, Schema};
    /// # const SQL: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY)";
    /// # const SCHEMA: Schema = Schema::__new("migrations", false, &[Migration::__new(
    /// #     1, "0001_users.sql", "users", SQL, "c", "h", "0,43,1,1")]);
    /// // `SCHEMA` is what `#[durable_schema]` generates on a struct.
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// let report = SCHEMA.migrate(&conn)?;
    /// assert_eq!(report.to_version(), 1);
    /// assert!(SCHEMA.migrate(&conn)?.is_noop());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migrate<B: Backend + ?Sized>(&self, backend: &B) -> Result<Report, MigrateError> {
        Executor::new(self, backend).run()
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
    /// # use durable_schema_runtime::{MigrateError, Migration, Schema};
    /// # const SQL: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY)";
    /// # const SCHEMA: Schema = Schema::__new("migrations", false, &[Migration::__new(
    /// #     1, "0001_users.sql", "users", SQL, "c", "h", "0,43,1,1")]);
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE users (x)")?; // 0001 will fail on this database
    /// let first = SCHEMA.wake(&conn);
    /// assert!(matches!(first.error(), Some(MigrateError::Statement { .. })));
    /// println!("{}", first.log_line("object-1", 0.0).unwrap());
    /// // The same code, right after: deferred, nothing executed.
    /// let second = SCHEMA.wake(&conn);
    /// assert!(matches!(second.error(), Some(MigrateError::Deferred { attempts: 1, .. })));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wake<B: Backend + ?Sized>(&self, backend: &B) -> Wake {
        let exec = Executor {
            retry: Some(self.retry_after()),
            ..Executor::new(self, backend)
        };
        let result = exec.run();
        let report = match &result {
            Ok(report) => report.clone(),
            Err(e) => {
                let mut report = exec.progress.take();
                // An adoption commits with the first pending migration:
                // nothing applied, nothing adopted.
                report.adopted &= !report.applied.is_empty();
                report.failed = Some(e.clone());
                report
            }
        };
        Wake {
            report,
            error: result.err(),
        }
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

/// What has to happen before the first pending migration's statements.
enum Preamble {
    /// The tracking table exists in the executor's shape.
    None,
    /// Fresh database: create the tracking table.
    Create,
    /// Hand-rolled table recording `1..=n`: add the columns, fill them.
    Adopt(u32),
    /// drizzle's ledger recording versions `1..=n` (their `created_at`):
    /// create the tracking table and record them, leaving drizzle's alone.
    Ledger(Vec<(u32, i64)>),
}

/// drizzle's history matched to the code: `(version, created_at)` for
/// versions `1..=n`, and the rows read to find out.
pub(crate) struct Ledger {
    applied: Vec<(u32, i64)>,
    pub(crate) rows_read: u64,
}

impl Ledger {
    /// The highest version drizzle applied.
    pub(crate) fn version(&self) -> u32 {
        self.applied.last().map_or(0, |(v, _)| *v)
    }
}

/// What a step of a migration's transaction is, so a failure at step `i`
/// maps back to its cause without index arithmetic.
#[derive(Clone, Copy)]
enum Role {
    /// Creating the tracking table.
    Create,
    /// Adopting a hand-rolled tracking table or drizzle's history.
    Adopt,
    /// The migration's tracking row.
    Record,
    /// The migration's statement with this 0-based index.
    Statement(usize),
    /// The baseline's statement with this 0-based index.
    Baseline(usize),
    /// A foreign-key check after the migration's statements (or switching
    /// deferral off after them).
    ForeignKeyCheck,
}

/// The steps of one transaction with the role of each.
#[derive(Default, Clone)]
struct Batch {
    steps: Vec<Step>,
    roles: Vec<Role>,
}

impl Batch {
    fn push(&mut self, role: Role, step: Step) {
        self.steps.push(step);
        self.roles.push(role);
    }
}

/// One migration run (or status) against one backend.
pub(crate) struct Executor<'a, B: ?Sized> {
    schema: &'a Schema,
    backend: &'a B,
    /// `Some(seconds)` under [`Schema::wake`]: record failures and defer
    /// retries of the same code.
    retry: Option<u32>,
    /// What the run has done so far, for [`Wake`] when it fails halfway.
    progress: std::cell::Cell<Report>,
}

impl<'a, B: Backend + ?Sized> Executor<'a, B> {
    pub(crate) fn new(schema: &'a Schema, backend: &'a B) -> Self {
        Self {
            schema,
            backend,
            retry: None,
            progress: std::cell::Cell::new(Report::unchanged(0, 0)),
        }
    }

    /// The whole run: the up-to-date check, then whatever it calls for.
    fn run(&self) -> Result<Report, MigrateError> {
        // Embedded by the macro, so the common case builds nothing.
        let head = match self.schema.__head_query() {
            Some(query) => Cow::Borrowed(query),
            None => Cow::Owned(tracking::head_query(self.table())),
        };
        match self.backend.query(&head, &[]) {
            Ok(rows) => self.check_head(rows),
            // No such table, or no `chain` column: a fresh database, a
            // hand-rolled table, or another tool's table. Find out which.
            Err(head_error) => self.inspect_and_migrate(head_error),
        }
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

    pub(crate) fn foreign(&self, columns: Vec<String>) -> MigrateError {
        MigrateError::ForeignTable {
            table: self.table(),
            columns,
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

    /// A tracking table that records nothing, ours or a hand-rolled one:
    /// over an empty database everything is pending (returns the rows read
    /// to find out); over user tables, with rows or not, running every
    /// migration again would re-apply them to data they already shaped
    /// (seed rows twice), so it is refused with
    /// [`MigrateError::EmptyHistory`] before anything is written. One
    /// decision for both shapes, so they cannot drift apart.
    fn refuse_empty_history(&self) -> Result<u64, MigrateError> {
        let table = self.table();
        let params = [
            Value::from(table),
            Value::from(tracking::failure_table(table)),
        ];
        let user = self.query(tracking::USER_TABLES_QUERY, &params)?;
        match user.rows().first().and_then(|r| text_of(r.first())) {
            Some(found) => Err(MigrateError::EmptyHistory {
                table,
                user_table: found.to_owned(),
            }),
            None => Ok(user.rows_read()),
        }
    }

    fn gap(&self, missing: u32) -> MigrateError {
        MigrateError::Gap {
            table: self.table(),
            missing,
        }
    }

    /// The fast path: the head query succeeded.
    fn check_head(&self, rows: Rows) -> Result<Report, MigrateError> {
        let rows_read = rows.rows_read();
        let Some(row) = rows.rows().first() else {
            // Our table exists but is empty (someone deleted the rows, or
            // created it by hand).
            let read = self.refuse_empty_history()?;
            return self.apply(0, Preamble::None, rows_read + read, None);
        };
        let version = self.version_of(row.first())?;
        // Known from here on, for the report of a run that fails early
        // (edited history, strict and ahead).
        self.progress.set(Report::unchanged(version, rows_read));
        let chain = text_of(row.get(1));
        let code = self.schema.version();

        // The common case ends here, with one statement and one row read,
        // and without decoding the embedded migrations.
        if version == code && chain == Some(self.schema.head_chain()) {
            return self.apply(version, Preamble::None, rows_read, None);
        }
        if version <= code {
            let known = self.schema.migration(version);
            if let (Some(m), Some(chain)) = (known, chain) {
                if chain == m.chain() {
                    return self.apply(version, Preamble::None, rows_read, None);
                }
                if m.accepts_chain(chain) {
                    // A history through a deliberately replaced text.
                    return self.apply(version, Preamble::None, rows_read, Some(chain));
                }
            }
            return Err(self.divergence(version));
        }

        // Database ahead of the code (a rolled-back deploy). `strict` refuses
        // outright; otherwise the part of history the code knows must match.
        if self.schema.strict() {
            return Err(MigrateError::Ahead { db: version, code });
        }
        let mut rows_read = rows_read;
        if code > 0 {
            let prefix = self.query(&tracking::chain_at(self.table()), &[Value::from(code)])?;
            rows_read += prefix.rows_read();
            let Some(prefix_row) = prefix.rows().first() else {
                return Err(self.gap(code));
            };
            let known = self.schema.migration(code);
            let recorded = text_of(prefix_row.first());
            if !matches!((known, recorded), (Some(m), Some(c)) if m.accepts_chain(c)) {
                return Err(self.divergence(code));
            }
        }
        Ok(Report::tolerated_ahead(version, rows_read))
    }

    /// The recorded chain at `upto` differs from the code's: walk the
    /// history (slow path only) to name the first version that differs.
    fn divergence(&self, upto: u32) -> MigrateError {
        let rows = match self.query(&tracking::history_upto(self.table()), &[Value::from(upto)]) {
            Ok(rows) => rows,
            Err(e) => return e,
        };
        let mut expected_version = 1u32;
        for row in rows.rows() {
            let version = match self.version_of(row.first()) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if version != expected_version {
                return self.gap(expected_version);
            }
            let Some(m) = self.schema.migration(version) else {
                break;
            };
            // The checksum names the edited file directly; a matching
            // checksum with a different chain means the row itself was
            // tampered with: either way this version is where it differs.
            let checksum_ok = text_of(row.get(1)).is_some_and(|c| m.accepts_checksum(c));
            let chain_ok = text_of(row.get(2)).is_some_and(|c| m.accepts_chain(c));
            if !checksum_ok || !chain_ok {
                return self.edited(m);
            }
            expected_version += 1;
        }
        if expected_version <= upto {
            return self.gap(expected_version);
        }
        // Every row matched on the walk although the head did not: only
        // possible if the table changed between the two reads. Blame the head.
        match self.schema.migration(upto) {
            Some(m) => self.edited(m),
            None => MigrateError::UnknownVersion {
                table: self.table(),
                version: upto,
                code: self.schema.version(),
            },
        }
    }

    fn edited(&self, m: &'static Migration) -> MigrateError {
        MigrateError::Edited {
            version: m.version(),
            file: m.name(),
            table: self.table(),
        }
    }

    /// The slow path: the head query failed. Decide from the table's shape.
    fn inspect_and_migrate(&self, head_error: BackendError) -> Result<Report, MigrateError> {
        let (shape, rows_read) = self.inspect()?;
        match shape {
            Shape::Missing => match self.drizzle_ledger()? {
                Some(ledger) => {
                    let recorded = ledger.version();
                    let read = rows_read + ledger.rows_read;
                    self.apply(recorded, Preamble::Ledger(ledger.applied), read, None)
                }
                None => self.apply(0, Preamble::Create, rows_read, None),
            },
            Shape::Legacy => self.adopt(rows_read),
            Shape::Foreign(columns) => Err(self.foreign(columns)),
            // Our shape, yet the head query failed: a real database error
            // (locked, I/O), not something to repair.
            Shape::Own => Err(self.read_error(&head_error)),
        }
    }

    /// Looks at what exists under the tracking table's name, and how many
    /// rows that read.
    pub(crate) fn inspect(&self) -> Result<(Shape, u64), MigrateError> {
        let table = [Value::from(self.table())];
        let kind = self.query(tracking::KIND_QUERY, &table)?;
        let mut rows_read = kind.rows_read();
        let Some(kind) = kind.rows().first() else {
            return Ok((Shape::Missing, rows_read));
        };
        let info = self.query(tracking::COLUMNS_QUERY, &table)?;
        rows_read += info.rows_read();
        let columns = info
            .rows()
            .iter()
            .map(|row| {
                let name = text_of(row.first()).unwrap_or_default().to_owned();
                (name, row.get(1).and_then(Value::as_i64) == Some(1))
            })
            .collect();
        Ok((Shape::classify(text_of(kind.first()), columns), rows_read))
    }

    /// Adopts a hand-rolled table (see [`Executor::adoptable`]).
    fn adopt(&self, rows_read: u64) -> Result<Report, MigrateError> {
        let (recorded, read) = self.adoptable()?;
        self.apply(recorded, Preamble::Adopt(recorded), rows_read + read, None)
    }

    /// Whether a hand-rolled `(version, applied_at, description)` table can
    /// be adopted, and up to which version. It has no checksums, so what it
    /// records is trusted only this far: versions `1..=n` without gaps, all
    /// known to the code, each with the description of the code's migration
    /// of that version (compared normalized: case, punctuation, a `NNNN_`
    /// prefix and a `.sql` suffix do not count). Anything else is refused
    /// with the full list of mismatches, and nothing is written. An empty
    /// table is adopted only over a database without user tables (see
    /// [`Executor::refuse_empty_history`]).
    pub(crate) fn adoptable(&self) -> Result<(u32, u64), MigrateError> {
        let rows = self.query(&tracking::adoption_rows(self.table()), &[])?;
        let mut recorded = 0u32;
        let mut mismatches = Vec::new();
        for row in rows.rows() {
            let version = self.version_of(row.first())?;
            if version != recorded + 1 {
                return Err(self.gap(recorded + 1));
            }
            recorded = version;
            let description = text_of(row.get(1)).unwrap_or_default();
            if let Some(m) = self.schema.migration(version) {
                if normalize_description(description) != normalize_description(m.description()) {
                    mismatches.push(Mismatch {
                        version,
                        recorded: description.to_owned(),
                        expected: m.name(),
                    });
                }
            }
        }
        if recorded > self.schema.version() {
            return Err(MigrateError::UnknownVersion {
                table: self.table(),
                version: recorded,
                code: self.schema.version(),
            });
        }
        self.progress
            .set(Report::unchanged(recorded, rows.rows_read()));
        if !mismatches.is_empty() {
            return Err(MigrateError::AdoptionMismatch {
                table: self.table(),
                mismatches,
            });
        }
        if recorded == 0 {
            return Ok((0, rows.rows_read() + self.refuse_empty_history()?));
        }
        Ok((recorded, rows.rows_read()))
    }

    /// For a schema from a drizzle-kit directory, on a database without our
    /// tracking table: drizzle's history, matched to the code's migrations by
    /// `created_at` = journal `when`, as `(version, created_at)` for
    /// versions `1..=n`; `None` without a drizzle table (or a plain schema,
    /// which reads nothing). An entry that matches no migration, or a version
    /// missing below the highest one recorded (drizzle skips a file whose
    /// `when` is older than the newest it applied), is refused with the
    /// list, and nothing is written. drizzle's table is never changed.
    pub(crate) fn drizzle_ledger(&self) -> Result<Option<Ledger>, MigrateError> {
        let migrations = self.schema.migrations();
        if migrations.iter().all(|m| m.journal_when().is_none()) {
            return Ok(None);
        }
        // No such table: not a drizzle object.
        let Ok(rows) = self.backend.query(tracking::DRIZZLE_LEDGER_QUERY, &[]) else {
            return Ok(None);
        };
        let mut applied = Vec::new();
        let mut unmatched = Vec::new();
        for row in rows.rows() {
            let Some(when) = row.first().and_then(Value::as_i64) else {
                continue;
            };
            let version = migrations
                .iter()
                .find(|m| m.journal_when().and_then(|w| i64::try_from(w).ok()) == Some(when))
                .map(Migration::version);
            match version {
                Some(v) => applied.push((v, when)),
                None => unmatched.push(when),
            }
        }
        applied.sort_unstable();
        applied.dedup_by_key(|(v, _)| *v);
        let highest = applied.last().map_or(0, |(v, _)| *v);
        let missing: Vec<u32> = (1..=highest)
            .filter(|v| !applied.iter().any(|(a, _)| a == v))
            .collect();
        if !unmatched.is_empty() || !missing.is_empty() {
            // The highest version drizzle recorded, for the run's report.
            self.progress
                .set(Report::unchanged(highest, rows.rows_read()));
            return Err(MigrateError::LedgerMismatch {
                table: tracking::DRIZZLE_TABLE,
                unmatched,
                missing,
            });
        }
        Ok(Some(Ledger {
            applied,
            rows_read: rows.rows_read(),
        }))
    }

    /// The tracking-table steps that precede the first pending migration.
    fn preamble(&self, preamble: &Preamble, batch: &mut Batch) {
        let table = self.table();
        match preamble {
            Preamble::None => {}
            Preamble::Create => batch.push(Role::Create, Step::new(tracking::create_table(table))),
            Preamble::Ledger(applied) => {
                batch.push(Role::Adopt, Step::new(tracking::create_table(table)));
                let insert = tracking::insert_adopted(table);
                for &(version, when) in applied {
                    let Some(m) = self.schema.migration(version) else {
                        continue;
                    };
                    let params = vec![
                        Value::from(version),
                        Value::Integer(when),
                        Value::from(m.description()),
                        Value::from(m.checksum()),
                        Value::from(m.chain()),
                    ];
                    batch.push(Role::Adopt, Step::with_params(insert.clone(), params));
                }
            }
            Preamble::Adopt(recorded) => {
                for sql in tracking::adopt(table) {
                    batch.push(Role::Adopt, Step::new(sql));
                }
                let fill = tracking::fill_row(table);
                for m in self
                    .schema
                    .migrations()
                    .iter()
                    .take_while(|m| m.version() <= *recorded)
                {
                    let params = vec![
                        Value::from(m.checksum()),
                        Value::from(m.chain()),
                        Value::from(m.version()),
                    ];
                    batch.push(Role::Adopt, Step::with_params(fill.clone(), params));
                }
            }
        }
    }

    /// Applies every migration after `from`, each in its own transaction
    /// with its tracking row; the preamble joins the first transaction so a
    /// fresh database never ends up with an empty tracking table.
    /// `prev` is the head row's chain when it is not the code's own history
    /// (it went through a replaced text): what the next tracking row chains
    /// onto.
    fn apply(
        &self,
        from: u32,
        preamble: Preamble,
        rows_read: u64,
        prev: Option<&str>,
    ) -> Result<Report, MigrateError> {
        let mut report = Report::unchanged(from, rows_read);
        report.adopted = matches!(preamble, Preamble::Adopt(_) | Preamble::Ledger(_));
        let pending = self.schema.pending_after(from);
        let mut batch = Batch::default();
        self.preamble(&preamble, &mut batch);
        if pending.is_empty() {
            // A fresh database with nothing to apply stays untouched; an
            // adoption with nothing to apply runs its preamble alone.
            if report.adopted {
                report.rows_written += self.commit(batch, None)?;
            }
            return Ok(report);
        }
        self.progress.set(report.clone());
        let failure = self.deferral()?;
        let insert = tracking::insert(self.table());
        if from == 0 && matches!(preamble, Preamble::Create | Preamble::None) {
            if let Some(baseline) = self.schema.baseline() {
                if self.baseline(baseline, &batch, &insert, &mut report)? {
                    if failure {
                        self.clear_failure();
                    }
                    return Ok(report);
                }
            }
        }
        let mut prev = prev.map(str::to_owned);
        for m in pending {
            // After a replaced text the history has its own chain values,
            // precomputed by the compiler: record the one that follows.
            let chain = match prev.as_deref() {
                None => m.chain(),
                Some(p) => m
                    .chain_after(p)
                    .ok_or_else(|| MigrateError::InvalidRecord {
                        table: self.table(),
                        detail: format!(
                            "a chain value before version {} the code does not know",
                            m.version()
                        ),
                    })?,
            };
            prev = (chain != m.chain()).then(|| chain.to_owned());
            // The tracking row goes first: if another migrator applied this
            // version meanwhile, its primary key fails the transaction before
            // any of the migration's statements runs, and the error says so
            // instead of blaming the file ("table already exists").
            batch.push(Role::Record, record(&insert, m, chain));
            for (i, s) in m.statements().iter().enumerate() {
                batch.push(Role::Statement(i), Step::new(s.sql()));
            }
            // Deferred foreign keys are checked only at the outermost commit,
            // which on a Durable Object is workerd's, after the run: check
            // the tables the compiler found at risk here, then switch
            // deferral off so it does not leak into the next migration.
            if !m.foreign_key_checks().is_empty() {
                for table in m.foreign_key_checks() {
                    batch.push(
                        Role::ForeignKeyCheck,
                        Step::check(tracking::foreign_key_check(table)),
                    );
                }
                batch.push(Role::ForeignKeyCheck, Step::new(tracking::DEFER_OFF));
            }
            self.progress.set(report.clone());
            match self.commit(std::mem::take(&mut batch), Some(m)) {
                Ok(written) => report.rows_written += written,
                Err(e) => {
                    self.record_failure(&e, m.version());
                    return Err(e);
                }
            }
            report.applied.push(m);
            report.to_version = m.version();
        }
        if failure {
            self.clear_failure();
        }
        Ok(report)
    }

    /// Clears the failure record once the schema is current. Best effort: a
    /// stale record only delays nothing (the code that wrote it is current
    /// now) and is overwritten by the next failure.
    fn clear_failure(&self) {
        let _ = self
            .backend
            .transaction(vec![Step::new(tracking::clear_failure(self.table()))]);
    }

    /// Creates a new object from `baseline` in one transaction: `preamble`
    /// (creating the tracking table, unless it exists empty), the
    /// baseline's statements, then the tracking row of every version, as a
    /// full run records them. Only on a database that holds nothing of the
    /// user's; `false` when it does, or when the transaction failed (it
    /// leaves nothing; the report keeps the error): the chain runs instead.
    fn baseline(
        &self,
        baseline: &'static crate::Baseline,
        preamble: &Batch,
        insert: &str,
        report: &mut Report,
    ) -> Result<bool, MigrateError> {
        let table = self.table();
        let params = [
            Value::from(table),
            Value::from(tracking::failure_table(table)),
        ];
        let objects = self.query(tracking::ANY_OBJECT_QUERY, &params)?;
        report.rows_read += objects.rows_read();
        if !objects.rows().is_empty() {
            return Ok(false);
        }
        let mut batch = preamble.clone();
        for (i, s) in baseline.statements().iter().enumerate() {
            batch.push(Role::Baseline(i), Step::new(s.sql()));
        }
        let migrations = self.schema.migrations();
        for m in migrations {
            batch.push(Role::Record, record(insert, m, m.chain()));
        }
        let Batch { steps, roles } = batch;
        match self.backend.transaction(steps) {
            Ok(written) => {
                report.rows_written += written;
                report.applied.extend(migrations);
                report.to_version = self.schema.version();
                report.baseline = true;
                Ok(true)
            }
            Err(e) => {
                let at = match e.step().and_then(|i| roles.get(i)) {
                    Some(Role::Baseline(i)) => format!("statement {} of the baseline", i + 1),
                    Some(Role::Record) => {
                        format!("recording the baseline's versions in \"{table}\"")
                    }
                    Some(Role::Create) => format!("creating table \"{table}\""),
                    _ => "the baseline's transaction".to_owned(),
                };
                report.baseline_error = Some(format!("{at}: {}", e.error().message()));
                self.progress.set(report.clone());
                Ok(false)
            }
        }
    }

    /// Under [`Schema::wake`]: whether a failure record exists, or the error
    /// that defers this attempt (the same code failed less than
    /// `retry_after` seconds ago).
    fn deferral(&self) -> Result<bool, MigrateError> {
        let Some(retry_after) = self.retry else {
            return Ok(false);
        };
        // No table (never failed) or an unreadable one: nothing to defer to.
        let Ok(rows) = self
            .backend
            .query(&tracking::read_failure(self.table()), &[])
        else {
            return Ok(false);
        };
        let Some(row) = rows.rows().first() else {
            return Ok(false);
        };
        let head = Some(self.schema.head_chain());
        let elapsed = row.get(4).and_then(Value::as_i64).unwrap_or(i64::MAX);
        let wait = i64::from(retry_after).saturating_sub(elapsed.max(0));
        if text_of(row.first()) == head && wait > 0 {
            return Err(MigrateError::Deferred {
                version: row
                    .get(1)
                    .and_then(Value::as_i64)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(0),
                error: text_of(row.get(2)).unwrap_or_default().to_owned(),
                attempts: row
                    .get(3)
                    .and_then(Value::as_i64)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(1),
                retry_in_secs: u32::try_from(wait).unwrap_or(u32::MAX),
            });
        }
        Ok(true)
    }

    /// Under [`Schema::wake`]: remembers a failed migration, so wake-ups of
    /// the same code do not run it again before `retry_after` seconds.
    fn record_failure(&self, error: &MigrateError, version: u32) {
        if self.retry.is_none() {
            return;
        }
        let table = self.table();
        let head = self.schema.head_chain();
        let params = vec![
            Value::from(head),
            Value::from(version),
            Value::from(error.to_string()),
        ];
        // Best effort: if the database refuses this too (it is full, say),
        // the next wake-up simply tries again.
        let _ = self.backend.transaction(vec![
            Step::new(tracking::create_failure_table(table)),
            Step::with_params(tracking::record_failure(table), params),
        ]);
    }

    /// Runs one transaction and returns the rows it wrote; on failure names
    /// what failed.
    fn commit(&self, batch: Batch, m: Option<&'static Migration>) -> Result<u64, MigrateError> {
        let Batch { steps, roles } = batch;
        let e = match self.backend.transaction(steps) {
            Ok(written) => return Ok(written),
            Err(e) => e,
        };
        let message = e.error().message().to_owned();
        let table = self.table();
        let context = match (e.step().and_then(|i| roles.get(i)), m) {
            (Some(Role::Statement(index)), Some(m)) => {
                let s = m.statements().get(*index);
                return Err(MigrateError::Statement {
                    version: m.version(),
                    file: m.name(),
                    statement: index + 1,
                    line: s.map_or(0, |s| s.line()),
                    column: s.map_or(0, |s| s.column()),
                    message,
                });
            }
            // A row of `PRAGMA foreign_key_check`: table, rowid, parent, fkid.
            (Some(Role::ForeignKeyCheck), Some(m)) if e.row().is_some() => {
                let row = e.row().unwrap_or_default();
                return Err(MigrateError::ForeignKey {
                    version: m.version(),
                    file: m.name(),
                    table: text_of(row.first()).unwrap_or_default().to_owned(),
                    rowid: row.get(1).and_then(Value::as_i64),
                    parent: text_of(row.get(2)).unwrap_or_default().to_owned(),
                });
            }
            (Some(Role::ForeignKeyCheck), Some(m)) => {
                format!("checking foreign keys after {}", m.name())
            }
            (Some(Role::Create), _) => format!("creating table \"{table}\""),
            (Some(Role::Adopt), _) => format!("adopting table \"{table}\""),
            // The row's primary key exists: another migrator (another
            // process on the same file) committed this version meanwhile.
            (Some(Role::Record), Some(m)) if message.contains("UNIQUE constraint failed") => {
                return Err(MigrateError::Concurrent {
                    version: m.version(),
                    file: m.name(),
                    table,
                });
            }
            (Some(Role::Record), Some(m)) => format!(
                "recording version {} ({}) in table \"{table}\"",
                m.version(),
                m.name()
            ),
            // Outside the steps: BEGIN or COMMIT (the message says which).
            (_, Some(m)) => format!("running migration {}", m.name()),
            (_, None) => format!("adopting table \"{table}\""),
        };
        Err(MigrateError::Backend { context, message })
    }
}

/// The tracking row of `m` with chain value `chain`, by `insert`
/// ([`tracking::insert`]): the same row whether the chain or the baseline
/// applied it.
fn record(insert: &str, m: &Migration, chain: &str) -> Step {
    let params = vec![
        Value::from(m.version()),
        Value::from(m.description()),
        Value::from(m.checksum()),
        Value::from(chain),
    ];
    Step::with_params(insert.to_owned(), params)
}

/// A description compared for adoption: lowercase words, without a
/// `NNNN_` version prefix or a `.sql` suffix (hand-rolled tables often
/// record the file name).
fn normalize_description(text: &str) -> String {
    let text = text.trim();
    let text = text.strip_suffix(".sql").unwrap_or(text);
    let text = text.trim_start_matches(|c: char| c.is_ascii_digit());
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("_")
}

pub(crate) fn text_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::TxError;

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
