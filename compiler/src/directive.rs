//! The directive lines of a migration file (`-- durable-schema: …`): the
//! one owner of their parsing, for the acknowledgement of breaking changes
//! ([`BREAKING_DIRECTIVE`]) and batched statements ([`BATCH_DIRECTIVE`]).
//!
//! A directive is a line of its own whose text, without trailing
//! whitespace, is exactly the directive: no indentation, no other words, the
//! same case. It is an SQL comment, so SQLite and the checksum see it as
//! any other comment.

use crate::split::PlannedStatement;

/// The directive line that acknowledges a migration's breaking and
/// destructive changes, exactly as a line of the file.
pub const BREAKING_DIRECTIVE: &str = "-- durable-schema: breaking";

/// The directive line that marks the next statement of the file as a batch:
/// a data statement the executor repeats, each repetition in its own
/// transaction, until it changes no row (see `docs/batches.md`).
pub const BATCH_DIRECTIVE: &str = "-- durable-schema: batch";

/// The byte offsets (start and end, before the line break) and 1-based line
/// numbers of the lines of `text` that are `directive`.
fn lines<'a>(text: &'a str, directive: &'a str) -> impl Iterator<Item = (usize, usize, u32)> + 'a {
    let mut at = 0;
    text.split_inclusive('\n')
        .zip(1u32..)
        .filter_map(move |(line, number)| {
            let start = at;
            at += line.len();
            (line.trim_end() == directive).then_some((start, start + line.len(), number))
        })
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

/// The batch directive lines of `text`, each with its line number and what
/// it marks among `statements` (the spans of `text`, in order).
fn batch_lines<'a>(
    text: &'a str,
    statements: &'a [PlannedStatement],
) -> impl Iterator<Item = (u32, Target)> + 'a {
    lines(text, BATCH_DIRECTIVE).map(move |(start, end, line)| {
        let target = match statements.iter().position(|s| s.end > start) {
            Some(i) if statements[i].start < end => Target::Inside(i),
            Some(i) => Target::Statement(i),
            None => Target::Nothing,
        };
        (line, target)
    })
}

/// Sets [`PlannedStatement::batch`] on each statement of `statements` (the
/// spans of `text`) that a batch directive line precedes. A directive that
/// marks nothing, lies inside a statement or repeats another one's marks
/// nothing more: [`batch_problems`] reports it.
pub(crate) fn mark_batches(text: &str, statements: &mut [PlannedStatement]) {
    if !text.contains(BATCH_DIRECTIVE) {
        return;
    }
    let marked: Vec<usize> = batch_lines(text, statements)
        .filter_map(|(_, target)| match target {
            Target::Statement(i) => Some(i),
            Target::Nothing | Target::Inside(_) => None,
        })
        .collect();
    for i in marked {
        if let Some(s) = statements.get_mut(i) {
            s.batch = true;
        }
    }
}

/// Every misplaced batch directive of `text` (split into `statements`): one
/// followed by no statement, one inside a statement, and a second one
/// before the same statement.
pub(crate) fn batch_problems(text: &str, statements: &[PlannedStatement]) -> Vec<Problem> {
    if !text.contains(BATCH_DIRECTIVE) {
        return Vec::new();
    }
    let mut marked: Vec<usize> = Vec::new();
    batch_lines(text, statements)
        .filter_map(|(line, target)| match target {
            Target::Statement(i) if marked.contains(&i) => {
                let s = &statements[i];
                Some(Problem {
                    line,
                    message: format!(
                        "the statement at line {}:{} has a second `{BATCH_DIRECTIVE}` line",
                        s.line, s.column
                    ),
                    help: "keep one directive line before the statement",
                })
            }
            Target::Statement(i) => {
                marked.push(i);
                None
            }
            Target::Nothing => Some(Problem {
                line,
                message: format!("`{BATCH_DIRECTIVE}` is not followed by a statement in this file"),
                help: "put the directive on the line before the statement to repeat, or remove it",
            }),
            Target::Inside(i) => {
                let s = &statements[i];
                Some(Problem {
                    line,
                    message: format!(
                        "`{BATCH_DIRECTIVE}` is inside the statement at line {}:{}",
                        s.line, s.column
                    ),
                    help: "put the directive on a line of its own before the statement, not within it",
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::spans;

    fn batches(text: &str) -> Vec<bool> {
        spans(text).iter().map(|s| s.batch).collect()
    }

    fn problems(text: &str) -> Vec<(u32, String)> {
        batch_problems(text, &spans(text))
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
        for near in [
            "-- durable-schema: Batch",
            "  -- durable-schema: batch",
            "--durable-schema: batch",
            "-- durable-schema: batch please",
            "/* -- durable-schema: batch */",
            "SELECT 1; -- durable-schema: batch",
        ] {
            let text = format!("{near}\nDELETE FROM t;\n");
            assert!(!batches(&text).contains(&true), "{near}");
            assert!(problems(&text).is_empty(), "{near}");
        }
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
