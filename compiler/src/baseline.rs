//! The baseline for new objects: the state the whole chain leaves an empty
//! database in, as one script the runtime runs in one transaction instead
//! of every migration (seconds at a thousand migrations on a Durable
//! Object).
//!
//! It is derived from the replay's final database: the `CREATE` statement
//! of every table and index (in the chain's order), the rows the migrations
//! left (rowids included), the `AUTOINCREMENT` counters, then every view and
//! trigger (after the rows, so no trigger fires), all between
//! `PRAGMA defer_foreign_keys = ON` and `OFF` (rows go in table by table,
//! not in the order the chain wrote them). The tracking rows are not in it:
//! the runtime writes them with the same statement as a full run, so
//! versions, checksums and chain values are identical.
//!
//! Values the chain took from the clock (a seed row's `CURRENT_TIMESTAMP`
//! default, `datetime('now')`, a trigger stamping `updated_at`) are written
//! as the expression that reads the clock, not as the instant of the build:
//! the replay's clock stands still, the chain is replayed again at a second
//! instant, and each value that differs gets the default or clock call of
//! the chain that gives both (see the `clock` module), so a new object differs from
//! one the chain created only in the instants the clock returned.
//!
//! It is trusted only once verified: applied to a fresh database configured
//! like a Durable Object's (workerd's authorizer and limits), its clock at
//! the replay's instant, it must give the same [`CanonicalDump`] as the
//! replay, and, when it reads the clock, the same as the second replay at
//! the second instant. There is no baseline, and new objects run the chain,
//! when:
//! - a migration did something a build cannot reproduce: it called
//!   `random()` or `randomblob()`, or inserted into a table whose column
//!   defaults to one (see `replay::sandbox::NOT_REPRODUCIBLE`);
//! - the chain's result depends on the clock otherwise than by values a
//!   clock expression of the chain gives: a clock call in a `WHERE`,
//!   `WHEN`, `ON` or `HAVING` clause (two instants cannot show what it
//!   decides), a value computed from the clock and a column
//!   (`name || datetime('now')`), rows or counters that differ between the
//!   two instants, or a chain that fails at the second one;
//! - a migration called `total_changes()`, or inserted into a table whose
//!   column defaults to it: it counts every write since workerd opened the
//!   database (see `replay::sandbox::CONNECTION_HISTORY`).
//!   `last_insert_rowid()` and `changes()` are reproduced: the executor
//!   writes a migration's tracking row before its statements, so they are
//!   the migration's version and 1 until its own first write, and the
//!   replay writes the same row first;
//! - a migration wrote rows while reading what lists the tables
//!   (`sqlite_schema`, `pragma_table_list`), which on a Durable Object
//!   holds workerd's own `_cf_` tables, absent from the replay (SQLite's
//!   own reads of `sqlite_schema` for a `CREATE`, `ALTER` or `DROP` do not
//!   count);
//! - a virtual table holds rows (its module's shadow tables are its
//!   business, not ours);
//! - the chain leaves a broken foreign key (the replay's deferred checks
//!   would have refused most; this is the rest);
//! - a row is longer, as SQL, than a Durable Object's statement limit;
//! - the baseline fails or differs when verified (a statement that passes a
//!   Durable Object's limit is named, with the limit).
//!
//! Rows go in by statements cut under a Durable Object's limits: a length
//! (`BATCH_BYTES`, under `SQLITE_LIMIT_SQL_LENGTH`), and a program of at
//! most half of `SQLITE_LIMIT_VDBE_OP` operations, measured for each table
//! on the replay database (thousands of rows of a few bytes reach the
//! second first).
//! - it would be larger than both the migrations' text and [`MAX_BYTES`].

mod canonical;
mod clock;

use rusqlite::types::Value;

pub use canonical::CanonicalDump;
use canonical::{has_rowid_alias, quote, rowid_name, rows, select_columns, table_list};
use clock::ClockCells;
pub(crate) use clock::SECOND_INSTANT;

use crate::replay::{self, Replayer};
use crate::split::PlannedStatement;
use crate::tracking;
use durable_schema_workerd::{MAX_STATEMENT_BYTES, MAX_VDBE_OPS};

/// The baseline's size above which it must also be smaller than the
/// migrations' text to be embedded: it ships in the Worker.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// A script that takes an empty database to the chain's final state, for
/// the executor to run in one transaction on a new object (see the module
/// docs): what the macro embeds as the runtime's
/// [`Baseline`](durable_schema_runtime::Baseline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineScript {
    /// The statements, one after the other, each ending with `;` and a
    /// newline.
    pub sql: String,
    /// The statements, as spans of `sql`.
    pub statements: Vec<PlannedStatement>,
}

/// Why a plan has no baseline: new objects run every migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoBaseline {
    /// `baseline = false`.
    Off,
    /// The chain's result cannot be reproduced from a script built now, or
    /// the script did not verify; the note says why.
    Because(String),
}

impl std::fmt::Display for NoBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("turned off (`baseline = false`)"),
            Self::Because(why) => f.write_str(why),
        }
    }
}

/// Statements of rows are cut at this many bytes, unless one row alone is
/// longer: under a Durable Object's 100 KB statement limit
/// ([`MAX_STATEMENT_BYTES`], which no statement may pass).
const BATCH_BYTES: usize = 64 * 1024;

/// The virtual-machine operations a statement of rows may compile to: half
/// of workerd's `SQLITE_LIMIT_VDBE_OP`, which SQLite compares with the size
/// of the program's allocation, doubled as it grows (see
/// [`MAX_VDBE_OPS`]); a program this long always fits.
const BATCH_OPS: usize = MAX_VDBE_OPS as usize / 2;

/// What a statement inserting rows into one table compiles to, measured on
/// the replay database (whose limits and schema are the baseline's):
/// `fixed` operations, plus `per_row` for each row of plain literals and
/// `per_cast` more for each `CAST(X'…' AS TEXT)` (text holding a NUL).
struct OpCost {
    fixed: usize,
    per_row: usize,
    per_cast: usize,
}

impl OpCost {
    /// Measures `head` (`INSERT INTO t (…) VALUES `) with `width` values a
    /// row. SQLite compiles a row of one `VALUES` clause alone and two or
    /// more as a co-routine, so the costs are the differences between two
    /// and three rows.
    fn measure(conn: &rusqlite::Connection, head: &str, width: usize) -> rusqlite::Result<Self> {
        let ops = |value: &str, rows: usize| {
            explained(
                conn,
                head,
                &format!("({})", vec![value; width].join(", ")),
                rows,
            )
        };
        let cast = "CAST(X'00' AS TEXT)";
        let (two, three) = (ops("NULL", 2)?, ops("NULL", 3)?);
        let per_row = three.saturating_sub(two).max(1);
        let per_cast_row = ops(cast, 3)?.saturating_sub(ops(cast, 2)?);
        Ok(Self {
            fixed: two.saturating_sub(2 * per_row),
            per_row,
            per_cast: per_cast_row.saturating_sub(per_row).div_ceil(width.max(1)),
        })
    }

    /// The operations a row of `width` values adds to a statement of
    /// `head` when one of them is the expression `expr` rather than a
    /// literal, counting once per row what SQLite may compute once per
    /// statement.
    fn expression(
        &self,
        conn: &rusqlite::Connection,
        head: &str,
        width: usize,
        expr: &str,
    ) -> rusqlite::Result<usize> {
        let row = format!("(({expr}){})", ", NULL".repeat(width.saturating_sub(1)));
        let (two, three) = (
            explained(conn, head, &row, 2)?,
            explained(conn, head, &row, 3)?,
        );
        let per_row = three.saturating_sub(two);
        let fixed = two.saturating_sub(2 * per_row);
        Ok(per_row.saturating_sub(self.per_row) + fixed.saturating_sub(self.fixed))
    }

    /// The operations `row` adds to a statement.
    fn of(&self, row: &[Value]) -> usize {
        let casts = row
            .iter()
            .filter(|v| matches!(v, Value::Text(t) if t.contains('\0')))
            .count();
        self.per_row + casts * self.per_cast
    }
}

/// The operations of `head` followed by `rows` copies of `row`, as SQLite
/// compiles it on `conn`.
fn explained(
    conn: &rusqlite::Connection,
    head: &str,
    row: &str,
    rows: usize,
) -> rusqlite::Result<usize> {
    let sql = format!("EXPLAIN {head}{}", vec![row; rows].join(", "));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.raw_query();
    let mut count = 0;
    while rows.next()?.is_some() {
        count += 1;
    }
    Ok(count)
}

/// `value` as an SQL literal that SQLite reads back as the same value.
fn literal(value: &Value, out: &mut String) {
    use std::fmt::Write;
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        // `{:?}` is the shortest text that reads back as the same f64, and
        // always has a `.` or an exponent, so SQLite reads a real.
        Value::Real(r) if r.is_finite() => {
            let _ = write!(out, "{r:?}");
        }
        Value::Real(r) => out.push_str(if *r > 0.0 { "9e999" } else { "-9e999" }),
        Value::Text(t) if t.contains('\0') => {
            out.push_str("CAST(");
            hex(t.as_bytes(), out);
            out.push_str(" AS TEXT)");
        }
        Value::Text(t) => {
            out.push('\'');
            out.push_str(&t.replace('\'', "''"));
            out.push('\'');
        }
        Value::Blob(b) => hex(b, out),
    }
}

fn hex(bytes: &[u8], out: &mut String) {
    use std::fmt::Write;
    out.push_str("X'");
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push('\'');
}

/// The baseline script as it is built: one text, its statements' spans.
#[derive(Default)]
struct Script {
    sql: String,
    statements: Vec<PlannedStatement>,
    line: u32,
}

impl Script {
    fn push(&mut self, statement: &str) {
        let start = self.sql.len();
        self.sql.push_str(statement);
        let end = self.sql.len();
        self.statements.push(PlannedStatement {
            start,
            end,
            line: self.line + 1,
            column: 1,
            // A new object has no rows to work through in batches.
            batch: false,
            over: None,
        });
        self.sql.push_str(";\n");
        self.line += 1 + u32::try_from(statement.matches('\n').count()).unwrap_or(u32::MAX);
    }

    fn into_baseline(self) -> BaselineScript {
        BaselineScript {
            sql: self.sql,
            statements: self.statements,
        }
    }
}

/// A migration of the chain as the baseline sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replayed<'a> {
    /// What the replay ran.
    pub(crate) script: replay::Script<'a>,
    /// What it did that a build cannot reproduce (see
    /// [`PlannedMigration::unreproducible`](crate::PlannedMigration::unreproducible)).
    pub(crate) unreproducible: Option<&'a str>,
    /// The first value it may have read from the clock (see
    /// [`PlannedMigration::clock`](crate::PlannedMigration::clock)).
    pub(crate) clock: Option<&'a str>,
}

/// The baseline of the chain `migrations` the replayer just replayed
/// without a finding, verified, or why there is none.
pub(crate) fn derive(
    replayer: &Replayer,
    migrations: &[Replayed<'_>],
    table: &str,
) -> Result<BaselineScript, NoBaseline> {
    if let Some(note) = migrations.iter().find_map(|m| m.unreproducible) {
        return Err(NoBaseline::Because(format!(
            "{note}, which a build cannot reproduce"
        )));
    }
    let because = |why: String| NoBaseline::Because(why);
    let chain_bytes = migrations
        .iter()
        .map(|m| m.script.text.len())
        .sum::<usize>();
    // A chain that may have read the clock is replayed again at a second
    // instant: what differs came from the clock (see `clock`).
    let second = match migrations.iter().find_map(|m| m.clock) {
        None => None,
        Some(note) => {
            let at = replayer.clock().saturating_add(SECOND_INSTANT);
            let scripts: Vec<replay::Script<'_>> = migrations.iter().map(|m| m.script).collect();
            let second = replay::replay_at(&scripts, table, at).map_err(|e| {
                because(format!(
                    "{note}, and the chain fails when replayed at another instant ({e}), which a build cannot reproduce"
                ))
            })?;
            let cells = clock::cells(replayer, &second, migrations, table).map_err(|why| {
                because(format!("{note}, and {why}, which a build cannot reproduce"))
            })?;
            Some((second, cells))
        }
    };
    let cells = second.as_ref().map(|(_, cells)| cells);
    let script = replayer
        .read(|conn| build(conn, table, cells))
        .map_err(|e| because(format!("cannot read the replayed database: {e}")))?
        .map_err(because)?;
    if script.sql.len() > MAX_BYTES.max(chain_bytes) {
        return Err(because(format!(
            "the baseline would be {} KB, larger than the migrations ({} KB) and {} KB",
            script.sql.len() / 1024,
            chain_bytes / 1024,
            MAX_BYTES / 1024
        )));
    }
    let baseline = script.into_baseline();
    verify(replayer, &baseline, table).map_err(because)?;
    // The values of the clock are right at the second instant too: the
    // baseline reads the clock, it does not hold the first instant.
    if let Some((second, cells)) = &second {
        if !cells.is_empty() {
            verify(second, &baseline, table)
                .map_err(|why| because(format!("at another instant, {why}")))?;
        }
    }
    Ok(baseline)
}

/// Builds the script from the replayed database `conn` (read past the
/// authorizer), or says why it cannot. `cells` are the values that came
/// from the clock, written as the expressions that give them.
fn build(
    conn: &rusqlite::Connection,
    table: &str,
    cells: Option<&ClockCells>,
) -> rusqlite::Result<Result<Script, String>> {
    let list = table_list(conn)?;
    // Table by table: the whole-database pragma compiles to code for every
    // table, which passes workerd's `SQLITE_LIMIT_VDBE_OP` (25,000; SQLite
    // then says "out of memory") at about a thousand tables.
    // SQLite's own tables have no foreign keys (and `_cf_` names cannot be
    // created by a migration).
    for (name, kind, _) in &list {
        if kind != "table" || tracking::reserved_prefix(name).is_some() {
            continue;
        }
        let broken = conn
            .prepare(&tracking::foreign_key_check(name))?
            .exists([])?;
        if broken {
            return Ok(Err(format!(
                "the chain leaves a broken foreign key in `{name}`"
            )));
        }
    }
    // By name as SQLite compares names: looked up once per schema object.
    let kinds: std::collections::HashMap<String, (&str, bool)> = list
        .iter()
        .map(|(n, kind, wr)| (n.to_ascii_lowercase(), (kind.as_str(), *wr)))
        .collect();
    let kind_of = |name: &str| kinds.get(&name.to_ascii_lowercase()).copied();
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_schema \
         WHERE sql IS NOT NULL ORDER BY rowid",
    )?;
    let objects: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let ours =
        |name: &str| tracking::owns(table, name) || tracking::reserved_prefix(name).is_some();
    // Shadow tables come with their virtual table's `CREATE`.
    let objects: Vec<_> = objects
        .into_iter()
        .filter(|(_, name, tbl, _)| {
            !ours(name) && !ours(tbl) && kind_of(name).map(|k| k.0) != Some("shadow")
        })
        .collect();
    let mut script = Script::default();
    script.push("PRAGMA defer_foreign_keys = ON");
    // Tables and their indexes first, in the order the chain created them:
    // SQLite scans `sqlite_schema` after every `CREATE`, so each one costs
    // the size of the schema so far, and interleaving them halves what the
    // indexes pay compared with creating every table first (a tenth of a
    // second per thousand objects). Indexes are maintained as the rows go
    // in, which costs less than that here, and triggers, which must not
    // fire, come after the rows with the views.
    let early = |o: &&(String, String, String, String)| o.0 == "table" || o.0 == "index";
    for (_, _, _, sql) in objects.iter().filter(early) {
        script.push(sql);
    }
    let tables: Vec<&(String, String, String, String)> =
        objects.iter().filter(|o| o.0 == "table").collect();
    for (_, name, _, _) in &tables {
        let Some((kind, without_rowid)) = kind_of(name) else {
            continue;
        };
        if kind == "virtual" {
            let held = conn
                .prepare(&format!("SELECT 1 FROM {} LIMIT 1", quote(name)))
                .and_then(|mut s| s.exists([]));
            match held {
                Ok(false) => continue,
                Ok(true) => return Ok(Err(format!("the virtual table `{name}` holds rows"))),
                Err(e) => return Ok(Err(format!("cannot read the virtual table `{name}`: {e}"))),
            }
        }
        let cells = cells.and_then(|c| c.of(name));
        if let Err(why) = insert_rows(conn, name, without_rowid, cells, &mut script)? {
            return Ok(Err(why));
        }
    }
    // `sqlite_sequence` exists once an AUTOINCREMENT table was created.
    if kind_of("sqlite_sequence").is_some() {
        let mut stmt = conn.prepare("SELECT name, seq FROM sqlite_sequence ORDER BY rowid")?;
        let counters: Vec<(String, Value)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // The inserts above set each counter to the highest rowid; the chain
        // may have left it higher (deleted rows) or set it by hand.
        script.push("DELETE FROM sqlite_sequence");
        if !counters.is_empty() {
            let mut insert = String::from("INSERT INTO sqlite_sequence (name, seq) VALUES ");
            for (i, (name, seq)) in counters.iter().enumerate() {
                if i > 0 {
                    insert.push_str(", ");
                }
                insert.push('(');
                literal(&Value::Text(name.clone()), &mut insert);
                insert.push_str(", ");
                literal(seq, &mut insert);
                insert.push(')');
            }
            script.push(&insert);
        }
    }
    for (_, _, _, sql) in objects.iter().filter(|o| !early(o)) {
        script.push(sql);
    }
    script.push(tracking::DEFER_OFF);
    Ok(Ok(script))
}

/// Appends the inserts of `table`'s rows to `script`; `Ok(Err(why))` when
/// they cannot be written.
///
/// Rows are cut into statements that stay under a Durable Object's limits
/// on a statement's length ([`BATCH_BYTES`]) and on its program
/// ([`BATCH_OPS`]): four thousand rows of a few bytes fit 64 KB, but their
/// program passes workerd's `SQLITE_LIMIT_VDBE_OP`, and SQLite then says
/// only "out of memory".
fn insert_rows(
    conn: &rusqlite::Connection,
    table: &str,
    without_rowid: bool,
    cells: Option<&std::collections::HashMap<String, Vec<(usize, String)>>>,
    script: &mut Script,
) -> rusqlite::Result<Result<(), String>> {
    let names = match insert_names(conn, table, without_rowid)? {
        Ok(names) => names,
        Err(why) => return Ok(Err(why)),
    };
    let content = rows(conn, table, &names)?;
    if content.is_empty() {
        return Ok(Ok(()));
    }
    let head = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(table),
        names.join(", ")
    );
    let cost = OpCost::measure(conn, &head, names.len())?;
    // What each clock expression adds to a row, measured once.
    let mut expression_ops: std::collections::HashMap<&str, usize> = Default::default();
    let mut statement = String::new();
    let mut ops = 0;
    let mut tuple = String::new();
    for row in content {
        clock::tuple(&row, &[], &mut tuple);
        let mut row_ops = cost.of(&row);
        // A value that came from the clock is written as the expression
        // that reads it (the row is found by its literal values).
        if let Some(row_cells) = cells.and_then(|c| c.get(&tuple)) {
            clock::tuple(&row, row_cells, &mut tuple);
            for (_, expr) in row_cells {
                let extra = match expression_ops.get(expr.as_str()) {
                    Some(extra) => *extra,
                    None => {
                        let extra = cost.expression(conn, &head, names.len(), expr)?;
                        expression_ops.insert(expr, extra);
                        extra
                    }
                };
                row_ops += extra;
            }
        }
        if head.len() + tuple.len() > MAX_STATEMENT_BYTES {
            return Ok(Err(format!(
                "a row of `{table}` is {} KB of SQL, over a Durable Object's {} KB per statement (`SQLITE_LIMIT_SQL_LENGTH`)",
                (head.len() + tuple.len()) / 1024,
                MAX_STATEMENT_BYTES / 1000
            )));
        }
        let full = statement.len() + 2 + tuple.len() > BATCH_BYTES
            || cost.fixed + ops + row_ops > BATCH_OPS;
        if !statement.is_empty() && full {
            script.push(&std::mem::take(&mut statement));
            ops = 0;
        }
        statement.push_str(if statement.is_empty() { &head } else { ", " });
        statement.push_str(&tuple);
        ops += row_ops;
    }
    script.push(&statement);
    Ok(Ok(()))
}

/// The columns an insert of `table`'s rows names, as SQL: every column but
/// generated and hidden ones (computed, not written), and the rowid first
/// unless a column is its alias (an `INTEGER PRIMARY KEY` writes it
/// itself); `Ok(Err(why))` when the rowid has no name left to write it by.
fn insert_names(
    conn: &rusqlite::Connection,
    table: &str,
    without_rowid: bool,
) -> rusqlite::Result<Result<Vec<String>, String>> {
    let mut stmt =
        conn.prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 0 ORDER BY cid")?;
    let columns: Vec<String> = stmt
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut names: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    if !without_rowid && !has_rowid_alias(conn, table)? {
        match rowid_name(&select_columns(conn, table)?) {
            Some(rowid) => names.insert(0, rowid.to_owned()),
            None => {
                return Ok(Err(format!(
                    "the rowids of `{table}` cannot be written: `rowid`, `_rowid_` and `oid` are all column names"
                )))
            }
        }
    }
    Ok(Ok(names))
}

/// The Durable Object limit SQLite's `message` for a statement of the
/// baseline means, in words; `None` for any other error. workerd's
/// `SQLITE_LIMIT_VDBE_OP` makes SQLite say only "out of memory".
fn limit_named(message: &str) -> Option<String> {
    let limit = if message.contains("out of memory") {
        format!(
            "more than a Durable Object's {},{:03} virtual-machine operations per statement (`SQLITE_LIMIT_VDBE_OP`)",
            MAX_VDBE_OPS / 1000,
            MAX_VDBE_OPS % 1000
        )
    } else if message.contains("statement too long") {
        format!(
            "over a Durable Object's {} KB per statement (`SQLITE_LIMIT_SQL_LENGTH`)",
            MAX_STATEMENT_BYTES / 1000
        )
    } else if message.contains("string or blob too big") {
        "over a Durable Object's 4 MB per value (`SQLITE_LIMIT_LENGTH`)".to_owned()
    } else {
        return None;
    };
    Some(limit)
}

/// Applies `baseline` to a fresh replay database, as the executor will on a
/// new object, its clock standing at the replay's instant, and compares the
/// result with the replayed one.
fn verify(replayer: &Replayer, baseline: &BaselineScript, table: &str) -> Result<(), String> {
    let dump = |r: &Replayer| {
        r.read(|conn| CanonicalDump::of(conn, table))
            .map_err(|e| format!("cannot dump the database: {e}"))
    };
    // Applying is most of the time (SQLite scans its schema table at every
    // `CREATE`), so the replayed database is dumped meanwhile, on another
    // thread and connection.
    let clock = replayer.clock();
    let (fresh, replayed) = std::thread::scope(|s| {
        let fresh = s.spawn(|| {
            let fresh = apply(baseline, table, clock)?;
            dump(&fresh)
        });
        let replayed = dump(replayer);
        // A panic is a bug to report as one, not a verdict to cache.
        let fresh = fresh
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (fresh, replayed)
    });
    // A failing baseline says so before a dump that failed.
    let fresh = fresh?;
    match replayed?.difference(&fresh) {
        None => Ok(()),
        Some(difference) => Err(format!(
            "the baseline does not give the chain's database: {difference}"
        )),
    }
}

/// A fresh replay database, its clock standing at `clock`, with
/// `baseline` applied and committed.
fn apply(baseline: &BaselineScript, table: &str, clock: i64) -> Result<Replayer, String> {
    let fresh = Replayer::at(table, clock)?;
    fresh
        .begin()
        .map_err(|e| format!("cannot verify the baseline: {e}"))?;
    for (i, s) in baseline.statements.iter().enumerate() {
        if let Err(failure) = fresh.run(s.sql(&baseline.sql), |_| None) {
            let message = failure
                .denial
                .map_or_else(|| failure.error.to_string(), |d| d.message);
            return Err(match limit_named(&message) {
                Some(limit) => format!(
                    "the baseline fails: statement {} is {limit}: {message}",
                    i + 1
                ),
                None => format!("the baseline fails: {message}"),
            });
        }
    }
    fresh
        .trusted("COMMIT")
        .map_err(|e| format!("the baseline fails when it commits: {e}"))?;
    Ok(fresh)
}

#[cfg(test)]
mod tests;
