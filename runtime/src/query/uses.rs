//! What a checked query uses, and whether a newer migration's finding
//! breaks it: the exact judgement of older code over a newer schema.
//!
//! `query!` records, while it prepares the statement at compile time, every
//! table, view and column SQLite's authorizer reports the statement reads or
//! writes (`SELECT *` reports each column; a view reports the view and the
//! tables behind it; a trigger the statement fires reports what the trigger
//! reads and writes, and its name), and embeds it as one compact string,
//! [`Uses`]. This module owns that format: the compiler builds it with
//! [`UsesBuilder`], the runtime reads it back with [`Uses`].
//!
//! # Format
//!
//! ```text
//! uses   := "" | entry (";" entry)*
//! entry  := kind name [":" column ("," column)*]
//! kind   := "r"   a table or view the statement reads only
//!         | "w"   a table or view it writes (INSERT, UPDATE, DELETE, REPLACE,
//!                 an upsert; through a trigger too)
//!         | "t"   a trigger it fires (no columns)
//! ```
//!
//! Names are ASCII-lowercased (SQLite compares identifiers that way) and
//! `\`, `;`, `:` and `,` inside them are escaped with `\`. Columns are the
//! ones read or written (an `INSERT`'s listed columns; every column without
//! a list). Entries and columns are sorted, so the string is the same on
//! every build. An entry of a kind this runtime does not know, or one not
//! in the format (an empty name or column, a second `:`, a trigger with
//! columns), makes the whole string unknown: every breaking finding then breaks the query (a
//! newer macro never makes older judgements looser).
//!
//! # Rules ([`breaks`])
//!
//! A finding (a tracking row's `findings`, one summary each, `; `-separated:
//! `BC103 column `messages.body` dropped`) breaks a query when
//!
//! - `BC101` table dropped, `BC102` table renamed, `BC112` columns moved:
//!   the query uses that table (reads or writes it, through a view or a
//!   trigger too; for `BC112` conservatively, as the uses do not say
//!   whether the query read `*` or inserted without a column list);
//! - `BC103` column dropped, `BC104` renamed, `BC105` type changed: the
//!   query reads or writes that column;
//! - `BC106` `NOT NULL` added, `BC111` required column added, `BC113` a
//!   `NOT NULL` column's default removed, `BC107` `CHECK` added, `BC108`
//!   unique index added, `BC114` foreign key added, `BC115` unique index
//!   or constraint dropped (an upsert's `ON CONFLICT` target, an `INSERT
//!   OR REPLACE`): the query writes that table (for `BC114` also: writes
//!   the parent table the finding names, `(to `p`)`, whose rows a child
//!   may now reference);
//! - `BC109` view changed: the query uses that view;
//! - `BC110` trigger changed: the query fires that trigger, or writes the
//!   table the finding names (`(on `t`)`, which newer builds record; a
//!   trigger added to a table older code writes is not among what that code
//!   fires), or, for a finding without its table (written by an older
//!   durable-schema), writes any table;
//! - `AD…` and `DS…` never break a query (an additive change leaves what it
//!   uses in place; a destructive one removes data, not names);
//! - any other code breaks every query: a newer build may classify changes
//!   this runtime does not know.
//!
//! A query whose uses are unknown (a raw statement, or a `Query` built by
//! hand) is broken by every breaking finding.

use std::collections::{BTreeMap, BTreeSet};

/// What a checked query uses, in the [format](self) the macro embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uses<'a>(&'a str);

/// One parsed entry of [`Uses`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: u8,
    name: String,
    columns: Vec<String>,
}

impl<'a> Uses<'a> {
    /// Wraps a string in the [format](self). Not checked here: a string
    /// that does not parse is judged as unknown uses.
    pub const fn new(text: &'a str) -> Self {
        Self(text)
    }

    /// The string, as embedded.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The entries, or `None` when the text holds a kind this runtime does
    /// not know, or is not in the format.
    fn entries(&self) -> Option<Vec<Entry>> {
        let mut out = Vec::new();
        for raw in split_escaped(self.0, b';') {
            if raw.is_empty() {
                continue;
            }
            let kind = raw.as_bytes()[0];
            if !matches!(kind, b'r' | b'w' | b't') {
                return None;
            }
            let mut parts = split_escaped(&raw[1..], b':');
            let name = unescape(parts.next().unwrap_or_default());
            let columns: Vec<String> = parts
                .next()
                .map(|c| split_escaped(c, b',').map(unescape).collect())
                .unwrap_or_default();
            // Not in the format: unknown, so judged conservatively rather
            // than read as using less than it does.
            if name.is_empty()
                || parts.next().is_some()
                || columns.iter().any(String::is_empty)
                || (kind == b't' && !columns.is_empty())
            {
                return None;
            }
            out.push(Entry {
                kind,
                name,
                columns,
            });
        }
        Some(out)
    }

    /// The tables and views the query reads or writes (lowercase), for
    /// tests and tools.
    pub fn tables(&self) -> Vec<String> {
        self.entries()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.kind != b't')
            .map(|e| e.name)
            .collect()
    }
}

/// Splits at unescaped `sep`.
fn split_escaped(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b if b == sep => {
                    let piece = &text[start..i];
                    i += 1;
                    start = i;
                    return Some(piece);
                }
                _ => i += 1,
            }
        }
        done = true;
        Some(&text[start.min(text.len())..])
    })
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn escape(name: &str, out: &mut String) {
    for c in name.chars() {
        if matches!(c, '\\' | ';' | ':' | ',') {
            out.push('\\');
        }
        out.push(c.to_ascii_lowercase());
    }
}

/// Builds a [`Uses`] string: what the compiler records from the authorizer
/// while it prepares a checked query.
#[derive(Debug, Default, Clone)]
pub struct UsesBuilder {
    /// Lowercase table or view → (written, columns).
    objects: BTreeMap<String, (bool, BTreeSet<String>)>,
    triggers: BTreeSet<String>,
}

impl UsesBuilder {
    /// An empty record: a statement that uses no table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The statement reads `table` (a table or view), and `column` of it
    /// when there is one (SQLite reports no column for `count(*)`).
    pub fn read(&mut self, table: &str, column: Option<&str>) {
        let entry = self.objects.entry(table.to_ascii_lowercase()).or_default();
        if let Some(c) = column.filter(|c| !c.is_empty()) {
            entry.1.insert(c.to_ascii_lowercase());
        }
    }

    /// The statement writes `table`, and `column` of it when there is one
    /// (an `UPDATE`'s assigned columns, an `INSERT`'s listed ones).
    pub fn write(&mut self, table: &str, column: Option<&str>) {
        self.read(table, column);
        if let Some(entry) = self.objects.get_mut(&table.to_ascii_lowercase()) {
            entry.0 = true;
        }
    }

    /// The statement fires trigger `name`.
    pub fn trigger(&mut self, name: &str) {
        self.triggers.insert(name.to_ascii_lowercase());
    }

    /// The string in the [format](self).
    pub fn finish(&self) -> String {
        let mut out = String::new();
        for (name, (written, columns)) in &self.objects {
            if !out.is_empty() {
                out.push(';');
            }
            out.push(if *written { 'w' } else { 'r' });
            escape(name, &mut out);
            for (i, c) in columns.iter().enumerate() {
                out.push(if i == 0 { ':' } else { ',' });
                escape(c, &mut out);
            }
        }
        for name in &self.triggers {
            if !out.is_empty() {
                out.push(';');
            }
            out.push('t');
            escape(name, &mut out);
        }
        out
    }
}

/// The findings of a tracking row (`; `-separated summaries), one by one.
/// A piece that does not start with a code belongs to the one before it (a
/// name holding `; `).
pub fn findings(text: &str) -> impl Iterator<Item = &str> {
    let mut pieces: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(at) = text[from..].find("; ") {
        let cut = from + at;
        if has_code(&text[cut + 2..]) {
            pieces.push(&text[start..cut]);
            start = cut + 2;
        }
        from = cut + 2;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces.into_iter().filter(|p| !p.trim().is_empty())
}

/// Whether `text` starts with a finding code: two capitals, three digits.
fn has_code(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 5
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5].iter().all(u8::is_ascii_digit)
        && b.get(5).is_none_or(|&c| c == b' ')
}

/// The object a finding names (between its first two backticks) and the
/// table of a `(on `t`)` detail.
fn object_and_table(finding: &str) -> (Option<&str>, Option<&str>) {
    let object = finding
        .split_once('`')
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(o, _)| o);
    let table = finding
        .rfind("(on `")
        .map(|i| &finding[i + 5..])
        .and_then(|rest| rest.strip_suffix("`)"));
    (object, table)
}

/// Whether `finding` (one summary, `BC103 column `t.c` dropped`) breaks a
/// query that uses `uses` (`None`: unknown, as for a raw statement). The
/// rules are in the [module documentation](self).
pub fn breaks(finding: &str, uses: Option<Uses<'_>>) -> bool {
    let finding = finding.trim();
    let code = finding.split(' ').next().unwrap_or_default();
    if !has_code(code) {
        // Not a finding this runtime can read: conservative.
        return true;
    }
    if code.starts_with("AD") || code.starts_with("DS") {
        return false;
    }
    let Some(entries) = uses.and_then(|u| u.entries()) else {
        return true;
    };
    let (object, table) = object_and_table(finding);
    let Some(object) = object else {
        return true;
    };
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let tables = || entries.iter().filter(|e| e.kind != b't');
    let written = || tables().filter(|e| e.kind == b'w');
    // `t.c` names column `c` of an entry's table `t` (a table's name may
    // hold a dot: the entry decides where the column starts).
    let column_of = |e: &Entry| -> Option<String> {
        let rest = object.get(e.name.len()..)?;
        let prefix = object.get(..e.name.len())?;
        (same(prefix, &e.name) && rest.starts_with('.')).then(|| rest[1..].to_owned())
    };
    match code {
        // A query that names its columns is not affected by BC112, but the
        // uses do not say whether `*` or a list without columns stood in it.
        "BC101" | "BC102" | "BC109" | "BC112" => tables().any(|e| same(&e.name, object)),
        "BC103" | "BC104" | "BC105" => tables()
            .any(|e| column_of(e).is_some_and(|c| e.columns.iter().any(|used| same(used, &c)))),
        "BC106" | "BC111" | "BC113" => written().any(|e| column_of(e).is_some()),
        "BC107" | "BC108" | "BC115" => written().any(|e| same(&e.name, object)),
        // Its parent (`(to `p`)`, which newer builds record): a parent row
        // a child now references can no longer be deleted or re-keyed.
        "BC114" => {
            let parent = finding
                .rfind("(to `")
                .map(|i| &finding[i + 5..])
                .and_then(|rest| rest.strip_suffix("`)"));
            written().any(|e| same(&e.name, object) || parent.is_some_and(|p| same(&e.name, p)))
        }
        "BC110" => {
            entries
                .iter()
                .any(|e| e.kind == b't' && same(&e.name, object))
                || match table {
                    Some(t) => written().any(|e| same(&e.name, t)),
                    None => written().next().is_some(),
                }
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SELECT id, body FROM messages`, `UPDATE rooms SET name = ?`
    /// firing `rooms_touch`, and a read of view `recent`.
    fn sample() -> String {
        let mut b = UsesBuilder::new();
        b.read("Messages", Some("id"));
        b.read("messages", Some("BODY"));
        b.write("rooms", Some("name"));
        b.read("rooms", Some("id"));
        b.trigger("rooms_touch");
        b.read("recent", Some("id"));
        b.read("audit", None);
        b.finish()
    }

    fn judged(finding: &str) -> bool {
        let text = sample();
        breaks(finding, Some(Uses::new(&text)))
    }

    #[test]
    fn the_format_is_sorted_lowercase_and_escaped() {
        assert_eq!(
            sample(),
            "raudit;rmessages:body,id;rrecent:id;wrooms:id,name;trooms_touch"
        );
        let mut b = UsesBuilder::new();
        b.write("we;ird:t,\\", Some("c,1"));
        let text = b.finish();
        assert_eq!(text, "wwe\\;ird\\:t\\,\\\\:c\\,1");
        let uses = Uses::new(&text);
        assert_eq!(uses.tables(), ["we;ird:t,\\"]);
        assert!(breaks("BC103 column `we;ird:t,\\.c,1` dropped", Some(uses)));
        assert!(!breaks("BC103 column `we;ird:t,\\.c` dropped", Some(uses)));
        assert_eq!(UsesBuilder::new().finish(), "");
    }

    #[test]
    fn bc101_and_bc102_break_a_query_using_the_table() {
        assert!(judged("BC101 table `messages` dropped"));
        assert!(judged("BC101 table `Audit` dropped"));
        assert!(judged("BC102 table `rooms` renamed (to `halls`)"));
        assert!(!judged("BC101 table `users` dropped"));
        assert!(!judged("BC102 table `users` renamed (to `people`)"));
    }

    #[test]
    fn bc103_to_bc105_break_a_query_reading_or_writing_the_column() {
        assert!(judged("BC103 column `messages.body` dropped"));
        assert!(judged("BC104 column `rooms.name` renamed (to `title`)"));
        assert!(judged(
            "BC105 column `messages.id` changed type (`INTEGER` to `TEXT`)"
        ));
        assert!(!judged("BC103 column `messages.reactions` dropped"));
        assert!(!judged("BC104 column `rooms.topic` renamed (to `subject`)"));
        assert!(!judged(
            "BC105 column `users.id` changed type (`INT` to `TEXT`)"
        ));
        // `audit` is read without a column (`count(*)`): none of its
        // columns is used.
        assert!(!judged("BC103 column `audit.at` dropped"));
    }

    #[test]
    fn bc106_bc107_bc108_bc111_break_a_query_writing_the_table() {
        assert!(judged("BC106 column `rooms.topic` made NOT NULL"));
        assert!(judged(
            "BC111 NOT NULL column `rooms.owner` without a default added"
        ));
        assert!(judged("BC107 table `rooms` got a new CHECK"));
        assert!(judged("BC108 unique index on existing table `rooms`"));
        // `messages` is only read.
        assert!(!judged("BC106 column `messages.body` made NOT NULL"));
        assert!(!judged(
            "BC111 NOT NULL column `messages.owner` without a default added"
        ));
        assert!(!judged("BC107 table `messages` got a new CHECK"));
        assert!(!judged("BC108 unique index on existing table `messages`"));
    }

    /// The codes a review added: moved columns break any use of the table
    /// (conservatively), a lost default and a new foreign key its writes.
    #[test]
    fn bc112_breaks_any_use_bc113_bc114_writes() {
        assert!(judged("BC112 columns of table `messages` moved"));
        assert!(judged("BC112 columns of table `rooms` moved"));
        assert!(!judged("BC112 columns of table `users` moved"));
        assert!(judged(
            "BC113 NOT NULL column `rooms.topic` lost its default"
        ));
        assert!(!judged(
            "BC113 NOT NULL column `messages.body` lost its default"
        ));
        assert!(judged("BC114 table `rooms` got a new foreign key"));
        assert!(!judged("BC114 table `messages` got a new foreign key"));
        // Deleting or re-keying a parent row a child now references fails:
        // the parent's writers break too (`rooms` is written).
        assert!(judged(
            "BC114 table `messages` got a new foreign key (to `rooms`)"
        ));
        assert!(!judged(
            "BC114 table `messages` got a new foreign key (to `users`)"
        ));
        // Columns no longer unique break upserts and `INSERT OR REPLACE`:
        // writes only.
        assert!(judged(
            "BC115 unique index or constraint on table `rooms` dropped"
        ));
        assert!(!judged(
            "BC115 unique index or constraint on table `messages` dropped"
        ));
    }

    #[test]
    fn bc109_breaks_a_query_using_the_view() {
        assert!(judged("BC109 view `recent` dropped or lost columns"));
        assert!(!judged("BC109 view `old` dropped or lost columns"));
    }

    #[test]
    fn bc110_breaks_a_query_firing_the_trigger_or_writing_its_table() {
        assert!(judged("BC110 trigger `rooms_touch` dropped or changed"));
        assert!(judged(
            "BC110 trigger `rooms_guard` dropped or changed (on `rooms`)"
        ));
        assert!(!judged(
            "BC110 trigger `messages_guard` dropped or changed (on `messages`)"
        ));
        // Without its table (an older durable-schema's row): any write.
        assert!(judged("BC110 trigger `other` dropped or changed"));
        let mut reader = UsesBuilder::new();
        reader.read("messages", Some("id"));
        let text = reader.finish();
        assert!(!breaks(
            "BC110 trigger `other` dropped or changed",
            Some(Uses::new(&text))
        ));
    }

    #[test]
    fn additive_and_destructive_findings_never_break_unknown_codes_always_do() {
        for finding in [
            "AD101 table `x` added",
            "AD102 column `messages.x` added",
            "DS101 rows of table `messages` dropped",
            "DS102 values of column `messages.body` dropped",
            "DS103 rows of `messages` deleted",
            "DS104 values of `messages.body` overwritten",
        ] {
            assert!(!judged(finding), "{finding}");
            assert!(!breaks(finding, None), "{finding}");
        }
        assert!(judged("BC199 something new `x`"));
        assert!(judged("XY101 a class from the future `messages`"));
        assert!(judged("not a finding"));
    }

    #[test]
    fn unknown_uses_are_broken_by_every_breaking_finding() {
        for finding in [
            "BC101 table `users` dropped",
            "BC103 column `users.x` dropped",
            "BC109 view `old` dropped or lost columns",
        ] {
            assert!(breaks(finding, None), "{finding}");
            // A kind this runtime does not know: the whole string is unknown.
            assert!(
                breaks(finding, Some(Uses::new("rmessages:id;xusers"))),
                "{finding}"
            );
        }
        // No table at all (`SELECT 1`): nothing breaks it.
        assert!(!breaks("BC101 table `users` dropped", Some(Uses::new(""))));
    }

    /// A string that is not in the format (hand-made, or from a macro of
    /// another format) is unknown uses, never "uses less than it says".
    #[test]
    fn malformed_uses_are_unknown() {
        let finding = "BC103 column `messages.body` dropped";
        for text in [
            "rmessages:id:body",
            "r:body",
            "rmessages:",
            "rmessages:id,,x",
            "tmessages_audit:body",
            "rmessages:id;r",
        ] {
            assert!(breaks(finding, Some(Uses::new(text))), "{text}");
        }
        // Well-formed, it is judged by what it says.
        assert!(!breaks(finding, Some(Uses::new("rmessages:id;ta"))));
    }

    #[test]
    fn a_rows_findings_split_at_codes_only() {
        let row = "BC103 column `messages.body` dropped; DS102 values of column `messages.body` dropped; BC101 table `a; b` dropped";
        assert_eq!(
            findings(row).collect::<Vec<_>>(),
            [
                "BC103 column `messages.body` dropped",
                "DS102 values of column `messages.body` dropped",
                "BC101 table `a; b` dropped"
            ]
        );
        assert_eq!(findings("").count(), 0);
    }
}
