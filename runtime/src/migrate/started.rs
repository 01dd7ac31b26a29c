//! Under [`Schema::wake`]: the started record, which turns a run that never
//! finished into a failure instead of a reset loop.
//!
//! A run killed mid-migration (the process killed; on a Durable Object, the
//! object reset past workerd's 30-second `blockConcurrencyWhile` gate or its
//! CPU limit) rolls the migration back and records nothing, so the next
//! wake-up would run the same migration and be killed again, forever. So
//! before the first pending migration's statements run, the run commits a
//! *started record*: the failure record's row (`<table>_failure`, see
//! [`failure`](super::failure)) with the code's head chain, the version, the
//! time, and a negative `attempts` (minus the attempt's number). Each
//! migration's own transaction moves it to the next migration, and the last
//! one deletes it; a failure replaces it with the failure record.
//!
//! A wake of the same code that finds it reports
//! [`MigrateError::Interrupted`], naming the file and when it started, turns
//! it into that failure record and executes nothing: the usual failure
//! semantics follow (the next attempt after `retry_after`, or new code at
//! once). Other code's started record does not stop a run (a new deploy
//! tries at once) and is overwritten by its own.
//!
//! On a Durable Object each `transactionSync` is a savepoint inside the
//! object's implicit transaction, which workerd commits only after the
//! synchronous code returns: the record would be rolled back with the
//! migration it guards. [`Schema::wake_step`] therefore stops once the record
//! is written; the worker glue awaits `storage.sync()` (the implicit
//! transaction committed) and resumes, one migration per step (on a new
//! object, whose tables are empty, only the first migration waits for a
//! sync: a reset later in its chain names the first migration).
//!
//! A migration with batched statements commits in phases; the record then
//! also holds its progress ([`batch`](super::batch)), each phase is a step
//! of its own, and a wake that finds the progress of a phase at most one run
//! left unfinished resumes it instead of reporting `interrupted`.
//!
//! Nothing here runs on the up-to-date path: the record is read and written
//! only when there is something to apply.

use std::cell::Cell;

use super::batch::Progress;
use super::{text_of, Executor, Stopped};
use crate::backend::{Backend, Step, Value};
use crate::error::MigrateError;
use crate::report::{Report, Wake};
use crate::tracking;
use crate::{Migration, Schema};

/// How a run under [`Schema::wake`] treats the started record.
#[derive(Default)]
pub(super) struct Pace {
    /// `true` for [`Schema::wake_step`]: stop as soon as a started record
    /// is written, before the migration it announces runs.
    pub(super) stepwise: bool,
    /// The version whose started record the previous step wrote: this run's
    /// own record, not an interrupted run's.
    resume: Option<u32>,
    /// Set when the run stopped before the migration of this version (or
    /// between two phases of it, when it has batched statements).
    pub(super) paused: Cell<Option<u32>>,
    /// Set when the run paused between two repetitions of a batch, or
    /// right after its last one: where the host may end its slice
    /// ([`Schema::wake_stop`]).
    pub(super) mid_batch: Cell<bool>,
}

/// What a run does after [`Executor::start`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// A started record is kept: each migration's transaction carries it.
    Kept,
    /// No record (under `migrate`, or it could not be written).
    Unguarded,
    /// Stop here ([`Schema::wake_step`]): the record must become durable
    /// before the migration runs.
    Pause,
}

/// What [`Schema::wake_step`] did: the whole wake, or a pause before a
/// migration whose started record must become durable first.
#[derive(Debug)]
#[cfg_attr(
    not(any(target_arch = "wasm32", feature = "worker")),
    allow(dead_code, reason = "read by the worker glue")
)]
pub(crate) enum WakeStep {
    /// The run is over (current, failed, deferred, or interrupted).
    Done(Wake),
    /// The run stopped before a migration: make the database's pending
    /// writes durable, then call [`Schema::wake_step`] with this.
    Paused(Resume),
}

/// A paused run: the migration it stopped before (or in), and what it did
/// so far.
#[derive(Debug)]
pub(crate) struct Resume {
    pub(super) version: u32,
    so_far: Report,
    /// Paused between two repetitions of a batch, or right after its last
    /// one: the host may end its slice here, with [`Schema::wake_stop`].
    pub(crate) mid_batch: bool,
}

#[cfg_attr(
    not(any(target_arch = "wasm32", feature = "worker")),
    allow(dead_code, reason = "the worker glue's entry point; tested natively")
)]
impl Schema {
    /// One step of [`wake`](Schema::wake) for a host whose transactions
    /// become durable only later (a Durable Object): it stops right after
    /// committing a started record, so the host can make it durable before
    /// the migration runs, then resumes with the [`Resume`] it got. The
    /// steps together do what one `wake` does, one migration per step.
    pub(crate) fn wake_step<B: Backend + ?Sized>(
        &self,
        backend: &B,
        resume: Option<Resume>,
    ) -> WakeStep {
        let (resume_at, so_far) = match resume {
            Some(Resume {
                version, so_far, ..
            }) => (Some(version), Some(so_far)),
            None => (None, None),
        };
        let exec = Executor {
            retry: Some(self.retry_after()),
            pace: Pace {
                stepwise: true,
                resume: resume_at,
                paused: Cell::new(None),
                mid_batch: Cell::new(false),
            },
            ..Executor::new(self, &backend)
        };
        let result = exec.run();
        let paused = exec.pace.paused.get();
        let mid_batch = exec.pace.mid_batch.get();
        let mut wake = Wake::from_run(result);
        if let Some(mut before) = so_far {
            // One report for the whole run, as `wake` would have made it.
            let now = &mut wake.report;
            // An adoption commits with the first migration after it.
            before.adopted = now.adopted || before.adopted && !before.applied.is_empty();
            before.rows_read += now.rows_read;
            before.rows_written += now.rows_written;
            before.applied.append(&mut now.applied);
            before.to_version = now.to_version;
            before.failed = now.failed.take();
            before.ahead = now.ahead;
            before.baseline |= now.baseline;
            before.baseline_error = before.baseline_error.take().or(now.baseline_error.take());
            wake.report = before;
        }
        match paused {
            Some(version) if wake.error.is_none() => WakeStep::Paused(Resume {
                version,
                so_far: wake.report,
                mid_batch,
            }),
            _ => WakeStep::Done(wake),
        }
    }

    /// Ends a host's slice of [`wake_step`](Schema::wake_step)s paused
    /// between two repetitions of a batch (its budget is spent): records
    /// the clean stop, so the next run resumes without counting a kill, and
    /// returns the wake with [`MigrateError::InProgress`]. A pause anywhere
    /// else has nothing to stop: the same pause comes back, step on.
    pub(crate) fn wake_stop<B: Backend + ?Sized>(&self, backend: &B, resume: Resume) -> WakeStep {
        let exec = Executor::new(self, &backend);
        let m = match self.migration(resume.version) {
            Some(m) if resume.mid_batch => m,
            _ => return WakeStep::Paused(resume),
        };
        let progress = match exec.progress_of(m) {
            Ok(Some(progress)) => progress,
            _ => return WakeStep::Paused(resume),
        };
        let _ = backend.transaction(vec![Step::with_params(
            tracking::mark_unfinished(self.table()),
            vec![Value::from(0i64)],
        )]);
        let error = super::batch::in_progress(m, &progress);
        let mut report = resume.so_far;
        report.failed = Some(error.clone());
        WakeStep::Done(Wake {
            report,
            error: Some(error),
        })
    }
}

impl Executor<'_> {
    /// Under [`Schema::wake`], before the first pending migration `m`:
    /// commits the started record in a transaction of its own, and says
    /// what the run does next.
    pub(super) fn start(&self, m: &'static Migration, progress: Option<&Progress>) -> Start {
        if self.retry.is_none() {
            return Start::Unguarded;
        }
        if self.pace.resume == Some(m.version()) {
            // The previous step wrote it, and the host made it durable.
            return Start::Kept;
        }
        let table = self.table();
        let params = vec![
            Value::from(self.schema.head_chain()),
            Value::from(m.version()),
            Value::from(running(m)),
        ];
        let steps = match progress {
            // This code's run on a batch, stopped or killed between
            // phases: the same attempt goes on, one more run on the phase.
            Some(p) if p.own_start => vec![self.resume_step(p)],
            // A new attempt (another code's, or after a failure) on a
            // batch's progress: the first run on its phase.
            Some(p) => vec![
                Step::with_params(tracking::record_start(table), params),
                self.resume_step(&Progress {
                    unfinished: 0,
                    ..p.clone()
                }),
            ],
            None => vec![
                Step::new(tracking::create_failure_table(table)),
                Step::with_params(tracking::record_start(table), params),
            ],
        };
        let written = self.backend.transaction(steps);
        match written {
            // Best effort, like the failure record: the migration runs
            // unguarded rather than not at all.
            Err(_) => Start::Unguarded,
            Ok(_) if self.pace.stepwise => {
                self.pace.paused.set(Some(m.version()));
                Start::Pause
            }
            Ok(_) => Start::Kept,
        }
    }

    /// The last step of `m`'s transaction while a started record is kept:
    /// moves it to `next`, or deletes it after the last migration (the
    /// schema is current when that transaction commits).
    pub(super) fn carry_start(&self, next: Option<&'static Migration>) -> Step {
        let table = self.table();
        match next {
            Some(next) => Step::with_params(
                tracking::advance_start(table),
                vec![Value::from(next.version()), Value::from(running(next))],
            ),
            None => Step::new(tracking::clear_failure(table)),
        }
    }

    /// After `m`'s transaction committed: whether [`Schema::wake_step`]
    /// stops before `next`, whose started record that transaction wrote.
    pub(super) fn pause_before(&self, next: Option<&'static Migration>) -> bool {
        match next {
            Some(next) if self.pace.stepwise => {
                self.pace.paused.set(Some(next.version()));
                true
            }
            _ => false,
        }
    }

    /// A started record found by [`deferral`](Executor::deferral) (`row`,
    /// as [`tracking::read_failure`] reads it). `Ok(true)`: a record to
    /// overwrite (another code's, or this run's own); the error: the same
    /// code's run that never finished, now recorded as failed.
    pub(super) fn unfinished(
        &self,
        row: &[Value],
        progress: Option<&Progress>,
    ) -> Result<bool, MigrateError> {
        let version = row
            .get(1)
            .and_then(Value::as_i64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        if text_of(row.first()) != Some(self.schema.head_chain())
            || self.pace.resume == Some(version)
        {
            return Ok(true);
        }
        // A batch's phase that no more than one run left unfinished: the
        // run resumes it (see `batch`); the second kill in a row of the
        // same phase is an interruption like any other.
        if progress.is_some_and(|p| p.version == version && p.unfinished < 2) {
            return Ok(true);
        }
        let error = MigrateError::Interrupted {
            version,
            file: self.schema.migration(version).map_or("-", |m| m.name()),
            started_at: text_of(row.get(5)).unwrap_or_default().to_owned(),
        };
        // Best effort: if this write fails too, the next wake-up finds the
        // started record again and reports the same.
        let _ = self.backend.transaction(vec![Step::with_params(
            tracking::record_interrupted(self.table()),
            vec![Value::from(error.to_string())],
        )]);
        Err(error)
    }
}

/// What the record says while `m` runs (what `status` shows meanwhile).
pub(super) fn running(m: &Migration) -> String {
    format!(
        "migration {} (version {}) started and has not finished: interrupted, unless a run is \
         still applying it",
        m.name(),
        m.version()
    )
}

impl Wake {
    /// The wake of a run's result (see [`Schema::wake`]).
    pub(super) fn from_run(result: Result<Report, Stopped>) -> Wake {
        let (report, error) = match result {
            Ok(report) => (report, None),
            Err(Stopped { error, report }) => {
                let mut report = *report;
                // An adoption commits with the first pending migration:
                // nothing applied, nothing adopted.
                report.adopted &= !report.applied.is_empty();
                report.failed = Some(error.clone());
                (report, Some(error))
            }
        };
        Wake { report, error }
    }
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::*;

    use super::super::test_schema as schema;

    const FILES: &[&str] = &[
        "CREATE TABLE a (x);\n",
        "INSERT INTO a VALUES (1);\n",
        "CREATE TABLE b (y);\n",
    ];

    /// The highest version recorded as applied (0 before the first).
    fn applied(conn: &rusqlite::Connection) -> i64 {
        conn.query_row("SELECT max(version) FROM migrations", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .ok()
        .flatten()
        .unwrap_or(0)
    }

    fn attempts(conn: &rusqlite::Connection) -> Option<(i64, i64)> {
        conn.query_row(
            "SELECT version, attempts FROM migrations_failure",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
    }

    /// The steps through `schema` on `conn`: the versions they paused
    /// before (each time with that version's started record committed and
    /// none of its statements run), and the wake they end with.
    fn steps(schema: &Schema, conn: &rusqlite::Connection) -> (Vec<u32>, Wake) {
        let mut step = schema.wake_step(conn, None);
        let mut paused_at = Vec::new();
        let wake = loop {
            match step {
                WakeStep::Done(wake) => break wake,
                WakeStep::Paused(resume) => {
                    let version = resume.version;
                    paused_at.push(version);
                    assert_eq!(attempts(conn), Some((i64::from(version), -1)));
                    assert_eq!(
                        applied(conn),
                        i64::from(version) - 1,
                        "ran before its pause"
                    );
                    step = schema.wake_step(conn, Some(resume));
                }
            }
        };
        (paused_at, wake)
    }

    /// An object behind the code pauses before every migration and ends
    /// with the report one `wake` makes; a new object pauses only before
    /// its first.
    #[test]
    fn steps_pause_before_each_migration_of_an_existing_object() {
        let schema = schema(FILES);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let v1 = Schema::__new("migrations", false, &schema.migrations()[..1]);
        v1.migrate(&conn).unwrap();
        let (paused_at, wake) = steps(&schema, &conn);
        assert_eq!(paused_at, [2, 3]);
        assert!(wake.error().is_none(), "{:?}", wake.error());
        assert_eq!(
            (wake.report().from_version(), wake.report().to_version()),
            (1, 3)
        );
        let names: Vec<&str> = wake.report().applied().iter().map(|m| m.name()).collect();
        assert_eq!(names, ["0002_m.sql", "0003_m.sql"]);
        assert_eq!(attempts(&conn), None, "cleared with the last migration");
        assert!(schema.wake_step(&conn, None).is_done_current());

        let fresh = rusqlite::Connection::open_in_memory().unwrap();
        let (paused_at, wake) = steps(&schema, &fresh);
        assert_eq!(paused_at, [1]);
        assert_eq!(
            (wake.report().from_version(), wake.report().to_version()),
            (0, 3)
        );
        assert_eq!(attempts(&fresh), None);
        let whole = schema.wake(&rusqlite::Connection::open_in_memory().unwrap());
        assert_eq!(wake.report().to_string(), whole.report().to_string());
    }

    /// A pause the host never resumed (the object reset while its
    /// migration ran): the next wake reports that migration interrupted.
    #[test]
    fn a_step_never_resumed_is_interrupted() {
        let schema = schema(FILES);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let v1 = Schema::__new("migrations", false, &schema.migrations()[..1]);
        v1.migrate(&conn).unwrap();
        let WakeStep::Paused(first) = schema.wake_step(&conn, None) else {
            panic!("expected a pause before 0002");
        };
        let WakeStep::Paused(second) = schema.wake_step(&conn, Some(first)) else {
            panic!("expected a pause before 0003");
        };
        assert_eq!(second.version, 3);
        drop(second);
        let WakeStep::Done(wake) = schema.wake_step(&conn, None) else {
            panic!("an interrupted run does not pause");
        };
        assert!(
            matches!(
                wake.error(),
                Some(MigrateError::Interrupted {
                    version: 3,
                    file: "0003_m.sql",
                    ..
                })
            ),
            "{:?}",
            wake.error()
        );
        assert_eq!(attempts(&conn), Some((3, 1)));
        // Without the record, the same wake would have applied 0003.
        assert_eq!(wake.report().to_version(), 2);
    }

    impl WakeStep {
        fn is_done_current(&self) -> bool {
            matches!(self, WakeStep::Done(w) if w.error().is_none() && w.report().applied().is_empty())
        }
    }
}
