//! [`MigrateError`]: everything that stops a migration, each case with enough
//! context to act on it.

use std::fmt;

/// Why [`Schema::migrate`](crate::Schema::migrate) did not bring the
/// database to the code's version.
///
/// Every variant leaves the database in a whole version: a migration is
/// either committed with its tracking row or not at all. Migrations applied
/// earlier in the same run stay committed, with one exception: when the
/// Durable Object constructor hook fails, workerd resets the object and
/// discards the writes of the whole run (they were still behind the output
/// gate), so the database stays at the version it had before the run.
///
/// The `Display` text is one lowercase line: what happened, naming the file
/// and the database's message where there is one, then what to do.
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
                let columns = if columns.is_empty() {
                    "none: not a table".to_owned()
                } else {
                    columns.join(", ")
                };
                write!(
                    f,
                    "table \"{table}\" is not a migration tracking table (columns: {columns}); \
                     it was left untouched: choose another name with `table = \"...\"`"
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
