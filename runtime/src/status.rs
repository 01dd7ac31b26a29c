//! [`Schema::status`]: where a database stands, computed without changing it.

use crate::backend::Backend;
use crate::error::MigrateError;
use crate::migrate::{text_of, Executor};
use crate::report::{AppliedMigration, SchemaState, Status};
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
    /// reported as [`SchemaState::Diverged`].
    ///
    /// # Example
    ///
    /// ```
    /// # #[cfg(feature = "rusqlite")] {
    /// # use durable_schema_runtime::{Migration, Schema, SchemaState};
    /// # const SQL: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY)";
    /// # const SCHEMA: Schema = Schema::__new("migrations", false, &[Migration::__new(
    /// #     1, "0001_users.sql", "users", SQL, "c", "h", "0,43,1,1")]);
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// let status = SCHEMA.status(&conn)?;
    /// assert_eq!(status.state(), SchemaState::Fresh);
    /// assert_eq!(status.pending().len(), 1);
    /// print!("{status}");
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status<B: Backend + ?Sized>(&self, backend: &B) -> Result<Status, MigrateError> {
        let exec = Executor::new(self, backend);
        let code_version = self.version();
        let (shape, mut rows_read) = exec.inspect()?;
        let own = match &shape {
            Shape::Missing => {
                // drizzle's history, when the code comes from its journal:
                // what a run would adopt, or the same error.
                let (state, db_version) = match exec.drizzle_ledger()? {
                    Some(ledger) => {
                        rows_read += ledger.rows_read;
                        (SchemaState::Unadopted, ledger.version())
                    }
                    None => (SchemaState::Fresh, 0),
                };
                return Ok(Status {
                    code_version,
                    db_version,
                    state,
                    applied: Vec::new(),
                    pending: self.pending_after(db_version).iter().collect(),
                    rows_read,
                });
            }
            Shape::Foreign(columns) => return Err(exec.foreign(columns.clone())),
            Shape::Own => true,
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
        let state = match diverged {
            Some(version) => SchemaState::Diverged { version },
            None if !own => SchemaState::Unadopted,
            None if db_version > code_version => SchemaState::Ahead,
            None if db_version == code_version => SchemaState::Current,
            None => SchemaState::Behind,
        };
        let pending = match state {
            SchemaState::Diverged { .. } | SchemaState::Ahead => Vec::new(),
            _ => self.pending_after(db_version).iter().collect(),
        };
        Ok(Status {
            code_version,
            db_version,
            state,
            applied,
            pending,
            rows_read,
        })
    }
}
