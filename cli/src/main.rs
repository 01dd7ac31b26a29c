//! `durable-schema`: the authoring workflow of a migrations directory —
//! `new`, `check`, `lock`, `schema`, `diff`, `status` — on the compiler the
//! `#[durable_schema]` attribute runs, so the command and the build never
//! disagree.
//!
//! Exit codes: 0 success, 1 problems found (or the operation failed), 2 a
//! usage error (clap's).

mod diff;
mod human;
mod new;
mod status;
mod term;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use durable_schema_compiler::{
    check_dir, directory_problem, render_lock_for, schemas_at, tracking, Class, Diagnostic,
    DirSetting, Numbering, Options, Plan, BREAKING_DIRECTIVE, LOCK_FILE,
};

/// Create, check, lock and inspect the SQL migrations of a Cloudflare
/// Durable Object, with the same checks as the `#[durable_schema]` build.
#[derive(Parser)]
#[command(name = "durable-schema", version, propagate_version = true)]
#[command(
    after_help = "Workflow: `new` a migration, write it, `check` it, `lock` it when it \
    is released, deploy. Exit codes: 0 success, 1 problems found or the operation failed, 2 \
    usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Say where the verdict cache is, or why checks run without one
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Create the next migration file, `NNNN_<NAME>.sql`, and print its path
    New {
        /// The description: letters, digits, `_` and `-` (e.g. add_sessions)
        name: String,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Check the migrations as the build does and report every problem
    Check {
        #[command(flatten)]
        dir: DirArg,
        /// How to report problems: to stderr for people, to stdout for tools
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Also fail when a migration is not in the lock yet (for CI and
        /// release gates)
        #[arg(long)]
        locked: bool,
        #[command(flatten)]
        table: TableArg,
    },
    /// Write the history lock, `<DIR>/durable-schema.lock`, of the checked migrations
    Lock {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        table: TableArg,
        /// Record the edited text of released migration VERSION as a
        /// deliberate replacement (its old checksum goes after `replaces`),
        /// e.g. a fix of a migration that failed on some objects' data
        #[arg(long, value_name = "VERSION")]
        replace: Option<u32>,
    },
    /// Print the schema after a version as SQL (tables, indexes, views, triggers)
    Schema {
        #[command(flatten)]
        dir: DirArg,
        /// The version to replay through (default: the last)
        #[arg(long, value_name = "N")]
        at: Option<u32>,
        #[command(flatten)]
        table: TableArg,
    },
    /// Show how the schema changes from version A to version B
    Diff {
        /// The version to compare from (0: the empty schema)
        a: u32,
        /// The version to compare to (default: the last)
        b: Option<u32>,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        table: TableArg,
    },
    /// Show applied, pending, ahead, edited and failed migrations of a local database
    ///
    /// The database is an SQLite file, opened read-only. `wrangler dev` keeps
    /// one per object at
    /// `.wrangler/state/v3/do/<script>-<Class>/<object id>.sqlite` (`<script>`
    /// is `name` in wrangler.toml, `<Class>` the Durable Object's class, the
    /// object id is the hex id the `object` field of the durable-schema log
    /// line shows; `--persist-to DIR` replaces `.wrangler/state`). A failed
    /// migration's record (attempts, when, the error, when the next attempt
    /// is allowed) is shown as `failed`. Exits with 1 when the history
    /// diverged from the code (an applied migration was edited), as a
    /// migration run would fail.
    Status {
        /// The database file
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        table: TableArg,
        /// Seconds before the code re-runs a failed migration, as
        /// `#[durable_schema(retry_after = N)]` says (default 60)
        #[arg(long, value_name = "SECONDS")]
        retry_after: Option<u32>,
    },
}

#[derive(Args)]
struct DirArg {
    /// The migrations directory, relative to the current directory
    #[arg(long, default_value = "migrations", value_name = "DIR", value_parser = dir_name)]
    dir: String,
}

/// `--dir` as given, unless it is empty (which would name the current
/// directory by accident, and make paths like `/0001_init.sql`).
fn dir_name(dir: &str) -> Result<String, String> {
    if dir.trim().is_empty() {
        Err("the directory is empty: give the migrations directory, e.g. `migrations`, or `.` for the current one".to_owned())
    } else {
        Ok(dir.to_owned())
    }
}

#[derive(Args)]
struct TableArg {
    /// The tracking table's name, as in `#[durable_schema(table = "...")]`
    #[arg(long, default_value = tracking::DEFAULT_TABLE, value_name = "NAME", value_parser = table_name)]
    table: String,
}

impl TableArg {
    fn options(&self) -> Options {
        Options {
            table: self.table.clone(),
            ..Options::default()
        }
    }
}

fn table_name(name: &str) -> Result<String, String> {
    tracking::check_name(name)
        .map(|()| name.to_owned())
        .map_err(|e| e.to_string())
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// rustc-style messages with the source line and a caret
    Human,
    /// JSON Lines: one object per problem
    Json,
}

/// Paths are resolved against the current directory and shown as given.
const BASE: &str = ".";

/// How the CLI resolves `--dir`, for the messages about a directory that
/// is missing or is not one (the build's say "the crate root").
const DIR_SETTING: DirSetting = DirSetting {
    resolved_against: "the current directory",
    setting: "`--dir`",
};

/// Whether `dir` is a directory the commands can read: the problem, in the
/// CLI's words, if not. Asked before the compiler, which words the same
/// problem for the build.
fn directory(dir: &str) -> Result<(), Vec<Diagnostic>> {
    match directory_problem(base(), dir, &DIR_SETTING) {
        Some(problem) => Err(vec![problem]),
        None => Ok(()),
    }
}

fn base() -> &'static Path {
    Path::new(BASE)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose && !matches!(cli.command, Command::New { .. }) {
        // Once, before any check: an unusable cache is never an error.
        eprintln!("{}", durable_schema_compiler::cache_place());
    }
    match cli.command {
        Command::New { name, dir } => new::run(&name, &dir.dir),
        Command::Check {
            dir,
            format,
            locked,
            table,
        } => check(&dir.dir, format, locked, &table.options(), cli.verbose),
        Command::Lock {
            dir,
            table,
            replace,
        } => lock(&dir.dir, &table.options(), replace),
        Command::Schema { dir, at, table } => schema(&dir.dir, at, &table.options()),
        Command::Diff { a, b, dir, table } => diff::run(&dir.dir, a, b, &table.options()),
        Command::Status {
            db,
            dir,
            table,
            retry_after,
        } => status::run(&db, &dir.dir, &table.options(), retry_after),
    }
}

/// Prints an error of the command itself (not of a migration) and fails.
fn fail(message: impl Into<String>) -> ExitCode {
    human::eprint(&[human::plain(message.into())]);
    ExitCode::FAILURE
}

/// Reports `errors` on stderr the human way and fails.
fn report(errors: &[Diagnostic]) -> ExitCode {
    human::eprint(errors);
    ExitCode::FAILURE
}

/// The check, as the build runs it, with progress on a terminal.
fn checked(dir: &str, options: &Options, locked: bool) -> Result<Plan, Vec<Diagnostic>> {
    directory(dir)?;
    let _progress = term::Progress::start(&format!("checking `{dir}`"));
    let options = Options {
        locked,
        ..options.clone()
    };
    check_dir(base(), dir, &options)
}

fn check(dir: &str, format: Format, locked: bool, options: &Options, verbose: bool) -> ExitCode {
    let result = checked(dir, options, locked);
    match (format, result) {
        (Format::Json, Ok(plan)) => {
            // Every finding of the classification, one object a line.
            for m in &plan.migrations {
                let locked = plan
                    .lock
                    .as_ref()
                    .is_some_and(|l| l.entry(m.source.version).is_some());
                // The statement-level facts first, so a migration's last
                // line stays its last finding.
                for line in human::statements_json(m) {
                    term::print(&format!("{line}\n"));
                }
                for c in &m.changes {
                    term::print(&format!("{}\n", human::change_json(m, c, locked)));
                }
            }
            ExitCode::SUCCESS
        }
        (Format::Json, Err(errors)) => {
            for d in &errors {
                term::print(&format!("{}\n", human::json(d)));
            }
            ExitCode::FAILURE
        }
        (Format::Human, Ok(plan)) => {
            let locked = plan
                .lock
                .as_ref()
                .map(|l| format!(", {} locked", l.entries.len()))
                .unwrap_or_default();
            term::print(&format!(
                "`{dir}`: {} checked, schema version {}{locked}\n",
                migrations(plan.migrations.len()),
                plan.version()
            ));
            // How new objects will be created, and why not in one step.
            match &plan.baseline {
                Ok(b) => term::print(&format!(
                    "new objects: one transaction from a verified baseline ({} statements, {} KB)\n",
                    b.statements.len(),
                    b.sql.len().div_ceil(1024)
                )),
                Err(why) => term::print(&format!("new objects run every migration: {why}\n")),
            }
            // What breaks older code or removes data, always; every
            // finding with `--verbose`.
            for m in &plan.migrations {
                let severe = m.class() != Class::Additive;
                if !severe && !verbose {
                    continue;
                }
                for c in &m.changes {
                    if verbose || c.kind.class() != Class::Additive {
                        term::print(&format!("{}\n", human::change(m, c)));
                    }
                }
                if severe {
                    let locked = plan
                        .lock
                        .as_ref()
                        .is_some_and(|l| l.entry(m.source.version).is_some());
                    let ack = if m.acknowledged() {
                        format!("acknowledged by `{BREAKING_DIRECTIVE}`")
                    } else if locked {
                        "released (in the lock)".to_owned()
                    } else {
                        format!("not acknowledged (once the directory has a lock, the build requires `{BREAKING_DIRECTIVE}`)")
                    };
                    term::print(&format!(
                        "{}: {} migration, {ack}\n",
                        m.source.name,
                        m.class().as_str()
                    ));
                }
            }
            term::print(&cost_hints(&plan));
            term::print(&batches(&plan));
            if verbose {
                // The checksums the lock and the tracking table record, as
                // lock lines are written.
                for m in &plan.migrations {
                    term::print(&format!(
                        "{:04} {} {}\n",
                        m.source.version, m.source.name, m.checksum
                    ));
                }
            }
            ExitCode::SUCCESS
        }
        (Format::Human, Err(errors)) => {
            human::eprint(&errors);
            human::eprint_summary(dir, errors.len());
            ExitCode::FAILURE
        }
    }
}

/// The statements whose time grows with an object's existing rows, one
/// line each under a heading (empty when there are none): on a large object
/// they may outlast workerd's 30-second gate.
fn cost_hints(plan: &Plan) -> String {
    let hints: Vec<&String> = plan.migrations.iter().flat_map(|m| &m.cost_hints).collect();
    if hints.is_empty() {
        return String::new();
    }
    let what = match hints.len() {
        1 => "1 statement works".to_owned(),
        n => format!("{n} statements work"),
    };
    let mut out = format!(
        "{what} through the rows an object already holds (slow on a large object; \
         see docs/failures.md):\n"
    );
    for hint in hints {
        out.push_str(&format!("  {hint}\n"));
    }
    out
}

/// The batch statements (`-- durable-schema: batch`), one line each under a
/// heading (empty when there are none).
fn batches(plan: &Plan) -> String {
    let batches: Vec<String> = plan.migrations.iter().flat_map(|m| m.batches()).collect();
    if batches.is_empty() {
        return String::new();
    }
    let what = match batches.len() {
        1 => "1 batch statement".to_owned(),
        n => format!("{n} batch statements"),
    };
    let mut out = format!("{what}, one transaction per repetition (see docs/batches.md):\n");
    for at in batches {
        out.push_str(&format!("  {at}\n"));
    }
    out
}

/// Writes the lock: every checked migration, keeping the `replaces` lists
/// of the existing lock. Refuses while the directory has problems, so a
/// released migration that was edited cannot be locked over, except the
/// one of version `replace`, whose new text is recorded as a deliberate
/// replacement (the compiler refuses it when it is not released or its file
/// is unchanged).
fn lock(dir: &str, options: &Options, replace: Option<u32>) -> ExitCode {
    let result = match replace {
        Some(version) => directory(dir).and_then(|()| {
            let _progress = term::Progress::start(&format!("checking `{dir}`"));
            check_dir(base(), dir, &options.clone().replacing(version))
        }),
        None => checked(dir, options, false),
    };
    let plan = match result {
        Ok(plan) => plan,
        Err(errors) => {
            human::eprint(&errors);
            eprintln!();
            return fail(format!(
                "`{dir}` was not locked: fix the problems above first"
            ));
        }
    };
    let old = plan.lock.as_ref();
    let entries = plan.lock_entries();
    // The lock of a directory numbered from `0000_` (drizzle-kit's, D1's)
    // says how its versions and names relate.
    let text = render_lock_for(Numbering::of_dir(base(), dir), &entries);
    let path = base().join(dir).join(LOCK_FILE);
    let shown = display_join(dir, LOCK_FILE);
    let new: Vec<&str> = entries
        .iter()
        .filter(|e| old.and_then(|l| l.entry(e.version)).is_none())
        .map(|e| e.name.as_str())
        .collect();
    // What `--replace` recorded: the line's old checksum ended its list.
    let replaced = replace
        .and_then(|version| old.and_then(|l| l.entry(version)))
        .and_then(|e| Some((e, e.replaces.last()?)));
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() == Some(text.as_str()) {
        term::print(&format!(
            "`{shown}` is up to date: {} locked\n",
            migrations(entries.len())
        ));
        return ExitCode::SUCCESS;
    }
    // Write beside it and rename, so an interrupted run leaves the old lock.
    let tmp = base().join(dir).join(format!(".{LOCK_FILE}.tmp"));
    if let Err(e) = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return fail(format!("cannot write `{shown}`: {e}"));
    }
    let added = if new.is_empty() {
        String::new()
    } else {
        format!(" (new: {})", new.join(", "))
    };
    if let Some((entry, was)) = replaced {
        term::print(&format!(
            "recorded the replacement of `{}` (version {:04}) in `{shown}`: {was} -> {}\n",
            entry.name, entry.version, entry.checksum
        ));
    }
    term::print(&format!(
        "locked {} in `{shown}`{added}\n",
        migrations(entries.len())
    ));
    ExitCode::SUCCESS
}

/// `1 migration`, `3 migrations`.
fn migrations(count: usize) -> String {
    let s = if count == 1 { "" } else { "s" };
    format!("{count} migration{s}")
}

/// `dir/name` as the user wrote `dir` (`/name` for the root), as the
/// compiler shows paths.
fn display_join(dir: &str, name: &str) -> String {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() && !dir.is_empty() {
        format!("/{name}")
    } else if trimmed.is_empty() || trimmed == "." {
        name.to_owned()
    } else {
        format!("{trimmed}/{name}")
    }
}

/// The highest version among the migration file names of `dir` (0 when
/// there are none), by the loader's naming and numbering rules; problems
/// are left to the check.
fn head(dir: &str) -> u32 {
    let numbering = Numbering::of_dir(base(), dir);
    std::fs::read_dir(base().join(dir))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| durable_schema_compiler::migration_name(&name).map(|(n, _)| n))
        .filter_map(|number| numbering.version(number))
        .max()
        .unwrap_or(0)
}

fn schema(dir: &str, at: Option<u32>, options: &Options) -> ExitCode {
    if let Err(problem) = directory(dir) {
        return report(&problem);
    }
    let version = at.unwrap_or_else(|| head(dir));
    match schemas_at(base(), dir, options, &[version]) {
        Ok(dumps) => {
            let Some(dump) = dumps.first() else {
                return ExitCode::FAILURE;
            };
            term::print(&format!("-- the schema of `{dir}` at version {version}\n"));
            if !dump.objects.is_empty() {
                term::print("\n");
                term::print(&dump.to_sql());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => report(&errors),
    }
}
