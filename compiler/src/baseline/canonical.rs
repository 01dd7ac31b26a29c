//! A canonical dump of a database: what "the same database" means when the
//! baseline is verified against the chain. Every schema object (type, name,
//! table, `CREATE` text; SQLite's own autoindexes have no text and follow
//! from their tables), every table's rows with their rowids (shadow tables
//! of virtual tables and SQLite's `sqlite_stat*` tables included), and
//! `sqlite_sequence` as `(name, seq)` pairs. Left out: Cloudflare's
//! internal tables and the tables durable-schema owns (the tracking table
//! and its failure record), root pages and the order rows were written in.

use std::cmp::Ordering;

use rusqlite::types::Value;
use rusqlite::Connection;

use crate::tracking;

/// One schema object: `(type, name, tbl_name, sql)`.
pub(crate) type Object = (String, String, String, String);

/// A database's content, in a canonical order (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalDump {
    /// Schema objects, ordered by type and name.
    pub(crate) objects: Vec<Object>,
    /// Each table's rows (rowid first for a rowid table), tables ordered
    /// by name, rows in a total order of their values.
    pub(crate) tables: Vec<(String, Vec<Vec<Value>>)>,
    /// `sqlite_sequence`, ordered by name.
    pub(crate) sequence: Vec<(String, i64)>,
}

/// Whether `name` is Cloudflare's (`_cf_…`, any case); SQLite's own tables
/// (`sqlite_sequence`, `sqlite_stat1`) are part of the dump.
fn cloudflare(name: &str) -> bool {
    tracking::reserved_prefix(name) == Some("_cf_")
}

/// `name` quoted as an SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether the rowid table `table` has a column that is its rowid (an
/// `INTEGER PRIMARY KEY`, not `DESC`): its values are the rowids, so the
/// rowid is not read or written besides, which would also count one column
/// more than the table has (`SQLITE_LIMIT_COLUMN` at 100 columns). SQLite
/// says which: it reads an alias with `Rowid` (or `IdxRowid`), any other
/// column with `Column`.
pub(crate) fn has_rowid_alias(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare("SELECT name, type FROM pragma_table_info(?1) WHERE pk > 0")?;
    let keys: Vec<(String, String)> = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let [(name, kind)] = keys.as_slice() else {
        return Ok(false);
    };
    if !kind.eq_ignore_ascii_case("integer") {
        return Ok(false);
    }
    let mut stmt = conn.prepare(&format!(
        "EXPLAIN SELECT {} FROM {}",
        quote(name),
        quote(table)
    ))?;
    let mut ops = stmt.query([])?;
    while let Some(op) = ops.next()? {
        if matches!(op.get_ref(1)?.as_str()?, "Rowid" | "IdxRowid") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A name among `rowid`, `_rowid_` and `oid` that no column of `columns`
/// shadows, to read and write a rowid table's rowid by; `None` when every
/// one is a column's name.
pub(crate) fn rowid_name(columns: &[String]) -> Option<&'static str> {
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|alias| !columns.iter().any(|c| c.eq_ignore_ascii_case(alias)))
}

/// A total order of SQLite values: by storage class, then value (reals by
/// their IEEE total order).
fn cmp_value(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) => 1,
            Value::Real(_) => 2,
            Value::Text(_) => 3,
            Value::Blob(_) => 4,
        }
    }
    match (a, b) {
        (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
        (Value::Real(a), Value::Real(b)) => a.total_cmp(b),
        (Value::Text(a), Value::Text(b)) => a.cmp(b),
        (Value::Blob(a), Value::Blob(b)) => a.cmp(b),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn cmp_row(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(a, b)| cmp_value(a, b))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// The tables of `main` as `pragma_table_list` sees them: `(name, type,
/// without rowid)`, type being `table`, `virtual`, `shadow` or `view`.
pub(crate) fn table_list(conn: &Connection) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut stmt =
        conn.prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?;
    rows.collect()
}

/// The names of `table`'s columns as `SELECT *` returns them.
pub(crate) fn select_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let stmt = conn.prepare(&format!("SELECT * FROM {} LIMIT 0", quote(table)))?;
    Ok(stmt.column_names().into_iter().map(str::to_owned).collect())
}

/// Every row of `table` with the columns `columns` (SQL expressions).
pub(crate) fn rows(
    conn: &Connection,
    table: &str,
    columns: &[String],
) -> rusqlite::Result<Vec<Vec<Value>>> {
    let sql = format!("SELECT {} FROM {}", columns.join(", "), quote(table));
    let mut stmt = conn.prepare(&sql)?;
    let width = columns.len();
    let rows = stmt.query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())?;
    rows.collect()
}

impl CanonicalDump {
    /// The canonical dump of `conn`'s `main` database, whose tracking table
    /// is `tracking` (left out with its failure record). Reads past any
    /// authorizer the caller has set aside.
    pub fn of(conn: &Connection, tracking: &str) -> rusqlite::Result<Self> {
        let kept = |name: &str| !cloudflare(name) && !tracking::owns(tracking, name);
        let mut stmt = conn.prepare(
            "SELECT type, name, tbl_name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL",
        )?;
        let mut objects: Vec<Object> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<Object>>>()?
            .into_iter()
            .filter(|o| kept(&o.1) && kept(&o.2))
            .collect();
        objects.sort();
        let mut tables = Vec::new();
        let mut sequence = Vec::new();
        for (name, kind, without_rowid) in table_list(conn)? {
            if !kept(&name) || !matches!(kind.as_str(), "table" | "shadow") {
                continue;
            }
            if name.eq_ignore_ascii_case("sqlite_schema")
                || name.eq_ignore_ascii_case("sqlite_temp_schema")
            {
                continue;
            }
            if name.eq_ignore_ascii_case("sqlite_sequence") {
                let mut stmt = conn.prepare("SELECT name, seq FROM sqlite_sequence")?;
                sequence = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                sequence.sort();
                continue;
            }
            let names = select_columns(conn, &name)?;
            let mut columns: Vec<String> = names.iter().map(|c| quote(c)).collect();
            if !without_rowid && !has_rowid_alias(conn, &name)? {
                // A rowid table whose every rowid alias is a column's name
                // cannot show its rowids: compared by its columns alone.
                if let Some(rowid) = rowid_name(&names) {
                    columns.insert(0, rowid.to_owned());
                }
            }
            let mut content = rows(conn, &name, &columns)?;
            content.sort_by(|a, b| cmp_row(a, b));
            tables.push((name, content));
        }
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self {
            objects,
            tables,
            sequence,
        })
    }

    /// The first difference between two dumps, in words (`None` when they
    /// are the same).
    pub fn difference(&self, other: &Self) -> Option<String> {
        if self.objects != other.objects {
            let only = |a: &[Object], b: &[Object]| a.iter().find(|o| !b.contains(o)).cloned();
            let (kind, name) = only(&self.objects, &other.objects)
                .or_else(|| only(&other.objects, &self.objects))
                .map_or_else(Default::default, |o| (o.0, o.1));
            return Some(format!("the {kind} `{name}` differs"));
        }
        if self.sequence != other.sequence {
            return Some("`sqlite_sequence` differs".to_owned());
        }
        for (a, b) in self.tables.iter().zip(&other.tables) {
            if a != b {
                return Some(format!("the rows of `{}` differ", a.0));
            }
        }
        (self.tables.len() != other.tables.len()).then(|| "the tables differ".to_owned())
    }
}
