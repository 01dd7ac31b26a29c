//! Dropping a table that other tables' foreign keys reference.
//!
//! On a database with data, `DROP TABLE` first deletes every row, and inside
//! a migration's transaction the foreign keys stay on (on a Durable Object
//! too: `PRAGMA foreign_keys = OFF` does nothing there). The replay database
//! has no rows, so what a drop does is read from the schema: a reference
//! checked at once fails on the spot; the others (ON DELETE actions, deferred
//! references) are recorded in [`PendingDrops`] and judged when the migration
//! ends, since what happens next decides whether they are safe.

use rusqlite::Connection;

use super::advice;
use super::sandbox::Replayer;
use durable_schema_workerd::{Denial, Rule};

/// Line, column and text of the statement a verdict points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// 1-based line of the statement's first token.
    pub(crate) line: u32,
    /// 1-based column of the statement's first token.
    pub(crate) column: u32,
    /// The statement's text.
    pub(crate) statement: String,
}

/// A referencing table's ON DELETE action, as `pragma_foreign_key_list`
/// spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnDelete {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl OnDelete {
    fn parse(sql: &str) -> Self {
        match sql.to_ascii_uppercase().as_str() {
            "RESTRICT" => Self::Restrict,
            "CASCADE" => Self::Cascade,
            "SET NULL" => Self::SetNull,
            "SET DEFAULT" => Self::SetDefault,
            _ => Self::NoAction,
        }
    }
}

/// A foreign key pointing at the dropped table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    /// The referencing table.
    child: String,
    /// Its referencing column.
    column: String,
    on_delete: OnDelete,
    /// Declared `DEFERRABLE INITIALLY DEFERRED`.
    declared_deferred: bool,
}

/// What a drop does to the referencing rows, unless the migration settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropAction {
    /// ON DELETE CASCADE: deletes them.
    Cascade,
    /// ON DELETE SET NULL: nulls their reference.
    SetNull,
    /// ON DELETE SET DEFAULT: resets their reference.
    SetDefault,
    /// A NO ACTION or RESTRICT reference under deferred keys: checked at
    /// commit.
    Deferred,
}

impl DropAction {
    /// The ON DELETE clause, for messages.
    fn sql(self) -> &'static str {
        match self {
            Self::Cascade => "CASCADE",
            Self::SetNull => "SET NULL",
            Self::SetDefault => "SET DEFAULT",
            Self::Deferred => "NO ACTION",
        }
    }
}

/// What dropping `table` does to `child`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hazard {
    table: String,
    child: String,
    column: String,
    action: DropAction,
}

/// A hazard of a DROP that ran, with where the DROP is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlacedHazard {
    hazard: Hazard,
    at: Position,
}

/// The drops of referenced tables in the current migration, judged when it
/// ends (one per migration).
#[derive(Debug, Default)]
pub(crate) struct PendingDrops {
    /// Hazards of the statement being run, placed once it succeeds.
    current: Vec<Hazard>,
    /// Hazards of the statements that ran.
    pending: Vec<PlacedHazard>,
    /// Tables that became what they are through `ALTER TABLE … RENAME TO`.
    renamed: Vec<String>,
}

const REFERENCES: &str = "SELECT m.name, f.\"from\", f.on_delete, \
        instr(upper(m.sql), 'INITIALLY DEFERRED') > 0 \
     FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
     WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE \
     AND m.name <> ?1 COLLATE NOCASE ORDER BY m.name, f.id";

fn references(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Reference>> {
    let mut stmt = conn.prepare(REFERENCES)?;
    let refs = stmt.query_map([table], |r| {
        Ok(Reference {
            child: r.get(0)?,
            column: r.get(1)?,
            on_delete: OnDelete::parse(&r.get::<_, String>(2)?),
            declared_deferred: r.get(3)?,
        })
    })?;
    refs.collect()
}

fn deferred_keys(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA defer_foreign_keys", [], |r| r.get::<_, i64>(0))
        .map(|v| v != 0)
}

impl PendingDrops {
    /// Judges dropping `table` before the statement runs. A reference
    /// checked at once (NO ACTION or RESTRICT without deferred keys) fails
    /// on the spot: refused here. The others are recorded for
    /// [`PendingDrops::unsettled`].
    pub(crate) fn judge(&mut self, replayer: &Replayer, table: &str) -> Option<Denial> {
        let found = replayer.read(|conn| Ok((references(conn, table)?, deferred_keys(conn)?)));
        // Without an answer the drop is left to SQLite.
        let (refs, deferred) = found.ok()?;
        let mut hazards = Vec::new();
        for r in refs {
            let action = match r.on_delete {
                OnDelete::Cascade => DropAction::Cascade,
                OnDelete::SetNull => DropAction::SetNull,
                OnDelete::SetDefault => DropAction::SetDefault,
                // With deferred keys SQLite treats RESTRICT like NO ACTION.
                _ if deferred || r.declared_deferred => DropAction::Deferred,
                OnDelete::Restrict => {
                    return Some(Denial {
                        rule: Rule::ReferencedDrop,
                        message: format!(
                            "dropping `{table}` fails once `{child}` has rows: `{child}.{column}` references it ON DELETE RESTRICT, and foreign keys stay on in a migration",
                            child = r.child,
                            column = r.column,
                        ),
                        help: advice::defer(table),
                    })
                }
                OnDelete::NoAction => {
                    return Some(Denial {
                        rule: Rule::ReferencedDrop,
                        message: format!(
                            "dropping `{table}` fails with `FOREIGN KEY constraint failed` once `{child}` has rows: `{child}.{column}` references it, and foreign keys stay on in a migration",
                            child = r.child,
                            column = r.column,
                        ),
                        help: advice::defer(table),
                    })
                }
            };
            hazards.push(Hazard {
                table: table.to_owned(),
                child: r.child,
                column: r.column,
                action,
            });
        }
        self.current.extend(hazards);
        None
    }

    /// The statement at `at` ran and dropped `dropped`: the tables it
    /// dropped no longer hold rows a cascade could have touched, so their
    /// pending drops are settled (a rebuilt child was refilled by the
    /// migration itself), and its own hazards now wait for the end.
    pub(crate) fn ran(&mut self, dropped: &[String], at: &Position, renamed: Option<String>) {
        self.pending.retain(|p| {
            !dropped
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&p.hazard.child))
        });
        self.pending
            .extend(self.current.drain(..).map(|hazard| PlacedHazard {
                hazard,
                at: at.clone(),
            }));
        self.renamed.extend(renamed);
    }

    /// The statement failed: a drop that did not happen leaves nothing to
    /// judge.
    pub(crate) fn failed(&mut self) {
        self.current.clear();
    }

    /// The drops of this migration that are still unsafe at its end, with
    /// where each DROP was.
    pub(crate) fn unsettled(self, replayer: &Replayer) -> Vec<(Denial, Position)> {
        let Self {
            pending, renamed, ..
        } = self;
        let query = |conn: &Connection| -> rusqlite::Result<Vec<(Denial, Position)>> {
            let mut out = Vec::new();
            let deferred = deferred_keys(conn)?;
            let mut seen: Vec<(String, String)> = Vec::new();
            for p in pending {
                let h = &p.hazard;
                let key = (h.table.to_ascii_lowercase(), h.child.to_ascii_lowercase());
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                let still_references: bool = conn.query_row(
                    "SELECT count(*) > 0 FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
                     WHERE m.type = 'table' AND m.name = ?1 COLLATE NOCASE AND f.\"table\" = ?2 COLLATE NOCASE",
                    [&h.child, &h.table],
                    |r| r.get(0),
                )?;
                if !still_references {
                    continue;
                }
                let table_exists: bool = conn.query_row(
                    "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
                    [&h.table],
                    |r| r.get(0),
                )?;
                let renamed_over = renamed.iter().any(|r| r.eq_ignore_ascii_case(&h.table));
                if let Some(denial) = verdict(h, table_exists, deferred && renamed_over) {
                    out.push((denial, p.at));
                }
            }
            Ok(out)
        };
        replayer.read(query).unwrap_or_default()
    }
}

/// The verdict on a hazard whose child still references the table at the
/// end of the migration.
fn verdict(h: &Hazard, table_exists: bool, renamed_under_deferral: bool) -> Option<Denial> {
    let (table, child, column) = (&h.table, &h.child, &h.column);
    let effect = match h.action {
        DropAction::Cascade => "deletes every referencing row of",
        DropAction::SetNull => "sets to NULL the references in",
        DropAction::SetDefault => "resets to their default the references in",
        DropAction::Deferred if !table_exists => {
            return Some(Denial {
                rule: Rule::ReferencedDrop,
                message: format!(
                    "`{table}` is dropped while `{child}.{column}` still references it, so the commit fails once `{child}` has rows"
                ),
                help: advice::recreate_or_drop_reference(table, child),
            });
        }
        DropAction::Deferred if renamed_under_deferral => {
            return Some(Denial {
                rule: Rule::ReferencedDrop,
                message: format!(
                    "`{table}` is replaced by a renamed table while `{child}.{column}` references it and `PRAGMA defer_foreign_keys` is still on, so the commit fails once `{child}` has rows"
                ),
                help: advice::defer_off(table),
            });
        }
        DropAction::Deferred => return None,
    };
    Some(Denial {
        rule: Rule::ReferencedDrop,
        message: format!(
            "dropping `{table}` {effect} `{child}`, which the migration keeps: `{child}.{column}` references it ON DELETE {}, and foreign keys stay on in a migration",
            h.action.sql()
        ),
        help: advice::set_child_aside(child, table),
    })
}

#[cfg(test)]
mod tests {
    use crate::replay::tests::{run, PARENT_AND_CHILD};
    use durable_schema_workerd::Rule;

    #[test]
    fn dropping_a_referenced_table_is_judged_from_the_schema() {
        // The classic rebuild with `foreign_keys = OFF`: in the migration's
        // transaction (and on a DO) the keys stay on, so the DROP deletes
        // referenced rows and fails on any database with child rows, even
        // though the replay database (here with a child row) or an empty
        // one would tell nothing.
        let rebuild = "PRAGMA foreign_keys = OFF; CREATE TABLE p_new(id INTEGER PRIMARY KEY, x); INSERT INTO p_new(id) SELECT id FROM p; DROP TABLE p; ALTER TABLE p_new RENAME TO p; PRAGMA foreign_keys = ON;";
        let schema_only = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));";
        for base in [PARENT_AND_CHILD, schema_only] {
            let f = run(&[base, rebuild]);
            assert_eq!(f.len(), 1, "{f:#?}");
            assert_eq!((f[0].migration, f[0].rule), (1, Some(Rule::ReferencedDrop)));
            assert_eq!(f[0].diagnostic.position, Some((1, 115)), "{f:#?}");
            let help = f[0].diagnostic.help.clone().unwrap_or_default();
            assert!(help.contains("defer_foreign_keys"), "{help}");
        }
        // Dropping the child first, or a table nobody references, is fine.
        assert!(run(&[schema_only, "DROP TABLE c; DROP TABLE p;"]).is_empty());
        // A self-reference goes away with the table.
        assert!(run(&["CREATE TABLE t(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES t(id)); DROP TABLE t;"]).is_empty());
    }

    const SCHEMA_ONLY: &str = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));";

    #[test]
    fn on_delete_actions_are_refused_when_the_child_survives_the_migration() {
        for (action, words) in [
            ("CASCADE", "deletes every referencing row of `c`"),
            ("SET NULL", "sets to NULL the references in `c`"),
            (
                "SET DEFAULT",
                "resets to their default the references in `c`",
            ),
        ] {
            let base = format!("CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER DEFAULT 0 REFERENCES p(id) ON DELETE {action});");
            // Deferring does not help: actions run at once.
            let f = run(&[&base, "PRAGMA defer_foreign_keys = ON;\nDROP TABLE p; CREATE TABLE p(id INTEGER PRIMARY KEY);"]);
            assert_eq!(f.len(), 1, "{action}: {f:#?}");
            assert_eq!(f[0].rule, Some(Rule::ReferencedDrop), "{action}");
            assert_eq!(f[0].diagnostic.position, Some((2, 1)), "{action}: the DROP");
            assert!(
                f[0].diagnostic.message.contains(words),
                "{action}: {}",
                f[0].diagnostic.message
            );
            // Dropping the child afterwards too (a down migration) is safe.
            assert!(
                run(&[&base, "DROP TABLE p; DROP TABLE c;"]).is_empty(),
                "{action}"
            );
            // So is setting the child aside first, the advice given.
            assert!(run(&[&base, "CREATE TABLE c_tmp AS SELECT * FROM c; DROP TABLE c; DROP TABLE p; CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id)); INSERT INTO c SELECT p FROM c_tmp; DROP TABLE c_tmp;"]).is_empty(), "{action}");
        }
    }

    #[test]
    fn immediate_references_fail_on_the_spot() {
        // RESTRICT and NO ACTION without deferred keys fail at the DROP.
        for action in ["RESTRICT", "NO ACTION"] {
            let base = format!("CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id) ON DELETE {action});");
            let f = run(&[&base, "DROP TABLE p; DROP TABLE c;"]);
            assert_eq!(f.len(), 1, "{action}: {f:#?}");
            assert_eq!(f[0].rule, Some(Rule::ReferencedDrop));
            assert!(f[0]
                .diagnostic
                .help
                .as_deref()
                .unwrap_or_default()
                .contains("defer_foreign_keys"));
        }
        // Dropping the child first is fine.
        assert!(run(&[SCHEMA_ONLY, "DROP TABLE c; DROP TABLE p;"]).is_empty());
    }

    #[test]
    fn deferred_references_need_the_table_back_by_commit() {
        // Recreated under its name (rows copied back): passes, with a child
        // row in place, for NO ACTION and for RESTRICT (deferred keys make
        // SQLite treat RESTRICT like NO ACTION).
        let recreate = "PRAGMA defer_foreign_keys = ON; CREATE TABLE p_tmp AS SELECT * FROM p; DROP TABLE p; CREATE TABLE p(id INTEGER PRIMARY KEY, x TEXT); INSERT INTO p(id) SELECT id FROM p_tmp; DROP TABLE p_tmp;";
        let f = run(&[PARENT_AND_CHILD, recreate, "INSERT INTO c VALUES (2, 1);"]);
        assert!(f.is_empty(), "{f:#?}");
        let restrict = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id) ON DELETE RESTRICT); INSERT INTO p VALUES (1); INSERT INTO c VALUES (1);";
        let f = run(&[restrict, recreate]);
        assert!(f.is_empty(), "{f:#?}");

        // D1's recipe: rename the rebuilt table over it and switch deferral
        // off at the end, which clears the deferred count (real SQLite
        // commits this with the child row in place).
        let d1 = "PRAGMA defer_foreign_keys = ON; CREATE TABLE p_new(id INTEGER PRIMARY KEY, x TEXT); INSERT INTO p_new(id) SELECT id FROM p; DROP TABLE p; ALTER TABLE p_new RENAME TO p; PRAGMA defer_foreign_keys = OFF;";
        let f = run(&[PARENT_AND_CHILD, d1]);
        assert!(f.is_empty(), "{f:#?}");

        // The same rename with deferral still on at commit fails there once
        // the child has rows: refused from the schema alone.
        let rename = "PRAGMA defer_foreign_keys = ON; CREATE TABLE p_new(id INTEGER PRIMARY KEY, x TEXT); INSERT INTO p_new(id) SELECT id FROM p; DROP TABLE p; ALTER TABLE p_new RENAME TO p;";
        let f = run(&[SCHEMA_ONLY, rename]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].rule, Some(Rule::ReferencedDrop));
        assert!(f[0].diagnostic.message.contains("renamed table"), "{f:#?}");
        assert!(f[0]
            .diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("defer_foreign_keys = OFF"));

        // Dropped and never brought back: dangling reference.
        let f = run(&[SCHEMA_ONLY, "PRAGMA defer_foreign_keys = ON; DROP TABLE p;"]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].diagnostic.message.contains("still references it"),
            "{f:#?}"
        );

        // The child dropped in between settles it.
        let f = run(&[SCHEMA_ONLY, "CREATE TABLE p_new(id INTEGER PRIMARY KEY); PRAGMA defer_foreign_keys = ON; DROP TABLE p; DROP TABLE c; ALTER TABLE p_new RENAME TO p;"]);
        assert!(f.is_empty(), "{f:#?}");

        // A key declared DEFERRABLE INITIALLY DEFERRED needs no pragma.
        let declared = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);";
        let f = run(&[declared, "CREATE TABLE p_tmp AS SELECT * FROM p; DROP TABLE p; CREATE TABLE p(id INTEGER PRIMARY KEY); INSERT INTO p SELECT id FROM p_tmp; DROP TABLE p_tmp;"]);
        assert!(f.is_empty(), "{f:#?}");

        // What a migration left pending does not leak into the next one.
        let split = run(&[
            "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id)); CREATE TABLE q(id INTEGER PRIMARY KEY);",
            "PRAGMA defer_foreign_keys = ON; CREATE TABLE p_tmp AS SELECT * FROM p; DROP TABLE p; CREATE TABLE p(id INTEGER PRIMARY KEY); INSERT INTO p SELECT id FROM p_tmp; DROP TABLE p_tmp;",
            "ALTER TABLE q RENAME TO q2;",
        ]);
        assert!(split.is_empty(), "{split:#?}");
    }
}
