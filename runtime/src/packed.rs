//! Every migration's metadata as one string: what `#[durable_schema]`
//! embeds instead of a `Migration::__new(...)` call per migration, decoded
//! once per process the first time the code asks for the migrations.
//!
//! Why: rustc type- and borrow-checks every expression of the generated
//! `SCHEMA` on every build of the crate. A thousand constructor calls (with
//! their arguments and builder calls) cost it a tenth of a second each time,
//! even when no migration changed; one string literal costs it nothing. The
//! up-to-date check needs no decoding: [`Schema`](crate::Schema) keeps the
//! head's version and chain value as plain fields.
//!
//! The format is a contract between the compiler, which writes it with
//! [`encode`] at build time, and the runtime, which reads it with
//! [`decode`]; this module is its one owner (hidden, not a public API).
//! Every field is `<byte length>:<bytes>`, so names, table names and spans
//! may hold any character. A migration is, in order:
//! version, name, description, checksum, chain, statement spans, the
//! journal's `when` (empty when none), then three counted lists: the tables
//! whose foreign keys are checked, the checksums it replaces, and the chain
//! links (`prev`, `checksum`, `chain` each).

use crate::schema::{__ChainLink, Migration};

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
    /// Its statements' spans (see `Statements`).
    pub spans: &'a str,
    /// The drizzle-kit journal's `when`.
    pub journal_when: Option<u64>,
    /// Tables whose foreign keys are checked at the end of the migration.
    pub foreign_key_checks: Vec<&'a str>,
    /// Checksums of the released texts it deliberately replaces.
    pub replaces: Vec<&'a str>,
    /// Chain links of histories through a replaced text: `(prev, checksum,
    /// chain)`.
    pub links: Vec<(&'a str, &'a str, &'a str)>,
}

/// The metadata of `entries`, in order, as one string for [`decode`].
pub fn encode(entries: &[Entry<'_>]) -> String {
    let mut out = String::new();
    let field = |out: &mut String, s: &str| {
        out.push_str(&s.len().to_string());
        out.push(':');
        out.push_str(s);
    };
    for e in entries {
        field(&mut out, &e.version.to_string());
        for s in [e.name, e.description, e.checksum, e.chain, e.spans] {
            field(&mut out, s);
        }
        field(
            &mut out,
            &e.journal_when.map(|w| w.to_string()).unwrap_or_default(),
        );
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

/// Reads fields off the packed string; `None` once it is malformed.
/// Written with plain loops rather than `parse` and iterator adapters: it
/// is compiled into every Worker, where each generic helper costs bytes.
struct Cursor {
    rest: &'static str,
}

/// The decimal number `digits`, if it is one that fits.
fn number(digits: &str) -> Option<u64> {
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

impl Cursor {
    fn field(&mut self) -> Option<&'static str> {
        let colon = self.rest.bytes().position(|b| b == b':')?;
        let len = usize::try_from(number(self.rest.get(..colon)?)?).ok()?;
        let end = colon.checked_add(1)?.checked_add(len)?;
        let value = self.rest.get(colon + 1..end)?;
        self.rest = self.rest.get(end..)?;
        Some(value)
    }

    fn number(&mut self) -> Option<u64> {
        number(self.field()?)
    }

    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.number()?).ok()
    }

    fn list(&mut self) -> Option<&'static [&'static str]> {
        let mut items = Vec::new();
        for _ in 0..self.count()? {
            items.push(self.field()?);
        }
        Some(leak(items))
    }

    fn migration(&mut self, sql: &'static str) -> Option<Migration> {
        let version = u32::try_from(self.number()?).ok()?;
        let (name, description) = (self.field()?, self.field()?);
        let (checksum, chain, spans) = (self.field()?, self.field()?, self.field()?);
        let when = self.field()?;
        let checks = self.list()?;
        let replaces = self.list()?;
        let mut links = Vec::new();
        for _ in 0..self.count()? {
            let (prev, checksum, chain) = (self.field()?, self.field()?, self.field()?);
            links.push(__ChainLink::__new(prev, checksum, chain));
        }
        let m = Migration::__new(version, name, description, sql, checksum, chain, spans)
            .__with_foreign_key_checks(checks)
            .__with_replacements(replaces, leak(links));
        Some(match when {
            "" => m,
            when => m.__with_journal_when(number(when)?),
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
/// `texts[i]`. A string [`encode`] did not write (never the macro's) gives
/// the migrations read before the first malformed field, not a panic.
pub fn decode(texts: &'static [&'static str], meta: &'static str) -> Vec<Migration> {
    let mut cursor = Cursor { rest: meta };
    let mut migrations = Vec::with_capacity(texts.len());
    while !cursor.rest.is_empty() {
        let sql = texts.get(migrations.len()).copied().unwrap_or_default();
        match cursor.migration(sql) {
            Some(m) => migrations.push(m),
            None => break,
        }
    }
    migrations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak_str(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    #[test]
    fn every_field_survives_the_round_trip_whatever_its_characters() {
        let entries = [
            Entry {
                version: 1,
                name: "0001_init.sql",
                description: "init",
                checksum: "aa",
                chain: "bb",
                spans: "0,10,1,1 12,20,2,1",
                ..Entry::default()
            },
            Entry {
                version: 2,
                name: "0002_ü:12:x.sql",
                description: "ü:12:x",
                checksum: "cc",
                chain: "dd",
                spans: "",
                journal_when: Some(1_700_000_000_123),
                foreign_key_checks: vec!["posts", "a \"quoted\" 3:table"],
                replaces: vec!["ee"],
                links: vec![("bb", "ee", "ff"), ("b2", "e2", "f2")],
            },
        ];
        let meta = leak_str(encode(&entries));
        let texts: &'static [&'static str] = &["CREATE TABLE t (x);", "SELECT 1;"];
        let got = decode(texts, meta);
        assert_eq!(got.len(), 2);
        let (a, b) = (got[0], got[1]);
        assert_eq!(
            (a.version(), a.name(), a.description(), a.sql()),
            (1, "0001_init.sql", "init", "CREATE TABLE t (x);")
        );
        assert_eq!((a.checksum(), a.chain()), ("aa", "bb"));
        assert_eq!(a.statements().__spans(), "0,10,1,1 12,20,2,1");
        assert_eq!(a.journal_when(), None);
        assert!(a.foreign_key_checks().is_empty() && a.replaces().is_empty());
        assert_eq!(
            (b.version(), b.name(), b.description()),
            (2, "0002_ü:12:x.sql", "ü:12:x")
        );
        assert_eq!(b.journal_when(), Some(1_700_000_000_123));
        assert_eq!(b.foreign_key_checks(), ["posts", "a \"quoted\" 3:table"]);
        assert_eq!(b.replaces(), ["ee"]);
        assert!(b.accepts_chain("f2") && b.accepts_checksum("ee"));
        assert_eq!(b.chain_after("b2"), None, "b2's link is for checksum e2");
        assert_eq!(b.sql(), "SELECT 1;");
    }

    #[test]
    fn a_malformed_string_gives_what_was_read_before_it_not_a_panic() {
        let one = encode(&[Entry {
            version: 7,
            name: "0007_x.sql",
            ..Entry::default()
        }]);
        let texts: &'static [&'static str] = &[];
        for bad in [
            format!("{one}3:ab"),
            format!("{one}x:1"),
            format!("{one}99:short"),
            format!("{one}1:é"),
        ] {
            let got = decode(texts, leak_str(bad.clone()));
            assert_eq!(got.len(), 1, "{bad}");
            assert_eq!((got[0].version(), got[0].sql()), (7, ""));
        }
        assert!(decode(texts, "").is_empty());
    }
}
