//! **Internal crate of durable-schema. Not a public API: it is exempt from
//! semver and may change in any release. Depend on `durable-schema`.**
//!
//! All compile-time logic of durable-schema, for the `#[durable_schema]`
//! macro (and later a CLI): one code path from a directory of
//! `NNNN_description.sql` files (or a drizzle-kit directory, whose
//! `meta/_journal.json` decides the order and the names) to a checked
//! [`Plan`]. Each file is split
//! into statements once, when loaded; the chain is replayed statement by
//! statement in an in-memory SQLite configured like a Durable Object's,
//! with workerd's authorizer rules (the model of a Durable Object's SQLite
//! lives in `durable-schema-workerd`, shared with the facade's `testing`);
//! the plan holds exactly the statements
//! the replay ran, and a [`BaselineScript`] derived from the replay's final
//! database creates new objects in one transaction. A successful replay's
//! verdict is cached on disk, keyed by
//! everything that decides it, so an unchanged directory is not replayed
//! again (see [`check_dir`]).
//!
//! One entry point, [`check_dir`], whose [`Options`] say how to check (the
//! attribute's arguments, the CLI's `--locked` and `lock --replace`, where
//! the verdict cache is: [`CacheSetting`]).
//!
//! Public items, by caller:
//! - the macro: [`check_dir`], [`Options`], [`Plan`], [`PlannedMigration`],
//!   [`PlannedStatement`], [`SourceFile`], [`Diagnostic`], [`tracking`],
//!   [`BaselineScript`] and [`NoBaseline`] (how new objects are created);
//! - tests and benchmarks comparing a baseline with its chain:
//!   [`CanonicalDump`];
//! - the corpus test (`compiler/tests/corpus.rs`): [`replay`],
//!   [`replay_baseline`] ([`BaselineScript`], [`NoBaseline`], compared by
//!   [`CanonicalDump`] on databases `durable_schema_workerd::configure`
//!   sets up),
//!   [`ReplaySource`], [`Finding`], [`Rule`], [`split_statements`],
//!   [`SplitStatement`], [`normalize_text`];
//! - the facade's tests: [`checksum`], [`chain`];
//! - benchmarks and tests: [`CacheSetting`] (the verdict cache in a given
//!   directory, or none; see [`check_dir`]);
//! - the checked queries (`query!`, `query_as!`): [`Plan::head_schema`]
//!   and [`query`] (prepare against the head, describe the result);
//! - the CLI's `status` and benchmarks: [`runtime_schema`] (a plan as the
//!   runtime's `Schema` value, built at run time);
//! - the CLI (`durable-schema`): [`Options::locked`],
//!   [`Options::replace`], [`schemas_at`]
//!   ([`SchemaDump`], [`SchemaObject`]), the history lock ([`Lock`],
//!   [`LockEntry`], [`render_lock`], [`render_drizzle_lock`],
//!   [`render_lock_for`], [`LOCK_FILE`]), [`migration_name`], [`Numbering`],
//!   its own wording of a bad `--dir` ([`directory_problem`], [`DirSetting`]), the read bound it shares with
//!   the build ([`MAX_FILE_BYTES`], [`read_source`]), [`cache_place`]
//!   ([`CachePlace`], for `--verbose`).
//!
//! Everything else is private to the crate.
//!
//! ```no_run
//! use std::path::Path;
//! use durable_schema_compiler::{check_dir, Options};
//!
//! match check_dir(Path::new(env!("CARGO_MANIFEST_DIR")), "migrations", &Options::default()) {
//!     Ok(plan) => println!("schema version {}", plan.version()),
//!     Err(errors) => errors.iter().for_each(|e| eprintln!("error: {e}")),
//! }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod baseline;
// `libc::geteuid` for the owner check of the cache directory (unix).
#[allow(unsafe_code)]
mod cache;
mod diagnostic;
mod directive;
mod hash;
mod journal;
mod lock;
#[cfg(test)]
mod message_style;
pub mod query;
mod replaced;
mod replay;
mod runtime_schema;
mod schema_dump;
mod source;
mod split;

use std::path::Path;

pub use baseline::{BaselineScript, CanonicalDump, NoBaseline};
pub use diagnostic::Diagnostic;
pub use directive::{BATCH_DIRECTIVE, BATCH_OVER_DIRECTIVE, BREAKING_DIRECTIVE, MAX_BATCH_LIMIT};
pub use durable_schema_workerd::Rule;
pub use hash::{chain, checksum};
pub use lock::{render_drizzle_lock, render_lock, render_lock_for, Lock, LockEntry, LOCK_FILE};
pub use replaced::{ReplacedLink, MAX_LINKS};
pub use replay::compat::{class_of, Change, ChangeKind, Class};
pub use replay::{replay, replay_baseline, Finding, ReplaySource};
pub use runtime_schema::{pack_migrations, runtime_schema};
pub use schema_dump::{head_schema, schemas_at, SchemaDump, SchemaObject};
pub use source::{
    directory_problem, normalize_text, read_source, DirSetting, Numbering, SourceFile,
    MAX_FILE_BYTES,
};
pub use split::{encode_spans, spans, split_statements, PlannedStatement, SplitStatement};

use replay::{Outcome, Replayer, Script};
use source::{load_dir, Loaded, LoadedFile};

/// Options of the check: the attribute's arguments, and what the CLI and
/// benchmarks ask beyond them. [`check_dir`] is the one entry point; these
/// say how it checks.
///
/// ```no_run
/// use std::path::Path;
/// use durable_schema_compiler::{check_dir, CacheSetting, Options};
///
/// // `durable-schema check --locked`, without the verdict cache.
/// let options = Options::default().require_lock().with_cache(CacheSetting::Off);
/// let plan = check_dir(Path::new("."), "migrations", &options);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The tracking table's name, which migrations may not touch.
    pub table: String,
    /// Whether to derive a [`BaselineScript`] for new objects (`baseline = false`
    /// in the attribute turns it off).
    pub baseline: bool,
    /// Release gates (`durable-schema check --locked`): every migration
    /// must also be in the directory's lock, which must exist.
    pub locked: bool,
    /// `durable-schema lock --replace`: the released migration of this
    /// version may differ from its lock line, as a deliberate replacement.
    /// The plan's lock is then the one to write: that line has the file's
    /// checksum, and the old one ends its `replaces` list. The check fails
    /// when the version is not a released migration or its file is
    /// unchanged.
    pub replace: Option<u32>,
    /// Where the verdict cache is (see [`check_dir`]).
    pub cache: CacheSetting,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            table: tracking::DEFAULT_TABLE.to_owned(),
            baseline: true,
            locked: false,
            replace: None,
            cache: CacheSetting::FromEnv,
        }
    }
}

impl Options {
    /// These options with [`Options::locked`] set.
    pub fn require_lock(mut self) -> Self {
        self.locked = true;
        self
    }

    /// These options replacing the released migration of `version` (see
    /// [`Options::replace`]).
    pub fn replacing(mut self, version: u32) -> Self {
        self.replace = Some(version);
        self
    }

    /// These options with the verdict cache `cache`.
    pub fn with_cache(mut self, cache: CacheSetting) -> Self {
        self.cache = cache;
        self
    }
}

/// Where [`check_dir`] keeps its verdict cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheSetting {
    /// The directory `DURABLE_SCHEMA_CACHE` names (`off`: none), else
    /// `durable-schema/verdicts` in the user's cache directory: what the
    /// macro and the CLI use.
    #[default]
    FromEnv,
    /// No cache: always the full check, and nothing written.
    Off,
    /// This directory, which passes the same checks as the default one
    /// (else the check runs uncached). For benchmarks and tests.
    In(std::path::PathBuf),
}

impl CacheSetting {
    /// The cache this setting names, opened, or why there is none.
    fn open(&self) -> Option<cache::Choice> {
        match self {
            Self::FromEnv => Some(cache::from_env()),
            Self::Off => None,
            Self::In(dir) => Some(cache::Cache::open(dir)),
        }
    }
}

/// A migration that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMigration {
    /// The file it came from, with version, names and normalized text.
    pub source: SourceFile,
    /// Hex SHA-256 of the normalized text.
    pub checksum: String,
    /// Hex hash chaining this checksum onto the previous chain value.
    pub chain: String,
    /// The statements in execution order, as spans of `source.text`:
    /// exactly those the replay ran (see [`PlannedStatement::sql`]).
    pub statements: Vec<PlannedStatement>,
    /// The tables whose foreign keys the executor checks at the end of this
    /// migration, inside its transaction (empty for most migrations): it
    /// defers its keys, reshapes a table, or writes a table whose keys are
    /// declared deferred, so a violation would otherwise surface only at the
    /// outermost commit, or never.
    pub foreign_key_checks: Vec<String>,
    /// The first thing the migration does that a build cannot reproduce (a
    /// statement calling `random()`, `randomblob()` or `total_changes()`,
    /// inserting into a table whose column defaults to one, or writing rows
    /// while reading `sqlite_schema`), as
    /// `path:line:column` and what it does: the chain then has no
    /// [`BaselineScript`].
    pub unreproducible: Option<String>,
    /// What the migration does to code written for the schema before it,
    /// from the replay's schema before and after it (see [`Change`]).
    pub changes: Vec<Change>,
    /// Its statements whose time grows with the rows an object already
    /// holds, which the replay's empty tables cannot show: an `UPDATE` or
    /// `DELETE` of a table that existed before the migration, an insert
    /// copying such a table's rows (a table rebuild), a `CREATE INDEX` on
    /// one, an `ALTER TABLE … DROP COLUMN`. Each as `path:line:column` and
    /// what it does; `durable-schema check` lists them. Hints, not errors:
    /// on a large object such a migration may outlast workerd's 30-second
    /// gate (see `docs/failures.md`).
    pub cost_hints: Vec<String>,
    /// The first statement that may have read the clock (a call of
    /// `datetime('now')` or `CURRENT_TIMESTAMP`, directly or through a
    /// trigger, or an insert leaving out a column that defaults to one), as
    /// `path:line:column` and what it does: the chain is then replayed at a
    /// second instant, and the [`BaselineScript`] writes each value that
    /// came from the clock as the expression that reads it.
    pub clock: Option<String>,
}

impl PlannedMigration {
    /// The migration's class: the most severe of its [`changes`](Self::changes).
    pub fn class(&self) -> Class {
        class_of(&self.changes)
    }

    /// Its breaking and destructive findings, `; `-separated, as the
    /// tracking row's `findings` column records them (empty: additive).
    pub fn findings(&self) -> String {
        let severe: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.kind.class() != Class::Additive)
            .map(Change::summary)
            .collect();
        severe.join("; ")
    }

    /// Whether the file carries the directive line [`BREAKING_DIRECTIVE`],
    /// which acknowledges breaking and destructive changes.
    pub fn acknowledged(&self) -> bool {
        directive::has(&self.source.text, BREAKING_DIRECTIVE)
    }

    /// Its batch statements (those the line [`BATCH_DIRECTIVE`] or
    /// [`BATCH_OVER_DIRECTIVE`] precedes), each as `path:line:column` and
    /// how the executor repeats it, one transaction per repetition
    /// ([`batch_note`](Self::batch_note)).
    pub fn batches(&self) -> Vec<String> {
        self.statements
            .iter()
            .filter(|s| s.batch)
            .map(|s| {
                format!(
                    "{}:{}:{} {}",
                    self.source.display_path,
                    s.line,
                    s.column,
                    self.batch_note(s)
                )
            })
            .collect()
    }

    /// How the executor repeats the batch statement `s` of this migration:
    /// `repeated until it changes no row`, or for a range batch `over
    /// `items`, 1000 rows a slice`.
    pub fn batch_note(&self, s: &PlannedStatement) -> String {
        match &s.over {
            Some(over) => format!(
                "over `{}`, {} rows a slice",
                over.table(&self.source.text),
                over.limit
            ),
            None => "repeated until it changes no row".to_owned(),
        }
    }
}

/// The checked chain: what the macro embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Migrations in version order, versions 1..=N.
    pub migrations: Vec<PlannedMigration>,
    /// The directory's history lock (`durable-schema.lock`), verified
    /// against the migrations, when it has one.
    pub lock: Option<Lock>,
    /// The verified one-transaction script that creates a new object at the
    /// head (see [`BaselineScript`]), or why new objects run every migration.
    pub baseline: Result<BaselineScript, NoBaseline>,
    /// The schema at the head: the user's objects in `sqlite_schema` after
    /// the last migration, in the order the chain created them, without
    /// SQLite's internal objects, virtual tables' shadow tables and the
    /// tracking table. The checked queries (`query!`) prepare against it
    /// ([`query`]); recorded at the end of the replay and kept in the
    /// verdict cache with the rest of the verdict.
    pub head_schema: Vec<SchemaObject>,
}

impl Plan {
    /// The chain value of the last migration: it covers every version and
    /// text, so it names the head schema (empty for no migrations).
    pub fn head_chain(&self) -> &str {
        self.migrations.last().map_or("", |m| m.chain.as_str())
    }

    /// The highest version (the schema version once migrated).
    pub fn version(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.source.version)
    }

    /// The lock of these migrations, as `durable-schema lock` writes it:
    /// one entry per migration with its checksum, keeping the `replaces`
    /// list the directory's lock already declares for that version.
    pub fn lock_entries(&self) -> Vec<LockEntry> {
        self.migrations
            .iter()
            .map(|m| LockEntry {
                version: m.source.version,
                name: m.source.name.clone(),
                checksum: m.checksum.clone(),
                replaces: self
                    .lock
                    .as_ref()
                    .and_then(|l| l.entry(m.source.version))
                    .map(|e| e.replaces.clone())
                    .unwrap_or_default(),
                line: 0,
            })
            .collect()
    }

    /// For each migration, the checksums of the released texts it replaces
    /// (the lock's `replaces`; empty without a lock).
    pub fn replaces(&self) -> Vec<Vec<String>> {
        self.migrations
            .iter()
            .map(|m| {
                self.lock
                    .as_ref()
                    .and_then(|l| l.entry(m.source.version))
                    .map(|e| e.replaces.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// For each migration, the chain values of every history through a
    /// replaced text (see [`ReplacedLink`]); an error when the lock replaces so
    /// much that a version would accept more than [`MAX_LINKS`] histories.
    pub fn replaced_links(&self) -> Result<Vec<Vec<ReplacedLink>>, Box<Diagnostic>> {
        let checksums: Vec<String> = self.migrations.iter().map(|m| m.checksum.clone()).collect();
        replaced::replaced_links(&checksums, &self.replaces()).ok_or_else(|| {
            let path = self.lock.as_ref().map_or("durable-schema.lock", |l| l.display_path.as_str());
            Box::new(
                Diagnostic::file(
                    path,
                    format!(
                        "the lock's `replaces` entries allow more than {MAX_LINKS} histories at one version"
                    ),
                )
                .help("replace fewer released migrations: add a new migration that repairs the data instead"),
            )
        })
    }
}

/// Loads `dir` (as written by the user, relative to `base`) and checks it:
/// file rules, the history lock when the directory has one (a released
/// migration edited, renamed or removed), then the replay with the Durable
/// Object rules. Returns every problem found, not only the first.
///
/// # The verdict cache
///
/// A successful replay is cached, so an unchanged directory costs reading,
/// normalizing, splitting and hashing its files instead of a replay (which
/// grows with the history: seconds at a thousand migrations). The file
/// rules, the drizzle journal and the lock are checked on every call,
/// before the lookup; errors are never cached. The key is a SHA-256 over
/// the compiler's version, source fingerprint and cache format, the SQLite
/// version, the options (tracking table, locked mode), every migration's
/// name and normalized text (and journal `when`), the lock file and the
/// journal. Entries live in the directory named by the
/// `DURABLE_SCHEMA_CACHE` environment variable (`DURABLE_SCHEMA_CACHE=off`
/// turns the cache off), else in `durable-schema/verdicts` under the user's cache
/// directory; one file per key, written atomically, readable by the user
/// only. A directory that another user could write (or steer through a
/// symbolic link or a parent directory) is not used: the check then runs
/// uncached (see [`cache_place`]). An entry is authenticated with a
/// per-user secret; the checksums and chain values are computed from the
/// files on a hit, never read from the entry. An
/// entry that is unreadable, corrupt, truncated, of another version,
/// another key or another user is ignored (the full check runs and
/// replaces it), and failing to write one is not an error.
/// [`Options::cache`] names another directory, or none.
///
/// A success also stores the replay database after its last migration, so
/// a directory with new migrations on top of checked ones (any prefix whose
/// versions and texts are unchanged) replays only the new ones, with the
/// same plan and the same diagnostics as a full replay.
pub fn check_dir(base: &Path, dir: &str, options: &Options) -> Result<Plan, Vec<Diagnostic>> {
    let cache = options.cache.open();
    check_dir_with(
        base,
        dir,
        options,
        cache.as_ref().and_then(cache::Choice::cache),
    )
}

/// Where the verdict cache of [`check_dir`] is, or why checks run without
/// one: for the CLI's `--verbose`. Creates the directory and its secret
/// when missing, as a check would.
///
/// ```
/// let place = durable_schema_compiler::cache_place();
/// println!("{place}"); // e.g. "cache: /home/me/.cache/durable-schema"
/// ```
pub fn cache_place() -> CachePlace {
    match cache::from_env() {
        cache::Choice::Off => CachePlace::Off,
        cache::Choice::NoHome => CachePlace::NoHome,
        cache::Choice::Unusable { dir, why } => CachePlace::Unusable { dir, why },
        cache::Choice::Use(cache) => CachePlace::At(cache.dir().to_owned()),
    }
}

/// Where the verdict cache is (see [`cache_place`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CachePlace {
    /// In this directory.
    At(std::path::PathBuf),
    /// Turned off by `DURABLE_SCHEMA_CACHE=off`.
    Off,
    /// No cache: the user has no cache directory (no home directory).
    NoHome,
    /// No cache: the directory cannot be trusted or created.
    Unusable {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why (names the offending path).
        why: String,
    },
}

impl std::fmt::Display for CachePlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::At(dir) => write!(f, "cache: {}", dir.display()),
            Self::Off => write!(f, "cache: off (`{}=off`)", cache::ENV),
            Self::NoHome => write!(
                f,
                "cache: none (no home directory; set `{}` to a private directory)",
                cache::ENV
            ),
            Self::Unusable { dir, why } => write!(
                f,
                "cache: not used, checking without it: {why} (`{}`; use a directory only you can write, or set `{}`)",
                dir.display(),
                cache::ENV
            ),
        }
    }
}

/// Whether `name` is a migration file name, `NNNN_description.sql` (the rule
/// the loader applies): its number and description if so. The number is
/// the version in a directory numbered from `0001_`; see [`Numbering`].
///
/// ```
/// use durable_schema_compiler::migration_name;
/// assert_eq!(migration_name("0003_add_sessions.sql"), Some((3, "add_sessions")));
/// assert_eq!(migration_name("0000_initial.sql"), Some((0, "initial")));
/// assert_eq!(migration_name("0003_add sessions.sql"), None);
/// ```
pub fn migration_name(name: &str) -> Option<(u32, &str)> {
    source::parse_migration_name(name).ok()
}

/// [`check_dir`] with the verdict cache `cache` (`None`: no cache), then
/// the acknowledgement of breaking changes ([`unacknowledged`]), which
/// depends on the lock and is never cached.
fn check_dir_with(
    base: &Path,
    dir: &str,
    options: &Options,
    cache: Option<&cache::Cache>,
) -> Result<Plan, Vec<Diagnostic>> {
    let plan = check_replayed(base, dir, options, cache)?;
    let refused = unacknowledged(&plan);
    if refused.is_empty() {
        Ok(plan)
    } else {
        Err(refused)
    }
}

/// The migrations of `plan` that must be acknowledged and are not: each
/// one not in the history lock yet whose changes break older code or
/// remove data, without the line [`BREAKING_DIRECTIVE`]. Released (locked)
/// migrations are never judged again. Without a lock nothing is refused:
/// nothing says which migrations are released, so the judgement would fall
/// on every migration of a history that was deployed long ago (`check`
/// still reports the findings).
pub fn unacknowledged(plan: &Plan) -> Vec<Diagnostic> {
    let Some(lock) = &plan.lock else {
        return Vec::new();
    };
    plan.migrations
        .iter()
        .filter(|m| lock.entry(m.source.version).is_none())
        .filter(|m| m.class() != Class::Additive && !m.acknowledged())
        .filter_map(|m| {
            let severe: Vec<&Change> = m
                .changes
                .iter()
                .filter(|c| c.kind.class() != Class::Additive)
                .collect();
            let first = severe.first()?;
            let list: Vec<String> = severe.iter().map(|c| c.summary()).collect();
            let older = m.source.version.saturating_sub(1);
            let (message, help) = if m.class() == Class::Breaking {
                let object = severe
                    .iter()
                    .find(|c| c.kind.class() == Class::Breaking)
                    .map_or(first.object.as_str(), |c| c.object.as_str());
                (
                    format!("this migration breaks code built for version {older}: {}", list.join(", ")),
                    format!(
                        "expand and contract: deploy code that stops using `{object}` first, then add the line `{BREAKING_DIRECTIVE}` to this file"
                    ),
                )
            } else {
                (
                    format!("this migration removes data: {}", list.join(", ")),
                    format!(
                        "make sure no deployed code still needs it, then add the line `{BREAKING_DIRECTIVE}` to this file"
                    ),
                )
            };
            let mut d = Diagnostic::at(&m.source.display_path, first.line, first.column, message)
                .help(help);
            if let Some(stmt) = m
                .statements
                .iter()
                .find(|s| (s.line, s.column) == (first.line, first.column))
            {
                d = d.statement(stmt.sql(&m.source.text));
            }
            d.rule = Some("breaking");
            Some(d)
        })
        .collect()
}

/// [`check_dir`] without the acknowledgement of breaking changes
/// ([`unacknowledged`]): the plan with every migration's findings even
/// when one is not acknowledged yet, for the CLI's `diff`.
pub fn classify_dir(base: &Path, dir: &str, options: &Options) -> Result<Plan, Vec<Diagnostic>> {
    let cache = options.cache.open();
    check_replayed(
        base,
        dir,
        options,
        cache.as_ref().and_then(cache::Choice::cache),
    )
}

/// [`check_dir_with`] up to the replay's verdict.
fn check_replayed(
    base: &Path,
    dir: &str,
    options: &Options,
    cache: Option<&cache::Cache>,
) -> Result<Plan, Vec<Diagnostic>> {
    let Loaded {
        files,
        mut errors,
        replayable,
    } = load_dir(base, dir);
    let mut lock = lock::read(base, dir).unwrap_or_else(|problems| {
        errors.extend(problems);
        None
    });
    if let Some(version) = options.replace {
        if let Err(refusal) = lock::replace(dir, lock.as_mut(), &files, version) {
            errors.push(*refusal);
        }
    }
    errors.extend(lock::verify(
        base,
        dir,
        lock.as_ref(),
        &files,
        options.locked,
    ));
    if errors.is_empty() {
        // Every file rule, the journal and the lock passed: only the
        // replay's verdict may come from the cache.
        let cached = cache.map(|cache| {
            let key = cache::key(base, dir, options, &files);
            let hit = cache::lookup(cache, &key, &files);
            (cache, key, hit)
        });
        let key = match cached {
            Some((_, _, Some((hit, baseline, head_schema)))) => {
                let sums = sums(&files);
                let migrations = hit
                    .into_iter()
                    .zip(files)
                    .zip(sums)
                    .map(|((c, f), s)| c.with(f, s));
                return Ok(Plan {
                    migrations: migrations.collect(),
                    lock,
                    baseline,
                    head_schema,
                });
            }
            Some((cache, key, None)) => Some((cache, key)),
            None => None,
        };
        let Some((cache, key)) = key else {
            let plan = check_files(files, options)?;
            return Ok(Plan { lock, ..plan });
        };
        let plan = check_resuming(files, options, cache)?;
        cache::store(cache, &key, &plan);
        return Ok(Plan { lock, ..plan });
    }
    // Replay what loaded anyway, so every problem shows up in one build.
    if replayable && !files.is_empty() {
        if let Err(more) = check_files(files, options) {
            errors.extend(more);
        }
    }
    Err(errors)
}

/// Each file's checksum and chain value, computed from its text.
fn sums(files: &[LoadedFile]) -> Vec<(String, String)> {
    let mut previous = String::new();
    files
        .iter()
        .map(|f| {
            let sum = f.checksum().to_owned();
            let link = chain(&previous, f.source.version, &sum);
            previous.clone_from(&link);
            (sum, link)
        })
        .collect()
}

/// Checks loaded files (see [`check_dir`]).
fn check_files(files: Vec<LoadedFile>, options: &Options) -> Result<Plan, Vec<Diagnostic>> {
    let replayer = Replayer::new(&options.table).map_err(|e| vec![Diagnostic::plain(e)])?;
    check_on(&replayer, files, options)
}

/// [`check_files`] resumed, when it can be, from the cached replay image of
/// the longest prefix of `files` in `cache` (a directory with new
/// migrations on top of checked ones replays only the new ones). When the
/// replay ran migrations, the replay database's image after the last one is
/// stored in `cache` for the next check ([`cache::store_image`]).
///
/// The image holds everything the replay of the next migration reads from
/// the database; what else the replay keeps (what the migration dropped,
/// wrote, deferred or switched off, the step budget, `defer_foreign_keys`,
/// which ends with the transaction) starts afresh at each migration, so the
/// new migrations are replayed exactly as in a full replay, with the same
/// diagnostics. An image that does not verify or that SQLite refuses is
/// ignored: the full replay runs.
fn check_resuming(
    files: Vec<LoadedFile>,
    options: &Options,
    cache: &cache::Cache,
) -> Result<Plan, Vec<Diagnostic>> {
    let sums = sums(&files);
    let resumable = !files
        .iter()
        .any(|f| replay::reads_connection_history(&f.source.text));
    let resume = resumable
        .then(|| cache::lookup_image(cache, options, &files, &sums))
        .flatten();
    if let Some(resume) = resume {
        if let Ok(replayer) = Replayer::resume(&options.table, &resume.image, resume.clock) {
            let mut prefix = files;
            let suffix = prefix.split_off(resume.prefix.len());
            let prefix: Vec<PlannedMigration> = resume
                .prefix
                .into_iter()
                .zip(prefix)
                .zip(sums)
                .map(|((c, f), s)| c.with(f, s))
                .collect();
            let store = (!suffix.is_empty()).then_some(cache);
            return check_after(&replayer, prefix, suffix, options, store);
        }
    }
    let replayer = Replayer::new(&options.table).map_err(|e| vec![Diagnostic::plain(e)])?;
    check_after(
        &replayer,
        Vec::new(),
        files,
        options,
        resumable.then_some(cache),
    )
}

/// [`check_files`] on a given replay database. The plan holds the
/// statements the replay ran, as it ran them.
fn check_on(
    replayer: &Replayer,
    files: Vec<LoadedFile>,
    options: &Options,
) -> Result<Plan, Vec<Diagnostic>> {
    check_after(replayer, Vec::new(), files, options, None)
}

/// [`check_on`] of `files`, the migrations after `prefix`, on a replay
/// database that holds `prefix` (already checked) replayed; with
/// `store_image`, the replay database's image is stored in that cache once
/// the replay passed.
fn check_after(
    replayer: &Replayer,
    prefix: Vec<PlannedMigration>,
    files: Vec<LoadedFile>,
    options: &Options,
    store_image: Option<&cache::Cache>,
) -> Result<Plan, Vec<Diagnostic>> {
    let scripts: Vec<Script<'_>> = files.iter().map(LoadedFile::script).collect();
    let Outcome {
        findings,
        ran,
        checks,
        unreproducible,
        changes,
        cost_hints,
        clock,
    } = replay::run(replayer, &scripts, &options.table);
    if !findings.is_empty() {
        return Err(findings.into_iter().map(|f| f.diagnostic).collect());
    }
    let mut previous = prefix.last().map(|m| m.chain.clone()).unwrap_or_default();
    let mut migrations = prefix;
    let replayed = files
        .into_iter()
        .zip(ran)
        .zip(checks)
        .zip(unreproducible)
        .zip(clock)
        .zip(changes)
        .zip(cost_hints);
    migrations.extend(replayed.map(
        |(
            (((((file, statements), foreign_key_checks), unreproducible), clock), changes),
            cost_hints,
        )| {
            let checksum = file.checksum().to_owned();
            let chain = chain(&previous, file.source.version, &checksum);
            previous.clone_from(&chain);
            PlannedMigration {
                source: file.source,
                checksum,
                chain,
                statements,
                foreign_key_checks,
                unreproducible,
                changes,
                cost_hints,
                clock,
            }
        },
    ));
    let derive = || {
        if !options.baseline {
            return Err(NoBaseline::Off);
        }
        let replayed: Vec<baseline::Replayed<'_>> = migrations
            .iter()
            .map(|m| baseline::Replayed {
                script: replay::Script {
                    display_path: &m.source.display_path,
                    version: m.source.version,
                    text: &m.source.text,
                    statements: &m.statements,
                },
                unreproducible: m.unreproducible.as_deref(),
                clock: m.clock.as_deref(),
            })
            .collect();
        baseline::derive(replayer, &replayed, &options.table)
    };
    // The image is taken before the baseline is derived, which only reads
    // the replay database, and written by another thread meanwhile: at a
    // thousand migrations it is tens of megabytes to hash and write, while
    // deriving mostly waits on SQLite.
    let head_schema =
        schema_dump::head(replayer, &options.table).map_err(|e| vec![Diagnostic::plain(e)])?;
    let image = store_image.and_then(|cache| Some((cache, replayer.image()?)));
    let baseline = match &image {
        Some((cache, image)) => std::thread::scope(|s| {
            let (clock, migrations) = (replayer.clock(), &migrations);
            s.spawn(move || cache::store_image(cache, options, migrations, clock, image));
            derive()
        }),
        None => derive(),
    };
    Ok(Plan {
        migrations,
        lock: None,
        baseline,
        head_schema,
    })
}

/// The tracking table's contract (name rules, columns, SQL), owned by the
/// runtime and shared with the replay so the two cannot drift.
pub use durable_schema_runtime::tracking;

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory under the system's temp dir, removed on drop.
    pub(crate) struct Scratch(pub(crate) std::path::PathBuf);

    impl Scratch {
        pub(crate) fn new(name: &str, files: &[(&str, &[u8])]) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "durable-schema-compiler-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (file, bytes) in files {
                let path = dir.join(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const USERS: &[u8] = b"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n";

    /// A directory of `users` then `second`, with a lock of the first
    /// `locked` migrations (none: no lock file).
    fn acknowledgement(
        name: &str,
        second: &[u8],
        locked: Option<usize>,
    ) -> Result<Plan, Vec<Diagnostic>> {
        let scratch = Scratch::new(
            name,
            &[("0001_users.sql", USERS), ("0002_next.sql", second)],
        );
        let options = Options::default().with_cache(CacheSetting::Off);
        if let Some(n) = locked {
            let plan = check_dir(&scratch.0, ".", &options).unwrap();
            let entries = &plan.lock_entries()[..n];
            std::fs::write(scratch.0.join(LOCK_FILE), render_lock(entries)).unwrap();
        }
        check_dir(&scratch.0, ".", &options)
    }

    #[test]
    fn an_unlocked_breaking_migration_must_be_acknowledged() {
        let errors = acknowledgement(
            "ack-refused",
            b"CREATE TABLE rooms (id TEXT);\nALTER TABLE users DROP COLUMN name;\n",
            Some(1),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let d = &errors[0];
        assert_eq!(d.rule, Some("breaking"));
        assert_eq!(d.file.as_deref(), Some("0002_next.sql"));
        assert_eq!(d.position, Some((2, 1)));
        assert_eq!(
            d.message,
            "this migration breaks code built for version 1: BC103 column `users.name` dropped, DS102 values of column `users.name` dropped"
        );
        let help = d.help.as_deref().unwrap_or_default();
        assert!(
            help.contains("`users.name`") && help.contains(BREAKING_DIRECTIVE),
            "{help}"
        );
    }

    #[test]
    fn the_directive_acknowledges_and_additive_migrations_need_none() {
        let acknowledged = b"-- durable-schema: breaking\nALTER TABLE users DROP COLUMN name;\n";
        let plan = acknowledgement("ack-directive", acknowledged, Some(1)).unwrap();
        assert_eq!(plan.migrations[1].class(), Class::Breaking);
        assert!(plan.migrations[1].acknowledged());
        // The directive's exact text only: a near miss acknowledges
        // nothing and is an error of its own, even without a lock.
        let near = b"-- durable-schema: Breaking\nALTER TABLE users DROP COLUMN name;\n";
        let errors = acknowledgement("ack-near", near, None).unwrap_err();
        assert!(
            errors[0]
                .message
                .starts_with("`-- durable-schema: Breaking` is not a directive line"),
            "{errors:#?}"
        );
        let additive = b"ALTER TABLE users ADD COLUMN email TEXT;\n";
        let plan = acknowledgement("ack-additive", additive, Some(1)).unwrap();
        assert_eq!(plan.migrations[1].class(), Class::Additive);
        let deletes = b"DELETE FROM users WHERE name IS NULL;\n";
        let errors = acknowledgement("ack-deletes", deletes, Some(1)).unwrap_err();
        assert!(
            errors[0]
                .message
                .starts_with("this migration removes data: DS103"),
            "{errors:#?}"
        );
    }

    #[test]
    fn locked_migrations_and_directories_without_a_lock_are_not_judged() {
        let breaking = b"ALTER TABLE users DROP COLUMN name;\n";
        let plan = acknowledgement("ack-locked", breaking, Some(2)).unwrap();
        // Still classified, for `check` and the tracking table.
        assert_eq!(plan.migrations[1].class(), Class::Breaking);
        let plan = acknowledgement("ack-no-lock", breaking, None).unwrap();
        assert_eq!(plan.migrations[1].class(), Class::Breaking);
    }

    #[test]
    fn the_cache_keeps_the_findings() {
        let scratch = Scratch::new(
            "ack-cache",
            &[
                ("0001_users.sql", USERS),
                ("0002_next.sql", b"ALTER TABLE users DROP COLUMN name;\n"),
            ],
        );
        let cache = Scratch::new("ack-cache-dir", &[]);
        let options = Options::default().with_cache(CacheSetting::In(cache.0.clone()));
        let miss = check_dir(&scratch.0, ".", &options).unwrap();
        let hit = check_dir(&scratch.0, ".", &options).unwrap();
        assert!(!miss.migrations[1].changes.is_empty());
        assert_eq!(miss, hit);
    }

    #[test]
    fn the_plan_holds_the_split_statements_the_replay_ran() {
        let files: &[(&str, &[u8])] = &[
            (
                "0001_trigger.sql",
                b"CREATE TABLE t (id INTEGER PRIMARY KEY, n TEXT);\nCREATE TABLE log (msg TEXT);\nCREATE TRIGGER t_log AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES ('a; b');\n  UPDATE log SET msg = msg || ';';\nEND;\n",
            ),
            (
                "0002_comments.sql",
                b"-- a comment; with a semicolon\nINSERT INTO t (n) VALUES ('x;y'); /* and ; here */ INSERT INTO t (n) VALUES (\"n\");;\n\n  UPDATE t SET n = 'it''s; fine' -- no trailing semicolon",
            ),
            (
                "0003_windows.sql",
                b"\xef\xbb\xbfCREATE INDEX \"t;n\" ON t (n);\r\nCREATE VIEW v AS SELECT [n] AS \"a;b\" FROM t;\r\n-- done;\r\n",
            ),
        ];
        let scratch = Scratch::new("plan", files);
        let loaded = load_dir(&scratch.0, ".");
        assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
        let options = Options::default();
        let replayer = Replayer::new(&options.table).unwrap();
        let plan = check_on(&replayer, loaded.files, &options).unwrap();

        let mut planned = Vec::new();
        for (m, (_, raw)) in plan.migrations.iter().zip(files) {
            let text = normalize_text(std::str::from_utf8(raw).unwrap());
            assert_eq!(m.source.text, text);
            let split = split_statements(&text);
            let sliced: Vec<&str> = m.statements.iter().map(|s| s.sql(&text)).collect();
            let expected: Vec<&str> = split.iter().map(|s| s.sql).collect();
            assert_eq!(sliced, expected, "{}", m.source.name);
            for (s, t) in m.statements.iter().zip(&split) {
                assert_eq!(&text[s.start..s.end], t.sql);
                assert_eq!((s.line, s.column), crate::split::line_col(&text, t.offset));
                assert!(!s.sql(&text).ends_with(';'));
            }
            planned.extend(sliced.into_iter().map(str::to_owned));
        }
        assert_eq!(
            plan.migrations
                .iter()
                .map(|m| m.statements.len())
                .collect::<Vec<_>>(),
            [3, 3, 2]
        );
        assert_eq!(*replayer.executed.borrow(), planned);
    }
}
