//! [`Schema::status`]: where a database stands, computed without changing it.

use crate::backend::{Backend, Value};
use crate::error::MigrateError;
use crate::migrate::{text_of, Executor};
use crate::report::{AppliedMigration, FailureRecord, SchemaState, Status};
use crate::tracking::{self, Shape};
use crate::Schema;

impl Schema {
    /// Describes the database behind `backend` relative to this schema
    /// (applied rows, pending migrations, [`SchemaState`]) without changing
    /// anything.
    ///
    /// Reads the whole tracking table, so it is for tools and debug routes,
    /// not for every wake-up. Fails when the tracking table has a foreign
    /// shape, when it is a hand-rolled one a run would refuse to adopt or
    /// any tracking table recording nothing over the user's tables (with the
    /// run's error), or when the database errors; an edited history is
    /// reported as [`SchemaState::Diverged`]. The failure record a failed
    /// [`wake`](Schema::wake) left is in [`Status::failure`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(feature = "rusqlite")] {
    /// use durable_schema_runtime::SchemaState;
    /// // migrations/0001_users.sql creates table `users`.
    /// #[durable_schema::durable_schema(dir = "migrations")]
    /// struct Db;
    ///
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// let status = Db::SCHEMA.status(&conn)?;
    /// assert_eq!(status.state(), SchemaState::Fresh);
    /// assert_eq!(status.pending().len(), 1);
    /// print!("{status}");
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status<B: Backend + ?Sized>(&self, backend: &B) -> Result<Status, MigrateError> {
        let exec = Executor::new(self, &backend);
        let code_version = self.version();
        let (failure, mut rows_read) = self.failure_record(backend);
        let (shape, read) = exec.inspect()?;
        rows_read += read;
        let own = match &shape {
            Shape::Missing => {
                // drizzle's history, when the code comes from its journal:
                // what a run would adopt, or the same error.
                let (state, db_version) = match exec.drizzle_history()? {
                    Some(history) => {
                        rows_read += history.rows_read;
                        (SchemaState::Unadopted, history.version())
                    }
                    None => (SchemaState::Fresh, 0),
                };
                return Ok(Status {
                    code_version,
                    db_version,
                    state,
                    applied: Vec::new(),
                    pending: self.pending_after(db_version).iter().collect(),
                    failure,
                    rows_read,
                    incompatible: None,
                    in_progress: None,
                });
            }
            Shape::Foreign(columns) => return Err(exec.foreign(columns.clone())),
            Shape::Own | Shape::Unclassified => true,
            // "Unadopted" only when a run would adopt it; otherwise the
            // same error as the run.
            Shape::Legacy => {
                rows_read += exec.adoptable()?.1;
                false
            }
        };
        let rows = exec.query(&tracking::rows(self.table(), &shape), &[])?;
        rows_read += rows.rows_read();
        if own && rows.rows().is_empty() {
            // Our table recording nothing: the run's decision, as for a
            // hand-rolled one (`adoptable` above).
            rows_read += exec.refuse_empty_history()?;
        }

        let mut applied = Vec::with_capacity(rows.rows().len());
        let mut diverged = None;
        for (i, row) in rows.rows().iter().enumerate() {
            let version = exec.version_of(row.first())?;
            applied.push(AppliedMigration {
                version,
                description: text_of(row.get(1)).unwrap_or_default().to_owned(),
                applied_at: text_of(row.get(2)).unwrap_or_default().to_owned(),
                checksum: text_of(row.get(3)).map(str::to_owned),
                class: text_of(row.get(5)).and_then(crate::Class::parse),
            });
            if diverged.is_some() {
                continue;
            }
            // Same rules as a run: versions 1..=n without gaps, and for the
            // versions the code knows, the recorded chain must match (only
            // for the executor's own table; a hand-rolled one has no chain).
            let expected = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if version != expected {
                diverged = Some(expected);
            } else if own {
                let chain = text_of(row.get(4));
                if let Some(m) = self.migration(version) {
                    if !chain.is_some_and(|c| m.accepts_chain(c)) {
                        diverged = Some(version);
                    }
                }
            }
        }
        let db_version = applied.last().map_or(0, |r| r.version);
        // The head row's `breaks_below`, as the run reads it.
        let head = rows.rows().last();
        let breaks_below = head
            .and_then(|r| r.get(6))
            .and_then(Value::as_i64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        let incompatible =
            (diverged.is_none() && db_version > code_version && breaks_below > code_version).then(
                || {
                    let row = rows.rows().iter().find(|r| {
                        r.first().and_then(Value::as_i64) == Some(i64::from(breaks_below))
                    });
                    let column = |i: usize| {
                        row.and_then(|r| text_of(r.get(i)))
                            .unwrap_or_default()
                            .to_owned()
                    };
                    MigrateError::Incompatible {
                        db: db_version,
                        code: code_version,
                        version: breaks_below,
                        migration: column(1),
                        findings: column(7),
                    }
                },
            );
        let state = match diverged {
            Some(version) => SchemaState::Diverged { version },
            None if !own => SchemaState::Unadopted,
            None if incompatible.is_some() => SchemaState::Incompatible {
                version: breaks_below,
            },
            None if db_version > code_version => SchemaState::Ahead,
            None if db_version == code_version => SchemaState::Current,
            None => SchemaState::Behind,
        };
        let pending = match state {
            SchemaState::Diverged { .. }
            | SchemaState::Ahead
            | SchemaState::Incompatible { .. } => Vec::new(),
            _ => self.pending_after(db_version).iter().collect(),
        };
        // A batch half-way through the first pending migration.
        let batch = pending.first().and_then(|m| exec.in_progress_of(m));
        // Its started record is the run going on, not a failure to show,
        // unless the next wake reports it as `interrupted` (a phase that two
        // runs left unfinished).
        let resumes = batch.as_ref().is_some_and(|(_, resumes)| *resumes);
        let failure = failure.filter(|f| !(f.started && resumes));
        let in_progress = batch.map(|(error, _)| error);
        Ok(Status {
            code_version,
            db_version,
            state,
            applied,
            pending,
            failure,
            rows_read,
            incompatible,
            in_progress,
        })
    }

    /// The failure record [`wake`](Schema::wake) keeps, read with the
    /// executor's own query, and the rows that read. Absent (`None`) on a
    /// database that never failed, which has no such table: that read fails
    /// and is not an error here.
    fn failure_record<B: Backend + ?Sized>(&self, backend: &B) -> (Option<FailureRecord>, u64) {
        let Ok(rows) = backend.query(&tracking::read_failure(self.table()), &[]) else {
            return (None, 0);
        };
        let read = rows.rows_read();
        let Some(row) = rows.rows().first() else {
            return (None, read);
        };
        let int = |i: usize| row.get(i).and_then(Value::as_i64);
        if int(3) == Some(0) {
            // A batch's progress alone, written under `migrate`: no
            // attempt failed or started ([`Status::in_progress`] shows it).
            return (None, read);
        }
        let version = int(1).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let failed_at = text_of(row.get(5)).unwrap_or_default().to_owned();
        // Only the code that recorded it waits (see `Executor::deferral`).
        let by_this_code = text_of(row.first()) == Some(self.head_chain());
        let retry_after = self.retry_after();
        let elapsed = int(4).unwrap_or(i64::MAX).max(0);
        let retry_in_secs = if by_this_code {
            u32::try_from(i64::from(retry_after).saturating_sub(elapsed).max(0)).unwrap_or(0)
        } else {
            0
        };
        let next_attempt_after = if by_this_code {
            let params = [Value::from(failed_at.as_str()), Value::from(retry_after)];
            backend
                .query(tracking::LATER_QUERY, &params)
                .ok()
                .and_then(|rows| {
                    rows.rows()
                        .first()
                        .and_then(|r| text_of(r.first()).map(str::to_owned))
                })
        } else {
            None
        };
        let record = FailureRecord {
            version,
            file: self.migration(version).map(|m| m.name()),
            error: text_of(row.get(2)).unwrap_or_default().to_owned(),
            // A started record counts its attempt negatively (see `migrate::started`).
            attempts: int(3)
                .and_then(|a| u32::try_from(a.abs()).ok())
                .unwrap_or(1),
            failed_at,
            by_this_code,
            retry_in_secs,
            next_attempt_after,
            started: int(3).is_some_and(|a| a < 0),
        };
        (Some(record), read)
    }
}
