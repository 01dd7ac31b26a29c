//! The directive lines of a migration file (`-- durable-schema: …`): the
//! one owner of their parsing, for the acknowledgement of breaking changes
//! ([`BREAKING_DIRECTIVE`]) and batched statements ([`BATCH_DIRECTIVE`],
//! and range batches, [`BATCH_OVER_DIRECTIVE`]).
//!
//! A directive is a line of its own whose text, without trailing
//! whitespace, is exactly the directive: no indentation, no other words, the
//! same case. It is an SQL comment, so SQLite and the checksum see it as
//! any other comment. A comment line that starts with `durable-schema:` but
//! is none of them is a problem ([`directive_problems`]), not a comment.

use crate::split::PlannedStatement;
use durable_schema_runtime::packed::Over;

/// The directive line that acknowledges a migration's breaking and
/// destructive changes, exactly as a line of the file.
pub const BREAKING_DIRECTIVE: &str = "-- durable-schema: breaking";

/// The directive line that marks the next statement of the file as a batch:
/// a data statement the executor repeats, each repetition in its own
/// transaction, until it changes no row (see `docs/batches.md`).
pub const BATCH_DIRECTIVE: &str = "-- durable-schema: batch";

/// The start of the directive line that marks the next statement as a
/// range batch: `-- durable-schema: batch over <table> limit <n>`, a data
/// statement the executor runs on slices of at most `<n>` rows of
/// `<table>` in rowid order, binding each slice's first and last rowid to
/// `:from` and `:to` (see `docs/batches.md`).
pub const BATCH_OVER_DIRECTIVE: &str = "-- durable-schema: batch over";

/// The largest `limit` of a range batch: a slice is one transaction, which
/// must end well within a wake's budget, and SQLite's `LIMIT` takes it as
/// written.
pub const MAX_BATCH_LIMIT: u32 = 1_000_000;

/// The byte offsets (start and end, before the line break), 1-based line
/// numbers and trimmed texts of the lines of `text` that `is` accepts.
fn lines_where<'a>(
    text: &'a str,
    is: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize, u32, &'a str)> + 'a {
    let mut at = 0;
    text.split_inclusive('\n')
        .zip(1u32..)
        .filter_map(move |(line, number)| {
            let start = at;
            at += line.len();
            let trimmed = line.trim_end();
            is(trimmed).then_some((start, start + line.len(), number, trimmed))
        })
}

/// The lines of `text` that are `directive`, as [`lines_where`] gives them.
fn lines<'a>(text: &'a str, directive: &'a str) -> impl Iterator<Item = (usize, usize, u32)> + 'a {
    lines_where(text, move |line| line == directive).map(|(start, end, n, _)| (start, end, n))
}

/// Whether a trimmed line is a batch directive of either form: the exact
/// line [`BATCH_DIRECTIVE`], or one that starts with
/// [`BATCH_OVER_DIRECTIVE`] and a space (or ends there), well formed or not.
fn is_batch_line(line: &str) -> bool {
    line == BATCH_DIRECTIVE
        || line
            .strip_prefix(BATCH_OVER_DIRECTIVE)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// The slicing a range batch line (trimmed, starting at byte `start` of the
/// text) asks for, or its problem as a 1-based column and a message with its
/// help. A plain batch line asks for none.
fn slicing(line: &str, start: usize) -> Slicing {
    let Some(rest) = line.strip_prefix(BATCH_OVER_DIRECTIVE) else {
        return Ok(None);
    };
    const FORM: &str = "write `-- durable-schema: batch over <table> limit <n>`, e.g. `-- durable-schema: batch over items limit 1000`";
    // Columns are characters; the directive's words are ASCII, a quoted
    // table name may not be.
    let column = |at: usize| line.get(..at).map_or(1, |b| b.chars().count() as u32 + 1);
    let Some(after) = rest.strip_prefix(' ') else {
        return Err((
            1,
            format!("`{BATCH_OVER_DIRECTIVE}` names no table and no limit"),
            FORM,
        ));
    };
    let name_at = BATCH_OVER_DIRECTIVE.len() + 1;
    // The table: a bare identifier, or a double-quoted one.
    let (name, name_end) = if let Some(quoted) = after.strip_prefix('"') {
        let Some(close) = quoted.find('"') else {
            return Err((
                column(name_at),
                format!("the table name `{after}` has no closing `\"`"),
                FORM,
            ));
        };
        if quoted[close + 1..].starts_with('"') {
            return Err((
                column(name_at),
                format!("the table name `{}` holds a `\"`", after.split(' ').next().unwrap_or(after)),
                "a range batch needs a table whose name has no double quote; rename the table or use a plain `-- durable-schema: batch`",
            ));
        }
        (name_at + 1..name_at + 1 + close, name_at + close + 2)
    } else {
        let len = after
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(after.len(), |(i, _)| i);
        if len == 0 {
            let word = after.split(' ').next().unwrap_or(after);
            return Err((
                column(name_at),
                format!("`{word}` is not a table name"),
                "name the table as a plain identifier (letters, digits, `_`) or in double quotes",
            ));
        }
        (name_at..name_at + len, name_at + len)
    };
    if name.is_empty() {
        return Err((
            column(name_at),
            "the table name `\"\"` is empty".to_owned(),
            FORM,
        ));
    }
    let Some(limit) = line[name_end..].strip_prefix(" limit ") else {
        let found = line[name_end..].trim_start();
        let message = if found.is_empty() {
            format!("`{line}` has no limit")
        } else {
            format!("expected ` limit <n>` after the table name, found `{found}`")
        };
        return Err((column(name_end), message, FORM));
    };
    let limit_at = name_end + " limit ".len();
    // Digits only (`parse` would take a leading `+`); past `u64`, as past
    // the cap, too many rows.
    let too_many = || {
        Err((
            column(limit_at),
            format!("the batch's limit `{limit}` is over {MAX_BATCH_LIMIT} rows"),
            "keep a slice small enough to commit well within a wake's budget, e.g. `limit 1000`",
        ))
    };
    if limit.is_empty() || !limit.bytes().all(|b| b.is_ascii_digit()) {
        return Err((
            column(limit_at),
            format!("the batch's limit `{limit}` is not a positive whole number"),
            "give the most rows one repetition works through as digits, e.g. `limit 1000`",
        ));
    }
    let n = match limit.parse::<u64>() {
        Ok(0) => {
            return Err((
                column(limit_at),
                "the batch's limit is `0`: a slice must hold at least one row".to_owned(),
                "give the most rows one repetition works through, e.g. `limit 1000`",
            ))
        }
        Ok(n) => match u32::try_from(n) {
            Ok(n) if n <= MAX_BATCH_LIMIT => n,
            _ => return too_many(),
        },
        Err(_) => return too_many(),
    };
    Ok(Some(Over {
        limit: n,
        table_start: start + name.start,
        table_end: start + name.end,
    }))
}

/// Whether `text` has the line `directive`.
pub(crate) fn has(text: &str, directive: &str) -> bool {
    lines(text, directive).next().is_some()
}

/// A batch directive's problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// 1-based line of the directive.
    pub(crate) line: u32,
    /// 1-based column of what is wrong in it.
    pub(crate) column: u32,
    /// The message, in the diagnostics' style.
    pub(crate) message: String,
    /// One sentence of help.
    pub(crate) help: &'static str,
}

/// What a batch directive line marks in a file split into `statements`.
enum Target {
    /// The statement at this index, the first after the line.
    Statement(usize),
    /// Nothing: no statement follows the line.
    Nothing,
    /// The line lies inside the statement at this index (in a string, or a
    /// comment between its tokens).
    Inside(usize),
}

/// A batch directive line's slicing (see [`slicing`]).
type Slicing = Result<Option<Over>, (u32, String, &'static str)>;

/// The batch directive lines of `text` (both forms), each with its line
/// number, what it marks among `statements` (the spans of `text`, in
/// order) and its slicing.
fn batch_lines<'a>(
    text: &'a str,
    statements: &'a [PlannedStatement],
) -> impl Iterator<Item = (u32, Target, Slicing)> + 'a {
    lines_where(text, is_batch_line).map(move |(start, end, line, trimmed)| {
        (
            line,
            target(statements, start, end),
            slicing(trimmed, start),
        )
    })
}

/// What the line at bytes `start..end` of a text split into `statements`
/// (in order) stands before, or in.
fn target(statements: &[PlannedStatement], start: usize, end: usize) -> Target {
    match statements.iter().position(|s| s.end > start) {
        Some(i) if statements[i].start < end => Target::Inside(i),
        Some(i) => Target::Statement(i),
        None => Target::Nothing,
    }
}

/// Sets [`PlannedStatement::batch`] (and [`PlannedStatement::over`] for a
/// range batch) on each statement of `statements` (the spans of `text`)
/// that a batch directive line precedes. A directive that marks nothing,
/// lies inside a statement, repeats another one's or is malformed marks
/// nothing more: [`directive_problems`] reports it.
pub(crate) fn mark_batches(text: &str, statements: &mut [PlannedStatement]) {
    if !text.contains(BATCH_DIRECTIVE) {
        return;
    }
    let marked: Vec<(usize, Option<Over>)> = batch_lines(text, statements)
        .filter_map(|(_, target, slicing)| match (target, slicing) {
            (Target::Statement(i), Ok(over)) => Some((i, over)),
            _ => None,
        })
        .collect();
    for (i, over) in marked {
        if let Some(s) = statements.get_mut(i) {
            if !s.batch {
                s.batch = true;
                s.over = over;
            }
        }
    }
}

/// Whether a line (without trailing whitespace) looks like a directive
/// without being one: a comment line that starts, past any indentation and
/// spaces, with `durable-schema` (in any case, or `durable_schema`) and a
/// colon, yet is none of the exact directives. Such a line is an ordinary
/// comment to SQLite: a mistyped `batch` would run a batch's statement once
/// and record the migration as applied with most rows left undone, so the
/// prefix is reserved for directives and a near miss is an error.
fn near_miss(line: &str) -> bool {
    if line == BREAKING_DIRECTIVE || is_batch_line(line) {
        return false;
    }
    let Some(rest) = line.trim_start().strip_prefix("--") else {
        return false;
    };
    let rest = rest.trim_start();
    let name = "durable-schema";
    rest.get(..name.len()).is_some_and(|head| {
        head.eq_ignore_ascii_case(name) || head.eq_ignore_ascii_case("durable_schema")
    }) && rest[name.len()..].trim_start().starts_with(':')
}

/// The lines of `text` that look like a directive without being one (see
/// [`near_miss`]), outside `statements` (a line within a statement is part
/// of its text, e.g. of a string).
fn near_misses(text: &str, statements: &[PlannedStatement]) -> Vec<Problem> {
    lines_where(text, near_miss)
        .filter(|&(start, end, _, _)| !matches!(target(statements, start, end), Target::Inside(_)))
        .map(|(_, _, line, trimmed)| {
            let indent = trimmed.len() - trimmed.trim_start().len();
            Problem {
                line,
                column: u32::try_from(indent).unwrap_or(u32::MAX).saturating_add(1),
                message: format!(
                    "`{}` is not a directive line: directives are exactly `{BREAKING_DIRECTIVE}`, `{BATCH_DIRECTIVE}` or `{BATCH_OVER_DIRECTIVE} <table> limit <n>`",
                    trimmed.trim_start()
                ),
                help: "write the directive exactly, lowercase and unindented on a line of its own, or reword the comment so it does not start with `durable-schema:`",
            }
        })
        .collect()
}

/// Every misplaced batch directive of `text` (split into `statements`): one
/// followed by no statement, one inside a statement, and a second one
/// before the same statement; and every line that looks like a directive
/// without being one.
pub(crate) fn directive_problems(text: &str, statements: &[PlannedStatement]) -> Vec<Problem> {
    let mut problems = near_misses(text, statements);
    if !text.contains(BATCH_DIRECTIVE) {
        return problems;
    }
    let mut marked: Vec<usize> = Vec::new();
    let misplaced = batch_lines(text, statements)
        .filter_map(|(line, target, slicing)| match (target, slicing) {
            (_, Err((column, message, help))) => Some(Problem {
                line,
                column,
                message,
                help,
            }),
            (Target::Statement(i), _) if marked.contains(&i) => {
                let s = &statements[i];
                Some(Problem {
                    line,
                    column: 1,
                    message: format!(
                        "the statement at line {}:{} has a second `{BATCH_DIRECTIVE}` line",
                        s.line, s.column
                    ),
                    help: "keep one directive line before the statement",
                })
            }
            (Target::Statement(i), _) => {
                marked.push(i);
                None
            }
            (Target::Nothing, _) => Some(Problem {
                line,
                column: 1,
                message: format!("`{BATCH_DIRECTIVE}` is not followed by a statement in this file"),
                help: "put the directive on the line before the statement to repeat, or remove it",
            }),
            (Target::Inside(i), _) => {
                let s = &statements[i];
                Some(Problem {
                    line,
                    column: 1,
                    message: format!(
                        "`{BATCH_DIRECTIVE}` is inside the statement at line {}:{}",
                        s.line, s.column
                    ),
                    help: "put the directive on a line of its own before the statement, not within it",
                })
            }
        });
    problems.extend(misplaced);
    problems.sort_by_key(|p| p.line);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::spans;

    fn batches(text: &str) -> Vec<bool> {
        spans(text).iter().map(|s| s.batch).collect()
    }

    fn problems(text: &str) -> Vec<(u32, String)> {
        directive_problems(text, &spans(text))
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn the_directive_marks_the_next_statement_only() {
        let text = "CREATE TABLE t (id INTEGER PRIMARY KEY, v);\n\
                    -- durable-schema: batch\n\
                    -- a comment between\n\
                    \n\
                    UPDATE t SET v = 1 WHERE id IN (SELECT id FROM t WHERE v IS NULL LIMIT 10);\n\
                    DELETE FROM t WHERE v = 2;\n\
                    -- durable-schema: batch  \r\n\
                    DELETE FROM t WHERE id IN (SELECT id FROM t WHERE v = 3 LIMIT 10)";
        assert_eq!(batches(text), [false, true, false, true]);
        assert!(problems(text).is_empty());
    }

    #[test]
    fn only_the_exact_line_is_a_directive() {
        // Near misses mark nothing and are each an error at their line,
        // since the statement would otherwise run once, unrepeated.
        for (near, column) in [
            ("-- durable-schema: Batch", 1),
            ("  -- durable-schema: batch", 3),
            ("--durable-schema: batch", 1),
            ("-- durable-schema: batch please", 1),
            ("-- durable-schema:batch", 1),
            ("-- Durable_Schema : batch", 1),
            ("-- durable-schema: breaking changes", 1),
        ] {
            let text = format!("CREATE TABLE t (v);\n{near}\nDELETE FROM t;\n");
            assert!(!batches(&text).contains(&true), "{near}");
            let found = directive_problems(&text, &spans(&text));
            assert_eq!(found.len(), 1, "{near}: {found:?}");
            assert_eq!((found[0].line, found[0].column), (2, column), "{near}");
            assert!(
                found[0]
                    .message
                    .starts_with(&format!("`{}` is not a directive line", near.trim_start())),
                "{}",
                found[0].message
            );
        }
        // Not a comment line of its own, or another tool's words: no
        // directive and no problem.
        for other in [
            "/* -- durable-schema: batch */",
            "SELECT 1; -- durable-schema: batch",
            "-- durable-schema manages this file",
            "-- see durable-schema: docs/batches.md",
        ] {
            let text = format!("{other}\nDELETE FROM t;\n");
            assert!(!batches(&text).contains(&true), "{other}");
            assert!(problems(&text).is_empty(), "{other}");
        }
        // Within a statement (a string's lines): its text, not a comment.
        let text = "INSERT INTO t (v) VALUES ('\n-- durable-schema: Batch\n');\n";
        assert!(problems(text).is_empty());
    }

    #[test]
    fn misplaced_directives_are_problems() {
        let text = "-- durable-schema: batch\n\
                    -- durable-schema: batch\n\
                    DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 5);\n\
                    INSERT INTO t (v) VALUES ('\n\
                    -- durable-schema: batch\n\
                    ');\n\
                    -- durable-schema: batch\n\
                    -- nothing follows\n";
        assert_eq!(batches(text), [true, false]);
        assert_eq!(
            problems(text),
            [
                (
                    2,
                    "the statement at line 3:1 has a second `-- durable-schema: batch` line"
                        .to_owned()
                ),
                (
                    5,
                    "`-- durable-schema: batch` is inside the statement at line 4:1".to_owned()
                ),
                (
                    7,
                    "`-- durable-schema: batch` is not followed by a statement in this file"
                        .to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_range_directive_marks_its_statement_with_the_slicing() {
        let text = "CREATE TABLE \"my items\" (id INTEGER PRIMARY KEY, v);\n\
                    -- durable-schema: batch over items limit 1000\n\
                    UPDATE items SET v = 1 WHERE id BETWEEN :from AND :to;\n\
                    -- durable-schema: batch over \"my items\" limit 7   \n\
                    DELETE FROM \"my items\" WHERE id BETWEEN :from AND :to;\n\
                    -- durable-schema: batch\n\
                    DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 5);";
        let spans = spans(text);
        assert_eq!(batches(text), [false, true, true, true]);
        let over: Vec<_> = spans
            .iter()
            .map(|s| s.over.map(|o| (o.limit, &text[o.table_start..o.table_end])))
            .collect();
        assert_eq!(
            over,
            [None, Some((1000, "items")), Some((7, "my items")), None]
        );
        assert!(problems(text).is_empty());
    }

    #[test]
    fn a_malformed_range_directive_is_a_problem_at_its_token() {
        let cases: [(&str, u32, &str); 11] = [
            (
                "-- durable-schema: batch over",
                1,
                "`-- durable-schema: batch over` names no table and no limit",
            ),
            (
                "-- durable-schema: batch over items",
                36,
                "`-- durable-schema: batch over items` has no limit",
            ),
            (
                "-- durable-schema: batch over items limit 0",
                43,
                "the batch's limit is `0`: a slice must hold at least one row",
            ),
            (
                "-- durable-schema: batch over items limit -5",
                43,
                "the batch's limit `-5` is not a positive whole number",
            ),
            (
                "-- durable-schema: batch over items limit 1e3",
                43,
                "the batch's limit `1e3` is not a positive whole number",
            ),
            (
                "-- durable-schema: batch over items limit +5",
                43,
                "the batch's limit `+5` is not a positive whole number",
            ),
            (
                "-- durable-schema: batch over items limit 1000001",
                43,
                "the batch's limit `1000001` is over 1000000 rows",
            ),
            (
                "-- durable-schema: batch over items limit 99999999999999999999999",
                43,
                "the batch's limit `99999999999999999999999` is over 1000000 rows",
            ),
            (
                "-- durable-schema: batch over items rows 10",
                36,
                "expected ` limit <n>` after the table name, found `rows 10`",
            ),
            (
                "-- durable-schema: batch over 9items limit 10",
                31,
                "`9items` is not a table name",
            ),
            (
                "-- durable-schema: batch over \"a\"\"b\" limit 10",
                31,
                "the table name `\"a\"\"b\"` holds a `\"`",
            ),
        ];
        for (line, column, message) in cases {
            let text = format!("{line}\nDELETE FROM items WHERE id BETWEEN :from AND :to;\n");
            let found = directive_problems(&text, &spans(&text));
            assert_eq!(
                found
                    .iter()
                    .map(|p| (p.line, p.column, p.message.as_str()))
                    .collect::<Vec<_>>(),
                [(1, column, message)],
                "{line}"
            );
            // Marks nothing: the error is the directive's only outcome.
            assert_eq!(batches(&text), [false], "{line}");
        }
        // Not a range directive at all: another word after `batch`, so a
        // near miss.
        let text = "-- durable-schema: batch overall\nDELETE FROM t;\n";
        assert_eq!(batches(text), [false]);
        assert_eq!(problems(text).len(), 1);
        assert!(problems(text)[0].1.contains("is not a directive line"));
        // Either form counts as the statement's directive.
        let text =
            "-- durable-schema: batch\n-- durable-schema: batch over t limit 5\nDELETE FROM t;\n";
        assert_eq!(
            problems(text),
            [(
                2,
                "the statement at line 3:1 has a second `-- durable-schema: batch` line".to_owned()
            )]
        );
    }

    #[test]
    fn the_breaking_directive_is_a_line_of_its_own() {
        assert!(has(
            "-- durable-schema: breaking\r\nDROP TABLE t;",
            BREAKING_DIRECTIVE
        ));
        assert!(has(
            "DROP TABLE t;\n-- durable-schema: breaking",
            BREAKING_DIRECTIVE
        ));
        assert!(!has(" -- durable-schema: breaking\n", BREAKING_DIRECTIVE));
        assert!(!has("-- durable-schema: batch\n", BREAKING_DIRECTIVE));
    }
}
