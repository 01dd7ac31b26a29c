//! When the head query fails: what exists under the tracking table's name,
//! and whether the run may take it over.
//!
//! A fresh database gets the tracking table; a hand-rolled
//! `(version, applied_at, description)` table is adopted when what it
//! records matches the code; drizzle's history is taken over (see
//! [`drizzle`](super::drizzle)); another tool's table is refused. A history
//! that records nothing over the user's tables is refused too, in either
//! shape. Nothing is written here: adoption's statements join the first
//! pending migration's transaction (see [`apply`](super::apply)).

use super::transaction::{class_values, Batch, Role};
use super::{text_of, Executor, Preamble, Start, Stopped};
use crate::backend::{BackendError, Step, Value};
use crate::error::MigrateError;
use crate::report::{Mismatch, Report};
use crate::tracking::{self, Shape};

impl Executor<'_> {
    /// The slow path: the head query failed. Decide from the table's shape.
    pub(super) fn inspect_and_adopt(&self, head_error: BackendError) -> Result<Start, Stopped> {
        let (shape, rows_read) = self.inspect().map_err(Stopped::at(0, 0))?;
        let refused = Stopped::at(0, rows_read);
        let (version, preamble, read) = match shape {
            Shape::Missing => match self.drizzle_history().map_err(|s| s.plus_read(rows_read))? {
                Some(history) => (
                    history.version(),
                    Preamble::DrizzleHistory(history.applied),
                    history.rows_read,
                ),
                None => (0, Preamble::Create, 0),
            },
            Shape::Legacy => {
                let (recorded, read) = self.adoptable().map_err(|s| s.plus_read(rows_read))?;
                (recorded, Preamble::Adopt(recorded), read)
            }
            Shape::Foreign(columns) => return Err(refused(self.foreign(columns))),
            // Our table, written before classes were recorded: upgraded in
            // place, then the up-to-date check runs on it as on any other.
            Shape::Unclassified => {
                let written = self.upgrade().map_err(refused)?;
                let head = tracking::head_query(self.table());
                let rows = self.query(&head, &[]).map_err(refused)?;
                let mut start = self.check_head(rows).map_err(|s| s.plus_read(rows_read))?;
                start.report.rows_read += rows_read;
                start.report.rows_written += written;
                return Ok(start);
            }
            // Our shape, yet the head query failed: a real database error
            // (locked, I/O), not something to repair.
            Shape::Own => return Err(refused(self.read_error(&head_error))),
        };
        let report = Report::unchanged(version, rows_read + read);
        Ok(Start::new(report, Some(preamble)))
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

    pub(crate) fn foreign(&self, columns: Vec<String>) -> MigrateError {
        MigrateError::ForeignTable {
            table: self.table(),
            columns,
        }
    }

    /// Whether a hand-rolled `(version, applied_at, description)` table can
    /// be adopted, and up to which version (with the rows read to find
    /// out). It has no checksums, so what it records is trusted only this
    /// far: versions `1..=n` without gaps, all known to the code, each with
    /// the description of the code's migration of that version (compared
    /// by words: ASCII case, punctuation, a `NNNN_` prefix and a `.sql`
    /// suffix do not count; see [`same_description`]). Anything else is
    /// refused with the full list of mismatches, and nothing is written. An
    /// empty table is adopted only over a database without user tables (see
    /// [`Executor::refuse_empty_history`]).
    pub(crate) fn adoptable(&self) -> Result<(u32, u64), Stopped> {
        let rows = self
            .query(&tracking::adoption_rows(self.table()), &[])
            .map_err(Stopped::at(0, 0))?;
        let rows_read = rows.rows_read();
        // Until the history is known to be `1..=n`, no version is.
        let invalid = Stopped::at(0, rows_read);
        let mut recorded = 0u32;
        let mut mismatches = Vec::new();
        for row in rows.rows() {
            let version = self.version_of(row.first()).map_err(invalid)?;
            if version != recorded + 1 {
                return Err(invalid(self.gap(recorded + 1)));
            }
            recorded = version;
            let description = text_of(row.get(1)).unwrap_or_default();
            if let Some(m) = self.schema.migration(version) {
                if !same_description(description, m.description()) {
                    mismatches.push(Mismatch {
                        version,
                        recorded: description.to_owned(),
                        expected: m.name(),
                    });
                }
            }
        }
        if recorded > self.schema.version() {
            let error = MigrateError::UnknownVersion {
                table: self.table(),
                version: recorded,
                code: self.schema.version(),
            };
            return Err(invalid(error));
        }
        // Known from here on: the version the table records.
        let stop = Stopped::at(recorded, rows_read);
        if !mismatches.is_empty() {
            let table = self.table();
            return Err(stop(MigrateError::AdoptionMismatch { table, mismatches }));
        }
        if recorded == 0 {
            return Ok((0, rows_read + self.refuse_empty_history().map_err(stop)?));
        }
        Ok((recorded, rows_read))
    }

    /// A tracking table that records nothing, ours or a hand-rolled one:
    /// over an empty database everything is pending (returns the rows read
    /// to find out); over user tables, with rows or not, running every
    /// migration again would re-apply them to data they already shaped
    /// (seed rows twice), so it is refused with
    /// [`MigrateError::EmptyHistory`] before anything is written. One
    /// decision for both shapes (and for [`Schema::status`](crate::Schema::status)),
    /// so they cannot drift apart.
    pub(crate) fn refuse_empty_history(&self) -> Result<u64, MigrateError> {
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

    /// Upgrades a tracking table written by durable-schema before
    /// [`tracking::CLASS_COLUMNS`] existed, in one transaction: adds the
    /// columns and classifies each row the code knows (matched by version
    /// and checksum); returns the rows written. Rows of versions the code
    /// does not know (a database ahead) stay unclassified: tolerated as
    /// before.
    fn upgrade(&self) -> Result<u64, MigrateError> {
        let table = self.table();
        let mut batch = Batch::default();
        for sql in tracking::upgrade(table) {
            batch.push(Role::Adopt, Step::new(sql));
        }
        let classify = tracking::classify_row(table);
        for m in self.schema.migrations() {
            let mut params = class_values(m, self.schema.breaks_below(m.version())).to_vec();
            params.push(Value::from(m.version()));
            params.push(Value::from(m.checksum()));
            batch.push(Role::Adopt, Step::with_params(classify.clone(), params));
        }
        self.commit(batch, None)
    }

    /// The steps adopting a hand-rolled table that records `1..=recorded`:
    /// add the `checksum` and `chain` columns, and fill them from the code.
    pub(super) fn adoption_steps(&self, recorded: u32, batch: &mut Batch) {
        let table = self.table();
        for sql in tracking::adopt(table) {
            batch.push(Role::Adopt, Step::new(sql));
        }
        let fill = tracking::fill_row(table);
        for m in self
            .schema
            .migrations()
            .iter()
            .take_while(|m| m.version() <= recorded)
        {
            let mut params = vec![
                Value::from(m.checksum()),
                Value::from(m.chain()),
                Value::from(m.version()),
            ];
            params.extend(class_values(m, self.schema.breaks_below(m.version())));
            batch.push(Role::Adopt, Step::with_params(fill.clone(), params));
        }
    }
}

/// Whether a recorded description names the code's migration: the same
/// words, where case (ASCII), punctuation, a `NNNN_` version prefix and a
/// `.sql` suffix do not count (hand-rolled tables often record the file
/// name).
///
/// ASCII only, like SQLite's own folding of identifiers: the code's side is
/// a file name of ASCII letters, digits, `_` and `-`, and Unicode case and
/// letter tables would cost every Worker about 10 KB of wasm. A non-ASCII
/// character is part of a word and compared exactly, except the Unicode
/// spaces, dashes and quotes (`U+00A0`, `U+2000..=U+206F`, `U+3000`), which
/// separate words as ASCII punctuation does. So a description this matches
/// was matched by the former Unicode comparison too: the difference can only
/// refuse (and list) an adoption, never make one.
fn same_description(recorded: &str, expected: &str) -> bool {
    let (mut a, mut b) = (words(recorded), words(expected));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
            _ => return false,
        }
    }
}

/// The words of a description (see [`same_description`]).
fn words(text: &str) -> impl Iterator<Item = &str> {
    let text = text.trim();
    let text = text.strip_suffix(".sql").unwrap_or(text);
    let text = text.trim_start_matches(|c: char| c.is_ascii_digit());
    text.split(is_separator).filter(|w| !w.is_empty())
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_alphanumeric();
    }
    matches!(c, '\u{a0}' | '\u{2000}'..='\u{206f}' | '\u{3000}')
}

#[cfg(test)]
mod tests {
    use super::same_description;

    #[test]
    fn descriptions_match_by_words_whatever_the_case_punctuation_and_file_form() {
        for recorded in [
            "create_users",
            "Create Users",
            "0002_Create-Users.sql",
            "  CREATE users  ",
            "create\u{a0}users",
            "create \u{2013} users",
            "\u{201c}create users\u{201d}",
        ] {
            assert!(same_description(recorded, "create_users"), "{recorded:?}");
        }
        for recorded in [
            "create_user",
            "create_users_now",
            "users_create",
            "",
            "0002.sql",
        ] {
            assert!(!same_description(recorded, "create_users"), "{recorded:?}");
        }
    }

    /// Non-ASCII letters are compared exactly, never folded: such a
    /// description never matches a file name (ASCII), as before.
    #[test]
    fn non_ascii_letters_are_part_of_a_word() {
        assert!(!same_description("cr\u{e9}er_table", "cr_er_table"));
        assert!(!same_description("CR\u{c9}ER", "cr\u{e9}er"));
        assert!(same_description("Cr\u{e9}er", "cr\u{e9}er"));
    }
}
