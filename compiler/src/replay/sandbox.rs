//! The replay database: an in-memory SQLite configured like a Durable
//! Object's by [`durable_schema_workerd::configure_with`] (the one definition the
//! facade's `testing` database shares), plus what only the replay needs:
//! the tracking table protected, what each migration drops, writes and
//! defers, and a step budget per statement.
//!
//! It knows nothing of migrations: it runs one statement at a time and says
//! what SQLite and the authorizer made of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::hooks::{AuthAction, AuthContext};
use rusqlite::{Connection, OptionalExtension};

use super::compat::RowWrite;
use durable_schema_workerd::ClockedConnection;

use crate::tracking;
use durable_schema_workerd::{rules, Authorizer, Denial};
pub(crate) use durable_schema_workerd::{MAX_COLUMNS, MAX_STATEMENT_BYTES};

/// Virtual-machine steps one statement may take during the replay (checked
/// every [`PROGRESS_STEP`] steps). The replay runs inside rustc and
/// rust-analyzer on every expansion, so a runaway statement (a recursive CTE
/// without a bound) must end with an error, not hang the build. Real schema
/// statements on the replay's empty tables use a tiny fraction of this.
pub(crate) const MAX_REPLAY_STEPS: u64 = 100_000_000;
const PROGRESS_STEP: i32 = 10_000;

/// Pragmas whose argument changes nothing beyond the migration's
/// transaction: `foreign_keys` is a no-op inside one, `defer_foreign_keys`
/// resets when it ends, the others read the schema (their argument names a
/// table or index) or write only the database (`optimize`). Any other
/// pragma given a value (an allowed one sets the connection, like
/// `recursive_triggers`) keeps the replay from being resumed from an image
/// (see [`Replayer::image`]).
const LOCAL_PRAGMAS: &[&str] = &[
    "foreign_keys",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "optimize",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Whether `text` may call a function whose result comes from the
/// connection's history rather than the database (`changes()`,
/// `total_changes()`, `last_insert_rowid()`, `PRAGMA data_version`): a
/// replay resumed from an image on a new connection could see other values
/// than the full replay, so a directory with any such text is always
/// replayed in full. Deliberately coarse: a `changes` followed, past
/// quotes, spaces and comments' first character, by `(`, `/` or `-`.
pub(crate) fn reads_connection_history(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if lower.contains("last_insert_rowid") || lower.contains("data_version") {
        return true;
    }
    lower.match_indices("changes").any(|(at, word)| {
        lower[at + word.len()..]
            .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '"' | '`' | ']' | '\''))
            .starts_with(['(', '/', '-'])
    })
}

/// Whether `failure` is SQLite's interrupt: the statement ran out of the
/// replay's step budget ([`MAX_REPLAY_STEPS`]).
pub(crate) fn interrupted(failure: &Failure) -> bool {
    matches!(
        &failure.error,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::OperationInterrupted
    )
}

/// What the authorizer allowed that the replay follows, shared with its
/// callback.
#[derive(Default)]
struct AuthState {
    /// The current migration ran `PRAGMA foreign_keys = OFF`, which does
    /// nothing inside its transaction.
    foreign_keys_off: bool,
    /// Tables the statement being prepared drops.
    drops: Vec<String>,
    /// What the current migration did that bears on foreign keys.
    keys: KeyEffects,
    /// A migration set a pragma that lasts beyond its transaction (see
    /// [`Replayer::image`]); never reset.
    lasting_pragma: bool,
    /// Functions the statement being run calls (its triggers' too) whose
    /// result a build cannot reproduce (see [`NOT_REPRODUCIBLE`]).
    unreproducible: Vec<String>,
    /// Tables the statement being run inserts into (its triggers' too):
    /// their defaults fill the columns the insert leaves out, and SQLite
    /// does not show the authorizer the functions a default calls.
    inserts: Vec<String>,
    /// The schema listing the statement being run reads (its triggers' and
    /// views' too; see [`SCHEMA_LISTINGS`]) before SQLite's own rewrite of
    /// `sqlite_schema` begins, by its canonical name.
    schema_read: Option<&'static str>,
    /// The statement being run updated or deleted rows of `sqlite_schema`:
    /// SQLite's own code for a `CREATE`, `ALTER` or `DROP`, whose reads of
    /// the schema that follow copy nothing into rows.
    schema_rewritten: bool,
    /// The statement being run writes rows of a table of the user's
    /// (directly, through a trigger, or as `CREATE TABLE … AS SELECT`).
    writes_rows: bool,
    /// The statement being run creates a table, and selects.
    creates_table: bool,
    /// Rows of user tables the statement being run deletes or updates (its
    /// triggers' too), for the classification (see `compat`).
    row_writes: Vec<RowWrite>,
    selects: bool,
    /// The user tables that existed when the current migration began,
    /// lower case: what a statement may have to scan on a real object.
    existing: Vec<String>,
    /// What the statement being run does to tables (see [`Touch`]), in
    /// the authorizer's order.
    touches: Vec<(Touch, String)>,
    /// The statement being run, itself (not a trigger it fires), inserts,
    /// updates or deletes rows of a user table.
    writes_itself: bool,
    /// The statement being run, itself, does something else than read and
    /// write rows: it creates, drops or alters, sets a pragma, ... (see
    /// [`Replayer::is_data_statement`]).
    does_more: bool,
}

/// What a statement does to a table, as the authorizer reports it: what
/// [`Replayer::cost`] needs to tell a statement that works through existing
/// rows from one that only changes the schema.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Touch {
    Reads,
    Updates,
    Deletes,
    Indexes,
    Alters,
}

/// Functions whose result a build cannot reproduce on a Durable Object:
/// randomness, and the SQLite library's own identity. A migration that
/// calls one while writing rows leaves data a compile-time baseline cannot
/// hold (see `crate::baseline`). Lower case, as SQLite names functions to
/// the authorizer.
pub(crate) const NOT_REPRODUCIBLE: &[&str] =
    &["random", "randomblob", "sqlite_version", "sqlite_source_id"];

/// The date and time functions: any of them may read the clock (`'now'`,
/// or no argument). What a migration writes with one the baseline
/// reproduces by reading the clock when it runs, once the replay at a
/// second instant showed which values came from it (see
/// `crate::baseline`). Lower case, as SQLite names functions to the
/// authorizer.
pub(crate) const CLOCK: &[&str] = &[
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
];

/// Functions whose result comes from the connection's history, not the
/// database, that the replay cannot mirror: `total_changes()` counts every
/// write since workerd opened the database, whatever the object did before.
/// (`last_insert_rowid()` and `changes()` are mirrored: the executor writes
/// a migration's tracking row before its statements, so they are the
/// migration's version and 1 until its own first write, and the replay
/// writes the same row first; see [`Replayer::begin_migration`].) A
/// migration that calls one while writing rows leaves data a baseline
/// cannot hold. Lower case, as SQLite names functions to the authorizer.
pub(crate) const CONNECTION_HISTORY: &[&str] = &["total_changes"];

/// What lists the database's tables, workerd's own `_cf_` tables included
/// on a Durable Object (which the replay does not have), as the authorizer
/// names it when a statement reads it, and the name to show for it.
const SCHEMA_LISTINGS: &[(&str, &str)] = &[
    ("sqlite_master", "sqlite_schema"),
    ("sqlite_schema", "sqlite_schema"),
    ("sqlite_temp_master", "sqlite_temp_schema"),
    ("sqlite_temp_schema", "sqlite_temp_schema"),
    ("pragma_table_list", "pragma_table_list"),
];

/// Whether a call of `function` (lower case) leaves rows a build cannot
/// reproduce ([`NOT_REPRODUCIBLE`] and [`CONNECTION_HISTORY`]: `Some((name,
/// false))`) or may read the clock ([`CLOCK`]: `Some((name, true))`).
fn unreproducible_function(function: &str) -> Option<(&'static str, bool)> {
    let hard = NOT_REPRODUCIBLE.iter().chain(CONNECTION_HISTORY);
    hard.map(|f| (*f, false))
        .chain(CLOCK.iter().map(|f| (*f, true)))
        .find(|(f, _)| *f == function)
}

/// The first function of [`NOT_REPRODUCIBLE`], [`CONNECTION_HISTORY`] or
/// [`CLOCK`] that the SQL expression `expr` (a column's default) calls or
/// names (`CURRENT_TIMESTAMP` is a keyword, not a call), and whether it is
/// a clock's.
pub(crate) fn unreproducible_in(expr: &str) -> Option<(&'static str, bool)> {
    let lower = expr.to_ascii_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find_map(unreproducible_function)
}

/// What a statement did that the baseline cannot simply copy: the first
/// thing a build cannot reproduce at all, and the first value it may have
/// read from the clock, each in words.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Reproduction {
    /// A call of `random()`, `total_changes()`, ..., rows copied from the
    /// schema's listing, or an insert taking such a default.
    pub(crate) unreproducible: Option<String>,
    /// A call of a date and time function, or an insert taking a default
    /// that calls one.
    pub(crate) clock: Option<String>,
}

/// What a migration did that can leave a foreign-key violation SQLite
/// only reports at the outermost commit (on a Durable Object: workerd's,
/// after the run).
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyEffects {
    /// Tables it wrote, created, altered, dropped or renamed.
    pub(crate) touched: Vec<String>,
    /// It switched `defer_foreign_keys` on.
    pub(crate) deferred: bool,
    /// It dropped or altered (renamed) a table.
    pub(crate) reshaped: bool,
}

impl KeyEffects {
    fn touch(&mut self, table: &str) {
        if !self.touched.iter().any(|t| t.eq_ignore_ascii_case(table)) {
            self.touched.push(table.to_owned());
        }
    }

    /// Whether `table` was touched.
    pub(crate) fn touches(&self, table: &str) -> bool {
        self.touched.iter().any(|t| t.eq_ignore_ascii_case(table))
    }
}

/// Why a statement failed.
#[derive(Debug)]
pub(crate) struct Failure {
    /// SQLite's error.
    pub(crate) error: rusqlite::Error,
    /// The authorizer's denial, when that is the cause.
    pub(crate) denial: Option<Denial>,
}

/// An in-memory database that behaves like a Durable Object's SQLite.
pub(crate) struct Replayer {
    /// The database, on a clock that stands at the replay's instant.
    conn: ClockedConnection,
    /// workerd's rules (and the tracking table's protection).
    rules: Authorizer,
    /// What the allowed actions of the current migration did.
    auth: Arc<Mutex<AuthState>>,
    /// Progress-handler calls during the current statement.
    progress: Arc<AtomicU64>,
    /// Every user statement handed to SQLite, for tests.
    #[cfg(test)]
    pub(crate) executed: std::cell::RefCell<Vec<String>>,
}

fn lock(auth: &Mutex<AuthState>) -> MutexGuard<'_, AuthState> {
    // A poisoned lock only means an earlier callback panicked; the state is
    // plain data and stays meaningful.
    auth.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Replayer {
    /// Opens the in-memory database, its clock standing at the current
    /// time. `tracking` is the tracking table name, which migrations may
    /// not touch.
    pub(crate) fn new(tracking: &str) -> Result<Self, String> {
        Self::at(tracking, durable_schema_workerd::unix_ms_now())
    }

    /// [`Replayer::new`] with the clock standing at `unix_ms` (milliseconds
    /// since the Unix epoch): every statement of the replay reads the same
    /// instant, so a second replay at another instant shows which values
    /// came from the clock (see `crate::baseline`).
    pub(crate) fn at(tracking: &str, unix_ms: i64) -> Result<Self, String> {
        let conn = ClockedConnection::open_in_memory(unix_ms).map_err(|e| e.to_string())?;
        let auth = Arc::new(Mutex::new(AuthState::default()));
        let hook_state = Arc::clone(&auth);
        let observe = move |ctx: &AuthContext<'_>| {
            let mut state = lock(&hook_state);
            if ctx.accessor.is_none() {
                // What the statement does itself, as SQLite tells it (a
                // trigger's or view's actions name their accessor).
                match ctx.action {
                    AuthAction::Insert { table_name }
                    | AuthAction::Update { table_name, .. }
                    | AuthAction::Delete { table_name }
                        if tracking::reserved_prefix(table_name).is_none() =>
                    {
                        state.writes_itself = true;
                    }
                    AuthAction::Read { .. }
                    | AuthAction::Select
                    | AuthAction::Function { .. }
                    | AuthAction::Recursive => {}
                    _ => state.does_more = true,
                }
            }
            if let AuthAction::Pragma {
                pragma_name,
                pragma_value,
            } = ctx.action
            {
                if rules::turns_foreign_keys_off(pragma_name, pragma_value) {
                    state.foreign_keys_off = true;
                }
                if pragma_value.is_some() && !LOCAL_PRAGMAS.contains(&pragma_name) {
                    state.lasting_pragma = true;
                }
            }
            match ctx.action {
                AuthAction::Function { function_name } => {
                    let name = function_name.to_ascii_lowercase();
                    if unreproducible_function(&name).is_some()
                        && !state.unreproducible.contains(&name)
                    {
                        state.unreproducible.push(name);
                    }
                }
                AuthAction::Read { table_name, .. } if !state.schema_rewritten => {
                    state.touches.push((Touch::Reads, table_name.to_owned()));
                    if let Some((_, shown)) = SCHEMA_LISTINGS
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(table_name))
                    {
                        state.schema_read.get_or_insert(shown);
                    }
                }
                AuthAction::Select => state.selects = true,
                AuthAction::CreateIndex { table_name, .. } => {
                    state.touches.push((Touch::Indexes, table_name.to_owned()));
                }
                AuthAction::Insert { table_name } => {
                    state.keys.touch(table_name);
                    // Not SQLite's own tables (`CREATE` inserts into
                    // `sqlite_master`): they have no defaults.
                    let internal = tracking::reserved_prefix(table_name).is_some();
                    state.writes_rows |= !internal;
                    if !internal
                        && !state
                            .inserts
                            .iter()
                            .any(|t| t.eq_ignore_ascii_case(table_name))
                    {
                        state.inserts.push(table_name.to_owned());
                    }
                }
                AuthAction::DropTable { table_name } => {
                    state.drops.push(table_name.to_owned());
                    state.keys.touch(table_name);
                    state.keys.reshaped = true;
                }
                AuthAction::AlterTable { table_name, .. } => {
                    state.touches.push((Touch::Alters, table_name.to_owned()));
                    state.keys.touch(table_name);
                    state.keys.reshaped = true;
                }
                AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name } => {
                    let touch = if matches!(ctx.action, AuthAction::Update { .. }) {
                        Touch::Updates
                    } else {
                        Touch::Deletes
                    };
                    state.touches.push((touch, table_name.to_owned()));
                    state.keys.touch(table_name);
                    if tracking::reserved_prefix(table_name).is_none() {
                        state.writes_rows = true;
                        let column = match ctx.action {
                            AuthAction::Update { column_name, .. } => Some(column_name.to_owned()),
                            _ => None,
                        };
                        let write = RowWrite {
                            table: table_name.to_owned(),
                            column,
                        };
                        if !state.row_writes.contains(&write) {
                            state.row_writes.push(write);
                        }
                    } else if SCHEMA_LISTINGS
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(table_name))
                    {
                        state.schema_rewritten = true;
                    }
                }
                AuthAction::CreateTable { table_name } => {
                    state.keys.touch(table_name);
                    state.creates_table = true;
                }
                AuthAction::Pragma {
                    pragma_name: "defer_foreign_keys",
                    pragma_value: Some(value),
                } if rules::is_true(value) => state.keys.deferred = true,
                _ => {}
            }
        };
        let rules = durable_schema_workerd::configure_with(&conn, Some(tracking), observe)
            .map_err(|e| format!("cannot configure the replay database: {e}"))?;
        let progress = Arc::new(AtomicU64::new(0));
        let ticks = Arc::clone(&progress);
        let budget = MAX_REPLAY_STEPS / u64::try_from(PROGRESS_STEP).unwrap_or(1);
        conn.progress_handler(
            PROGRESS_STEP,
            Some(move || ticks.fetch_add(1, Ordering::Relaxed) >= budget),
        )
        .map_err(|e| e.to_string())?;
        let replayer = Self {
            conn,
            rules,
            auth,
            progress,
            #[cfg(test)]
            executed: std::cell::RefCell::default(),
        };
        // The tracking table exists on every real database before a
        // migration runs, so a migration that writes to it or creates it
        // again is refused by the authorizer, as it would be in production.
        replayer
            .trusted(&durable_schema_runtime::tracking::create_table(tracking))
            .map_err(|e| format!("cannot create the tracking table in the replay database: {e}"))?;
        Ok(replayer)
    }

    /// The database's image (`sqlite3_serialize`), between migrations: the
    /// verdict cache stores it so a later check resumes from it. `None`
    /// when the replay so far left state outside the database that a
    /// resumed replay would not have: a pragma set to a value that lasts
    /// beyond the transaction (`recursive_triggers`, `legacy_alter_table`,
    /// `case_sensitive_like`, ...; `foreign_keys` does nothing inside one
    /// and `defer_foreign_keys` ends with it).
    pub(crate) fn image(&self) -> Option<Vec<u8>> {
        if self.in_transaction() || lock(&self.auth).lasting_pragma {
            return None;
        }
        // SQLite reads the pages through `sqlite_dbpage`, which the
        // authorizer would refuse.
        self.as_trusted(|| {
            let data = self.conn.serialize(rusqlite::MAIN_DB).ok()?;
            Some(data.to_vec())
        })
    }

    /// A replay database configured as [`Replayer::new`] does (limits,
    /// authorizer, math functions, progress handler: all the connection's,
    /// not the file's) whose database is `image`, a database
    /// [`Replayer::image`] took between migrations (the tracking table is
    /// in it). An image SQLite refuses, or without the tracking table, is
    /// an error.
    pub(crate) fn resume(tracking: &str, image: &[u8], unix_ms: i64) -> Result<Self, String> {
        let mut replayer = Self::at(tracking, unix_ms)?;
        // SQLite reopens `main` with an `ATTACH`, which the authorizer would
        // refuse.
        let rules = replayer.rules.clone();
        rules
            .trusted(|| {
                replayer
                    .conn
                    .deserialize_read_exact(rusqlite::MAIN_DB, image, image.len(), false)
            })
            .map_err(|e| format!("cannot load the replay image: {e}"))?;
        let tables: i64 = replayer
            .read(|conn| {
                conn.query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [tracking],
                    |r| r.get(0),
                )
            })
            .map_err(|e| format!("cannot read the replay image: {e}"))?;
        let foreign_keys: i64 = replayer
            .read(|conn| conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)))
            .map_err(|e| e.to_string())?;
        if tables != 1 || foreign_keys != 1 || replayer.in_transaction() {
            return Err("the replay image is not a replay database".to_owned());
        }
        Ok(replayer)
    }

    /// The instant the replay's clock stands at, in milliseconds since the
    /// Unix epoch.
    pub(crate) fn clock(&self) -> i64 {
        self.conn.clock()
    }

    /// Runs `f` with the authorizer standing aside, like workerd's own
    /// internal queries (our BEGIN/COMMIT, schema inspection).
    fn as_trusted<T>(&self, f: impl FnOnce() -> T) -> T {
        self.rules.trusted(f)
    }

    /// Runs our own SQL (BEGIN, COMMIT, ROLLBACK), past the authorizer.
    pub(crate) fn trusted(&self, sql: &str) -> rusqlite::Result<()> {
        self.as_trusted(|| self.conn.execute_batch(sql))
    }

    /// Reads the database past the authorizer (schema inspection).
    pub(crate) fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.as_trusted(|| query(&self.conn))
    }

    /// Starts migration `version`: opens its transaction, forgets what the
    /// previous one asked for, and writes its row in the tracking table
    /// `tracking` first, as the executor does, so that the connection's
    /// history is the same as on a real object: `last_insert_rowid()` is
    /// `version` and `changes()` is 1 until the migration's own first write
    /// (see [`CONNECTION_HISTORY`]).
    pub(crate) fn begin_migration(&self, tracking: &str, version: u32) -> rusqlite::Result<()> {
        let existing = self.read(|conn| {
            let mut stmt =
                conn.prepare("SELECT lower(name) FROM sqlite_master WHERE type = 'table'")?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            names.collect::<rusqlite::Result<Vec<String>>>()
        })?;
        {
            let mut state = lock(&self.auth);
            state.foreign_keys_off = false;
            state.keys = KeyEffects::default();
            state.existing = existing
                .into_iter()
                .filter(|t| {
                    tracking::reserved_prefix(t).is_none() && !t.eq_ignore_ascii_case(tracking)
                })
                .collect();
        }
        self.trusted("BEGIN")?;
        self.as_trusted(|| {
            self.conn.execute(
                &durable_schema_runtime::tracking::insert(tracking),
                rusqlite::params![version, "", "", "", "additive", None::<String>, 0],
            )
        })?;
        Ok(())
    }

    /// Starts a transaction that is no migration (the baseline's).
    pub(crate) fn begin(&self) -> rusqlite::Result<()> {
        self.trusted("BEGIN")
    }

    /// Notes a table the current migration touched that the authorizer
    /// does not name (the new name of `ALTER TABLE … RENAME TO`).
    pub(crate) fn touch(&self, table: &str) {
        lock(&self.auth).keys.touch(table);
    }

    /// What the current migration did that bears on foreign keys.
    pub(crate) fn key_effects(&self) -> KeyEffects {
        lock(&self.auth).keys.clone()
    }

    /// Whether the current migration ran `PRAGMA foreign_keys = OFF`.
    pub(crate) fn asked_foreign_keys_off(&self) -> bool {
        lock(&self.auth).foreign_keys_off
    }

    /// What the statement just run, `sql`, did that a build cannot
    /// reproduce, in words: the first function of [`NOT_REPRODUCIBLE`] or
    /// [`CONNECTION_HISTORY`] it (or a trigger it fired) calls; rows it
    /// writes (or creates with `CREATE TABLE … AS SELECT`) while it reads
    /// what lists the tables ([`SCHEMA_LISTINGS`]), which on a Durable
    /// Object holds workerd's `_cf_` tables too (SQLite's own reads of
    /// `sqlite_schema` for a `CREATE`, `ALTER` or `DROP` copy nothing into
    /// rows and do not count); or an insert into a table whose column
    /// defaults to one of those functions, unless the statement itself names
    /// that column (or every column) for that table. And apart, what may
    /// have read the clock: the first function of [`CLOCK`] it calls, or an
    /// insert taking a default that calls one. Coarse on purpose:
    /// `date('2020-01-01')` counts, and so does a trigger's insert; the cost
    /// of a false positive is only a second replay (for the clock) or that
    /// new objects run the whole chain.
    pub(crate) fn unreproducible(&self, sql: &str) -> Reproduction {
        let (functions, inserts, listing) = {
            let state = lock(&self.auth);
            let copies = state.writes_rows || (state.creates_table && state.selects);
            (
                state.unreproducible.clone(),
                state.inserts.clone(),
                state.schema_read.filter(|_| copies),
            )
        };
        let call = |clock: bool| {
            functions
                .iter()
                .find(|f| unreproducible_function(f).is_some_and(|(_, c)| c == clock))
                .map(|f| format!("calls `{f}()`"))
        };
        let mut found = Reproduction {
            unreproducible: call(false).or_else(|| {
                listing.map(|listing| format!("writes rows that depend on `{listing}`"))
            }),
            clock: call(true),
        };
        for clock in [false, true] {
            let slot = if clock {
                &mut found.clock
            } else {
                &mut found.unreproducible
            };
            if slot.is_none() {
                *slot = self.default_taken(sql, &inserts, clock);
            }
        }
        found
    }

    /// An insert of `sql` (or of a trigger it fired) into one of `inserts`
    /// that leaves out a column whose default calls a function of
    /// [`NOT_REPRODUCIBLE`] or [`CONNECTION_HISTORY`] (`clock` false) or of
    /// [`CLOCK`] (`clock` true), in words.
    fn default_taken(&self, sql: &str, inserts: &[String], clock: bool) -> Option<String> {
        inserts.iter().find_map(|table| {
            let defaults: Vec<(String, String)> = self
                .read(|conn| {
                    let mut stmt = conn.prepare(
                        "SELECT name, dflt_value FROM pragma_table_xinfo(?1) WHERE dflt_value IS NOT NULL",
                    )?;
                    let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
                .unwrap_or_default();
            // The statement is parsed only for a table with such a default:
            // the columns it names, when it is an insert into that table.
            let mut given = None;
            defaults.iter().find_map(|(column, default)| {
                let f = unreproducible_in(default)
                    .filter(|(_, c)| *c == clock)
                    .map(|(f, _)| f)?;
                let given = given.get_or_insert_with(|| {
                    super::sqlparser_hint::insert_columns(sql)
                        .filter(|(target, _)| target.eq_ignore_ascii_case(table))
                        .map(|(_, columns)| columns)
                });
                let provided = match given {
                    Some(None) => true,
                    Some(Some(columns)) => columns.iter().any(|c| c.eq_ignore_ascii_case(column)),
                    None => false,
                };
                (!provided).then(|| {
                    format!("inserts into `{table}`, whose column `{column}` defaults to `{f}`")
                })
            })
        })
    }

    /// The rows of user tables the statement just run deleted or updated.
    pub(crate) fn row_writes(&self) -> Vec<RowWrite> {
        lock(&self.auth).row_writes.clone()
    }

    /// What the statement just run, `sql`, does to the rows of a table that
    /// existed before its migration, in words: on a real object it works
    /// through every row there is (or every row it matches), so its time
    /// grows with the object's data, which the replay (empty tables) cannot
    /// see. An `UPDATE` or `DELETE` of such a table, an insert (or a
    /// `CREATE TABLE … AS SELECT`) reading one (the copy of a table
    /// rebuild), a `CREATE INDEX` on one, an `ALTER TABLE … DROP COLUMN`
    /// (which rewrites every row), an `ADD COLUMN` with a `CHECK` or a
    /// generated `NOT NULL` column (tested on every row). Through triggers
    /// too. `None` for the rest, e.g. a plain `ADD COLUMN` or a new table's
    /// rows.
    ///
    /// With the words, the table whose rows a batch could split the work
    /// by, when it can: an update, a delete or a copy of existing rows (not
    /// an index build or a `DROP COLUMN`, which SQLite does in one go).
    pub(crate) fn cost(&self, sql: &str) -> Option<(String, Option<String>)> {
        // SQLite reports a `DROP TABLE` as a delete of its rows, but frees
        // the pages without reading them.
        if super::textual::drops_table(sql) {
            return None;
        }
        let state = lock(&self.auth);
        let existed = |t: &str| state.existing.iter().any(|e| e.eq_ignore_ascii_case(t));
        let first = |touch: Touch| {
            state
                .touches
                .iter()
                .find(|(k, t)| *k == touch && existed(t))
                .map(|(_, t)| t.as_str())
        };
        if let Some(t) = first(Touch::Indexes) {
            return Some((format!("builds an index over every row of `{t}`"), None));
        }
        if let Some(t) = first(Touch::Updates) {
            let what = format!("rewrites the rows of `{t}` it matches");
            return Some((what, Some(t.to_owned())));
        }
        if let Some(t) = first(Touch::Deletes) {
            let what = format!("deletes the rows of `{t}` it matches");
            return Some((what, Some(t.to_owned())));
        }
        if state.writes_rows || state.creates_table {
            if let Some(t) = first(Touch::Reads) {
                let what = format!("copies or reads the rows of `{t}`");
                return Some((what, Some(t.to_owned())));
            }
        }
        if let Some(t) = first(Touch::Alters) {
            if super::textual::drops_column(sql) {
                return Some((format!("rewrites every row of `{t}` (`DROP COLUMN`)"), None));
            }
            if super::textual::adds_checked_column(sql) {
                return Some((
                    format!("checks every row of `{t}` against the new column's constraint"),
                    None,
                ));
            }
        }
        None
    }

    /// Whether the migration's transaction is still open (SQLite rolls it
    /// back by itself on an interrupt, `INSERT OR ROLLBACK`, `RAISE(ROLLBACK)`).
    pub(crate) fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs one user statement to completion and returns the tables it
    /// dropped. `judge_drop` sees each table the statement drops once it is
    /// prepared, before it runs: the replay database has no rows, so what
    /// the drop would do to a real one must be read from the schema, and a
    /// denial stops the statement. On failure returns SQLite's error and
    /// the authorizer's denial if there was one.
    pub(crate) fn run(
        &self,
        sql: &str,
        judge_drop: impl FnMut(&str) -> Option<Denial>,
    ) -> Result<Vec<String>, Failure> {
        self.run_bound(sql, &[], judge_drop)
    }

    /// [`run`](Self::run) with `params` bound to the statement's
    /// parameters 1, 2, … (a range batch's slice bounds; NULL for `None`).
    pub(crate) fn run_bound(
        &self,
        sql: &str,
        params: &[Option<i64>],
        judge_drop: impl FnMut(&str) -> Option<Denial>,
    ) -> Result<Vec<String>, Failure> {
        self.progress.store(0, Ordering::Relaxed);
        self.run_on_budget(sql, params, judge_drop)
    }

    /// The names of the parameters of `sql`, by index (`None` for a `?`),
    /// or `None` when it does not prepare (running it reports why).
    pub(crate) fn parameters(&self, sql: &str) -> Option<Vec<Option<String>>> {
        let stmt = self.conn.prepare(sql).ok()?;
        Some(
            (1..=stmt.parameter_count())
                .map(|i| stmt.parameter_name(i).map(str::to_owned))
                .collect(),
        )
    }

    /// What table `name` is right now, for a range batch: `None` when
    /// nothing of that name exists, else its type (`table`, `view`,
    /// `virtual`, …), whether it is `WITHOUT ROWID`, and whether it has a
    /// column named `rowid` (which hides the rowid).
    pub(crate) fn table_shape(&self, name: &str) -> rusqlite::Result<Option<(String, bool, bool)>> {
        self.read(|conn| {
            let found: Option<(String, bool)> = conn
                .query_row(
                    "SELECT type, wr FROM pragma_table_list(?1) WHERE schema = 'main'",
                    [name],
                    |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)),
                )
                .optional()?;
            let Some((kind, without_rowid)) = found else {
                return Ok(None);
            };
            let rowid_column: bool = conn.query_row(
                "SELECT count(*) > 0 FROM pragma_table_xinfo(?1) WHERE name = 'rowid' COLLATE NOCASE",
                [name],
                |r| r.get(0),
            )?;
            Ok(Some((kind, without_rowid, rowid_column)))
        })
    }

    /// The next slice of a range batch over `table`, as the executor reads
    /// it (the runtime's `tracking::slice`, the one text): the first and
    /// last rowid of the next `limit` rows after `cursor` (`None` when no
    /// row is left), and whether all `limit` were there.
    pub(crate) fn slice(
        &self,
        table: &str,
        limit: u32,
        cursor: Option<i64>,
    ) -> rusqlite::Result<(Option<i64>, Option<i64>, bool)> {
        let sql = durable_schema_runtime::tracking::slice(table, limit, cursor.is_some());
        self.read(|conn| {
            conn.query_row(&sql, rusqlite::params_from_iter(cursor), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? == 1))
            })
        })
    }

    /// Whether the statement just run is a data statement: SQLite's
    /// authorizer saw it (not a trigger it fired) insert, update or delete
    /// rows of a user table, and do nothing but read besides. So an
    /// `INSERT`, `REPLACE`, `UPDATE` or `DELETE`, behind a `WITH` or not;
    /// not a `SELECT`, a `CREATE … AS SELECT`, a `DROP`, a pragma. Only
    /// after such a statement does `changes()` count its rows.
    pub(crate) fn is_data_statement(&self) -> bool {
        let state = lock(&self.auth);
        state.writes_itself && !state.does_more
    }

    /// The rows the last data statement inserted, updated or deleted
    /// (`changes()`; a trigger's rows do not count).
    pub(crate) fn changes(&self) -> u64 {
        self.conn.changes()
    }

    /// Runs the batch statement `sql` (a data statement that just ran) once
    /// more, in a savepoint of its own as the executor gives each
    /// repetition a transaction of its own, and returns the rows it
    /// changed. The step budget is not renewed: the repetitions of one
    /// batch share the budget of one statement, so a batch that never ends
    /// cannot hold a build for 10,000 statements' worth of steps.
    pub(crate) fn repeat(&self, sql: &str) -> Result<u64, Failure> {
        self.repeat_bound(sql, &[])
    }

    /// [`repeat`](Self::repeat) with `params` bound, as
    /// [`run_bound`](Self::run_bound) binds them: one slice of a range batch.
    pub(crate) fn repeat_bound(&self, sql: &str, params: &[Option<i64>]) -> Result<u64, Failure> {
        let savepoint = |sql: &str| {
            self.trusted(sql).map_err(|error| Failure {
                error,
                denial: None,
            })
        };
        savepoint("SAVEPOINT durable_schema_batch")?;
        self.run_on_budget(sql, params, |_| None)?;
        let changed = self.changes();
        // SQLite may have rolled the whole transaction back (`RAISE(ROLLBACK)`
        // in a trigger), savepoint and all.
        if self.in_transaction() {
            savepoint("RELEASE durable_schema_batch")?;
        }
        Ok(changed)
    }

    /// [`Replayer::run`] on the step budget left.
    fn run_on_budget(
        &self,
        sql: &str,
        params: &[Option<i64>],
        mut judge_drop: impl FnMut(&str) -> Option<Denial>,
    ) -> Result<Vec<String>, Failure> {
        self.rules.take_denial();
        {
            let mut state = lock(&self.auth);
            state.drops.clear();
            state.unreproducible.clear();
            state.inserts.clear();
            state.schema_read = None;
            state.schema_rewritten = false;
            state.writes_rows = false;
            state.creates_table = false;
            state.selects = false;
            state.row_writes.clear();
            state.touches.clear();
            state.writes_itself = false;
            state.does_more = false;
        }
        #[cfg(test)]
        self.executed.borrow_mut().push(sql.to_owned());
        let mut judged = None;
        let result = (|| {
            let mut stmt = self.conn.prepare(sql)?;
            let drops = std::mem::take(&mut lock(&self.auth).drops);
            for table in &drops {
                if let Some(denial) = judge_drop(table) {
                    judged = Some(denial);
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_AUTH),
                        None,
                    ));
                }
            }
            for (i, value) in params.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, value)?;
            }
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(drops)
        })();
        let denial = self.rules.take_denial();
        result.map_err(|error| Failure {
            error,
            denial: judged.or(denial),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_STATEMENT_BYTES;
    use crate::replay::tests::{rules, run};
    use durable_schema_workerd::Rule;

    #[test]
    fn a_runaway_statement_is_interrupted_with_advice() {
        let f = run(&["CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) INSERT INTO t SELECT i FROM n;"]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].diagnostic.message, "interrupted");
        assert!(f[0]
            .diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("recursive CTE"));
    }

    #[test]
    fn replay_runs_the_sqlite_minor_version_of_workerd() {
        // workerd ships SQLite 3.53.x; the replay must judge with the same
        // grammar and the same authorizer behaviour (3.53 does not authorize
        // functions inside DEFAULT clauses, 3.54 does).
        let version = rusqlite::version();
        assert!(version.starts_with("3.53."), "bundled SQLite is {version}");
        assert!(rules(&[
            "CREATE TABLE t(a DEFAULT (SQLITE_VERSION())); INSERT INTO t DEFAULT VALUES;"
        ])
        .is_empty());
    }

    #[test]
    fn limits_mirror_workerd() {
        let cols: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        let wide = format!("CREATE TABLE t({});", cols.join(", "));
        assert_eq!(rules(&[&wide]), [Some(Rule::Limit)]);
        assert_eq!(
            rules(&["SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6;"]),
            [Some(Rule::Limit)]
        );
        let long = format!("SELECT '{}';", "x".repeat(MAX_STATEMENT_BYTES));
        assert_eq!(rules(&[&long]), [Some(Rule::Limit)]);
    }
}
