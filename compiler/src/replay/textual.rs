//! Checks read from a statement's words, for what the authorizer cannot see
//! during the replay: the new name of `ALTER TABLE … RENAME TO` (workerd's
//! rule, [`rename_denial`], here with the tracking table protected too) and
//! the tables a trigger body will touch when it fires. They work on the
//! lexer's words, so they hold where sqlparser cannot parse.

use durable_schema_workerd::rules::{self, rename_denial, Denial, Rule};
use durable_schema_workerd::words::{unquote, word_is, words};

use super::advice;

/// Whether a statement creates, changes or removes schema objects (its
/// failure can make later statements fail too).
pub(crate) fn defines_schema(sql: &str) -> bool {
    let words = words(sql);
    ["create", "alter", "drop"]
        .iter()
        .any(|k| word_is(&words, 0, k))
}

/// Whether a statement is `ALTER TABLE … DROP [COLUMN] …`, which rewrites
/// every row of the table (the authorizer names only the table).
pub(crate) fn drops_column(sql: &str) -> bool {
    let words = words(sql);
    word_is(&words, 0, "alter")
        && word_is(&words, 1, "table")
        && (2..words.len()).any(|i| word_is(&words, i, "drop"))
}

/// Whether a statement is `ALTER TABLE … ADD [COLUMN] …` with a constraint
/// SQLite tests against every existing row (since 3.37): a `CHECK`, or
/// `NOT NULL` on a generated column. A plain `ADD COLUMN` only changes the
/// schema.
pub(crate) fn adds_checked_column(sql: &str) -> bool {
    let words = words(sql);
    if !(word_is(&words, 0, "alter") && word_is(&words, 1, "table")) {
        return false;
    }
    let Some(add) = (2..words.len()).find(|&i| word_is(&words, i, "add")) else {
        return false;
    };
    let after = add + 1..words.len();
    let has = |k: &str| after.clone().any(|i| word_is(&words, i, k));
    let not_null = after
        .clone()
        .any(|i| word_is(&words, i, "not") && word_is(&words, i + 1, "null"));
    has("check") || not_null && (has("as") || has("generated"))
}

/// The first word of a statement, upper case (`CREATE`, `SELECT`, `WITH`),
/// to name what kind of statement it is in a message.
pub(crate) fn first_word(sql: &str) -> String {
    words(sql)
        .first()
        .map_or_else(String::new, |w| w.to_ascii_uppercase())
}

/// Whether a statement is a `DROP TABLE`.
pub(crate) fn drops_table(sql: &str) -> bool {
    let words = words(sql);
    word_is(&words, 0, "drop") && word_is(&words, 1, "table")
}

/// A DO rule the statement breaks that the authorizer does not see.
pub(crate) fn denial(sql: &str, tracking: &str) -> Option<Denial> {
    rename_denial(sql, Some(tracking)).or_else(|| trigger_denial(sql, tracking))
}

/// A trigger body is authorized only when the trigger fires, so a trigger
/// that writes the tracking table, or uses a `_cf_` table, would pass the
/// replay and break the database later: look at the tables its statements
/// name (the word after INTO, UPDATE, FROM or JOIN; column names are not
/// checked, as workerd does not check them).
fn trigger_denial(sql: &str, tracking: &str) -> Option<Denial> {
    // String literals are not names: `'migrations'` in a VALUES list is fine.
    let mut words = words(sql);
    words.retain(|w| !w.starts_with('\''));
    let is = |i: usize, k: &str| word_is(&words, i, k);
    let body = if is(0, "create") && is(1, "trigger") {
        2
    } else if is(0, "create") && (is(1, "temp") || is(1, "temporary")) && is(2, "trigger") {
        3
    } else {
        return None;
    };
    // Skip the trigger's own header up to its BEGIN.
    let begin = (body..words.len()).find(|&i| is(i, "begin"))?;
    for i in begin + 1..words.len() {
        let keyword = ["into", "update", "from", "join"]
            .into_iter()
            .find(|k| is(i, k));
        let Some(keyword) = keyword else { continue };
        let Some(mut name) = words.get(i + 1).map(|w| unquote(w)) else {
            continue;
        };
        // `main.t`: the table is after the dot.
        if is(i + 2, ".") {
            if let Some(t) = words.get(i + 3) {
                name = unquote(t);
            }
        }
        let writes = keyword == "into"
            || keyword == "update"
            || (keyword == "from" && i > 0 && is(i - 1, "delete"));
        if writes && durable_schema_runtime::tracking::owns(tracking, &name) {
            return Some(Denial {
                rule: Rule::TrackingTable,
                message: format!("a trigger must not write the tracking table `{name}`"),
                help: advice::TRIGGER_TRACKING.to_owned(),
            });
        }
        if !rules::is_allowed_name(&name) {
            return Some(Denial {
                rule: Rule::ReservedName,
                message: format!("a trigger must not use `{name}`: names starting with `_cf_` are reserved in a Durable Object"),
                help: advice::TRIGGER_RESERVED.to_owned(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::replay::tests::{rules, run};
    use durable_schema_workerd::Rule;

    #[test]
    fn trigger_bodies_may_not_touch_the_tracking_table_or_cf_tables() {
        let base = "CREATE TABLE u(id INTEGER PRIMARY KEY);";
        assert_eq!(
            rules(&[
                base,
                "CREATE TRIGGER tr AFTER INSERT ON u BEGIN DELETE FROM migrations; END;"
            ]),
            [Some(Rule::TrackingTable)]
        );
        assert_eq!(
            rules(&[base, "CREATE TRIGGER tr AFTER INSERT ON u BEGIN INSERT INTO \"_cf_KV\" VALUES (1, 2); END;"]),
            [Some(Rule::ReservedName)]
        );
        // A string that merely says the name is fine, and so are a column
        // named like it, a read of the history and a `_cf_` column.
        assert!(run(&[base, "CREATE TABLE log(msg TEXT); CREATE TRIGGER tr AFTER INSERT ON u BEGIN INSERT INTO log VALUES ('migrations'); END;"]).is_empty());
        let f = run(&[
            "CREATE TABLE proj(id INTEGER PRIMARY KEY, migrations INTEGER DEFAULT 0, _cf_flag INTEGER);",
            "CREATE TABLE audit(v INTEGER); CREATE TRIGGER tr AFTER INSERT ON proj BEGIN UPDATE proj SET migrations = migrations + 1, _cf_flag = NEW._cf_flag WHERE id = NEW.id; INSERT INTO audit SELECT max(version) FROM migrations; END;",
        ]);
        assert!(f.is_empty(), "{f:#?}");
        assert_eq!(
            rules(&[base, "CREATE TRIGGER tr AFTER INSERT ON u BEGIN UPDATE main.\"migrations\" SET description = ''; END;"]),
            [Some(Rule::TrackingTable)]
        );
    }
}
