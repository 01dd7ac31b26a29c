//! [`MigrateError`]: everything that stops a migration, each case with enough
//! context to act on it.

use std::fmt;

/// Why [`Schema::migrate_with`](crate::Schema::migrate_with) (or
/// `Schema::migrate`) did not bring the database to the code's version.
///
/// Every variant leaves the database in a whole version: a migration is
/// either committed with its tracking row or not at all. Migrations applied
/// earlier in the same run stay committed, with one exception: when the
/// Durable Object constructor hook fails, workerd resets the object and
/// discards the writes of the whole run (they were still behind the output
/// gate), so the database stays at the version it had before the run.
///
/// The `Display` text is lowercase, names the file and the database's
/// message where there is one, and says how to fix the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
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
                 ({file}:{line}:{column}): {message}; it was rolled back, so the database \
                 holds only whole migrations; fix the statement (or the data it trips over) \
                 and deploy again"
            ),
            MigrateError::Edited {
                version,
                file,
                table,
            } => write!(
                f,
                "migration {file} (version {version}) differs from the one recorded as applied \
                 in table \"{table}\": an applied migration must not be edited; restore the \
                 original file and put the change in a new migration; nothing was applied"
            ),
            MigrateError::Ahead { db, code } => write!(
                f,
                "database is at version {db} but the code only knows migrations up to version \
                 {code}, and `strict = true` refuses to run ahead of the code; deploy the code \
                 that has the newer migrations, or drop `strict` to tolerate it; nothing was applied"
            ),
            MigrateError::ForeignTable { table, columns } => {
                write!(
                    f,
                    "table \"{table}\" exists but is not a migration tracking table (columns: "
                )?;
                if columns.is_empty() {
                    f.write_str("none, it is not a table")?;
                } else {
                    f.write_str(&columns.join(", "))?;
                }
                write!(
                    f,
                    "); expected (version INTEGER PRIMARY KEY, applied_at, description[, \
                     checksum, chain]); choose another tracking table with `table = \"...\"` or \
                     rename that table; it was left untouched"
                )
            }
            MigrateError::Gap { table, missing } => write!(
                f,
                "table \"{table}\" skips version {missing}: recorded versions must run 1, 2, 3, \
                 ... without gaps; restore the missing row or fix the table by hand; nothing \
                 was applied"
            ),
            MigrateError::UnknownVersion {
                table,
                version,
                code,
            } => write!(
                f,
                "table \"{table}\" records version {version} but the code only has migrations up \
                 to version {code}, so it cannot be adopted; add the missing migration files \
                 (the SQL that produced those versions) to the code; nothing was applied"
            ),
            MigrateError::InvalidRecord { table, detail } => write!(
                f,
                "table \"{table}\" holds an invalid row ({detail}); versions must be positive \
                 integers; fix the table by hand; nothing was applied"
            ),
            MigrateError::Backend { context, message } => {
                write!(f, "database error while {context}: {message}")
            }
        }
    }
}

impl std::error::Error for MigrateError {}
