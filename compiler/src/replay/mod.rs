//! Replaying a migration chain in an in-memory SQLite configured like a
//! Durable Object's. Real SQLite is the arbiter of validity; sqlparser only
//! sharpens the message once SQLite has rejected a statement
//! ([`sqlparser_hint`]).
//!
//! This module is the driver: each migration in its own transaction, each
//! statement through the textual checks ([`textual`]) and then SQLite
//! ([`sandbox`]), drops of referenced tables judged at the end of the
//! migration ([`drops`]), foreign keys checked when it ends
//! ([`foreign_keys`]), and help for every finding ([`advice`]).

mod advice;
pub(crate) mod compat;
mod drops;
mod foreign_keys;
mod sandbox;
mod sqlparser_hint;
mod textual;

pub(crate) use sandbox::{reads_connection_history, unreproducible_in, Replayer};
use sandbox::{Failure, MAX_STATEMENT_BYTES};

use crate::split::{line_col, spans, PlannedStatement};
use crate::{BaselineScript, Diagnostic, NoBaseline};
use drops::{PendingDrops, Position};
use durable_schema_workerd::Rule;

/// One migration's text, as the corpus test hands it to [`replay`].
#[derive(Debug, Clone, Copy)]
pub struct ReplaySource<'a> {
    /// The path shown in messages, as the user wrote it.
    pub display_path: &'a str,
    /// The normalized text (see [`crate::normalize_text`]).
    pub text: &'a str,
}

impl<'a> ReplaySource<'a> {
    /// A migration named `display_path` in messages, with the normalized
    /// `text`.
    pub fn new(display_path: &'a str, text: &'a str) -> Self {
        Self { display_path, text }
    }
}

/// One migration, split, as the replay runs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script<'a> {
    /// The path shown in messages, as the user wrote it.
    pub(crate) display_path: &'a str,
    /// Its version: the replay writes its tracking row first, as the
    /// executor does.
    pub(crate) version: u32,
    /// The normalized text.
    pub(crate) text: &'a str,
    /// Its statements, as spans of `text`, in order.
    pub(crate) statements: &'a [PlannedStatement],
}

/// What a replay found, and what it ran.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Every problem found (empty = valid).
    pub(crate) findings: Vec<Finding>,
    /// For each migration, the statements SQLite ran to completion, in
    /// order: all of them when there are no findings.
    pub(crate) ran: Vec<Vec<PlannedStatement>>,
    /// For each migration, the tables whose foreign keys are checked at its
    /// end (see [`keys`]).
    pub(crate) checks: Vec<Vec<String>>,
    /// For each migration, the first thing it did that a build cannot
    /// reproduce (a call of `random()` or `total_changes()`, ...), as
    /// `path:line:column` and what the statement does.
    pub(crate) unreproducible: Vec<Option<String>>,
    /// For each migration, what it does to code written for the schema
    /// before it (see [`compat`]).
    pub(crate) changes: Vec<Vec<compat::Change>>,
    /// For each migration, its statements whose time grows with an
    /// object's rows (see [`Replayer::cost`]), each as `path:line:column`
    /// and what it does.
    pub(crate) cost_hints: Vec<Vec<String>>,
    /// For each migration, the first value it may have read from the clock
    /// (a call of `datetime('now')`, an insert taking a `CURRENT_TIMESTAMP`
    /// default, ...), likewise.
    pub(crate) clock: Vec<Option<String>>,
}

/// A problem found by the replay, with the Durable Object rule it breaks
/// (`None` when SQLite itself rejected the statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What to show the user.
    pub diagnostic: Diagnostic,
    /// The DO rule broken, if this is a DO-rule violation rather than an
    /// error real SQLite would also raise.
    pub rule: Option<Rule>,
    /// Index (0-based) of the migration in the chain.
    pub migration: usize,
}

/// Rules that only a Durable Object imposes, beyond [`Rule`]: limits that
/// stock SQLite's defaults would accept.
fn limit_rule(message: &str) -> bool {
    const LIMIT_MESSAGES: &[&str] = &[
        "statement too long",
        "too many columns",
        "Expression tree is too large",
        "too many terms in compound SELECT",
        "too many SQL variables",
        "LIKE or GLOB pattern too complex",
        "too many arguments on function",
        "string or blob too big",
        "too many levels of trigger recursion",
    ];
    LIMIT_MESSAGES.iter().any(|m| message.contains(m))
}

/// How the replay goes on after a failure: a statement that failed may have
/// been meant to create what later statements use, so later "no such table"
/// errors would only echo the first one. After such a failure only errors
/// that cannot be echoes (syntax errors, DO-rule violations) are reported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    Degraded,
}

fn is_syntax_error(message: &str) -> bool {
    message.contains("syntax error")
        || message.starts_with("unrecognized token")
        || message.starts_with("incomplete input")
}

/// SQLite's message and, for a syntax error, the byte offset in the
/// statement it points at.
fn sqlite_message(error: &rusqlite::Error) -> (String, Option<usize>) {
    match error {
        rusqlite::Error::SqlInputError { msg, offset, .. } => {
            (msg.clone(), usize::try_from(*offset).ok())
        }
        rusqlite::Error::SqliteFailure(_, Some(msg)) if !msg.is_empty() => (msg.clone(), None),
        rusqlite::Error::SqliteFailure(e, _) => (e.to_string(), None),
        other => (other.to_string(), None),
    }
}

/// A foreign-key failure in a migration that asked to switch the keys off:
/// the failure exists only because the pragma is a no-op in a transaction.
fn foreign_keys_off(replayer: &Replayer, message: &str) -> bool {
    message.contains("FOREIGN KEY constraint failed") && replayer.asked_foreign_keys_off()
}

/// Replays `sources` in order, each migration in its own transaction as the
/// executor will run it, and returns every problem found (empty = valid).
/// Each text is split with [`crate::split_statements`], as at load time.
pub fn replay(sources: &[ReplaySource<'_>], tracking: &str) -> Vec<Finding> {
    replay_sources(sources, tracking).findings
}

/// [`replay`], and the [`BaselineScript`] of the chain when the replay found
/// nothing: what [`crate::check_dir`] puts in [`crate::Plan::baseline`],
/// for texts with any names (the corpus test). A chain with findings has
/// none (`NoBaseline::Because("the chain has errors")`).
pub fn replay_baseline(
    sources: &[ReplaySource<'_>],
    tracking: &str,
) -> (Vec<Finding>, Result<BaselineScript, NoBaseline>) {
    let spans: Vec<Vec<PlannedStatement>> = sources.iter().map(|s| spans(s.text)).collect();
    let scripts = scripts_of(sources, &spans);
    let (outcome, replayer) = replay_scripts(&scripts, tracking);
    let baseline = match replayer {
        Some(replayer) if outcome.findings.is_empty() => {
            let migrations: Vec<crate::baseline::Replayed<'_>> = scripts
                .iter()
                .zip(&outcome.unreproducible)
                .zip(&outcome.clock)
                .map(
                    |((script, unreproducible), clock)| crate::baseline::Replayed {
                        script: *script,
                        unreproducible: unreproducible.as_deref(),
                        clock: clock.as_deref(),
                    },
                )
                .collect();
            crate::baseline::derive(&replayer, &migrations, tracking)
        }
        _ => Err(NoBaseline::Because("the chain has errors".to_owned())),
    };
    (outcome.findings, baseline)
}

/// [`replay`], with everything it found and ran (for tests).
#[cfg(test)]
pub(crate) fn replay_outcome(sources: &[ReplaySource<'_>], tracking: &str) -> Outcome {
    replay_sources(sources, tracking)
}

/// Replays `scripts`, a chain that replayed without a finding, again on a
/// new database whose clock stands at `unix_ms`; the first finding, in
/// words, when this replay has one.
pub(crate) fn replay_at(
    scripts: &[Script<'_>],
    tracking: &str,
    unix_ms: i64,
) -> Result<Replayer, String> {
    let replayer = Replayer::at(tracking, unix_ms)?;
    let outcome = run_as(&replayer, scripts, tracking, Pass::SecondInstant);
    match outcome.findings.first() {
        Some(finding) => Err(finding.diagnostic.to_string()),
        None => Ok(replayer),
    }
}

/// [`replay`], with everything it found and ran.
fn replay_sources(sources: &[ReplaySource<'_>], tracking: &str) -> Outcome {
    replay_on(sources, tracking).0
}

/// [`replay_sources`], with the replay database it ran on (`None` when it
/// could not be opened).
fn replay_on(sources: &[ReplaySource<'_>], tracking: &str) -> (Outcome, Option<Replayer>) {
    let spans: Vec<Vec<PlannedStatement>> = sources.iter().map(|s| spans(s.text)).collect();
    replay_scripts(&scripts_of(sources, &spans), tracking)
}

/// `sources` as the replay runs them, split into `spans`.
fn scripts_of<'a>(
    sources: &[ReplaySource<'a>],
    spans: &'a [Vec<PlannedStatement>],
) -> Vec<Script<'a>> {
    sources
        .iter()
        .zip(spans)
        .zip(1..)
        .map(|((s, statements), version)| Script {
            display_path: s.display_path,
            version,
            text: s.text,
            statements,
        })
        .collect()
}

/// [`replay_on`] of split scripts.
fn replay_scripts(scripts: &[Script<'_>], tracking: &str) -> (Outcome, Option<Replayer>) {
    match Replayer::new(tracking) {
        Ok(replayer) => (run(&replayer, scripts, tracking), Some(replayer)),
        Err(e) => (
            Outcome {
                findings: vec![Finding {
                    diagnostic: Diagnostic::plain(e),
                    rule: None,
                    migration: 0,
                }],
                ..Outcome::default()
            },
            None,
        ),
    }
}

/// How many times the replay runs a batch statement at most before it
/// refuses it as one that never ends. A batch meant for a real object
/// changes a bounded number of rows per repetition (e.g. `LIMIT 1000`),
/// and the replay's tables hold only what the chain's own statements put
/// there, so a batch that ends needs a handful of repetitions here; one
/// that still changes rows after this many (each repetition cheap on the
/// replay's few rows, all within one statement's step budget) most likely
/// changes rows it matches again, which on a real object would repeat
/// forever.
pub(crate) const MAX_BATCH_REPETITIONS: u32 = 10_000;

#[cfg(test)]
thread_local! {
    /// The repetitions of each batch this thread's replays ran, in order,
    /// the one that changed no row included.
    pub(crate) static BATCH_REPETITIONS: std::cell::RefCell<Vec<u32>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// How many times this thread ran [`run`]: the verdict cache's tests
    /// prove a hit replays nothing.
    pub(crate) static RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// How many migrations this thread replayed: a check resumed from a
    /// cached image replays only the new ones.
    pub(crate) static REPLAYED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Replays `scripts` on `replayer`; see [`replay`]. Each migration runs in
/// its own transaction: its statements one by one
/// ([`Driver::statement`]), then what the executor does before the commit
/// ([`Driver::settle`]), then the commit ([`Driver::commit`]).
pub(crate) fn run(replayer: &Replayer, scripts: &[Script<'_>], tracking: &str) -> Outcome {
    run_as(replayer, scripts, tracking, Pass::Primary)
}

/// Which replay of a chain [`run_as`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The check's replay ([`run`]): counted in [`RUNS`] and [`REPLAYED`]
    /// for tests, and each migration classified (see [`compat`]).
    Primary,
    /// The replay at a second instant ([`replay_at`]), only to derive a
    /// baseline: it runs in full, cache or not, so it is not counted, and
    /// it does not classify again what the primary replay classified.
    SecondInstant,
}

/// [`run`], or the replay at a second instant (see [`Pass`]).
fn run_as(replayer: &Replayer, scripts: &[Script<'_>], tracking: &str, pass: Pass) -> Outcome {
    let primary = pass == Pass::Primary;
    #[cfg(test)]
    if primary {
        RUNS.with(|runs| runs.set(runs.get() + 1));
    }
    let mut driver = Driver {
        replayer,
        scripts,
        tracking,
        outcome: Outcome::default(),
        mode: Mode::Normal,
        classify: primary,
        schema: compat::Snapshot::default(),
        shapes: compat::Shapes::default(),
    };
    if primary {
        driver.schema = compat::Snapshot::take(replayer, tracking, &mut driver.shapes);
    }
    for (index, script) in scripts.iter().enumerate() {
        #[cfg(test)]
        if primary {
            REPLAYED.with(|replayed| replayed.set(replayed.get() + 1));
        }
        if let Err(e) = replayer.begin_migration(tracking, script.version) {
            let diagnostic = Diagnostic::plain(format!("replay failed to begin: {e}"));
            driver.push(index, diagnostic, None);
            break;
        }
        for problem in crate::directive::directive_problems(script.text, script.statements) {
            let diagnostic = Diagnostic::at(
                script.display_path,
                problem.line,
                problem.column,
                problem.message,
            )
            .help(problem.help);
            driver.push(index, diagnostic, None);
        }
        let mut migration = Migration::new(script.statements.len());
        // A failed migration fails the build: judging it would tell nothing.
        let judge = primary && driver.mode == Mode::Normal;
        // The schema each batch's phases run over, with the statements
        // committed before it: what older code meets while the batch runs.
        let mut at_batches: Vec<(compat::Snapshot, usize)> = Vec::new();
        for stmt in script.statements {
            if judge && stmt.batch && driver.mode == Mode::Normal {
                let schema = compat::Snapshot::take(replayer, tracking, &mut driver.shapes);
                at_batches.push((schema, migration.done.len()));
            }
            if driver.statement(index, stmt, &mut migration) == Next::Stop {
                break;
            }
        }
        let Migration {
            done,
            unreproducible,
            clock,
            pending_drops,
            mut changes,
            cost_hints,
        } = migration;
        driver.outcome.cost_hints.push(cost_hints);
        driver.outcome.clock.push(clock);
        let at_risk = driver.settle(index, pending_drops);
        driver.outcome.checks.push(at_risk);
        driver.commit(index);
        if judge && driver.mode == Mode::Normal {
            let before = std::mem::take(&mut driver.schema);
            let after = compat::Snapshot::take(replayer, tracking, &mut driver.shapes);
            let statements = compat::Statements {
                text: script.text,
                ran: &done,
            };
            let mut schema_changes = compat::diff(&before, &after, &driver.shapes, &statements);
            schema_changes.append(&mut changes);
            driver.breaking_before_batch(index, &before, &at_batches, &done);
            driver.schema = after;
            driver.outcome.changes.push(schema_changes);
        } else {
            driver.outcome.changes.push(Vec::new());
        }
        driver.outcome.ran.push(done);
        driver.outcome.unreproducible.push(unreproducible);
    }
    driver.outcome
}

/// `table` as a range batch directive names it: bare when it is a plain
/// identifier, else double-quoted.
fn directive_name(table: &str) -> String {
    let plain = table
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        table.to_owned()
    } else {
        format!("\"{table}\"")
    }
}

/// A statement's parameters as a finding lists them: `:name`, or `?n` for
/// a nameless one.
fn shown_parameters(names: &[Option<String>]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("`{}`", n.clone().unwrap_or_else(|| format!("?{}", i + 1))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A range batch's slice as the replay read it (see `tracking::slice`).
#[derive(Clone, Copy)]
struct Slice {
    /// Its first rowid (`:from`), `None` when it is empty.
    first: Option<i64>,
    /// Its last rowid (`:to`).
    last: Option<i64>,
    /// Whether it holds the limit's rows, so more may follow.
    full: bool,
}

/// Whether the rest of a migration's statements run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Go,
    /// SQLite rolled the migration's transaction back: what follows would
    /// run outside it and only echo.
    Stop,
}

/// What the replay keeps about the migration it is running.
struct Migration {
    /// The statements that ran to completion.
    done: Vec<PlannedStatement>,
    /// The first thing it did that a build cannot reproduce.
    unreproducible: Option<String>,
    /// The first value it may have read from the clock.
    clock: Option<String>,
    /// Its drops and renames of referenced tables (see [`drops`]).
    pending_drops: PendingDrops,
    /// What its data statements removed (see [`compat::data_changes`]).
    changes: Vec<compat::Change>,
    /// Its statements whose time grows with an object's rows.
    cost_hints: Vec<String>,
}

impl Migration {
    fn new(statements: usize) -> Self {
        Self {
            done: Vec::with_capacity(statements),
            unreproducible: None,
            clock: None,
            pending_drops: PendingDrops::default(),
            changes: Vec::new(),
            cost_hints: Vec::new(),
        }
    }
}

/// The replay of a chain: the findings so far and whether later errors
/// could be echoes of an earlier one ([`Mode`]).
struct Driver<'r, 's> {
    replayer: &'r Replayer,
    scripts: &'s [Script<'s>],
    tracking: &'s str,
    outcome: Outcome,
    mode: Mode,
    /// Whether migrations are classified ([`Pass::Primary`]).
    classify: bool,
    /// The schema before the migration being run.
    schema: compat::Snapshot,
    /// The shapes of the definitions seen so far.
    shapes: compat::Shapes,
}

impl Driver<'_, '_> {
    /// Records a finding of migration `index`.
    fn push(&mut self, index: usize, mut diagnostic: Diagnostic, rule: Option<Rule>) {
        diagnostic.rule = rule.map(Rule::name);
        self.outcome.findings.push(Finding {
            diagnostic,
            rule,
            migration: index,
        });
    }

    /// A finding at a statement of migration `index`.
    fn at(&self, index: usize, sql: &str, line: u32, column: u32, message: String) -> Diagnostic {
        Diagnostic::at(self.scripts[index].display_path, line, column, message).statement(sql)
    }

    /// Checks and runs one statement of migration `index`: the size limit
    /// and the textual rules first, then SQLite under the authorizer.
    fn statement(
        &mut self,
        index: usize,
        stmt: &PlannedStatement,
        migration: &mut Migration,
    ) -> Next {
        let source = self.scripts[index];
        let sql = stmt.sql(source.text);
        let (line, col) = (stmt.line, stmt.column);
        if sql.len() > MAX_STATEMENT_BYTES {
            let message = format!(
                "statement is {} bytes, over the Durable Object limit of {MAX_STATEMENT_BYTES} bytes",
                sql.len()
            );
            let diagnostic = self.at(index, sql, line, col, message);
            self.push(
                index,
                diagnostic.help(advice::STATEMENT_TOO_LONG),
                Some(Rule::Limit),
            );
            if textual::defines_schema(sql) {
                self.mode = Mode::Degraded;
            }
            return Next::Go;
        }
        if let Some(denial) = textual::denial(sql, self.tracking) {
            let diagnostic = self.at(index, sql, line, col, denial.message);
            self.push(index, diagnostic.help(denial.help), Some(denial.rule));
            self.mode = Mode::Degraded;
            return Next::Go;
        }
        // A batch's parameters and a range batch's table, checked before it
        // runs; a range batch's first execution is bound to its first slice.
        let first_slice = if stmt.batch {
            self.end_phase();
            match self.batch_start(index, stmt) {
                Ok(first) => first,
                Err(()) => return Next::Go,
            }
        } else {
            // Run with nothing bound: each parameter is NULL (a range batch
            // whose directive line is mistyped would change no row).
            // Every parameter starts with one of `?:@$`: a statement with
            // none of them needs no second prepare beside its run's.
            let maybe = sql.contains(['?', ':', '@', '$']);
            if let Some(names) = maybe
                .then(|| self.replayer.parameters(sql))
                .flatten()
                .filter(|n| !n.is_empty())
            {
                let message = format!(
                    "a statement outside a range batch takes no parameters, found {}",
                    shown_parameters(&names)
                );
                let diagnostic = self.at(index, sql, line, col, message);
                self.push(index, diagnostic.help(advice::STATEMENT_PARAMETERS), None);
            }
            None
        };
        let params = first_slice.map_or_else(Vec::new, |s| vec![s.first, s.last]);
        let replayer = self.replayer;
        // An empty first slice: the executor does not run the statement,
        // so the replay checks it and undoes what it did.
        let undo = first_slice.is_some_and(|s| s.first.is_none())
            && replayer
                .trusted("SAVEPOINT durable_schema_empty_slice")
                .is_ok();
        let pending_drops = &mut migration.pending_drops;
        let ran = replayer.run_bound(sql, &params, |table| pending_drops.judge(replayer, table));
        if undo && replayer.in_transaction() {
            let end = if ran.is_ok() {
                "ROLLBACK TO durable_schema_empty_slice; RELEASE durable_schema_empty_slice"
            } else {
                "RELEASE durable_schema_empty_slice"
            };
            let _ = replayer.trusted(end);
        }
        match ran {
            Ok(dropped) => {
                let position = Position {
                    line,
                    column: col,
                    statement: sql.to_owned(),
                };
                let renamed = durable_schema_workerd::rules::rename_target(sql);
                if let Some(target) = &renamed {
                    replayer.touch(target);
                }
                let writes = replayer.row_writes();
                if self.classify && !writes.is_empty() {
                    let found =
                        compat::data_changes(&self.schema, &self.shapes, &writes, &dropped, stmt);
                    migration.changes.extend(found);
                }
                pending_drops.ran(&dropped, &position, renamed);
                if migration.unreproducible.is_none() || migration.clock.is_none() {
                    let found = replayer.unreproducible(sql);
                    let at = |what| format!("{}:{line}:{col} {what}", source.display_path);
                    if migration.unreproducible.is_none() {
                        migration.unreproducible = found.unreproducible.map(at);
                    }
                    if migration.clock.is_none() {
                        migration.clock = found.clock.map(at);
                    }
                }
                if let Some((what, batchable)) = replayer.cost(sql) {
                    let batchable = batchable.filter(|_| replayer.is_data_statement());
                    let at = format!("{}:{line}:{col}", source.display_path);
                    let remedy = if stmt.batch {
                        ", as a batch (a transaction per repetition)"
                    } else if let Some(table) = &batchable {
                        &format!(
                            "; on a large object, make it a batch, e.g. `-- durable-schema: batch over {} limit 10000` (docs/batches.md)",
                            directive_name(table)
                        )
                    } else {
                        ""
                    };
                    migration.cost_hints.push(format!("{at} {what}{remedy}"));
                }
                if stmt.batch {
                    if let Next::Stop = self.batch(index, stmt, first_slice) {
                        return Next::Stop;
                    }
                }
                migration.done.push(*stmt);
                Next::Go
            }
            Err(failure) => {
                pending_drops.failed();
                self.failed(index, stmt, failure)
            }
        }
    }

    /// Refuses the breaking changes that migration `index` commits before
    /// one of its batches: `at_batches` holds the schema each batch starts
    /// over and how many statements of `done` ran before it. Those phases
    /// commit while the tracking row still names the previous version, so
    /// code of that version (a rollback while the batch runs) takes its
    /// fast path and serves over a schema its queries no longer match,
    /// with no `incompatible` protection (see `docs/batches.md`). The
    /// schema itself is compared, not the statements, so a change undone
    /// after the batch is refused too; additive and destructive changes
    /// break no older code, and the line `-- durable-schema: breaking`
    /// does not change the order. One error per statement the changes are
    /// placed at (among those before the batch), listing its findings.
    fn breaking_before_batch(
        &mut self,
        index: usize,
        before: &compat::Snapshot,
        at_batches: &[(compat::Snapshot, usize)],
        done: &[PlannedStatement],
    ) {
        let script = self.scripts[index];
        let Some(last) = script.statements.iter().rev().find(|s| s.batch) else {
            return;
        };
        let mut refused: Vec<((u32, u32), Vec<String>)> = Vec::new();
        for (schema, ran) in at_batches {
            let statements = compat::Statements {
                text: script.text,
                ran: &done[..(*ran).min(done.len())],
            };
            for change in compat::diff(before, schema, &self.shapes, &statements) {
                if change.kind.class() != compat::Class::Breaking {
                    continue;
                }
                let at = (change.line, change.column);
                let summary = change.summary();
                match refused.iter_mut().find(|(position, _)| *position == at) {
                    Some((_, list)) if list.contains(&summary) => {}
                    Some((_, list)) => list.push(summary),
                    None => refused.push((at, vec![summary])),
                }
            }
        }
        refused.sort_by_key(|(position, _)| *position);
        for ((line, column), list) in refused {
            let message = format!(
                "this breaking change commits before the migration's last batch, while code built for version {} still runs over it: {}",
                script.version.saturating_sub(1),
                list.join(", ")
            );
            let help = advice::breaking_before_batch(last.line);
            let mut diagnostic =
                Diagnostic::at(script.display_path, line, column, message).help(help);
            if let Some(stmt) = script
                .statements
                .iter()
                .find(|s| (s.line, s.column) == (line, column))
            {
                diagnostic = diagnostic.statement(stmt.sql(script.text));
            }
            self.push(index, diagnostic, None);
        }
    }

    /// Runs the batch statement `stmt` of migration `index`, which just ran
    /// once, again and again as the executor will, until a repetition
    /// changes no row; refuses it when it is no data statement, or when
    /// it still changes rows after [`MAX_BATCH_REPETITIONS`].
    fn batch(&mut self, index: usize, stmt: &PlannedStatement, first: Option<Slice>) -> Next {
        let sql = stmt.sql(self.scripts[index].text);
        let (line, col) = (stmt.line, stmt.column);
        if !self.replayer.is_data_statement() {
            let message = format!(
                "a batch must be an `INSERT`, `UPDATE`, `DELETE` or `REPLACE` statement, not `{}`",
                textual::first_word(sql)
            );
            let diagnostic = self.at(index, sql, line, col, message);
            self.push(index, diagnostic.help(advice::BATCH_NOT_DML), None);
            return Next::Go;
        }
        if let (Some(over), Some(first)) = (stmt.over, first) {
            return self.range_batch(index, stmt, over, first);
        }
        let mut repetitions: u32 = 1;
        let mut changed = self.replayer.changes();
        while changed > 0 {
            if repetitions >= MAX_BATCH_REPETITIONS {
                let message = format!(
                    "the batch still changes rows after {MAX_BATCH_REPETITIONS} repetitions on the replay's data"
                );
                let diagnostic = self.at(index, sql, line, col, message);
                self.push(index, diagnostic.help(advice::BATCH_ENDLESS), None);
                return Next::Go;
            }
            match self.replayer.repeat(sql) {
                Ok(n) => {
                    changed = n;
                    repetitions += 1;
                }
                Err(failure) if sandbox::interrupted(&failure) => {
                    let message = format!(
                        "the batch still changes rows after {repetitions} repetitions, when the replay's step budget ran out"
                    );
                    return self.out_of_steps(index, stmt, message, advice::BATCH_ENDLESS);
                }
                Err(failure) => return self.failed(index, stmt, failure),
            }
        }
        #[cfg(test)]
        BATCH_REPETITIONS.with(|r| r.borrow_mut().push(repetitions));
        Next::Go
    }

    /// Where the executor commits the phase before a batch: `PRAGMA
    /// defer_foreign_keys` ends there (the commit, or the executor's
    /// `DEFER_OFF`, switches it off), so the statements after it are judged
    /// with the keys checked at once, as they run (a referenced table
    /// dropped after the batch fails at its `DROP` on an object with child
    /// rows, whatever a pragma before the batch asked).
    fn end_phase(&self) {
        if self.mode == Mode::Normal && self.replayer.in_transaction() {
            let _ = self.replayer.trusted("PRAGMA defer_foreign_keys = OFF");
        }
    }

    /// Checks the batch `stmt` of migration `index` before it runs: a plain
    /// batch has no parameters; a range batch has exactly `:from` and
    /// `:to`, in that order, and walks an ordinary rowid table that exists
    /// here (no view, no `WITHOUT ROWID` table, no column named `rowid`).
    /// Reports every problem (`Err` then) or returns a range batch's first
    /// slice, read as the executor reads it.
    fn batch_start(&mut self, index: usize, stmt: &PlannedStatement) -> Result<Option<Slice>, ()> {
        let source = self.scripts[index];
        let sql = stmt.sql(source.text);
        let (line, col) = (stmt.line, stmt.column);
        let mut problems: Vec<Diagnostic> = Vec::new();
        if let Some(names) = self.replayer.parameters(sql) {
            let wanted = [Some(":from".to_owned()), Some(":to".to_owned())];
            if stmt.over.is_none() && !names.is_empty() {
                let message = format!(
                    "a plain batch takes no parameters, found {}",
                    shown_parameters(&names)
                );
                problems.push(
                    self.at(index, sql, line, col, message)
                        .help(advice::BATCH_PARAMETERS),
                );
            } else if stmt.over.is_some() && names != wanted {
                let found = if names.is_empty() {
                    "none".to_owned()
                } else {
                    shown_parameters(&names)
                };
                let message = format!(
                    "a range batch takes the parameters `:from` and `:to`, in that order, found {found}"
                );
                problems.push(
                    self.at(index, sql, line, col, message)
                        .help(advice::BATCH_OVER_PARAMETERS),
                );
            }
        }
        let mut first = None;
        if let Some(over) = stmt.over {
            let name = over.table(source.text);
            let (tline, tcol) = line_col(source.text, over.table_start);
            let refuse = |message: String, help: &'static str| {
                Diagnostic::at(source.display_path, tline, tcol, message).help(help)
            };
            match self.replayer.table_shape(name) {
                Ok(None) => problems.push(refuse(
                    format!("the batch's table `{name}` does not exist at this point of the chain"),
                    advice::BATCH_OVER_TABLE,
                )),
                Ok(Some((kind, _, _))) if kind != "table" => problems.push(refuse(
                    format!("the batch's table `{name}` is a {kind}, not a table with rowids"),
                    advice::BATCH_OVER_TABLE,
                )),
                Ok(Some((_, true, _))) => problems.push(refuse(
                    format!("the batch's table `{name}` is a `WITHOUT ROWID` table, which has no rowids to slice"),
                    advice::BATCH_OVER_NO_ROWID,
                )),
                Ok(Some((_, _, true))) => problems.push(refuse(
                    format!("the batch's table `{name}` has a column named `rowid`, which hides the rowids the slices follow"),
                    advice::BATCH_OVER_NO_ROWID,
                )),
                Ok(Some(_)) if problems.is_empty() => {
                    match self.replayer.slice(name, over.limit, None) {
                        Ok((first_id, last, full)) => {
                            first = Some(Slice {
                                first: first_id,
                                last,
                                full,
                            })
                        }
                        Err(e) => problems.push(refuse(
                            format!("reading the first slice of `{name}` failed: {e}"),
                            advice::BATCH_OVER_TABLE,
                        )),
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => problems.push(refuse(
                    format!("reading the shape of `{name}` failed: {e}"),
                    advice::BATCH_OVER_TABLE,
                )),
            }
        }
        if problems.is_empty() {
            return Ok(first);
        }
        for diagnostic in problems {
            self.push(index, diagnostic, None);
        }
        Err(())
    }

    /// Runs the rest of the range batch `stmt` of migration `index` as the
    /// executor does, after its `first` slice: the next slice past the
    /// cursor (at most `over.limit` rows), the statement bound to its first
    /// and last rowid in a savepoint of its own, until a slice is short;
    /// an empty slice runs nothing. Refuses a batch still finding full
    /// slices after [`MAX_BATCH_REPETITIONS`] (it adds rows past its own
    /// cursor).
    fn range_batch(
        &mut self,
        index: usize,
        stmt: &PlannedStatement,
        over: durable_schema_runtime::packed::Over,
        first: Slice,
    ) -> Next {
        let text = self.scripts[index].text;
        let sql = stmt.sql(text);
        let (line, col) = (stmt.line, stmt.column);
        let name = over.table(text);
        let mut repetitions: u32 = 1;
        let (mut full, mut cursor) = (first.full, first.last);
        while full {
            if repetitions >= MAX_BATCH_REPETITIONS {
                let message = format!(
                    "the range batch still finds full slices of `{name}` after {MAX_BATCH_REPETITIONS} repetitions on the replay's data"
                );
                let diagnostic = self.at(index, sql, line, col, message);
                self.push(index, diagnostic.help(advice::BATCH_OVER_ENDLESS), None);
                return Next::Go;
            }
            let (from, to, more) = match self.replayer.slice(name, over.limit, cursor) {
                Ok(slice) => slice,
                Err(e) => {
                    let message = format!("reading the next slice of `{name}` failed: {e}");
                    let diagnostic = self.at(index, sql, line, col, message);
                    self.push(index, diagnostic.help(advice::BATCH_OVER_TABLE), None);
                    return Next::Go;
                }
            };
            repetitions += 1;
            full = more;
            if from.is_none() {
                break;
            }
            cursor = to;
            match self.replayer.repeat_bound(sql, &[from, to]) {
                Ok(_) => {}
                Err(failure) if sandbox::interrupted(&failure) => {
                    let message = format!(
                        "the range batch still finds full slices of `{name}` after {repetitions} repetitions, when the replay's step budget ran out"
                    );
                    return self.out_of_steps(index, stmt, message, advice::BATCH_OVER_ENDLESS);
                }
                Err(failure) => return self.failed(index, stmt, failure),
            }
        }
        #[cfg(test)]
        BATCH_REPETITIONS.with(|r| r.borrow_mut().push(repetitions));
        Next::Go
    }

    /// Refuses the batch `stmt` of migration `index` whose repetition ran
    /// out of the replay's step budget, with `message` and `help`. An
    /// interrupted statement may have rolled the whole transaction back:
    /// then the replay cannot go on from there.
    fn out_of_steps(
        &mut self,
        index: usize,
        stmt: &PlannedStatement,
        message: String,
        help: &'static str,
    ) -> Next {
        let sql = stmt.sql(self.scripts[index].text);
        let diagnostic = self.at(index, sql, stmt.line, stmt.column, message);
        self.push(index, diagnostic.help(help), None);
        if !self.replayer.in_transaction() {
            self.mode = Mode::Degraded;
            return Next::Stop;
        }
        Next::Go
    }

    /// Reports a statement SQLite or the authorizer refused.
    fn failed(&mut self, index: usize, stmt: &PlannedStatement, failure: Failure) -> Next {
        let source = self.scripts[index];
        let sql = stmt.sql(source.text);
        let (line, col) = (stmt.line, stmt.column);
        let Failure { error, denial } = failure;
        if let Some(denial) = denial {
            let rule = denial.rule;
            let diagnostic = self.at(index, sql, line, col, denial.message);
            self.push(index, diagnostic.help(denial.help), Some(rule));
            // Refused transaction, pragma and data statements change no
            // schema, so what follows is still checked in full.
            if !matches!(rule, Rule::Transaction | Rule::Pragma) && textual::defines_schema(sql) {
                self.mode = Mode::Degraded;
            }
            return Next::Go;
        }
        let (message, offset) = sqlite_message(&error);
        let syntax = is_syntax_error(&message);
        if self.mode == Mode::Degraded && !syntax {
            return Next::Go;
        }
        let (eline, ecol) = match offset {
            Some(off) => line_col(source.text, stmt.start + off),
            None => (line, col),
        };
        let rule = if foreign_keys_off(self.replayer, &message) {
            Some(Rule::ForeignKeysOff)
        } else {
            limit_rule(&message).then_some(Rule::Limit)
        };
        let mut diag = self.at(index, sql, eline, ecol, message.clone());
        let created_later = |name: &str| {
            self.scripts
                .iter()
                .skip(index + 1)
                .find(|s| sqlparser_hint::creates(s.statements.iter().map(|t| t.sql(s.text)), name))
                .map(|s| s.display_path)
        };
        if let Some(help) = advice::for_sqlite_error(&message, sql, rule, created_later) {
            diag = diag.help(help);
        }
        if syntax {
            if let Some(note) = sqlparser_hint::sqlparser_note(sql, line, col) {
                diag.note = Some(format!("sqlparser: {note}"));
            }
        }
        self.push(index, diag, rule);
        // A failed INSERT or UPDATE leaves the schema as the author meant
        // it; only a failed CREATE / ALTER / DROP can echo later.
        if textual::defines_schema(sql) {
            self.mode = Mode::Degraded;
        }
        if !self.replayer.in_transaction() {
            // SQLite rolled the whole transaction back (an interrupted
            // statement, `INSERT OR ROLLBACK`, `RAISE(ROLLBACK)`).
            self.mode = Mode::Degraded;
            return Next::Stop;
        }
        Next::Go
    }

    /// What the executor does at the end of migration `index`, before its
    /// commit: drops of referenced tables left unsettled, and the
    /// foreign-key check of the tables at risk, which it returns.
    fn settle(&mut self, index: usize, pending_drops: PendingDrops) -> Vec<String> {
        if self.mode != Mode::Normal || !self.replayer.in_transaction() {
            return Vec::new();
        }
        let path = self.scripts[index].display_path;
        for (denial, at) in pending_drops.unsettled(self.replayer) {
            let diag =
                Diagnostic::at(path, at.line, at.column, denial.message).statement(&at.statement);
            self.push(index, diag.help(denial.help), Some(denial.rule));
        }
        let at_risk = foreign_keys::tables_at_risk(self.replayer);
        if let Some(v) = foreign_keys::check(self.replayer, &at_risk) {
            let row = v
                .rowid
                .map_or_else(|| "a row".to_owned(), |r| format!("row {r}"));
            let diag = Diagnostic::file(
                path,
                format!(
                    "the migration ends with a broken reference: {row} of `{}` points at a missing row of `{}` (SQLite checks deferred keys only when the transaction commits)",
                    v.table, v.parent
                ),
            );
            if self.replayer.asked_foreign_keys_off() {
                self.push(
                    index,
                    diag.help(advice::foreign_keys_off()),
                    Some(Rule::ForeignKeysOff),
                );
            } else {
                self.push(index, diag.help(advice::BROKEN_REFERENCE), None);
            }
        }
        at_risk
    }

    /// Commits migration `index`, reporting what fails only at the commit.
    fn commit(&mut self, index: usize) {
        if !self.replayer.in_transaction() {
            // SQLite already rolled the transaction back (an interrupted
            // statement does that): the migration's schema is gone, so what
            // follows can only echo the error already reported.
            self.mode = Mode::Degraded;
            return;
        }
        let Err(e) = self.replayer.trusted("COMMIT") else {
            return;
        };
        let (message, _) = sqlite_message(&e);
        if self.mode == Mode::Normal {
            let diag = Diagnostic::file(
                self.scripts[index].display_path,
                format!("the migration fails when its transaction commits: {message}"),
            );
            if foreign_keys_off(self.replayer, &message) {
                self.push(
                    index,
                    diag.help(advice::foreign_keys_off()),
                    Some(Rule::ForeignKeysOff),
                );
            } else {
                self.push(index, diag.help(advice::COMMIT_FAILED), None);
            }
        }
        self.mode = Mode::Degraded;
        let _ = self.replayer.trusted("ROLLBACK");
    }
}

/// The foreign-key checks the replay planned for each migration of
/// `sources` (for tests).
#[cfg(test)]
pub(crate) fn replay_checks(sources: &[ReplaySource<'_>], tracking: &str) -> Vec<Vec<String>> {
    replay_sources(sources, tracking).checks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on `files` as the migrations `m/0001_x.sql`, `m/0002_x.sql`…
    pub(super) fn with_sources<T>(files: &[&str], f: impl FnOnce(&[ReplaySource<'_>]) -> T) -> T {
        let names: Vec<String> = (1..=files.len())
            .map(|i| format!("m/{i:04}_x.sql"))
            .collect();
        let sources: Vec<ReplaySource<'_>> = files
            .iter()
            .zip(&names)
            .map(|(text, name)| ReplaySource::new(name, text))
            .collect();
        f(&sources)
    }

    pub(super) fn run(files: &[&str]) -> Vec<Finding> {
        with_sources(files, |sources| replay(sources, "migrations"))
    }

    pub(super) fn rules(files: &[&str]) -> Vec<Option<Rule>> {
        run(files).into_iter().map(|f| f.rule).collect()
    }

    /// Each migration's cost hints (see [`Replayer::cost`]).
    fn cost_hints(files: &[&str]) -> Vec<Vec<String>> {
        with_sources(files, |sources| {
            let outcome = replay_sources(sources, "migrations");
            assert!(outcome.findings.is_empty(), "{:#?}", outcome.findings);
            outcome.cost_hints
        })
    }

    /// Statements over the rows of tables that existed before their
    /// migration are marked, where they are, with what they do; the same
    /// statements over a table the migration creates, and schema-only
    /// changes, are not.
    #[test]
    fn statements_over_existing_rows_are_cost_hints() {
        let hints = cost_hints(&[
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER, w INTEGER);\n\
             UPDATE items SET w = v;\n\
             CREATE INDEX items_v ON items (v);",
            "UPDATE items SET w = v * 2 WHERE w IS NULL;\n\
             ALTER TABLE items ADD COLUMN note TEXT;\n\
             CREATE TABLE log (x, y);\n\
             DELETE FROM items WHERE v < 0;\n\
             CREATE INDEX items_w ON items (w);\n\
             INSERT INTO log (x) SELECT v FROM items;\n\
             INSERT INTO log (x) VALUES (1);\n\
             CREATE INDEX log_x ON log (x);\n\
             ALTER TABLE items ADD COLUMN k INTEGER CHECK (k IS NULL OR k > 0);\n\
             ALTER TABLE items ADD COLUMN g INTEGER AS (v * 2) NOT NULL;\n\
             ALTER TABLE items ADD COLUMN d TEXT NOT NULL DEFAULT 'check';\n\
             ALTER TABLE log ADD COLUMN z INTEGER CHECK (z > 0);",
            "CREATE TABLE items_new (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\n\
             INSERT INTO items_new (id, v) SELECT id, coalesce(v, 0) FROM items;\n\
             DROP TABLE items;\n\
             ALTER TABLE items_new RENAME TO items;\n\
             ALTER TABLE log DROP COLUMN y;\n\
             CREATE TRIGGER t AFTER INSERT ON items BEGIN UPDATE log SET x = 1; END;",
        ]);
        assert_eq!(
            hints[0],
            Vec::<String>::new(),
            "a new table's rows cost nothing"
        );
        let remedy = "; on a large object, make it a batch, e.g. `-- durable-schema: batch over items limit 10000` (docs/batches.md)";
        assert_eq!(
            hints[1],
            [
                format!("m/0002_x.sql:1:1 rewrites the rows of `items` it matches{remedy}"),
                format!("m/0002_x.sql:4:1 deletes the rows of `items` it matches{remedy}"),
                "m/0002_x.sql:5:1 builds an index over every row of `items`".to_owned(),
                format!("m/0002_x.sql:6:1 copies or reads the rows of `items`{remedy}"),
                "m/0002_x.sql:9:1 checks every row of `items` against the new column's constraint"
                    .to_owned(),
                "m/0002_x.sql:10:1 checks every row of `items` against the new column's constraint"
                    .to_owned(),
            ]
        );
        assert_eq!(
            hints[2],
            [
                format!("m/0003_x.sql:2:1 copies or reads the rows of `items`{remedy}"),
                "m/0003_x.sql:5:1 rewrites every row of `log` (`DROP COLUMN`)".to_owned(),
            ]
        );
        // A copy into a new table is no data statement a batch could
        // repeat; a batch's hint says it is one.
        let hints = cost_hints(&[
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER);",
            "CREATE TABLE copy AS SELECT * FROM items;\n\
             -- durable-schema: batch\n\
             DELETE FROM items WHERE id IN (SELECT id FROM items LIMIT 10);",
        ]);
        assert_eq!(
            hints[1],
            [
                "m/0002_x.sql:1:1 copies or reads the rows of `items`",
                "m/0002_x.sql:3:1 deletes the rows of `items` it matches, as a batch (a transaction per repetition)",
            ]
        );
    }

    /// 2,500 rows of `items`, `w` unset, and a log table.
    const ITEMS: &str =
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, w INTEGER);\n\
        CREATE TABLE log (what TEXT, n INTEGER);\n\
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)\n\
        INSERT INTO items (id, v) SELECT i, i FROM n;";

    /// Replays `files`, returning the findings, the repetitions of each
    /// batch, and the rows of `log` afterwards.
    fn batches(files: &[&str]) -> (Vec<Finding>, Vec<u32>, Vec<(String, i64)>) {
        BATCH_REPETITIONS.with(|r| r.borrow_mut().clear());
        with_sources(files, |sources| {
            let (outcome, replayer) = replay_on(sources, "migrations");
            let log = replayer
                .unwrap()
                .read(|conn| {
                    let mut stmt = conn.prepare("SELECT what, n FROM log ORDER BY rowid")?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
                .unwrap_or_default();
            let repetitions = BATCH_REPETITIONS.with(|r| r.take());
            (outcome.findings, repetitions, log)
        })
    }

    #[test]
    fn a_batch_repeats_until_it_changes_no_row_then_the_migration_goes_on() {
        let (findings, repetitions, log) = batches(&[
            ITEMS,
            "INSERT INTO log VALUES ('before', (SELECT count(*) FROM items WHERE w IS NULL));\n\
             -- durable-schema: batch\n\
             UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n\
             INSERT INTO log VALUES ('after', (SELECT count(*) FROM items WHERE w IS NULL));\n\
             INSERT INTO log VALUES ('sum', (SELECT sum(w) FROM items));",
        ]);
        assert!(findings.is_empty(), "{findings:#?}");
        // 1000, 1000 and 500 rows, then a repetition that changes none.
        assert_eq!(repetitions, [4]);
        assert_eq!(
            log,
            [
                ("before".to_owned(), 2500),
                ("after".to_owned(), 0),
                ("sum".to_owned(), 2500 * 2501),
            ]
        );
        // Every data statement qualifies, behind `WITH` too; on an empty
        // table, one run.
        let (findings, repetitions, _) = batches(&[
            ITEMS,
            "CREATE TABLE archive (id INTEGER PRIMARY KEY, v INTEGER);\n\
             -- durable-schema: batch\n\
             INSERT INTO archive SELECT id, v FROM items WHERE id NOT IN (SELECT id FROM archive) LIMIT 1000;\n\
             -- durable-schema: batch\n\
             WITH old AS (SELECT id FROM items WHERE id > 2000 LIMIT 300) DELETE FROM items WHERE id IN old;\n\
             CREATE TABLE copy (id INTEGER PRIMARY KEY, v INTEGER);\n\
             -- durable-schema: batch\n\
             INSERT INTO copy SELECT id, v FROM items WHERE id > (SELECT coalesce(max(id), 0) FROM copy) ORDER BY id LIMIT 1000;\n\
             -- durable-schema: batch\n\
             INSERT INTO copy (id, v) SELECT id, 0 FROM items WHERE id <= 10 ON CONFLICT (id) DO UPDATE SET v = excluded.v WHERE copy.v <> 0;\n\
             -- durable-schema: batch\n\
             REPLACE INTO archive SELECT id, v FROM items WHERE 0;\n\
             -- durable-schema: batch\n\
             DELETE FROM log WHERE rowid IN (SELECT rowid FROM log LIMIT 10);",
        ]);
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(repetitions, [4, 3, 3, 2, 1, 1]);
    }

    #[test]
    fn a_range_batch_runs_slice_by_slice_and_ends_by_its_cursor() {
        // 2,500 rows, slices of 1000: 1000, 1000, 500 (short: the last).
        // The filter skips rows the statement already did and every odd
        // row: a slice that changes nothing does not end the batch early.
        let (findings, repetitions, log) = batches(&[
            ITEMS,
            "UPDATE items SET w = 0 WHERE id <= 1000;\n\
             -- durable-schema: batch over items limit 1000\n\
             UPDATE items SET w = v * 2 WHERE id BETWEEN :from AND :to AND w IS NULL AND id % 2 = 0;\n\
             INSERT INTO log VALUES ('done', (SELECT count(*) FROM items WHERE w = v * 2));\n\
             INSERT INTO log VALUES ('left', (SELECT count(*) FROM items WHERE w IS NULL));",
        ]);
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(repetitions, [3]);
        assert_eq!(log, [("done".to_owned(), 750), ("left".to_owned(), 750)]);
        // A multiple of the limit takes one more, empty, slice; an empty
        // table one slice, in which the statement's work is undone (the
        // executor does not run it); a quoted name with a space.
        let (findings, repetitions, log) = batches(&[
            ITEMS,
            "CREATE TABLE \"odd name\" (x);\n\
             -- durable-schema: batch over \"odd name\" limit 7\n\
             INSERT INTO log SELECT 'empty', count(*) FROM \"odd name\" WHERE rowid BETWEEN :from AND :to OR :from IS NULL;\n\
             -- durable-schema: batch over items limit 500\n\
             INSERT INTO log SELECT 'slice', 1 - :from + :to WHERE :to IS NOT NULL;",
        ]);
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(repetitions, [1, 6]);
        assert_eq!(log, vec![("slice".to_owned(), 500); 5]);
    }

    #[test]
    fn a_range_batch_needs_a_table_with_rowids_and_its_two_parameters() {
        let (findings, repetitions, _) = batches(&[
            ITEMS,
            "CREATE VIEW recent AS SELECT * FROM items;\n\
             CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;\n\
             CREATE TABLE odd (rowid INTEGER, v);\n\
             -- durable-schema: batch over missing limit 10\n\
             UPDATE items SET w = 1 WHERE id BETWEEN :from AND :to;\n\
             -- durable-schema: batch over recent limit 10\n\
             UPDATE items SET w = 1 WHERE id BETWEEN :from AND :to;\n\
             -- durable-schema: batch over kv limit 10\n\
             UPDATE items SET w = 1 WHERE id BETWEEN :from AND :to;\n\
             -- durable-schema: batch over odd limit 10\n\
             UPDATE items SET w = 1 WHERE id BETWEEN :from AND :to;\n\
             -- durable-schema: batch over items limit 10\n\
             UPDATE items SET w = 1 WHERE id BETWEEN :to AND :from;\n\
             -- durable-schema: batch over items limit 10\n\
             UPDATE items SET w = 1 WHERE id = ?;\n\
             -- durable-schema: batch over items limit 10\n\
             UPDATE items SET w = 1 WHERE id BETWEEN :from AND :to AND v > :min;\n\
             -- durable-schema: batch\n\
             UPDATE items SET w = 1 WHERE id IN (SELECT id FROM items WHERE w IS NULL AND id > :from LIMIT 10);\n\
             -- durable-schema: batch over items limit 10\n\
             CREATE TABLE t3 AS SELECT :from AS a, :to AS b;",
        ]);
        let got: Vec<_> = findings
            .iter()
            .map(|f| (f.diagnostic.position, f.diagnostic.message.as_str()))
            .collect();
        assert_eq!(
            got[..got.len().min(8)],
            [
                (Some((4, 31)), "the batch's table `missing` does not exist at this point of the chain"),
                (Some((6, 31)), "the batch's table `recent` is a view, not a table with rowids"),
                (Some((8, 31)), "the batch's table `kv` is a `WITHOUT ROWID` table, which has no rowids to slice"),
                (Some((10, 31)), "the batch's table `odd` has a column named `rowid`, which hides the rowids the slices follow"),
                (Some((13, 1)), "a range batch takes the parameters `:from` and `:to`, in that order, found `:to`, `:from`"),
                (Some((15, 1)), "a range batch takes the parameters `:from` and `:to`, in that order, found `?1`"),
                (Some((17, 1)), "a range batch takes the parameters `:from` and `:to`, in that order, found `:from`, `:to`, `:min`"),
                (Some((19, 1)), "a plain batch takes no parameters, found `:from`"),
            ],
            "{findings:#?}"
        );
        // The last, bound and DML-checked, is no data statement.
        assert_eq!(findings.len(), 9, "{findings:#?}");
        assert!(findings[8]
            .diagnostic
            .message
            .starts_with("a batch must be an `INSERT`"));
        assert!(repetitions.is_empty(), "{repetitions:?}");
    }

    #[test]
    fn a_range_batch_that_feeds_its_own_slices_is_refused() {
        let (findings, _, _) = batches(&[
            ITEMS,
            "-- durable-schema: batch over items limit 1000\n\
             INSERT INTO items (v) SELECT v FROM items WHERE id BETWEEN :from AND :to;",
        ]);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let d = &findings[0].diagnostic;
        assert!(
            d.message
                .starts_with("the range batch still finds full slices of `items` after"),
            "{}",
            d.message
        );
        assert_eq!(d.position, Some((2, 1)));
        assert_eq!(d.help.as_deref(), Some(advice::BATCH_OVER_ENDLESS));
    }

    #[test]
    fn a_batch_that_does_not_end_is_refused() {
        let (findings, repetitions, _) = batches(&[
            ITEMS,
            "-- durable-schema: batch\n\
             UPDATE items SET v = v + 1 WHERE id IN (SELECT id FROM items LIMIT 10);\n\
             -- durable-schema: batch\n\
             UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);",
        ]);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let d = &findings[0].diagnostic;
        assert_eq!(
            d.message,
            format!("the batch still changes rows after {MAX_BATCH_REPETITIONS} repetitions on the replay's data")
        );
        assert_eq!(d.position, Some((2, 1)));
        assert_eq!(d.help.as_deref(), Some(advice::BATCH_ENDLESS));
        // The replay went on with the next batch.
        assert_eq!(repetitions, [4]);
    }

    #[test]
    fn a_batch_must_be_a_data_statement() {
        let refused = [
            ("CREATE TABLE t2 (x)", "CREATE"),
            ("CREATE TABLE t2 AS SELECT * FROM items", "CREATE"),
            ("SELECT count(*) FROM items", "SELECT"),
            ("WITH a AS (SELECT 1) SELECT * FROM a", "WITH"),
            ("DROP TABLE log", "DROP"),
            ("CREATE INDEX items_v ON items (v)", "CREATE"),
            ("PRAGMA defer_foreign_keys = ON", "PRAGMA"),
            (
                "CREATE TRIGGER tr AFTER INSERT ON items BEGIN DELETE FROM log; END",
                "CREATE",
            ),
        ];
        for (sql, word) in refused {
            let migration = format!("-- durable-schema: batch\n{sql};\n");
            let (findings, repetitions, _) = batches(&[ITEMS, &migration]);
            assert_eq!(findings.len(), 1, "{sql}: {findings:#?}");
            let d = &findings[0].diagnostic;
            assert_eq!(
                d.message,
                format!("a batch must be an `INSERT`, `UPDATE`, `DELETE` or `REPLACE` statement, not `{word}`"),
                "{sql}"
            );
            assert_eq!(d.position, Some((2, 1)), "{sql}");
            assert!(repetitions.is_empty(), "{sql}");
        }
    }

    #[test]
    fn a_breaking_change_before_the_last_batch_is_refused() {
        const BATCH: &str = "-- durable-schema: batch\n\
             UPDATE items SET w = 1 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n";
        // The rename commits with the first phase, while the tracking row
        // still names version 1: refused, even acknowledged.
        let before = format!(
            "-- durable-schema: breaking\n\
             CREATE TABLE tags (id INTEGER);\n  ALTER TABLE items RENAME COLUMN v TO v_old;\n{BATCH}"
        );
        let (findings, repetitions, _) = batches(&[ITEMS, &before]);
        assert_eq!(repetitions, [4], "the batch still ran");
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.migration, 1);
        let d = &f.diagnostic;
        assert_eq!(d.file.as_deref(), Some("m/0002_x.sql"));
        assert_eq!(d.position, Some((3, 3)));
        assert_eq!(
            d.message,
            "this breaking change commits before the migration's last batch, while code built for version 1 still runs over it: BC104 column `items.v` renamed (to `v_old`)"
        );
        let help = d.help.as_deref().unwrap_or_default();
        assert!(help.contains("after the last batch (line 5)"), "{help}");
        assert_eq!(
            d.statement.as_deref(),
            Some("ALTER TABLE items RENAME COLUMN v TO v_old")
        );

        // After the last batch it commits with the tracking row.
        let after = format!("{BATCH}ALTER TABLE items RENAME COLUMN v TO v_old;\n");
        let (findings, repetitions, _) = batches(&[ITEMS, &after]);
        assert_eq!(findings, [], "{findings:#?}");
        assert_eq!(repetitions, [4]);

        // Additive and destructive changes before a batch break no older code.
        let harmless =
            format!("ALTER TABLE items ADD COLUMN note TEXT;\nDELETE FROM log;\n{BATCH}");
        let (findings, _, _) = batches(&[ITEMS, &harmless]);
        assert_eq!(findings, [], "{findings:#?}");

        // Before the last of two batches is still before a batch.
        let between = format!(
            "{BATCH}ALTER TABLE items DROP COLUMN v;\n\
             -- durable-schema: batch\n\
             DELETE FROM log WHERE rowid IN (SELECT rowid FROM log LIMIT 10);\n"
        );
        let (findings, _, _) = batches(&[ITEMS, &between]);
        let got: Vec<_> = findings
            .iter()
            .map(|f| (f.diagnostic.position, f.diagnostic.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [(
                Some((3, 1)),
                "this breaking change commits before the migration's last batch, while code built for version 1 still runs over it: BC103 column `items.v` dropped"
            )]
        );

        // The schema the batch runs over is compared, not the statements:
        // a rename undone after the batch still broke older code meanwhile.
        let undone = format!(
            "ALTER TABLE items RENAME COLUMN v TO v_old;\n{BATCH}ALTER TABLE items RENAME COLUMN v_old TO v;\n"
        );
        let (findings, _, _) = batches(&[ITEMS, &undone]);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].diagnostic.position, Some((1, 1)));
        // An index before the batch on the column a later statement drops
        // names the same words, but commits nothing breaking.
        let index_first = format!(
            "CREATE INDEX items_w ON items (w);\n{BATCH}DROP INDEX items_w;\nALTER TABLE items DROP COLUMN w;\n"
        );
        let (findings, _, _) = batches(&[ITEMS, &index_first]);
        assert_eq!(findings, [], "{findings:#?}");
    }

    /// `PRAGMA defer_foreign_keys = ON` lasts until its phase commits: a
    /// parent table rebuilt after a batch runs in the migration's last
    /// transaction with the keys checked at once, where the `DROP` fails on
    /// any object with child rows. The replay ends the deferral where the
    /// executor commits a phase, so it judges that drop as the executor
    /// runs it; the same rebuild after a pragma of its own passes.
    #[test]
    fn deferral_ends_with_the_phase_before_a_batch() {
        const PARENT: &str = "CREATE TABLE p (id INTEGER PRIMARY KEY);\n\
             CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p (id));\n";
        const BATCH: &str = "-- durable-schema: batch\n\
             UPDATE items SET w = 1 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 1000);\n";
        const REBUILD: &str = "CREATE TABLE p_tmp AS SELECT * FROM p;\n\
             DROP TABLE p;\n\
             CREATE TABLE p (id INTEGER PRIMARY KEY, x TEXT);\n\
             INSERT INTO p (id) SELECT id FROM p_tmp;\n\
             DROP TABLE p_tmp;\n";
        let across = format!("PRAGMA defer_foreign_keys = ON;\n{BATCH}{REBUILD}");
        let (findings, repetitions, _) = batches(&[ITEMS, PARENT, &across]);
        assert_eq!(repetitions, [4], "the batch still ran");
        let rules: Vec<_> = findings.iter().map(|f| (f.migration, f.rule)).collect();
        assert_eq!(rules, [(2, Some(Rule::ReferencedDrop))], "{findings:#?}");
        assert_eq!(
            findings[0].diagnostic.position,
            Some((5, 1)),
            "{findings:#?}"
        );
        // The pragma in the same phase as the rebuild: deferred there.
        let after = format!("{BATCH}PRAGMA defer_foreign_keys = ON;\n{REBUILD}");
        let (findings, _, _) = batches(&[ITEMS, PARENT, &after]);
        assert_eq!(findings, [], "{findings:#?}");
    }

    /// A statement outside a range batch runs with nothing bound (NULL for
    /// each parameter): a range batch whose directive line is mistyped, so
    /// it is a plain comment, would run once over no rows and the migration
    /// would be recorded as applied. Refused where the parameter is.
    #[test]
    fn a_statement_outside_a_range_batch_takes_no_parameters() {
        for (text, found) in [
            (
                "-- durable-schema: batch  over items limit 1000\n\
                 UPDATE items SET w = v * 2 WHERE id BETWEEN :from AND :to;\n",
                "`:from`, `:to`",
            ),
            ("UPDATE items SET w = ?;\n", "`?1`"),
        ] {
            let (findings, repetitions, _) = batches(&[ITEMS, text]);
            assert!(repetitions.is_empty(), "{text}");
            // The mistyped directive is an error of its own as well.
            let near = text.starts_with("--");
            assert_eq!(
                findings.len(),
                1 + usize::from(near),
                "{text}: {findings:#?}"
            );
            if near {
                assert!(findings[0]
                    .diagnostic
                    .message
                    .contains("is not a directive line"));
            }
            let d = &findings[usize::from(near)].diagnostic;
            assert_eq!(
                d.message,
                format!("a statement outside a range batch takes no parameters, found {found}")
            );
            assert_eq!(d.file.as_deref(), Some("m/0002_x.sql"));
            let line = text.lines().count() as u32;
            assert_eq!(d.position.map(|(l, _)| l), Some(line), "{text}");
        }
        // In a string or a comment, `?` and `:name` are no parameters.
        let (findings, _, _) = batches(&[
            ITEMS,
            "INSERT INTO log VALUES ('what? :from', 1); -- :to ?\n",
        ]);
        assert_eq!(findings, [], "{findings:#?}");
    }

    #[test]
    fn misplaced_batch_directives_are_located_errors() {
        let f = run(&[
            "CREATE TABLE t (x);\n-- durable-schema: batch\n",
            "-- durable-schema: batch\n-- durable-schema: batch\nDELETE FROM t;",
        ]);
        type Located<'a> = (usize, Option<(u32, u32)>, &'a str);
        let got: Vec<Located<'_>> = f
            .iter()
            .map(|f| {
                (
                    f.migration,
                    f.diagnostic.position,
                    f.diagnostic.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    0,
                    Some((2, 1)),
                    "`-- durable-schema: batch` is not followed by a statement in this file"
                ),
                (
                    1,
                    Some((2, 1)),
                    "the statement at line 3:1 has a second `-- durable-schema: batch` line"
                ),
            ]
        );
        assert_eq!(f[0].diagnostic.file.as_deref(), Some("m/0001_x.sql"));
    }

    #[test]
    fn valid_chain_has_no_findings() {
        let f = run(&[
            "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE);",
            "ALTER TABLE users ADD COLUMN name TEXT; CREATE INDEX users_name ON users(name);",
            "CREATE VIRTUAL TABLE docs USING fts5(body, content='users', tokenize='porter');",
            "CREATE VIEW v AS SELECT id, sqrt(id) AS r, row_number() OVER (ORDER BY id) FROM users;",
        ]);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn do_rules_are_findings_with_their_rule() {
        assert_eq!(
            rules(&["BEGIN; CREATE TABLE t(x); COMMIT;"]),
            [Some(Rule::Transaction), Some(Rule::Transaction)]
        );
        assert_eq!(rules(&["PRAGMA journal_mode = WAL;"]), [Some(Rule::Pragma)]);
        assert_eq!(rules(&["CREATE TEMP TABLE t(x);"]), [Some(Rule::Temp)]);
        assert_eq!(
            rules(&["CREATE VIRTUAL TABLE t USING fts4(x);"]),
            [Some(Rule::Module)]
        );
        assert_eq!(
            rules(&["CREATE TABLE _cf_t(x);"]),
            [Some(Rule::ReservedName)]
        );
        assert_eq!(
            rules(&["CREATE TABLE migrations(x);"]),
            [Some(Rule::TrackingTable)]
        );
        assert_eq!(rules(&["SELECT sqlite_version();"]), [Some(Rule::Function)]);
        assert_eq!(rules(&["ATTACH 'x.db' AS x;"]), [Some(Rule::Attach)]);
        assert_eq!(
            rules(&["CREATE TABLE t(x); ALTER TABLE t RENAME TO \"_CF_t\";"]),
            [Some(Rule::ReservedName)]
        );
    }

    #[test]
    fn sqlite_errors_have_positions() {
        let f = run(&["CREATE TABLE t(x);\n  UPDATE t SET x = WHERE x = 1;"]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].diagnostic.position, Some((2, 20)));
        assert!(f[0]
            .diagnostic
            .message
            .contains("near \"WHERE\": syntax error"));
        assert!(
            f[0].diagnostic.to_string().contains("\n  sqlparser:"),
            "{}",
            f[0].diagnostic
        );
    }

    #[test]
    fn cascades_are_not_reported_but_independent_errors_are() {
        let f = run(&[
            "CREATE TABLE t(x INTEGER REFERENCES nope, y, y);",
            "CREATE INDEX i ON t(x);",
            "BEGIN;",
            "SELEC 1;",
        ]);
        let got: Vec<(usize, Option<Rule>)> = f.iter().map(|f| (f.migration, f.rule)).collect();
        assert_eq!(
            got,
            [(0, None), (2, Some(Rule::Transaction)), (3, None)],
            "{f:#?}"
        );
    }

    #[test]
    fn a_failed_data_statement_does_not_hide_later_errors() {
        let f = run(&[
            "CREATE TABLE u(id INTEGER PRIMARY KEY); INSERT INTO u VALUES (1), (1);",
            "CREATE TABLE v(x);",
            "CREATE INDEX i ON u(nosuch);",
        ]);
        let got: Vec<usize> = f.iter().map(|f| f.migration).collect();
        assert_eq!(got, [0, 2], "{f:#?}");
    }

    #[test]
    fn later_migration_is_named_in_the_help() {
        let f = run(&["CREATE INDEX i ON posts(x);", "CREATE TABLE posts(x);"]);
        let help = f[0].diagnostic.help.clone().unwrap_or_default();
        assert!(help.contains("m/0002_x.sql"), "{help}");
    }

    #[test]
    fn foreign_keys_are_on_and_checked_before_commit() {
        // Immediate keys fail at the statement; deferred ones at the
        // migration's foreign-key check, naming the row.
        let f = run(&[
            "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id));",
            "INSERT INTO c VALUES (41);",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO c VALUES (42);",
        ]);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f[0]
            .diagnostic
            .message
            .contains("FOREIGN KEY constraint failed"));
        assert!(
            f[1].diagnostic
                .message
                .contains("row 1 of `c` points at a missing row of `p`"),
            "{f:#?}"
        );
    }

    pub(super) const PARENT_AND_CHILD: &str = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id)); INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 1);";

    #[test]
    fn a_transaction_rolled_back_by_sqlite_ends_the_migration_without_echoes() {
        let f = run(&["CREATE TABLE t(x UNIQUE); INSERT INTO t VALUES (1); INSERT OR ROLLBACK INTO t VALUES (1); CREATE INDEX i ON t(x);"]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].diagnostic.message.contains("UNIQUE constraint failed"),
            "{f:#?}"
        );
    }

    #[test]
    fn foreign_keys_off_failing_at_commit() {
        let f = run(&[
            PARENT_AND_CHILD,
            "PRAGMA foreign_keys = false; PRAGMA defer_foreign_keys = ON; INSERT INTO c VALUES (2, 42);",
        ]);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!((f[0].migration, f[0].rule), (1, Some(Rule::ForeignKeysOff)));
        assert!(f[0].diagnostic.message.contains("commits"), "{f:#?}");
    }

    #[test]
    fn new_alter_table_forms_are_refused_with_advice() {
        // SQLite 3.53 added these; their internal functions are not on
        // workerd's list.
        for sql in [
            "CREATE TABLE t(x INTEGER); ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0);",
            "CREATE TABLE t(x INTEGER CONSTRAINT c CHECK (x > 0)); ALTER TABLE t DROP CONSTRAINT c;",
            "CREATE TABLE t(x INTEGER); ALTER TABLE t ALTER COLUMN x SET NOT NULL;",
        ] {
            let f = run(&[sql]);
            assert_eq!(f.len(), 1, "{f:#?}");
            assert_eq!(f[0].rule, Some(Rule::Function), "{sql}");
            let help = f[0].diagnostic.help.clone().unwrap_or_default();
            assert!(help.contains("rebuild the table"), "{sql}: {help}");
        }
    }

    #[test]
    fn default_clause_functions_are_allowed_however_spelt() {
        // SQLite 3.54 shows the functions of DEFAULT clauses to the
        // authorizer as typed (`CURRENT_TIMESTAMP`); matching the allowlist
        // case-insensitively keeps such chains valid on any SQLite version.
        let f = run(&[
            "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT DEFAULT CURRENT_TIMESTAMP, b TEXT DEFAULT (STRFTIME('%s', 'now')), c DEFAULT (Lower(hex(randomblob(4)))));",
            "INSERT INTO t(id) VALUES (1); INSERT INTO t DEFAULT VALUES;",
        ]);
        assert!(f.is_empty(), "{f:#?}");
    }
}
