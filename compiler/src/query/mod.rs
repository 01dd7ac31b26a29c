//! Checked queries (`query!`, `query_as!`): a statement prepared against
//! the schema at the head of a migration chain, in an SQLite configured
//! like a Durable Object's (workerd's authorizer and limits), and what its
//! result and parameters are.
//!
//! The head schema comes from the [`Plan`] (the verdict cache or the
//! replay), never from a live database or offline files; the database built
//! from it is kept per process ([`describe`] memoizes it by the plan's head
//! chain value, so every `query!` of one rustc run shares one).
//!
//! The rules, documented for users in `docs/queries.md`:
//! - **types** follow the declared type's affinity: `INTEGER` → `i64`,
//!   `REAL` → `f64`, `TEXT` → `String`, `BLOB` → `Vec<u8>`; no declared type
//!   (an expression) or `NUMERIC` affinity → [`SqlType::Any`], a dynamic
//!   value;
//! - **nullability**: a direct reference to a `NOT NULL` column, an
//!   `INTEGER PRIMARY KEY`, a `WITHOUT ROWID` table's key or the rowid is
//!   not null, unless its table is on the nullable side of an outer join,
//!   the query is an aggregate without `GROUP BY` or a compound `SELECT`;
//!   a bare `count(...)` is a non-null integer; everything else may be null;
//! - **overrides** in the alias, as in sqlx: `AS "n!"`, `AS "n?"`,
//!   `AS "n: Type"`.
//!
//! ```
//! # let scratch = std::env::temp_dir().join(format!("ds-query-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&scratch).unwrap();
//! # std::fs::write(scratch.join("0001_init.sql"), "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT);").unwrap();
//! use durable_schema_compiler::{check_dir, query, CacheSetting, Options};
//!
//! let options = Options::default().with_cache(CacheSetting::Off);
//! let plan = check_dir(&scratch, ".", &options).unwrap();
//! let described = query::describe(&plan, "migrations", "SELECT id, body FROM t WHERE id = ?").unwrap();
//! assert_eq!(described.columns[0].rust_type(), "i64");
//! assert_eq!(described.columns[1].rust_type(), "Option<String>");
//! assert_eq!(described.parameters[0].column.as_ref().map(|c| c.ty), Some(query::SqlType::Integer));
//! # std::fs::remove_dir_all(&scratch).unwrap();
//! ```

mod shape;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use std::path::Path;

use crate::{check_dir, tracking, Diagnostic, Options, Plan, SchemaObject};
use durable_schema_runtime::query::uses::UsesBuilder;
use durable_schema_workerd::{configure_with, Authorizer};
use rusqlite::hooks::{AuthAction, AuthContext};
use shape::Shape;

/// A declared type's class, as the generated code maps it to Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    /// `INTEGER` affinity: `i64`.
    Integer,
    /// `REAL` affinity: `f64`.
    Real,
    /// `TEXT` affinity: `String`.
    Text,
    /// A declared `BLOB`: `Vec<u8>`.
    Blob,
    /// No declared type (an expression), `NUMERIC` affinity (`NUMERIC`,
    /// `DECIMAL`, `BOOLEAN`, `DATE`) or a STRICT table's `ANY`: the value
    /// as SQLite returns it (`Value`), whose storage class varies by row.
    Any,
}

impl SqlType {
    /// The class of a declared type, by SQLite's affinity rules
    /// (<https://sqlite.org/datatype3.html#determination_of_column_affinity>),
    /// except that a declared `BLOB` is a blob (its affinity stores
    /// anything, but the schema says what it holds) and no declared type is
    /// [`SqlType::Any`].
    pub fn of_declared(declared: Option<&str>) -> Self {
        let Some(declared) = declared.map(str::to_ascii_uppercase) else {
            return Self::Any;
        };
        if declared.contains("INT") {
            Self::Integer
        } else if ["CHAR", "CLOB", "TEXT"]
            .iter()
            .any(|t| declared.contains(t))
        {
            Self::Text
        } else if declared.contains("BLOB") {
            Self::Blob
        } else if ["REAL", "FLOA", "DOUB"]
            .iter()
            .any(|t| declared.contains(t))
        {
            Self::Real
        } else {
            Self::Any
        }
    }

    /// The Rust type the generated code uses (not nullable).
    pub fn rust_type(self) -> &'static str {
        match self {
            Self::Integer => "i64",
            Self::Real => "f64",
            Self::Text => "String",
            Self::Blob => "Vec<u8>",
            Self::Any => "Value",
        }
    }

    /// The marker type's name in the runtime's `query` module
    /// (`check_arg::<Marker, _>`).
    pub fn marker(self) -> &'static str {
        match self {
            Self::Integer => "Integer",
            Self::Real => "Real",
            Self::Text => "Text",
            Self::Blob => "Blob",
            Self::Any => "Any",
        }
    }
}

/// An override in a column's alias, as in sqlx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// `AS "name!"`: never null.
    NotNull,
    /// `AS "name?"`: may be null.
    Nullable,
    /// `AS "name: Type"`: decoded as `Type`, nullability as written.
    Type(String),
}

/// What kind of statement a query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT`, `WITH … SELECT`, `VALUES`.
    Select,
    /// `INSERT`, `REPLACE`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// Anything else a Durable Object runs (`PRAGMA table_info`, DDL).
    Other,
}

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// The field name: the column's name or alias without its override.
    pub name: String,
    /// The name as SQLite reports it (the alias as written).
    pub written: String,
    /// The override parsed from the alias.
    pub override_: Option<Override>,
    /// The class of the declared type (through views and subqueries).
    pub ty: SqlType,
    /// Whether it may be null, overrides applied.
    pub nullable: bool,
    /// The table and column it comes from, when it is a direct reference.
    pub origin: Option<(String, String)>,
}

impl OutputColumn {
    /// The Rust type of the field, as the generated code writes it
    /// (`Value` is never wrapped: it has a null of its own).
    pub fn rust_type(&self) -> String {
        if let Some(Override::Type(ty)) = &self.override_ {
            return ty.clone();
        }
        let base = self.ty.rust_type();
        if self.nullable && self.ty != SqlType::Any {
            format!("Option<{base}>")
        } else {
            base.to_owned()
        }
    }
}

/// A parameter's column, when the statement makes it clear (`col = ?`,
/// `INSERT INTO t (col) VALUES (?)`, `SET col = ?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterColumn {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// The class of its declared type.
    pub ty: SqlType,
}

/// One parameter, in SQLite's order (the arguments bind in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// SQLite's 1-based index.
    pub index: usize,
    /// `?NNN`, `:name`, `@name` or `$name` as written; `None` for `?`.
    pub name: Option<String>,
    /// The column it is compared with or assigned to, when clear.
    pub column: Option<ParameterColumn>,
}

/// A prepared query, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// What kind of statement it is.
    pub kind: StatementKind,
    /// Whether it only reads (`sqlite3_stmt_readonly`).
    pub readonly: bool,
    /// Its result columns (none for a statement without `RETURNING`).
    pub columns: Vec<OutputColumn>,
    /// Its parameters, in order.
    pub parameters: Vec<Parameter>,
    /// What it reads and writes, in the runtime's format
    /// (`durable_schema_runtime::query::Uses`), recorded from SQLite's
    /// authorizer while it prepared: the judgement of this query over a
    /// newer schema at run time.
    pub uses: String,
}

/// One action the authorizer allowed while a query prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Used {
    /// A column read (`None`: the table without a column, `count(*)`).
    Read(String, Option<String>),
    /// An `INSERT` into the table.
    Insert(String),
    /// An `UPDATE` of the column.
    Update(String, String),
    /// A `DELETE` from the table.
    Delete(String),
}

/// What the authorizer saw while a query prepared: each action and the
/// trigger or view it came from (the authorizer's accessor).
type Seen = Arc<Mutex<Option<Vec<(Used, Option<String>)>>>>;

fn observed(ctx: &AuthContext<'_>) -> Option<Used> {
    Some(match ctx.action {
        AuthAction::Read {
            table_name,
            column_name,
        } => Used::Read(
            table_name.to_owned(),
            Some(column_name)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        ),
        AuthAction::Insert { table_name } => Used::Insert(table_name.to_owned()),
        AuthAction::Update {
            table_name,
            column_name,
        } => Used::Update(table_name.to_owned(), column_name.to_owned()),
        AuthAction::Delete { table_name } => Used::Delete(table_name.to_owned()),
        _ => return None,
    })
}

/// The schema at a plan's head, in an SQLite configured like a Durable
/// Object's: what queries prepare against.
pub struct HeadDb {
    conn: Connection,
    rules: Authorizer,
    /// Lowercase view name → its `CREATE VIEW`.
    views: HashMap<String, String>,
    /// Lowercase trigger names: an accessor that is one means the
    /// statement fires it.
    triggers: HashSet<String>,
    /// Filled while [`HeadDb::describe`] prepares a query.
    seen: Seen,
}

impl std::fmt::Debug for HeadDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadDb").finish_non_exhaustive()
    }
}

impl HeadDb {
    /// A new in-memory database holding `schema` (a plan's head schema)
    /// and the tracking table `table`, with workerd's rules installed as
    /// workerd installs them (the tracking table is readable, as on a real
    /// object).
    pub fn new(schema: &[SchemaObject], table: &str) -> Result<Self, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        let seen: Seen = Arc::default();
        let record = Arc::clone(&seen);
        // Only what the rules allow, outside trusted reads, while a query
        // prepares (`describe` switches the record on and off).
        let rules = configure_with(&conn, None, move |ctx| {
            let mut record = record.lock().unwrap_or_else(PoisonError::into_inner);
            if let (Some(list), Some(used)) = (record.as_mut(), observed(ctx)) {
                list.push((used, ctx.accessor.map(str::to_owned)));
            }
        })
        .map_err(|e| e.to_string())?;
        // Tables and indexes first, then views and triggers, each in the
        // order the chain created them: a view over a table the chain
        // rebuilt later was created before the new table.
        let early = |o: &&SchemaObject| o.kind == "table" || o.kind == "index";
        let ordered = schema
            .iter()
            .filter(early)
            .chain(schema.iter().filter(|o| !early(o)));
        rules
            .trusted(|| -> rusqlite::Result<()> {
                conn.execute_batch(&tracking::create_table(table))?;
                for object in ordered {
                    conn.execute_batch(&object.sql)?;
                }
                Ok(())
            })
            .map_err(|e| format!("cannot build the head schema: {e}"))?;
        let views = schema
            .iter()
            .filter(|o| o.kind == "view")
            .map(|o| (o.name.to_ascii_lowercase(), o.sql.clone()))
            .collect();
        let triggers = schema
            .iter()
            .filter(|o| o.kind == "trigger")
            .map(|o| o.name.to_ascii_lowercase())
            .collect();
        Ok(Self {
            conn,
            rules,
            views,
            triggers,
            seen,
        })
    }

    /// The connection, with the rules installed (for tests that run the
    /// schema's rows).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Prepares `sql` and describes it; a statement that does not prepare,
    /// breaks a Durable Object's rules or cannot be typed is a
    /// [`Diagnostic`] whose message points into the query.
    pub fn describe(&self, sql: &str) -> Result<Description, Box<Diagnostic>> {
        let _ = self.rules.take_denial();
        let trimmed = sql.trim();
        if trimmed.is_empty() || trimmed.chars().all(|c| c == ';' || c.is_whitespace()) {
            return Err(Box::new(
                error("the query is empty".to_owned())
                    .help("write one SQL statement, e.g. `SELECT id FROM users`"),
            ));
        }
        if sql.len() > durable_schema_workerd::MAX_STATEMENT_BYTES {
            return Err(Box::new(
                error(format!(
                "the query is {} bytes, over a Durable Object's limit of {} bytes per statement",
                sql.len(),
                durable_schema_workerd::MAX_STATEMENT_BYTES
            ))
                .help("split the statement, or bind large values as arguments"),
            ));
        }
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(Vec::new());
        let prepared = self.conn.prepare(sql);
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        let stmt = match prepared {
            Ok(stmt) => stmt,
            Err(e) => return Err(Box::new(self.prepare_error(sql, &e))),
        };
        let parameters = parameters(&stmt)?;
        let index_of = |name: &str| stmt.parameter_index(name).ok().flatten();
        let shape = Shape::of(sql, &index_of, &self.views);
        let parameters = parameters
            .into_iter()
            .map(|mut p| {
                p.column = shape
                    .parameter_columns
                    .get(&p.index)
                    .and_then(|(t, c)| self.column_type(t, c));
                p
            })
            .collect();
        let columns = self.columns(&stmt, &shape)?;
        Ok(Description {
            kind: kind(sql),
            readonly: stmt.readonly(),
            columns,
            parameters,
            uses: self.uses(&seen, &shape),
        })
    }

    /// The [`Description::uses`] of a statement whose preparation the
    /// authorizer reported as `seen`.
    ///
    /// The authorizer reports every column read (each one of `SELECT *`,
    /// those of `RETURNING`, the view and the tables behind it, each with
    /// the view or trigger it came from), each column an `UPDATE` assigns,
    /// and the table of an `INSERT` or `DELETE`, but not an `INSERT`'s
    /// columns: those come from its column list (the parse), or are every
    /// column of the table (no list, a trigger's insert, or a statement the
    /// parser cannot read), which is what such an insert needs.
    fn uses(&self, seen: &[(Used, Option<String>)], shape: &Shape) -> String {
        let mut uses = UsesBuilder::new();
        for (used, accessor) in seen {
            if let Some(trigger) = accessor
                .as_deref()
                .filter(|a| self.triggers.contains(&a.to_ascii_lowercase()))
            {
                uses.trigger(trigger);
            }
            match used {
                Used::Read(table, column) => uses.read(table, column.as_deref()),
                Used::Update(table, column) => uses.write(table, Some(column)),
                Used::Delete(table) => uses.write(table, None),
                Used::Insert(table) => {
                    let listed = shape.insert.as_ref().filter(|(t, columns)| {
                        accessor.is_none() && t.eq_ignore_ascii_case(table) && !columns.is_empty()
                    });
                    let columns = match listed {
                        Some((_, columns)) => columns.clone(),
                        None => self.all_columns(table),
                    };
                    uses.write(table, None);
                    for c in &columns {
                        uses.write(table, Some(c));
                    }
                }
            }
        }
        // An upsert's `DO UPDATE SET` columns, which the parse names.
        if let Some((table, _)) = &shape.insert {
            for c in &shape.upsert_columns {
                uses.write(table, Some(c));
            }
        }
        uses.finish()
    }

    /// Every column of `table` (hidden ones too: generated columns).
    fn all_columns(&self, table: &str) -> Vec<String> {
        self.rules
            .trusted(|| -> rusqlite::Result<Vec<String>> {
                let mut stmt = self
                    .conn
                    .prepare("SELECT name FROM pragma_table_xinfo(?1)")?;
                let names = stmt
                    .query_map([table], |r| r.get::<_, String>(0))?
                    .collect();
                names
            })
            .unwrap_or_default()
    }

    /// The diagnostic of a statement SQLite refused.
    fn prepare_error(&self, sql: &str, e: &rusqlite::Error) -> Diagnostic {
        if let Some(denial) = self.rules.take_denial() {
            return error(format!(
                "the query breaks a Durable Object rule: {}",
                denial.message()
            ))
            .help(denial.help().to_owned())
            .rule(denial.rule().name());
        }
        match e {
            rusqlite::Error::MultipleStatement => {
                error("the query holds more than one statement".to_owned())
                    .help("pass one statement per `query!`, without a second `;`-separated one")
            }
            rusqlite::Error::SqlInputError { msg, offset, .. } => {
                match usize::try_from(*offset).ok().filter(|&o| o < sql.len()) {
                    Some(offset) => {
                        let (line, column) = crate::split::line_col(sql, offset);
                        let token = token_at(sql, offset);
                        error(format!(
                            "{msg} (at `{token}`, {line}:{column} of the query)"
                        ))
                    }
                    None => error(msg.clone()),
                }
                .help(help_for(msg))
            }
            rusqlite::Error::SqliteFailure(_, Some(msg)) => error(msg.clone()).help(help_for(msg)),
            other => error(other.to_string()).help(help_for(&other.to_string())),
        }
    }

    /// The declared type of `table.column`, when it is a table's column.
    fn column_type(&self, table: &str, column: &str) -> Option<ParameterColumn> {
        let declared = self
            .rules
            .trusted(|| {
                self.conn
                    .column_metadata(Some("main"), table, column)
                    .map(|(declared, ..)| declared.map(|d| d.to_string_lossy().into_owned()))
            })
            .ok()?;
        Some(ParameterColumn {
            table: table.to_owned(),
            column: column.to_owned(),
            ty: SqlType::of_declared(declared.as_deref()),
        })
    }

    /// The result columns of `stmt`, typed.
    fn columns(
        &self,
        stmt: &rusqlite::Statement<'_>,
        shape: &Shape,
    ) -> Result<Vec<OutputColumn>, Box<Diagnostic>> {
        let declared: Vec<Option<String>> = stmt
            .columns()
            .iter()
            .map(|c| c.decl_type().map(str::to_owned))
            .collect();
        let origins: Vec<Option<(String, String)>> = stmt
            .columns_with_metadata()
            .iter()
            .map(|c| Some((c.table_name()?.to_owned(), c.origin_name()?.to_owned())))
            .collect();
        let mut out: Vec<OutputColumn> = Vec::with_capacity(declared.len());
        for (i, written) in stmt.column_names().into_iter().enumerate() {
            let (name, override_) = parse_alias(written)?;
            if !is_identifier(&name) {
                return Err(Box::new(
                    error(format!(
                        "the result column `{written}` has no name a Rust field can have"
                    ))
                    .help(format!(
                        "give it an alias, e.g. `{written} AS \"{}\"`",
                        suggested_name(written)
                    )),
                ));
            }
            if out.iter().any(|c| c.name == name) {
                return Err(Box::new(
                    error(format!("two result columns are named `{name}`"))
                        .help(format!("give one of them an alias, e.g. `AS {name}_2`")),
                ));
            }
            let origin = origins.get(i).cloned().flatten();
            let mut ty = SqlType::of_declared(declared.get(i).cloned().flatten().as_deref());
            let mut nullable = true;
            if shape.counts.contains(&i) {
                ty = SqlType::Integer;
                nullable = false;
            } else if let Some((table, column)) = &origin {
                nullable = shape.all_nullable
                    || shape.nullable.contains(&table.to_ascii_lowercase())
                    || !shape.reads(table)
                    || !self.never_null(table, column);
            }
            match &override_ {
                Some(Override::NotNull) => nullable = false,
                Some(Override::Nullable) => nullable = true,
                _ => {}
            }
            out.push(OutputColumn {
                name,
                written: written.to_owned(),
                override_,
                ty,
                nullable,
                origin,
            });
        }
        Ok(out)
    }

    /// Whether a row's `table.column` is never null: `NOT NULL`, an
    /// `INTEGER PRIMARY KEY` (the rowid), a `WITHOUT ROWID` table's key,
    /// or the rowid itself.
    fn never_null(&self, table: &str, column: &str) -> bool {
        let read = self.rules.trusted(|| -> rusqlite::Result<bool> {
            let without_rowid: bool = self.conn.query_row(
                "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
                [table],
                |r| r.get(0),
            )?;
            let mut info = self
                .conn
                .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)")?;
            let rows: Vec<(String, String, bool, i64)> = info
                .query_map([table], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let keys = rows.iter().filter(|r| r.3 > 0).count();
            let Some(row) = rows.iter().find(|r| r.0.eq_ignore_ascii_case(column)) else {
                // Not a declared column: the rowid under one of its names.
                return Ok(!without_rowid
                    && ["rowid", "oid", "_rowid_"]
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(column)));
            };
            let rowid_alias =
                !without_rowid && keys == 1 && row.3 == 1 && row.1.eq_ignore_ascii_case("INTEGER");
            Ok(row.2 || rowid_alias || (without_rowid && row.3 > 0))
        });
        read.unwrap_or(false)
    }
}

thread_local! {
    /// The head databases built in this process, by tracking table and head
    /// chain value: a proc macro's process checks every `query!` of a crate
    /// against one.
    static HEADS: RefCell<Vec<(String, Rc<HeadDb>)>> = const { RefCell::new(Vec::new()) };
}

/// How many head databases a process keeps (rust-analyzer's long-lived
/// proc-macro server sees every edit of the migrations).
const MAX_HEADS: usize = 4;

/// The head database of `plan` with tracking table `table`, built once per
/// process and head.
pub fn head_db(plan: &Plan, table: &str) -> Result<Rc<HeadDb>, Box<Diagnostic>> {
    let key = format!("{table}\0{}", plan.head_chain());
    if let Some(db) = HEADS.with(|h| {
        h.borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, db)| Rc::clone(db))
    }) {
        return Ok(db);
    }
    let db =
        Rc::new(HeadDb::new(&plan.head_schema, table).map_err(|e| Box::new(Diagnostic::plain(e)))?);
    HEADS.with(|h| {
        let mut h = h.borrow_mut();
        if h.len() >= MAX_HEADS {
            h.remove(0);
        }
        h.push((key, Rc::clone(&db)));
    });
    Ok(db)
}

thread_local! {
    /// The plans checked in this process for queries, by directory and
    /// options, with the fingerprint of the directory they were checked
    /// from.
    static PLANS: RefCell<Vec<(PlanKey, Rc<Plan>)>> = const { RefCell::new(Vec::new()) };
}

/// What a memoized plan was checked from: the directory, the options, and
/// every file's name, length and modification time.
#[derive(PartialEq, Eq)]
struct PlanKey {
    dir: std::path::PathBuf,
    table: String,
    baseline: bool,
    files: Vec<(std::ffi::OsString, u64, Option<std::time::SystemTime>)>,
}

impl PlanKey {
    fn of(base: &Path, dir: &str, options: &Options) -> Option<Self> {
        let dir = base.join(dir);
        let mut files = Vec::new();
        // The migrations, the lock, and a drizzle directory's journal.
        for listed in [dir.clone(), dir.join("meta")] {
            let Ok(entries) = std::fs::read_dir(&listed) else {
                continue;
            };
            for entry in entries {
                let entry = entry.ok()?;
                let meta = entry.metadata().ok()?;
                files.push((
                    entry.path().into_os_string(),
                    meta.len(),
                    meta.modified().ok(),
                ));
            }
        }
        files.sort();
        Some(Self {
            dir,
            table: options.table.clone(),
            baseline: options.baseline,
            files,
        })
    }
}

/// The plan of `dir` (under `base`) checked with `options`, for the
/// checked queries: [`check_dir`] (the verdict cache, else the replay),
/// memoized in this process while no file of the directory changes its
/// name, length or modification time. Every `query!` of a crate needs its
/// schema's plan, and a verdict-cache hit still reads and hashes every
/// file (milliseconds at 200 migrations); listing the directory costs a
/// tenth of that. The attribute itself always calls [`check_dir`].
pub fn plan(base: &Path, dir: &str, options: &Options) -> Result<Rc<Plan>, Vec<Diagnostic>> {
    let key = PlanKey::of(base, dir, options);
    if let Some(key) = &key {
        let found = PLANS.with(|p| {
            p.borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, plan)| Rc::clone(plan))
        });
        if let Some(plan) = found {
            return Ok(plan);
        }
    }
    let plan = Rc::new(check_dir(base, dir, options)?);
    if let Some(key) = key {
        PLANS.with(|p| {
            let mut p = p.borrow_mut();
            p.retain(|(k, _)| {
                (&k.dir, &k.table, k.baseline) != (&key.dir, &key.table, key.baseline)
            });
            if p.len() >= MAX_HEADS {
                p.remove(0);
            }
            p.push((key, Rc::clone(&plan)));
        });
    }
    Ok(plan)
}

/// Prepares `sql` against the head schema of `plan` (tracking table
/// `table`) and describes it (see [`HeadDb::describe`]).
pub fn describe(plan: &Plan, table: &str, sql: &str) -> Result<Description, Box<Diagnostic>> {
    head_db(plan, table)?.describe(sql)
}

fn error(message: String) -> Diagnostic {
    Diagnostic::plain(message)
}

/// Help for a message SQLite gave.
fn help_for(message: &str) -> String {
    if message.contains("no such table") {
        "the schema at the head of the migrations has no such table; check the name or add a migration".to_owned()
    } else if message.contains("no such column") {
        "the schema at the head of the migrations has no such column; check the name or add a migration".to_owned()
    } else if message.contains("no such function") {
        "a Durable Object has only workerd's SQL functions; compute it in Rust instead".to_owned()
    } else if message.contains("too many SQL variables") {
        "a Durable Object binds at most 100 parameters per statement; split the statement"
            .to_owned()
    } else if message.contains("syntax error")
        || message.starts_with("unrecognized token")
        || message.starts_with("incomplete input")
    {
        "fix the SQL at that point of the string literal".to_owned()
    } else {
        "the statement must prepare against the schema at the head of the migrations".to_owned()
    }
}

/// The token SQLite's offset points at, for the message.
fn token_at(sql: &str, offset: usize) -> String {
    let rest = &sql[offset..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| i > 0 && !(c.is_alphanumeric() || c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    let token = rest[..end].trim();
    if token.is_empty() {
        rest.chars().next().map(String::from).unwrap_or_default()
    } else {
        token.chars().take(40).collect()
    }
}

/// The parameters of `stmt`; a gap in `?NNN` numbering is an error.
fn parameters(stmt: &rusqlite::Statement<'_>) -> Result<Vec<Parameter>, Box<Diagnostic>> {
    let count = stmt.parameter_count();
    let parameters: Vec<Parameter> = (1..=count)
        .map(|index| Parameter {
            index,
            name: stmt.parameter_name(index).map(str::to_owned),
            column: None,
        })
        .collect();
    let numbered = parameters
        .iter()
        .any(|p| p.name.as_deref().is_some_and(|n| n.starts_with('?')));
    if numbered {
        if let Some(missing) = parameters.iter().find(|p| p.name.is_none()) {
            return Err(Box::new(
                error(format!(
                    "the query's numbered parameters skip `?{}`",
                    missing.index
                ))
                .help(format!(
                    "number the parameters `?1` to `?{count}` without gaps, one argument each"
                )),
            ));
        }
    }
    Ok(parameters)
}

/// The statement's kind, from its first word.
fn kind(sql: &str) -> StatementKind {
    let words = durable_schema_workerd::words::words(sql);
    let first = words.first().map(|w| w.to_ascii_lowercase());
    match first.as_deref() {
        Some("select" | "with" | "values") => StatementKind::Select,
        Some("insert" | "replace") => StatementKind::Insert,
        Some("update") => StatementKind::Update,
        Some("delete") => StatementKind::Delete,
        _ => StatementKind::Other,
    }
}

/// The field name and override of a column named `written`.
fn parse_alias(written: &str) -> Result<(String, Option<Override>), Box<Diagnostic>> {
    if let Some((name, ty)) = written.split_once(':') {
        let ty = ty.trim();
        if ty.is_empty() {
            return Err(Box::new(
                error(format!("the alias `{written}` names no type after `:`"))
                    .help("write the Rust type after the colon, e.g. `AS \"n: i32\"`"),
            ));
        }
        // `n!: T` and `n?: T` (sqlx's forms): the type decides.
        let name = name.trim().trim_end_matches(['!', '?']);
        return Ok((name.to_owned(), Some(Override::Type(ty.to_owned()))));
    }
    if let Some(name) = written.strip_suffix('!') {
        return Ok((name.to_owned(), Some(Override::NotNull)));
    }
    if let Some(name) = written.strip_suffix('?') {
        return Ok((name.to_owned(), Some(Override::Nullable)));
    }
    Ok((written.to_owned(), None))
}

/// Whether `name` can be a field's name (ASCII; a keyword becomes a raw
/// identifier).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
        && !matches!(name, "self" | "Self" | "super" | "crate")
}

/// A field name for the help: the column's words joined by `_`.
fn suggested_name(written: &str) -> String {
    let words: Vec<String> = written
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    match words.first() {
        Some(first) if first.starts_with(|c: char| c.is_ascii_alphabetic()) => words.join("_"),
        _ => "n".to_owned(),
    }
}

#[cfg(test)]
mod tests;
