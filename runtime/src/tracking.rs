//! The tracking table's contract, in one place: its name rules, its columns,
//! every statement that reads or writes it, and how its shape is recognised.
//!
//! The executor runs these statements, the compile-time replay
//! (`durable-schema-compiler`) creates the table with [`create_table`] before
//! replaying the migrations, and the macro embeds [`head_query`] and checks
//! `table = "..."` with [`check_name`]. One definition, so what the build
//! checks and what runs on a Durable Object cannot drift apart.
//!
//! Not a user API: it is public for the compiler crate only.
//!
//! ```
//! use durable_schema_runtime::tracking;
//! assert_eq!(
//!     tracking::head_query("migrations"),
//!     r#"SELECT version, chain, breaks_below FROM "migrations" ORDER BY version DESC LIMIT 1"#
//! );
//! assert!(tracking::check_name("_cf_history").is_err());
//! ```

use std::fmt;

/// The tracking table's name unless `table = "..."` says otherwise.
pub const DEFAULT_TABLE: &str = "migrations";

/// The executor's own columns. `version` is the `INTEGER PRIMARY KEY`.
pub const OWN_COLUMNS: [&str; 5] = ["version", "applied_at", "description", "checksum", "chain"];

/// The columns that record what each migration does to older code: its
/// class (`additive`, `destructive` or `breaking`), its breaking and
/// destructive findings, and `breaks_below`, the highest breaking version up
/// to this row (0: none), so code at version `c` reads from the head row
/// alone whether any newer migration breaks it (`c < breaks_below`). Tables
/// written by durable-schema before they existed get them on the first run
/// of newer code ([`upgrade`]).
pub const CLASS_COLUMNS: [&str; 3] = ["class", "findings", "breaks_below"];

/// The hand-rolled three-column table many projects start with, which the
/// executor adopts by adding `checksum` and `chain`.
pub const LEGACY_COLUMNS: [&str; 3] = ["version", "applied_at", "description"];

/// Name prefixes a tracking table may not have: `_cf_` is reserved by
/// Cloudflare in a Durable Object's database, `sqlite_` by SQLite.
pub const RESERVED_PREFIXES: [&str; 2] = ["_cf_", "sqlite_"];

/// Why a tracking-table name is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// Not a plain identifier (letters, digits, `_`, not starting with a digit).
    NotPlain,
    /// Starts with a reserved prefix.
    Reserved(&'static str),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::NotPlain => f.write_str(
                "not a plain table name: use letters, digits and `_`, not starting with a digit",
            ),
            NameError::Reserved("_cf_") => {
                f.write_str("names starting with `_cf_` are reserved for Cloudflare's tables")
            }
            NameError::Reserved(prefix) => {
                write!(f, "names starting with `{prefix}` are reserved by SQLite")
            }
        }
    }
}

/// The reserved prefix `name` starts with (compared as SQLite compares
/// names): SQLite's (`sqlite_`) or Cloudflare's (`_cf_`) internal objects.
pub fn reserved_prefix(name: &str) -> Option<&'static str> {
    RESERVED_PREFIXES.into_iter().find(|prefix| {
        name.as_bytes()
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
    })
}

/// Checks a tracking-table name given in `table = "..."`.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plain {
        return Err(NameError::NotPlain);
    }
    match reserved_prefix(name) {
        Some(prefix) => Err(NameError::Reserved(prefix)),
        None => Ok(()),
    }
}

/// `parts` joined by `table` quoted as an SQL identifier:
/// `sql("t", &["SELECT * FROM ", ""])` is `SELECT * FROM "t"`.
fn sql(table: &str, parts: &[&str]) -> String {
    // The quoted name once, by splitting at `"` (the packed decoder's
    // `Split<char>`, already in every Worker), not char by char: decoding
    // and re-encoding each char was about 1 KB of wasm.
    let mut name = String::with_capacity(table.len() + 2);
    name.push('"');
    for (i, piece) in table.split('"').enumerate() {
        if i > 0 {
            name.push_str("\"\"");
        }
        name.push_str(piece);
    }
    name.push('"');
    let len =
        parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1) * name.len();
    let mut out = String::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(&name);
        }
        out.push_str(part);
    }
    out
}

/// The timestamp the executor records, computed by SQLite (so the runtime
/// needs no clock): UTC ISO 8601 with milliseconds.
///
/// A macro, so the statements that embed it are literals (`concat!`), not
/// `format!` calls: each call site was formatting code in every Worker.
macro_rules! now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
    };
}

/// The column definitions of [`PROGRESS_COLUMNS`], in order.
macro_rules! progress_defs {
    () => {
        "progress_chain TEXT, statement INTEGER, repetitions INTEGER, \
         changed INTEGER, unfinished INTEGER, cursor INTEGER"
    };
}

/// `CREATE TABLE` of a fresh tracking table.
pub fn create_table(table: &str) -> String {
    sql(
        table,
        &[
            "CREATE TABLE ",
            concat!(
                " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (",
                now!(),
                "), \
                 description TEXT NOT NULL, checksum TEXT, chain TEXT, \
                 class TEXT, findings TEXT, breaks_below INTEGER)"
            ),
        ],
    )
}

/// The up-to-date check: the highest version, its chain value and its
/// `breaks_below` (see [`CLASS_COLUMNS`]). `version` is the rowid, so SQLite
/// reads exactly one row.
pub fn head_query(table: &str) -> String {
    sql(
        table,
        &[
            "SELECT version, chain, breaks_below FROM ",
            " ORDER BY version DESC LIMIT 1",
        ],
    )
}

/// Records a migration: `?1` version, `?2` description, `?3` checksum, `?4`
/// chain, `?5` class, `?6` findings, `?7` breaks_below. `applied_at` is set
/// explicitly: an adopted hand-rolled table has no default for it.
pub fn insert(table: &str) -> String {
    sql(
        table,
        &[
            "INSERT INTO ",
            concat!(" (version, applied_at, description, checksum, chain, class, findings, breaks_below) \
                 VALUES (?1, ", now!(), ", ?2, ?3, ?4, ?5, ?6, ?7)"),
        ],
    )
}

/// The newer migration that breaks older code, once the head row's
/// `breaks_below` named it: version `?1`'s description and findings.
pub fn breaking_row(table: &str) -> String {
    sql(
        table,
        &["SELECT description, findings FROM ", " WHERE version = ?1"],
    )
}

/// Code at version `?1` over a database a newer breaking migration is
/// recorded in: the code's own row (its chain, which must match) and every
/// newer row classified `breaking` or not classified at all (written
/// before classes, left so by code that did not know its version), with
/// description, findings and class, in order.
pub fn breaking_after(table: &str) -> String {
    sql(
        table,
        &[
            "SELECT version, description, findings, chain, class FROM ",
            " WHERE version = ?1 OR (version > ?1 AND (class = 'breaking' OR class IS NULL)) \
             ORDER BY version",
        ],
    )
}

/// Upgrading a table of the executor's shape written before
/// [`CLASS_COLUMNS`] existed: the statements that add them, before its
/// rows are classified with [`classify_row`].
pub fn upgrade(table: &str) -> [String; 3] {
    // Spelled out, not `CLASS_COLUMNS.map(..)` with a `format!` per column:
    // literals, and no closure instantiation in every Worker.
    [
        sql(table, &["ALTER TABLE ", " ADD COLUMN class TEXT"]),
        sql(table, &["ALTER TABLE ", " ADD COLUMN findings TEXT"]),
        sql(table, &["ALTER TABLE ", " ADD COLUMN breaks_below INTEGER"]),
    ]
}

/// Classifies the row of version `?4` when it records checksum `?5`: `?1`
/// class, `?2` findings, `?3` breaks_below. A row of another text (an
/// edited history, which the run then refuses) is left unclassified.
pub fn classify_row(table: &str) -> String {
    sql(
        table,
        &[
            "UPDATE ",
            " SET class = ?1, findings = ?2, breaks_below = ?3 WHERE version = ?4 AND checksum = ?5",
        ],
    )
}

/// The chain value recorded for version `?1`: a row exactly when that
/// version is recorded (also the check that a batched migration's phase is
/// not committed over a migration another migrator applied meanwhile).
pub fn chain_at(table: &str) -> String {
    sql(table, &["SELECT chain FROM ", " WHERE version = ?1"])
}

/// Version, checksum and chain of every row up to version `?1`, in order.
pub fn history_upto(table: &str) -> String {
    sql(
        table,
        &[
            "SELECT version, checksum, chain FROM ",
            " WHERE version <= ?1 ORDER BY version",
        ],
    )
}

/// The table drizzle-orm's Durable Object migrator records its history in.
pub const DRIZZLE_TABLE: &str = "__drizzle_migrations";

/// drizzle's history: each applied entry's `created_at` (its journal
/// `when`, milliseconds), in order. drizzle declares `id SERIAL PRIMARY KEY`,
/// which in SQLite is no rowid alias (ids stay NULL), so only `created_at`
/// identifies an entry.
pub const DRIZZLE_HISTORY_QUERY: &str =
    "SELECT CAST(created_at AS INTEGER) FROM \"__drizzle_migrations\" ORDER BY 1";

/// Records a migration another tool applied: `?1` version, `?2` when it
/// was applied (milliseconds since the epoch), `?3` description, `?4`
/// checksum, `?5` chain, `?6` class, `?7` findings, `?8` breaks_below.
pub fn insert_adopted(table: &str) -> String {
    sql(
        table,
        &[
            "INSERT INTO ",
            " (version, applied_at, description, checksum, chain, class, findings, breaks_below) \
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', ?2 / 1000.0, 'unixepoch'), ?3, ?4, ?5, ?6, ?7, ?8)",
        ],
    )
}

/// Version and description of every row, in order (adopting a legacy table).
pub fn adoption_rows(table: &str) -> String {
    sql(
        table,
        &["SELECT version, description FROM ", " ORDER BY version"],
    )
}

/// The foreign-key check of one table at risk after a migration: one row
/// per violation (`table, rowid, parent, fkid`). workerd allows
/// `foreign_key_check` with a table name.
pub fn foreign_key_check(table: &str) -> String {
    sql(table, &["PRAGMA foreign_key_check(", ")"])
}

/// Ends deferral after a migration's foreign-key checks, so it does not
/// carry over to the next migration of the run (on a Durable Object the
/// pragma lasts until workerd's own commit).
pub const DEFER_OFF: &str = "PRAGMA defer_foreign_keys = OFF";

/// Every row as `version, description, applied_at, checksum, chain, class,
/// breaks_below, findings`; a legacy table has NULL for the last five, a
/// table not upgraded yet ([`Shape::Unclassified`]) for the last three.
pub fn rows(table: &str, shape: &Shape) -> String {
    let columns = match shape {
        Shape::Legacy => {
            "SELECT version, description, applied_at, NULL, NULL, NULL, NULL, NULL FROM "
        }
        Shape::Unclassified => {
            "SELECT version, description, applied_at, checksum, chain, NULL, NULL, NULL FROM "
        }
        _ => {
            "SELECT version, description, applied_at, checksum, chain, class, breaks_below, \
              findings FROM "
        }
    };
    sql(table, &[columns, " ORDER BY version"])
}

/// Adoption: the statements that turn a legacy table into the executor's,
/// before its rows are filled with [`fill_row`].
pub fn adopt(table: &str) -> [String; 5] {
    let [class, findings, breaks_below] = upgrade(table);
    [
        sql(table, &["ALTER TABLE ", " ADD COLUMN checksum TEXT"]),
        sql(table, &["ALTER TABLE ", " ADD COLUMN chain TEXT"]),
        class,
        findings,
        breaks_below,
    ]
}

/// Adoption: sets `?1` checksum, `?2` chain, `?4` class, `?5` findings and
/// `?6` breaks_below on version `?3`.
pub fn fill_row(table: &str) -> String {
    sql(
        table,
        &[
            "UPDATE ",
            " SET checksum = ?1, chain = ?2, class = ?4, findings = ?5, breaks_below = ?6 \
             WHERE version = ?3",
        ],
    )
}

/// The failure record's table, `<table>_failure`: at most one row, the last
/// failed attempt of [`Schema::wake`](crate::Schema::wake) (which code, which
/// version, the error, when, how often). Old code ignores it; migrations may
/// not touch it, like the tracking table.
pub fn failure_table(table: &str) -> String {
    // Pushed, not `format!`ed: it is built for each statement on the table.
    let mut name = String::with_capacity(table.len() + 8);
    name.push_str(table);
    name.push_str("_failure");
    name
}

/// Whether `name` is one of the tables durable-schema owns next to user
/// tables when the tracking table is `table`: the tracking table itself and
/// its failure record (compared as SQLite compares names).
pub fn owns(table: &str, name: &str) -> bool {
    name.eq_ignore_ascii_case(table) || name.eq_ignore_ascii_case(&failure_table(table))
}

/// Creates the failure record's table if needed.
pub fn create_failure_table(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "CREATE TABLE IF NOT EXISTS ",
            concat!(
                " (id INTEGER PRIMARY KEY CHECK (id = 1), chain TEXT NOT NULL, \
                 version INTEGER NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, \
                 attempted_at TEXT NOT NULL DEFAULT (",
                now!(),
                "), ",
                progress_defs!(),
                ")"
            ),
        ],
    )
}

/// The failure record's columns that record a batched migration's progress
/// (see `migrate::batch`): `progress_chain`, the chain value of the
/// migration partly applied (NULL: no progress); `statement`, the 0-based
/// index of its first statement not committed yet; `repetitions` and
/// `changed`, what the batch at `statement` did so far (SQLite's `changes()`
/// of each repetition, summed); `unfinished`, how many runs started on the
/// current phase without ending it (0 after a run stopped cleanly between
/// repetitions); `cursor`, the last rowid a range batch's committed slices
/// reached (NULL before its first slice). Tables written before they
/// existed get them on the first run that applies a batch, `cursor` also
/// on a run that resumes one ([`upgrade_failure`]).
pub const PROGRESS_COLUMNS: [&str; 6] = [
    "progress_chain",
    "statement",
    "repetitions",
    "changed",
    "unfinished",
    "cursor",
];

/// The 0-based position of `cursor` among the failure table's columns (its
/// `*`): the last of [`PROGRESS_COLUMNS`], after the six columns of the
/// record, in a table created with it and in one [`upgrade_failure`]
/// brought to it (columns are added at the end, in that order). A table of
/// the release before range batches has one column fewer, so a reader of
/// `*` finds no value there instead of failing.
pub const CURSOR_POSITION: usize = 11;

/// Upgrading a failure table written before [`PROGRESS_COLUMNS`]: the
/// statement adding `column` (one of them).
pub fn upgrade_failure(table: &str, column: &str) -> String {
    let kind = if column == "progress_chain" {
        "TEXT"
    } else {
        "INTEGER"
    };
    sql(
        &failure_table(table),
        &["ALTER TABLE ", &format!(" ADD COLUMN {column} {kind}")],
    )
}

/// A batched migration's progress: `version`, `attempts`, `chain` (the
/// code's head chain that wrote the row), the first five
/// [`PROGRESS_COLUMNS`], then every column (`*`), where `cursor` is at
/// [`CURSOR_POSITION`] when the table has it: a table written by the
/// release before range batches, half-way through a plain batch, still
/// answers. Fails on a table without the first five (never upgraded: no
/// progress).
pub fn read_progress(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "SELECT version, attempts, chain, progress_chain, statement, repetitions, changed, \
             unfinished, * FROM ",
            " WHERE id = 1 AND progress_chain IS NOT NULL",
        ],
    )
}

/// Records that a batched migration's statements before index `?5` are
/// committed and the batch at `?5` starts: `?1` the code's head chain, `?2`
/// version, `?3` the text the record shows, `?4` the migration's chain
/// value. Creates the row (`attempts` 0: progress without a started record,
/// under `migrate`) or keeps its failure columns. A range batch starts with
/// no cursor.
pub fn record_progress(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "INSERT INTO ",
            concat!(
                " (id, chain, version, error, attempts, attempted_at, progress_chain, statement, \
                 repetitions, changed, unfinished, cursor) VALUES (1, ?1, ?2, ?3, 0, ",
                now!(),
                ", ?4, ?5, 0, 0, 1, NULL) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
                 progress_chain = excluded.progress_chain, statement = excluded.statement, \
                 repetitions = 0, changed = 0, unfinished = 1, cursor = NULL"
            ),
        ],
    )
}

/// After one repetition of the batch at the recorded `statement`, in its
/// transaction: counts it with the rows it changed, SQLite's `changes()` of
/// the batch statement that ran just before (the statement's own rows, not
/// the index entries or trigger rows a storage engine counts), and moves
/// `statement` to `?1` when it changed none (the batch is done; when `?2`
/// says the statement at `?1` is a batch too, the counts restart: they are
/// that batch's from then on).
pub fn repeated(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "UPDATE ",
            " SET repetitions = CASE WHEN changes() = 0 AND ?2 THEN 0 ELSE repetitions + 1 END, \
             changed = CASE WHEN changes() = 0 AND ?2 THEN 0 ELSE changed + changes() END, \
             statement = CASE WHEN changes() = 0 THEN ?1 ELSE statement END, unfinished = 1 \
             WHERE id = 1",
        ],
    )
}

/// After one slice of the range batch at the recorded `statement`, in its
/// transaction: counts the repetition with the rows the statement changed
/// (`changes()`, when `?4` says it ran: an empty slice runs nothing, and
/// `changes()` would then be an older statement's), stores the cursor `?2`
/// (the slice's last rowid; unchanged when NULL), and moves `statement` to
/// `?1` when `?3` is 1: the slice had fewer rows than the limit, so the
/// batch is done in this same transaction. Done, the cursor is cleared (a
/// range batch right after starts from its table's first row) and, when
/// `?5` says the statement at `?1` is a batch too, so are the counts: they
/// are that batch's from then on.
pub fn sliced(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "UPDATE ",
            " SET repetitions = CASE WHEN ?3 AND ?5 THEN 0 ELSE repetitions + 1 END, \
             changed = CASE WHEN ?3 AND ?5 THEN 0 \
             ELSE changed + CASE WHEN ?4 THEN changes() ELSE 0 END END, \
             cursor = CASE WHEN ?3 THEN NULL ELSE coalesce(?2, cursor) END, \
             statement = CASE WHEN ?3 THEN ?1 ELSE statement END, unfinished = 1 WHERE id = 1",
        ],
    )
}

/// The next slice of a range batch over `table` (see
/// [`Statement::batch_over`](crate::Statement::batch_over)): the next
/// `limit` rows in rowid order, after the cursor `?1` when `after` (not on
/// the first slice). One row of three values: the slice's first rowid (NULL
/// when no row is left), its last (the `limit`-th rowid, or the table's
/// greatest when fewer are left) and 1 when it is full (`limit` rows, so
/// more may follow; 0 on the last slice). The executor binds the bounds to
/// the statement's `:from` and `:to`, and the compile-time replay slices
/// the same way with the same text.
///
/// Searches on the rowid b-tree, never reading a row before the cursor,
/// and only skips over the slice's rows (`OFFSET`) rather than aggregating
/// them: the `min`/`max`/`count(*)` of a `LIMIT` subquery it replaced cost
/// about 30% of the backfill itself (benches/RESULTS.md, "Range batches").
pub fn slice(table: &str, limit: u32, after: bool) -> String {
    let filter = if after { " WHERE rowid > ?1" } else { "" };
    sql(
        table,
        &[
            "SELECT (SELECT rowid FROM ",
            &format!("{filter} ORDER BY rowid LIMIT 1), coalesce(nth, (SELECT max(rowid) FROM "),
            ")), nth IS NOT NULL FROM (SELECT (SELECT rowid FROM ",
            &format!(
                "{filter} ORDER BY rowid LIMIT 1 OFFSET {}) AS nth)",
                limit.saturating_sub(1)
            ),
        ],
    )
}

/// The check that opens each transaction of a batched migration: a row
/// when the progress recorded for version `?4` is not `?1` (chain), `?2`
/// (statement), `?3` (repetitions): another migrator committed a phase
/// meanwhile. With `?1` NULL (the run expects no progress), a row when
/// there is any; otherwise also when there is none, since the migrator
/// that applied the whole migration cleared it with its last phase.
pub fn progress_differs(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "SELECT 1 WHERE CASE WHEN ?1 IS NULL THEN EXISTS (SELECT 1 FROM ",
            " WHERE id = 1 AND version = ?4 AND progress_chain IS NOT NULL) \
             ELSE NOT EXISTS (SELECT 1 FROM ",
            " WHERE id = 1 AND version = ?4 AND progress_chain = ?1 AND statement IS ?2 \
             AND repetitions IS ?3) END",
        ],
    )
}

/// Sets `unfinished` to `?1`: 0 when a run stops cleanly between two
/// repetitions, the next count when a run resumes the recorded phase.
pub fn mark_unfinished(table: &str) -> String {
    sql(
        &failure_table(table),
        &["UPDATE ", " SET unfinished = ?1 WHERE id = 1"],
    )
}

/// Ends a batched migration's progress, in its last transaction: clears the
/// progress columns (the started record, if a run keeps one, moves on).
pub fn clear_progress(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "UPDATE ",
            " SET progress_chain = NULL, statement = NULL, repetitions = NULL, changed = NULL, \
             unfinished = NULL, cursor = NULL WHERE id = 1",
        ],
    )
}

/// Ends a batched migration's row under a run that keeps no started record
/// (`migrate`), in its last transaction: the progress alone (`attempts` 0)
/// or the started record of a run this one completed; a failure record
/// stays.
pub fn drop_progress(table: &str) -> String {
    sql(
        &failure_table(table),
        &["DELETE FROM ", " WHERE id = 1 AND attempts <= 0"],
    )
}

/// The failure record: `chain` (the code's head chain value when it failed),
/// `version`, `error`, `attempts`, the whole seconds since the attempt
/// (SQLite's clock, so the runtime needs none), and `attempted_at` (for
/// `Schema::status`; the executor reads the first five), then every column
/// of the row (`*`): from index 12 the [`PROGRESS_COLUMNS`] of a table that
/// has them (`cursor` at 6 + [`CURSOR_POSITION`] when it has that one), so
/// a run reads a batch's progress with the same query, and an older table
/// still answers it.
pub fn read_failure(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "SELECT chain, version, error, attempts, \
             CAST((julianday('now') - julianday(attempted_at)) * 86400 AS INTEGER), \
             attempted_at, * FROM ",
            " WHERE id = 1",
        ],
    )
}

/// The time `?1` (as the executor records it) plus `?2` seconds, in the same
/// format: when the next attempt after a failure is allowed. Computed by
/// SQLite, like every timestamp here, so the runtime needs no clock.
pub const LATER_QUERY: &str =
    "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1, '+' || CAST(?2 AS INTEGER) || ' seconds')";

/// Records a failed attempt: `?1` chain, `?2` version, `?3` error. The
/// attempt count restarts when the code (its chain) changes; a started
/// record of the same code (negative `attempts`, see [`record_start`])
/// already counted this attempt.
pub fn record_failure(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "INSERT INTO ",
            concat!(
                " (id, chain, version, error, attempts, attempted_at) \
                 VALUES (1, ?1, ?2, ?3, 1, ",
                now!(),
                ") ON CONFLICT (id) DO UPDATE SET \
                 attempts = CASE WHEN chain = excluded.chain \
                 THEN abs(attempts) + (attempts > 0) ELSE 1 END, \
                 chain = excluded.chain, version = excluded.version, error = excluded.error, \
                 attempted_at = excluded.attempted_at"
            ),
        ],
    )
}

/// Records that a run of [`Schema::wake`](crate::Schema::wake) starts
/// migration `?2` (`?1` chain, `?3` the text the record shows until the run
/// ends): the failure record's row with a negative `attempts`, minus the
/// attempt's number (the previous attempts of the same code plus one). A
/// failure replaces it, a success deletes it; a wake that finds it reports
/// the run as interrupted.
pub fn record_start(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "INSERT INTO ",
            concat!(" (id, chain, version, error, attempts, attempted_at) \
                 VALUES (1, ?1, ?2, ?3, -1, ", now!(), ") ON CONFLICT (id) DO UPDATE SET \
                 attempts = CASE WHEN chain = excluded.chain THEN -(abs(attempts) + 1) ELSE -1 END, \
                 chain = excluded.chain, version = excluded.version, error = excluded.error, \
                 attempted_at = excluded.attempted_at"),
        ],
    )
}

/// Moves the started record to the run's next migration, `?1` (version),
/// `?2` (its text), in the transaction of the one before.
pub fn advance_start(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "UPDATE ",
            concat!(
                " SET version = ?1, error = ?2, attempted_at = ",
                now!(),
                " WHERE id = 1"
            ),
        ],
    )
}

/// Turns a started record into the failure record of an interrupted run,
/// `?1` its error: the attempt was counted when it started.
pub fn record_interrupted(table: &str) -> String {
    sql(
        &failure_table(table),
        &[
            "UPDATE ",
            " SET attempts = -attempts, error = ?1 WHERE id = 1 AND attempts < 0",
        ],
    )
}

/// Clears the failure record once the schema is current.
pub fn clear_failure(table: &str) -> String {
    sql(&failure_table(table), &["DELETE FROM ", ""])
}

/// The user tables of the database: anything but the tracking table, its
/// failure record, SQLite's and Cloudflare's internal tables. `?1` is the
/// tracking table, `?2` the failure table.
pub const USER_TABLES_QUERY: &str = "SELECT name FROM sqlite_master WHERE type = 'table' \
     AND name <> ?1 COLLATE NOCASE AND name <> ?2 COLLATE NOCASE \
     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' LIMIT 1";

/// Any user object (table, index, view or trigger) of the database: an
/// empty one (nothing but the tracking table, its failure record, SQLite's
/// and Cloudflare's internal tables) gets the baseline. `?1` is the tracking
/// table, `?2` the failure table.
pub const ANY_OBJECT_QUERY: &str = "SELECT name FROM sqlite_master \
     WHERE name <> ?1 COLLATE NOCASE AND name <> ?2 COLLATE NOCASE \
     AND tbl_name <> ?1 COLLATE NOCASE AND tbl_name <> ?2 COLLATE NOCASE \
     AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' LIMIT 1";

/// What kind of object holds the name `?1` (SQLite compares names
/// case-insensitively, so this does too). Triggers live in a namespace of
/// their own: a trigger named like the table says nothing about it.
pub const KIND_QUERY: &str =
    "SELECT type FROM sqlite_master WHERE name = ?1 COLLATE NOCASE AND type <> 'trigger'";

/// The columns of table `?1` with their primary-key position. A Durable
/// Object allows `pragma_table_info` when it is given a name.
pub const COLUMNS_QUERY: &str = "SELECT name, pk FROM pragma_table_info(?1)";

/// What exists under the tracking table's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Nothing: a fresh database.
    Missing,
    /// The executor's table (extra columns tolerated: it names what it writes).
    Own,
    /// The executor's table as durable-schema wrote it before
    /// [`CLASS_COLUMNS`]: the first run of newer code upgrades it in place.
    Unclassified,
    /// The hand-rolled `(version, applied_at, description)` table, exactly.
    Legacy,
    /// Anything else (another tool's table, a view), with its columns.
    Foreign(Vec<String>),
}

impl Shape {
    /// Classifies what [`KIND_QUERY`] and [`COLUMNS_QUERY`] found: the
    /// object's type (`None` when nothing has the name) and each column
    /// with whether it is the primary key.
    ///
    /// `version` must be the primary key: the up-to-date check relies on it
    /// being the rowid (one-row read, unique versions). A legacy table is
    /// recognised only in its exact shape, since adoption alters it.
    pub fn classify(kind: Option<&str>, columns: Vec<(String, bool)>) -> Shape {
        let Some(kind) = kind else {
            return Shape::Missing;
        };
        let version_is_pk = columns
            .iter()
            .any(|(name, pk)| *pk && name.eq_ignore_ascii_case("version"));
        let names: Vec<String> = columns.into_iter().map(|(name, _)| name).collect();
        if kind != "table" || !version_is_pk {
            Shape::Foreign(names)
        } else if has_columns(&names, &OWN_COLUMNS) && has_columns(&names, &CLASS_COLUMNS) {
            Shape::Own
        } else if has_columns(&names, &OWN_COLUMNS) {
            Shape::Unclassified
        } else if names.len() == LEGACY_COLUMNS.len() && has_columns(&names, &LEGACY_COLUMNS) {
            Shape::Legacy
        } else {
            Shape::Foreign(names)
        }
    }
}

/// Whether `found` includes every column of `expected`, ignoring ASCII case.
fn has_columns(found: &[String], expected: &[&str]) -> bool {
    expected
        .iter()
        .all(|e| found.iter().any(|f| f.eq_ignore_ascii_case(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `upgrade` spells the class columns out: the same columns, in order,
    /// `breaks_below` an integer and the others text.
    #[test]
    fn upgrade_adds_the_class_columns_in_order() {
        let statements = upgrade("t");
        for (sql, column) in statements.iter().zip(CLASS_COLUMNS) {
            let kind = if column == "breaks_below" {
                "INTEGER"
            } else {
                "TEXT"
            };
            assert_eq!(
                *sql,
                format!("ALTER TABLE \"t\" ADD COLUMN {column} {kind}")
            );
        }
    }

    fn columns(names: &[&str], pk: &str) -> Vec<(String, bool)> {
        names.iter().map(|n| (n.to_string(), *n == pk)).collect()
    }

    #[test]
    fn table_name_is_quoted_as_an_identifier() {
        assert_eq!(
            sql("we\"ird name", &["SELECT * FROM ", " WHERE ", " = 1"]),
            "SELECT * FROM \"we\"\"ird name\" WHERE \"we\"\"ird name\" = 1"
        );
        assert_eq!(sql("t", &["no table"]), "no table");
        assert_eq!(
            head_query("m"),
            "SELECT version, chain, breaks_below FROM \"m\" ORDER BY version DESC LIMIT 1"
        );
    }

    #[test]
    fn names() {
        assert_eq!(check_name("migrations"), Ok(()));
        assert_eq!(check_name("_schema_v2"), Ok(()));
        for bad in ["", "2x", "a-b", "a b", "\"q\"", "é"] {
            assert_eq!(check_name(bad), Err(NameError::NotPlain), "{bad}");
        }
        assert_eq!(check_name("_CF_x"), Err(NameError::Reserved("_cf_")));
        assert_eq!(check_name("SQLite_x"), Err(NameError::Reserved("sqlite_")));
    }

    #[test]
    fn shapes() {
        assert_eq!(Shape::classify(None, vec![]), Shape::Missing);
        let unclassified = columns(&OWN_COLUMNS, "version");
        assert_eq!(
            Shape::classify(Some("table"), unclassified.clone()),
            Shape::Unclassified
        );
        let mut own = unclassified;
        own.extend(CLASS_COLUMNS.map(|c| (c.to_owned(), false)));
        assert_eq!(Shape::classify(Some("table"), own.clone()), Shape::Own);
        let mut extra = own;
        extra.push(("note".into(), false));
        assert_eq!(Shape::classify(Some("table"), extra), Shape::Own);
        // Order and case do not matter for the legacy shape; exactness does.
        let legacy = columns(&["Description", "VERSION", "applied_at"], "VERSION");
        assert_eq!(
            Shape::classify(Some("table"), legacy.clone()),
            Shape::Legacy
        );
        let mut wider = legacy.clone();
        wider.push(("x".into(), false));
        assert!(matches!(
            Shape::classify(Some("table"), wider),
            Shape::Foreign(_)
        ));
        // `version` not the primary key, or a view: foreign.
        let no_pk = columns(&LEGACY_COLUMNS, "");
        assert!(matches!(
            Shape::classify(Some("table"), no_pk),
            Shape::Foreign(_)
        ));
        assert_eq!(
            Shape::classify(Some("view"), legacy),
            Shape::Foreign(vec![
                "Description".into(),
                "VERSION".into(),
                "applied_at".into()
            ])
        );
    }
}
