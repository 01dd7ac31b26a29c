//! Compile-time logic of durable-schema, shared by the `#[durable_schema]`
//! macro, the tests and (later) the CLI: one code path from a directory of
//! `NNNN_description.sql` files to a checked [`Plan`].
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
#![warn(missing_docs)]

mod diagnostic;
mod hash;
mod replay;
mod rules;
mod sharpen;
mod source;
mod split;

use std::path::Path;

pub use diagnostic::Diagnostic;
pub use hash::{chain, checksum};
pub use replay::{replay, Finding, ReplaySource};
pub use rules::{decide, is_allowed_name, Denial, Rule, ALLOWED_FUNCTIONS, ALLOWED_MODULES};
pub use sharpen::{classify, StatementKind};
pub use source::{
    decode, load_dir, load_dir_lenient, normalize_text, parse_migration_name, Loaded, NameError,
    SourceFile,
};
pub use split::{line_col, split_statements, SplitStatement};

/// Options of the check, from the attribute's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The tracking table's name, which migrations may not touch.
    pub table: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            table: "migrations".to_owned(),
        }
    }
}

/// A statement of a checked migration, ready to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStatement {
    /// The text, without the terminating `;`.
    pub sql: String,
    /// 1-based line of its first token.
    pub line: u32,
    /// 1-based column of its first token.
    pub column: u32,
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
    /// The statements in execution order.
    pub statements: Vec<PlannedStatement>,
}

/// The checked chain: what the macro embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Migrations in version order, versions 1..=N.
    pub migrations: Vec<PlannedMigration>,
}

impl Plan {
    /// The highest version (the schema version once migrated).
    pub fn version(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.source.version)
    }
}

/// Loads `dir` (as written by the user, relative to `base`) and checks it:
/// file rules, then the replay with the Durable Object rules. Returns every
/// problem found, not only the first.
pub fn check_dir(base: &Path, dir: &str, options: &Options) -> Result<Plan, Vec<Diagnostic>> {
    let Loaded {
        files,
        mut errors,
        replayable,
    } = load_dir_lenient(base, dir);
    if errors.is_empty() {
        return check_files(files, options);
    }
    // Replay what loaded anyway, so every problem shows up in one build.
    if replayable && !files.is_empty() {
        if let Err(more) = check_files(files, options) {
            errors.extend(more);
        }
    }
    Err(errors)
}

/// Checks already-loaded files (see [`check_dir`]).
pub fn check_files(files: Vec<SourceFile>, options: &Options) -> Result<Plan, Vec<Diagnostic>> {
    let sources: Vec<ReplaySource<'_>> = files
        .iter()
        .map(|f| ReplaySource {
            display_path: &f.display_path,
            text: &f.text,
        })
        .collect();
    let findings = replay(&sources, &options.table);
    if !findings.is_empty() {
        return Err(findings.into_iter().map(|f| f.diagnostic).collect());
    }
    let mut previous = String::new();
    let migrations = files
        .into_iter()
        .map(|source| {
            let checksum = checksum(&source.text);
            let chain = chain(&previous, source.version, &checksum);
            previous.clone_from(&chain);
            let statements = split_statements(&source.text)
                .into_iter()
                .map(|s| {
                    let (line, column) = line_col(&source.text, s.offset);
                    PlannedStatement {
                        sql: s.sql.to_owned(),
                        line,
                        column,
                    }
                })
                .collect();
            PlannedMigration {
                source,
                checksum,
                chain,
                statements,
            }
        })
        .collect();
    Ok(Plan { migrations })
}

/// The tracking table's contract (name rules, columns, SQL), owned by the
/// runtime and shared with the replay so the two cannot drift.
pub use durable_schema_runtime::tracking;
