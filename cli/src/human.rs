//! Showing the compiler's diagnostics: rustc-style with annotate-snippets
//! (the source line and a caret under the column), or as JSON Lines. The
//! words are exactly the compiler's `message` and `help`, the ones the
//! build prints.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};
use durable_schema_compiler::{normalize_text, read_source, Change, Diagnostic, PlannedMigration};

use crate::{base, term};

/// A diagnostic of the command itself (a file it cannot write, a database
/// it cannot open): a message and nothing else.
pub(crate) fn plain(message: String) -> Diagnostic {
    Diagnostic {
        file: None,
        position: None,
        message,
        note: None,
        statement: None,
        help: None,
        rule: None,
    }
}

/// Prints `diagnostics` on stderr, styled when stderr is a terminal.
pub(crate) fn eprint(diagnostics: &[Diagnostic]) {
    let styled = term::colour(std::io::stderr().is_terminal());
    eprint!("{}", render(diagnostics, base(), styled));
}

/// The closing line of a failed check, after a blank line: how many
/// problems.
pub(crate) fn eprint_summary(dir: &str, count: usize) {
    let styled = term::colour(std::io::stderr().is_terminal());
    let s = if count == 1 { "" } else { "s" };
    let title = format!("`{dir}` has {count} problem{s}");
    let report = [Group::with_title(Level::ERROR.primary_title(title))];
    eprintln!("\n{}", renderer(styled).render(&report));
}

fn renderer(styled: bool) -> Renderer {
    if styled {
        Renderer::styled()
    } else {
        Renderer::plain()
    }
}

/// The source files named by diagnostics, normalized as the compiler read
/// them (so lines and columns match), read once each.
struct Sources<'a> {
    base: &'a Path,
    texts: HashMap<String, Option<String>>,
}

impl Sources<'_> {
    /// Line `line` (1-based) of `file`, if it can be read.
    fn line(&mut self, file: &str, line: u32) -> Option<String> {
        let base = self.base;
        let text = self.texts.entry(file.to_owned()).or_insert_with(|| {
            // The compiler's bounded reader: a file that changed into a
            // FIFO or a huge one since the check is not quoted.
            let bytes = read_source(&base.join(file))?;
            Some(normalize_text(&String::from_utf8_lossy(&bytes)))
        });
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        text.as_deref()?.split('\n').nth(index).map(str::to_owned)
    }
}

/// The byte range to underline at 1-based `column` (in characters) of
/// `line`: the word that starts there (`DEFALT`, `BEGIN`), else the one
/// character, else the end of the line.
fn caret(line: &str, column: u32) -> std::ops::Range<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let skip = usize::try_from(column)
        .unwrap_or(usize::MAX)
        .saturating_sub(1);
    let Some((start, first)) = line.char_indices().nth(skip) else {
        return line.len()..line.len();
    };
    if !word(first) {
        return start..start + first.len_utf8();
    }
    let rest = &line[start..];
    let len = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
    start..start + len
}

/// Renders `diagnostics` rustc-style, a blank line between two; paths
/// are shown as the compiler names them, resolved against `base` to quote
/// the source.
pub(crate) fn render(diagnostics: &[Diagnostic], base: &Path, styled: bool) -> String {
    let mut sources = Sources {
        base,
        texts: HashMap::new(),
    };
    let renderer = renderer(styled);
    let mut out = String::new();
    for d in diagnostics {
        let mut group = Group::with_title(Level::ERROR.primary_title(d.message.as_str()));
        let mut shown_line = None;
        match (&d.file, d.position) {
            (Some(file), Some((line, column))) => match sources.line(file, line) {
                Some(text) => {
                    let span = caret(&text, column);
                    group = group.element(
                        Snippet::source(text.clone())
                            .line_start(usize::try_from(line).unwrap_or(1))
                            .path(file.as_str())
                            .annotation(AnnotationKind::Primary.span(span)),
                    );
                    shown_line = Some(text);
                }
                None => {
                    group = group.element(
                        Origin::path(file.as_str())
                            .line(usize::try_from(line).unwrap_or(1))
                            .char_column(usize::try_from(column).unwrap_or(1)),
                    );
                }
            },
            (Some(file), None) => group = group.element(Origin::path(file.as_str())),
            (None, _) => {}
        }
        if let Some(note) = &d.note {
            group = group.element(Level::NOTE.message(note.as_str()));
        }
        if let Some(statement) = &d.statement {
            // The quoted line already shows a statement that starts on it.
            let head = statement.trim_end_matches(" …");
            let visible = shown_line
                .as_deref()
                .is_some_and(|l| l.trim().starts_with(head.trim()));
            if !visible {
                group = group.element(Level::NOTE.message(format!("in statement: {statement}")));
            }
        }
        if let Some(help) = &d.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&renderer.render(&[group]));
        out.push('\n');
    }
    out
}

/// One diagnostic as a JSON object on one line: `file`, `line`, `column`,
/// `rule`, `message`, `help`, `note`, `statement` (`null` when absent).
/// One finding of the classification, for people:
/// `migrations/0004_x.sql:1:1: breaking: BC103 column `messages.body` dropped`.
pub(crate) fn change(m: &PlannedMigration, c: &Change) -> String {
    format!(
        "{}:{}:{}: {}: {}",
        m.source.display_path,
        c.line,
        c.column,
        c.kind.class().as_str(),
        c.summary()
    )
}

/// One finding of the classification as a JSON object on one line; `code`
/// and `class` tell it from a diagnostic. `locked` and `acknowledged` say
/// whether the build still judges the migration and whether its file
/// carries the directive.
pub(crate) fn change_json(m: &PlannedMigration, c: &Change, locked: bool) -> String {
    serde_json::json!({
        "kind": "change",
        "file": m.source.display_path,
        "line": c.line,
        "column": c.column,
        "code": c.kind.code(),
        "class": c.kind.class().as_str(),
        "object": c.object,
        "message": c.summary(),
        "migration_class": m.class().as_str(),
        "acknowledged": m.acknowledged(),
        "locked": locked,
    })
    .to_string()
}

/// The statements of `m` that `check` points out, as JSON objects on one
/// line each: its batch statements (`"kind": "batch"`, with the statement)
/// and its cost hints (`"kind": "cost"`, the hint's words as `message`, and
/// whether the statement is a batch), in the order of the file.
pub(crate) fn statements_json(m: &PlannedMigration) -> Vec<String> {
    let mut out: Vec<(u32, u32, String)> = Vec::new();
    for s in m.statements.iter().filter(|s| s.batch) {
        let mut v = serde_json::json!({
            "kind": "batch",
            "file": m.source.display_path,
            "line": s.line,
            "column": s.column,
            "message": format!("{}, one transaction per repetition", m.batch_note(s)),
            "statement": s.sql(&m.source.text),
        });
        if let Some(over) = &s.over {
            v["over"] = over.table(&m.source.text).into();
            v["limit"] = over.limit.into();
        }
        out.push((s.line, s.column, v.to_string()));
    }
    for hint in &m.cost_hints {
        // A hint is `path:line:column what` (`PlannedMigration::cost_hints`).
        let rest = hint
            .strip_prefix(m.source.display_path.as_str())
            .and_then(|r| r.strip_prefix(':'));
        let Some((at, what)) = rest.and_then(|r| r.split_once(' ')) else {
            continue;
        };
        let Some((line, column)) = at
            .split_once(':')
            .and_then(|(l, c)| Some((l.parse::<u32>().ok()?, c.parse::<u32>().ok()?)))
        else {
            continue;
        };
        let batch = m
            .statements
            .iter()
            .any(|s| s.batch && (s.line, s.column) == (line, column));
        let v = serde_json::json!({
            "kind": "cost",
            "file": m.source.display_path,
            "line": line,
            "column": column,
            "message": what,
            "batch": batch,
        });
        out.push((line, column, v.to_string()));
    }
    // Stable: a batch's object before its cost hint.
    out.sort_by_key(|(line, column, _)| (*line, *column));
    out.into_iter().map(|(_, _, v)| v).collect()
}

pub(crate) fn json(d: &Diagnostic) -> String {
    serde_json::json!({
        "file": d.file,
        "line": d.position.map(|(line, _)| line),
        "column": d.position.map(|(_, column)| column),
        "rule": d.rule,
        "message": d.message,
        "help": d.help,
        "note": d.note,
        "statement": d.statement,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_counts_characters() {
        assert_eq!(caret("a(c", 2), 1..2);
        assert_eq!(caret("é (", 3), 3..4);
        assert_eq!(caret("ab", 9), 2..2);
        assert_eq!(caret("x DEFALT 1)", 3), 2..8);
        assert_eq!(caret("é_ab+c", 1), 0..5);
    }

    #[test]
    fn json_has_every_field_on_one_line() {
        let mut d = plain("no such table: users".into());
        d.file = Some("m/0002_x.sql".into());
        d.position = Some((4, 12));
        d.help = Some("create it \"first\"".into());
        let line = json(&d);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["file"], "m/0002_x.sql");
        assert_eq!(
            (v["line"].as_u64(), v["column"].as_u64()),
            (Some(4), Some(12))
        );
        assert!(v["rule"].is_null());
        assert_eq!(v["help"], "create it \"first\"");
    }
}
