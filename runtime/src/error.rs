//! [`MigrateError`]: everything that stops a migration, each case with enough
//! context to act on it.

use std::fmt;

use crate::json::{self, Object};
use crate::report::Mismatch;

/// Why [`Schema::migrate`](crate::Schema::migrate) did not bring the
/// database to the code's version.
///
/// Every variant leaves the database in a whole version: a migration is
/// either committed with its tracking row or not at all. Migrations applied
/// earlier in the same run stay committed, on a Durable Object as natively
/// (its constructor hook never fails the constructor, so workerd commits
/// them).
///
/// The `Display` text is one lowercase line: what happened, naming the file
/// and the database's message where there is one, then what to do.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrateError {
    /// A statement of a pending migration failed; that migration was rolled
    /// back.
    Statement {
        /// Version of the failing migration.
        version: u32,
        /// Its file name, e.g. `0003_add_email_index.sql`.
        file: &'static str,
        /// 1-based index of the failing statement within the file.
        statement: usize,
        /// 1-based line of the statement's first token in the file.
        line: u32,
        /// 1-based column of the statement's first token.
        column: u32,
        /// The database's message, e.g. `UNIQUE constraint failed: users.email`.
        message: String,
    },
    /// A migration left a foreign-key violation at its end (a deferred key,
    /// or a rebuilt table that lost a referenced row); it was rolled back.
    ForeignKey {
        /// Version of the migration.
        version: u32,
        /// Its file name.
        file: &'static str,
        /// The referencing (child) table.
        table: String,
        /// The rowid of the offending row (`None` for a WITHOUT ROWID table).
        rowid: Option<i64>,
        /// The referenced (parent) table.
        parent: String,
    },
    /// [`Schema::wake`](crate::Schema::wake) did not try: the same code
    /// failed at this version less than `retry_after` seconds ago. Nothing
    /// was executed.
    Deferred {
        /// The version that failed.
        version: u32,
        /// The recorded error of that attempt.
        error: String,
        /// How many attempts of this code failed so far.
        attempts: u32,
        /// Seconds until the next attempt.
        retry_in_secs: u32,
    },
    /// A run of [`Schema::wake`](crate::Schema::wake) started this migration
    /// and never finished: the process was killed, or the object was reset
    /// (past workerd's 30-second `blockConcurrencyWhile` gate, or its CPU
    /// limit). Its transaction was rolled back; the wake that finds the
    /// unfinished run reports it, records it as a failure, and executes
    /// nothing, so the same code tries again after `retry_after` seconds.
    Interrupted {
        /// Version of the migration that did not finish.
        version: u32,
        /// Its file name.
        file: &'static str,
        /// When that run started it (UTC ISO 8601, SQLite's clock).
        started_at: String,
    },
    /// A batched statement (`-- durable-schema: batch`) is being repeated
    /// and [`Schema::wake`](crate::Schema::wake) stopped between two
    /// repetitions once its budget (`budget_ms`) was spent: the repetitions
    /// so far are committed, this migration and the ones after it are
    /// pending, and the next run continues where this one stopped (on a
    /// Durable Object without a new request). Not a failure: nothing is
    /// recorded as failed and nothing waits for `retry_after`.
    InProgress {
        /// Version of the migration being applied.
        version: u32,
        /// Its file name.
        file: &'static str,
        /// 1-based index of the batched statement within the file.
        statement: usize,
        /// 1-based line of the statement's first token in the file.
        line: u32,
        /// 1-based column of the statement's first token.
        column: u32,
        /// Repetitions of the statement committed so far.
        repetitions: u64,
        /// Rows they changed (SQLite's `changes()`, summed).
        rows: u64,
    },
    /// The tracking table (the executor's or a hand-rolled one) is empty
    /// while the database holds user tables: re-applying every migration to
    /// data they already shaped is refused, and nothing is written.
    EmptyHistory {
        /// The tracking table.
        table: &'static str,
        /// One of the user tables found.
        user_table: String,
    },
    /// A hand-rolled tracking table records, for some versions, another
    /// migration than the code's (compared by description): it was not
    /// adopted and was left untouched.
    AdoptionMismatch {
        /// The tracking table.
        table: &'static str,
        /// Every version whose description differs.
        mismatches: Vec<Mismatch>,
    },
    /// drizzle's history (`__drizzle_migrations`) does not line up with the
    /// code's drizzle-kit journal: it was not adopted, nothing was written.
    LedgerMismatch {
        /// drizzle's table.
        table: &'static str,
        /// Recorded `created_at` values that match no journal `when`.
        unmatched: Vec<i64>,
        /// Versions below the highest recorded one that drizzle did not
        /// apply (it skips a file older than the newest it applied).
        missing: Vec<u32>,
    },
    /// A migration recorded as applied differs from the file in the code:
    /// it was edited (or replaced) after it ran. Nothing was applied.
    Edited {
        /// The first version whose recorded checksum chain differs.
        version: u32,
        /// Its file name.
        file: &'static str,
        /// The tracking table.
        table: &'static str,
    },
    /// The database records a version newer than the code knows and the
    /// schema is `strict`. Nothing was applied.
    Ahead {
        /// The highest version recorded in the database.
        db: u32,
        /// The highest version the code knows.
        code: u32,
    },
    /// The database is ahead of the code, and a newer migration breaks code
    /// of this version (it dropped, renamed or tightened something, as the
    /// build classified it): queries would fail one by one, so schema routes
    /// get this error instead (map it to a 503). Nothing was applied; status
    /// and export keep working, and deploying code at `version` or newer
    /// serves again.
    Incompatible {
        /// The highest version recorded in the database.
        db: u32,
        /// The highest version the code knows.
        code: u32,
        /// The newest recorded migration that breaks older code.
        version: u32,
        /// Its description, as its tracking row records it.
        migration: String,
        /// Its breaking and destructive findings, with their codes.
        findings: String,
    },
    /// Another migrator (another connection to the same database) recorded
    /// this version while this run was applying it. Nothing of this
    /// migration was applied by this run; running again finds it applied.
    Concurrent {
        /// The version recorded concurrently.
        version: u32,
        /// Its file name.
        file: &'static str,
        /// The tracking table.
        table: &'static str,
    },
    /// A table with the tracking table's name exists but has a shape the
    /// executor does not recognise (another tool's table). It was left
    /// untouched.
    ForeignTable {
        /// The tracking table name.
        table: &'static str,
        /// The columns found, in table order (empty for a view or index).
        columns: Vec<String>,
    },
    /// The tracking table's versions are not `1..=n` without gaps.
    Gap {
        /// The tracking table.
        table: &'static str,
        /// The first missing version.
        missing: u32,
    },
    /// The tracking table records a version the code does not know where it
    /// must know it: adopting a hand-rolled table (its checksums are filled
    /// from the code).
    UnknownVersion {
        /// The tracking table.
        table: &'static str,
        /// The recorded version.
        version: u32,
        /// The highest version the code knows.
        code: u32,
    },
    /// A tracking row holds something that cannot be a version (zero, a
    /// negative number, more than `u32::MAX`).
    InvalidRecord {
        /// The tracking table.
        table: &'static str,
        /// What was found.
        detail: String,
    },
    /// The database failed outside a migration's statements (reading or
    /// creating the tracking table, recording a version, committing).
    Backend {
        /// What the executor was doing, e.g. `reading table "migrations"`.
        context: String,
        /// The database's message.
        message: String,
    },
}

// Not derived: the derived `clone` is inlined into each caller, and a
// Worker clones an error in several places (the kept outcome, the report's
// copy, `sql`'s answer): one out-of-line copy instead of three.
impl Clone for MigrateError {
    #[inline(never)]
    fn clone(&self) -> Self {
        match self {
            Self::Statement {
                version,
                file,
                statement,
                line,
                column,
                message,
            } => Self::Statement {
                version: *version,
                file,
                statement: *statement,
                line: *line,
                column: *column,
                message: message.clone(),
            },
            Self::ForeignKey {
                version,
                file,
                table,
                rowid,
                parent,
            } => Self::ForeignKey {
                version: *version,
                file,
                table: table.clone(),
                rowid: *rowid,
                parent: parent.clone(),
            },
            Self::Deferred {
                version,
                error,
                attempts,
                retry_in_secs,
            } => Self::Deferred {
                version: *version,
                error: error.clone(),
                attempts: *attempts,
                retry_in_secs: *retry_in_secs,
            },
            Self::Interrupted {
                version,
                file,
                started_at,
            } => Self::Interrupted {
                version: *version,
                file,
                started_at: started_at.clone(),
            },
            Self::InProgress {
                version,
                file,
                statement,
                line,
                column,
                repetitions,
                rows,
            } => Self::InProgress {
                version: *version,
                file,
                statement: *statement,
                line: *line,
                column: *column,
                repetitions: *repetitions,
                rows: *rows,
            },
            Self::EmptyHistory { table, user_table } => Self::EmptyHistory {
                table,
                user_table: user_table.clone(),
            },
            Self::AdoptionMismatch { table, mismatches } => Self::AdoptionMismatch {
                table,
                mismatches: mismatches.clone(),
            },
            Self::LedgerMismatch {
                table,
                unmatched,
                missing,
            } => Self::LedgerMismatch {
                table,
                unmatched: unmatched.clone(),
                missing: missing.clone(),
            },
            Self::Edited {
                version,
                file,
                table,
            } => Self::Edited {
                version: *version,
                file,
                table,
            },
            Self::Ahead { db, code } => Self::Ahead {
                db: *db,
                code: *code,
            },
            Self::Incompatible {
                db,
                code,
                version,
                migration,
                findings,
            } => Self::Incompatible {
                db: *db,
                code: *code,
                version: *version,
                migration: migration.clone(),
                findings: findings.clone(),
            },
            Self::Concurrent {
                version,
                file,
                table,
            } => Self::Concurrent {
                version: *version,
                file,
                table,
            },
            Self::ForeignTable { table, columns } => Self::ForeignTable {
                table,
                columns: columns.clone(),
            },
            Self::Gap { table, missing } => Self::Gap {
                table,
                missing: *missing,
            },
            Self::UnknownVersion {
                table,
                version,
                code,
            } => Self::UnknownVersion {
                table,
                version: *version,
                code: *code,
            },
            Self::InvalidRecord { table, detail } => Self::InvalidRecord {
                table,
                detail: detail.clone(),
            },
            Self::Backend { context, message } => Self::Backend {
                context: context.clone(),
                message: message.clone(),
            },
        }
    }
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrateError::Statement {
                version,
                file,
                statement,
                line,
                column,
                message,
            } => write!(
                f,
                "migration {file} (version {version}) failed at statement {statement} \
                 ({file}:{line}:{column}): {message}; it was rolled back: fix the statement or \
                 the data it trips over, then deploy again"
            ),
            MigrateError::ForeignKey {
                version,
                file,
                table,
                rowid,
                parent,
            } => {
                let row = rowid.map_or_else(|| "a row".to_owned(), |r| format!("row {r}"));
                write!(
                    f,
                    "migration {file} (version {version}) left a broken reference: {row} of \
                     \"{table}\" points at a missing row of \"{parent}\"; it was rolled back: \
                     keep the referenced rows (or fix the references) in the migration"
                )
            }
            MigrateError::Deferred {
                version,
                error,
                attempts,
                retry_in_secs,
            } => write!(
                f,
                "schema not current: version {version} failed {attempts} time(s) with this code \
                 ({error}); next attempt in {retry_in_secs} s or with the next deploy"
            ),
            MigrateError::Interrupted {
                version,
                file,
                started_at,
            } => write!(
                f,
                "migration {file} (version {version}) was interrupted: a run started it at \
                 {started_at} and never finished (killed, or reset past a time limit); it was \
                 rolled back: make it shorter or split it into smaller migrations, then deploy again"
            ),
            MigrateError::InProgress {
                version,
                file,
                statement,
                line,
                column,
                repetitions,
                rows,
            } => write!(
                f,
                "schema not current yet: migration {file} (version {version}) is repeating its \
                 batched statement {statement} ({file}:{line}:{column}), {repetitions} \
                 repetition(s) changing {rows} row(s) so far; it continues on its own: retry shortly"
            ),
            MigrateError::EmptyHistory { table, user_table } => write!(
                f,
                "table \"{table}\" is empty but the database holds tables (\"{user_table}\"); \
                 nothing was applied: restore the tracking rows instead of re-running every migration"
            ),
            MigrateError::AdoptionMismatch { table, mismatches } => {
                write!(f, "table \"{table}\" records other migrations than the code (")?;
                for (i, m) in mismatches.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "version {}: \"{}\" vs {}", m.version, m.recorded, m.expected)?;
                }
                f.write_str("); it was not adopted: number the files to match what the table records")
            }
            MigrateError::LedgerMismatch {
                table,
                unmatched,
                missing,
            } => {
                write!(f, "table \"{table}\" does not match the code's journal (")?;
                // Written piece by piece: no list of strings to join.
                for (i, w) in unmatched.iter().enumerate() {
                    f.write_str(if i == 0 {
                        "entries matching no journal `when`: created_at "
                    } else {
                        ", created_at "
                    })?;
                    write!(f, "{w}")?;
                }
                for (i, v) in missing.iter().enumerate() {
                    f.write_str(match (i, unmatched.is_empty()) {
                        (0, true) => "skipped by drizzle: version ",
                        (0, false) => "; skipped by drizzle: version ",
                        _ => ", version ",
                    })?;
                    write!(f, "{v}")?;
                }
                f.write_str("); nothing was written: add the missing migrations in a new file, or restore the journal the objects were migrated with")
            }
            MigrateError::Edited {
                version,
                file,
                table,
            } => write!(
                f,
                "migration {file} (version {version}) differs from the one recorded in table \
                 \"{table}\"; nothing was applied: restore the released file and put the change \
                 in a new migration"
            ),
            MigrateError::Ahead { db, code } => write!(
                f,
                "database is at version {db}, ahead of the code's {code}, and `strict = true` \
                 refuses it; nothing was applied: deploy the newer code, or drop `strict`"
            ),
            MigrateError::Incompatible {
                db,
                code,
                version,
                migration,
                findings,
            } => write!(
                f,
                "database is at version {db}, and version {version} ({migration}) breaks code of \
                 version {code}: {findings}; nothing was applied: deploy code of version \
                 {version} or newer"
            ),
            MigrateError::Concurrent {
                version,
                file,
                table,
            } => write!(
                f,
                "version {version} ({file}) was recorded in table \"{table}\" by another \
                 migrator during this run; nothing of it was applied here: run again"
            ),
            MigrateError::ForeignTable { table, columns } => {
                write!(
                    f,
                    "table \"{table}\" is not a migration tracking table (columns: "
                )?;
                if columns.is_empty() {
                    f.write_str("none: not a table")?;
                }
                for (i, c) in columns.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(c)?;
                }
                f.write_str(
                    "); it was left untouched: choose another name with `table = \"...\"`",
                )
            }
            MigrateError::Gap { table, missing } => write!(
                f,
                "table \"{table}\" skips version {missing}; nothing was applied: restore the \
                 missing row"
            ),
            MigrateError::UnknownVersion {
                table,
                version,
                code,
            } => write!(
                f,
                "table \"{table}\" records version {version} but the code has migrations up to \
                 {code} only; nothing was applied: add the migrations that produced those versions"
            ),
            MigrateError::InvalidRecord { table, detail } => write!(
                f,
                "table \"{table}\" holds an invalid row ({detail}); nothing was applied: \
                 versions must be positive integers"
            ),
            MigrateError::Backend { context, message } => {
                write!(f, "database error while {context}: {message}")
            }
        }
    }
}

impl std::error::Error for MigrateError {}

impl MigrateError {
    /// A short, stable name of the variant (`statement`, `foreign_key`,
    /// `deferred`, `edited`, ...), for logs and for mapping to responses.
    pub fn kind(&self) -> &'static str {
        match self {
            MigrateError::Statement { .. } => "statement",
            MigrateError::ForeignKey { .. } => "foreign_key",
            MigrateError::Deferred { .. } => "deferred",
            MigrateError::Interrupted { .. } => "interrupted",
            MigrateError::InProgress { .. } => "in_progress",
            MigrateError::EmptyHistory { .. } => "empty_history",
            MigrateError::AdoptionMismatch { .. } => "adoption_mismatch",
            MigrateError::LedgerMismatch { .. } => "ledger_mismatch",
            MigrateError::Edited { .. } => "edited",
            MigrateError::Ahead { .. } => "ahead",
            MigrateError::Incompatible { .. } => "incompatible",
            MigrateError::Concurrent { .. } => "concurrent",
            MigrateError::ForeignTable { .. } => "foreign_table",
            MigrateError::Gap { .. } => "gap",
            MigrateError::UnknownVersion { .. } => "unknown_version",
            MigrateError::InvalidRecord { .. } => "invalid_record",
            MigrateError::Backend { .. } => "backend",
        }
    }

    /// The error as a JSON object: `kind`, `message` (the `Display` text)
    /// and the variant's location fields where it has them.
    pub fn to_json(&self) -> String {
        let mut o = Object::new();
        o.str("kind", self.kind());
        match self {
            MigrateError::Statement {
                version,
                file,
                statement,
                line,
                column,
                message,
            } => {
                o.uint("version", (*version).into());
                o.str("file", file);
                o.uint("statement", *statement as u64);
                o.uint("line", (*line).into());
                o.uint("column", (*column).into());
                o.str("sqlite", message);
            }
            MigrateError::ForeignKey {
                version,
                file,
                table,
                rowid,
                parent,
            } => {
                o.uint("version", (*version).into());
                o.str("file", file);
                o.str("table", table);
                match rowid {
                    Some(r) => o.int("rowid", *r),
                    None => o.key("rowid").push_str("null"),
                }
                o.str("parent", parent);
            }
            MigrateError::Deferred {
                version,
                attempts,
                retry_in_secs,
                ..
            } => {
                o.uint("version", (*version).into());
                o.uint("attempts", (*attempts).into());
                o.uint("retry_in_secs", (*retry_in_secs).into());
            }
            MigrateError::Interrupted {
                version,
                file,
                started_at,
            } => {
                o.uint("version", (*version).into());
                o.str("file", file);
                o.str("started_at", started_at);
            }
            MigrateError::InProgress {
                version,
                file,
                statement,
                line,
                column,
                repetitions,
                rows,
            } => {
                o.uint("version", (*version).into());
                o.str("file", file);
                o.uint("statement", *statement as u64);
                o.uint("line", (*line).into());
                o.uint("column", (*column).into());
                o.uint("repetitions", *repetitions);
                o.uint("rows", *rows);
            }
            MigrateError::LedgerMismatch {
                unmatched, missing, ..
            } => {
                let out = o.key("unmatched");
                out.push('[');
                for (i, w) in unmatched.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json::push_int(out, *w);
                }
                out.push(']');
                let out = o.key("missing");
                out.push('[');
                for (i, v) in missing.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json::push_uint(out, (*v).into());
                }
                out.push(']');
            }
            MigrateError::AdoptionMismatch { mismatches, .. } => {
                let out = o.key("mismatches");
                out.push('[');
                for (i, m) in mismatches.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let mut item = Object::new();
                    item.uint("version", m.version.into());
                    item.str("recorded", &m.recorded);
                    item.str("expected", m.expected);
                    out.push_str(&item.finish());
                }
                out.push(']');
            }
            MigrateError::Incompatible {
                db,
                code,
                version,
                migration,
                findings,
            } => {
                o.uint("version", (*version).into());
                o.uint("db", (*db).into());
                o.uint("code", (*code).into());
                o.str("migration", migration);
                o.str("findings", findings);
            }
            MigrateError::Edited { version, file, .. }
            | MigrateError::Concurrent { version, file, .. } => {
                o.uint("version", (*version).into());
                o.str("file", file);
            }
            _ => {}
        }
        o.str("message", &self.to_string());
        o.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant, each field set to something distinct.
    fn every_variant() -> Vec<MigrateError> {
        vec![
            MigrateError::Statement {
                version: 3,
                file: "0003_x.sql",
                statement: 2,
                line: 4,
                column: 12,
                message: "no such table: t".into(),
            },
            MigrateError::ForeignKey {
                version: 2,
                file: "0002_y.sql",
                table: "a".into(),
                rowid: Some(-7),
                parent: "b".into(),
            },
            MigrateError::Deferred {
                version: 5,
                error: "e".into(),
                attempts: 4,
                retry_in_secs: 30,
            },
            MigrateError::Interrupted {
                version: 6,
                file: "0006_z.sql",
                started_at: "2026-12-07 05:00:00".into(),
            },
            MigrateError::InProgress {
                version: 7,
                file: "0007_b.sql",
                statement: 1,
                line: 2,
                column: 3,
                repetitions: 4,
                rows: 5,
            },
            MigrateError::EmptyHistory {
                table: "migrations",
                user_table: "users".into(),
            },
            MigrateError::AdoptionMismatch {
                table: "migrations",
                mismatches: vec![Mismatch {
                    version: 1,
                    recorded: "init".into(),
                    expected: "0001_a.sql",
                }],
            },
            MigrateError::LedgerMismatch {
                table: "__drizzle_migrations",
                unmatched: vec![-1, 17],
                missing: vec![2, 3],
            },
            MigrateError::Edited {
                version: 8,
                file: "0008_c.sql",
                table: "migrations",
            },
            MigrateError::Ahead { db: 9, code: 4 },
            MigrateError::Incompatible {
                db: 10,
                code: 3,
                version: 5,
                migration: "0005_d.sql".into(),
                findings: "drops column \"x\"".into(),
            },
            MigrateError::Concurrent {
                version: 11,
                file: "0011_e.sql",
                table: "migrations",
            },
            MigrateError::ForeignTable {
                table: "migrations",
                columns: vec!["id".into(), "name".into()],
            },
            MigrateError::Gap {
                table: "migrations",
                missing: 12,
            },
            MigrateError::UnknownVersion {
                table: "migrations",
                version: 13,
                code: 2,
            },
            MigrateError::InvalidRecord {
                table: "migrations",
                detail: "version 0".into(),
            },
            MigrateError::Backend {
                context: "reading table \"migrations\"".into(),
                message: "disk I/O error".into(),
            },
        ]
    }

    /// The lists in `Display` (written piece by piece, no `join`): as
    /// before, separators only between items.
    #[test]
    fn display_writes_lists_between_separators() {
        let ledger = |unmatched: Vec<i64>, missing: Vec<u32>| {
            MigrateError::LedgerMismatch {
                table: "__drizzle_migrations",
                unmatched,
                missing,
            }
            .to_string()
        };
        let tail = "); nothing was written: add the missing migrations in a new file, or restore the journal the objects were migrated with";
        assert_eq!(
            ledger(vec![-1, 17], vec![2, 3]),
            format!("table \"__drizzle_migrations\" does not match the code's journal (entries matching no journal `when`: created_at -1, created_at 17; skipped by drizzle: version 2, version 3{tail}")
        );
        assert_eq!(
            ledger(vec![], vec![4]),
            format!("table \"__drizzle_migrations\" does not match the code's journal (skipped by drizzle: version 4{tail}")
        );
        assert_eq!(
            ledger(vec![5], vec![]),
            format!("table \"__drizzle_migrations\" does not match the code's journal (entries matching no journal `when`: created_at 5{tail}")
        );
        let foreign = |columns: &[&str]| {
            MigrateError::ForeignTable {
                table: "migrations",
                columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            }
            .to_string()
        };
        let tail = "); it was left untouched: choose another name with `table = \"...\"`";
        assert_eq!(
            foreign(&["id", "name"]),
            format!(
                "table \"migrations\" is not a migration tracking table (columns: id, name{tail}"
            )
        );
        assert_eq!(
            foreign(&[]),
            format!("table \"migrations\" is not a migration tracking table (columns: none: not a table{tail}")
        );
    }

    /// `Clone` is written by hand (one out-of-line copy in a Worker): every
    /// variant, every field comes through.
    #[test]
    fn clone_keeps_every_variant_and_field() {
        let all = every_variant();
        let kinds: std::collections::BTreeSet<&str> = all.iter().map(MigrateError::kind).collect();
        assert_eq!(kinds.len(), all.len(), "one value per variant");
        assert_eq!(all.len(), 17, "a new variant belongs in every_variant()");
        for e in &all {
            let copy = e.clone();
            assert_eq!(&copy, e);
            assert_eq!(format!("{copy:?}"), format!("{e:?}"));
        }
    }

    /// The JSON of each variant with fields, as the log line carries it.
    #[test]
    fn to_json_writes_each_variants_fields() {
        let cases = [
            (
                MigrateError::Statement {
                    version: 3,
                    file: "0003_x.sql",
                    statement: 2,
                    line: 4,
                    column: 12,
                    message: "no such table: \"t\"".into(),
                },
                r#"{"kind":"statement","version":3,"file":"0003_x.sql","statement":2,"line":4,"column":12,"sqlite":"no such table: \"t\"","message":"migration 0003_x.sql (version 3) failed at statement 2 (0003_x.sql:4:12): no such table: \"t\"; it was rolled back: fix the statement or the data it trips over, then deploy again"}"#,
            ),
            (
                MigrateError::ForeignKey {
                    version: 2,
                    file: "0002_y.sql",
                    table: "a".into(),
                    rowid: Some(-7),
                    parent: "b".into(),
                },
                r#"{"kind":"foreign_key","version":2,"file":"0002_y.sql","table":"a","rowid":-7,"parent":"b","message":"migration 0002_y.sql (version 2) left a broken reference: row -7 of \"a\" points at a missing row of \"b\"; it was rolled back: keep the referenced rows (or fix the references) in the migration"}"#,
            ),
            (
                MigrateError::ForeignKey {
                    version: 2,
                    file: "0002_y.sql",
                    table: "a".into(),
                    rowid: None,
                    parent: "b".into(),
                },
                r#"{"kind":"foreign_key","version":2,"file":"0002_y.sql","table":"a","rowid":null,"parent":"b","message":"migration 0002_y.sql (version 2) left a broken reference: a row of \"a\" points at a missing row of \"b\"; it was rolled back: keep the referenced rows (or fix the references) in the migration"}"#,
            ),
            (
                MigrateError::Deferred {
                    version: 5,
                    error: "e".into(),
                    attempts: 4294967295,
                    retry_in_secs: 0,
                },
                r#"{"kind":"deferred","version":5,"attempts":4294967295,"retry_in_secs":0,"message":"schema not current: version 5 failed 4294967295 time(s) with this code (e); next attempt in 0 s or with the next deploy"}"#,
            ),
            (
                MigrateError::AdoptionMismatch {
                    table: "migrations",
                    mismatches: vec![
                        Mismatch {
                            version: 1,
                            recorded: "a\nb".into(),
                            expected: "0001_a.sql",
                        },
                        Mismatch {
                            version: 2,
                            recorded: String::new(),
                            expected: "0002_b.sql",
                        },
                    ],
                },
                r#"{"kind":"adoption_mismatch","mismatches":[{"version":1,"recorded":"a\nb","expected":"0001_a.sql"},{"version":2,"recorded":"","expected":"0002_b.sql"}],"message":"table \"migrations\" records other migrations than the code (version 1: \"a\nb\" vs 0001_a.sql, version 2: \"\" vs 0002_b.sql); it was not adopted: number the files to match what the table records"}"#,
            ),
            (
                MigrateError::LedgerMismatch {
                    table: "__drizzle_migrations",
                    unmatched: vec![-1, 1700000000000],
                    missing: vec![],
                },
                r#"{"kind":"ledger_mismatch","unmatched":[-1,1700000000000],"missing":[],"message":"table \"__drizzle_migrations\" does not match the code's journal (entries matching no journal `when`: created_at -1, created_at 1700000000000); nothing was written: add the missing migrations in a new file, or restore the journal the objects were migrated with"}"#,
            ),
            (
                MigrateError::Concurrent {
                    version: 9,
                    file: "0009_z.sql",
                    table: "migrations",
                },
                r#"{"kind":"concurrent","version":9,"file":"0009_z.sql","message":"version 9 (0009_z.sql) was recorded in table \"migrations\" by another migrator during this run; nothing of it was applied here: run again"}"#,
            ),
            (
                MigrateError::InProgress {
                    version: 6,
                    file: "0006_backfill.sql",
                    statement: 2,
                    line: 4,
                    column: 1,
                    repetitions: 3,
                    rows: 2500,
                },
                r#"{"kind":"in_progress","version":6,"file":"0006_backfill.sql","statement":2,"line":4,"column":1,"repetitions":3,"rows":2500,"message":"schema not current yet: migration 0006_backfill.sql (version 6) is repeating its batched statement 2 (0006_backfill.sql:4:1), 3 repetition(s) changing 2500 row(s) so far; it continues on its own: retry shortly"}"#,
            ),
            (
                MigrateError::Gap {
                    table: "migrations",
                    missing: 2,
                },
                r#"{"kind":"gap","message":"table \"migrations\" skips version 2; nothing was applied: restore the missing row"}"#,
            ),
        ];
        for (error, json) in cases {
            assert_eq!(error.to_json(), json);
        }
    }
}
