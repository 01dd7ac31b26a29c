//! Under [`Schema::wake`]: the failure record that keeps a fleet from
//! retrying a failing migration on every wake-up.
//!
//! A failed migration is recorded in `<table>_failure` (which code, which
//! version, the error, when); wake-ups of the same code then return
//! [`MigrateError::Deferred`] for `retry_after` seconds without executing
//! anything. New code tries at once; a success clears the record. All of it
//! is best effort: the record only saves work, it never decides a history.
//! The same row announces a run before its first migration
//! ([`started`](super::started)), so a run that never finishes is a failure
//! too.

use super::batch::{has_batch, Progress};
use super::{text_of, Executor};
use crate::backend::{Step, Value};
use crate::error::MigrateError;
use crate::tracking;
use crate::Migration;
#[cfg(doc)]
use crate::Schema;

impl Executor<'_> {
    /// Under [`Schema::wake`]: whether a failure record exists, or the error
    /// that defers this attempt (the same code failed less than
    /// `retry_after` seconds ago); and the progress of a batch in `first`,
    /// the first pending migration (see [`batch`](super::batch)), read
    /// with the record (under `migrate`, also when `first` has no batch,
    /// unless the database is `fresh`: it has no tracking table yet).
    pub(super) fn deferral(
        &self,
        first: &'static Migration,
        fresh: bool,
    ) -> Result<(bool, Option<Progress>), MigrateError> {
        let Some(retry_after) = self.retry else {
            // Read even when `first` has no batch: progress of another text
            // of it (edited, or replaced by the lock) means phases of that
            // text are committed, and this text must not run over them. Not
            // on a database without a tracking table when `first` has no
            // batch: the new object's case, whose query count stays as it
            // was (`wake` reads the record there anyway).
            let progress = if has_batch(first) || !fresh {
                self.progress_of(first)?
            } else {
                None
            };
            return Ok((false, progress));
        };
        // No table (never failed) or an unreadable one: nothing to defer to.
        let Ok(rows) = self
            .backend
            .query(&tracking::read_failure(self.table()), &[])
        else {
            return Ok((false, None));
        };
        let Some(row) = rows.rows().first() else {
            return Ok((false, None));
        };
        let progress = self.progress_in_failure(first, row)?;
        match row.get(3).and_then(Value::as_i64) {
            // A negative attempt count is a started record: a run that has
            // not finished (see `started`).
            Some(a) if a < 0 => return Ok((self.unfinished(row, progress.as_ref())?, progress)),
            // A batch's progress alone (written under `migrate`): nothing
            // failed, the run resumes it.
            Some(0) => return Ok((true, progress)),
            _ => {}
        }
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
        Ok((true, progress))
    }

    /// Under [`Schema::wake`]: remembers a failed migration, so wake-ups of
    /// the same code do not run it again before `retry_after` seconds.
    pub(super) fn record_failure(&self, error: &MigrateError, version: u32) {
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

    /// Clears the failure record once the schema is current. Best effort: a
    /// stale record only delays nothing (the code that wrote it is current
    /// now) and is overwritten by the next failure.
    pub(super) fn clear_failure(&self) {
        let _ = self
            .backend
            .transaction(vec![Step::new(tracking::clear_failure(self.table()))]);
    }
}
