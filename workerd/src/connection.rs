//! A SQLite connection configured like a Durable Object's: workerd's limits
//! (`setupSecurity` in `src/workerd/util/sqlite.c++`), defensive mode,
//! foreign keys on, the math functions workerd compiles in, and an
//! authorizer deciding every action with workerd's rules ([`crate::rules`]).
//!
//! ```
//! let conn = rusqlite::Connection::open_in_memory()?;
//! let rules = durable_schema_workerd::configure(&conn, None)?;
//! assert!(conn.execute_batch("PRAGMA journal_mode = WAL").is_err());
//! let denial = rules.take_denial().expect("the authorizer refused it");
//! assert!(denial.message().contains("journal_mode"), "{}", denial.message());
//! // Internal statements (workerd's own BEGIN, SAVEPOINT) run trusted.
//! rules.trusted(|| conn.execute_batch("BEGIN; COMMIT"))?;
//! # Ok::<(), rusqlite::Error>(())
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::{AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::Connection;

use crate::rules::{self, Denial};

/// workerd's per-statement SQL length limit (`SQLITE_LIMIT_SQL_LENGTH`).
pub const MAX_STATEMENT_BYTES: usize = 100_000;
/// workerd's column limit (`SQLITE_LIMIT_COLUMN`).
pub const MAX_COLUMNS: i32 = 100;
/// workerd's limit on the virtual-machine operations of one statement
/// (`SQLITE_LIMIT_VDBE_OP`). SQLite doubles the program's allocation as it
/// grows and refuses an allocation over the limit with "out of memory", so
/// a program of up to half of it always fits.
pub const MAX_VDBE_OPS: i32 = 25_000;

/// The message workerd throws for `BEGIN`, `COMMIT`, `ROLLBACK`,
/// `SAVEPOINT` and `RELEASE` in `sql.exec` (from its authorizer, verbatim).
pub const TRANSACTION_REFUSED: &str = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";

/// Configures `conn` like a Durable Object's database and installs the
/// authorizer; returns the handle to it.
///
/// `tracking`: the tracking table, which the authorizer then protects too
/// (the compile-time check: migrations may not touch it). `None` decides
/// exactly as workerd does, for a database that runs the executor's own
/// statements as well as a test's.
pub fn configure(conn: &Connection, tracking: Option<&str>) -> rusqlite::Result<Authorizer> {
    configure_with(conn, tracking, |_| {})
}

/// [`configure`], calling `observe` with every action the rules allow
/// outside [`Authorizer::trusted`] (the replay follows what a migration
/// drops, writes and defers).
pub fn configure_with(
    conn: &Connection,
    tracking: Option<&str>,
    mut observe: impl FnMut(&AuthContext<'_>) + Send + 'static,
) -> rusqlite::Result<Authorizer> {
    settings(conn)?;
    let authorizer = Authorizer::default();
    let state = Arc::clone(&authorizer.state);
    let tracking = tracking.map(str::to_owned);
    // Like workerd's: installed on the connection, it decides during
    // prepare and during step (SQLite may prepare again, and fts5 prepares
    // its own statements while it runs), and answers Allow or Deny only.
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let mut state = lock(&state);
        if state.trusted {
            return Authorization::Allow;
        }
        match rules::decide(&ctx, tracking.as_deref()) {
            Ok(()) => {
                drop(state);
                observe(&ctx);
                Authorization::Allow
            }
            Err(denial) => {
                state.denial.get_or_insert(denial);
                Authorization::Deny
            }
        }
    }))?;
    Ok(authorizer)
}

/// What the authorizer knows beyond its rules.
#[derive(Default)]
struct State {
    /// Internal statements run past the rules, like workerd's own queries.
    trusted: bool,
    /// The first refusal since the last [`Authorizer::take_denial`].
    denial: Option<Denial>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A poisoned lock only means an earlier callback panicked; the state is
    // plain data and stays meaningful.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle to the authorizer [`configure`] installed.
#[derive(Clone, Default)]
pub struct Authorizer {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Authorizer")
            .field("trusted", &state.trusted)
            .field("denial", &state.denial)
            .finish()
    }
}

impl Authorizer {
    /// Runs `f` with the rules standing aside, like workerd's internal
    /// queries (its implicit transaction, `transactionSync`'s savepoints).
    pub fn trusted<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Restore<'a>(&'a Authorizer, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                lock(&self.0.state).trusted = self.1;
            }
        }
        let previous = std::mem::replace(&mut lock(&self.state).trusted, true);
        let _restore = Restore(self, previous);
        f()
    }

    /// The first action refused since the last call, if any: call it after
    /// a statement failed to learn whether the rules were the cause. (SQLite
    /// reports only `not authorized`.)
    pub fn take_denial(&self) -> Option<Denial> {
        lock(&self.state).denial.take()
    }
}

/// workerd's settings: limits, defensive mode, foreign keys, math functions.
fn settings(conn: &Connection) -> rusqlite::Result<()> {
    // workerd's `setupSecurity` limits, so a statement that would hit one in
    // production fails here too.
    for (limit, value) in [
        (Limit::SQLITE_LIMIT_LENGTH, 4 * 1024 * 1024),
        (
            Limit::SQLITE_LIMIT_SQL_LENGTH,
            i32::try_from(MAX_STATEMENT_BYTES).unwrap_or(i32::MAX),
        ),
        (Limit::SQLITE_LIMIT_COLUMN, MAX_COLUMNS),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, 100),
        (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 5),
        (Limit::SQLITE_LIMIT_VDBE_OP, MAX_VDBE_OPS),
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 127),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50),
        (Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 100),
        (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 10),
        (Limit::SQLITE_LIMIT_WORKER_THREADS, 0),
    ] {
        conn.set_limit(limit, value)?;
    }
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    // workerd builds SQLite with SQLITE_DEFAULT_FOREIGN_KEYS=1.
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    register_math_functions(conn)
}

type Unary = fn(f64) -> f64;
type Binary = fn(f64, f64) -> f64;

/// workerd builds SQLite with `SQLITE_ENABLE_MATH_FUNCTIONS`; the bundled
/// SQLite of rusqlite does not, so the same functions are provided here.
/// They compute real values so data migrations and tests behave as on a
/// Durable Object. (`power`, `ceiling` and `log10` exist, as in SQLite, but
/// the authorizer refuses them, as workerd does.)
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
    use super::*;
    use crate::Rule;

    fn open(tracking: Option<&str>) -> (Connection, Authorizer) {
        let conn = Connection::open_in_memory().unwrap();
        let rules = configure(&conn, tracking).unwrap();
        (conn, rules)
    }

    #[test]
    fn refusals_are_reported_once_with_their_rule() {
        let (conn, rules) = open(None);
        for (sql, rule) in [
            ("BEGIN", Rule::Transaction),
            ("SAVEPOINT s", Rule::Transaction),
            ("PRAGMA journal_mode = WAL", Rule::Pragma),
            ("CREATE TABLE _cf_t (x)", Rule::ReservedName),
            ("CREATE TEMP TABLE t (x)", Rule::Temp),
            ("CREATE VIRTUAL TABLE v USING fts4 (x)", Rule::Module),
            ("SELECT sqlite_version()", Rule::Function),
            ("SELECT power(2, 3)", Rule::Function),
        ] {
            assert!(conn.execute_batch(sql).is_err(), "{sql}");
            assert_eq!(rules.take_denial().map(|d| d.rule()), Some(rule), "{sql}");
            assert_eq!(rules.take_denial(), None, "taken");
        }
    }

    #[test]
    fn settings_are_workerds() {
        let (conn, rules) = open(None);
        let on: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, 1);
        let six =
            "SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6";
        let err = conn.execute_batch(six).unwrap_err().to_string();
        assert!(err.contains("too many terms in compound SELECT"), "{err}");
        assert_eq!(rules.take_denial(), None, "a limit, not a rule");
        let pi: f64 = conn.query_row("SELECT pi()", [], |r| r.get(0)).unwrap();
        assert_eq!(pi, std::f64::consts::PI);
        conn.execute_batch("CREATE TABLE sqlite_x (a)").unwrap_err();
    }

    #[test]
    fn the_tracking_table_is_protected_only_when_named() {
        let (conn, _) = open(None);
        conn.execute_batch("CREATE TABLE migrations (v)").unwrap();
        let (conn, rules) = open(Some("migrations"));
        conn.execute_batch("CREATE TABLE migrations (v)")
            .unwrap_err();
        assert_eq!(
            rules.take_denial().map(|d| d.rule()),
            Some(Rule::TrackingTable)
        );
    }

    #[test]
    fn trusted_statements_pass_and_nest() {
        let (conn, rules) = open(None);
        rules
            .trusted(|| {
                rules.trusted(|| conn.execute_batch("BEGIN")).unwrap();
                // Still trusted after the inner call returned.
                conn.execute_batch("SAVEPOINT s; RELEASE s; COMMIT")
            })
            .unwrap();
        assert!(conn.execute_batch("BEGIN").is_err(), "rules back in force");
    }
}
