//! [`Checked`]: a database handed to checked queries after the schema
//! check, which judges each query against the newer migrations that break
//! older code, instead of refusing every query.
//!
//! Older code over a database migrated by a newer, breaking migration (a
//! rollback after `ALTER TABLE messages DROP COLUMN body`) is refused as a
//! whole by `Schema::migrate`, `Schema::wake` and `worker::sql`: a raw
//! `exec` cannot be judged. A checked query can: `query!` recorded at
//! compile time what it reads and writes ([`Uses`]), and the tracking rows
//! record each breaking migration's findings. [`Schema::checked`] (and
//! `worker::checked` on a Durable Object) return a [`Checked`] in that
//! case, carrying the findings of every newer breaking migration; each
//! query is then judged by [`breaks`](super::uses::breaks) before it runs:
//! one that uses what a migration removed or changed is refused with a
//! [`QueryError`] of kind [`Incompatible`](QueryErrorKind::Incompatible),
//! naming the migration and the finding, and nothing is executed; the
//! others run. On a current database (or one ahead by additive migrations
//! only) there is nothing to judge and nothing more is read.

use super::uses::{breaks, findings, Uses};
use super::{Arg, Executor, QueryError, QueryErrorKind, Row};
use crate::backend::{Backend, Value};
use crate::error::MigrateError;
use crate::migrate::text_of;
use crate::{tracking, Schema};

/// A newer migration, recorded in the database, that the build classified
/// as breaking for older code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaking {
    version: u32,
    migration: String,
    findings: String,
}

impl Breaking {
    /// Its version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Its description, as its tracking row records it.
    pub fn migration(&self) -> &str {
        &self.migration
    }

    /// Its breaking and destructive findings, `; `-separated, with their
    /// codes (its tracking row's `findings`).
    pub fn findings(&self) -> &str {
        &self.findings
    }
}

/// A database for checked queries, with the newer breaking migrations it
/// judges them against (none when the database is current): what
/// [`Schema::checked`] and `worker::checked` return. A query that uses what
/// one of them removed or changed (the rules: [`uses`](super::uses)) is
/// refused with a [`QueryError`] of kind
/// [`Incompatible`](QueryErrorKind::Incompatible) naming the migration and
/// the finding, before anything runs; the others run on the database.
#[derive(Debug, Clone)]
pub struct Checked<E> {
    db: E,
    breaking: Vec<Breaking>,
}

impl<E> Checked<E> {
    /// `db` with nothing to judge: the schema is the code's, or newer by
    /// additive migrations only.
    pub fn current(db: E) -> Self {
        Self {
            db,
            breaking: Vec::new(),
        }
    }

    /// `db` ahead of the code by the `breaking` migrations.
    pub fn ahead(db: E, breaking: Vec<Breaking>) -> Self {
        Self { db, breaking }
    }

    /// The newer breaking migrations, in version order (empty when the
    /// schema is current).
    pub fn breaking(&self) -> &[Breaking] {
        &self.breaking
    }

    /// The database itself, for statements the code runs outside checked
    /// queries (which nothing judges).
    pub fn inner(&self) -> &E {
        &self.db
    }

    /// `Ok` when no newer breaking migration breaks a query using `uses`
    /// (`None`: unknown, as for a raw statement: any breaking migration
    /// does); else the error naming the first migration and finding that
    /// does.
    pub fn judge(&self, uses: Option<Uses<'_>>) -> Result<(), QueryError> {
        for b in &self.breaking {
            if let Some(finding) = findings(&b.findings).find(|f| breaks(f, uses)) {
                let what = if uses.is_some() {
                    "this query uses what it changed"
                } else {
                    "a statement whose uses are unknown cannot be judged"
                };
                return Err(QueryError::new(
                    QueryErrorKind::Incompatible,
                    format!(
                        "version {} ({}) breaks it: {finding}; {what}; deploy code of version {} \
                         or newer",
                        b.version, b.migration, b.version
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checked queries are judged with what they use; a statement run through
/// [`Executor::fetch`] or [`Executor::execute`] directly has unknown uses,
/// so any newer breaking migration refuses it.
impl<E: Executor> Executor for Checked<E> {
    fn fetch(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        self.judge(None)?;
        self.db.fetch(sql, args, each)
    }

    fn execute(&self, sql: &str, args: &[Arg]) -> Result<u64, QueryError> {
        self.judge(None)?;
        self.db.execute(sql, args)
    }

    fn fetch_checked(
        &self,
        uses: Option<Uses<'_>>,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&Row<'_>) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        self.judge(uses)?;
        self.db.fetch_checked(uses, sql, args, each)
    }

    fn execute_checked(
        &self,
        uses: Option<Uses<'_>>,
        sql: &str,
        args: &[Arg],
    ) -> Result<u64, QueryError> {
        self.judge(uses)?;
        self.db.execute_checked(uses, sql, args)
    }
}

/// The findings judged for a newer row recorded without its class: no code,
/// so [`breaks`] breaks every query with it.
const UNCLASSIFIED: &str = "its class is not recorded (applied before durable-schema classified migrations), so it may break anything";

/// The newer breaking migrations recorded in the database behind
/// `backend`, for code of `schema`, once the schema check said one breaks
/// the code ([`MigrateError::Incompatible`]): one statement, which also
/// reads the code's own version's row, whose chain must match (as for any
/// database ahead of the code: the history the code knows must be its own).
/// When no row is classified `breaking` after all (the table changed in
/// between), `refusal` (the check's error) stands: nothing to judge by.
pub(crate) fn breaking_after<B: Backend + ?Sized>(
    schema: &Schema,
    backend: &B,
    refusal: MigrateError,
) -> Result<Vec<Breaking>, MigrateError> {
    let code = schema.version();
    let table = schema.table();
    let read_error = |message: String| MigrateError::Backend {
        context: format!("reading table \"{table}\""),
        message,
    };
    let rows = backend
        .query(&tracking::breaking_after(table), &[Value::from(code)])
        .map_err(|e| read_error(e.message().to_owned()))?;
    let mut out = Vec::new();
    let mut prefix_ok = code == 0;
    for row in rows.rows() {
        let Some(version) = row
            .first()
            .and_then(Value::as_i64)
            .and_then(|v| u32::try_from(v).ok())
        else {
            continue;
        };
        let text = |i: usize| text_of(row.get(i)).unwrap_or_default().to_owned();
        if version == code {
            prefix_ok = schema
                .migration(code)
                .zip(text_of(row.get(3)))
                .is_some_and(|(m, chain)| m.accepts_chain(chain));
        } else {
            // A row without its class may break anything: its findings
            // are unknown, and a text without a code breaks every query.
            let findings = match text_of(row.get(4)) {
                Some(_) => text(2),
                None => UNCLASSIFIED.to_owned(),
            };
            out.push(Breaking {
                version,
                migration: text(1),
                findings,
            });
        }
    }
    if !prefix_ok {
        // Edited or missing history below the code's head: named as
        // `migrate` names it for a database ahead of the code.
        return Err(crate::migrate::divergence(schema, backend, code));
    }
    if out.is_empty() {
        return Err(refusal);
    }
    Ok(out)
}

impl Schema {
    /// The database behind `backend` for this code's checked queries, once
    /// its schema is usable: [`wake`](Schema::wake) (one statement reading
    /// one row when the database is current; pending migrations applied
    /// otherwise), then
    ///
    /// - `Ok` with nothing to judge when the database is current, or ahead
    ///   by migrations that break no older code;
    /// - `Ok` carrying the findings of every newer breaking migration when
    ///   one breaks this code's version ([`MigrateError::Incompatible`]
    ///   from `wake`): one more statement reads their tracking rows, and
    ///   each checked query is judged before it runs (see [`Checked`]);
    /// - `Err` for everything else `wake` returns (a failed, deferred or
    ///   interrupted run, `strict` over a newer database, edited history).
    ///
    /// ```
    /// # #[cfg(feature = "rusqlite")] {
    /// // migrations/0001_users.sql creates table `users`.
    /// #[durable_schema::durable_schema(dir = "migrations")]
    /// struct Db;
    ///
    /// let conn = rusqlite::Connection::open_in_memory()?;
    /// let db = Db::SCHEMA.checked(&conn)?;
    /// assert!(db.breaking().is_empty());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checked<'b, B: Backend + Executor + ?Sized>(
        &self,
        backend: &'b B,
    ) -> Result<Checked<&'b B>, MigrateError> {
        match self.wake(backend).into_result() {
            Ok(_) => Ok(Checked::current(backend)),
            Err(refusal @ MigrateError::Incompatible { .. }) => Ok(Checked::ahead(
                backend,
                breaking_after(self, backend, refusal)?,
            )),
            Err(e) => Err(e),
        }
    }
}
