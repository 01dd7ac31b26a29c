//! Every migration's metadata as one string: what `#[durable_schema]`
//! embeds instead of a `Migration::__new(...)` call per migration, decoded
//! once per process the first time the code asks for the migrations.
//!
//! Why: rustc type-checks and const-evaluates every expression of the
//! generated `SCHEMA` on every build of the crate. A thousand constructor
//! calls cost a release rebuild about 0.9 s more than one string literal
//! (`benches/RESULTS.md`, "Packing"). The up-to-date check needs no
//! decoding: [`Schema`](crate::Schema) keeps the head's version and chain
//! value as plain fields.
//!
//! This module is the one owner of both text formats the compiler embeds
//! for the runtime: the packed metadata ([`encode`], [`decode`]) and a
//! text's statement spans ([`encode_spans`], read by
//! [`Statements`](crate::Statements)).
//!
//! Packed metadata starts with [`TAG`], which names the format's version:
//! the macro checks it against this crate's at compile time
//! ([`check_tag`]), so a macro and a runtime that disagree fail the build,
//! not a Worker. Then every field is `<byte length>:<bytes>`, so names,
//! table names and spans may hold any character. A migration is, in order:
//! version, name, description, checksum, chain, statement spans, the
//! journal's `when` (empty when none), its [`Class`] (`additive`,
//! `destructive` or `breaking`) and its findings, then three counted lists: the tables
//! whose foreign keys are checked, the checksums it replaces, and the chain
//! links (`prev`, `checksum`, `chain` each). [`decode`] accepts exactly
//! what [`encode`] writes and reports anything else as an [`Error`], never
//! as fewer migrations.
//!
//! Spans are `start,end,line,column` per statement (byte offsets of the
//! statement in its text, 1-based position of its first token), followed
//! by `,b` for a batch statement (`-- durable-schema: batch`), or by
//! `,b,<limit>,<table start>,<table end>` for a range batch (`-- durable-schema:
//! batch over <table> limit <n>`: the slice size and the byte offsets of
//! the table's name in the text, whose directive line is part of it),
//! separated by spaces: one string, where an array of integers would cost
//! rustc a MIR statement per element.

use crate::schema::{__ChainLink, Class, Migration};

/// The format tag that starts every packed string; bumped whenever the
/// format changes.
pub const TAG: &str = "ds4;";

/// Where one statement lies in its text, for [`encode_spans`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Byte offset of the statement's first token.
    pub start: usize,
    /// Byte offset just past its last token.
    pub end: usize,
    /// 1-based line of its first token.
    pub line: u32,
    /// 1-based column (in characters) of its first token.
    pub column: u32,
    /// Whether the statement is a batch (the directive line
    /// `-- durable-schema: batch` precedes it): the executor repeats it, each
    /// repetition in its own transaction, until it changes no row.
    pub batch: bool,
    /// The slicing of a range batch (`-- durable-schema: batch over <table>
    /// limit <n>`; `batch` is set too): the executor walks the table's
    /// rowids in slices and binds each slice's bounds.
    pub over: Option<Over>,
}

/// How a range batch slices its table, for [`Span::over`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Over {
    /// The most rows of one slice (`limit <n>`).
    pub limit: u32,
    /// Byte offset of the table's name in the migration text (inside the
    /// quotes of a quoted name).
    pub table_start: usize,
    /// Byte offset just past it.
    pub table_end: usize,
}

impl Over {
    /// The table's name in `text`, the migration text these offsets are
    /// of (empty when they do not fit it).
    pub fn table<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.table_start..self.table_end)
            .unwrap_or_default()
    }
}

/// One migration's metadata, as the compiler holds it, for [`encode`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The migration's version.
    pub version: u32,
    /// Its file name.
    pub name: &'a str,
    /// The description part of the name.
    pub description: &'a str,
    /// Hex checksum of the normalized text.
    pub checksum: &'a str,
    /// Hex chain value.
    pub chain: &'a str,
    /// Where its statements lie in its text.
    pub spans: Vec<Span>,
    /// The drizzle-kit journal's `when`.
    pub journal_when: Option<u64>,
    /// Tables whose foreign keys are checked at the end of the migration.
    pub foreign_key_checks: Vec<&'a str>,
    /// Checksums of the released texts it deliberately replaces.
    pub replaces: Vec<&'a str>,
    /// Chain links of histories through a replaced text: `(prev, checksum,
    /// chain)`.
    pub links: Vec<(&'a str, &'a str, &'a str)>,
    /// What it does to older code.
    pub class: Class,
    /// Its breaking and destructive findings (see [`Migration::findings`]).
    pub findings: &'a str,
}

/// `spans` in the span format: `start,end,line,column` each, separated by
/// spaces.
pub fn encode_spans(spans: impl IntoIterator<Item = Span>) -> String {
    let mut out = String::new();
    for (i, s) in spans.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for (j, n) in [s.start, s.end, s.line as usize, s.column as usize]
            .into_iter()
            .enumerate()
        {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&n.to_string());
        }
        if s.batch || s.over.is_some() {
            out.push_str(",b");
        }
        if let Some(over) = s.over {
            for n in [over.limit as usize, over.table_start, over.table_end] {
                out.push(',');
                out.push_str(&n.to_string());
            }
        }
    }
    out
}

/// The metadata of `entries`, in order, as one string for [`decode`].
pub fn encode(entries: &[Entry<'_>]) -> String {
    let mut out = String::from(TAG);
    let field = |out: &mut String, s: &str| {
        out.push_str(&s.len().to_string());
        out.push(':');
        out.push_str(s);
    };
    for e in entries {
        field(&mut out, &e.version.to_string());
        for s in [e.name, e.description, e.checksum, e.chain] {
            field(&mut out, s);
        }
        field(&mut out, &encode_spans(e.spans.iter().copied()));
        field(
            &mut out,
            &e.journal_when.map(|w| w.to_string()).unwrap_or_default(),
        );
        field(&mut out, e.class.as_str());
        field(&mut out, e.findings);
        for list in [&e.foreign_key_checks, &e.replaces] {
            field(&mut out, &list.len().to_string());
            for s in list.iter() {
                field(&mut out, s);
            }
        }
        field(&mut out, &e.links.len().to_string());
        for (prev, checksum, chain) in &e.links {
            for s in [prev, checksum, chain] {
                field(&mut out, s);
            }
        }
    }
    out
}

/// Why a packed string does not decode: what was expected, and the byte
/// offset in the string where it was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    at: usize,
    expected: &'static str,
}

impl Error {
    /// Byte offset in the packed string where decoding stopped.
    pub fn at(&self) -> usize {
        self.at
    }

    /// What the decoder expected there.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "malformed packed migrations at byte {}: expected {}",
            self.at, self.expected
        )
    }
}

impl std::error::Error for Error {}

/// Panics (at compile time, where the generated code calls it in a
/// `const`) unless `meta` starts with this crate's [`TAG`]: the macro that
/// wrote it and this runtime speak different formats.
pub const fn check_tag(meta: &str) {
    let (meta, tag) = (meta.as_bytes(), TAG.as_bytes());
    let mut i = 0;
    while i < tag.len() {
        if i >= meta.len() || meta[i] != tag[i] {
            panic!(
                "durable-schema-macros and durable-schema-runtime disagree on the packed format: \
                 use the same version of both (the `durable-schema` facade pins them)"
            );
        }
        i += 1;
    }
}

/// The decimal number `digits`, if it is one that fits. Written with a
/// plain loop rather than `parse`: it is compiled into every Worker, where
/// each generic helper costs bytes. Shared by both formats' readers.
pub(crate) fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(n)
}

/// One span, `start,end,line,column`, then `,b` for a batch and
/// `,<limit>,<table start>,<table end>` for a range batch, if it is one.
pub(crate) fn span(text: &str) -> Option<Span> {
    let mut fields = text.split(',');
    let mut next = || number(fields.next()?);
    let (start, end) = (next()?, next()?);
    let (line, column) = (next()?, next()?);
    let batch = match fields.next() {
        None => false,
        Some("b") => true,
        Some(_) => return None,
    };
    let over = match fields.next() {
        None => None,
        Some(limit) => {
            let limit = u32::try_from(number(limit)?).ok().filter(|&l| l > 0)?;
            let table_start = usize::try_from(number(fields.next()?)?).ok()?;
            let table_end = usize::try_from(number(fields.next()?)?).ok()?;
            Some(Over {
                limit,
                table_start,
                table_end,
            })
        }
    };
    if fields.next().is_some() {
        return None;
    }
    Some(Span {
        start: usize::try_from(start).ok()?,
        end: usize::try_from(end).ok()?,
        line: u32::try_from(line).ok()?,
        column: u32::try_from(column).ok()?,
        batch,
        over,
    })
}

/// Whether `spans` are spans of `text`: each a slice of it on character
/// boundaries, so [`Statements`](crate::Statements) never reads an empty
/// statement off a well-formed schema.
fn spans_fit(spans: &str, text: &str) -> bool {
    spans.is_empty()
        || spans.split(' ').all(|s| {
            span(s).is_some_and(|s| {
                s.start <= s.end
                    && text.get(s.start..s.end).is_some()
                    && s.over.is_none_or(|o| {
                        o.table_start < o.table_end
                            && text.get(o.table_start..o.table_end).is_some()
                    })
            })
        })
}

/// Reads fields off the packed string.
struct Cursor {
    meta: &'static str,
    rest: &'static str,
}

impl Cursor {
    fn error(&self, expected: &'static str) -> Error {
        Error {
            at: self.meta.len() - self.rest.len(),
            expected,
        }
    }

    fn field(&mut self) -> Result<&'static str, Error> {
        let field = || {
            let colon = self.rest.bytes().position(|b| b == b':')?;
            let len = usize::try_from(number(self.rest.get(..colon)?)?).ok()?;
            let end = colon.checked_add(1)?.checked_add(len)?;
            Some((self.rest.get(colon + 1..end)?, self.rest.get(end..)?))
        };
        let (value, rest) = field().ok_or_else(|| self.error("a `<length>:<bytes>` field"))?;
        self.rest = rest;
        Ok(value)
    }

    fn number(&mut self, expected: &'static str) -> Result<u64, Error> {
        let before = self.rest;
        let n = number(self.field()?);
        n.ok_or_else(|| {
            self.rest = before;
            self.error(expected)
        })
    }

    fn count(&mut self) -> Result<usize, Error> {
        let n = self.number("a count")?;
        usize::try_from(n).map_err(|_| self.error("a count"))
    }

    fn list(&mut self) -> Result<&'static [&'static str], Error> {
        let mut items = Vec::new();
        for _ in 0..self.count()? {
            items.push(self.field()?);
        }
        Ok(leak(items))
    }

    fn migration(
        &mut self,
        expected_version: usize,
        sql: &'static str,
    ) -> Result<Migration, Error> {
        let at = self.rest;
        let version = self.number("a version")?;
        if usize::try_from(version) != Ok(expected_version) {
            self.rest = at;
            return Err(self.error("the next version (1, 2, 3, ...)"));
        }
        let (name, description) = (self.field()?, self.field()?);
        let (checksum, chain) = (self.field()?, self.field()?);
        let at = self.rest;
        let spans = self.field()?;
        if !spans_fit(spans, sql) {
            self.rest = at;
            return Err(self.error("statement spans of the migration's text"));
        }
        let at = self.rest;
        let when = match self.field()? {
            "" => None,
            when => Some(number(when).ok_or_else(|| {
                self.rest = at;
                self.error("a journal `when`")
            })?),
        };
        let at = self.rest;
        let class = Class::parse(self.field()?).ok_or_else(|| {
            self.rest = at;
            self.error("a class (additive, destructive or breaking)")
        })?;
        let findings = self.field()?;
        let checks = self.list()?;
        let replaces = self.list()?;
        let mut links = Vec::new();
        for _ in 0..self.count()? {
            let (prev, checksum, chain) = (self.field()?, self.field()?, self.field()?);
            links.push(__ChainLink::__new(prev, checksum, chain));
        }
        let version = u32::try_from(version).map_err(|_| self.error("a version"))?;
        let m = Migration::__new(version, name, description, sql, checksum, chain, spans)
            .__with_foreign_key_checks(checks)
            .__with_replacements(replaces, leak(links))
            .__with_class(class, findings);
        Ok(match when {
            None => m,
            Some(when) => m.__with_journal_when(when),
        })
    }
}

/// Leaked once per process per schema (the caller keeps the result in a
/// `OnceLock`), so the migrations are `'static` like the literals they
/// were before. Empty lists allocate nothing.
fn leak<T>(items: Vec<T>) -> &'static [T] {
    // Without shrinking first: that is more code in every Worker, for a
    // few bytes once per process.
    items.leak()
}

/// The migrations packed in `meta` by [`encode`], the `i`-th with text
/// `texts[i]`: exactly one per text, versions 1, 2, 3, ..., or an
/// [`Error`] for anything [`encode`] did not write for these texts (a
/// wrong [`TAG`], a truncated or corrupted string, spans that do not fit
/// their text).
pub fn decode(texts: &'static [&'static str], meta: &'static str) -> Result<Vec<Migration>, Error> {
    let mut cursor = Cursor { meta, rest: meta };
    cursor.rest = meta
        .strip_prefix(TAG)
        .ok_or_else(|| cursor.error("this runtime's format tag"))?;
    let mut migrations = Vec::with_capacity(texts.len());
    for (i, sql) in texts.iter().enumerate() {
        migrations.push(cursor.migration(i + 1, sql)?);
    }
    if !cursor.rest.is_empty() {
        return Err(cursor.error("the end: one migration per text"));
    }
    Ok(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak_str(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    fn leak_texts(texts: Vec<String>) -> &'static [&'static str] {
        let texts: Vec<&'static str> = texts.into_iter().map(leak_str).collect();
        Box::leak(texts.into_boxed_slice())
    }

    /// A small deterministic generator (xorshift), so the round trip covers
    /// many shapes without a dependency and fails the same way every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        /// A string of up to `max` characters that the format must carry
        /// verbatim: its own separators, digits, quotes, `#`, `\r`,
        /// multi-byte characters, or nothing at all.
        fn text(&mut self, max: usize) -> String {
            const PIECES: [&str; 14] = [
                ":", "12:", ";", " ", ",", "\"", "#", "r#\"", "\r", "\n", "é", "∑", "🦀", "x",
            ];
            (0..self.below(max + 1))
                .map(|_| PIECES[self.below(PIECES.len())])
                .collect()
        }
    }

    /// Spans of `text` on character boundaries.
    fn spans_of(rng: &mut Rng, text: &str) -> Vec<Span> {
        let bounds: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        (0..rng.below(4))
            .map(|_| {
                let (a, b) = (
                    bounds[rng.below(bounds.len())],
                    bounds[rng.below(bounds.len())],
                );
                // Some range batches, whose table name is a non-empty
                // slice of the text too.
                let over = (rng.below(3) == 0 && a != b).then(|| Over {
                    limit: rng.below(5000) as u32 + 1,
                    table_start: a.min(b),
                    table_end: a.max(b),
                });
                Span {
                    start: a.min(b),
                    end: a.max(b),
                    line: rng.below(1000) as u32 + 1,
                    column: rng.below(100) as u32 + 1,
                    batch: over.is_some(),
                    over,
                }
            })
            .collect()
    }

    #[test]
    fn generated_migrations_survive_the_round_trip_field_for_field() {
        let mut rng = Rng(2026);
        for round in 0..200 {
            let n = rng.below(6);
            let texts: Vec<String> = (0..n).map(|_| rng.text(12)).collect();
            let strings: Vec<Vec<String>> = (0..n)
                .map(|_| (0..12).map(|_| rng.text(6)).collect())
                .collect();
            let entries: Vec<Entry<'_>> = (0..n)
                .map(|i| {
                    let s = &strings[i];
                    let lists = rng.below(3);
                    Entry {
                        version: i as u32 + 1,
                        name: &s[0],
                        description: &s[1],
                        checksum: &s[2],
                        chain: &s[3],
                        spans: spans_of(&mut rng, &texts[i]),
                        journal_when: [None, Some(0), Some(u64::MAX)][rng.below(3)],
                        foreign_key_checks: s[4..4 + lists].iter().map(String::as_str).collect(),
                        replaces: s[7..7 + rng.below(3)].iter().map(String::as_str).collect(),
                        links: (0..lists)
                            .map(|_| (s[9].as_str(), s[10].as_str(), s[11].as_str()))
                            .collect(),
                        class: [Class::Additive, Class::Destructive, Class::Breaking][rng.below(3)],
                        findings: &s[8],
                    }
                })
                .collect();
            let meta = leak_str(encode(&entries));
            let texts = leak_texts(texts);
            let got = decode(texts, meta).unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(got.len(), n, "round {round}");
            for ((m, e), text) in got.iter().zip(&entries).zip(texts) {
                assert_eq!(
                    (m.version(), m.name(), m.description(), m.sql()),
                    (e.version, e.name, e.description, *text)
                );
                assert_eq!((m.checksum(), m.chain()), (e.checksum, e.chain));
                assert_eq!(m.journal_when(), e.journal_when);
                assert_eq!(m.foreign_key_checks(), e.foreign_key_checks);
                assert_eq!(m.replaces(), e.replaces);
                assert_eq!((m.class(), m.findings()), (e.class, e.findings));
                for &(prev, checksum, chain) in &e.links {
                    assert!(m.accepts_chain(chain), "round {round}");
                    if checksum == e.checksum {
                        assert_eq!(m.chain_after(prev), Some(chain));
                    }
                }
                let statements: Vec<(&str, u32, u32)> = m
                    .statements()
                    .iter()
                    .map(|s| (s.sql(), s.line(), s.column()))
                    .collect();
                let expected: Vec<(&str, u32, u32)> = e
                    .spans
                    .iter()
                    .map(|s| (&text[s.start..s.end], s.line, s.column))
                    .collect();
                assert_eq!(statements, expected, "round {round}");
            }
        }
    }

    /// Two migrations with every kind of field, for the failure tests.
    fn small() -> (&'static [&'static str], String) {
        let texts = leak_texts(vec!["SELECT 1;".into(), "SELECT 'é';".into()]);
        let meta = encode(&[
            Entry {
                version: 1,
                name: "0001_a.sql",
                description: "a",
                checksum: "aa",
                chain: "bb",
                spans: vec![Span {
                    start: 0,
                    end: 8,
                    line: 1,
                    column: 1,
                    batch: false,
                    over: None,
                }],
                ..Entry::default()
            },
            Entry {
                version: 2,
                name: "0002_b.sql",
                checksum: "cc",
                chain: "dd",
                journal_when: Some(17),
                foreign_key_checks: vec!["t"],
                replaces: vec!["ee"],
                links: vec![("bb", "ee", "ff")],
                class: Class::Breaking,
                findings: "BC103 column `t.c` dropped",
                ..Entry::default()
            },
        ]);
        (texts, meta)
    }

    #[test]
    fn every_truncation_is_an_error_never_fewer_migrations() {
        let (texts, meta) = small();
        assert_eq!(
            decode(texts, leak_str(meta.clone())).map(|m| m.len()),
            Ok(2)
        );
        for cut in (0..meta.len()).filter(|&i| meta.is_char_boundary(i)) {
            let got = decode(texts, leak_str(meta[..cut].to_owned()));
            assert!(got.is_err(), "cut at {cut}: {got:?}");
        }
    }

    #[test]
    fn a_wrong_or_missing_tag_is_an_error_at_byte_0() {
        let (texts, meta) = small();
        let body = &meta[TAG.len()..];
        for bad in [
            body.to_owned(),
            format!("ds1;{body}"),
            format!("ds2;{body}"),
            format!("DS3;{body}"),
        ] {
            let e = decode(texts, leak_str(bad)).unwrap_err();
            assert_eq!(e.at(), 0, "{e}");
            assert_eq!(e.expected(), "this runtime's format tag");
        }
        assert!(decode(&[], "").is_err());
        assert_eq!(decode(&[], TAG).map(|m| m.len()), Ok(0));
    }

    #[test]
    fn an_unknown_class_is_an_error_at_its_field() {
        let (texts, meta) = small();
        let bad = meta.replacen("8:breaking", "8:breakinG", 1);
        let e = decode(texts, leak_str(bad.clone())).unwrap_err();
        assert_eq!(e.at(), bad.find("8:breakinG").unwrap(), "{e}");
        assert_eq!(e.expected(), "a class (additive, destructive or breaking)");
    }

    #[test]
    fn corrupted_numbers_and_misfit_spans_are_errors_at_their_field() {
        let (texts, meta) = small();
        // Each replacement breaks one field of the first migration; the
        // error points at it.
        let cases = [
            ("1:1", "1:x", "a version"),
            ("1:1", "1:2", "the next version (1, 2, 3, ...)"),
            ("1:1", "20:99999999999999999999", "a version"),
            (
                "10:0001_a.sql",
                "999:0001_a.sql",
                "a `<length>:<bytes>` field",
            ),
            (
                "10:0001_a.sql",
                "1x:0001_a.sql",
                "a `<length>:<bytes>` field",
            ),
            (
                "7:0,8,1,1",
                "8:0,10,1,1",
                "statement spans of the migration's text",
            ),
            (
                "7:0,8,1,1",
                "7:0,x,1,1",
                "statement spans of the migration's text",
            ),
            (
                "7:0,8,1,1",
                "7:8,0,1,1",
                "statement spans of the migration's text",
            ),
            (
                "7:0,8,1,1",
                "7:0,8,1 1",
                "statement spans of the migration's text",
            ),
            ("2:17", "2:1x", "a journal `when`"),
            ("1:0", "1:z", "a count"),
        ];
        for (good, bad, expected) in cases {
            let at = meta.find(good).unwrap();
            let corrupted = meta.replacen(good, bad, 1);
            let e = decode(texts, leak_str(corrupted)).unwrap_err();
            assert_eq!((e.expected(), e.at()), (expected, at), "{good} → {bad}");
        }
        // A span off a character boundary of the second text (`é` is bytes
        // 8 and 9).
        let second = meta.replacen("2:dd0:2:17", "2:dd7:0,9,1,12:17", 1);
        assert_ne!(second, meta);
        let e = decode(texts, leak_str(second)).unwrap_err();
        assert_eq!(e.expected(), "statement spans of the migration's text");
    }

    #[test]
    fn more_or_fewer_texts_than_migrations_is_an_error() {
        let (texts, meta) = small();
        let meta = leak_str(meta);
        let e = decode(&texts[..1], meta).unwrap_err();
        assert_eq!(e.expected(), "the end: one migration per text");
        let three = leak_texts(vec!["SELECT 1;".into(), "SELECT 'é';".into(), "".into()]);
        assert!(decode(three, meta).is_err());
    }

    #[test]
    fn spans_encode_as_the_statements_read_them() {
        let spans = [
            Span {
                start: 0,
                end: 8,
                line: 1,
                column: 1,
                batch: false,
                over: None,
            },
            Span {
                start: 10,
                end: 18,
                line: 2,
                column: 3,
                batch: true,
                over: None,
            },
            Span {
                start: 40,
                end: 60,
                line: 4,
                column: 1,
                batch: true,
                over: Some(Over {
                    limit: 1000,
                    table_start: 30,
                    table_end: 35,
                }),
            },
        ];
        let text = encode_spans(spans);
        assert_eq!(text, "0,8,1,1 10,18,2,3,b 40,60,4,1,b,1000,30,35");
        assert_eq!(
            text.split(' ').map(span).collect::<Vec<_>>(),
            spans.map(Some)
        );
        assert_eq!(encode_spans([]), "");
        for bad in [
            "",
            "1,2,3",
            "1,2,3,4,5",
            "1,2,3,4,b,b",
            "1,2,3,4,b,0,1,2",
            "1,2,3,4,b,10,1",
            "1,2,3,4,b,10,1,2,3",
            "1,2,3,4,b,4294967296,1,2",
            "1,2,3,4,B",
            "1,2,3,x",
            "-1,2,3,4",
            "1,2,3,4294967296",
        ] {
            assert_eq!(span(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_tag_check_accepts_what_encode_writes() {
        check_tag(&encode(&[]));
        check_tag(TAG);
    }

    #[test]
    #[should_panic(expected = "disagree on the packed format")]
    fn the_tag_check_panics_on_another_format() {
        check_tag("ds0;1:1");
    }

    #[test]
    fn the_generated_codes_decoder_returns_every_migration() {
        static CELL: crate::__private::DecodedCell = crate::__private::DecodedCell::new();
        let (texts, meta) = small();
        let got = crate::__private::decoded(&CELL, texts, leak_str(meta));
        assert_eq!(got.iter().map(|m| m.version()).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    #[should_panic(expected = "the embedded migrations do not decode (malformed packed \
                               migrations at byte 4: expected a `<length>:<bytes>` field)")]
    fn the_generated_codes_decoder_panics_rather_than_return_fewer_migrations() {
        static CELL: crate::__private::DecodedCell = crate::__private::DecodedCell::new();
        crate::__private::decoded(&CELL, &["SELECT 1;"], TAG);
    }
}
