//! How to fix what the replay found: the help texts of its findings, in
//! one place so they stay short and consistent.

use super::sandbox::{MAX_COLUMNS, MAX_REPLAY_STEPS};
use crate::diagnostic::REBUILD_GUIDE;
use durable_schema_workerd::rules::{self, Rule};

/// A foreign-key failure that exists only because `PRAGMA foreign_keys =
/// OFF` is a no-op in a transaction.
pub(crate) fn foreign_keys_off() -> String {
    format!("`PRAGMA foreign_keys = OFF` does nothing inside a migration's transaction, so fix the data in this migration; see {REBUILD_GUIDE}")
}

/// A foreign key left violated when the migration commits.
pub(crate) const BROKEN_REFERENCE: &str =
    "keep the referenced rows, or fix or delete the referencing rows, in the same migration";

pub(crate) const COMMIT_FAILED: &str = "fix the data in the same migration: `PRAGMA defer_foreign_keys = ON` only delays the check to the commit";

/// A batch directive on a statement that is not a data statement.
pub(crate) const BATCH_NOT_DML: &str =
    "remove the `-- durable-schema: batch` line: only a data statement can be repeated until it changes no row";

/// A plain batch with parameters: nothing binds them.
pub(crate) const BATCH_PARAMETERS: &str =
    "write the values into the statement, or use `-- durable-schema: batch over <table> limit <n>`, whose slices bind `:from` and `:to`";

/// A statement outside a range batch with parameters, which run as NULL.
pub(crate) const STATEMENT_PARAMETERS: &str =
    "write the values into the statement; for a range batch, put the line `-- durable-schema: batch over <table> limit <n>` exactly before it";

/// A range batch whose parameters are not `:from` then `:to`.
pub(crate) const BATCH_OVER_PARAMETERS: &str =
    "bound the statement by its slice with `:from` first and `:to` second, e.g. `WHERE id BETWEEN :from AND :to`, and no other parameter";

/// A range batch over something that is no table of this chain.
pub(crate) const BATCH_OVER_TABLE: &str =
    "name an ordinary table that the migrations before the statement create, usually the one it updates";

/// A range batch over a table without usable rowids.
pub(crate) const BATCH_OVER_NO_ROWID: &str =
    "use a plain `-- durable-schema: batch` that picks its rows by the table's key, e.g. `… WHERE id IN (SELECT id FROM t WHERE w IS NULL LIMIT 1000)`";

/// A range batch that keeps finding full slices: it adds rows past its
/// own cursor.
pub(crate) const BATCH_OVER_ENDLESS: &str =
    "a slice must not insert rows into the table it walks; copy into another table, or use a plain batch";

/// A batch that does not reach a repetition that changes no row.
pub(crate) const BATCH_ENDLESS: &str =
    "each repetition must leave the rows it changed unmatched, e.g. `… WHERE w IS NULL LIMIT 1000)` on a column it sets";

/// A breaking change that would commit before the last batch (at `line`)
/// of its migration, so before the tracking row names the new version.
pub(crate) fn breaking_before_batch(line: u32) -> String {
    format!("move it after the last batch (line {line}) or into a later migration; `-- durable-schema: breaking` acknowledges it but does not make this order safe")
}

/// A statement over workerd's SQL length limit.
pub(crate) const STATEMENT_TOO_LONG: &str =
    "split it into several statements (e.g. several INSERTs), each under 100 KB";

/// A trigger body writing the tracking table.
pub(crate) const TRIGGER_TRACKING: &str =
    "durable-schema owns this table; a trigger that writes it would corrupt the recorded history";

/// A trigger body using a `_cf_` table.
pub(crate) const TRIGGER_RESERVED: &str =
    "workerd refuses the trigger's statement when it fires; use another table";

/// A referenced table dropped while its references are checked at once.
pub(crate) fn defer(table: &str) -> String {
    format!(
        "start the migration (or, with batches, the part after its last batch) with `PRAGMA defer_foreign_keys = ON` and have `{table}` back with its rows by commit; see {REBUILD_GUIDE}"
    )
}

/// A drop whose ON DELETE action changes a child that survives.
pub(crate) fn set_child_aside(child: &str, table: &str) -> String {
    format!(
        "drop `{child}` before `{table}` and recreate both (copying the rows aside), or alter `{table}` in place; see {REBUILD_GUIDE}"
    )
}

/// A referenced table dropped and never brought back.
pub(crate) fn recreate_or_drop_reference(table: &str, child: &str) -> String {
    format!("recreate `{table}` in the same migration, or drop the reference from `{child}` too")
}

/// A referenced table replaced by a rename with deferral still on.
pub(crate) fn defer_off(table: &str) -> String {
    format!(
        "end the migration with `PRAGMA defer_foreign_keys = OFF` once the new `{table}` holds the rows; see {REBUILD_GUIDE}"
    )
}

/// Help for an error SQLite raised on statement `sql`; `created_later` names
/// the later migration that creates a table, if one does.
pub(crate) fn for_sqlite_error<'a>(
    message: &str,
    sql: &str,
    rule: Option<Rule>,
    created_later: impl FnOnce(&str) -> Option<&'a str>,
) -> Option<String> {
    if rule == Some(Rule::ForeignKeysOff) {
        return Some(foreign_keys_off());
    }
    if let Some(name) = message.strip_prefix("no such table: ") {
        let name = name.strip_prefix("main.").unwrap_or(name);
        if let Some(later) = created_later(name) {
            return Some(format!(
                "`{name}` is created later, in `{later}`; move this statement to a migration after it, or renumber the files"
            ));
        }
        return Some(format!(
            "no earlier migration creates `{name}`; create it first, or check the spelling"
        ));
    }
    if message == "interrupted" {
        return Some(format!(
            "bound the query (a recursive CTE needs a LIMIT or a stop condition): the replay stopped it after {MAX_REPLAY_STEPS} SQLite steps on empty tables"
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
        return Some(rules::module_help());
    }
    None
}
