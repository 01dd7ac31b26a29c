//! A new object created from the schema's verified [`Baseline`] in one
//! transaction, instead of running every migration.
//!
//! Tried only on a database that holds nothing of the user's, before the
//! chain. A failure leaves nothing behind (one transaction) and is not the
//! run's failure: the report keeps it, and the chain runs instead.

use super::transaction::{record, Batch, Role};
use super::Executor;
use crate::backend::{Step, Value};
use crate::error::MigrateError;
use crate::report::Report;
use crate::tracking;
use crate::Baseline;

impl Executor<'_> {
    /// Creates a new object from `baseline` in one transaction: `preamble`
    /// (creating the tracking table, unless it exists empty), the
    /// baseline's statements, then the tracking row of every version, as a
    /// full run records them. Only on a database that holds nothing of the
    /// user's; `false` when it does, or when the transaction failed (it
    /// leaves nothing; the report keeps the error): the chain runs instead.
    pub(super) fn baseline(
        &self,
        baseline: &'static Baseline,
        preamble: &Batch,
        insert: &str,
        report: &mut Report,
    ) -> Result<bool, MigrateError> {
        // Linked only into programs whose schema embeds a baseline (see
        // `Paths`).
        match self.schema.paths().baseline {
            Some(create) => create(self, baseline, preamble, insert, report),
            None => Ok(false),
        }
    }

    fn create_from_baseline(
        &self,
        baseline: &'static Baseline,
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
            let breaks_below = self.schema.breaks_below(m.version());
            batch.push(Role::Record, record(insert, m, m.chain(), breaks_below));
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
                Ok(false)
            }
        }
    }
}

/// The baseline path's function (see `Paths`): a free function, so that it is
/// a pointer for any `Executor` lifetime.
pub(super) fn create(
    exec: &Executor<'_>,
    baseline: &'static Baseline,
    preamble: &Batch,
    insert: &str,
    report: &mut Report,
) -> Result<bool, MigrateError> {
    exec.create_from_baseline(baseline, preamble, insert, report)
}
