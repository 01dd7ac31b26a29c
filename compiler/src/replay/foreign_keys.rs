//! The foreign-key check at the end of a migration.
//!
//! SQLite checks deferred foreign keys only when the outermost transaction
//! commits. On a Durable Object that is workerd's commit after the whole
//! run, not the migration's savepoint, and `PRAGMA defer_foreign_keys = OFF`
//! clears the count of violations on any SQLite: a migration that defers its
//! keys, reshapes a table others reference, or writes a table whose keys are
//! declared deferred can leave broken references that nothing reports. So
//! the executor ends such a migration, inside its transaction, with
//! `PRAGMA foreign_key_check` of the tables at risk, then switches deferral
//! off. This module decides which tables those are (the runtime embeds the
//! list) and runs the same checks in the replay, as production will.

use durable_schema_runtime::tracking;

use super::sandbox::Replayer;

/// A foreign key: the referencing table, the referenced one, and whether it
/// is declared `DEFERRABLE INITIALLY DEFERRED`.
struct Reference {
    child: String,
    parent: String,
    deferred: bool,
}

/// The tables whose foreign keys must be checked at the end of the current
/// migration, sorted; empty when immediate enforcement already covers it.
pub(super) fn tables_at_risk(replayer: &Replayer) -> Vec<String> {
    let effects = replayer.key_effects();
    let Ok(references) = references(replayer) else {
        return Vec::new();
    };
    let related = |r: &&Reference| effects.touches(&r.child) || effects.touches(&r.parent);
    let risky = effects.deferred
        || effects.reshaped
        || references.iter().filter(related).any(|r| r.deferred);
    if !risky {
        return Vec::new();
    }
    let mut tables: Vec<String> = Vec::new();
    for r in references.iter().filter(related) {
        if !tables.iter().any(|t| t.eq_ignore_ascii_case(&r.child)) {
            tables.push(r.child.clone());
        }
    }
    tables.sort();
    tables
}

/// Every foreign key of the schema as it stands.
fn references(replayer: &Replayer) -> rusqlite::Result<Vec<Reference>> {
    replayer.read(|conn| {
        let mut stmt = conn.prepare(
            "SELECT m.name, f.\"table\", instr(upper(m.sql), 'INITIALLY DEFERRED') > 0 \
             FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
             WHERE m.type = 'table' ORDER BY m.name, f.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Reference {
                child: r.get(0)?,
                parent: r.get(1)?,
                deferred: r.get(2)?,
            })
        })?;
        rows.collect()
    })
}

/// A violation the check found: the referencing table, the row, the
/// referenced table.
pub(super) struct Violation {
    pub(super) table: String,
    pub(super) rowid: Option<i64>,
    pub(super) parent: String,
}

/// Runs the checks the executor will run, then switches deferral off as it
/// will. Returns the first violation.
pub(super) fn check(replayer: &Replayer, tables: &[String]) -> Option<Violation> {
    let mut found = None;
    for table in tables {
        let violation = replayer.read(|conn| {
            let mut stmt = conn.prepare(&tracking::foreign_key_check(table))?;
            let mut rows = stmt.query([])?;
            match rows.next()? {
                Some(row) => Ok(Some(Violation {
                    table: row.get(0)?,
                    rowid: row.get(1)?,
                    parent: row.get(2)?,
                })),
                None => Ok(None),
            }
        });
        if let Ok(Some(v)) = violation {
            found = Some(v);
            break;
        }
    }
    let _ = replayer.trusted(tracking::DEFER_OFF);
    found
}

#[cfg(test)]
mod tests {
    use super::super::replay_checks;
    use super::super::tests::{run, with_sources};

    fn checks(files: &[&str]) -> Vec<Vec<String>> {
        with_sources(files, |sources| replay_checks(sources, "migrations"))
    }

    const BASE: &str = "CREATE TABLE users(id INTEGER PRIMARY KEY); \
        CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id)); \
        CREATE TABLE tags(id INTEGER PRIMARY KEY); \
        CREATE TABLE post_tags(post INTEGER REFERENCES posts(id), tag INTEGER REFERENCES tags(id));";

    #[test]
    fn only_migrations_that_can_leave_violations_get_checks_scoped_to_related_tables() {
        let d1 = "PRAGMA defer_foreign_keys = ON; CREATE TABLE users_new(id INTEGER PRIMARY KEY, n TEXT); \
                  INSERT INTO users_new(id) SELECT id FROM users; DROP TABLE users; \
                  ALTER TABLE users_new RENAME TO users; PRAGMA defer_foreign_keys = OFF;";
        let got = checks(&[
            BASE,
            "INSERT INTO users VALUES (1); INSERT INTO posts VALUES (1, 1);",
            d1,
            "PRAGMA defer_foreign_keys = ON; INSERT INTO tags VALUES (7);",
            "ALTER TABLE tags ADD COLUMN label TEXT;",
        ]);
        let expected: Vec<Vec<String>> = vec![
            vec![],
            // immediate keys: enforced statement by statement already
            vec![],
            // a rebuild of `users`: its children, not `post_tags`
            vec!["posts".into()],
            // deferral on, `tags` written: what references `tags`
            vec!["post_tags".into()],
            // reshaped (altered) `tags`
            vec!["post_tags".into()],
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn declared_deferred_keys_are_checked_when_their_tables_are_written() {
        let got = checks(&[
            "CREATE TABLE p(id INTEGER PRIMARY KEY); \
             CREATE TABLE c(p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED); \
             CREATE TABLE other(x);",
            "INSERT INTO p VALUES (1);",
            "INSERT INTO other VALUES (1);",
        ]);
        assert_eq!(
            got,
            vec![vec!["c".to_owned()], vec!["c".to_owned()], vec![]]
        );
    }

    #[test]
    fn a_violation_left_by_the_d1_recipe_is_a_finding() {
        // Data in the migrations themselves: the orphan shows at build time.
        let f = run(&[
            BASE,
            "INSERT INTO users VALUES (1), (2); INSERT INTO posts VALUES (10, 2);",
            "PRAGMA defer_foreign_keys = ON; CREATE TABLE users_new(id INTEGER PRIMARY KEY); \
             INSERT INTO users_new SELECT id FROM users WHERE id = 1; DROP TABLE users; \
             ALTER TABLE users_new RENAME TO users; PRAGMA defer_foreign_keys = OFF;",
        ]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].migration, 2);
        assert_eq!(
            f[0].diagnostic.message,
            "the migration ends with a broken reference: row 10 of `posts` points at a missing row of `users` (SQLite checks deferred keys only when the transaction commits)"
        );
    }
}
