//! Applying what is pending: each migration in its own transaction together
//! with its tracking row, after whatever the tracking table needs first.
//!
//! This is where a run writes. The report grows one migration per committed
//! transaction, so when a transaction fails the run stops with the report
//! of the ones before it (they stay applied).

use super::batch::{has_batch, Ends, Phased, Progress};
use super::started::Start;
use super::transaction::{record, Batch, Role};
use super::{Executor, Preamble, Stopped};
use crate::backend::Step;
use crate::error::MigrateError;
use crate::report::Report;
use crate::tracking;
use crate::Migration;

impl Executor<'_> {
    /// Applies every migration after the version `start` found, each in its
    /// own transaction with its tracking row; the preamble joins the first
    /// transaction so a fresh database never ends up with an empty tracking
    /// table. A new object may be created from the baseline instead.
    pub(super) fn apply(&self, start: super::Start) -> Result<Report, Stopped> {
        let super::Start {
            mut report,
            preamble,
            prev,
        } = start;
        report.adopted = matches!(
            preamble,
            Some(Preamble::Adopt(_) | Preamble::DrizzleHistory(_))
        );
        let pending = self.schema.pending_after(report.from_version);
        let batch = self.preamble(preamble.as_ref());
        if pending.is_empty() {
            // A fresh database with nothing to apply stays untouched; an
            // adoption with nothing to apply runs its preamble alone.
            if report.adopted {
                match self.commit(batch, None) {
                    Ok(written) => report.rows_written += written,
                    Err(error) => return Err(Stopped::new(error, report)),
                }
            }
            return Ok(report);
        }
        // With the failure record, where a batched migration half-way
        // through stands (see `batch`).
        let fresh = report.from_version == 0 && matches!(preamble, None | Some(Preamble::Create));
        let (failure, progress) = match self.deferral(&pending[0], fresh) {
            Ok(found) => found,
            Err(error) => return Err(Stopped::new(error, report)),
        };
        let insert = tracking::insert(self.table());
        let by_baseline = match self.schema.baseline() {
            Some(baseline) if fresh => {
                match self.baseline(baseline, &batch, &insert, &mut report) {
                    Ok(done) => done,
                    Err(error) => return Err(Stopped::new(error, report)),
                }
            }
            _ => false,
        };
        if !by_baseline {
            report = self.apply_chain(pending, batch, &insert, prev, progress, report)?;
        }
        // A paused run keeps its started record; a guarded one deleted it
        // with its last migration already.
        if failure && self.pace.paused.get().is_none() {
            self.clear_failure();
        }
        Ok(report)
    }

    /// The tracking-table steps that precede the first pending migration.
    fn preamble(&self, preamble: Option<&Preamble>) -> Batch {
        let mut batch = Batch::default();
        match preamble {
            None => {}
            Some(Preamble::Create) => {
                batch.push(
                    Role::Create,
                    Step::new(tracking::create_table(self.table())),
                );
            }
            Some(Preamble::Adopt(recorded)) => self.adoption_steps(*recorded, &mut batch),
            Some(Preamble::DrizzleHistory(applied)) => {
                self.drizzle_history_steps(applied, &mut batch)
            }
        }
        batch
    }

    /// Applies `pending` one transaction each, the first one after `batch`
    /// (the preamble), and adds each to `report`. `prev` is the head row's
    /// chain when it is not the code's own history. A failed migration is
    /// recorded under [`Schema::wake`](crate::Schema::wake) and stops the
    /// run with the report of the migrations before it.
    fn apply_chain(
        &self,
        pending: &'static [Migration],
        mut batch: Batch,
        insert: &str,
        mut prev: Option<String>,
        mut progress: Option<Progress>,
        mut report: Report,
    ) -> Result<Report, Stopped> {
        // Under `wake`, a started record committed before the first
        // migration runs, and carried by each migration's transaction.
        let guard = match pending.first().map(|m| self.start(m, progress.as_ref())) {
            Some(Start::Pause) => return Ok(report),
            guard => guard == Some(Start::Kept),
        };
        for (i, m) in pending.iter().enumerate() {
            let chain = match self.next_chain(m, prev.as_deref()) {
                Ok(chain) => chain,
                Err(error) => return Err(Stopped::new(error, report)),
            };
            prev = (chain != m.chain()).then(|| chain.to_owned());
            let breaks_below = self.schema.breaks_below(m.version());
            let record = record(insert, m, chain, breaks_below);
            let next = pending.get(i + 1);
            let carry = guard.then(|| self.carry_start(next));
            let committed = if has_batch(m) {
                // Phases, each its own transaction (see `batch`).
                let ends = Ends {
                    first: std::mem::take(&mut batch),
                    record,
                    carry,
                };
                // Linked only into programs whose schema has a batch; a
                // schema that has one without the path (built by hand
                // without `__with_batches`) stops here rather than run the
                // batch once as if it were a plain statement.
                let phased = self
                    .schema
                    .paths()
                    .phased()
                    .ok_or_else(|| MigrateError::Backend {
                        context: format!("applying version {}", m.version()),
                        message: "it has a batched statement, but the schema was built without \
                              batch support (`Schema::__with_batches`)"
                            .to_owned(),
                    });
                let phased =
                    phased.and_then(|f| f(self, m, chain, progress.take(), ends, &mut report));
                match phased {
                    Ok(Phased::Done) => Ok(()),
                    Ok(Phased::Paused) => return Ok(report),
                    Ok(Phased::OutOfBudget(error)) => return Err(Stopped::new(error, report)),
                    Err(error) => Err(error),
                }
            } else {
                migration_steps(m, record, 0, &mut batch);
                if let Some(carry) = carry {
                    batch.push(Role::Started, carry);
                }
                self.commit(std::mem::take(&mut batch), Some(m))
                    .map(|written| report.rows_written += written)
            };
            if let Err(error) = committed {
                self.record_failure(&error, m.version());
                return Err(Stopped::new(error, report));
            }
            report.applied.push(m);
            report.to_version = m.version();
            // A new object pauses only before its first migration: its
            // tables are empty, and a sync per migration would cost as many
            // commits as the chain is long (a reset there names the first).
            if guard && report.from_version > 0 && self.pause_before(next) {
                return Ok(report);
            }
        }
        Ok(report)
    }

    /// The chain value `m`'s tracking row records: the code's own, or,
    /// after a replaced text (`prev`), the one the compiler precomputed for
    /// that history.
    fn next_chain(
        &self,
        m: &'static Migration,
        prev: Option<&str>,
    ) -> Result<&'static str, MigrateError> {
        let Some(prev) = prev else {
            return Ok(m.chain());
        };
        m.chain_after(prev)
            .ok_or_else(|| MigrateError::InvalidRecord {
                table: self.table(),
                detail: format!(
                    "a chain value before version {} the code does not know",
                    m.version()
                ),
            })
    }
}

/// The steps of `m`'s transaction after `batch`'s: its tracking row
/// (`record`), its statements from index `from` (those before it were
/// committed by earlier phases, see `batch`), its foreign-key checks.
pub(super) fn migration_steps(m: &'static Migration, record: Step, from: usize, batch: &mut Batch) {
    // The tracking row goes first: if another migrator applied this
    // version meanwhile, its primary key fails the transaction before
    // any of the migration's statements runs, and the error says so
    // instead of blaming the file ("table already exists").
    batch.push(Role::Record, record);
    for (i, s) in m.statements().iter().enumerate().skip(from) {
        batch.push(Role::Statement(i), Step::new(s.sql()));
    }
    foreign_key_steps(m, batch);
}

/// `m`'s foreign-key checks, at the end of each of its transactions.
/// Deferred foreign keys are checked only at the outermost commit, which on
/// a Durable Object is workerd's, after the run: check the tables the
/// compiler found at risk here, then switch deferral off so it does not
/// leak into the next transaction. A batched migration commits in phases,
/// so each of its phases ends with them.
pub(super) fn foreign_key_steps(m: &'static Migration, batch: &mut Batch) {
    if !m.foreign_key_checks().is_empty() {
        for table in m.foreign_key_checks() {
            batch.push(
                Role::ForeignKeyCheck,
                Step::check(tracking::foreign_key_check(table)),
            );
        }
        batch.push(Role::ForeignKeyCheck, Step::new(tracking::DEFER_OFF));
    }
}
