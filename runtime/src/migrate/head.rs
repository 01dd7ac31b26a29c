//! The up-to-date check: the tracking table's head row against the code.
//!
//! This is the whole run on a current database (one statement, one row, no
//! decoding of the embedded migrations), so it stays apart from everything
//! the slow paths need. When the head row disagrees with the code, the
//! history is walked once to name the first version that differs.

use super::{text_of, Executor, Start, Stopped};
use crate::backend::{Rows, Value};
use crate::error::MigrateError;
use crate::report::Report;
use crate::tracking;
use crate::Migration;

impl Executor<'_> {
    /// The fast path: the head query succeeded.
    pub(super) fn check_head(&self, rows: Rows) -> Result<Start, Stopped> {
        let rows_read = rows.rows_read();
        let Some(row) = rows.rows().first() else {
            // Our table exists but is empty (someone deleted the rows, or
            // created it by hand).
            let read = self
                .refuse_empty_history()
                .map_err(Stopped::at(0, rows_read))?;
            return Ok(Start::at(0, rows_read + read));
        };
        let version = self
            .version_of(row.first())
            .map_err(Stopped::at(0, rows_read))?;
        // Known from here on, for the report of a run that fails early
        // (edited history, strict and ahead).
        // NULL (a row written before classes were recorded): unknown,
        // tolerated as before.
        let breaks_below = row
            .get(2)
            .and_then(Value::as_i64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        self.compare_head(version, text_of(row.get(1)), breaks_below, rows_read)
            .map_err(Stopped::at(version, rows_read))
    }

    /// Where the head row at `version` with `chain` puts the database
    /// relative to the code.
    fn compare_head(
        &self,
        version: u32,
        chain: Option<&str>,
        breaks_below: u32,
        rows_read: u64,
    ) -> Result<Start, MigrateError> {
        let code = self.schema.version();
        // The common case ends here, with one statement and one row read,
        // and without decoding the embedded migrations.
        if version == code && chain == Some(self.schema.head_chain()) {
            return Ok(Start::at(version, rows_read));
        }
        if version > code {
            return self.check_ahead(version, breaks_below, rows_read);
        }
        let known = self.schema.migration(version);
        if let (Some(m), Some(chain)) = (known, chain) {
            if chain == m.chain() {
                return Ok(Start::at(version, rows_read));
            }
            if m.accepts_chain(chain) {
                // A history through a deliberately replaced text.
                return Ok(Start {
                    prev: Some(chain.to_owned()),
                    ..Start::at(version, rows_read)
                });
            }
        }
        Err(self.divergence(version))
    }

    /// Database ahead of the code (a rolled-back deploy). `strict` refuses
    /// outright; a newer migration that breaks this code (the head row's
    /// `breaks_below` is above the code's version) is refused naming it,
    /// with one more row read; otherwise the part of history the code knows
    /// must match.
    fn check_ahead(
        &self,
        version: u32,
        breaks_below: u32,
        rows_read: u64,
    ) -> Result<Start, MigrateError> {
        let code = self.schema.version();
        if self.schema.strict() {
            return Err(MigrateError::Ahead { db: version, code });
        }
        if breaks_below > code {
            return Err(self.incompatible(version, breaks_below));
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
        Ok(Start::new(
            Report::tolerated_ahead(version, rows_read),
            None,
        ))
    }

    /// The error for a database at `db` whose migration `version` breaks
    /// this code: its description and findings, from its tracking row.
    fn incompatible(&self, db: u32, version: u32) -> MigrateError {
        let rows = match self.query(
            &tracking::breaking_row(self.table()),
            &[Value::from(version)],
        ) {
            Ok(rows) => rows,
            Err(e) => return e,
        };
        // Read in place: no copy of the row.
        let column = |i: usize| {
            rows.rows()
                .first()
                .and_then(|r| text_of(r.get(i)))
                .unwrap_or_default()
                .to_owned()
        };
        MigrateError::Incompatible {
            db,
            code: self.schema.version(),
            version,
            migration: column(0),
            findings: column(1),
        }
    }

    /// The recorded chain at `upto` differs from the code's: walk the
    /// history (slow path only) to name the first version that differs.
    pub(super) fn divergence(&self, upto: u32) -> MigrateError {
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
}
