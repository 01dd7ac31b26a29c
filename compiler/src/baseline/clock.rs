//! Which values of the replayed database came from the clock, and the
//! expression that gives each one: what lets a chain whose rows took
//! `CURRENT_TIMESTAMP` defaults, `datetime('now')` or a trigger stamping
//! `updated_at` have a baseline that reads the clock when it runs, as the
//! chain would, instead of holding the instant of the build.
//!
//! The replay's clock stands still (see
//! [`ClockedConnection`](durable_schema_workerd::ClockedConnection)); the
//! chain is replayed a second time at another instant ([`SECOND_INSTANT`]
//! later, which changes every field of a date: year, month, day, weekday,
//! hour, minute, second and millisecond). A cell that differs between the
//! two databases came from the clock. Its expression is found among the
//! candidates that give both of its values, each evaluated on both
//! databases: the column's default first (a seed row left the column out),
//! then every clock call of the chain's texts (a statement's or a
//! trigger's), alone and with what surrounds it up to the next comma
//! (`unixepoch() * 1000`). Anything else that differs (a row, a schema
//! object, a counter), or a cell no candidate gives, means the chain's
//! result depends on the clock in a way a baseline cannot state, and there
//! is none. What is found is only a guess until the baseline is verified
//! at both instants (see `super::verify`).

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::Connection;

use super::canonical::{quote, select_columns, table_list};
use super::{insert_names, literal};
use crate::replay::{unreproducible_in, Replayer};
use crate::tracking;

/// How far after the replay's instant the second replay's clock stands:
/// 400 days, 1 hour, 1 minute, 1 second and 1 millisecond, so that every
/// field of the date differs (400 days pass a year, a month, and a weekday
/// since 400 is not a multiple of 7).
pub(crate) const SECOND_INSTANT: i64 = 400 * 86_400_000 + 3_661_001;

/// The clock's cells of each table: for a row, by the SQL tuple of its
/// values in the replay (its key: rowids or primary keys make it unique),
/// the position of each cell that came from the clock and the expression to
/// write instead of its value.
#[derive(Debug, Default)]
pub(super) struct ClockCells {
    tables: HashMap<String, HashMap<String, Vec<(usize, String)>>>,
}

impl ClockCells {
    /// The cells of `table`'s rows, when it has any.
    pub(super) fn of(&self, table: &str) -> Option<&HashMap<String, Vec<(usize, String)>>> {
        self.tables.get(table)
    }

    /// Whether no cell came from the clock.
    pub(super) fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// The SQL tuple of `row`, with `cells` (position, expression) written as
/// their expressions, into `out` (cleared first).
pub(super) fn tuple(row: &[Value], cells: &[(usize, String)], out: &mut String) {
    out.clear();
    out.push('(');
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match cells.iter().find(|(at, _)| *at == i) {
            Some((_, expr)) => {
                out.push('(');
                out.push_str(expr);
                out.push(')');
            }
            None => literal(value, out),
        }
    }
    out.push(')');
}

/// A candidate expression and its value at each instant.
struct Candidate {
    expr: String,
    values: (Value, Value),
}

/// Whether `a` (a cell) is what `b` (an expression's value) becomes once
/// stored: the same value, or the same number as text or as an integer (a
/// column's affinity converts one to the other). Loose on purpose: the
/// verification decides.
fn same(a: &Value, b: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::Integer(i) => Some(i.to_string()),
        Value::Text(t) => Some(t.clone()),
        _ => None,
    };
    a == b || matches!((text(a), text(b)), (Some(x), Some(y)) if x == y)
}

/// The chain's clock calls: every call of a function of
/// [`crate::replay::CLOCK`] (and the `CURRENT_*` keywords) in the code of
/// `texts` (not in quoted text or comments), alone and with what surrounds
/// it up to the next comma, parenthesis, `=` or clause keyword, in order of
/// appearance, each once; and the first call that decides rather than
/// gives a value (in a `WHERE`, `WHEN`, `ON` or `HAVING` clause), as the
/// index of its text, its offset and its keyword.
fn clock_expressions<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> (Vec<String>, Option<(usize, usize, &'static str)>) {
    let mut deciding = None;
    let mut found: Vec<String> = Vec::new();
    let mut add = |expr: &str| {
        let expr = expr.trim();
        let lower = expr.to_ascii_lowercase();
        if !expr.is_empty()
            && expr.len() <= 200
            && !lower.contains("select")
            && !expr.contains(';')
            && !found.iter().any(|e| e == expr)
        {
            found.push(expr.to_owned());
        }
    };
    for (index, text) in texts.into_iter().enumerate() {
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            // Past quoted text and comments: a clock call is code.
            let skip = match (bytes[at], bytes.get(at + 1)) {
                (b'\'', _) => text[at + 1..].find('\'').map(|n| n + 2),
                (b'-', Some(b'-')) => Some(text[at..].find('\n').unwrap_or(text.len() - at)),
                (b'/', Some(b'*')) => {
                    Some(text[at..].find("*/").map_or(text.len() - at, |n| n + 2))
                }
                _ => None,
            };
            if let Some(skip) = skip {
                at += skip;
                continue;
            }
            if !is_word(bytes[at]) || (at > 0 && is_word(bytes[at - 1])) {
                at += 1;
                continue;
            }
            let end = at + bytes[at..].iter().take_while(|b| is_word(**b)).count();
            let word = text[at..end].to_ascii_lowercase();
            let call = match unreproducible_in(&word) {
                Some((_, true)) if word.starts_with("current_") => Some(end),
                Some((_, true)) => {
                    let open = end
                        + bytes[end..]
                            .iter()
                            .take_while(|b| b.is_ascii_whitespace())
                            .count();
                    (bytes.get(open) == Some(&b'('))
                        .then(|| closing(bytes, open))
                        .flatten()
                }
                _ => None,
            };
            let Some(call_end) = call else {
                at = end;
                continue;
            };
            add(&text[at..call_end]);
            add(&text[segment_start(text, at)..segment_end(text, call_end)]);
            if deciding.is_none() {
                deciding = clause_of(text, at).map(|clause| (index, at, clause));
            }
            at = call_end;
        }
    }
    (found, deciding)
}

/// The clause a call starting at `at` decides in (`WHERE`, `WHEN`, `ON`,
/// `HAVING`), found by the nearest clause keyword before it, outside the
/// parentheses that close before it; `None` when it is in one that gives
/// values (`SET`, `VALUES`, `SELECT`, `DEFAULT`, `THEN`, ...).
fn clause_of(text: &str, at: usize) -> Option<&'static str> {
    const DECIDING: &[&str] = &["where", "when", "on", "having"];
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = at;
    while i > 0 {
        let b = bytes[i - 1];
        match b {
            b')' => depth += 1,
            b'(' => depth = depth.saturating_sub(1),
            b';' => return None,
            b'\'' => {
                i = text[..i - 1].rfind('\'').unwrap_or(0) + 1;
            }
            _ if is_word(b) => {
                let start = i - bytes[..i].iter().rev().take_while(|b| is_word(**b)).count();
                let word = text[start..i].to_ascii_lowercase();
                if depth == 0 {
                    if let Some(clause) = DECIDING.iter().find(|c| **c == word) {
                        return Some(clause);
                    }
                    if CLAUSES.contains(&word.as_str()) {
                        return None;
                    }
                }
                i = start;
                continue;
            }
            _ => {}
        }
        i -= 1;
    }
    None
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The position after the `)` closing the `(` at `open`, past quoted text.
fn closing(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'(') => depth += 1,
            (None, b')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            (None, b';') => return None,
            _ => {}
        }
    }
    None
}

/// Words that end an expression.
const CLAUSES: &[&str] = &[
    "where",
    "from",
    "as",
    "end",
    "when",
    "then",
    "else",
    "order",
    "group",
    "limit",
    "on",
    "returning",
    "values",
    "set",
    "select",
    "begin",
    "default",
];

/// Where the expression around the call starting at `at` starts: after the
/// nearest `(`, `,`, `=` or clause word before it at its own depth.
fn segment_start(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = at;
    while i > 0 {
        let b = bytes[i - 1];
        match b {
            b')' => depth += 1,
            b'(' if depth == 0 => return i,
            b'(' => depth -= 1,
            b',' | b'=' | b';' if depth == 0 => return i,
            b'\'' | b'"' => return at,
            _ if is_word(b) && depth == 0 => {
                let start = i - bytes[..i].iter().rev().take_while(|b| is_word(**b)).count();
                if CLAUSES.contains(&text[start..i].to_ascii_lowercase().as_str()) {
                    return i;
                }
                i = start;
                continue;
            }
            _ => {}
        }
        i -= 1;
    }
    0
}

/// Where the expression around the call ending at `end` ends: before the
/// nearest `)`, `,` or clause word after it at its own depth.
fn segment_end(text: &str, end: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = end;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'(' => depth += 1,
            b')' if depth == 0 => return i,
            b')' => depth -= 1,
            b',' | b';' if depth == 0 => return i,
            b'\'' | b'"' => return end,
            _ if is_word(b) && depth == 0 => {
                let stop = i + bytes[i..].iter().take_while(|b| is_word(**b)).count();
                if CLAUSES.contains(&text[i..stop].to_ascii_lowercase().as_str()) {
                    return i;
                }
                i = stop;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// `expr`'s value on `replayer`'s database (at its instant), `None` when it
/// is no expression SQLite evaluates alone.
fn evaluate(replayer: &Replayer, expr: &str) -> Option<Value> {
    replayer
        .read(|conn| conn.query_row(&format!("SELECT ({expr})"), [], |r| r.get(0)))
        .ok()
}

/// A row key's ordering for `table`: by rowid, or by the primary key of a
/// `WITHOUT ROWID` table; `None` when the rowid has no name to read it by.
fn order_of(
    conn: &Connection,
    table: &str,
    without_rowid: bool,
) -> rusqlite::Result<Option<String>> {
    if without_rowid {
        let mut stmt =
            conn.prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?;
        let keys: Vec<String> = stmt
            .query_map([table], |r| r.get::<_, String>(0))?
            .map(|k| k.map(|k| quote(&k)))
            .collect::<rusqlite::Result<_>>()?;
        return Ok(Some(keys.join(", ")));
    }
    Ok(super::canonical::rowid_name(&select_columns(conn, table)?).map(str::to_owned))
}

/// Every row of `table`, with the columns `names`, ordered by `order`.
fn ordered_rows(
    conn: &Connection,
    table: &str,
    names: &[String],
    order: &str,
) -> rusqlite::Result<Vec<Vec<Value>>> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {order}",
        names.join(", "),
        quote(table)
    );
    let mut stmt = conn.prepare(&sql)?;
    let width = names.len();
    let rows = stmt.query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())?;
    rows.collect()
}

/// Compares `first` (the replay) with `second` (the same chain replayed at
/// another instant) and finds each clock cell's expression, or says why the
/// chain's result depends on the clock beyond what a baseline can state.
/// `texts` are the chain's migrations, `table` the tracking table.
pub(super) fn cells(
    first: &Replayer,
    second: &Replayer,
    migrations: &[super::Replayed<'_>],
    table: &str,
) -> Result<ClockCells, String> {
    let (expressions, deciding) = clock_expressions(migrations.iter().map(|m| m.script.text));
    // Two instants cannot show what a clock in a condition decides: the
    // condition may hold at both and not when the baseline runs.
    if let Some((index, offset, clause)) = deciding {
        let script = migrations[index].script;
        let (line, column) = crate::split::line_col(script.text, offset);
        return Err(format!(
            "{}:{line}:{column} reads the clock in a `{}` clause",
            script.display_path,
            clause.to_ascii_uppercase()
        ));
    }
    let read = |e: rusqlite::Error| format!("cannot compare the replays at two instants: {e}");
    let schema = |r: &Replayer| {
        r.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY rowid",
            )?;
            let objects = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, Value>(0)?,
                    r.get::<_, Value>(1)?,
                    r.get::<_, Value>(2)?,
                    r.get::<_, Value>(3)?,
                ))
            })?;
            objects.collect::<rusqlite::Result<Vec<_>>>()
        })
    };
    if schema(first).map_err(read)? != schema(second).map_err(read)? {
        return Err("the schema depends on the clock".to_owned());
    }
    let list = first.read(table_list).map_err(read)?;
    let mut candidates: Option<Vec<Candidate>> = None;
    let mut found = ClockCells::default();
    for (name, kind, without_rowid) in &list {
        let counter = name.eq_ignore_ascii_case("sqlite_sequence");
        if !counter
            && (kind != "table"
                || tracking::owns(table, name)
                || tracking::reserved_prefix(name).is_some())
        {
            continue;
        }
        let (names, order) = if counter {
            (vec!["name".to_owned(), "seq".to_owned()], "name".to_owned())
        } else {
            let names = first
                .read(|conn| insert_names(conn, name, *without_rowid))
                .map_err(read)?;
            let order = first
                .read(|conn| order_of(conn, name, *without_rowid))
                .map_err(read)?;
            // A table whose rows the baseline cannot write says so itself.
            let (Ok(names), Some(order)) = (names, order) else {
                continue;
            };
            (names, order)
        };
        let rows = |r: &Replayer| r.read(|conn| ordered_rows(conn, name, &names, &order));
        let (ours, theirs) = (rows(first).map_err(read)?, rows(second).map_err(read)?);
        if ours == theirs {
            continue;
        }
        if counter {
            return Err("`sqlite_sequence` depends on the clock".to_owned());
        }
        if ours.len() != theirs.len() {
            return Err(format!("the rows of `{name}` depend on the clock"));
        }
        let defaults: HashMap<String, String> = first
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT name, dflt_value FROM pragma_table_xinfo(?1) WHERE dflt_value IS NOT NULL",
                )?;
                let rows = stmt.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .map_err(read)?;
        let candidates = candidates.get_or_insert_with(|| {
            expressions
                .iter()
                .filter_map(|expr| {
                    let values = (evaluate(first, expr)?, evaluate(second, expr)?);
                    Some(Candidate {
                        expr: expr.clone(),
                        values,
                    })
                })
                .collect()
        });
        // Per column: its default, when it reads the clock, goes first.
        let mut by_column: Vec<Option<Candidate>> = Vec::with_capacity(names.len());
        for column in &names {
            let default = defaults
                .iter()
                .find(|(c, _)| quote(c) == *column)
                .filter(|(_, d)| matches!(unreproducible_in(d), Some((_, true))))
                .and_then(|(_, d)| {
                    let values = (evaluate(first, d)?, evaluate(second, d)?);
                    Some(Candidate {
                        expr: d.clone(),
                        values,
                    })
                });
            by_column.push(default);
        }
        let table_cells = found.tables.entry(name.clone()).or_default();
        let mut key = String::new();
        for (a, b) in ours.iter().zip(&theirs) {
            let mut row_cells = Vec::new();
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x == y {
                    continue;
                }
                let matches = |c: &&Candidate| same(x, &c.values.0) && same(y, &c.values.1);
                let Some(candidate) = by_column[i]
                    .as_ref()
                    .filter(matches)
                    .or_else(|| candidates.iter().find(matches))
                else {
                    return Err(format!(
                        "`{name}`.{} takes a value from the clock that no clock expression of the chain gives",
                        names[i]
                    ));
                };
                row_cells.push((i, candidate.expr.clone()));
            }
            if !row_cells.is_empty() {
                tuple(a, &[], &mut key);
                table_cells.insert(std::mem::take(&mut key), row_cells);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_calls_are_found_alone_and_with_their_operands() {
        let (found, deciding) = clock_expressions([
            "CREATE TABLE t (a TEXT DEFAULT CURRENT_TIMESTAMP, b INTEGER DEFAULT (unixepoch() * 1000));
             INSERT INTO t (a, b) VALUES ('x', strftime('%s', 'now') + 1), (datetime('now', '+1 day'), 2);
             CREATE TRIGGER t_u AFTER UPDATE ON t BEGIN UPDATE t SET a = CURRENT_DATE WHERE rowid = new.rowid; END;
             -- not date('now') in a comment, nor in quoted text:
             SELECT 'datetime(now)', \"julianday\";",
        ]);
        assert_eq!(
            found,
            [
                "CURRENT_TIMESTAMP",
                "unixepoch()",
                "unixepoch() * 1000",
                "strftime('%s', 'now')",
                "strftime('%s', 'now') + 1",
                "datetime('now', '+1 day')",
                "CURRENT_DATE",
            ]
        );
        assert_eq!(deciding, None);
        let text = "DELETE FROM s WHERE (expires < datetime('now', '-1 day'));";
        let (_, deciding) = clock_expressions([text]);
        assert_eq!(deciding, Some((0, text.find("datetime").unwrap(), "where")));
        let text = "CREATE TRIGGER t AFTER UPDATE ON s WHEN date() > '2020' BEGIN SELECT 1; END;";
        assert_eq!(clock_expressions([text]).1.map(|d| d.2), Some("when"));
        let text = "UPDATE s SET at = CURRENT_TIMESTAMP WHERE id = (SELECT max(id) FROM s);";
        assert_eq!(clock_expressions([text]).1, None);
    }
}
