//! The schema a migration chain leaves behind: the chain replayed through a
//! version in the replay database, then `sqlite_schema` read back, in a
//! deterministic order (tables, indexes, views, triggers; each by name).
//! SQLite's and Cloudflare's internal objects, virtual tables' shadow
//! tables and the tables durable-schema owns are left out.

use std::path::Path;

use crate::replay::{self, Outcome, Replayer, Script};
use crate::source::{load_dir, Loaded};
use crate::{tracking, Diagnostic, Options};

/// One object of a schema, as `sqlite_schema` records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaObject {
    /// `table` (virtual tables too), `index`, `view` or `trigger`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The table it belongs to (its own name for a table or view).
    pub table: String,
    /// Its `CREATE` statement as SQLite keeps it, without a final `;`.
    pub sql: String,
}

/// The schema after the migrations up to and including a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDump {
    /// The version replayed to (0: nothing applied).
    pub version: u32,
    /// The objects: tables, then indexes, views, triggers; each by name.
    pub objects: Vec<SchemaObject>,
}

impl SchemaDump {
    /// The schema as SQL: each object's statement and `;`, a blank line
    /// between objects. Empty for an empty schema.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        for (i, o) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&o.sql);
            out.push_str(";\n");
        }
        out
    }

    /// The object of `kind` named `name` (compared as SQLite compares
    /// names), if the schema has it.
    pub fn object(&self, kind: &str, name: &str) -> Option<&SchemaObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name.eq_ignore_ascii_case(name))
    }
}

/// Rank of a kind in a dump.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "table" => 0,
        "index" => 1,
        "view" => 2,
        _ => 3,
    }
}

/// Whether `name` is an internal name: SQLite's (`sqlite_`) or
/// Cloudflare's (`_cf_`), in any case.
fn internal(name: &str) -> bool {
    tracking::reserved_prefix(name).is_some()
}

/// Reads the schema of the replay database.
fn dump(replayer: &Replayer, table: &str, version: u32) -> Result<SchemaDump, String> {
    let mut objects = head(replayer, table)?;
    objects.sort_by(|a, b| {
        (kind_rank(&a.kind), &a.name, &a.sql).cmp(&(kind_rank(&b.kind), &b.name, &b.sql))
    });
    Ok(SchemaDump { version, objects })
}

/// The user's objects in the replay database, in the order the chain
/// created them: what [`crate::Plan::head_schema`] records (see
/// [`head_schema`]).
pub(crate) fn head(replayer: &Replayer, table: &str) -> Result<Vec<SchemaObject>, String> {
    replayer
        .read(|conn| head_schema(conn, table))
        .map_err(|e| format!("cannot read the replayed schema: {e}"))
}

/// The user's objects in `conn`, in the order they were created
/// (`sqlite_schema`'s rowid), as [`crate::Plan::head_schema`] records them:
/// without SQLite's and Cloudflare's internal objects, virtual tables'
/// shadow tables (their `CREATE VIRTUAL TABLE` makes them) and the tables
/// durable-schema owns (the tracking table `table` and its companions). For
/// the replay, and for tests that build a chain's database themselves.
pub fn head_schema(
    conn: &rusqlite::Connection,
    table: &str,
) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut shadow = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'")?;
    let shadow: Vec<String> = shadow
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_schema \
         WHERE sql IS NOT NULL AND type IN ('table', 'index', 'view', 'trigger') \
         ORDER BY rowid",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(SchemaObject {
                kind: r.get(0)?,
                name: r.get(1)?,
                table: r.get(2)?,
                sql: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter(|o| {
            !internal(&o.name)
                && !internal(&o.table)
                && !tracking::owns(table, &o.name)
                && !tracking::owns(table, &o.table)
                && !shadow.iter().any(|s| s.eq_ignore_ascii_case(&o.name))
        })
        .collect())
}

/// The schemas of `dir` (resolved against `base`) after each of `versions`
/// (0: before the first migration), in the order asked, from one replay of
/// the chain up to the highest of them. Fails with the problems of the
/// directory or of the replayed migrations, or when a version is beyond the
/// last migration.
pub fn schemas_at(
    base: &Path,
    dir: &str,
    options: &Options,
    versions: &[u32],
) -> Result<Vec<SchemaDump>, Vec<Diagnostic>> {
    let Loaded { files, errors, .. } = load_dir(base, dir);
    if !errors.is_empty() {
        return Err(errors);
    }
    let head = files.last().map_or(0, |f| f.source.version);
    let beyond: Vec<Diagnostic> = versions
        .iter()
        .filter(|&&v| v > head)
        .map(|v| {
            Diagnostic::plain(format!(
                "there is no version {v}: `{dir}` ends at version {head}"
            ))
            .help(format!("pick a version from 0 to {head}"))
        })
        .collect();
    if !beyond.is_empty() {
        return Err(beyond);
    }
    let replayer = Replayer::new(&options.table).map_err(|e| vec![Diagnostic::plain(e)])?;
    let scripts: Vec<Script<'_>> = files
        .iter()
        .map(crate::source::LoadedFile::script)
        .collect();
    let mut order: Vec<u32> = versions.to_vec();
    order.sort_unstable();
    order.dedup();
    let mut dumps = Vec::with_capacity(order.len());
    let mut done = 0usize;
    for version in order {
        let upto = usize::try_from(version).unwrap_or(usize::MAX);
        let segment = scripts.get(done..upto).unwrap_or_default();
        let Outcome { findings, .. } = replay::run(&replayer, segment, &options.table);
        if !findings.is_empty() {
            return Err(findings.into_iter().map(|f| f.diagnostic).collect());
        }
        done = upto;
        let dumped =
            dump(&replayer, &options.table, version).map_err(|e| vec![Diagnostic::plain(e)])?;
        dumps.push(dumped);
    }
    Ok(versions
        .iter()
        .filter_map(|v| dumps.iter().find(|d| d.version == *v).cloned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Scratch;

    #[test]
    fn dumps_in_kind_then_name_order_without_internal_objects() {
        let scratch = Scratch::new(
            "dump",
            &[
                (
                    "0001_init.sql",
                    b"CREATE TABLE zebra (id INTEGER PRIMARY KEY, name TEXT UNIQUE);\nCREATE TABLE apple (id INTEGER PRIMARY KEY);\nCREATE INDEX zebra_name ON zebra (name);\n",
                ),
                (
                    "0002_more.sql",
                    b"CREATE VIEW v AS SELECT id FROM zebra;\nCREATE TRIGGER t AFTER INSERT ON zebra BEGIN INSERT INTO apple (id) VALUES (NULL); END;\nCREATE VIRTUAL TABLE docs USING fts5(body);\nCREATE INDEX apple_id ON apple (id);\n",
                ),
                ("0003_drop.sql", b"DROP VIEW v;\nALTER TABLE apple ADD COLUMN x TEXT;\n"),
            ],
        );
        let dumps = schemas_at(&scratch.0, ".", &Options::default(), &[2, 0, 1, 3]).unwrap();
        let names = |d: &SchemaDump| {
            d.objects
                .iter()
                .map(|o| format!("{} {}", o.kind, o.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            dumps.iter().map(|d| d.version).collect::<Vec<_>>(),
            [2, 0, 1, 3]
        );
        assert!(dumps[1].objects.is_empty());
        assert_eq!(dumps[1].to_sql(), "");
        assert_eq!(
            names(&dumps[2]),
            ["table apple", "table zebra", "index zebra_name"]
        );
        assert_eq!(
            names(&dumps[0]),
            [
                "table apple",
                "table docs",
                "table zebra",
                "index apple_id",
                "index zebra_name",
                "view v",
                "trigger t"
            ]
        );
        assert_eq!(
            dumps[3].object("table", "APPLE").map(|o| o.sql.as_str()),
            Some("CREATE TABLE apple (id INTEGER PRIMARY KEY, x TEXT)")
        );
        assert!(dumps[3].object("view", "v").is_none());
        assert!(dumps[0].to_sql().starts_with(
            "CREATE TABLE apple (id INTEGER PRIMARY KEY);\n\nCREATE VIRTUAL TABLE docs USING fts5(body);\n"
        ));
    }

    #[test]
    fn versions_beyond_the_head_and_broken_chains_are_errors() {
        let scratch = Scratch::new(
            "dump-errors",
            &[
                ("0001_init.sql", b"CREATE TABLE t (x);\n"),
                ("0002_bad.sql", b"CREATE INDEX i ON nope (x);\n"),
            ],
        );
        let options = Options::default();
        let errors = schemas_at(&scratch.0, ".", &options, &[3]).unwrap_err();
        assert_eq!(
            errors[0].message,
            "there is no version 3: `.` ends at version 2"
        );
        // The prefix before the broken migration still dumps.
        assert_eq!(
            schemas_at(&scratch.0, ".", &options, &[1]).unwrap()[0]
                .objects
                .len(),
            1
        );
        let errors = schemas_at(&scratch.0, ".", &options, &[2]).unwrap_err();
        assert!(errors[0].message.contains("no such table"), "{errors:?}");
    }
}
