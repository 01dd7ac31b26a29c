//! The static data that `#[durable_schema]` generates: a [`Schema`] made of
//! [`Migration`]s, each split into [`Statement`]s at compile time.
//!
//! The expansion is data: the runtime never parses SQL and never hashes
//! anything. The one thing it decodes is the migrations' packed metadata,
//! once per process, the first time [`Schema::migrations`] is called (the
//! up-to-date check never calls it); the decoded migrations live for the
//! rest of the process. Checksums and the checksum chain are computed by
//! `durable-schema-compiler` and embedded as hex. What rustc has to check on
//! every build is kept small, because at a thousand migrations each
//! expression per migration or per statement adds up to a noticeable share
//! of every rebuild: the migrations' metadata is one packed string (see
//! `packed.rs`), and a migration's statements are one string of integers
//! (where each lies in the text) sliced when read.

use crate::migrate::Paths;

/// One SQL statement of a migration, split the way SQLite splits a script.
///
/// `line` and `column` (1-based) locate the statement's first token in the
/// migration file, so a run-time failure can point at `0003_x.sql:4:1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    sql: &'static str,
    line: u32,
    column: u32,
    batch: bool,
    /// A range batch's table and slice size (`limit` 0: none).
    over_table: &'static str,
    over_limit: u32,
}

impl Statement {
    /// The statement's text, without the terminating `;`.
    pub const fn sql(&self) -> &'static str {
        self.sql
    }

    /// 1-based line of the statement's first token in its file.
    pub const fn line(&self) -> u32 {
        self.line
    }

    /// 1-based column (in characters) of the statement's first token.
    pub const fn column(&self) -> u32 {
        self.column
    }

    /// Whether the statement is a batch: the directive line
    /// `-- durable-schema: batch` precedes it in its file, and the executor
    /// repeats it, each repetition in its own transaction, until it changes
    /// no row.
    pub const fn is_batch(&self) -> bool {
        self.batch
    }

    /// For a range batch (the directive line
    /// `-- durable-schema: batch over <table> limit <n>` precedes it), the
    /// table whose rowids it walks and
    /// the most rows of one slice: the executor binds each slice's first
    /// and last rowid to `:from` and `:to` and keeps its cursor in the
    /// progress row. `None` for any other statement, a plain batch included.
    pub const fn batch_over(&self) -> Option<(&'static str, u32)> {
        if self.over_limit == 0 {
            None
        } else {
            Some((self.over_table, self.over_limit))
        }
    }
}

/// The statements of one text (a migration's, or a [`Baseline`]'s), in
/// order: each a slice of the text, taken when it is read.
///
/// ```
/// // migrations/0001_users.sql: a table on line 1, an index on line 2.
/// #[durable_schema::durable_schema(dir = "migrations")]
/// struct Db;
///
/// let statements = Db::SCHEMA.migrations()[0].statements();
/// assert_eq!(statements.len(), 2);
/// assert_eq!(
///     statements.get(1).map(|s| s.sql()),
///     Some("CREATE INDEX users_name ON users (name)")
/// );
/// assert_eq!(statements.iter().map(|s| s.line()).collect::<Vec<_>>(), [1, 2]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statements {
    text: &'static str,
    /// `start,end,line,column` of each statement, separated by spaces (the
    /// span format, owned by `packed.rs` with the packed metadata): one
    /// string literal in the generated code, where an array of integers
    /// costs rustc a MIR statement per element (forty thousand at a
    /// thousand migrations, a third of a rebuild).
    spans: &'static str,
}

impl Statements {
    /// The embedded spans, to build another `Migration` of the same text.
    #[doc(hidden)]
    pub const fn __spans(&self) -> &'static str {
        self.spans
    }

    /// How many statements there are.
    pub fn len(&self) -> usize {
        self.iter().len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The statement at `index` (0-based).
    pub fn get(&self, index: usize) -> Option<Statement> {
        self.iter().nth(index)
    }

    /// The statements, in order.
    pub fn iter(&self) -> StatementIter {
        let spans = if self.spans.is_empty() {
            None
        } else {
            Some(self.spans.split(' '))
        };
        let left = spans.clone().map_or(0, Iterator::count);
        StatementIter {
            text: self.text,
            spans,
            left,
        }
    }
}

impl IntoIterator for Statements {
    type Item = Statement;
    type IntoIter = StatementIter;

    fn into_iter(self) -> StatementIter {
        self.iter()
    }
}

/// The iterator of [`Statements::iter`].
#[derive(Debug, Clone)]
pub struct StatementIter {
    text: &'static str,
    spans: Option<core::str::Split<'static, char>>,
    left: usize,
}

impl Iterator for StatementIter {
    type Item = Statement;

    fn next(&mut self) -> Option<Statement> {
        let span = self.spans.as_mut()?.next()?;
        self.left = self.left.saturating_sub(1);
        // The compiler wrote the spans for this text (and the decoder of
        // packed migrations checked that they fit it); a span that is not
        // one (a hand-built value) gives an empty statement, not a panic.
        let span = crate::packed::span(span).unwrap_or_default();
        let sql = self.text.get(span.start..span.end).unwrap_or_default();
        let (line, column, batch) = (span.line, span.column, span.batch);
        let (over_table, over_limit) = span
            .over
            .map(|o| (o.table(self.text), o.limit))
            .unwrap_or(("", 0));
        Some(Statement {
            sql,
            line,
            column,
            batch,
            over_table,
            over_limit,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for StatementIter {}

/// A history that includes a replaced text: recording `checksum` for this
/// migration after a row whose chain is `prev` gives `chain`. Precomputed by
/// the compiler for every combination the history lock allows, so the
/// runtime never hashes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct __ChainLink {
    prev: &'static str,
    checksum: &'static str,
    chain: &'static str,
}

impl __ChainLink {
    #[doc(hidden)]
    pub const fn __new(prev: &'static str, checksum: &'static str, chain: &'static str) -> Self {
        Self {
            prev,
            checksum,
            chain,
        }
    }
}

/// What a migration does to code built for the schema before it, as the
/// compiler classified it from the replay's schema before and after it.
///
/// Ordered by severity: `Additive < Destructive < Breaking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Class {
    /// Older code keeps working (new tables, new nullable or defaulted
    /// columns, indexes, views, triggers).
    #[default]
    Additive,
    /// Data is removed, but older code's queries still run.
    Destructive,
    /// Older code's queries can fail: something they may use was dropped,
    /// renamed or tightened.
    Breaking,
}

impl Class {
    /// `additive`, `destructive` or `breaking`: how the tracking table's
    /// `class` column, the packed metadata and the CLI spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Additive => "additive",
            Self::Destructive => "destructive",
            Self::Breaking => "breaking",
        }
    }

    /// The class spelt `text` by [`Class::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Additive, Self::Destructive, Self::Breaking]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

impl core::fmt::Display for Class {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One checked migration file, `NNNN_description.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    version: u32,
    name: &'static str,
    description: &'static str,
    sql: &'static str,
    checksum: &'static str,
    chain: &'static str,
    spans: &'static str,
    foreign_key_checks: &'static [&'static str],
    journal_when: Option<u64>,
    replaces: &'static [&'static str],
    links: &'static [__ChainLink],
    class: Class,
    findings: &'static str,
}

impl Migration {
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __new(
        version: u32,
        name: &'static str,
        description: &'static str,
        sql: &'static str,
        checksum: &'static str,
        chain: &'static str,
        spans: &'static str,
    ) -> Self {
        Self {
            version,
            name,
            description,
            sql,
            checksum,
            chain,
            spans,
            foreign_key_checks: &[],
            journal_when: None,
            replaces: &[],
            links: &[],
            class: Class::Additive,
            findings: "",
        }
    }

    /// The compiler's classification: `class`, and the breaking and
    /// destructive `findings` (`BC103 column `t.c` dropped`, `; `-separated).
    #[doc(hidden)]
    pub const fn __with_class(mut self, class: Class, findings: &'static str) -> Self {
        self.class = class;
        self.findings = findings;
        self
    }

    /// What this migration does to code built for the schema before it
    /// (see [`Class`]); recorded in the tracking row's `class` column.
    pub const fn class(&self) -> Class {
        self.class
    }

    /// Its breaking and destructive findings, each with its stable code
    /// (`BC103 column `messages.body` dropped`), separated by `; `; empty
    /// for an additive migration.
    pub const fn findings(&self) -> &'static str {
        self.findings
    }

    /// The released texts this one deliberately replaces (their checksums,
    /// from the history lock), and the chain values of every history that
    /// includes a replaced text.
    #[doc(hidden)]
    pub const fn __with_replacements(
        mut self,
        replaces: &'static [&'static str],
        links: &'static [__ChainLink],
    ) -> Self {
        self.replaces = replaces;
        self.links = links;
        self
    }

    /// Checksums of released texts of this migration that this text
    /// deliberately replaces (`replaces` in `durable-schema.lock`). Objects
    /// that applied one of them keep working without re-running anything;
    /// objects that had not applied it apply this text.
    pub const fn replaces(&self) -> &'static [&'static str] {
        self.replaces
    }

    /// Whether a tracking row may record `checksum` for this migration.
    pub(crate) fn accepts_checksum(&self, checksum: &str) -> bool {
        checksum == self.checksum || self.replaces.contains(&checksum)
    }

    /// Whether a tracking row at this version may carry `chain`: this
    /// history's, or one through a replaced text.
    pub(crate) fn accepts_chain(&self, chain: &str) -> bool {
        chain == self.chain || self.links.iter().any(|l| l.chain == chain)
    }

    /// Whether `chain` is one this very text records (its own, or after a
    /// replaced earlier text): what a batch's progress must carry to be
    /// resumed. A replaced text of this migration is another text, whose
    /// committed phases this one cannot continue.
    pub(crate) fn is_chain_of_this_text(&self, chain: &str) -> bool {
        chain == self.chain
            || self
                .links
                .iter()
                .any(|l| l.chain == chain && l.checksum == self.checksum)
    }

    /// The chain value to record when this text is applied after a row
    /// whose chain is `prev`, if `prev` is not this history's own.
    pub(crate) fn chain_after(&self, prev: &str) -> Option<&'static str> {
        self.links
            .iter()
            .find(|l| l.prev == prev && l.checksum == self.checksum)
            .map(|l| l.chain)
    }

    /// The `when` of this migration's drizzle-kit journal entry.
    #[doc(hidden)]
    pub const fn __with_journal_when(mut self, when: u64) -> Self {
        self.journal_when = Some(when);
        self
    }

    /// For a drizzle-kit directory (`meta/_journal.json`), the journal
    /// entry's `when` (milliseconds): what drizzle's migrator records as
    /// `created_at`, by which an object's drizzle history is adopted.
    pub const fn journal_when(&self) -> Option<u64> {
        self.journal_when
    }

    /// The tables whose foreign keys the executor checks at the end of this
    /// migration, inside its transaction (see
    /// [`Migration::foreign_key_checks`]).
    #[doc(hidden)]
    pub const fn __with_foreign_key_checks(mut self, tables: &'static [&'static str]) -> Self {
        self.foreign_key_checks = tables;
        self
    }

    /// The version: the numeric prefix of the file name (`0003_x.sql` → 3).
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// The file name, e.g. `0003_add_sessions.sql`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The description part of the file name (`add_sessions`), recorded in
    /// the tracking table's `description` column.
    pub const fn description(&self) -> &'static str {
        self.description
    }

    /// The file's text as embedded at compile time (BOM removed, line endings
    /// normalized to `\n`).
    pub const fn sql(&self) -> &'static str {
        self.sql
    }

    /// Hex SHA-256 of the normalized file text.
    pub const fn checksum(&self) -> &'static str {
        self.checksum
    }

    /// Hex hash chaining this checksum onto the previous migration's chain
    /// value, so the last row of the tracking table vouches for all of history.
    pub const fn chain(&self) -> &'static str {
        self.chain
    }

    /// The tables whose foreign keys are checked at the end of this
    /// migration, inside its transaction: the compiler lists them when the
    /// migration can leave a violation that SQLite would only see at the
    /// outermost commit (it defers foreign keys, drops, renames or rebuilds
    /// a referenced table, or writes a table with deferred keys). Empty for
    /// most migrations.
    pub const fn foreign_key_checks(&self) -> &'static [&'static str] {
        self.foreign_key_checks
    }

    /// The statements, in order, as the executor runs them (each a slice of
    /// [`sql`](Migration::sql)).
    pub const fn statements(&self) -> Statements {
        Statements {
            text: self.sql,
            spans: self.spans,
        }
    }
}

/// A verified script that takes an empty database to the head of the chain
/// in one transaction: the chain's final schema and the rows its migrations
/// left, derived and checked at compile time by `#[durable_schema]` (applied
/// to a fresh database configured like a Durable Object's, it gives the
/// same schema and rows as every migration in turn).
///
/// The executor runs it, with the tracking row of every version, only on a
/// database that holds nothing yet; [`Report::baseline`](crate::Report::baseline)
/// says when it did. A schema has none when a migration does something a
/// build cannot reproduce (see [`Schema::baseline_note`]).
///
/// ```
/// // migrations/0001_users.sql creates table `users` and an index.
/// #[durable_schema::durable_schema(dir = "migrations")]
/// struct Db;
///
/// let baseline = Db::SCHEMA.baseline().expect("the chain has a baseline");
/// assert!(baseline.sql().contains("CREATE INDEX users_name ON users (name);"));
/// let mut statements = baseline.statements().iter();
/// assert!(statements.any(|s| s.sql().starts_with("CREATE TABLE users")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baseline {
    sql: &'static str,
    spans: &'static str,
}

impl Baseline {
    #[doc(hidden)]
    pub const fn __new(sql: &'static str, spans: &'static str) -> Self {
        Self { sql, spans }
    }

    /// The whole script.
    pub const fn sql(&self) -> &'static str {
        self.sql
    }

    /// Its statements, in order (each a slice of [`sql`](Baseline::sql)).
    pub const fn statements(&self) -> Statements {
        Statements {
            text: self.sql,
            spans: self.spans,
        }
    }
}

/// The default of [`Schema::retry_after`], in seconds.
pub(crate) const DEFAULT_RETRY_AFTER: u32 = 60;

/// The default of [`Schema::budget_ms`]: a third of workerd's 30-second
/// `blockConcurrencyWhile` gate.
pub(crate) const DEFAULT_BUDGET_MS: u32 = 10_000;

/// The whole checked migration chain of one Durable Object class.
///
/// Generated by `#[durable_schema]` as `pub const SCHEMA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    table: &'static str,
    strict: bool,
    retry_after: u32,
    budget_ms: u32,
    migrations: Migrations,
    /// The up-to-date query ([`crate::tracking::head_query`]), precomputed
    /// by the macro so the fast path builds nothing.
    head_query: Option<&'static str>,
    /// How new objects are created: the baseline, or why there is none.
    baseline: Result<&'static Baseline, &'static str>,
    /// The executor's optional paths this schema can take (drizzle's
    /// history, the baseline), set with the data that makes them reachable.
    paths: Paths,
}

/// Where a [`Schema`]'s migrations are: a slice built by hand, or the
/// macro's packed string (see `packed.rs`), decoded on first use. The head's
/// version and chain value are kept apart so the up-to-date check decodes
/// nothing.
#[derive(Clone, Copy)]
enum Migrations {
    Slice(&'static [Migration]),
    Packed {
        version: u32,
        chain: &'static str,
        decoded: fn() -> &'static [Migration],
    },
}

impl Migrations {
    fn get(&self) -> &'static [Migration] {
        match *self {
            Self::Slice(migrations) => migrations,
            Self::Packed { decoded, .. } => decoded(),
        }
    }
}

// The migrations themselves, as before they were packed: not a function's
// address, which changes from build to build.
impl core::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.get()).finish()
    }
}

// By content: two function pointers to the same decoder need not compare
// equal, and two decoders of the same data are the same migrations.
impl PartialEq for Migrations {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Migrations {}

impl Schema {
    #[doc(hidden)]
    pub const fn __new(
        table: &'static str,
        strict: bool,
        migrations: &'static [Migration],
    ) -> Self {
        // A migration from a drizzle-kit journal: drizzle's history may be
        // there to take over. (The macro's packed schema says so with
        // `__with_drizzle`: its migrations are decoded only at run time.)
        let mut paths = Paths::NONE;
        let mut i = 0;
        while i < migrations.len() {
            if migrations[i].journal_when.is_some() {
                paths = paths.with_drizzle();
                break;
            }
            i += 1;
        }
        // A batched statement (`,b` in its spans): its phases may run.
        let mut i = 0;
        while i < migrations.len() {
            if spans_have_batch(migrations[i].spans) {
                paths = paths.with_batches();
                break;
            }
            i += 1;
        }
        Self {
            table,
            strict,
            retry_after: DEFAULT_RETRY_AFTER,
            budget_ms: DEFAULT_BUDGET_MS,
            migrations: Migrations::Slice(migrations),
            head_query: None,
            baseline: Err("the schema was built without one"),
            paths,
        }
    }

    /// The macro's form: the head's `version` and `chain`, and `decoded`,
    /// which decodes the packed migrations once (a `OnceLock` in the
    /// generated code) and returns them.
    #[doc(hidden)]
    pub const fn __packed(
        table: &'static str,
        strict: bool,
        version: u32,
        chain: &'static str,
        decoded: fn() -> &'static [Migration],
    ) -> Self {
        let mut schema = Self::__new(table, strict, &[]);
        schema.migrations = Migrations::Packed {
            version,
            chain,
            decoded,
        };
        schema
    }

    #[doc(hidden)]
    pub const fn __with_baseline(mut self, baseline: &'static Baseline) -> Self {
        self.baseline = Ok(baseline);
        self.paths = self.paths.with_baseline();
        self
    }

    /// The migrations come from a drizzle-kit journal (each has a
    /// [`journal_when`](Migration::journal_when)): a run takes drizzle's
    /// history over. The macro says so for its packed migrations, which
    /// `__packed` cannot look into; without it, such a schema treats a
    /// database with only drizzle's history as fresh.
    #[doc(hidden)]
    pub const fn __with_drizzle(mut self) -> Self {
        self.paths = self.paths.with_drizzle();
        self
    }

    /// A migration has a statement marked `-- durable-schema: batch`: a run
    /// may apply it in phases. The macro says so for its packed migrations,
    /// which `__packed` cannot look into; a schema with a batch but without
    /// it refuses to apply that migration rather than run the batch once.
    #[doc(hidden)]
    pub const fn __with_batches(mut self) -> Self {
        self.paths = self.paths.with_batches();
        self
    }

    /// The executor's optional paths this schema links.
    pub(crate) const fn paths(&self) -> Paths {
        self.paths
    }

    #[doc(hidden)]
    pub const fn __without_baseline(mut self, note: &'static str) -> Self {
        self.baseline = Err(note);
        self
    }

    /// The script that creates a new object at the head in one transaction
    /// (see [`Baseline`]); `None` when new objects run every migration, for
    /// the reason [`baseline_note`](Schema::baseline_note) gives.
    pub const fn baseline(&self) -> Option<&'static Baseline> {
        match self.baseline {
            Ok(baseline) => Some(baseline),
            Err(_) => None,
        }
    }

    /// Why the schema has no [`Baseline`] (a migration calls
    /// `datetime('now')`, `baseline = false`, ...); `None` when it has one.
    pub const fn baseline_note(&self) -> Option<&'static str> {
        match self.baseline {
            Ok(_) => None,
            Err(note) => Some(note),
        }
    }

    #[doc(hidden)]
    pub const fn __with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = seconds;
        self
    }

    /// Seconds [`Schema::wake`] waits before running a migration again that
    /// failed with the same code (`retry_after = N` in the attribute;
    /// 60 by default, 0 retries on every wake-up).
    pub const fn retry_after(&self) -> u32 {
        self.retry_after
    }

    #[doc(hidden)]
    pub const fn __with_budget_ms(mut self, ms: u32) -> Self {
        self.budget_ms = ms;
        self
    }

    /// Milliseconds of batch repetitions one [`Schema::wake`] runs before it
    /// stops between two repetitions (or after a batch's last one), leaving
    /// the rest for the next run
    /// (`budget_ms = N` in the attribute; 10000 by default, well under
    /// workerd's 30-second `blockConcurrencyWhile` gate).
    pub const fn budget_ms(&self) -> u32 {
        self.budget_ms
    }

    #[doc(hidden)]
    pub const fn __with_head_query(mut self, query: &'static str) -> Self {
        self.head_query = Some(query);
        self
    }

    /// The embedded up-to-date query; `None` for a schema built by hand,
    /// for which the executor formats it per call.
    #[doc(hidden)]
    pub const fn __head_query(&self) -> Option<&'static str> {
        self.head_query
    }

    /// The migrations, ordered by version (1, 2, 3, ... without gaps).
    ///
    /// The macro embeds them packed in one string, decoded the first time a
    /// process asks (the up-to-date check never does).
    pub fn migrations(&self) -> &'static [Migration] {
        self.migrations.get()
    }

    /// Name of the tracking table (`migrations` unless `table = "..."`).
    pub const fn table(&self) -> &'static str {
        self.table
    }

    /// Whether a database ahead of the code is an error (`strict = true`).
    pub const fn strict(&self) -> bool {
        self.strict
    }

    /// The highest version, i.e. the version a database has once migrated.
    pub const fn version(&self) -> u32 {
        match self.migrations {
            Migrations::Packed { version, .. } => version,
            Migrations::Slice(migrations) => match migrations.last() {
                Some(m) => m.version,
                None => 0,
            },
        }
    }

    /// The chain value of the highest version (empty without migrations):
    /// what an up-to-date database's last tracking row holds.
    pub(crate) fn head_chain(&self) -> &'static str {
        match self.migrations {
            Migrations::Packed { chain, .. } => chain,
            Migrations::Slice(migrations) => migrations.last().map_or("", |m| m.chain),
        }
    }

    /// The highest version up to `version` whose migration breaks older code
    /// (0: none): the tracking row's `breaks_below`. Code built at a lower
    /// version cannot run against a database at `version`.
    pub fn breaks_below(&self, version: u32) -> u32 {
        let upto = usize::try_from(version).unwrap_or(usize::MAX);
        self.migrations()
            .iter()
            .take(upto)
            .rev()
            .find(|m| m.class == Class::Breaking)
            .map_or(0, |m| m.version)
    }

    /// The migration with this version, if the code knows it.
    pub fn migration(&self, version: u32) -> Option<&'static Migration> {
        let index = usize::try_from(version).ok()?.checked_sub(1)?;
        self.migrations()
            .get(index)
            .filter(|m| m.version == version)
    }
}

/// Whether a span string (see `packed.rs`) marks a statement as a batch:
/// a span ending in `,b`, or with `,b,` before a range batch's slicing. A
/// `const fn` for [`Schema::__new`].
const fn spans_have_batch(spans: &str) -> bool {
    let b = spans.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b','
            && b[i + 1] == b'b'
            && (i + 2 == b.len() || b[i + 2] == b' ' || b[i + 2] == b',')
        {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{Migration, Schema};

    /// The executor's optional paths are set by the data that makes them
    /// reachable: a journal (`__new` looks, the macro says so with
    /// `__with_drizzle`), a baseline.
    #[test]
    fn optional_paths_follow_the_data() {
        static PLAIN: [Migration; 1] = [Migration::__new(
            1,
            "0001_a.sql",
            "a",
            "SELECT 1;",
            "h",
            "c",
            "",
        )];
        static JOURNAL: [Migration; 1] =
            [
                Migration::__new(1, "0000_a.sql", "a", "SELECT 1;", "h", "c", "")
                    .__with_journal_when(7),
            ];
        static BASELINE: Baseline = Baseline::__new("SELECT 1;", "");
        let linked = |s: Schema| format!("{:?}", s.paths());
        let plain = Schema::__new("migrations", false, &PLAIN);
        let none = "Paths { drizzle: false, baseline: false, batches: false }";
        assert_eq!(linked(plain), none);
        let journal = Schema::__new("migrations", false, &JOURNAL);
        assert_eq!(
            linked(journal),
            "Paths { drizzle: true, baseline: false, batches: false }"
        );
        assert_eq!(
            linked(plain.__with_drizzle()),
            "Paths { drizzle: true, baseline: false, batches: false }"
        );
        let with = plain.__with_baseline(&BASELINE);
        assert_eq!(
            linked(with),
            "Paths { drizzle: false, baseline: true, batches: false }"
        );
        assert_eq!(linked(plain.__without_baseline("no")), none);
        static BATCH: [Migration; 1] = [Migration::__new(
            1,
            "0001_a.sql",
            "a",
            "SELECT 1;\nUPDATE t SET x = 1;",
            "h",
            "c",
            "0,8,1,1 10,28,2,1,b",
        )];
        let batch = "Paths { drizzle: false, baseline: false, batches: true }";
        assert_eq!(linked(Schema::__new("migrations", false, &BATCH)), batch);
        assert_eq!(linked(plain.__with_batches()), batch);
        assert!(super::spans_have_batch("0,8,1,1,b"));
        assert!(super::spans_have_batch("0,8,1,1 9,20,2,1,b,1000,3,4"));
        assert!(!super::spans_have_batch("0,8,1,1 2,3,4,5"));
    }

    use super::Baseline;

    #[test]
    fn spans_that_do_not_fit_the_text_give_empty_statements_not_a_panic() {
        const SQL: &str = "SELECT 'é';";
        // Off a character boundary, past the end, not numbers.
        let b = Baseline::__new(SQL, "0,9,1,1 0,99,1,1 x,y 0,11,1,1");
        let sql: Vec<&str> = b.statements().iter().map(|s| s.sql()).collect();
        assert_eq!(sql, ["", "", "", "SELECT 'é'"]);
        assert_eq!(b.statements().len(), 4);
        assert!(Baseline::__new(SQL, "").statements().is_empty());
        assert_eq!(Baseline::__new(SQL, "").statements().len(), 0);
    }
}
