//! The replay database: an in-memory SQLite configured like a Durable
//! Object's (foreign keys on, workerd's limits, defensive mode, the math
//! functions workerd compiles in), with an authorizer applying
//! [`crate::rules`] and a step budget per statement.
//!
//! It knows nothing of migrations: it runs one statement at a time and says
//! what SQLite and the authorizer made of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::Connection;

use crate::rules::{self, Denial};

/// workerd's per-statement SQL length limit (`SQLITE_LIMIT_SQL_LENGTH`).
pub(crate) const MAX_STATEMENT_BYTES: usize = 100_000;
/// Virtual-machine steps one statement may take during the replay (checked
/// every [`PROGRESS_STEP`] steps). The replay runs inside rustc and
/// rust-analyzer on every expansion, so a runaway statement (a recursive CTE
/// without a bound) must end with an error, not hang the build. Real schema
/// statements on the replay's empty tables use a tiny fraction of this.
pub(crate) const MAX_REPLAY_STEPS: u64 = 100_000_000;
const PROGRESS_STEP: i32 = 10_000;
/// workerd's column limit (`SQLITE_LIMIT_COLUMN`).
pub(crate) const MAX_COLUMNS: i32 = 100;

/// What the authorizer saw, shared with its callback.
#[derive(Default)]
struct AuthState {
    /// Our own BEGIN/COMMIT run trusted, like workerd's internal queries.
    trusted: bool,
    /// The first denial of the statement being prepared or stepped.
    denial: Option<Denial>,
    /// The current migration ran `PRAGMA foreign_keys = OFF`, which does
    /// nothing inside its transaction.
    foreign_keys_off: bool,
    /// Tables the statement being prepared drops.
    drops: Vec<String>,
    /// What the current migration did that bears on foreign keys.
    keys: KeyEffects,
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
    conn: Connection,
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
    /// Opens the in-memory database. `tracking` is the tracking table name,
    /// which migrations may not touch.
    pub(crate) fn new(tracking: &str) -> Result<Self, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        configure(&conn).map_err(|e| format!("cannot configure the replay database: {e}"))?;
        let auth = Arc::new(Mutex::new(AuthState::default()));
        let hook_state = Arc::clone(&auth);
        let hook_tracking = tracking.to_owned();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut state = lock(&hook_state);
            if state.trusted {
                return Authorization::Allow;
            }
            match rules::decide(&ctx, &hook_tracking) {
                Ok(()) => {
                    if let AuthAction::Pragma {
                        pragma_name,
                        pragma_value,
                    } = ctx.action
                    {
                        if rules::turns_foreign_keys_off(pragma_name, pragma_value) {
                            state.foreign_keys_off = true;
                        }
                    }
                    match ctx.action {
                        AuthAction::DropTable { table_name } => {
                            state.drops.push(table_name.to_owned());
                            state.keys.touch(table_name);
                            state.keys.reshaped = true;
                        }
                        AuthAction::AlterTable { table_name, .. } => {
                            state.keys.touch(table_name);
                            state.keys.reshaped = true;
                        }
                        AuthAction::Insert { table_name }
                        | AuthAction::Update { table_name, .. }
                        | AuthAction::Delete { table_name }
                        | AuthAction::CreateTable { table_name } => state.keys.touch(table_name),
                        AuthAction::Pragma {
                            pragma_name: "defer_foreign_keys",
                            pragma_value: Some(value),
                        } if rules::is_true(value) => state.keys.deferred = true,
                        _ => {}
                    }
                    Authorization::Allow
                }
                Err(denial) => {
                    state.denial.get_or_insert(denial);
                    Authorization::Deny
                }
            }
        }))
        .map_err(|e| e.to_string())?;
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

    /// Runs `f` with the authorizer standing aside, like workerd's own
    /// internal queries (our BEGIN/COMMIT, schema inspection).
    fn as_trusted<T>(&self, f: impl FnOnce() -> T) -> T {
        lock(&self.auth).trusted = true;
        let result = f();
        lock(&self.auth).trusted = false;
        result
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

    /// Starts a migration: opens its transaction and forgets what the
    /// previous one asked for.
    pub(crate) fn begin_migration(&self) -> rusqlite::Result<()> {
        {
            let mut state = lock(&self.auth);
            state.foreign_keys_off = false;
            state.keys = KeyEffects::default();
        }
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
        mut judge_drop: impl FnMut(&str) -> Option<Denial>,
    ) -> Result<Vec<String>, Failure> {
        {
            let mut state = lock(&self.auth);
            state.denial = None;
            state.drops.clear();
        }
        self.progress.store(0, Ordering::Relaxed);
        #[cfg(test)]
        self.executed.borrow_mut().push(sql.to_owned());
        let result = (|| {
            let mut stmt = self.conn.prepare(sql)?;
            let drops = std::mem::take(&mut lock(&self.auth).drops);
            for table in &drops {
                if let Some(denial) = judge_drop(table) {
                    lock(&self.auth).denial = Some(denial);
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_AUTH),
                        None,
                    ));
                }
            }
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(drops)
        })();
        result.map_err(|error| Failure {
            error,
            denial: lock(&self.auth).denial.take(),
        })
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // workerd's `setupSecurity` limits, so a migration that would hit one in
    // production fails the build instead.
    for (limit, value) in [
        (Limit::SQLITE_LIMIT_LENGTH, 4 * 1024 * 1024),
        (
            Limit::SQLITE_LIMIT_SQL_LENGTH,
            i32::try_from(MAX_STATEMENT_BYTES).unwrap_or(i32::MAX),
        ),
        (Limit::SQLITE_LIMIT_COLUMN, MAX_COLUMNS),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
        (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 5),
        (Limit::SQLITE_LIMIT_VDBE_OP, 25_000),
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 127),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50),
        (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 100),
        (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 10),
    ] {
        conn.set_limit(limit, value)?;
    }
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    register_math_functions(conn)
}

type Unary = fn(f64) -> f64;
type Binary = fn(f64, f64) -> f64;

/// workerd builds SQLite with `SQLITE_ENABLE_MATH_FUNCTIONS`; the bundled
/// SQLite of rusqlite does not, so the replay provides the same functions.
/// Only their existence matters for schema checks, but they compute real
/// values so data migrations replay faithfully.
fn register_math_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let unary: &[(&str, Unary)] = &[
        ("acos", f64::acos),
        ("acosh", f64::acosh),
        ("asin", f64::asin),
        ("asinh", f64::asinh),
        ("atan", f64::atan),
        ("atanh", f64::atanh),
        ("ceil", f64::ceil),
        ("ceiling", f64::ceil),
        ("cos", f64::cos),
        ("cosh", f64::cosh),
        ("degrees", f64::to_degrees),
        ("exp", f64::exp),
        ("floor", f64::floor),
        ("ln", f64::ln),
        ("log10", f64::log10),
        ("log2", f64::log2),
        ("radians", f64::to_radians),
        ("sin", f64::sin),
        ("sinh", f64::sinh),
        ("sqrt", f64::sqrt),
        ("tan", f64::tan),
        ("tanh", f64::tanh),
        ("trunc", f64::trunc),
    ];
    for &(name, f) in unary {
        conn.create_scalar_function(name, 1, flags, move |ctx| {
            Ok(ctx.get::<Option<f64>>(0)?.map(f).filter(|v| !v.is_nan()))
        })?;
    }
    let binary: &[(&str, Binary)] = &[
        ("atan2", f64::atan2),
        ("mod", |a, b| a % b),
        ("pow", f64::powf),
        ("power", f64::powf),
        ("log", |base, x| x.ln() / base.ln()),
    ];
    for &(name, f) in binary {
        conn.create_scalar_function(name, 2, flags, move |ctx| {
            let a = ctx.get::<Option<f64>>(0)?;
            let b = ctx.get::<Option<f64>>(1)?;
            Ok(a.zip(b).map(|(a, b)| f(a, b)).filter(|v| !v.is_nan()))
        })?;
    }
    conn.create_scalar_function("log", 1, flags, |ctx| {
        Ok(ctx
            .get::<Option<f64>>(0)?
            .map(f64::log10)
            .filter(|v| !v.is_nan()))
    })?;
    conn.create_scalar_function("pi", 0, flags, |_| Ok(std::f64::consts::PI))
}

#[cfg(test)]
mod tests {
    use super::MAX_STATEMENT_BYTES;
    use crate::replay::tests::{rules, run};
    use crate::rules::Rule;

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
