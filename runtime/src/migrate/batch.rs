//! Batched statements at run time: a migration with a statement marked
//! `-- durable-schema: batch` runs as *phases*, not as one transaction.
//!
//! A batch is a DML statement that handles a bounded slice of rows per run
//! (`UPDATE t SET w = v * 2 WHERE id IN (SELECT id FROM t WHERE w IS NULL
//! LIMIT 1000)`); the executor repeats it, each repetition in its own
//! transaction, until a repetition changes no row. So one migration
//! commits in phases:
//!
//! 1. the statements before a batch, in one transaction;
//! 2. each repetition of the batch, in one transaction each (then the
//!    statements up to the next batch, and its repetitions, likewise);
//! 3. the statements after the last batch, with the migration's tracking
//!    row, its foreign-key checks and the started record's move, in the
//!    last transaction: the migration is applied when that one commits.
//!
//! **Range batches.** A statement marked
//! `-- durable-schema: batch over <table> limit <n>`
//! ([`Statement::batch_over`]) is repeated on slices of
//! the table's rowids instead: before each repetition one query outside the
//! transaction reads the next slice ([`tracking::slice`]: the next `n`
//! rows past the cursor, their first and last rowid, and whether all `n`
//! were there), and the
//! repetition's transaction runs the statement bound to the first and last
//! (`:from`, `:to`), then stores the last as the cursor with the counts
//! ([`tracking::sliced`]). A slice of fewer than `n` rows is the last: the
//! same transaction moves past the batch. So the batch ends by the cursor,
//! not by a repetition that changed nothing, and each repetition reads its
//! own rows only, where a plain batch's `IN (SELECT … LIMIT n)` walks past
//! the rows done before on every repetition. An empty slice runs nothing
//! and commits the move alone.
//!
//! **Progress.** Each phase records in its own transaction where the
//! migration stands: the failure record's row (`<table>_failure`, owned by
//! [`tracking`]) gets the migration's chain value, the index of its first
//! statement not committed, and the batch's repetitions and changed rows.
//! A repetition counts its rows with SQLite's `changes()` read by the
//! progress statement right after it, in the same transaction: the
//! statement's own rows (not a storage engine's rows-written figure, which
//! counts index entries, nor rows changed by triggers), the same number on
//! every backend. A run that finds progress for its first pending migration
//! resumes after the last committed phase: a committed phase never runs
//! again. The row is the started record's, because progress *is* the state
//! of a run that has not finished; a table written before these columns
//! existed gets them on the first run that applies a batch, and one written
//! by the release before range batches (no `cursor`) gets that column on
//! the run that resumes its progress, which it reads by position.
//!
//! **Other code.** Progress belongs to a migration text, not to a deploy:
//! it is resumed by any code whose migration at that version has the same
//! chain value (a deploy that only appends migrations, or a rollback and
//! roll forward). Code whose migration at that version has another chain
//! (the file was edited while objects were half-way through it) cannot know
//! what the committed phases did: the run stops with
//! [`MigrateError::Edited`] and executes nothing.
//!
//! **Kills.** A kill during a repetition rolls back that repetition only.
//! The progress row counts the runs that started on the current phase
//! without ending it (`unfinished`): each committed phase sets it to 1, a
//! run that stops cleanly on its budget to 0, and a run that resumes adds
//! one. A repetition is small, so a run killed during one retries it once
//! (what a user expects after an isolate was evicted or a deploy restarted
//! it); a phase killed twice in a row (the count is already 2) is
//! [`MigrateError::Interrupted`], with the usual failure semantics. A kill
//! before the first phase committed is interrupted at once, like any
//! migration's.
//!
//! **Budget.** [`Schema::wake`] stops between two repetitions, or after a
//! batch's last one before what follows it, once [`Schema::budget_ms`] is
//! spent (at least one repetition per run), with
//! [`MigrateError::InProgress`]; the migration and the ones after it stay
//! pending. Natively the clock is `std::time::Instant`. On a Durable Object
//! time does not advance during synchronous code, so the worker glue pauses
//! after every phase (each made durable by `storage.sync()`) and measures
//! the budget across those awaits. [`Schema::migrate`] has no budget.
//!
//! Nothing here runs unless a pending migration has a batch; the progress
//! query is the only addition to the path of a run that applies anything.

use super::transaction::{Batch, Role};
use super::{text_of, Executor};
use crate::backend::{Step, Value};
use crate::error::MigrateError;
use crate::report::Report;
use crate::tracking;
#[cfg(doc)]
use crate::Schema;
use crate::{Migration, Statement};

/// A batched migration's progress, as the failure record's row holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The migration's version.
    pub(super) version: u32,
    /// Whether the row is a started record of this code (not a failure
    /// record, not another code's, not progress alone).
    pub(super) own_start: bool,
    /// 0-based index of the first statement not committed.
    pub(super) statement: usize,
    /// Repetitions of the batch at `statement` so far.
    pub(super) repetitions: u64,
    /// Rows they changed.
    pub(super) rows: u64,
    /// Runs that started on the current phase without ending it.
    pub(super) unfinished: u32,
    /// The last rowid a range batch's committed slices reached (`None`
    /// before its first slice, and for a plain batch).
    pub(super) cursor: Option<i64>,
    /// Whether the row has the `cursor` column: not when the release
    /// before range batches wrote it (half-way through a plain batch), and
    /// this run then adds it before the first phase it commits.
    pub(super) cursor_column: bool,
}

/// How a batched migration's run ended.
pub(crate) enum Phased {
    /// The last phase committed: the migration is applied.
    Done,
    /// A phase committed and the run pauses (stepwise), so the host makes it
    /// durable before the next.
    Paused,
    /// The budget is spent between two repetitions.
    OutOfBudget(MigrateError),
}

/// Where [`Schema::wake`]'s budget for batch repetitions ends.
pub(super) struct Budget {
    #[cfg(not(target_arch = "wasm32"))]
    until: std::time::Instant,
}

impl Budget {
    /// A budget of `ms` milliseconds from now.
    pub(super) fn new(ms: u32) -> Self {
        #[cfg(target_arch = "wasm32")]
        let _ = ms;
        Self {
            #[cfg(not(target_arch = "wasm32"))]
            until: std::time::Instant::now() + std::time::Duration::from_millis(ms.into()),
        }
    }

    /// Whether it is spent. In wasm the clock does not advance during a
    /// synchronous run (workerd moves it at I/O only), so a synchronous
    /// `wake` there runs one repetition; the worker glue measures its own
    /// budget across awaits instead.
    fn spent(&self) -> bool {
        #[cfg(not(target_arch = "wasm32"))]
        return std::time::Instant::now() >= self.until;
        #[cfg(target_arch = "wasm32")]
        true
    }
}

/// [`Executor::apply_phased`] as a plain function, for the pointer a schema
/// with a batch links (`Paths::with_batches`): programs whose schemas have
/// none do not carry the phases.
pub(crate) fn phased(
    exec: &Executor<'_>,
    m: &'static Migration,
    chain: &str,
    progress: Option<Progress>,
    ends: Ends,
    report: &mut Report,
) -> Result<Phased, MigrateError> {
    exec.apply_phased(m, chain, progress, ends, report)
}

/// Whether `m` has a batched statement.
pub(super) fn has_batch(m: &Migration) -> bool {
    m.statements().iter().any(|s| s.is_batch())
}

/// The error a run stopped on its budget returns: the batch at
/// `progress.statement` of `m`.
pub(super) fn in_progress(m: &'static Migration, progress: &Progress) -> MigrateError {
    // The batch the counts belong to: the recorded statement, or the last
    // batch before it once that batch is done (its counts stay).
    let index = (0..=progress.statement)
        .rev()
        .find(|&i| m.statements().get(i).is_some_and(|s| s.is_batch()))
        .unwrap_or(progress.statement);
    let s = m.statements().get(index);
    MigrateError::InProgress {
        version: m.version(),
        file: m.name(),
        statement: index + 1,
        line: s.map_or(0, |s| s.line()),
        column: s.map_or(0, |s| s.column()),
        repetitions: progress.repetitions,
        rows: progress.rows,
    }
}

impl Executor<'_> {
    /// The progress recorded for `m` (the first pending migration), if any;
    /// the error when it is progress of another text of `m`. One query,
    /// which fails (no progress) on a database without the columns.
    pub(super) fn progress_of(
        &self,
        m: &'static Migration,
    ) -> Result<Option<Progress>, MigrateError> {
        let Ok(rows) = self
            .backend
            .query(&tracking::read_progress(self.table()), &[])
        else {
            return Ok(None);
        };
        let Some(row) = rows.rows().first() else {
            return Ok(None);
        };
        // `cursor` by position in the row's `*`, after the eight named
        // columns: a table without it still answers.
        let cursor = row.get(8 + tracking::CURSOR_POSITION);
        self.progress_in(m, std::array::from_fn(|i| row.get(i)), cursor)
    }

    /// The progress in a row of [`tracking::read_failure`] (its `*` part),
    /// for `m`: what [`progress_of`](Self::progress_of) would read, without
    /// another query.
    pub(super) fn progress_in_failure(
        &self,
        m: &'static Migration,
        row: &[Value],
    ) -> Result<Option<Progress>, MigrateError> {
        let at = |i: usize| row.get(i);
        self.progress_in(
            m,
            [at(1), at(3), at(0), at(12), at(13), at(14), at(15), at(16)],
            at(6 + tracking::CURSOR_POSITION),
        )
    }

    /// `version, attempts, chain, progress_chain, statement, repetitions,
    /// changed, unfinished` as progress for `m`, with `cursor` (`None`: the
    /// row has no such column).
    fn progress_in(
        &self,
        m: &'static Migration,
        row: [Option<&Value>; 8],
        cursor: Option<&Value>,
    ) -> Result<Option<Progress>, MigrateError> {
        let int = |i: usize| row[i].and_then(Value::as_i64).unwrap_or(0);
        let Some(progress_chain) = text_of(row[3]) else {
            return Ok(None);
        };
        if int(0) != i64::from(m.version()) {
            // Stale: left by a history this database no longer follows.
            return Ok(None);
        }
        // Only this very text's progress: a text the lock replaced (the
        // usual repair of a migration that failed half-way) is another
        // text, and so is an edit.
        if !m.is_chain_of_this_text(progress_chain) {
            return Err(MigrateError::Edited {
                version: m.version(),
                file: m.name(),
                table: self.table(),
            });
        }
        Ok(Some(Progress {
            version: m.version(),
            own_start: int(1) < 0 && text_of(row[2]) == Some(self.schema.head_chain()),
            statement: usize::try_from(int(4)).unwrap_or(0),
            repetitions: u64::try_from(int(5)).unwrap_or(0),
            rows: u64::try_from(int(6)).unwrap_or(0),
            unfinished: u32::try_from(int(7)).unwrap_or(0),
            cursor: cursor.and_then(Value::as_i64),
            cursor_column: cursor.is_some(),
        }))
    }

    /// For [`Schema::status`]: the progress of a batch in `m` as the error
    /// a stopped run returns, if there is one, and whether the next run
    /// resumes it (no more than one run left its phase unfinished; after
    /// two, the next wake reports `interrupted`).
    pub(crate) fn in_progress_of(&self, m: &'static Migration) -> Option<(MigrateError, bool)> {
        let progress = self.progress_of(m).ok().flatten()?;
        has_batch(m).then(|| (in_progress(m, &progress), progress.unfinished < 2))
    }

    /// The steps that bring an older failure table to the progress columns
    /// (or create it), before the first phase writes progress. Reads the
    /// table's columns: only on the batch path.
    fn progress_table(&self) -> Result<Vec<Step>, MigrateError> {
        let table = self.table();
        let failure = tracking::failure_table(table);
        let rows = self.query(tracking::COLUMNS_QUERY, &[Value::from(failure)])?;
        let has = |column: &str| {
            rows.rows()
                .iter()
                .any(|r| text_of(r.first()).is_some_and(|c| c.eq_ignore_ascii_case(column)))
        };
        if rows.rows().is_empty() {
            return Ok(vec![Step::new(tracking::create_failure_table(table))]);
        }
        Ok(tracking::PROGRESS_COLUMNS
            .iter()
            .filter(|c| !has(c))
            .map(|c| Step::new(tracking::upgrade_failure(table, c)))
            .collect())
    }

    /// Applies the batched migration `m` from `progress` (none: from its
    /// start), phase by phase, adding what each phase wrote to `report`.
    /// `ends` holds what joins its last transaction (the preamble, its
    /// tracking row, the started record's move); `chain` is the chain value
    /// the row records. Stepwise, it pauses after each phase; under a
    /// budget, it stops between two repetitions once the budget is spent.
    fn apply_phased(
        &self,
        m: &'static Migration,
        chain: &str,
        mut progress: Option<Progress>,
        ends: Ends,
        report: &mut Report,
    ) -> Result<Phased, MigrateError> {
        let statements: Vec<Statement> = m.statements().iter().collect();
        let table = self.table();
        let mut upgrade = match &progress {
            None => self.progress_table()?,
            // Progress of the release before range batches: the one column
            // it lacks, in the first transaction this run commits (a later
            // batch's start, or a range batch's slice, writes it).
            Some(p) if !p.cursor_column => {
                vec![Step::new(tracking::upgrade_failure(table, "cursor"))]
            }
            Some(_) => Vec::new(),
        };
        let Ends {
            mut first,
            record,
            carry,
        } = ends;
        loop {
            let at = progress.as_ref().map_or(0, |p| p.statement);
            let mut tx = Batch::default();
            for step in upgrade.drain(..) {
                tx.push(Role::Progress, step);
            }
            // Compare and swap: another migrator on the same database (a
            // second process) that committed a phase meanwhile fails this
            // transaction before anything runs twice.
            tx.push(
                Role::Expected,
                expected(table, m.version(), chain, progress.as_ref()),
            );
            // And when the run expects no progress: the other migrator may
            // have applied the whole migration, clearing it (its tracking
            // row is then there). Only over a tracking table that exists
            // (no preamble creates it).
            if progress.is_none() && first.steps.is_empty() {
                tx.push(
                    Role::Expected,
                    Step::check_with_params(
                        tracking::chain_at(table),
                        vec![Value::from(m.version())],
                    ),
                );
            }
            let Some(b) = (at..statements.len()).find(|&i| statements[i].is_batch()) else {
                // The last phase: the rest with the tracking row and the
                // checks; the migration is applied when it commits.
                let first = std::mem::take(&mut first);
                for (role, step) in first.roles.into_iter().zip(first.steps) {
                    tx.push(role, step);
                }
                super::apply::migration_steps(m, record, at, &mut tx);
                tx.push(Role::Progress, Step::new(tracking::clear_progress(table)));
                match carry {
                    Some(carry) => tx.push(Role::Started, carry),
                    None => tx.push(Role::Progress, Step::new(tracking::drop_progress(table))),
                }
                report.rows_written += self.commit(tx, Some(m))?;
                return Ok(Phased::Done);
            };
            if progress.is_none() || b > at {
                // The statements before the batch, and the batch's start.
                for (i, s) in statements.iter().enumerate().take(b).skip(at) {
                    tx.push(Role::Statement(i), Step::new(s.sql()));
                }
                tx.push(
                    Role::Progress,
                    Step::with_params(
                        tracking::record_progress(table),
                        vec![
                            Value::from(self.schema.head_chain()),
                            Value::from(m.version()),
                            Value::from(super::started::running(m)),
                            Value::from(chain),
                            Value::from(b as i64),
                        ],
                    ),
                );
                if b > at {
                    super::apply::foreign_key_steps(m, &mut tx);
                    report.rows_written += self.commit(tx, Some(m))?;
                    progress = Some(Progress::at(m.version(), b));
                    if self.pace.stepwise {
                        self.pace.paused.set(Some(m.version()));
                        return Ok(Phased::Paused);
                    }
                    continue;
                }
                // The batch comes first: its start joins its first
                // repetition's transaction.
            }
            // Whether the statement after this batch is a batch too: the
            // move there restarts the counts (each batch shows its own).
            let next_is_batch = i64::from(statements.get(b + 1).is_some_and(|s| s.is_batch()));
            match statements[b].batch_over() {
                // One repetition, counted by `changes()` right after it.
                None => {
                    tx.push(Role::Statement(b), Step::new(statements[b].sql()));
                    tx.push(
                        Role::Progress,
                        Step::with_params(
                            tracking::repeated(table),
                            vec![Value::from((b + 1) as i64), Value::from(next_is_batch)],
                        ),
                    );
                }
                // One slice: its bounds read before the transaction (a
                // read needs none), the statement bound with them, and the
                // cursor committed with it, so a kill never loses a
                // committed slice nor runs one twice. A short slice is the
                // last: the batch ends by the cursor, not by a slice whose
                // rows the statement's own filter skipped.
                Some((over, limit)) => {
                    let cursor = progress.as_ref().and_then(|p| p.cursor);
                    let slice = self.slice(m, b, over, limit, cursor)?;
                    report.rows_read += slice.read;
                    if let Some((first, last)) = slice.bounds {
                        tx.push(
                            Role::Statement(b),
                            Step::with_params(
                                statements[b].sql(),
                                vec![Value::from(first), Value::from(last)],
                            ),
                        );
                    }
                    tx.push(
                        Role::Progress,
                        Step::with_params(
                            tracking::sliced(table),
                            vec![
                                Value::from((b + 1) as i64),
                                slice
                                    .bounds
                                    .map_or(Value::Null, |(_, last)| Value::from(last)),
                                Value::from(i64::from(!slice.full)),
                                Value::from(i64::from(slice.bounds.is_some())),
                                Value::from(next_is_batch),
                            ],
                        ),
                    );
                }
            }
            // After the progress step, which reads `changes()` of the
            // repetition: the checks change no row.
            super::apply::foreign_key_steps(m, &mut tx);
            report.rows_written += self.commit(tx, Some(m))?;
            let now = self.progress_of(m)?.ok_or_else(|| MigrateError::Backend {
                context: format!(
                    "reading the progress of {} in table \"{}\"",
                    m.name(),
                    tracking::failure_table(table)
                ),
                message: "the progress row is missing".to_owned(),
            })?;
            report.rows_read += 1;
            let error = in_progress(m, &now);
            progress = Some(now);
            // Also after the batch's last repetition: what follows it (the
            // rest of the migration, a `CREATE INDEX` over the rows the batch
            // wrote) may be long, and deserves a slice of its own once the
            // budget is spent, not the end of this one.
            if self.pace.stepwise {
                self.pace.paused.set(Some(m.version()));
                self.pace.mid_batch.set(true);
                return Ok(Phased::Paused);
            }
            if self.budget.as_ref().is_some_and(Budget::spent) {
                // A clean stop: the next run resumes without counting a
                // kill. Best effort: if it fails, the next run counts one.
                let _ = self.backend.transaction(vec![Step::with_params(
                    tracking::mark_unfinished(table),
                    vec![Value::from(0i64)],
                )]);
                return Ok(Phased::OutOfBudget(error));
            }
        }
    }

    /// The next slice of the range batch at index `b` of `m` over `table`,
    /// after `cursor` (none: from the first row), at most `limit` rows.
    fn slice(
        &self,
        m: &'static Migration,
        b: usize,
        table: &str,
        limit: u32,
        cursor: Option<i64>,
    ) -> Result<Slice, MigrateError> {
        let sql = tracking::slice(table, limit, cursor.is_some());
        let params: Vec<Value> = cursor.map(Value::from).into_iter().collect();
        let rows = self.backend.query(&sql, &params).map_err(|e| {
            let message = format!("reading the next slice of \"{table}\": {}", e.message());
            super::transaction::statement_error(m, b, message)
        })?;
        let row = rows.rows().first();
        let int = |i: usize| row.and_then(|r| r.get(i)).and_then(Value::as_i64);
        // A bound that is there but no integer: a Durable Object passes
        // integers as JavaScript numbers, so a rowid beyond ±(2^53 − 1)
        // arrives inexact (as text). Read as no row, it would end the batch
        // with the rest of the table never visited; it cannot be bound
        // exactly either, so the batch stops here.
        let inexact = |i: usize| {
            row.and_then(|r| r.get(i))
                .is_some_and(|v| !matches!(v, Value::Null | Value::Integer(_)))
        };
        if inexact(0) || inexact(1) {
            let message = format!(
                "the next slice of \"{table}\" reaches a rowid beyond ±2^53, which a Durable \
                 Object cannot pass exactly: use a plain batch over this table"
            );
            return Err(super::transaction::statement_error(m, b, message));
        }
        Ok(Slice {
            bounds: int(0).zip(int(1)),
            full: int(2) == Some(1),
            read: rows.rows_read(),
        })
    }

    /// The step that counts a run resuming `progress` in the started
    /// record's transaction: one more run started on its phase.
    pub(super) fn resume_step(&self, progress: &Progress) -> Step {
        Step::with_params(
            tracking::mark_unfinished(self.table()),
            vec![Value::from(i64::from(
                progress.unfinished.saturating_add(1),
            ))],
        )
    }
}

/// One slice of a range batch: what [`tracking::slice`] reads.
struct Slice {
    /// Its first and last rowid (`:from` and `:to`; the last, the cursor
    /// once it commits), `None` when no row is left.
    bounds: Option<(i64, i64)>,
    /// Whether it holds the limit's rows, so more may follow: not on the
    /// last slice.
    full: bool,
    /// The rows the backend read for it.
    read: u64,
}

/// The ends of a batched migration's last transaction.
pub(crate) struct Ends {
    /// Steps before anything of the migration (the preamble).
    pub(super) first: Batch,
    /// Its tracking row.
    pub(super) record: Step,
    /// The started record's move after it, when a record is kept.
    pub(super) carry: Option<Step>,
}

impl Progress {
    /// Progress at the start of the batch at `statement`.
    fn at(version: u32, statement: usize) -> Self {
        Self {
            version,
            own_start: false,
            statement,
            repetitions: 0,
            rows: 0,
            unfinished: 1,
            cursor: None,
            cursor_column: true,
        }
    }
}

/// The check that opens each phase's transaction: a row when the recorded
/// progress is not the one this run continues from (`None`: no progress).
fn expected(table: &str, version: u32, chain: &str, progress: Option<&Progress>) -> Step {
    let mut params = match progress {
        Some(p) => vec![
            Value::from(chain),
            Value::from(p.statement as i64),
            Value::from(p.repetitions as i64),
        ],
        None => vec![Value::Null, Value::Null, Value::Null],
    };
    params.push(Value::from(version));
    Step::check_with_params(tracking::progress_differs(table), params)
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::super::started::WakeStep;
    use super::*;
    use crate::Schema;

    use super::super::test_schema as schema;

    const FILES: &[&str] = &[
        "CREATE TABLE t (id INTEGER PRIMARY KEY, w INTEGER);\n\
         INSERT INTO t (id) VALUES (1), (2), (3), (4), (5);\n",
        "CREATE TABLE u (x);\n\
         -- durable-schema: batch\n\
         UPDATE t SET w = id WHERE id IN (SELECT id FROM t WHERE w IS NULL LIMIT 2);\n\
         CREATE INDEX t_w ON t (w);\n",
    ];

    /// The worker glue's steps through a batched migration: a pause after
    /// each phase (the host syncs), marked `mid_batch` between repetitions
    /// only; `wake_stop` there ends the slice with `in_progress` and a clean
    /// stop, and the next slice's steps resume and complete it.
    #[test]
    fn steps_pause_after_each_phase_and_stop_between_repetitions() {
        let schema = schema(FILES);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        Schema::__new("migrations", false, &schema.migrations()[..1])
            .migrate(&conn)
            .unwrap();
        // Before 0002 (started record), after its first phase, after the
        // first repetition.
        let mut pauses = Vec::new();
        let mut step = schema.wake_step(&conn, None);
        let resume = loop {
            match step {
                WakeStep::Paused(resume) if resume.mid_batch => break resume,
                WakeStep::Paused(resume) => {
                    pauses.push(resume.version);
                    step = schema.wake_step(&conn, Some(resume));
                }
                WakeStep::Done(wake) => panic!("{:?}", wake.error()),
            }
        };
        assert_eq!(pauses, [2, 2]);
        let WakeStep::Done(wake) = schema.wake_stop(&conn, resume) else {
            panic!("a pause between repetitions stops");
        };
        assert!(
            matches!(
                wake.error(),
                Some(MigrateError::InProgress {
                    version: 2,
                    statement: 2,
                    line: 3,
                    repetitions: 1,
                    rows: 2,
                    ..
                })
            ),
            "{:?}",
            wake.error()
        );
        let unfinished: i64 = conn
            .query_row("SELECT unfinished FROM migrations_failure", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(unfinished, 0, "a clean stop");
        // The next slice: steps to the end.
        let mut step = schema.wake_step(&conn, None);
        let mut mid = 0;
        let wake = loop {
            match step {
                WakeStep::Done(wake) => break wake,
                WakeStep::Paused(resume) => {
                    mid += usize::from(resume.mid_batch);
                    step = schema.wake_step(&conn, Some(resume));
                }
            }
        };
        assert!(wake.error().is_none(), "{:?}", wake.error());
        // Repetitions 2 (2 rows) and 3 (1 row) continue the batch; 4
        // changes none and ends it, and pauses too: the index after it
        // may take a slice of its own.
        assert_eq!(mid, 3);
        let done: i64 = conn
            .query_row("SELECT count(*) FROM t WHERE w = id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(done, 5);
        let records: i64 = conn
            .query_row("SELECT count(*) FROM migrations_failure", [], |r| r.get(0))
            .unwrap();
        assert_eq!(records, 0);
    }
}
