//! The Durable Object transaction model on a configured connection
//! ([`DurableObjectDb`]): every statement of an *event* (a request, the
//! constructor's `blockConcurrencyWhile`) runs in an implicit transaction
//! that workerd commits when the event ends, and `transactionSync` is a
//! savepoint inside it (`_cf_savepoint_<depth>`, as workerd names its
//! internal savepoints), rolled back to when it fails and released when it
//! succeeds; a deferred foreign key still violated at the event's commit
//! fails the commit, and workerd resets the object. Mirrored from how
//! workerd runs a SQLite-backed object's storage (`ActorSqlite`'s implicit
//! and explicit transactions, `src/workerd/io/actor-sqlite.c++`); the rules
//! and limits are [`crate::configure`]'s.
//!
//! `durable_schema::testing` re-exports it for users' upgrade tests, with
//! the documentation of the whole model.

use std::fmt;

use durable_schema_runtime::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use durable_schema_runtime::query::{self, Arg, Executor, QueryError, QueryErrorKind};
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::{Batch, Connection, Params, Row};

use crate::{rename_denial, Authorizer, Denial, Rule, TRANSACTION_REFUSED};

/// The name workerd gives `transactionSync`'s savepoint (at depth 0).
const SAVEPOINT: &str = "_cf_savepoint_0";

/// An in-memory database that behaves like a SQLite-backed Durable
/// Object's: workerd's rules and limits, an implicit transaction per event,
/// `transactionSync` as a savepoint inside it (the module documentation
/// of `durable_schema::testing` describes the whole model).
///
/// Every statement runs inside the current event; the first statement
/// after [`end_event`](Self::end_event) (or after opening) begins the next
/// one. workerd opens its implicit transaction at an event's first write;
/// here it opens at the first statement, so a `PRAGMA foreign_keys = OFF`
/// never takes effect (on a Durable Object it does nothing after a write,
/// and nothing inside a migration).
///
/// Implements [`Backend`], so `SCHEMA.migrate(&db)`, `SCHEMA.wake(&db)` and
/// `SCHEMA.status(&db)` work on it.
pub struct DurableObjectDb {
    conn: Connection,
    rules: Authorizer,
}

impl fmt::Debug for DurableObjectDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableObjectDb")
            .field("in_event", &self.in_event())
            .finish_non_exhaustive()
    }
}

impl Default for DurableObjectDb {
    fn default() -> Self {
        Self::new()
    }
}

/// An error as the database reports it: SQLite's message, and for a
/// statement the rules refuse, what was refused and how to fix it (workerd
/// says only `not authorized`). A transaction statement gets workerd's own
/// message.
fn error(e: &rusqlite::Error, denial: Option<Denial>) -> BackendError {
    let sqlite = match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    match denial {
        Some(d) if d.rule() == Rule::Transaction => BackendError::new(TRANSACTION_REFUSED),
        Some(d) => BackendError::new(format!("{sqlite}: {} (help: {})", d.message(), d.help())),
        None => BackendError::new(sqlite),
    }
}

/// A refusal read from a statement's text (see [`rename_denial`]).
fn refused(denial: &Denial) -> BackendError {
    BackendError::new(format!(
        "not authorized: {} (help: {})",
        denial.message(),
        denial.help()
    ))
}

fn values(row: &Row<'_>, columns: usize) -> rusqlite::Result<Vec<Value>> {
    (0..columns)
        .map(|i| row.get_ref(i).map(Value::from))
        .collect()
}

impl DurableObjectDb {
    /// A new, empty database (a Durable Object that has never stored
    /// anything).
    ///
    /// # Panics
    ///
    /// If SQLite cannot open an in-memory database or refuses workerd's
    /// settings, which does not happen with the bundled SQLite.
    pub fn new() -> Self {
        let conn = Connection::open_in_memory().expect("open an in-memory SQLite database");
        let rules =
            crate::configure(&conn, None).expect("configure the database like a Durable Object's");
        Self { conn, rules }
    }

    /// Whether an event is open: a statement ran since the last
    /// [`end_event`](Self::end_event).
    pub fn in_event(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs workerd's own SQL (its implicit transaction, the savepoints of
    /// `transactionSync`) past the rules.
    fn internal(&self, sql: &str) -> Result<(), BackendError> {
        self.rules
            .trusted(|| self.conn.execute_batch(sql))
            .map_err(|e| error(&e, None))
    }

    /// Opens the event's implicit transaction if none is open.
    fn begin_event(&self) -> Result<(), BackendError> {
        if self.in_event() {
            return Ok(());
        }
        self.internal("BEGIN")
    }

    /// Ends the current event: commits its implicit transaction, as workerd
    /// does when a request or the constructor's `blockConcurrencyWhile` is
    /// over. Nothing to commit is fine.
    ///
    /// When the commit fails (a deferred foreign key still violated: SQLite
    /// checks those only here), the whole event is rolled back, every
    /// migration of the run included, because workerd resets the object,
    /// and the error says why. The database is then as the previous event
    /// left it.
    pub fn end_event(&self) -> Result<(), BackendError> {
        if !self.in_event() {
            return Ok(());
        }
        let Err(commit) = self.internal("COMMIT") else {
            return Ok(());
        };
        if self.in_event() {
            self.internal("ROLLBACK")?;
        }
        Err(BackendError::new(format!(
            "the event's implicit transaction failed to commit: {commit}; \
             workerd resets the object, so the event was rolled back"
        )))
    }

    /// Runs `sql` (one statement or several, like `ctx.storage.sql.exec`)
    /// in the current event, under workerd's rules. Rows are discarded; an
    /// error stops at the failing statement, and what the earlier ones did
    /// stays in the event (as on a Durable Object, where only a
    /// `transactionSync` or a failed commit rolls back).
    pub fn exec(&self, sql: &str) -> Result<(), BackendError> {
        self.begin_event()?;
        self.rules.take_denial();
        let mut batch = Batch::new(&self.conn, sql);
        loop {
            let mut stmt = match batch.next() {
                Ok(Some(stmt)) => stmt,
                Ok(None) => return Ok(()),
                Err(e) => return Err(error(&e, self.rules.take_denial())),
            };
            if let Some(denial) = stmt
                .expanded_sql()
                .as_deref()
                .and_then(|sql| rename_denial(sql, None))
            {
                return Err(refused(&denial));
            }
            let mut rows = stmt.raw_query();
            loop {
                match rows.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return Err(error(&e, self.rules.take_denial())),
                }
            }
        }
    }

    /// Runs one statement with `params` (`?1`, `?2`, … or rusqlite's
    /// `named_params!`) in the current event, under workerd's rules;
    /// returns the rows it changed. For fixtures built in a loop.
    ///
    /// ```
    /// # let db = durable_schema_workerd::DurableObjectDb::new();
    /// db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")?;
    /// for (id, name) in [(1, "ada"), (2, "grace")] {
    ///     assert_eq!(db.execute("INSERT INTO t VALUES (?1, ?2)", (id, name))?, 1);
    /// }
    /// # Ok::<(), durable_schema_runtime::backend::BackendError>(())
    /// ```
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize, BackendError> {
        self.begin_event()?;
        self.rules.take_denial();
        if let Some(denial) = rename_denial(sql, None) {
            return Err(refused(&denial));
        }
        self.conn
            .prepare(sql)
            .and_then(|mut stmt| stmt.execute(params))
            .map_err(|e| error(&e, self.rules.take_denial()))
    }

    /// Runs one query in the current event, under workerd's rules, and
    /// maps each row with `f`.
    ///
    /// ```
    /// # let db = durable_schema_workerd::DurableObjectDb::new();
    /// db.exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2)")?;
    /// let xs: Vec<i64> = db.query_rows("SELECT x FROM t WHERE x > ?1 ORDER BY x", [0], |r| r.get(0))?;
    /// assert_eq!(xs, [1, 2]);
    /// # Ok::<(), durable_schema_runtime::backend::BackendError>(())
    /// ```
    pub fn query_rows<T, P, F>(
        &self,
        sql: &str,
        params: P,
        mut f: F,
    ) -> Result<Vec<T>, BackendError>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        self.begin_event()?;
        self.rules.take_denial();
        let run = || -> rusqlite::Result<Vec<T>> {
            let mut stmt = self.conn.prepare(sql)?;
            let mut rows = stmt.query(params)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(f(row)?);
            }
            Ok(out)
        };
        run().map_err(|e| error(&e, self.rules.take_denial()))
    }

    /// [`query_rows`](Self::query_rows) for a query that returns exactly
    /// one row.
    ///
    /// ```
    /// # let db = durable_schema_workerd::DurableObjectDb::new();
    /// let n: i64 = db.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    /// assert_eq!(n, 0);
    /// # Ok::<(), durable_schema_runtime::backend::BackendError>(())
    /// ```
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T, BackendError>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> rusqlite::Result<T>,
    {
        let mut rows = self.query_rows(sql, params, f)?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            0 => Err(BackendError::new(
                "Expected exactly one result from SQL query, but got no results.",
            )),
            _ => Err(BackendError::new(
                "Expected exactly one result from SQL query, but got multiple results.",
            )),
        }
    }

    /// Prepares one statement under the rules and binds `params`.
    fn prepare(&self, sql: &str, params: &[Value]) -> rusqlite::Result<rusqlite::Statement<'_>> {
        let mut stmt = self.conn.prepare(sql)?;
        for (i, p) in params.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, p)?;
        }
        Ok(stmt)
    }

    /// Runs one step to its end; returns the first row of a
    /// [`Step::check`].
    fn run(&self, step: &Step) -> Result<Option<Vec<Value>>, BackendError> {
        self.rules.take_denial();
        let run = || -> rusqlite::Result<Option<Vec<Value>>> {
            let mut stmt = self.prepare(step.sql(), step.params())?;
            let columns = stmt.column_count();
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next()? {
                if step.is_check() {
                    return values(row, columns).map(Some);
                }
            }
            Ok(None)
        };
        run().map_err(|e| error(&e, self.rules.take_denial()))
    }
}

/// The executor's seam, as the Durable Object backend implements it: every
/// statement under workerd's rules, inside the current event.
impl Backend for DurableObjectDb {
    /// `rows_read` is the number of rows returned (workerd bills the rows
    /// SQLite reads, which the executor's queries keep to those).
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        self.begin_event()?;
        self.rules.take_denial();
        let run = || -> rusqlite::Result<Vec<Vec<Value>>> {
            let mut stmt = self.prepare(sql, params)?;
            let columns = stmt.column_count();
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(values(row, columns)?);
            }
            Ok(out)
        };
        let rows = run().map_err(|e| error(&e, self.rules.take_denial()))?;
        let read = rows.len() as u64;
        Ok(Rows::new(rows, read))
    }

    /// `transactionSync`: a savepoint inside the event's implicit
    /// transaction. A failing step rolls back to it (and releases it);
    /// success releases it, which commits nothing: the event's commit
    /// ([`end_event`](DurableObjectDb::end_event)) does, and checks the
    /// deferred foreign keys then.
    fn transaction(&self, steps: Vec<Step>) -> Result<u64, TxError> {
        self.begin_event().map_err(TxError::outside_steps)?;
        self.internal(&format!("SAVEPOINT {SAVEPOINT}"))
            .map_err(TxError::outside_steps)?;
        let before = self.conn.total_changes();
        for (i, step) in steps.iter().enumerate() {
            let failed = match self.run(step) {
                Ok(None) => continue,
                Ok(Some(row)) => TxError::with_row(i, row),
                Err(e) => TxError::at_step(i, e),
            };
            // SQLite may have rolled the whole transaction back itself
            // (`INSERT OR ROLLBACK`, `RAISE(ROLLBACK)`): then there is no
            // savepoint left, and the event is over.
            if self.in_event() {
                self.internal(&format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"))
                    .map_err(TxError::outside_steps)?;
            }
            return Err(failed);
        }
        let written = self.conn.total_changes().saturating_sub(before);
        self.internal(&format!("RELEASE {SAVEPOINT}"))
            .map_err(TxError::outside_steps)?;
        Ok(written)
    }
}

/// Checked queries (`durable_schema::query!`) on the model: every
/// statement under workerd's rules, inside the current event, and values
/// as a Durable Object passes them, JavaScript numbers: an integer beyond
/// ±2^53 read into `i64` (or bound) is the same `unsafe_integer` error as
/// in production, and a REAL `2.0` reads into `i64` as workerd's number 2
/// does.
impl DurableObjectDb {
    /// Prepares `sql` under the rules and binds `args`; on failure, the
    /// error with the rule that refused it, if one did.
    fn prepare_query(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> Result<rusqlite::Statement<'_>, QueryError> {
        self.begin_event()
            .map_err(|e| QueryError::new(QueryErrorKind::Backend, e.message()))?;
        self.rules.take_denial();
        if let Some(denial) = rename_denial(sql, None) {
            return Err(QueryError::new(
                QueryErrorKind::Prepare,
                refused(&denial).message(),
            ));
        }
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| self.query_error(QueryErrorKind::Prepare, &e))?;
        query::check_javascript_args(args)?;
        if stmt.parameter_count() != args.len() {
            return Err(QueryError::new(
                QueryErrorKind::Bind,
                format!(
                    "the statement has {} parameter(s) and got {} argument(s)",
                    stmt.parameter_count(),
                    args.len()
                ),
            ));
        }
        for (i, arg) in args.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, arg)
                .map_err(|e| self.query_error(QueryErrorKind::Bind, &e))?;
        }
        Ok(stmt)
    }

    fn query_error(&self, kind: QueryErrorKind, e: &rusqlite::Error) -> QueryError {
        QueryError::new(kind, error(e, self.rules.take_denial()).message())
    }
}

impl Executor for DurableObjectDb {
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&query::Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let mut stmt = self.prepare_query(sql, args)?;
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(row)) => each(&query::Row::from_rusqlite(row).as_javascript_numbers())?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.query_error(QueryErrorKind::Backend, &e)),
            }
        }
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError> {
        let mut stmt = self.prepare_query(sql, args)?;
        let before = self.conn.total_changes();
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(self.query_error(QueryErrorKind::Backend, &e)),
            }
        }
        drop(rows);
        Ok(query::changed_rows(
            before,
            self.conn.total_changes(),
            self.conn.changes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(db: &DurableObjectDb, table: &str) -> i64 {
        db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn parent_and_child(db: &DurableObjectDb) {
        db.exec(
            "CREATE TABLE p (id INTEGER PRIMARY KEY);
             CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p (id));
             INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1);",
        )
        .unwrap();
        db.end_event().unwrap();
    }

    #[test]
    fn the_tests_own_sql_is_under_workerds_rules() {
        let db = DurableObjectDb::new();
        for (sql, says) in [
            ("BEGIN", "state.storage.transactionSync()"),
            ("SAVEPOINT s", "state.storage.transactionSync()"),
            (
                "PRAGMA journal_mode = WAL",
                "not authorized: `PRAGMA journal_mode",
            ),
            ("CREATE TABLE _cf_x (a)", "reserved name"),
            ("CREATE TEMP TABLE t (a)", "`TEMP` objects"),
            ("CREATE VIRTUAL TABLE v USING fts4 (a)", "module `fts4`"),
            ("SELECT sqlite_version()", "not authorized to use function"),
            ("ATTACH 'x.db' AS x", "ATTACH"),
            ("PRAGMA FOREIGN_KEYS", "lower case"),
        ] {
            let err = db.exec(sql).unwrap_err();
            assert!(err.message().contains(says), "{sql}: {err}");
        }
        db.exec("CREATE TABLE t (a)").unwrap();
        let err = db.exec("ALTER TABLE t RENAME TO _CF_t").unwrap_err();
        assert!(err.message().contains("reserved name"), "{err}");
        // In a query, and in a step of the executor's seam, too.
        let err = db
            .query_rows("SELECT * FROM t UNION SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5", [], |_| Ok(()))
            .unwrap_err();
        assert!(err.message().contains("compound SELECT"), "{err}");
        let err = db
            .transaction(vec![Step::new("CREATE TEMP VIEW v AS SELECT 1")])
            .unwrap_err();
        assert_eq!(err.step(), Some(0));
        assert!(err.error().message().contains("TEMP"), "{err}");
        // Allowed pragmas and functions pass.
        db.exec("PRAGMA defer_foreign_keys = ON; PRAGMA table_info(t); SELECT sqrt(4), json_object('a', 1)")
            .unwrap();
    }

    #[test]
    fn a_failing_transaction_rolls_back_to_its_savepoint_only() {
        let db = DurableObjectDb::new();
        db.exec("CREATE TABLE t (x INTEGER UNIQUE); INSERT INTO t VALUES (1)")
            .unwrap();
        let err = db
            .transaction(vec![
                Step::new("INSERT INTO t VALUES (2)"),
                Step::new("INSERT INTO t VALUES (1)"),
            ])
            .unwrap_err();
        assert_eq!(err.step(), Some(1));
        assert_eq!(err.error().message(), "UNIQUE constraint failed: t.x");
        assert!(db.in_event(), "the event goes on");
        assert_eq!(count(&db, "t"), 1, "the event's earlier write stays");
        let written = db
            .transaction(vec![
                Step::new("INSERT INTO t VALUES (2), (3)"),
                Step::check("SELECT x FROM t WHERE x > 3"),
            ])
            .unwrap();
        assert_eq!(written, 2);
        let err = db
            .transaction(vec![Step::check("SELECT x, 'why' FROM t WHERE x = 3")])
            .unwrap_err();
        assert_eq!(
            err.row(),
            Some(&[Value::Integer(3), Value::Text("why".into())][..])
        );
        db.end_event().unwrap();
        assert_eq!(count(&db, "t"), 3);
    }

    #[test]
    fn deferred_keys_are_checked_at_the_events_commit_only() {
        let db = DurableObjectDb::new();
        parent_and_child(&db);
        // Deferral set in one savepoint lasts into the next, and the
        // violation passes both.
        db.transaction(vec![Step::new("PRAGMA defer_foreign_keys = ON")])
            .unwrap();
        db.transaction(vec![Step::new("DELETE FROM p")]).unwrap();
        let deferred: i64 = db
            .query_row("PRAGMA defer_foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(deferred, 1, "until the outer commit");
        let err = db.end_event().unwrap_err();
        assert!(
            err.message().contains("FOREIGN KEY constraint failed"),
            "{err}"
        );
        assert!(!db.in_event());
        assert_eq!(count(&db, "p"), 1, "the whole event was rolled back");
        let deferred: i64 = db
            .query_row("PRAGMA defer_foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(deferred, 0, "reset by the end of the transaction");
    }

    #[test]
    fn end_event_commits_and_the_next_statement_begins_an_event() {
        let db = DurableObjectDb::new();
        assert!(!db.in_event());
        db.end_event().unwrap();
        db.exec("CREATE TABLE t (x)").unwrap();
        assert!(db.in_event());
        db.end_event().unwrap();
        assert!(!db.in_event());
        db.exec("INSERT INTO t VALUES (1)").unwrap();
        // What survives a failed commit is what earlier events committed.
        db.exec("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED); INSERT INTO c VALUES (7)").unwrap();
        db.end_event().unwrap_err();
        assert_eq!(count(&db, "t"), 0);
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'p'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn foreign_keys_off_does_nothing_in_an_event() {
        let db = DurableObjectDb::new();
        parent_and_child(&db);
        db.exec("PRAGMA foreign_keys = OFF").unwrap();
        let on: i64 = db
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, 1);
        let err = db.exec("DELETE FROM p").unwrap_err();
        assert!(err.message().contains("FOREIGN KEY"), "{err}");
        db.end_event().unwrap();
        // Nor as the first statement of an event, nor inside a migration.
        db.exec("PRAGMA foreign_keys = 0").unwrap();
        let err = db
            .transaction(vec![
                Step::new("PRAGMA foreign_keys = OFF"),
                Step::new("DELETE FROM p"),
            ])
            .unwrap_err();
        assert_eq!(err.step(), Some(1));
    }

    #[test]
    fn execute_binds_and_is_under_the_rules_too() {
        let db = DurableObjectDb::new();
        db.exec("CREATE TABLE t (x)").unwrap();
        assert_eq!(
            db.execute("INSERT INTO t VALUES (?1), (?2)", (1, "a"))
                .unwrap(),
            2
        );
        let err = db.execute("ALTER TABLE t RENAME TO _cf_t", []).unwrap_err();
        assert!(err.message().contains("reserved name"), "{err}");
        let err = db.execute("SELECT sqlite_source_id()", []).unwrap_err();
        assert!(
            err.message().contains("not authorized to use function"),
            "{err}"
        );
        assert_eq!(count(&db, "t"), 2);
    }

    #[test]
    fn query_row_wants_exactly_one_row() {
        let db = DurableObjectDb::new();
        let none = db.query_row("SELECT 1 WHERE 0", [], |r| r.get::<_, i64>(0));
        assert!(none.unwrap_err().message().contains("got no results"));
        let many = db.query_row("SELECT 1 UNION ALL SELECT 2", [], |r| r.get::<_, i64>(0));
        assert!(many.unwrap_err().message().contains("multiple results"));
    }

    mod checked_queries {
        use super::*;
        use durable_schema_runtime::query::{Encode, Query, Value};

        fn run(sql: &'static str, args: Vec<Arg>) -> Query<Vec<Value>> {
            Query::__new(sql, args, |row| (0..2).map(|i| row.get(i, "c")).collect())
        }

        #[test]
        fn queries_run_inside_the_event_under_the_rules() {
            let db = DurableObjectDb::new();
            db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL, b BLOB, f REAL)")
                .unwrap();
            db.end_event().unwrap();
            let insert = Query::<()>::__new(
                "INSERT INTO t (s, b, f) VALUES (?, ?, ?), ('two', NULL, NULL)",
                vec![
                    Encode::encode("one"),
                    Encode::encode(&vec![0u8, 255]),
                    Encode::encode(&0.5),
                ],
                |_| Ok(()),
            );
            assert_eq!(insert.execute(&db).unwrap(), 2);
            assert!(db.in_event(), "a query opens the event, as any statement");
            let rows = run("SELECT s, b FROM t ORDER BY id", vec![])
                .fetch_all(&db)
                .unwrap();
            assert_eq!(
                rows,
                [
                    vec![Value::Text("one".into()), Value::Blob(vec![0, 255])],
                    vec![Value::Text("two".into()), Value::Null]
                ]
            );
            // Not the stale count of the INSERT.
            assert_eq!(run("SELECT id, s FROM t", vec![]).execute(&db).unwrap(), 0);
            let f = Query::<f64>::__new(
                "SELECT f FROM t WHERE s = ?",
                vec![Encode::encode("one")],
                |r| r.get(0, "f"),
            );
            assert_eq!(f.fetch_one(&db).unwrap(), 0.5);

            let err = run("SELECT sqlite_version(), 1", vec![])
                .fetch_all(&db)
                .unwrap_err();
            assert_eq!(err.kind(), QueryErrorKind::Prepare);
            assert!(
                err.message().contains("not authorized to use function"),
                "{err}"
            );
            let err = run("PRAGMA journal_mode = WAL", vec![])
                .execute(&db)
                .unwrap_err();
            assert!(err.message().contains("`PRAGMA journal_mode"), "{err}");
            let err = run("ALTER TABLE t RENAME TO _cf_t", vec![])
                .execute(&db)
                .unwrap_err();
            assert!(err.message().contains("reserved name"), "{err}");
            let err = run("INSERT INTO t (s) VALUES (NULL)", vec![])
                .execute(&db)
                .unwrap_err();
            assert_eq!(err.kind(), QueryErrorKind::Backend);
            assert_eq!(err.message(), "NOT NULL constraint failed: t.s");
            let err = run("SELECT ?, ?", vec![Arg::Null])
                .fetch_all(&db)
                .unwrap_err();
            assert_eq!(err.kind(), QueryErrorKind::Bind);
            db.end_event().unwrap();
            assert_eq!(count(&db, "t"), 2);
        }

        #[test]
        fn fetch_one_and_optional_and_decoding_errors() {
            let db = DurableObjectDb::new();
            db.exec("CREATE TABLE t (x INTEGER, y TEXT); INSERT INTO t VALUES (1, NULL), (2, 'b')")
                .unwrap();
            let x = |min: i64| {
                Query::<i64>::__new(
                    "SELECT x FROM t WHERE x >= ? ORDER BY x",
                    vec![Encode::encode(&min)],
                    |r| r.get(0, "x"),
                )
            };
            assert_eq!(x(0).fetch_one(&db).unwrap(), 1);
            assert_eq!(x(2).fetch_optional(&db).unwrap(), Some(2));
            assert_eq!(x(3).fetch_optional(&db).unwrap(), None);
            assert_eq!(
                x(3).fetch_one(&db).unwrap_err().kind(),
                QueryErrorKind::NoRows
            );
            let y = Query::<String>::__new("SELECT y FROM t ORDER BY x", vec![], |r| r.get(0, "y"));
            let err = y.fetch_all(&db).unwrap_err();
            assert_eq!(
                (err.kind(), err.column()),
                (QueryErrorKind::Decode, Some("y"))
            );
            // workerd's numbers: never a rounded integer, as in production.
            let big = Query::<i64>::__new("SELECT 9007199254740993", vec![], |r| r.get(0, "n"));
            let err = big.fetch_one(&db).unwrap_err();
            assert_eq!(
                (err.kind(), err.column()),
                (QueryErrorKind::UnsafeInteger, Some("n"))
            );
            let safe = Query::<(i64, i64)>::__new("SELECT 9007199254740991, 2.0", vec![], |r| {
                Ok((r.get(0, "a")?, r.get(1, "b")?))
            });
            assert_eq!(safe.fetch_one(&db).unwrap(), (9_007_199_254_740_991, 2));
            let bound =
                Query::<()>::__new("SELECT ?", vec![Encode::encode(&(1i64 << 53))], |_| Ok(()));
            let err = bound.execute(&db).unwrap_err();
            assert_eq!(err.kind(), QueryErrorKind::UnsafeInteger);
            assert!(
                err.message().starts_with("argument 1 is 9007199254740992"),
                "{err}"
            );
        }
    }
}
