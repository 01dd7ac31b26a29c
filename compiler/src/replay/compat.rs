//! What each migration does to code written for the schema before it:
//! additive, breaking for older code, destructive.
//!
//! Judged from the replay database, not from statement shapes: the schema
//! is read before and after each migration ([`Snapshot`]) and compared
//! object by object, so a table rebuild that keeps every column is
//! additive however many statements it takes, and an `ALTER TABLE … DROP
//! COLUMN` hidden in a rebuild is still a dropped column. Data statements
//! are judged from what the authorizer saw them write: a `DELETE` of rows of
//! a table that existed before the migration, an `UPDATE` of a column that
//! existed before it (a backfill of a column the migration adds is not).
//!
//! Each finding has a stable code ([`ChangeKind::code`]) that tools and the
//! tracking table keep, the object it is about and the line of the
//! statement that did it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::sandbox::Replayer;
use crate::split::PlannedStatement;
use crate::tracking;

/// How a migration affects code written for the schema before it: the
/// runtime's type, which the tracking table records.
pub use durable_schema_runtime::Class;

/// One kind of change, with its stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeKind {
    /// `AD101`: a table was created.
    TableAdded,
    /// `AD102`: a column that may be left out of an insert was added.
    ColumnAdded,
    /// `AD103`: an index was created (a unique one only on a new table).
    IndexAdded,
    /// `AD104`: a view was created, or redefined keeping its columns.
    ViewAdded,
    /// `AD105`: a trigger that cannot refuse writes was created.
    TriggerAdded,
    /// `BC101`: a table was dropped.
    TableDropped,
    /// `BC102`: a table was renamed.
    TableRenamed,
    /// `BC103`: a column was dropped.
    ColumnDropped,
    /// `BC104`: a column was renamed.
    ColumnRenamed,
    /// `BC105`: a column's declared type changed.
    TypeChanged,
    /// `BC106`: a column became `NOT NULL`.
    NotNullAdded,
    /// `BC107`: a table got a new `CHECK` constraint.
    CheckAdded,
    /// `BC108`: a unique index or constraint over a table that has data.
    UniqueAdded,
    /// `BC109`: a view was dropped or lost columns.
    ViewChanged,
    /// `BC110`: a trigger was dropped or changed, or a new one on an
    /// existing table can refuse writes (`RAISE`).
    TriggerChanged,
    /// `BC111`: a `NOT NULL` column without a default was added to a table
    /// older code inserts into.
    RequiredColumnAdded,
    /// `BC112`: a table's columns moved (a rebuild that reorders them, or
    /// puts a new column before an existing one): `SELECT *` and an
    /// `INSERT` without a column list see other columns at each position.
    ColumnsMoved,
    /// `BC113`: a `NOT NULL` column lost its default: an insert that
    /// leaves it out fails.
    DefaultRemoved,
    /// `BC114`: an existing table got a new foreign key: writes older code
    /// makes can fail its check.
    ForeignKeyAdded,
    /// `BC115`: a unique index or constraint (or primary key) of an
    /// existing table was dropped, and nothing else makes those columns
    /// unique: older code's upserts naming them (`ON CONFLICT (email)`) no
    /// longer prepare, and its `INSERT OR REPLACE` adds rows instead of
    /// replacing them.
    UniqueDropped,
    /// `DS101`: a table and its rows were dropped.
    TableData,
    /// `DS102`: a column and its values were dropped.
    ColumnData,
    /// `DS103`: rows of an existing table were deleted.
    RowsDeleted,
    /// `DS104`: existing values were overwritten.
    ValuesOverwritten,
}

impl ChangeKind {
    /// Every kind, in code order.
    pub const ALL: [ChangeKind; 24] = [
        Self::TableAdded,
        Self::ColumnAdded,
        Self::IndexAdded,
        Self::ViewAdded,
        Self::TriggerAdded,
        Self::TableDropped,
        Self::TableRenamed,
        Self::ColumnDropped,
        Self::ColumnRenamed,
        Self::TypeChanged,
        Self::NotNullAdded,
        Self::CheckAdded,
        Self::UniqueAdded,
        Self::ViewChanged,
        Self::TriggerChanged,
        Self::RequiredColumnAdded,
        Self::ColumnsMoved,
        Self::DefaultRemoved,
        Self::ForeignKeyAdded,
        Self::UniqueDropped,
        Self::TableData,
        Self::ColumnData,
        Self::RowsDeleted,
        Self::ValuesOverwritten,
    ];

    /// The stable code: `AD…` additive, `BC…` breaking, `DS…` destructive.
    pub fn code(self) -> &'static str {
        match self {
            Self::TableAdded => "AD101",
            Self::ColumnAdded => "AD102",
            Self::IndexAdded => "AD103",
            Self::ViewAdded => "AD104",
            Self::TriggerAdded => "AD105",
            Self::TableDropped => "BC101",
            Self::TableRenamed => "BC102",
            Self::ColumnDropped => "BC103",
            Self::ColumnRenamed => "BC104",
            Self::TypeChanged => "BC105",
            Self::NotNullAdded => "BC106",
            Self::CheckAdded => "BC107",
            Self::UniqueAdded => "BC108",
            Self::ViewChanged => "BC109",
            Self::TriggerChanged => "BC110",
            Self::RequiredColumnAdded => "BC111",
            Self::ColumnsMoved => "BC112",
            Self::DefaultRemoved => "BC113",
            Self::ForeignKeyAdded => "BC114",
            Self::UniqueDropped => "BC115",
            Self::TableData => "DS101",
            Self::ColumnData => "DS102",
            Self::RowsDeleted => "DS103",
            Self::ValuesOverwritten => "DS104",
        }
    }

    /// The class of a change of this kind.
    pub fn class(self) -> Class {
        match self.code().as_bytes().first() {
            Some(b'B') => Class::Breaking,
            Some(b'D') => Class::Destructive,
            _ => Class::Additive,
        }
    }
}

/// One finding of the classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The object, as `table`, `table.column`, or an index, view or trigger
    /// name.
    pub object: String,
    /// What it became, when that says more (the new name, the new type).
    pub detail: Option<String>,
    /// 1-based line and column of the statement that did it.
    pub line: u32,
    /// See [`Change::line`].
    pub column: u32,
}

impl Change {
    /// `BC103 column `messages.body` dropped`: the code and what happened.
    pub fn summary(&self) -> String {
        let o = &self.object;
        let what = match self.kind {
            ChangeKind::TableAdded => format!("table `{o}` added"),
            ChangeKind::ColumnAdded => format!("column `{o}` added"),
            ChangeKind::IndexAdded => format!("index `{o}` added"),
            ChangeKind::ViewAdded => format!("view `{o}` added or redefined"),
            ChangeKind::TriggerAdded => format!("trigger `{o}` added"),
            ChangeKind::TableDropped => format!("table `{o}` dropped"),
            ChangeKind::TableRenamed => format!("table `{o}` renamed"),
            ChangeKind::ColumnDropped => format!("column `{o}` dropped"),
            ChangeKind::ColumnRenamed => format!("column `{o}` renamed"),
            ChangeKind::TypeChanged => format!("column `{o}` changed type"),
            ChangeKind::NotNullAdded => format!("column `{o}` made NOT NULL"),
            ChangeKind::CheckAdded => format!("table `{o}` got a new CHECK"),
            ChangeKind::UniqueAdded => format!("unique index on existing table `{o}`"),
            ChangeKind::ViewChanged => format!("view `{o}` dropped or lost columns"),
            ChangeKind::TriggerChanged => format!("trigger `{o}` dropped or changed"),
            ChangeKind::RequiredColumnAdded => {
                format!("NOT NULL column `{o}` without a default added")
            }
            ChangeKind::ColumnsMoved => format!("columns of table `{o}` moved"),
            ChangeKind::DefaultRemoved => format!("NOT NULL column `{o}` lost its default"),
            ChangeKind::ForeignKeyAdded => format!("table `{o}` got a new foreign key"),
            ChangeKind::UniqueDropped => {
                format!("unique index or constraint on table `{o}` dropped")
            }
            ChangeKind::TableData => format!("rows of table `{o}` dropped"),
            ChangeKind::ColumnData => format!("values of column `{o}` dropped"),
            ChangeKind::RowsDeleted => format!("rows of `{o}` deleted"),
            ChangeKind::ValuesOverwritten => format!("values of `{o}` overwritten"),
        };
        match &self.detail {
            Some(d) => format!("{} {what} ({d})", self.kind.code()),
            None => format!("{} {what}", self.kind.code()),
        }
    }
}

/// The class of a migration with `changes`: the most severe one's.
pub fn class_of(changes: &[Change]) -> Class {
    changes
        .iter()
        .map(|c| c.kind.class())
        .max()
        .unwrap_or(Class::Additive)
}

/// A column as `pragma_table_xinfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    decl_type: String,
    not_null: bool,
    has_default: bool,
    /// Part of the primary key, or generated: never in an insert.
    exempt: bool,
}

/// What the classification needs of a table or view, read once per
/// definition (keyed by its `CREATE` text, which SQLite rewrites on every
/// `ALTER`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    columns: Vec<Column>,
    /// Its `CHECK` clauses, whitespace-normalized and lowercased.
    checks: Vec<String>,
    /// Its foreign keys, sorted.
    foreign_keys: Vec<ForeignKey>,
}

/// One foreign key of a table, lowercased: its columns, the parent table
/// and the parent's columns (empty: the parent's primary key), each list
/// comma-separated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ForeignKey {
    from: String,
    parent: String,
    to: String,
}

impl Shape {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// One object of `sqlite_schema`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    kind: String,
    name: String,
    table: String,
    sql: String,
}

/// The shape of every table and view definition the replay has seen, by
/// its `CREATE` text: read once, when the definition appears, so the schema
/// before a migration needs no read of its own.
pub(crate) type Shapes = HashMap<String, Shape>;

/// The user schema at one point of the replay.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// By lowercase name.
    objects: BTreeMap<String, Object>,
    /// Each table's sets of columns something makes unique (its primary
    /// key, unique constraints and unique indexes; lowercase and sorted, a
    /// partial index's set marked), by lowercase table name. Read on every
    /// snapshot: a `CREATE INDEX` leaves the table's `CREATE` text, by which
    /// [`Shapes`] are kept, as it was.
    uniques: BTreeMap<String, Vec<Vec<String>>>,
}

impl Snapshot {
    /// Reads the schema of the replay database, and adds the shape of each
    /// table and view definition not seen before to `shapes`.
    pub(crate) fn take(replayer: &Replayer, tracking_table: &str, shapes: &mut Shapes) -> Snapshot {
        let objects = replayer
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT type, name, tbl_name, sql FROM main.sqlite_schema \
                     WHERE sql IS NOT NULL AND type IN ('table', 'index', 'view', 'trigger')",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(Object {
                        kind: r.get(0)?,
                        name: r.get(1)?,
                        table: r.get(2)?,
                        sql: r.get(3)?,
                    })
                })?;
                let mut objects = BTreeMap::new();
                for o in rows {
                    let o = o?;
                    if tracking::reserved_prefix(&o.name).is_some()
                        || tracking::owns(tracking_table, &o.name)
                        || tracking::owns(tracking_table, &o.table)
                    {
                        continue;
                    }
                    if matches!(o.kind.as_str(), "table" | "view") && !shapes.contains_key(&o.sql) {
                        // A view over a table that does not exist (yet)
                        // has no columns SQLite can tell: no shape until a
                        // later snapshot can read it, while the rest of the
                        // schema is still read (an error here emptied the
                        // whole snapshot, and the next migration's changes
                        // read as additions).
                        if let Ok(found) = shape(conn, &o) {
                            shapes.insert(o.sql.clone(), found);
                        }
                    }
                    objects.insert(o.name.to_ascii_lowercase(), o);
                }
                let uniques = unique_sets(conn, &objects)?;
                Ok((objects, uniques))
            })
            .unwrap_or_default();
        let (objects, uniques) = objects;
        Snapshot { objects, uniques }
    }

    /// The sets of columns something makes unique in table `name`.
    fn unique_sets(&self, name: &str) -> &[Vec<String>] {
        self.uniques
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    fn get(&self, name: &str) -> Option<&Object> {
        self.objects.get(&name.to_ascii_lowercase())
    }

    /// Whether `name` is a table here.
    fn has_table(&self, name: &str) -> bool {
        self.get(name).is_some_and(|o| o.kind == "table")
    }
}

/// [`Snapshot::uniques`] of the tables among `objects`: two statements
/// whatever the schema's size.
fn unique_sets(
    conn: &rusqlite::Connection,
    objects: &BTreeMap<String, Object>,
) -> rusqlite::Result<BTreeMap<String, Vec<Vec<String>>>> {
    // (table, index) → its columns in order; the primary key of a rowid
    // table (`id INTEGER PRIMARY KEY`) has no index, so it is read apart.
    let mut sets: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT m.name, l.name, l.partial, coalesce(i.name, '') \
         FROM main.sqlite_schema AS m, pragma_index_list(m.name) AS l, pragma_index_info(l.name) AS i \
         WHERE m.type = 'table' AND l.\"unique\" ORDER BY m.name, l.name, i.seqno",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (table, index, partial, column) = row?;
        let set = sets.entry((table.to_ascii_lowercase(), index)).or_default();
        if partial && set.is_empty() {
            // Unique only where its `WHERE` holds: not the same as the
            // full set, which an `ON CONFLICT` without that `WHERE` needs.
            set.push("\0partial".to_owned());
        }
        set.push(column.to_ascii_lowercase());
    }
    let mut stmt = conn.prepare(
        "SELECT m.name, p.name FROM main.sqlite_schema AS m, pragma_table_info(m.name) AS p \
         WHERE m.type = 'table' AND p.pk > 0 ORDER BY m.name, p.pk",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (table, column) = row?;
        sets.entry((table.to_ascii_lowercase(), "\0pk".to_owned()))
            .or_default()
            .push(column.to_ascii_lowercase());
    }
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for ((table, _), mut set) in sets {
        if objects.get(&table).is_none_or(|o| o.kind != "table") {
            continue;
        }
        set.sort();
        let list = out.entry(table).or_default();
        if !list.contains(&set) {
            list.push(set);
        }
    }
    Ok(out)
}

/// The shape of `o`'s definition.
fn shape_of(shapes: &Shapes, o: &Object) -> Shape {
    shapes.get(&o.sql).cloned().unwrap_or_default()
}

/// The shape of table or view `o`, from the live database.
fn shape(conn: &rusqlite::Connection, o: &Object) -> rusqlite::Result<Shape> {
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk > 0 OR hidden IN (2, 3) \
         FROM pragma_table_xinfo(?1) WHERE hidden <> 1",
    )?;
    let columns = stmt
        .query_map([&o.name], |r| {
            Ok(Column {
                name: r.get(0)?,
                decl_type: r.get::<_, String>(1)?.to_ascii_uppercase(),
                not_null: r.get(2)?,
                has_default: r.get(3)?,
                exempt: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut foreign_keys = Vec::new();
    if o.kind == "table" {
        // One row per column of each key (`id`), in `seq` order; a key
        // without parent columns references the parent's primary key.
        let mut stmt = conn.prepare(
            "SELECT \"table\", group_concat(\"from\", ','), group_concat(coalesce(\"to\", ''), ',') \
             FROM (SELECT * FROM pragma_foreign_key_list(?1) ORDER BY id, seq) GROUP BY id",
        )?;
        foreign_keys = stmt
            .query_map([&o.name], |r| {
                Ok(ForeignKey {
                    from: r.get::<_, String>(1)?.to_ascii_lowercase(),
                    parent: r.get::<_, String>(0)?.to_ascii_lowercase(),
                    to: r.get::<_, String>(2)?.to_ascii_lowercase(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        foreign_keys.sort();
    }
    Ok(Shape {
        columns,
        foreign_keys,
        checks: if o.kind == "table" {
            checks(&o.sql)
        } else {
            Vec::new()
        },
    })
}

/// The `CHECK (…)` clauses of a `CREATE TABLE` text, whitespace-normalized
/// and lowercased.
fn checks(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(bytes, i, q),
            b'[' => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b']')
                    .map_or(bytes.len(), |p| i + p + 1)
            }
            _ if is_word_at(sql, i, "check") => {
                let mut j = i + 5;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                if bytes.get(j) == Some(&b'(') {
                    let end = matching_paren(bytes, j);
                    out.push(normalize(&sql[j..end]));
                    i = end;
                } else {
                    i += 5;
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The offset just past the parenthesis closing the one at `open`.
fn matching_paren(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i = skip_quoted(bytes, i, q);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Whether `word` (ASCII, lowercase) stands at byte `i` of `text` as a
/// whole word, in any case.
fn is_word_at(text: &str, i: usize, word: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(candidate) = bytes.get(i..i + word.len()) else {
        return false;
    };
    candidate.eq_ignore_ascii_case(word.as_bytes())
        && (i == 0 || !is_ident(bytes[i - 1]))
        && bytes.get(i + word.len()).is_none_or(|&b| !is_ident(b))
}

/// Whether `text` names `word` as a whole word.
fn mentions(text: &str, word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let hay = text.to_ascii_lowercase();
    hay.match_indices(&lower)
        .any(|(i, _)| is_word_at(text, i, &lower))
}

/// The statements of one migration, to place findings.
pub(crate) struct Statements<'a> {
    pub(crate) text: &'a str,
    pub(crate) ran: &'a [PlannedStatement],
}

impl Statements<'_> {
    /// Line and column of the first statement that names every word of
    /// `words` (schema statements first), else of the first that names the
    /// first word, else of the first statement.
    fn place(&self, words: &[&str]) -> (u32, u32) {
        let named = |all: bool, ddl: bool| {
            self.ran.iter().find(|s| {
                let sql = s.sql(self.text);
                (!ddl || super::textual::defines_schema(sql))
                    && if all {
                        words.iter().all(|w| mentions(sql, w))
                    } else {
                        words.first().is_some_and(|w| mentions(sql, w))
                    }
            })
        };
        named(true, true)
            .or_else(|| named(true, false))
            .or_else(|| named(false, true))
            .or_else(|| named(false, false))
            .or(self.ran.first())
            .map_or((1, 1), |s| (s.line, s.column))
    }
}

/// The changes from `before` to `after`, one migration's; `statements`
/// place them.
pub(crate) fn diff(
    before: &Snapshot,
    after: &Snapshot,
    shapes: &Shapes,
    statements: &Statements<'_>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |kind: ChangeKind, object: String, detail: Option<String>, words: &[&str]| {
        let (line, column) = statements.place(words);
        out.push(Change {
            kind,
            object,
            detail,
            line,
            column,
        });
    };
    let tables = |s: &Snapshot, kind: &str| -> Vec<Object> {
        s.objects
            .values()
            .filter(|o| o.kind == kind)
            .cloned()
            .collect()
    };
    let new_tables: Vec<Object> = tables(after, "table")
        .into_iter()
        .filter(|t| before.get(&t.name).is_none())
        .collect();
    // The tables gone that reappear under a new name with the same
    // columns: renames, found first, because a rename rewrites the
    // `REFERENCES` of the tables that point at it (SQLite does), which is
    // no new foreign key of theirs.
    let names = |s: &Shape| {
        let mut n: Vec<String> = s
            .columns
            .iter()
            .map(|c| c.name.to_ascii_lowercase())
            .collect();
        n.sort();
        n
    };
    let mut renames: Vec<(String, Object)> = Vec::new();
    for old in tables(before, "table") {
        if after.get(&old.name).is_some() {
            continue;
        }
        let old_names = names(&shape_of(shapes, &old));
        let candidates: Vec<&Object> = new_tables
            .iter()
            .filter(|t| {
                !renames.iter().any(|(_, r)| r.name == t.name)
                    && names(&shape_of(shapes, t)) == old_names
            })
            .collect();
        // The one a statement renamed it to, else the one SQLite rewrote
        // (the same definition after its name): a new table of the same
        // columns beside it is not the rename.
        let renamed_by_statement = |t: &Object| {
            statements.ran.iter().any(|s| {
                let sql = s.sql(statements.text);
                mentions(sql, "rename") && mentions(sql, &old.name) && mentions(sql, &t.name)
            })
        };
        let body = |sql: &str| sql.find('(').map(|i| sql[i..].to_owned());
        let target = candidates
            .iter()
            .find(|t| renamed_by_statement(t))
            .or_else(|| {
                candidates
                    .iter()
                    .find(|t| body(&t.sql).is_some() && body(&t.sql) == body(&old.sql))
            })
            .or(candidates.first())
            .copied();
        if let Some(t) = target {
            renames.push((old.name.to_ascii_lowercase(), t.clone()));
        }
    }
    let renamed_to: Vec<String> = renames.iter().map(|(_, t)| t.name.clone()).collect();
    // The tables this migration creates (not renames), lowercase.
    let created: Vec<String> = new_tables
        .iter()
        .filter(|t| !renamed_to.contains(&t.name))
        .map(|t| t.name.to_ascii_lowercase())
        .collect();
    // The column each table kept under its name renamed (lowercase table,
    // old and new column): a child's key to it follows the rename.
    let column_renames: Vec<(String, String, String)> = tables(before, "table")
        .iter()
        .filter_map(|old| {
            let new = after.get(&old.name).filter(|n| n.sql != old.sql)?;
            let (o, n) = (shape_of(shapes, old), shape_of(shapes, new));
            let (r, a) = column_rename(&o, &n)?;
            Some((
                old.name.to_ascii_lowercase(),
                r.name.to_ascii_lowercase(),
                a.name.to_ascii_lowercase(),
            ))
        })
        .collect();
    for old in tables(before, "table") {
        let old_shape = shape_of(shapes, &old);
        match after.get(&old.name) {
            None => {
                let target = renames
                    .iter()
                    .find(|(o, _)| o.eq_ignore_ascii_case(&old.name))
                    .map(|(_, t)| t);
                if let Some(t) = target {
                    push(
                        ChangeKind::TableRenamed,
                        old.name.clone(),
                        Some(format!("to `{}`", t.name)),
                        &[&old.name],
                    );
                } else {
                    push(
                        ChangeKind::TableDropped,
                        old.name.clone(),
                        None,
                        &[&old.name],
                    );
                    push(ChangeKind::TableData, old.name.clone(), None, &[&old.name]);
                }
            }
            Some(new) if new.sql != old.sql => {
                let renamed = |parent: &str| {
                    renames
                        .iter()
                        .find(|(o, _)| o == parent)
                        .map_or(parent.to_owned(), |(_, t)| t.name.to_ascii_lowercase())
                };
                table_changes(
                    &old,
                    &old_shape,
                    &shape_of(shapes, new),
                    renamed,
                    &column_renames,
                    &created,
                    &mut push,
                );
            }
            Some(_) => {}
        }
    }
    for t in &new_tables {
        if !renamed_to.contains(&t.name) {
            push(ChangeKind::TableAdded, t.name.clone(), None, &[&t.name]);
        }
    }
    // Each table's unique column sets before the migration, with a column
    // it renamed under its new name (SQLite renames it in the indexes too).
    let was_unique = |table: &str| -> Vec<Vec<String>> {
        let rename = column_renames
            .iter()
            .find(|(t, _, _)| t.eq_ignore_ascii_case(table))
            .map(|(_, from, to)| (from.clone(), to.clone()));
        before
            .unique_sets(table)
            .iter()
            .map(|set| {
                let mut set: Vec<String> = set
                    .iter()
                    .map(|c| match &rename {
                        Some((from, to)) if c == from => to.clone(),
                        _ => c.clone(),
                    })
                    .collect();
                set.sort();
                set
            })
            .collect()
    };
    let mut unique_added: Vec<String> = Vec::new();
    for index in after.objects.values().filter(|o| o.kind == "index") {
        if before.get(&index.name).is_some_and(|o| o.sql == index.sql) {
            continue;
        }
        let unique = normalize(&index.sql).starts_with("create unique index");
        let existing = before.has_table(&index.table);
        // Columns the table already kept unique (under another index, a
        // constraint, its primary key) refuse no write they did not before.
        let was = was_unique(&index.table);
        let gained = after
            .unique_sets(&index.table)
            .iter()
            .any(|s| !was.contains(s));
        let kind = if unique && existing && gained {
            ChangeKind::UniqueAdded
        } else {
            ChangeKind::IndexAdded
        };
        let object = if kind == ChangeKind::UniqueAdded {
            index.table.clone()
        } else {
            index.name.clone()
        };
        if kind == ChangeKind::UniqueAdded {
            unique_added.push(index.table.to_ascii_lowercase());
        }
        push(kind, object, None, &[&index.name]);
    }
    // Uniqueness by table, whatever carries it (a constraint of a rebuilt
    // table, a primary key, an index): columns made unique refuse writes
    // older code makes; columns no longer unique break its upserts.
    for old in tables(before, "table") {
        let name = old.name.to_ascii_lowercase();
        if !after.has_table(&name) {
            // Dropped or renamed: that finding says it all.
            continue;
        }
        let was = was_unique(&name);
        let now = after.unique_sets(&name);
        if now.iter().any(|s| !was.contains(s)) && !unique_added.contains(&name) {
            push(
                ChangeKind::UniqueAdded,
                old.name.clone(),
                None,
                &[&old.name],
            );
        }
        // A set with a column the migration dropped: that drop (BC103)
        // breaks what named it, and a write leaving it out never met it.
        let kept_shape = after.get(&name).map(|n| shape_of(shapes, n));
        let all_kept = |s: &Vec<String>| {
            s.iter().all(|c| {
                c.is_empty()
                    || c.starts_with('\0')
                    || kept_shape.as_ref().is_some_and(|k| k.column(c).is_some())
            })
        };
        if was.iter().any(|s| !now.contains(s) && all_kept(s)) {
            push(
                ChangeKind::UniqueDropped,
                old.name.clone(),
                None,
                &[&old.name],
            );
        }
    }
    for view in before.objects.values().filter(|o| o.kind == "view") {
        match after.get(&view.name) {
            Some(new) if new.sql == view.sql => {}
            Some(new) if new.kind == "view" => {
                let kept = shape_of(shapes, new);
                let lost = shape_of(shapes, view)
                    .columns
                    .iter()
                    .any(|c| kept.column(&c.name).is_none());
                let kind = if lost {
                    ChangeKind::ViewChanged
                } else {
                    ChangeKind::ViewAdded
                };
                push(kind, view.name.clone(), None, &[&view.name]);
            }
            _ => push(
                ChangeKind::ViewChanged,
                view.name.clone(),
                None,
                &[&view.name],
            ),
        }
    }
    for view in after.objects.values().filter(|o| o.kind == "view") {
        if before.get(&view.name).is_none() {
            push(
                ChangeKind::ViewAdded,
                view.name.clone(),
                None,
                &[&view.name],
            );
        }
    }
    for trigger in before.objects.values().filter(|o| o.kind == "trigger") {
        let gone_with_table =
            !after.has_table(&trigger.table) && after.get(&trigger.table).is_none();
        match after.get(&trigger.name) {
            Some(new) if new.sql == trigger.sql => {}
            // Its table was dropped: that finding says it all.
            None if gone_with_table => {}
            // The table in the detail: the runtime judges a checked query
            // by whether it writes that table (`query::uses`).
            _ => push(
                ChangeKind::TriggerChanged,
                trigger.name.clone(),
                Some(format!("on `{}`", trigger.table)),
                &[&trigger.name],
            ),
        }
    }
    for trigger in after.objects.values().filter(|o| o.kind == "trigger") {
        if before.get(&trigger.name).is_some() {
            continue;
        }
        // A new trigger on a table older code writes, that can refuse a
        // write, breaks that code's writes.
        let refuses = mentions(&trigger.sql, "raise") && before.get(&trigger.table).is_some();
        let kind = if refuses {
            ChangeKind::TriggerChanged
        } else {
            ChangeKind::TriggerAdded
        };
        let detail = refuses.then(|| format!("on `{}`", trigger.table));
        push(kind, trigger.name.clone(), detail, &[&trigger.name]);
    }
    out
}

/// The changes of a table whose definition changed from `old` to `new`.
/// `renamed` maps a table's old name (lowercase) to its name after the
/// migration; `column_renames` lists the columns renamed in place (table,
/// old and new name, lowercase); `created` the tables the migration
/// creates (lowercase).
fn table_changes(
    table: &Object,
    old: &Shape,
    new: &Shape,
    renamed: impl Fn(&str) -> String,
    column_renames: &[(String, String, String)],
    created: &[String],
    push: &mut impl FnMut(ChangeKind, String, Option<String>, &[&str]),
) {
    let t = &table.name;
    let (removed, added) = column_delta(old, new);
    let rename = single_rename(&removed, &added);
    if let Some((r, a)) = rename {
        push(
            ChangeKind::ColumnRenamed,
            format!("{t}.{}", r.name),
            Some(format!("to `{}`", a.name)),
            &[&r.name, &a.name],
        );
    } else {
        for c in &removed {
            let object = format!("{t}.{}", c.name);
            push(
                ChangeKind::ColumnDropped,
                object.clone(),
                None,
                &[&c.name, t],
            );
            push(ChangeKind::ColumnData, object, None, &[&c.name, t]);
        }
        for c in &added {
            let kind = if c.not_null && !c.has_default && !c.exempt {
                ChangeKind::RequiredColumnAdded
            } else {
                ChangeKind::ColumnAdded
            };
            push(kind, format!("{t}.{}", c.name), None, &[&c.name, t]);
        }
    }
    for c in &old.columns {
        let Some(n) = new.column(&c.name) else {
            continue;
        };
        let object = format!("{t}.{}", c.name);
        if n.decl_type != c.decl_type {
            let detail = format!("`{}` to `{}`", c.decl_type, n.decl_type);
            push(
                ChangeKind::TypeChanged,
                object.clone(),
                Some(detail),
                &[&c.name, t],
            );
        }
        if n.not_null && !c.not_null {
            push(ChangeKind::NotNullAdded, object, None, &[&c.name, t]);
        } else if c.not_null && c.has_default && n.not_null && !n.has_default && !n.exempt {
            push(ChangeKind::DefaultRemoved, object, None, &[&c.name, t]);
        }
    }
    if columns_moved(
        old,
        new,
        rename.map(|(r, a)| (r.name.as_str(), a.name.as_str())),
    ) {
        push(ChangeKind::ColumnsMoved, t.clone(), None, &[t]);
    }
    // The keys before, with their parents as the migration renamed them.
    // A column renamed here is renamed in this table's keys and checks too
    // (SQLite rewrites them): the same constraints under the new name.
    let lower = rename.map(|(r, a)| (r.name.to_ascii_lowercase(), a.name.to_ascii_lowercase()));
    let in_new_names = |text: &str| match &lower {
        Some((from, to)) => rename_word(text, from, to),
        None => text.to_owned(),
    };
    let kept: Vec<ForeignKey> = old
        .foreign_keys
        .iter()
        .map(|k| ForeignKey {
            from: k
                .from
                .split(',')
                .map(&in_new_names)
                .collect::<Vec<_>>()
                .join(","),
            to: k
                .to
                .split(',')
                .map(|c| {
                    column_renames
                        .iter()
                        .find(|(t, from, _)| *t == k.parent && from == c)
                        .map_or(c.to_owned(), |(_, _, to)| to.clone())
                })
                .collect::<Vec<_>>()
                .join(","),
            parent: renamed(&k.parent),
        })
        .collect();
    // One finding per parent, named: older code deleting or re-keying the
    // parent's rows breaks as well as older code writing this table.
    // A key from columns this migration adds without a default (older
    // inserts leave them NULL, which passes; older updates do not set
    // them) to a table it creates (which older code does not write): no
    // write of older code can fail it.
    let new_column = |c: &str| {
        added.iter().any(|a| {
            a.name.eq_ignore_ascii_case(c)
                && !a.has_default
                && rename.is_none_or(|(_, to)| !to.name.eq_ignore_ascii_case(c))
        })
    };
    let unreachable =
        |k: &ForeignKey| created.contains(&k.parent) && k.from.split(',').all(new_column);
    let mut parents: Vec<&str> = new
        .foreign_keys
        .iter()
        .filter(|k| !kept.contains(k) && !unreachable(k))
        .map(|k| k.parent.as_str())
        .collect();
    parents.sort_unstable();
    parents.dedup();
    for parent in parents {
        push(
            ChangeKind::ForeignKeyAdded,
            t.clone(),
            Some(format!("to `{parent}`")),
            &[t],
        );
    }
    let unquoted = |c: &str| c.replace('"', "");
    let old_checks: Vec<String> = old
        .checks
        .iter()
        .map(|c| unquoted(&in_new_names(c)))
        .collect();
    if new
        .checks
        .iter()
        .any(|c| !old_checks.contains(&unquoted(c)))
    {
        push(ChangeKind::CheckAdded, t.clone(), None, &[t]);
    }
}

/// `text` (lowercase) with each whole-word `from` replaced by `to`.
fn rename_word(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(from) {
        if i >= last && is_word_at(text, i, from) {
            out.push_str(&text[last..i]);
            out.push_str(to);
            last = i + from.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The columns of `old` gone from `new`, and those of `new` not in `old`.
fn column_delta<'a>(old: &'a Shape, new: &'a Shape) -> (Vec<&'a Column>, Vec<&'a Column>) {
    let removed = old
        .columns
        .iter()
        .filter(|c| new.column(&c.name).is_none())
        .collect();
    let added = new
        .columns
        .iter()
        .filter(|c| old.column(&c.name).is_none())
        .collect();
    (removed, added)
}

/// The rename `removed` and `added` (a [`column_delta`]) amount to: one
/// column gone and one of the same type come.
fn single_rename<'a>(
    removed: &[&'a Column],
    added: &[&'a Column],
) -> Option<(&'a Column, &'a Column)> {
    match (removed, added) {
        ([r], [a]) if r.decl_type == a.decl_type => Some((*r, *a)),
        _ => None,
    }
}

/// The column renamed from `old` to `new` (see [`single_rename`]).
fn column_rename<'a>(old: &'a Shape, new: &'a Shape) -> Option<(&'a Column, &'a Column)> {
    let (removed, added) = column_delta(old, new);
    single_rename(&removed, &added)
}

/// Whether the columns `old` and `new` share (a renamed column, `rename`
/// as `(old name, new name)`, counting as shared) stand at other positions
/// relative to each other, or a new column stands before a shared one: what
/// code reading rows by position (`SELECT *`) or inserting without a column
/// list meets. A column dropped or added at the end moves nothing here (a
/// drop is its own finding).
fn columns_moved(old: &Shape, new: &Shape, rename: Option<(&str, &str)>) -> bool {
    let old_names: Vec<String> = old
        .columns
        .iter()
        .map(|c| c.name.to_ascii_lowercase())
        .collect();
    let new_names: Vec<String> = new
        .columns
        .iter()
        .map(|c| match rename {
            Some((from, to)) if c.name.eq_ignore_ascii_case(to) => from.to_ascii_lowercase(),
            _ => c.name.to_ascii_lowercase(),
        })
        .collect();
    let shared_old: Vec<&String> = old_names.iter().filter(|n| new_names.contains(n)).collect();
    let shared_new: Vec<&String> = new_names.iter().filter(|n| old_names.contains(n)).collect();
    let last_shared = new_names.iter().rposition(|n| old_names.contains(n));
    let inserted =
        last_shared.is_some_and(|p| new_names[..p].iter().any(|n| !old_names.contains(n)));
    shared_old != shared_new || inserted
}

/// A row write the authorizer saw: a `DELETE` from `table`, or an `UPDATE`
/// of `column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowWrite {
    pub(crate) table: String,
    /// `None` for a delete.
    pub(crate) column: Option<String>,
}

/// The destructive findings of the data statement at `stmt`, which wrote
/// `writes` (and dropped `dropped`), given the schema `before` its
/// migration.
pub(crate) fn data_changes(
    before: &Snapshot,
    shapes: &Shapes,
    writes: &[RowWrite],
    dropped: &[String],
    stmt: &PlannedStatement,
) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for w in writes {
        if !before.has_table(&w.table) || dropped.iter().any(|d| d.eq_ignore_ascii_case(&w.table)) {
            continue;
        }
        let (kind, object) = match &w.column {
            None => (ChangeKind::RowsDeleted, w.table.clone()),
            // A backfill of a column the migration adds overwrites nothing.
            Some(c)
                if before
                    .get(&w.table)
                    .is_some_and(|t| shape_of(shapes, t).column(c).is_some()) =>
            {
                (ChangeKind::ValuesOverwritten, format!("{}.{c}", w.table))
            }
            Some(_) => continue,
        };
        if !out.iter().any(|c| c.kind == kind && c.object == object) {
            out.push(Change {
                kind,
                object,
                detail: None,
                line: stmt.line,
                column: stmt.column,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::tests::with_sources;

    /// The codes and objects found for the last of `files`.
    fn last(files: &[&str]) -> Vec<(String, String)> {
        let outcome = with_sources(files, |s| crate::replay::replay_outcome(s, "migrations"));
        assert!(outcome.findings.is_empty(), "{:#?}", outcome.findings);
        outcome
            .changes
            .last()
            .unwrap()
            .iter()
            .map(|c| (c.kind.code().to_owned(), c.object.clone()))
            .collect()
    }

    fn codes(files: &[&str]) -> Vec<String> {
        last(files).into_iter().map(|(c, _)| c).collect()
    }

    const MESSAGES: &str = "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT, room TEXT);";

    #[test]
    fn codes_are_unique_and_classes_follow_them() {
        let mut seen: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.code()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), ChangeKind::ALL.len());
        assert_eq!(ChangeKind::ColumnDropped.class(), Class::Breaking);
        assert_eq!(ChangeKind::RowsDeleted.class(), Class::Destructive);
        assert_eq!(ChangeKind::IndexAdded.class(), Class::Additive);
    }

    #[test]
    fn additive_changes() {
        assert_eq!(
            last(&[
                MESSAGES,
                "ALTER TABLE messages ADD COLUMN sent_at TEXT;\nCREATE TABLE rooms (id TEXT);\nCREATE INDEX m_room ON messages (room);\nCREATE VIEW v AS SELECT id FROM messages;\nCREATE TRIGGER t AFTER INSERT ON messages BEGIN INSERT INTO rooms VALUES (new.room); END;",
            ]),
            [
                ("AD102".to_owned(), "messages.sent_at".to_owned()),
                ("AD101".to_owned(), "rooms".to_owned()),
                ("AD103".to_owned(), "m_room".to_owned()),
                ("AD104".to_owned(), "v".to_owned()),
                ("AD105".to_owned(), "t".to_owned()),
            ]
        );
    }

    #[test]
    fn dropped_and_renamed_columns_and_tables() {
        assert_eq!(
            last(&[MESSAGES, "ALTER TABLE messages DROP COLUMN body;"]),
            [
                ("BC103".to_owned(), "messages.body".to_owned()),
                ("DS102".to_owned(), "messages.body".to_owned())
            ]
        );
        assert_eq!(
            codes(&[MESSAGES, "ALTER TABLE messages RENAME COLUMN body TO text;"]),
            ["BC104"]
        );
        assert_eq!(
            codes(&[MESSAGES, "ALTER TABLE messages RENAME TO posts;"]),
            ["BC102"]
        );
        assert_eq!(
            codes(&[MESSAGES, "DROP TABLE messages;"]),
            ["BC101", "DS101"]
        );
    }

    #[test]
    fn a_rebuild_is_judged_by_what_it_leaves() {
        // Same columns, same constraints: nothing older code could see.
        let same = "CREATE TABLE new_m (id INTEGER PRIMARY KEY, body TEXT, room TEXT);\nINSERT INTO new_m SELECT * FROM messages;\nDROP TABLE messages;\nALTER TABLE new_m RENAME TO messages;";
        assert_eq!(codes(&[MESSAGES, same]), Vec::<String>::new());
        let tighter = "CREATE TABLE new_m (id INTEGER PRIMARY KEY, body INTEGER NOT NULL CHECK (body > 0), room TEXT UNIQUE);\nINSERT INTO new_m SELECT * FROM messages;\nDROP TABLE messages;\nALTER TABLE new_m RENAME TO messages;";
        assert_eq!(
            codes(&[MESSAGES, tighter]),
            ["BC105", "BC106", "BC107", "BC108"]
        );
        let required = "CREATE TABLE new_m (id INTEGER PRIMARY KEY, body TEXT, room TEXT, k TEXT NOT NULL);\nINSERT INTO new_m SELECT *, '' FROM messages;\nDROP TABLE messages;\nALTER TABLE new_m RENAME TO messages;";
        assert_eq!(codes(&[MESSAGES, required]), ["BC111"]);
    }

    /// The gaps a review found: columns moved by a rebuild, a default
    /// removed from a `NOT NULL` column, a foreign key added by a rebuild.
    #[test]
    fn moved_columns_lost_defaults_and_new_foreign_keys() {
        let rebuild = |columns: &str, select: &str| {
            format!(
                "CREATE TABLE new_m ({columns});\nINSERT INTO new_m SELECT {select} FROM messages;\n\
                 DROP TABLE messages;\nALTER TABLE new_m RENAME TO messages;"
            )
        };
        let swapped = rebuild(
            "id INTEGER PRIMARY KEY, room TEXT, body TEXT",
            "id, room, body",
        );
        assert_eq!(
            last(&[MESSAGES, &swapped]),
            [("BC112".to_owned(), "messages".to_owned())]
        );
        let inserted = rebuild(
            "id INTEGER PRIMARY KEY, body TEXT, at TEXT, room TEXT",
            "id, body, NULL, room",
        );
        assert_eq!(codes(&[MESSAGES, &inserted]), ["AD102", "BC112"]);
        // At the end, or after a dropped column: nothing moves.
        let appended = "ALTER TABLE messages ADD COLUMN at TEXT;";
        assert_eq!(codes(&[MESSAGES, appended]), ["AD102"]);
        let dropped = rebuild("id INTEGER PRIMARY KEY, room TEXT", "id, room");
        assert_eq!(codes(&[MESSAGES, &dropped]), ["BC103", "DS102"]);
        // A renamed column in place moves nothing either.
        let renamed = "ALTER TABLE messages RENAME COLUMN body TO text;";
        assert_eq!(codes(&[MESSAGES, renamed]), ["BC104"]);

        let defaulted = "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT '', room TEXT);";
        let no_default = rebuild(
            "id INTEGER PRIMARY KEY, body TEXT NOT NULL, room TEXT",
            "id, body, room",
        );
        assert_eq!(
            last(&[defaulted, &no_default]),
            [("BC113".to_owned(), "messages.body".to_owned())]
        );
        let other_default = rebuild(
            "id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'x', room TEXT",
            "id, body, room",
        );
        assert_eq!(codes(&[defaulted, &other_default]), Vec::<String>::new());

        let rooms = "CREATE TABLE rooms (name TEXT PRIMARY KEY);";
        let referenced = rebuild(
            "id INTEGER PRIMARY KEY, body TEXT, room TEXT REFERENCES rooms (name)",
            "id, body, room",
        );
        assert_eq!(
            last(&[MESSAGES, rooms, &referenced]),
            [("BC114".to_owned(), "messages".to_owned())]
        );
        // The parent is named: older code deleting its rows breaks too.
        let outcome = with_sources(&[MESSAGES, rooms, &referenced], |s| {
            crate::replay::replay_outcome(s, "migrations")
        });
        assert_eq!(
            outcome.changes.last().unwrap()[0].summary(),
            "BC114 table `messages` got a new foreign key (to `rooms`)"
        );
        // The same key again, written otherwise: nothing new.
        let with_key = "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT, room TEXT REFERENCES rooms (name));";
        let same_key = rebuild(
            "id INTEGER PRIMARY KEY, body TEXT, room TEXT, FOREIGN KEY (room) REFERENCES rooms (name)",
            "id, body, room",
        );
        assert_eq!(codes(&[rooms, with_key, &same_key]), Vec::<String>::new());
        // A parent renamed: SQLite rewrites the child's `REFERENCES`,
        // which is no new key of the child's.
        let renamed_parent = "ALTER TABLE rooms RENAME TO halls;";
        assert_eq!(
            last(&[rooms, with_key, renamed_parent]),
            [("BC102".to_owned(), "rooms".to_owned())]
        );
    }

    #[test]
    fn unique_indexes_views_and_triggers() {
        assert_eq!(
            codes(&[MESSAGES, "CREATE UNIQUE INDEX u ON messages (room);"]),
            ["BC108"]
        );
        // On a table of the same migration, there is no data to refuse it.
        assert_eq!(
            codes(&[
                MESSAGES,
                "CREATE TABLE r (x); CREATE UNIQUE INDEX u ON r (x);"
            ]),
            ["AD101", "AD103"]
        );
        let view = "CREATE VIEW v AS SELECT id, body FROM messages;";
        assert_eq!(
            codes(&[
                MESSAGES,
                view,
                "DROP VIEW v; CREATE VIEW v AS SELECT id FROM messages;"
            ]),
            ["BC109"]
        );
        assert_eq!(
            codes(&[
                MESSAGES,
                view,
                "DROP VIEW v; CREATE VIEW v AS SELECT id, body, room FROM messages;"
            ]),
            ["AD104"]
        );
        assert_eq!(
            codes(&[MESSAGES, "CREATE TRIGGER no_empty BEFORE INSERT ON messages WHEN new.body = '' BEGIN SELECT RAISE(ABORT, 'empty'); END;"]),
            ["BC110"]
        );
    }

    /// What older code's upserts (`ON CONFLICT (email)`) and inserts rely
    /// on: a unique index or constraint dropped (a rebuild that forgets to
    /// create it again), a primary key put on an existing column; and the
    /// same uniqueness kept under another index, which changes nothing.
    #[test]
    fn uniqueness_lost_gained_or_kept_under_another_name() {
        let users = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);\nCREATE UNIQUE INDEX users_email ON users (email);";
        assert_eq!(
            last(&[users, "DROP INDEX users_email;"]),
            [("BC115".to_owned(), "users".to_owned())]
        );
        let forgot = "CREATE TABLE new_u (id INTEGER PRIMARY KEY, email TEXT, name TEXT);\nINSERT INTO new_u SELECT * FROM users;\nDROP TABLE users;\nALTER TABLE new_u RENAME TO users;";
        assert_eq!(codes(&[users, forgot]), ["BC115"]);
        let recreated = format!("{forgot}\nCREATE UNIQUE INDEX users_email ON users (email);");
        assert_eq!(codes(&[users, &recreated]), Vec::<String>::new());
        let renamed = "DROP INDEX users_email;\nCREATE UNIQUE INDEX by_email ON users (email);";
        assert_eq!(codes(&[users, renamed]), ["AD103"]);
        let constraint =
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);";
        let no_constraint = "CREATE TABLE new_u (id INTEGER PRIMARY KEY, email TEXT, name TEXT);\nINSERT INTO new_u SELECT * FROM users;\nDROP TABLE users;\nALTER TABLE new_u RENAME TO users;";
        assert_eq!(codes(&[constraint, no_constraint]), ["BC115"]);
        let as_index =
            format!("{no_constraint}\nCREATE UNIQUE INDEX users_email ON users (email);");
        assert_eq!(codes(&[constraint, &as_index]), ["AD103"]);
        let plain = "CREATE TABLE users (id INTEGER, email TEXT, name TEXT);";
        let keyed = "CREATE TABLE new_u (id INTEGER, email TEXT PRIMARY KEY, name TEXT);\nINSERT INTO new_u SELECT * FROM users;\nDROP TABLE users;\nALTER TABLE new_u RENAME TO users;";
        assert_eq!(
            last(&[plain, keyed]),
            [("BC108".to_owned(), "users".to_owned())]
        );
        // Its column dropped: the drop breaks what used it, and nothing
        // else relied on the index.
        assert_eq!(
            codes(&[
                users,
                "DROP INDEX users_email;\nALTER TABLE users DROP COLUMN email;"
            ]),
            ["BC103", "DS102"]
        );
        // A renamed column keeps its uniqueness (SQLite rewrites the
        // index, which reads as added): no BC108 or BC115 beside the rename.
        assert_eq!(
            codes(&[users, "ALTER TABLE users RENAME COLUMN email TO mail;"]),
            ["BC104", "AD103"]
        );
    }

    /// A view SQLite cannot describe (over a table that does not exist)
    /// is one object without a shape, not a schema without objects: the
    /// snapshot was read as empty, the migration after it saw every table
    /// as new, and its dropped column was classified additive.
    #[test]
    fn a_view_without_a_shape_does_not_hide_the_schema() {
        let first =
            "CREATE TABLE t (id INTEGER, extra TEXT);\nCREATE TABLE u (id INTEGER, body TEXT);";
        let view = "ALTER TABLE u DROP COLUMN body;\nCREATE VIEW w AS SELECT x FROM later;";
        assert_eq!(codes(&[first, view]), ["BC103", "DS102", "AD104"]);
        assert_eq!(
            last(&[
                first,
                view,
                "DROP VIEW w;\nALTER TABLE t DROP COLUMN extra;"
            ]),
            [
                ("BC103".to_owned(), "t.extra".to_owned()),
                ("DS102".to_owned(), "t.extra".to_owned()),
                ("BC109".to_owned(), "w".to_owned())
            ]
        );
        // Once its table exists, the view's columns are read: losing one
        // is breaking.
        assert_eq!(
            codes(&[
                first,
                view,
                "CREATE TABLE later (x INTEGER, y INTEGER);",
                "DROP VIEW w;\nCREATE VIEW w AS SELECT y FROM later;"
            ]),
            ["BC109"]
        );
    }

    /// A renamed column's `CHECK` and foreign key are the same constraint
    /// under the new name (SQLite rewrites them): nothing beside BC104.
    #[test]
    fn a_renamed_column_keeps_its_check_and_foreign_key() {
        let rooms = "CREATE TABLE rooms (name TEXT PRIMARY KEY);";
        let people = "CREATE TABLE people (id INTEGER PRIMARY KEY, age INTEGER CHECK (age > 0), room TEXT REFERENCES rooms (name));";
        assert_eq!(
            codes(&[
                rooms,
                people,
                "ALTER TABLE people RENAME COLUMN age TO years;"
            ]),
            ["BC104"]
        );
        assert_eq!(
            codes(&[
                rooms,
                people,
                "ALTER TABLE people RENAME COLUMN room TO hall;"
            ]),
            ["BC104"]
        );
        // The parent's column renamed: the child's key follows it.
        assert_eq!(
            last(&[
                rooms,
                people,
                "ALTER TABLE rooms RENAME COLUMN name TO title;"
            ]),
            [("BC104".to_owned(), "rooms.name".to_owned())]
        );
    }

    /// A new column referencing a new table: older code writes neither the
    /// column (NULL passes the check) nor the parent, so nothing it does
    /// can fail the key. Referencing an existing parent, the parent's
    /// older writers can.
    #[test]
    fn a_new_column_referencing_a_new_table_is_additive() {
        assert_eq!(
            codes(&[
                MESSAGES,
                "CREATE TABLE authors (id INTEGER PRIMARY KEY);\nALTER TABLE messages ADD COLUMN author_id INTEGER REFERENCES authors (id);"
            ]),
            ["AD102", "AD101"]
        );
        let rooms = "CREATE TABLE rooms (id INTEGER PRIMARY KEY);";
        assert_eq!(
            codes(&[
                MESSAGES,
                rooms,
                "ALTER TABLE messages ADD COLUMN room_id INTEGER REFERENCES rooms (id);"
            ]),
            ["AD102", "BC114"]
        );
    }

    /// A table renamed beside a new table of the same columns: the rename
    /// is the one whose definition SQLite rewrote, not the first by name.
    #[test]
    fn a_rename_beside_a_lookalike_table() {
        let rooms = "CREATE TABLE rooms (name TEXT PRIMARY KEY);";
        let people =
            "CREATE TABLE people (id INTEGER PRIMARY KEY, room TEXT REFERENCES rooms (name));";
        let outcome = with_sources(
            &[
                rooms,
                people,
                "CREATE TABLE archive (name TEXT PRIMARY KEY);\nALTER TABLE rooms RENAME TO halls;",
            ],
            |s| crate::replay::replay_outcome(s, "migrations"),
        );
        let summaries: Vec<String> = outcome
            .changes
            .last()
            .unwrap()
            .iter()
            .map(Change::summary)
            .collect();
        assert_eq!(
            summaries,
            [
                "BC102 table `rooms` renamed (to `halls`)",
                "AD101 table `archive` added"
            ]
        );
    }

    #[test]
    fn data_statements() {
        let seeded = "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT, room TEXT); INSERT INTO messages VALUES (1, 'a', 'r');";
        assert_eq!(
            last(&[seeded, "DELETE FROM messages WHERE room IS NULL;"]),
            [("DS103".to_owned(), "messages".to_owned())]
        );
        assert_eq!(
            last(&[seeded, "UPDATE messages SET body = lower(body);"]),
            [("DS104".to_owned(), "messages.body".to_owned())]
        );
        // A backfill of a new column overwrites nothing.
        assert_eq!(
            codes(&[
                seeded,
                "ALTER TABLE messages ADD COLUMN n INTEGER;\nUPDATE messages SET n = length(body);"
            ]),
            ["AD102"]
        );
        // Nor does writing a table the migration creates.
        assert_eq!(
            codes(&[
                seeded,
                "CREATE TABLE t (x); INSERT INTO t VALUES (1); UPDATE t SET x = 2; DELETE FROM t;"
            ]),
            ["AD101"]
        );
    }

    #[test]
    fn findings_point_at_their_statement() {
        let outcome = with_sources(
            &[
                MESSAGES,
                "CREATE TABLE rooms (id TEXT);\n\n  ALTER TABLE messages DROP COLUMN body;",
            ],
            |s| crate::replay::replay_outcome(s, "migrations"),
        );
        let dropped = &outcome.changes[1][0];
        assert_eq!(dropped.kind, ChangeKind::ColumnDropped);
        assert_eq!((dropped.line, dropped.column), (3, 3));
        assert_eq!(dropped.summary(), "BC103 column `messages.body` dropped");
    }

    #[test]
    fn a_trigger_finding_names_its_table() {
        let trigger = "CREATE TRIGGER no_empty BEFORE INSERT ON messages WHEN new.body = '' \
                       BEGIN SELECT RAISE(ABORT, 'empty'); END;";
        let summaries = |files: &[&str]| {
            let outcome = with_sources(files, |s| crate::replay::replay_outcome(s, "migrations"));
            outcome
                .changes
                .last()
                .unwrap()
                .iter()
                .map(Change::summary)
                .collect::<Vec<_>>()
        };
        // A new one that can refuse writes, and a dropped one.
        assert_eq!(
            summaries(&[MESSAGES, trigger]),
            ["BC110 trigger `no_empty` dropped or changed (on `messages`)"]
        );
        assert_eq!(
            summaries(&[MESSAGES, trigger, "DROP TRIGGER no_empty;"]),
            ["BC110 trigger `no_empty` dropped or changed (on `messages`)"]
        );
    }

    #[test]
    fn check_clauses() {
        assert_eq!(
            checks("CREATE TABLE t (a CHECK (a > 0), 'check' TEXT, b CHECK(length(b) < 5 AND b <> ')'))"),
            ["(a > 0)", "(length(b) < 5 and b <> ')')"]
        );
    }
}
