//! The executor: decides what to apply from the tracking table and applies it
//! through a [`Backend`].
//!
//! Cost model. A Durable Object runs the migrator on every wake-up, so the
//! common case (database current) must be one statement reading one row:
//! `SELECT version, chain FROM "<t>" ORDER BY version DESC LIMIT 1`. `version`
//! is the `INTEGER PRIMARY KEY` (the rowid), so SQLite reads just the last row
//! of the b-tree. Its `chain` vouches for the whole history because each chain
//! value is hash(previous chain, version, checksum), precomputed by the
//! compiler: comparing one string with the code's value compares every
//! applied file. Everything else (history walk, shape inspection, adoption)
//! happens only when that check does not say "current".

use crate::backend::{Backend, BackendError, Rows, Step, TxError, Value};
use crate::error::MigrateError;
use crate::report::{AppliedMigration, Report, SchemaState, Status};
use crate::{Migration, Schema};

/// Column names of the three-column tracking table many projects hand-roll.
const LEGACY_COLUMNS: [&str; 3] = ["version", "applied_at", "description"];
/// Column names of the executor's own tracking table.
const OWN_COLUMNS: [&str; 5] = ["version", "applied_at", "description", "checksum", "chain"];

impl Schema {
    /// Brings the database behind `backend` to this schema's version.
    ///
    /// When the database is current this runs exactly one query reading one
    /// row. Otherwise it applies each pending migration, statement by
    /// statement, in its own transaction together with its tracking row;
    /// see [`MigrateError`] for what stops it.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[cfg(feature = "rusqlite")]
    /// # fn demo(schema: &durable_schema_runtime::Schema) -> Result<(), Box<dyn std::error::Error>> {
    /// let conn = rusqlite::Connection::open("app.db")?;
    /// // `&Connection` is a `Backend`; `schema.migrate(&conn)` is the same call.
    /// let report = schema.migrate_with(&conn)?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    pub fn migrate_with<B: Backend + ?Sized>(&self, backend: &B) -> Result<Report, MigrateError> {
        let exec = Executor::new(self, backend);
        // The only string built on the fast path: one allocation.
        // Precomputed by the macro, so the common case builds nothing.
        let head_sql = match self.head_query() {
            Some(query) => std::borrow::Cow::Borrowed(query),
            None => std::borrow::Cow::Owned(exec.head_query()),
        };
        match backend.query(&head_sql, &[]) {
            Ok(rows) => exec.check_head(rows),
            // No such table, or no `chain` column: a fresh database, a
            // hand-rolled table, or another tool's table. Find out which.
            Err(head_error) => exec.inspect_and_migrate(head_error),
        }
    }

    /// Describes the database behind `backend` relative to this schema
    /// (applied rows, pending migrations, [`SchemaState`]) without changing
    /// anything.
    ///
    /// Reads the whole tracking table. Fails only when the tracking table has
    /// a foreign shape or the database errors; an edited history is reported
    /// as [`SchemaState::Diverged`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[cfg(feature = "rusqlite")]
    /// # fn demo(schema: &durable_schema_runtime::Schema) -> Result<(), Box<dyn std::error::Error>> {
    /// let conn = rusqlite::Connection::open("app.db")?;
    /// let status = schema.status_with(&conn)?;
    /// print!("{status}");
    /// # Ok(()) }
    /// ```
    pub fn status_with<B: Backend + ?Sized>(&self, backend: &B) -> Result<Status, MigrateError> {
        let exec = Executor::new(self, backend);
        let code_version = self.version();
        let (shape, mut rows_read) = exec.inspect()?;
        let (own, rows) = match shape {
            Shape::Missing => {
                return Ok(Status {
                    code_version,
                    db_version: 0,
                    state: SchemaState::Fresh,
                    applied: Vec::new(),
                    pending: self.migrations().iter().collect(),
                    rows_read,
                })
            }
            Shape::Foreign(columns) => return Err(exec.foreign(columns)),
            Shape::Own => (
                true,
                exec.query(
                    &exec.sql(&[
                        "SELECT version, description, applied_at, checksum, chain FROM ",
                        " ORDER BY version",
                    ]),
                    &[],
                )?,
            ),
            Shape::Legacy => (
                false,
                exec.query(
                    &exec.sql(&[
                        "SELECT version, description, applied_at, NULL, NULL FROM ",
                        " ORDER BY version",
                    ]),
                    &[],
                )?,
            ),
        };
        rows_read += rows.rows_read();

        let mut applied = Vec::with_capacity(rows.rows().len());
        let mut diverged = None;
        for (i, row) in rows.rows().iter().enumerate() {
            let version = exec.version_of(row.first())?;
            applied.push(AppliedMigration {
                version,
                description: text_of(row.get(1)).unwrap_or_default().to_owned(),
                applied_at: text_of(row.get(2)).unwrap_or_default().to_owned(),
                checksum: text_of(row.get(3)).map(str::to_owned),
            });
            if diverged.is_some() {
                continue;
            }
            // Same rules as a run: versions 1..=n without gaps, and for the
            // versions the code knows, the recorded chain must match (only
            // for the executor's own table; a hand-rolled one has no chain).
            let expected = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if version != expected {
                diverged = Some(expected);
            } else if own {
                if let Some(m) = self.migration(version) {
                    if text_of(row.get(4)) != Some(m.chain()) {
                        diverged = Some(version);
                    }
                }
            }
        }
        let db_version = applied.last().map_or(0, |r| r.version);
        let state = match diverged {
            Some(version) => SchemaState::Diverged { version },
            None if !own => SchemaState::Unadopted,
            None if db_version > code_version => SchemaState::Ahead,
            None if db_version == code_version => SchemaState::Current,
            None => SchemaState::Behind,
        };
        let pending = match state {
            SchemaState::Diverged { .. } | SchemaState::Ahead => Vec::new(),
            _ => self.pending_after(db_version).iter().collect(),
        };
        Ok(Status {
            code_version,
            db_version,
            state,
            applied,
            pending,
            rows_read,
        })
    }

    /// The migrations after `version` (all of them for 0).
    fn pending_after(&self, version: u32) -> &'static [Migration] {
        let migrations = self.migrations();
        let start = usize::try_from(version)
            .unwrap_or(usize::MAX)
            .min(migrations.len());
        &migrations[start..]
    }
}

/// What the slow path found under the tracking table's name.
enum Shape {
    /// Nothing: a fresh database.
    Missing,
    /// The executor's five-column table.
    Own,
    /// The hand-rolled `(version, applied_at, description)` table.
    Legacy,
    /// Anything else, with its columns.
    Foreign(Vec<String>),
}

/// What has to happen before the first pending migration's statements.
enum Preamble {
    /// The tracking table exists in the executor's shape.
    None,
    /// Fresh database: create the tracking table.
    Create,
    /// Hand-rolled table recording `1..=n`: add the columns, fill them.
    Adopt(u32),
}

/// One migration run (or status) against one backend.
struct Executor<'a, B: ?Sized> {
    schema: &'a Schema,
    backend: &'a B,
}

impl<'a, B: Backend + ?Sized> Executor<'a, B> {
    fn new(schema: &'a Schema, backend: &'a B) -> Self {
        Self { schema, backend }
    }

    fn table(&self) -> &'static str {
        self.schema.table()
    }

    /// `parts` joined by the tracking table's name quoted as an identifier
    /// (so any name, even one with quotes, is safe), in one allocation.
    fn sql(&self, parts: &[&str]) -> String {
        let table = self.table();
        let len = parts.iter().map(|p| p.len()).sum::<usize>()
            + (parts.len().saturating_sub(1)) * (table.len() + 2);
        let mut sql = String::with_capacity(len);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                sql.push('"');
                for c in table.chars() {
                    if c == '"' {
                        sql.push('"');
                    }
                    sql.push(c);
                }
                sql.push('"');
            }
            sql.push_str(part);
        }
        sql
    }

    /// The up-to-date check's statement (the macro embeds the same text).
    fn head_query(&self) -> String {
        self.sql(&[
            "SELECT version, chain FROM ",
            " ORDER BY version DESC LIMIT 1",
        ])
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, MigrateError> {
        self.backend
            .query(sql, params)
            .map_err(|e| self.backend_error(&e))
    }

    fn backend_error(&self, e: &BackendError) -> MigrateError {
        MigrateError::Backend {
            context: format!("reading table \"{}\"", self.table()),
            message: e.message().to_owned(),
        }
    }

    fn foreign(&self, columns: Vec<String>) -> MigrateError {
        MigrateError::ForeignTable {
            table: self.table(),
            columns,
        }
    }

    /// A tracking row's version: `INTEGER PRIMARY KEY` guarantees an
    /// integer, but not that it is a plausible version.
    fn version_of(&self, value: Option<&Value>) -> Result<u32, MigrateError> {
        match value {
            Some(Value::Integer(v)) => match u32::try_from(*v) {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(self.invalid(format!("version {v}"))),
            },
            Some(Value::Text(t)) => Err(self.invalid(format!("version '{t}'"))),
            Some(Value::Null) | None => Err(self.invalid("version NULL".to_owned())),
        }
    }

    fn invalid(&self, detail: String) -> MigrateError {
        MigrateError::InvalidRecord {
            table: self.table(),
            detail,
        }
    }

    /// The fast path: the head query succeeded.
    fn check_head(&self, rows: Rows) -> Result<Report, MigrateError> {
        let rows_read = rows.rows_read();
        let Some(row) = rows.rows().first() else {
            // Our table exists but is empty (someone deleted the rows, or
            // created it by hand): everything is pending, the table stays.
            return self.apply(0, Preamble::None, rows_read);
        };
        let version = self.version_of(row.first())?;
        let chain = text_of(row.get(1));
        let code = self.schema.version();

        if version <= code {
            let expected = self.schema.migration(version).map(Migration::chain);
            if expected.is_some() && chain == expected {
                // The common case ends here: one statement, one row.
                return self.apply(version, Preamble::None, rows_read);
            }
            return Err(self.divergence(version));
        }

        // Database ahead of the code (a rolled-back deploy). `strict` refuses
        // outright; otherwise the part of history the code knows must match.
        if self.schema.strict() {
            return Err(MigrateError::Ahead { db: version, code });
        }
        let mut rows_read = rows_read;
        if code > 0 {
            let prefix = self.query(
                &self.sql(&["SELECT chain FROM ", " WHERE version = ?1"]),
                &[Value::from(code)],
            )?;
            rows_read += prefix.rows_read();
            let Some(prefix_row) = prefix.rows().first() else {
                return Err(MigrateError::Gap {
                    table: self.table(),
                    missing: code,
                });
            };
            let expected = self.schema.migration(code).map(Migration::chain);
            if expected.is_none() || text_of(prefix_row.first()) != expected {
                return Err(self.divergence(code));
            }
        }
        Ok(Report {
            from_version: version,
            to_version: version,
            applied: Vec::new(),
            ahead: Some(version),
            adopted: false,
            rows_read,
        })
    }

    /// The recorded chain at `upto` differs from the code's: walk the
    /// history (slow path only) to name the first version that differs.
    fn divergence(&self, upto: u32) -> MigrateError {
        let rows = match self.query(
            &self.sql(&[
                "SELECT version, checksum, chain FROM ",
                " WHERE version <= ?1 ORDER BY version",
            ]),
            &[Value::from(upto)],
        ) {
            Ok(rows) => rows,
            Err(e) => return e,
        };
        let mut expected_version = 1u32;
        for row in rows.rows() {
            let version = match self.version_of(row.first()) {
                Ok(v) => v,
                Err(e) => return e,
            };
            if version != expected_version {
                return MigrateError::Gap {
                    table: self.table(),
                    missing: expected_version,
                };
            }
            let Some(m) = self.schema.migration(version) else {
                break;
            };
            // The checksum names the edited file directly; a matching
            // checksum with a different chain means an earlier row was
            // rewritten, which the walk would have caught, or the row itself
            // was tampered with: either way this version is where it differs.
            if text_of(row.get(1)) != Some(m.checksum()) || text_of(row.get(2)) != Some(m.chain()) {
                return self.edited(m);
            }
            expected_version += 1;
        }
        if expected_version <= upto {
            return MigrateError::Gap {
                table: self.table(),
                missing: expected_version,
            };
        }
        // Every row matched on the walk although the head did not: only
        // possible if the table changed between the two reads. Blame the head.
        match self.schema.migration(upto) {
            Some(m) => self.edited(m),
            None => MigrateError::UnknownVersion {
                table: self.table(),
                version: upto,
                code: self.schema.version(),
            },
        }
    }

    fn edited(&self, m: &'static Migration) -> MigrateError {
        MigrateError::Edited {
            version: m.version(),
            file: m.name(),
            table: self.table(),
        }
    }

    /// The slow path: the head query failed. Decide from the table's shape.
    fn inspect_and_migrate(&self, head_error: BackendError) -> Result<Report, MigrateError> {
        let (shape, rows_read) = self.inspect()?;
        match shape {
            Shape::Missing => self.apply(0, Preamble::Create, rows_read),
            Shape::Legacy => self.adopt(rows_read),
            Shape::Foreign(columns) => Err(self.foreign(columns)),
            // Our shape, yet the head query failed: a real database error
            // (locked, I/O), not something to repair.
            Shape::Own => Err(self.backend_error(&head_error)),
        }
    }

    /// Looks at what exists under the tracking table's name.
    fn inspect(&self) -> Result<(Shape, u64), MigrateError> {
        let table = Value::from(self.table());
        // SQLite compares identifiers case-insensitively (ASCII), so must we.
        let master = self.query(
            "SELECT type FROM sqlite_master WHERE name = ?1 COLLATE NOCASE",
            std::slice::from_ref(&table),
        )?;
        let mut rows_read = master.rows_read();
        let Some(kind) = master.rows().first() else {
            return Ok((Shape::Missing, rows_read));
        };
        let is_table = text_of(kind.first()) == Some("table");
        // pragma_table_info is allowed on Durable Objects when given a name.
        let info = self.query(
            "SELECT name, pk FROM pragma_table_info(?1)",
            std::slice::from_ref(&table),
        )?;
        rows_read += info.rows_read();
        let mut columns = Vec::with_capacity(info.rows().len());
        let mut version_is_pk = false;
        for row in info.rows() {
            let name = text_of(row.first()).unwrap_or_default().to_owned();
            if name.eq_ignore_ascii_case("version") && row.get(1).and_then(Value::as_i64) == Some(1)
            {
                version_is_pk = true;
            }
            columns.push(name);
        }
        if !is_table {
            return Ok((Shape::Foreign(columns), rows_read));
        }
        // `version` must be the primary key: the fast path relies on it being
        // the rowid (one-row read, unique versions).
        // Extra columns on our own table are tolerated (the executor names
        // the columns it writes); a hand-rolled table is adopted only in its
        // exact known shape, since adoption alters it.
        let shape = if version_is_pk && has_columns(&columns, &OWN_COLUMNS) {
            Shape::Own
        } else if version_is_pk && same_columns(&columns, &LEGACY_COLUMNS) {
            Shape::Legacy
        } else {
            Shape::Foreign(columns)
        };
        Ok((shape, rows_read))
    }

    /// Adopts a hand-rolled table: its versions must be `1..=n`, known to the
    /// code, and are trusted (the table has no checksums to verify).
    fn adopt(&self, rows_read: u64) -> Result<Report, MigrateError> {
        let rows = self.query(
            &self.sql(&["SELECT version FROM ", " ORDER BY version"]),
            &[],
        )?;
        let rows_read = rows_read + rows.rows_read();
        let mut recorded = 0u32;
        for row in rows.rows() {
            let version = self.version_of(row.first())?;
            let expected = recorded + 1;
            if version != expected {
                return Err(MigrateError::Gap {
                    table: self.table(),
                    missing: expected,
                });
            }
            recorded = version;
        }
        if recorded > self.schema.version() {
            return Err(MigrateError::UnknownVersion {
                table: self.table(),
                version: recorded,
                code: self.schema.version(),
            });
        }
        self.apply(recorded, Preamble::Adopt(recorded), rows_read)
    }

    /// The tracking-table steps that precede the first pending migration.
    fn preamble_steps(&self, preamble: &Preamble) -> Vec<Step> {
        match preamble {
            Preamble::None => Vec::new(),
            Preamble::Create => vec![Step::new(self.sql(&[
                "CREATE TABLE ",
                " (version INTEGER PRIMARY KEY, \
                 applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), \
                 description TEXT NOT NULL, checksum TEXT, chain TEXT)",
            ]))],
            Preamble::Adopt(recorded) => {
                let mut steps = vec![
                    Step::new(self.sql(&["ALTER TABLE ", " ADD COLUMN checksum TEXT"])),
                    Step::new(self.sql(&["ALTER TABLE ", " ADD COLUMN chain TEXT"])),
                ];
                let update = self.sql(&[
                    "UPDATE ",
                    " SET checksum = ?1, chain = ?2 WHERE version = ?3",
                ]);
                let known = self.schema.migrations();
                // `adopt` checked `recorded <= schema.version()`; `get` keeps
                // this panic-free regardless.
                let prefix = usize::try_from(*recorded)
                    .ok()
                    .and_then(|n| known.get(..n))
                    .unwrap_or(known);
                for m in prefix {
                    steps.push(Step::with_params(
                        update.clone(),
                        vec![
                            Value::from(m.checksum()),
                            Value::from(m.chain()),
                            Value::from(m.version()),
                        ],
                    ));
                }
                steps
            }
        }
    }

    /// Applies every migration after `from`, each in its own transaction
    /// with its tracking row; the preamble joins the first transaction so a
    /// fresh database never ends up with an empty tracking table.
    fn apply(&self, from: u32, preamble: Preamble, rows_read: u64) -> Result<Report, MigrateError> {
        let pending = self.schema.pending_after(from);
        let adopted = matches!(preamble, Preamble::Adopt(_));
        if pending.is_empty() && !adopted {
            return Ok(Report {
                from_version: from,
                to_version: from,
                applied: Vec::new(),
                ahead: None,
                adopted: false,
                rows_read,
            });
        }

        let mut pre = self.preamble_steps(&preamble);
        if pending.is_empty() {
            // Adoption with nothing to apply: the preamble alone.
            self.backend.transaction(pre).map_err(|e| {
                tx_backend_error(format!("adopting table \"{}\"", self.table()), &e)
            })?;
            return Ok(Report {
                from_version: from,
                to_version: from,
                applied: Vec::new(),
                ahead: None,
                adopted,
                rows_read,
            });
        }
        // applied_at is set explicitly (by SQLite, so the runtime needs no
        // clock): an adopted hand-rolled table has no DEFAULT for it.
        let insert = self.sql(&[
            "INSERT INTO ",
            " (version, applied_at, description, checksum, chain) \
             VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?2, ?3, ?4)",
        ]);
        let mut applied = Vec::with_capacity(pending.len());
        for m in pending {
            let pre_len = pre.len();
            let mut steps = std::mem::take(&mut pre);
            steps.reserve(m.statements().len() + 1);
            // The tracking row goes first: if another migrator applied this
            // version meanwhile, its primary key fails the transaction before
            // any of the migration's statements runs, and the error says so
            // instead of blaming the file ("table already exists").
            steps.push(Step::with_params(
                insert.clone(),
                vec![
                    Value::from(m.version()),
                    Value::from(m.description()),
                    Value::from(m.checksum()),
                    Value::from(m.chain()),
                ],
            ));
            steps.extend(m.statements().iter().map(|s| Step::new(s.sql())));
            if let Err(e) = self.backend.transaction(steps) {
                return Err(self.tx_error(m, pre_len, &preamble, &e));
            }
            applied.push(m);
        }
        Ok(Report {
            from_version: from,
            to_version: applied.last().map_or(from, |m| m.version()),
            applied,
            ahead: None,
            adopted,
            rows_read,
        })
    }

    /// Maps a failed transaction back to what its failing step was.
    fn tx_error(
        &self,
        m: &'static Migration,
        pre_len: usize,
        preamble: &Preamble,
        e: &TxError,
    ) -> MigrateError {
        let statements = m.statements();
        match e.step() {
            Some(i) if i < pre_len => {
                let verb = match preamble {
                    Preamble::Adopt(_) => "adopting",
                    _ => "creating",
                };
                tx_backend_error(format!("{verb} table \"{}\"", self.table()), e)
            }
            Some(i) if i > pre_len && i - pre_len - 1 < statements.len() => {
                let index = i - pre_len - 1;
                let s = &statements[index];
                MigrateError::Statement {
                    version: m.version(),
                    file: m.name(),
                    statement: index + 1,
                    line: s.line(),
                    column: s.column(),
                    message: e.error().message().to_owned(),
                }
            }
            Some(_) => tx_backend_error(
                format!(
                    "recording version {} ({}) in table \"{}\" (another migrator may have \
                     applied it concurrently; run again)",
                    m.version(),
                    m.name(),
                    self.table()
                ),
                e,
            ),
            // Outside the steps: BEGIN or COMMIT (the message says which).
            None => tx_backend_error(format!("running migration {}", m.name()), e),
        }
    }
}

fn tx_backend_error(context: String, e: &TxError) -> MigrateError {
    MigrateError::Backend {
        context,
        message: e.error().message().to_owned(),
    }
}

fn text_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// Whether `found` includes every column of `expected`, ignoring ASCII case.
fn has_columns(found: &[String], expected: &[&str]) -> bool {
    expected
        .iter()
        .all(|e| found.iter().any(|f| f.eq_ignore_ascii_case(e)))
}

/// Whether `found` is exactly `expected` as a set, ignoring ASCII case and
/// order (a hand-rolled table may declare its columns in any order).
fn same_columns(found: &[String], expected: &[&str]) -> bool {
    found.len() == expected.len() && has_columns(found, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoDb;

    impl Backend for NoDb {
        fn query(&self, _: &str, _: &[Value]) -> Result<Rows, BackendError> {
            Err(BackendError::new("unreachable"))
        }
        fn execute(&self, _: &str, _: &[Value]) -> Result<(), BackendError> {
            Err(BackendError::new("unreachable"))
        }
        fn transaction(&self, _: Vec<Step>) -> Result<(), TxError> {
            Err(TxError::outside_steps(BackendError::new("unreachable")))
        }
    }

    #[test]
    fn table_name_is_quoted_as_an_identifier() {
        let schema = Schema::__new("we\"ird name", false, &[]);
        let exec = Executor::new(&schema, &NoDb);
        assert_eq!(
            exec.sql(&["SELECT * FROM ", " WHERE ", " = 1"]),
            "SELECT * FROM \"we\"\"ird name\" WHERE \"we\"\"ird name\" = 1"
        );
        assert_eq!(exec.sql(&["no table"]), "no table");
    }

    #[test]
    fn column_sets_ignore_case_and_order() {
        let found: Vec<String> = ["Description", "VERSION", "applied_at"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(same_columns(&found, &LEGACY_COLUMNS));
        assert!(!same_columns(&found, &OWN_COLUMNS));
        assert!(!same_columns(&found[..2], &LEGACY_COLUMNS));
        assert!(has_columns(&found, &LEGACY_COLUMNS[..2]));
        assert!(!has_columns(&found[..2], &LEGACY_COLUMNS));
    }

    #[test]
    fn a_failing_backend_is_a_backend_error() {
        let schema = Schema::__new("migrations", false, &[]);
        let err = schema.migrate_with(&NoDb).unwrap_err();
        assert_eq!(
            err,
            MigrateError::Backend {
                context: "reading table \"migrations\"".into(),
                message: "unreachable".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "database error while reading table \"migrations\": unreachable"
        );
    }
}
