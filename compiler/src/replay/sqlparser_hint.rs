//! sqlparser's part: classifying statements and sharpening messages, never
//! rejecting on its own. sqlparser 0.64 falsely rejects some valid SQLite
//! (`PRAGMA foreign_keys=OFF`, fts5 options, comma-less table constraints…),
//! so it is only consulted after real SQLite has rejected a statement, or to
//! find out which objects a statement creates.

use sqlparser::ast::Statement as Ast;
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

use durable_schema_workerd::words::{unquote, words};

/// sqlparser's opinion on a statement SQLite found a syntax error in, with
/// its `Line: l, Column: c` translated into file coordinates (`line:column`
/// is where the statement starts in its file).
/// `None` when sqlparser accepts the statement (it adds nothing then).
pub(crate) fn sqlparser_note(sql: &str, line: u32, column: u32) -> Option<String> {
    let err = Parser::parse_sql(&SQLiteDialect {}, sql).err()?;
    let text = match err {
        sqlparser::parser::ParserError::TokenizerError(s)
        | sqlparser::parser::ParserError::ParserError(s) => s,
        sqlparser::parser::ParserError::RecursionLimitExceeded => return None,
    };
    let Some((head, position)) = text.rsplit_once(" at Line: ") else {
        return Some(lowercase_first(&text));
    };
    let (l, c) = position.split_once(", Column: ")?;
    let (l, c): (u32, u32) = (l.trim().parse().ok()?, c.trim().parse().ok()?);
    // sqlparser counts from the statement start; shift to file coordinates.
    let (fline, fcol) = if l <= 1 {
        (line, column + c.saturating_sub(1))
    } else {
        (line + l - 1, c)
    };
    Some(format!("{} at {fline}:{fcol}", lowercase_first(head)))
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// For an `INSERT` whose rows come from `VALUES` or a `SELECT` (not
/// `DEFAULT VALUES`): its table and the columns it names, `None` for all of
/// them (no column list). `None` when sqlparser cannot say: the caller then
/// assumes the worst.
pub(crate) fn insert_columns(sql: &str) -> Option<(String, Option<Vec<String>>)> {
    let parsed = Parser::parse_sql(&SQLiteDialect {}, sql).ok()?;
    let [Ast::Insert(insert)] = parsed.as_slice() else {
        return None;
    };
    insert.source.as_ref()?;
    let sqlparser::ast::TableObject::TableName(name) = &insert.table else {
        return None;
    };
    let table = unquote(&name.0.last()?.to_string());
    let columns = (!insert.columns.is_empty()).then(|| {
        insert
            .columns
            .iter()
            .filter_map(|c| c.0.last().map(|part| unquote(&part.to_string())))
            .collect()
    });
    Some((table, columns))
}

/// What kind of statement this is, by sqlparser when it can parse it and by
/// its leading keywords otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatementKind {
    /// CREATE TABLE / VIRTUAL TABLE / VIEW / INDEX / TRIGGER, with the name.
    Create(String),
    /// Any other statement.
    Other,
}

/// Classifies one statement; see [`StatementKind`].
pub(crate) fn classify(sql: &str) -> StatementKind {
    if let Ok(parsed) = Parser::parse_sql(&SQLiteDialect {}, sql) {
        if let [one] = parsed.as_slice() {
            if let Some(name) = created_by_ast(one) {
                return StatementKind::Create(name);
            }
        }
    }
    created_by_tokens(sql).map_or(StatementKind::Other, StatementKind::Create)
}

fn created_by_ast(stmt: &Ast) -> Option<String> {
    let name = match stmt {
        Ast::CreateTable(t) => &t.name,
        Ast::CreateView(v) => &v.name,
        Ast::CreateVirtualTable { name, .. } => name,
        _ => return None,
    };
    name.0.last().map(|part| unquote(&part.to_string()))
}

/// `CREATE [TEMP] [VIRTUAL] TABLE|VIEW [IF NOT EXISTS] [schema.]name`.
fn created_by_tokens(sql: &str) -> Option<String> {
    let words = words(sql);
    let mut it = words.iter().peekable();
    if !it.next()?.eq_ignore_ascii_case("create") {
        return None;
    }
    let skip = ["temp", "temporary", "virtual"];
    while it
        .peek()
        .is_some_and(|w| skip.iter().any(|s| w.eq_ignore_ascii_case(s)))
    {
        it.next();
    }
    let kind = it.next()?;
    if !(kind.eq_ignore_ascii_case("table") || kind.eq_ignore_ascii_case("view")) {
        return None;
    }
    let mut name = *it.next()?;
    if name.eq_ignore_ascii_case("if") {
        it.next(); // not
        it.next(); // exists
        name = it.next()?;
    }
    if it.peek().is_some_and(|w| **w == ".") {
        it.next();
        name = it.next()?;
    }
    Some(unquote(name))
}

/// Whether one of `statements` creates a table or view named `name`.
pub(crate) fn creates<'a>(mut statements: impl Iterator<Item = &'a str>, name: &str) -> bool {
    statements.any(
        |sql| matches!(classify(sql), StatementKind::Create(n) if n.eq_ignore_ascii_case(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_ast_and_by_tokens() {
        assert_eq!(
            classify("CREATE TABLE users(id)"),
            StatementKind::Create("users".into())
        );
        assert_eq!(
            classify("CREATE TABLE IF NOT EXISTS \"main\".\"Posts\"(id)"),
            StatementKind::Create("Posts".into())
        );
        // sqlparser rejects fts5 options like this one; the token scan copes.
        assert_eq!(
            classify("CREATE VIRTUAL TABLE docs USING fts5(body, content='t', tokenize='porter')"),
            StatementKind::Create("docs".into())
        );
        assert_eq!(
            classify("CREATE VIEW v AS SELECT 1"),
            StatementKind::Create("v".into())
        );
        assert_eq!(classify("INSERT INTO t VALUES (1)"), StatementKind::Other);
    }

    #[test]
    fn note_is_in_file_coordinates() {
        // The statement starts at 2:3 of its file.
        let note = sqlparser_note("INSERT INTO t VALUES (1,)", 2, 3).unwrap();
        assert!(note.starts_with("expected: an expression"), "{note}");
        assert!(note.ends_with("at 2:27"), "{note}");
    }

    #[test]
    fn note_is_none_when_sqlparser_accepts() {
        assert_eq!(sqlparser_note("SELECT 1", 1, 1), None);
    }
}
