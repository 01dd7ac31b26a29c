//! Taking over drizzle-kit's history (`__drizzle_migrations`) for a schema
//! read from a drizzle journal, on a database without the executor's
//! tracking table.
//!
//! drizzle records no versions, only each migration's `created_at` (the
//! journal's `when`), so its rows are matched to the code's migrations by
//! that. drizzle's table is read, never changed: the executor creates its
//! own tracking table beside it and records the matched versions there.

use super::transaction::{class_values, Batch, Role};
use super::{Executor, Stopped};
use crate::backend::{Step, Value};
use crate::error::MigrateError;
use crate::tracking;
use crate::Migration;

/// drizzle's history matched to the code: `(version, created_at)` for
/// versions `1..=n`, and the rows read to find out.
pub(crate) struct DrizzleHistory {
    pub(super) applied: Vec<(u32, i64)>,
    pub(crate) rows_read: u64,
}

impl DrizzleHistory {
    /// The highest version drizzle applied.
    pub(crate) fn version(&self) -> u32 {
        self.applied.last().map_or(0, |(v, _)| *v)
    }
}

impl Executor<'_> {
    /// For a schema from a drizzle-kit directory, on a database without our
    /// tracking table: drizzle's history, matched to the code's migrations by
    /// `created_at` = journal `when`, as `(version, created_at)` for
    /// versions `1..=n`; `None` without a drizzle table (or a plain schema,
    /// which reads nothing). An entry that matches no migration, or a version
    /// missing below the highest one recorded (drizzle skips a file whose
    /// `when` is older than the newest it applied), is refused with the
    /// list, and nothing is written; the report then says where drizzle
    /// left the object. drizzle's table is never changed.
    pub(crate) fn drizzle_history(&self) -> Result<Option<DrizzleHistory>, Stopped> {
        // Linked only into programs whose schema comes from a journal (see
        // `Paths`); any other schema has no `when` to match rows by.
        match self.schema.paths().drizzle {
            Some(path) => (path.history)(self),
            None => Ok(None),
        }
    }

    /// [`drizzle_history`](Executor::drizzle_history) for a schema from a
    /// drizzle-kit journal.
    fn read_drizzle_history(&self) -> Result<Option<DrizzleHistory>, Stopped> {
        let migrations = self.schema.migrations();
        if migrations.iter().all(|m| m.journal_when().is_none()) {
            return Ok(None);
        }
        // No such table: not a drizzle object.
        let Ok(rows) = self.backend.query(tracking::DRIZZLE_HISTORY_QUERY, &[]) else {
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
        // By hand: the slice sorts are several KB of wasm in every Worker,
        // for a list sorted once per adoption of drizzle's history.
        insertion_sort(&mut applied);
        applied.dedup_by_key(|(v, _)| *v);
        let history = DrizzleHistory {
            applied,
            rows_read: rows.rows_read(),
        };
        let missing: Vec<u32> = (1..=history.version())
            .filter(|v| !history.applied.iter().any(|(a, _)| a == v))
            .collect();
        if !unmatched.is_empty() || !missing.is_empty() {
            let error = MigrateError::LedgerMismatch {
                table: tracking::DRIZZLE_TABLE,
                unmatched,
                missing,
            };
            // The highest version drizzle recorded, for the run's report.
            return Err(Stopped::at(history.version(), history.rows_read)(error));
        }
        Ok(Some(history))
    }

    /// The steps taking over drizzle's history `applied`: create the
    /// tracking table and record each version with drizzle's `created_at`.
    pub(super) fn drizzle_history_steps(&self, applied: &[(u32, i64)], batch: &mut Batch) {
        // Only a schema with the drizzle path finds a history to record.
        if let Some(path) = self.schema.paths().drizzle {
            (path.steps)(self, applied, batch);
        }
    }

    fn record_drizzle_history(&self, applied: &[(u32, i64)], batch: &mut Batch) {
        let table = self.table();
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
            let mut params = params;
            params.extend(class_values(m, self.schema.breaks_below(version)));
            batch.push(Role::Adopt, Step::with_params(insert.clone(), params));
        }
    }
}

/// The drizzle path's functions (see `Paths`): free functions, so that they
/// are pointers for any `Executor` lifetime.
pub(super) fn read_history(exec: &Executor<'_>) -> Result<Option<DrizzleHistory>, Stopped> {
    exec.read_drizzle_history()
}

pub(super) fn history_steps(exec: &Executor<'_>, applied: &[(u32, i64)], batch: &mut Batch) {
    exec.record_drizzle_history(applied, batch);
}

/// Sorts `items` in place (insertion sort: the list is sorted once, when
/// drizzle's history is taken over).
fn insertion_sort<T: Ord>(items: &mut [T]) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && items[j - 1] > items[j] {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}
