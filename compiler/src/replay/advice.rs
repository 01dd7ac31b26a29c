//! How to fix what the replay found: the help texts of its findings, in
//! one place so they stay short and consistent.

use super::sandbox::{MAX_COLUMNS, MAX_REPLAY_STEPS};
use crate::rules::Rule;

/// A foreign-key failure that exists only because `PRAGMA foreign_keys =
/// OFF` is a no-op in a transaction.
pub(crate) const FOREIGN_KEYS_OFF: &str = "`PRAGMA foreign_keys = OFF` does nothing inside a transaction, and each migration runs in one (on a Durable Object too), so foreign keys stay checked. Fix the data in the same migration; to rebuild a table that others reference with ON DELETE NO ACTION, use `PRAGMA defer_foreign_keys = ON`, copy its rows to a scratch table, drop it, create it again under the same name and copy the rows back (references with CASCADE, SET NULL, SET DEFAULT or RESTRICT act at once: rebuild the referencing tables too)";

/// A foreign key left violated when the migration commits.
pub(crate) const COMMIT_FAILED: &str = "a foreign key left violated at the end of the migration fails the commit; fix the data in the same migration (PRAGMA defer_foreign_keys = ON only delays the check to the commit)";

/// A statement over workerd's SQL length limit.
pub(crate) const STATEMENT_TOO_LONG: &str =
    "split it into several statements (e.g. several INSERTs), each under 100 KB";

/// `ALTER TABLE … RENAME TO _cf_…`.
pub(crate) const RENAME_RESERVED: &str =
    "names starting with `_cf_` are reserved for Cloudflare's internal tables; pick another name";

/// `ALTER TABLE … RENAME TO <tracking table>`.
pub(crate) const RENAME_TRACKING: &str = "durable-schema owns this table; choose another name";

/// A trigger body writing the tracking table.
pub(crate) const TRIGGER_TRACKING: &str = "durable-schema owns this table; a trigger that writes it would corrupt the recorded history when it fires";

/// A trigger body using a `_cf_` table.
pub(crate) const TRIGGER_RESERVED: &str =
    "workerd refuses the trigger's statement when it fires; use another table";

/// A referenced table dropped while its references are checked at once.
pub(crate) fn defer(table: &str) -> String {
    format!(
        "add `PRAGMA defer_foreign_keys = ON;` at the top of this migration so the references are checked at commit, and have `{table}` back with its rows by then (recreate it under its name and copy the rows back, or rename the rebuilt table to `{table}` and end with `PRAGMA defer_foreign_keys = OFF;`)"
    )
}

/// A drop whose ON DELETE action changes a child that survives.
pub(crate) fn set_child_aside(child: &str, table: &str) -> String {
    format!(
        "copy `{child}`'s rows to a scratch table and drop `{child}` before dropping `{table}`, then recreate both and copy the rows back; or change `{table}` with ALTER TABLE instead of dropping it"
    )
}

/// A referenced table dropped and never brought back.
pub(crate) fn recreate_or_drop_reference(table: &str, child: &str) -> String {
    format!("recreate `{table}` in the same migration, or drop the reference from `{child}` too")
}

/// A referenced table replaced by a rename with deferral still on.
pub(crate) fn defer_off(table: &str) -> String {
    format!(
        "end the migration with `PRAGMA defer_foreign_keys = OFF;` (it clears the deferred count once the new `{table}` holds the rows), or recreate `{table}` under its own name and copy the rows back"
    )
}

/// Help for an error SQLite raised on statement `sql` of the migration at
/// `this_path`; `created_later` names the later migration that creates a
/// table, if one does.
pub(crate) fn for_sqlite_error<'a>(
    message: &str,
    sql: &str,
    rule: Option<Rule>,
    this_path: &str,
    created_later: impl FnOnce(&str) -> Option<&'a str>,
) -> Option<String> {
    if rule == Some(Rule::ForeignKeysOff) {
        return Some(FOREIGN_KEYS_OFF.to_owned());
    }
    if let Some(name) = message.strip_prefix("no such table: ") {
        let name = name.strip_prefix("main.").unwrap_or(name);
        if let Some(later) = created_later(name) {
            return Some(format!(
                "`{name}` is created by `{later}`, which runs after `{this_path}`; move this statement to a later migration, or renumber the files"
            ));
        }
        return Some(format!(
            "no earlier migration creates `{name}`; create it first, or check the spelling"
        ));
    }
    if message == "interrupted" {
        return Some(format!(
            "the statement ran for over {MAX_REPLAY_STEPS} SQLite steps in the compile-time replay, which runs on empty tables; bound the query (e.g. a recursive CTE needs a LIMIT or a stop condition). On a Durable Object a migration must finish within the 30 s of blockConcurrencyWhile"
        ));
    }
    if message.starts_with("duplicate column name") {
        return Some("an earlier migration already added this column; remove the ADD COLUMN or rename the column".to_owned());
    }
    if message.starts_with("no such column")
        && sql.trim_start().to_ascii_lowercase().starts_with("alter")
    {
        return Some(
            "the column does not exist at this point of the chain; check earlier migrations"
                .to_owned(),
        );
    }
    if rule == Some(Rule::Limit) {
        if message.contains("too many columns") {
            return Some(format!(
                "a Durable Object allows at most {MAX_COLUMNS} columns per table; split the table"
            ));
        }
        return Some("this exceeds a limit that a Durable Object's SQLite enforces".to_owned());
    }
    if message.starts_with("no such function") {
        return Some("a Durable Object's SQLite has no such function; see the allowlist in workerd's sqlite.c++".to_owned());
    }
    if message.starts_with("no such module") {
        return Some("use fts5, fts5vocab, rtree or rtree_i32".to_owned());
    }
    None
}
