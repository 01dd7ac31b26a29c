//! A statement's tokens as SQLite's tokenizer cuts them, for the checks a
//! stock SQLite's authorizer cannot make: it is not shown the new name of
//! `ALTER TABLE … RENAME TO` (workerd patches SQLite to show it, see
//! [`rename_denial`](crate::rename_denial)). The compile-time check's
//! splitter (complete.c's state machine) and its light name scans read the
//! same tokens, so every reader of a statement's words agrees on where a
//! quoted name or a comment ends. Total: any input, however malformed,
//! yields tokens (an unterminated string runs to the end of the text).

/// What a token is, as far as the scans need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `;`.
    Semi,
    /// Whitespace or a comment (`--` to the line's end, `/* … */`).
    Space,
    /// A run of identifier characters: a keyword, a bare name or a number.
    Word,
    /// Anything else: a quoted string or identifier (`'…'`, `"…"`,
    /// `` `…` ``, `[…]`) as one token, or a single punctuation byte.
    Other,
}

/// A lexical token of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// Byte offset of the token's start in the text.
    pub start: usize,
    /// Byte offset just past its end.
    pub end: usize,
    /// The token's text.
    pub text: &'a str,
    /// What it is.
    pub kind: TokenKind,
}

/// SQLite's `IdChar`: ASCII letters, digits, `_`, `$` and every byte ≥ 0x80.
fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The first position of `needle` in `haystack` at or after `from`.
pub fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let rest = haystack.get(from..)?;
    rest.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Tokenizes `sql` the way SQLite's `complete.c` does: whitespace and
/// comments are [`TokenKind::Space`], quoted strings and identifiers a
/// single [`TokenKind::Other`].
pub fn tokens(sql: &str) -> Vec<Token<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let kind = match b {
            b';' => {
                i += 1;
                TokenKind::Semi
            }
            b' ' | b'\r' | b'\t' | b'\n' | b'\x0c' => {
                i += 1;
                TokenKind::Space
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // Unterminated block comments run to the end of the text.
                i = find(bytes, i + 2, b"*/").map_or(bytes.len(), |p| p + 2);
                TokenKind::Space
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find(bytes, i + 2, b"\n").map_or(bytes.len(), |p| p + 1);
                TokenKind::Space
            }
            b'[' => {
                i = find(bytes, i + 1, b"]").map_or(bytes.len(), |p| p + 1);
                TokenKind::Other
            }
            b'`' | b'"' | b'\'' => {
                // A doubled quote is part of the name (`"a""b"` is `a"b`).
                // complete.c sees two adjacent quoted tokens there, which
                // leaves its state machine where one token does.
                i += 1;
                loop {
                    i = find(bytes, i, &[b]).map_or(bytes.len(), |p| p + 1);
                    if bytes.get(i) != Some(&b) {
                        break;
                    }
                    i += 1;
                }
                TokenKind::Other
            }
            _ if is_id_char(b) => {
                while bytes.get(i).is_some_and(|&c| is_id_char(c)) {
                    i += 1;
                }
                TokenKind::Word
            }
            _ => {
                i += 1;
                TokenKind::Other
            }
        };
        // Every arm advances `i` past ASCII bytes or to a position found by
        // `find` on an ASCII needle, so both ends are char boundaries; `get`
        // keeps this total regardless.
        let text = sql.get(start..i).unwrap_or_default();
        out.push(Token {
            start,
            end: i,
            text,
            kind,
        });
    }
    out
}

/// The statement's words: every token but whitespace, comments and `;`,
/// for the light keyword scans (rename targets, trigger bodies, created
/// names) that must work even where a full SQL parser cannot parse.
pub fn words(sql: &str) -> Vec<&str> {
    tokens(sql)
        .into_iter()
        .filter(|t| !matches!(t.kind, TokenKind::Space | TokenKind::Semi))
        .map(|t| t.text)
        .collect()
}

/// Whether word `i` is the keyword `k` (ASCII case-insensitive).
pub fn word_is(words: &[&str], i: usize, k: &str) -> bool {
    words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(k))
}

/// Removes SQL identifier quoting (`"x"`, `[x]`, `` `x` ``, `'x'`).
pub fn unquote(word: &str) -> String {
    let pairs = [('"', '"'), ('`', '`'), ('[', ']'), ('\'', '\'')];
    for (open, close) in pairs {
        if let Some(inner) = word.strip_prefix(open).and_then(|w| w.strip_suffix(close)) {
            return if open == close {
                inner.replace(&format!("{close}{close}"), &close.to_string())
            } else {
                inner.to_owned()
            };
        }
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_identifiers() {
        assert_eq!(unquote("\"a\"\"b\""), "a\"b");
        assert_eq!(unquote("[x y]"), "x y");
        assert_eq!(unquote("plain"), "plain");
    }

    #[test]
    fn words_skip_space_comments_and_semicolons() {
        assert_eq!(
            words("ALTER /* c; */ TABLE \"a b\" -- x;\n RENAME TO [t;u];"),
            ["ALTER", "TABLE", "\"a b\"", "RENAME", "TO", "[t;u]"]
        );
        assert_eq!(words("main.t"), ["main", ".", "t"]);
        assert_eq!(
            words("\"a\"\"b\" 'it''s' ``"),
            ["\"a\"\"b\"", "'it''s'", "``"]
        );
        assert!(word_is(&words("alter Table"), 1, "TABLE"));
        assert!(!word_is(&words("alter"), 1, "table"));
        // Unterminated quotes and comments run to the end, never panic.
        assert_eq!(words("'abc; d"), ["'abc; d"]);
        assert_eq!(words("x /* y"), ["x"]);
        assert_eq!(words("é;ü"), ["é", "ü"]);
    }
}
