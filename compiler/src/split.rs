//! Splitting a migration file into statements exactly where SQLite would.
//!
//! This is a port of the state machine of SQLite's `sqlite3_complete()`
//! (`src/complete.c`): a script is cut at every `;` that leaves the machine in
//! its START state. Strings, quoted identifiers and comments hide their `;`,
//! and `CREATE TRIGGER … BEGIN …; …; END;` stays one statement because the
//! machine only leaves its TRIGGER states on `END ;`.
//!
//! The splitter is total: any input, however malformed, yields statements
//! (an unterminated string simply runs to the end of the text, where SQLite
//! reports it during the replay).

use durable_schema_runtime::packed::{Over, Span};
use durable_schema_workerd::words::{self as lex, find, TokenKind};

/// A statement found in a script: its text (without the terminating `;`) and
/// where its first token starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitStatement<'a> {
    /// The statement text, from its first token up to (not including) the `;`.
    pub sql: &'a str,
    /// Byte offset of `sql` within the script.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tk {
    Semi,
    Ws,
    Other,
    Explain,
    Create,
    Temp,
    Trigger,
    End,
}

/// `trans[state][token]` from complete.c. States: 0 INVALID, 1 START,
/// 2 NORMAL, 3 EXPLAIN, 4 CREATE, 5 TRIGGER, 6 SEMI, 7 END.
const TRANS: [[u8; 8]; 8] = [
    // SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END
    [1, 0, 2, 3, 4, 2, 2, 2], // 0 INVALID
    [1, 1, 2, 3, 4, 2, 2, 2], // 1 START
    [1, 2, 2, 2, 2, 2, 2, 2], // 2 NORMAL
    [1, 3, 3, 2, 4, 2, 2, 2], // 3 EXPLAIN
    [1, 4, 2, 2, 2, 4, 5, 2], // 4 CREATE
    [6, 5, 5, 5, 5, 5, 5, 5], // 5 TRIGGER
    [6, 6, 5, 5, 5, 5, 5, 7], // 6 SEMI
    [1, 7, 5, 5, 5, 5, 5, 5], // 7 END
];

const START: u8 = 1;

fn column(tk: Tk) -> usize {
    match tk {
        Tk::Semi => 0,
        Tk::Ws => 1,
        Tk::Other => 2,
        Tk::Explain => 3,
        Tk::Create => 4,
        Tk::Temp => 5,
        Tk::Trigger => 6,
        Tk::End => 7,
    }
}

/// A lexical token as the splitter sees it: the shared tokenizer's
/// ([`durable_schema_workerd::words`]), classed for complete.c's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    /// Byte range of the token in the script.
    start: usize,
    end: usize,
    kind: Tk,
}

/// Whether `script` holds a statement: a token other than whitespace,
/// comments and `;`, which is exactly when [`split_statements`] returns
/// one. It stops at the first such token, so a load can refuse an empty
/// file without splitting every file (a cached verdict needs no split).
pub(crate) fn has_statement(script: &str) -> bool {
    let bytes = script.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i = match b {
            b';' | b' ' | b'\r' | b'\t' | b'\n' | b'\x0c' => i + 1,
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                find(bytes, i + 2, b"*/").map_or(bytes.len(), |p| p + 2)
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                find(bytes, i + 2, b"\n").map_or(bytes.len(), |p| p + 1)
            }
            _ => return true,
        };
    }
    false
}

/// Tokenizes the way complete.c does. Whitespace and comments are `Ws`;
/// quoted strings and identifiers are a single `Other`.
fn tokens(sql: &str) -> Vec<Token> {
    lex::tokens(sql)
        .into_iter()
        .map(|t| Token {
            start: t.start,
            end: t.end,
            kind: match t.kind {
                TokenKind::Semi => Tk::Semi,
                TokenKind::Space => Tk::Ws,
                TokenKind::Word => keyword(t.text.as_bytes()),
                TokenKind::Other => Tk::Other,
            },
        })
        .collect()
}

fn keyword(word: &[u8]) -> Tk {
    let is = |k: &str| word.eq_ignore_ascii_case(k.as_bytes());
    if is("create") {
        Tk::Create
    } else if is("trigger") {
        Tk::Trigger
    } else if is("temp") || is("temporary") {
        Tk::Temp
    } else if is("end") {
        Tk::End
    } else if is("explain") {
        Tk::Explain
    } else {
        Tk::Other
    }
}

/// Splits `script` into statements the way SQLite would execute it.
///
/// Empty statements (`;;`) and text made only of whitespace and comments are
/// dropped; a last statement without a `;` is kept.
///
/// ```
/// use durable_schema_compiler::split_statements;
/// let stmts = split_statements(
///     "CREATE TABLE t(x);\n\
///      CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;\n\
///      -- a comment; not a statement\n",
/// );
/// assert_eq!(stmts.len(), 2);
/// assert!(stmts[1].sql.ends_with("END"));
/// ```
pub fn split_statements(script: &str) -> Vec<SplitStatement<'_>> {
    let mut out = Vec::new();
    let mut state = START;
    // First and last non-whitespace token of the statement being read.
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    for tok in tokens(script) {
        let row = TRANS.get(usize::from(state)).copied().unwrap_or(TRANS[0]);
        let next = row.get(column(tok.kind)).copied().unwrap_or(START);
        if tok.kind == Tk::Semi {
            if next == START {
                // End of a complete statement (the `;` is not part of it).
                if let Some(start) = first.take() {
                    push(&mut out, script, start, last_end);
                }
            } else if first.is_some() {
                // A `;` inside a trigger body belongs to the statement.
                last_end = tok.end;
            }
        } else if tok.kind != Tk::Ws {
            if first.is_none() {
                first = Some(tok.start);
            }
            last_end = tok.end;
        }
        state = next;
    }
    if let Some(start) = first {
        push(&mut out, script, start, last_end);
    }
    out
}

fn push<'a>(out: &mut Vec<SplitStatement<'a>>, script: &'a str, start: usize, end: usize) {
    if let Some(sql) = script.get(start..end) {
        out.push(SplitStatement { sql, offset: start });
    }
}

/// A statement of a migration as a byte span of the migration's normalized
/// text, with the position of its first token: what the splitter found,
/// what the replay ran and what the plan embeds.
///
/// ```
/// use durable_schema_compiler::{split_statements, PlannedStatement};
/// let text = "CREATE TABLE t(x);\n  INSERT INTO t VALUES (';');\n";
/// let first = split_statements(text)[1].clone();
/// let s = PlannedStatement { start: first.offset, end: first.offset + first.sql.len(), line: 2, column: 3, batch: false, over: None };
/// assert_eq!(s.sql(text), "INSERT INTO t VALUES (';')");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlannedStatement {
    /// Byte offset of the statement's first token in the text.
    pub start: usize,
    /// Byte offset just past its last token (before the `;`, if any).
    pub end: usize,
    /// 1-based line of its first token.
    pub line: u32,
    /// 1-based column (in characters) of its first token.
    pub column: u32,
    /// Whether the statement is a batch: the line
    /// [`BATCH_DIRECTIVE`](crate::BATCH_DIRECTIVE) precedes it in its file,
    /// and the executor repeats it, each repetition in its own transaction,
    /// until it changes no row.
    pub batch: bool,
    /// For a range batch (the line
    /// [`BATCH_OVER_DIRECTIVE`](crate::BATCH_OVER_DIRECTIVE) precedes it;
    /// `batch` is set too): its slice size and where its table's name lies
    /// in the text.
    pub over: Option<Over>,
}

impl PlannedStatement {
    /// The span as the runtime's span format holds it
    /// (`durable_schema_runtime::packed`, its one owner).
    pub fn span(&self) -> Span {
        Span {
            start: self.start,
            end: self.end,
            line: self.line,
            column: self.column,
            batch: self.batch,
            over: self.over,
        }
    }

    /// The statement's text within `text`, the normalized text it was split
    /// from: exactly what SQLite ran, without the terminating `;`. Empty if
    /// `text` is not that text (the span does not fit it).
    pub fn sql<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.end).unwrap_or_default()
    }
}

/// `statements` as the runtime embeds them (`durable_schema::Statements`):
/// `start,end,line,column` of each, and `,b` for a batch, separated by
/// spaces.
///
/// ```
/// use durable_schema_compiler::{encode_spans, spans};
/// assert_eq!(encode_spans(&spans("SELECT 1;\nSELECT 2;")), "0,8,1,1 10,18,2,1");
/// let batch = "CREATE TABLE t(x);\n-- durable-schema: batch\nDELETE FROM t;";
/// assert_eq!(encode_spans(&spans(batch)), "0,17,1,1 44,57,3,1,b");
/// ```
pub fn encode_spans(statements: &[PlannedStatement]) -> String {
    durable_schema_runtime::packed::encode_spans(statements.iter().map(PlannedStatement::span))
}

/// Splits `text` with [`split_statements`] into spans with positions, each
/// marked a batch when the line [`BATCH_DIRECTIVE`](crate::BATCH_DIRECTIVE)
/// precedes it: the one way a migration is split, at load time.
///
/// ```
/// use durable_schema_compiler::spans;
/// let text = "CREATE TABLE t(x);\n-- durable-schema: batch\nDELETE FROM t WHERE rowid IN (SELECT rowid FROM t LIMIT 100);";
/// let batch: Vec<bool> = spans(text).iter().map(|s| s.batch).collect();
/// assert_eq!(batch, [false, true]);
/// ```
pub fn spans(text: &str) -> Vec<PlannedStatement> {
    let mut spans = positions(text);
    crate::directive::mark_batches(text, &mut spans);
    spans
}

/// [`spans`] without the batch marks.
fn positions(text: &str) -> Vec<PlannedStatement> {
    // Positions are computed incrementally: each statement continues from
    // the previous one, so a long file is scanned once.
    let (mut line, mut column, mut at) = (1u32, 1u32, 0usize);
    split_statements(text)
        .into_iter()
        .map(|s| {
            for c in text.get(at..s.offset).unwrap_or_default().chars() {
                if c == '\n' {
                    line = line.saturating_add(1);
                    column = 1;
                } else {
                    column = column.saturating_add(1);
                }
            }
            at = s.offset;
            PlannedStatement {
                start: s.offset,
                end: s.offset + s.sql.len(),
                line,
                column,
                batch: false,
                over: None,
            }
        })
        .collect()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<&str> {
        split_statements(s).into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn has_statement_agrees_with_the_splitter() {
        let scripts = [
            "",
            " \n\t\r\x0c",
            ";;; ;",
            "-- only a comment",
            "-- a comment\n;\n/* block */ ;",
            "/* unterminated block ; SELECT 1",
            "-- no newline at the end; SELECT 1",
            "/**/-",
            "/ 1",
            "[x]",
            "'text'",
            "  ;  SELECT 1",
            "-- c\nCREATE TABLE t (x);",
            "/* a */ /* b */ x",
            "é",
        ];
        for script in scripts {
            assert_eq!(
                has_statement(script),
                !split_statements(script).is_empty(),
                "{script:?}"
            );
        }
    }

    #[test]
    fn splits_on_semicolons_and_drops_empties() {
        assert_eq!(
            texts("CREATE TABLE a(x);;\n CREATE TABLE b(y) ;"),
            ["CREATE TABLE a(x)", "CREATE TABLE b(y)"]
        );
    }

    #[test]
    fn keeps_last_statement_without_semicolon() {
        assert_eq!(texts("SELECT 1; SELECT 2"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn semicolons_in_strings_comments_and_identifiers_do_not_split() {
        let sql =
            "INSERT INTO t VALUES ('a;b', \"c;d\", [e;f], `g;h`); -- x; y\n/* z; */ SELECT 1;";
        assert_eq!(
            texts(sql),
            [
                "INSERT INTO t VALUES ('a;b', \"c;d\", [e;f], `g;h`)",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        assert_eq!(
            texts("INSERT INTO t VALUES ('it''s; fine'); SELECT 2;"),
            ["INSERT INTO t VALUES ('it''s; fine')", "SELECT 2"]
        );
    }

    #[test]
    fn trigger_body_is_one_statement() {
        let sql = "CREATE TRIGGER IF NOT EXISTS tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1;\n  DELETE FROM u;\nEND;\nSELECT 1;";
        let got = texts(sql);
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("CREATE TRIGGER") && got[0].ends_with("END"));
        assert_eq!(got[1], "SELECT 1");
    }

    #[test]
    fn temp_trigger_and_case_insensitive_keywords() {
        let sql = "create temp trigger tr after insert on t begin select 1; end; select 2;";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn drizzle_breakpoints_are_comments() {
        let sql = "CREATE TABLE a(x);--> statement-breakpoint\nCREATE TABLE b(y);";
        assert_eq!(texts(sql), ["CREATE TABLE a(x)", "CREATE TABLE b(y)"]);
    }

    #[test]
    fn comment_only_text_has_no_statement() {
        assert!(split_statements("-- nothing\n/* here */\n ;\n").is_empty());
    }

    #[test]
    fn offsets_point_at_first_token() {
        let sql = "-- c\n  CREATE TABLE a(x);\n\nSELECT 1;";
        let s = split_statements(sql);
        assert_eq!(line_col(sql, s[0].offset), (2, 3));
        assert_eq!(line_col(sql, s[1].offset), (4, 1));
    }

    #[test]
    fn unterminated_input_is_total() {
        assert_eq!(texts("SELECT 'abc; SELECT 2"), ["SELECT 'abc; SELECT 2"]);
        assert_eq!(texts("SELECT 1 /* open"), ["SELECT 1"]);
        assert_eq!(texts("é;ü"), ["é", "ü"]);
    }

    #[test]
    fn spans_are_the_split_statements_with_their_positions() {
        let text = "-- c;\n  CREATE TABLE é(x);\n\nCREATE TRIGGER t AFTER INSERT ON é BEGIN\n SELECT ';'; SELECT 2;\nEND;;\n/* ; */ SELECT \"a;b\"";
        let split = split_statements(text);
        let spans = spans(text);
        assert_eq!(spans.len(), 3);
        for (span, s) in spans.iter().zip(&split) {
            assert_eq!(span.sql(text), s.sql);
            assert_eq!((span.line, span.column), line_col(text, s.offset));
        }
        assert_eq!(spans[0].sql("short"), "");
    }

    #[test]
    fn batch_statements_are_packed_with_their_mark() {
        let text = "CREATE TABLE t(x);\n-- durable-schema: batch\nDELETE FROM t WHERE rowid IN (SELECT rowid FROM t LIMIT 9);\nDROP TABLE t;";
        let spans = spans(text);
        assert_eq!(
            spans.iter().map(|s| s.span().batch).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(encode_spans(&spans), "0,17,1,1 44,102,3,1,b 104,116,4,1");
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("é x", 3), (1, 3));
    }
}
