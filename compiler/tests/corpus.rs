//! The corpus test (DESIGN.md, "Compile-time checks", point 4).
//!
//! The full corpus, `shared/corpus/sqlite-migrations/` beside the workspace,
//! holds 679 real migration files from 29 projects. Its permissively licensed
//! part (313 files from 16 projects: MIT, Apache-2.0, BSD-3-Clause) is
//! vendored in `compiler/tests/corpus/` (`vendor.sh` there regenerates it,
//! `LICENSES.md` credits the projects), and that is what this test runs by
//! default, so a fresh clone passes alone. `DURABLE_SCHEMA_CORPUS=<dir>` runs
//! the full corpus in `<dir>` instead (a relative path is taken from the
//! workspace root); CI does. Nothing outside the repository is read unless
//! that variable is set, and a directory it names must exist.
//!
//! `SOURCES.tsv` groups the files into replay sets (`set`), orders them
//! (`seq`), says whether each is an `up` or a `down` migration and which
//! `transform` it needs; `VERDICTS.tsv` says what real SQLite said of each
//! file (`sqlite` = ok/err, `sqlite_err`, `stmts`).
//!
//! The rule: every set that real SQLite accepts must pass the validator,
//! except where a Durable Object rule forbids a statement; those exceptions
//! are listed below with the rule each breaks, and anything else fails the
//! test, as does an exception that no longer happens. Sets that SQLite
//! rejects must be rejected too, at the same file and for the same reason
//! where the two replays are comparable.
//!
//! How the verdicts were computed (checked by re-running them; keep the
//! replay below in line with it):
//! - The files of a set run in `seq` order on one database, each file
//!   statement by statement; a failing statement is recorded (its error is
//!   the file's `sqlite_err`) and the remaining statements still run. A file
//!   that fails therefore leaves partial effects behind, so after the first
//!   failing file of a set the verdicts and this replay (which runs each
//!   migration in a transaction and stops reporting cascades) no longer see
//!   the same database: only files up to the first failure are compared.
//! - `down` files never affect later `up` files (atuin's `scripts` set drops
//!   its tables in a down file and the next up file still finds them). Each
//!   down file is judged on the schema that the `up` files before it leave,
//!   which is what this test replays. (Running all downs after all ups in
//!   reverse order gives the same verdicts on this corpus.)
//! - `transform = goose`: only the `-- +goose Up` section runs; the file is
//!   cut at its `-- +goose Down` line.
//! - Statement counts (`stmts`) come from SQLite's own splitting, where text
//!   left after the last `;` counts as one more statement if it holds a
//!   comment; the splitter must agree with them.
//!
//! The baseline (`compiler/src/baseline.rs`): for every set whose `up` files
//! real SQLite and the validator all accept, the baseline of the `up` chain
//! and the chain itself, each applied to a fresh database configured like a
//! Durable Object's (independently of the compiler's own verification: the
//! chain one migration per transaction, the baseline in one), its clock
//! standing at the same instant (a baseline reads the clock where the chain
//! did: a `CURRENT_TIMESTAMP` default of a seed row), must give the same
//! `CanonicalDump`. A set without a baseline must say why in a note of
//! a known kind (`no_baseline_kind`), and fewer sets with a baseline than
//! expected fails the test.
//!
//! The corpus uses other file-naming schemes than `NNNN_name.sql`, so the
//! test calls [`replay`] and [`replay_baseline`] directly, independent of
//! file names.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use durable_schema_compiler::{
    normalize_text, replay, replay_baseline, split_statements, tracking, BaselineScript,
    CanonicalDump, Finding, NoBaseline, ReplaySource, Rule,
};
use durable_schema_workerd::ClockedConnection;
use rusqlite::Connection;

/// Statements real SQLite accepts in a file that a Durable Object refuses:
/// `(set, file, rule)`. `file` is the corpus file name without its project
/// directory. Every finding in a file SQLite accepts must be listed here, and
/// every entry must still happen, with this rule.
const EXCEPTIONS: &[(&str, &str, Rule)] = &[
    // `CREATE TABLE IF NOT EXISTS migrations (...)`, and its down file's
    // `DROP TABLE IF EXISTS migrations`: authelia keeps its own tracking table
    // under the name durable-schema uses by default (it would set
    // `table = "..."`). The rest of the set is checked with another name.
    // (Its V0007 files do the same, after V0002, which SQLite rejects.)
    (
        "authelia__authelia:main",
        "internal__storage__migrations__sqlite__V0001.Initial_Schema.up.sql",
        Rule::TrackingTable,
    ),
    (
        "authelia__authelia:main",
        "internal__storage__migrations__sqlite__V0001.Initial_Schema.down.sql",
        Rule::TrackingTable,
    ),
    // `CREATE TEMPORARY TABLE _backup_ruleEngineActions AS SELECT ...`.
    (
        "karakeep-app__karakeep:main",
        "packages__db__drizzle__0084_rule_engine_multi_list_support.sql",
        Rule::Temp,
    ),
    // `PRAGMA application_id = 0x63616c69` and `pragma user_version=27`.
    (
        "kovidgoyal__calibre:metadata",
        "resources__metadata_sqlite.sql",
        Rule::Pragma,
    ),
    // `CREATE TEMP TABLE contentstemp(...)`.
    (
        "quitesimpleorg__looqs:main",
        "shared__migrations__2.sql",
        Rule::Temp,
    ),
    // Dropping a table that other tables reference, with the keys on (they
    // stay on inside a migration's transaction on a Durable Object, whatever
    // `PRAGMA foreign_keys = OFF` says). ON DELETE CASCADE with the
    // referencing table still there at the end of the migration: the drop
    // silently deleted its rows (a drizzle table rebuild). (karakeep 0012 and
    // openstatus 0003 drop the referencing table right after: safe, passed.)
    (
        "openstatusHQ__openstatus:main",
        "packages__db__drizzle__0006_tired_anita_blake.sql",
        Rule::ReferencedDrop,
    ),
    // ON DELETE NO ACTION without deferred keys: the drop fails with
    // `FOREIGN KEY constraint failed` once the referencing table has rows
    // (down files that drop parents before children, rebuilds that drop the
    // old parent while children point at it).
    (
        "dani-garcia__vaultwarden:main",
        "migrations__sqlite__2018-01-14-171611_create_tables__down.sql",
        Rule::ReferencedDrop,
    ),
    (
        "dani-garcia__vaultwarden:main",
        "migrations__sqlite__2018-02-17-205753_create_collections_and_orgs__down.sql",
        Rule::ReferencedDrop,
    ),
    (
        "dani-garcia__vaultwarden:main",
        "migrations__sqlite__2018-04-27-155151_create_users_ciphers__up.sql",
        Rule::ReferencedDrop,
    ),
    (
        "dani-garcia__vaultwarden:main",
        "migrations__sqlite__2020-08-02-025025_add_favorites_table__up.sql",
        Rule::ReferencedDrop,
    ),
    (
        "dani-garcia__vaultwarden:main",
        "migrations__sqlite__2022-07-27-110000_add_group_support__down.sql",
        Rule::ReferencedDrop,
    ),
    (
        "diesel-rs__diesel:tests",
        "migrations__sqlite__20151219180527_create_users_and_posts_and_comments__down.sql",
        Rule::ReferencedDrop,
    ),
    (
        "diesel-rs__diesel:tests",
        "migrations__sqlite__20170805195107_tables_which_make_infer_joinable_blow_up__down.sql",
        Rule::ReferencedDrop,
    ),
    (
        "go-shiori__shiori:main",
        "internal__database__migrations__sqlite__0003_uniq_id.up.sql",
        Rule::ReferencedDrop,
    ),
];

/// What a corpus holds, so that one that silently shrinks fails the test.
struct Expected {
    files: usize,
    sets: usize,
    /// Sets whose every file real SQLite accepts (at least this many).
    accepted_sets: usize,
    /// `EXCEPTIONS` entries whose set the corpus holds: each must happen.
    exceptions: usize,
    /// Sets whose baseline gives the same database as their chain (at
    /// least this many).
    baselines: usize,
}

/// The vendored corpus, `compiler/tests/corpus/`.
const VENDORED: Expected = Expected {
    files: 313,
    sets: 55,
    accepted_sets: 48,
    exceptions: 5,
    baselines: 48,
};

/// The full corpus, `shared/corpus/sqlite-migrations/`.
const FULL: Expected = Expected {
    files: 679,
    sets: 72,
    accepted_sets: 56,
    exceptions: 14,
    baselines: 52,
};

/// Names a full corpus directory to run instead of the vendored one.
const CORPUS_ENV: &str = "DURABLE_SCHEMA_CORPUS";
/// How to run the full corpus, from the workspace root beside `shared/`.
/// (The line continuation keeps the space before it.)
const FULL_COMMAND: &str = "DURABLE_SCHEMA_CORPUS=../shared/corpus/sqlite-migrations \
                            cargo test -p durable-schema-compiler --test corpus";

/// The tracking table name users get by default.
const DEFAULT_TRACKING: &str = "migrations";
/// A name no corpus project uses, for sets that collide with the default.
const CORPUS_TRACKING: &str = "durable_schema_corpus_tracking";

/// The corpus a run replays.
struct Corpus {
    dir: PathBuf,
    /// Named by `DURABLE_SCHEMA_CORPUS` (the full corpus), not the vendored copy.
    full: bool,
    expected: Expected,
}

impl Corpus {
    /// The vendored copy, unless `DURABLE_SCHEMA_CORPUS` names another
    /// directory. Only that variable ever leads outside the repository.
    fn select() -> Corpus {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(value) = std::env::var_os(CORPUS_ENV) else {
            return Corpus {
                dir: manifest.join("tests/corpus"),
                full: false,
                expected: VENDORED,
            };
        };
        assert!(
            !value.is_empty(),
            "{CORPUS_ENV} is set but empty: unset it to run the vendored corpus, or set it to \
             the full corpus directory"
        );
        // Test binaries run in `compiler/`; a relative path is meant from the
        // workspace root, where the README's commands run.
        let given = PathBuf::from(&value);
        let root = manifest.parent().unwrap_or(manifest);
        Corpus {
            dir: if given.is_absolute() {
                given
            } else {
                root.join(given)
            },
            full: true,
            expected: FULL,
        }
    }

    /// What this run replays, for the output and the failure message.
    fn describe(&self) -> String {
        if self.full {
            format!(
                "corpus: the full corpus at {} (from {CORPUS_ENV})",
                self.dir.display()
            )
        } else {
            format!(
                "corpus: the vendored copy at {} (the permissively licensed projects); the other \
                 {} sets ({} files) of the full corpus were not run: run them with `{}` from \
                 the workspace root",
                self.dir.display(),
                FULL.sets - VENDORED.sets,
                FULL.files - VENDORED.files,
                FULL_COMMAND
            )
        }
    }

    /// Fails, saying why, unless the directory can be read and holds a corpus.
    fn check_readable(&self) {
        let problem = match std::fs::read_dir(&self.dir) {
            Err(e) => Some(format!("cannot read it: {e}")),
            Ok(_) if !self.dir.join("SOURCES.tsv").is_file() => {
                Some("it has no SOURCES.tsv".to_owned())
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            if self.full {
                panic!(
                    "{CORPUS_ENV} names {}, but {problem}; the full corpus test cannot run \
                     (unset {CORPUS_ENV} to run the vendored corpus)",
                    self.dir.display()
                );
            }
            panic!(
                "the vendored corpus is missing: {}: {problem} (it is part of the repository; \
                 `compiler/tests/corpus/vendor.sh` regenerates it from the full corpus, and \
                 {CORPUS_ENV}=<dir> runs a full corpus instead)",
                self.dir.display()
            );
        }
    }
}

type Row = BTreeMap<String, String>;

fn read_tsv(dir: &Path, name: &str) -> Vec<Row> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("{} is empty", path.display()))
        .split('\t')
        .collect();
    lines
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                cells.len(),
                header.len(),
                "{}: line {} has {} cells, the header {}",
                path.display(),
                i + 2,
                cells.len(),
                header.len()
            );
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| ((*h).to_owned(), c.to_owned()))
                .collect()
        })
        .collect()
}

fn cell<'a>(row: &'a Row, column: &str) -> &'a str {
    row.get(column)
        .unwrap_or_else(|| panic!("corpus TSV has no column `{column}`"))
}

/// goose runs the `-- +goose Up` section of a file: cut at `-- +goose Down`.
fn goose_up(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let annotation = line.trim().strip_prefix("--").map(str::trim);
        if annotation.is_some_and(|a| {
            a.get(..11)
                .is_some_and(|a| a.eq_ignore_ascii_case("+goose down"))
        }) {
            break;
        }
        out.push_str(line);
    }
    out
}

#[derive(Debug)]
struct File {
    /// The `corpus_file` column: `project/file.sql`.
    path: String,
    /// The file name without its project directory (the exception key).
    name: String,
    up: bool,
    text: String,
    sqlite_ok: bool,
    /// SQLite's message, without `stmt#N: ` and the quoted statement.
    sqlite_err: String,
    stmts: usize,
}

struct Set {
    name: String,
    files: Vec<File>,
}

impl Set {
    fn accepted(&self) -> bool {
        self.files.iter().all(|f| f.sqlite_ok)
    }
}

/// `stmt#3: no such table: x in <statement> at offset 12` → `no such table: x`.
fn sqlite_message(err: &str) -> String {
    let err = match err.split_once(": ") {
        Some((head, rest)) if head.starts_with("stmt#") => rest,
        _ => err,
    };
    err.split(" in ").next().unwrap_or(err).trim().to_owned()
}

fn load(corpus: &Corpus) -> Vec<Set> {
    corpus.check_readable();
    let dir = &corpus.dir;
    let sources = read_tsv(dir, "SOURCES.tsv");
    let verdicts: BTreeMap<String, Row> = read_tsv(dir, "VERDICTS.tsv")
        .into_iter()
        .map(|r| (cell(&r, "file").to_owned(), r))
        .collect();
    assert_eq!(
        sources.len(),
        verdicts.len(),
        "SOURCES.tsv and VERDICTS.tsv list different numbers of files"
    );

    let mut sets: BTreeMap<String, Vec<(usize, File)>> = BTreeMap::new();
    for row in &sources {
        let path = cell(row, "corpus_file").to_owned();
        let verdict = verdicts
            .get(&path)
            .unwrap_or_else(|| panic!("VERDICTS.tsv has no row for {path}"));
        let set = cell(row, "set");
        assert_eq!(cell(verdict, "set"), set, "{path}: set differs");
        let role = cell(row, "role");
        assert_eq!(cell(verdict, "role"), role, "{path}: role differs");
        assert!(role == "up" || role == "down", "{path}: role `{role}`");
        let seq: usize = cell(row, "seq")
            .parse()
            .unwrap_or_else(|e| panic!("{path}: bad seq: {e}"));

        let bytes = std::fs::read(dir.join(&path))
            .unwrap_or_else(|e| panic!("cannot read corpus file {path}: {e}"));
        let decoded =
            std::str::from_utf8(&bytes).unwrap_or_else(|e| panic!("{path} is not UTF-8: {e}"));
        let mut text = normalize_text(decoded);
        match cell(row, "transform") {
            "" => {}
            "goose" => text = goose_up(&text),
            other => panic!("{path}: unknown transform `{other}`"),
        }
        let sqlite = cell(verdict, "sqlite");
        assert!(
            sqlite == "ok" || sqlite == "err",
            "{path}: sqlite `{sqlite}`"
        );
        let name = path
            .split_once('/')
            .map_or(path.as_str(), |(_, name)| name)
            .to_owned();
        let file = File {
            name,
            up: role == "up",
            text,
            sqlite_ok: sqlite == "ok",
            sqlite_err: sqlite_message(cell(verdict, "sqlite_err")),
            stmts: cell(verdict, "stmts")
                .parse()
                .unwrap_or_else(|e| panic!("{path}: bad stmts: {e}")),
            path,
        };
        sets.entry(set.to_owned()).or_default().push((seq, file));
    }
    sets.into_iter()
        .map(|(name, mut files)| {
            files.sort_by_key(|(seq, _)| *seq);
            let seqs: Vec<usize> = files.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(
                seqs,
                (0..files.len()).collect::<Vec<_>>(),
                "{name}: seq must run 0..n"
            );
            Set {
                name,
                files: files.into_iter().map(|(_, f)| f).collect(),
            }
        })
        .collect()
}

/// What the replay made of a set.
struct Checked {
    /// `(file index, finding)`, in file order.
    findings: Vec<(usize, Finding)>,
    /// The tracking table name the `up` chain was replayed with last, and
    /// that chain's baseline (none when it has findings).
    baseline: (&'static str, Result<BaselineScript, NoBaseline>),
}

/// Replays a set: the `up` files as one chain (with its baseline), and each
/// `down` file on top of the `up` files before it.
fn replay_set(set: &Set, tracking: &'static str) -> Checked {
    fn source(f: &File) -> ReplaySource<'_> {
        ReplaySource {
            display_path: &f.path,
            text: &f.text,
        }
    }
    let ups: Vec<usize> = (0..set.files.len()).filter(|&i| set.files[i].up).collect();
    let chain: Vec<ReplaySource<'_>> = ups.iter().map(|&i| source(&set.files[i])).collect();
    let (findings, baseline) = replay_baseline(&chain, tracking);
    let mut out: Vec<(usize, Finding)> = findings
        .into_iter()
        .map(|f| (ups[f.migration], f))
        .collect();
    for (i, down) in set.files.iter().enumerate().filter(|(_, f)| !f.up) {
        let mut chain: Vec<ReplaySource<'_>> = ups
            .iter()
            .filter(|&&u| u < i)
            .map(|&u| source(&set.files[u]))
            .collect();
        chain.push(source(down));
        let last = chain.len() - 1;
        // Findings in the ups are the main chain's, already collected.
        out.extend(
            replay(&chain, tracking)
                .into_iter()
                .filter(|f| f.migration == last)
                .map(|f| (i, f)),
        );
    }
    out.sort_by_key(|(i, _)| *i);
    Checked {
        findings: out,
        baseline: (tracking, baseline),
    }
}

/// Replays with the default tracking table; a set that has a table of that
/// name keeps those findings and is checked again with a name it does not
/// use, so that the refused CREATE TABLE does not hide later problems.
/// The baseline is the second replay's.
fn check_set(set: &Set) -> Checked {
    let checked = replay_set(set, DEFAULT_TRACKING);
    if !checked
        .findings
        .iter()
        .any(|(_, f)| f.rule == Some(Rule::TrackingTable))
    {
        return checked;
    }
    let mut merged: Vec<(usize, Finding)> = checked
        .findings
        .into_iter()
        .filter(|(_, f)| f.rule == Some(Rule::TrackingTable))
        .collect();
    let again = replay_set(set, CORPUS_TRACKING);
    merged.extend(again.findings);
    merged.sort_by_key(|(i, _)| *i);
    Checked {
        findings: merged,
        baseline: again.baseline,
    }
}

/// Runs `sql`, one statement, to its last row, as the replay and the
/// executor do.
fn run_statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}

/// A database built independently of the compiler's replay: configured like
/// a Durable Object's ([`durable_schema_workerd::configure`], workerd's rules), with the
/// tracking table `table`, then each of `transactions` (statements) in a
/// transaction of its own.
fn database<'a>(
    table: &str,
    transactions: impl IntoIterator<Item = Vec<&'a str>>,
) -> Result<ClockedConnection, String> {
    // One instant for the chain and the baseline, which reads the clock
    // where the chain did (2024-02-29 12:34:56.789 UTC).
    let conn = ClockedConnection::open_in_memory(1_709_210_096_789).map_err(|e| e.to_string())?;
    let rules = durable_schema_workerd::configure(&conn, None).map_err(|e| e.to_string())?;
    conn.execute_batch(&tracking::create_table(table))
        .map_err(|e| format!("cannot create the tracking table: {e}"))?;
    for statements in transactions {
        rules
            .trusted(|| conn.execute_batch("BEGIN"))
            .map_err(|e| format!("BEGIN: {e}"))?;
        for sql in statements {
            run_statement(&conn, sql).map_err(|e| format!("`{sql}` fails: {e}"))?;
        }
        rules
            .trusted(|| conn.execute_batch("COMMIT"))
            .map_err(|e| format!("COMMIT fails: {e}"))?;
    }
    Ok(conn)
}

/// Applies the `up` files of `set` one migration per transaction, and
/// `baseline` in one transaction, each on a fresh database, and compares
/// their canonical dumps: `None` when they are the same, else the problem.
fn compare_baseline(set: &Set, tracking: &str, baseline: &BaselineScript) -> Option<String> {
    let chain = database(
        tracking,
        set.files
            .iter()
            .filter(|f| f.up)
            .map(|f| split_statements(&f.text).iter().map(|s| s.sql).collect()),
    );
    let chain = match chain {
        Ok(conn) => conn,
        Err(e) => return Some(format!("the chain fails: {e}")),
    };
    let applied = database(
        tracking,
        [baseline
            .statements
            .iter()
            .map(|s| s.sql(&baseline.sql))
            .collect()],
    );
    let applied = match applied {
        Ok(conn) => conn,
        Err(e) => return Some(format!("the baseline fails to apply: {e}")),
    };
    let dump = |conn: &Connection| CanonicalDump::of(conn, tracking);
    match (dump(&chain), dump(&applied)) {
        (Ok(a), Ok(b)) if a == b => None,
        (Ok(a), Ok(b)) => Some(format!(
            "the baseline does not give the chain's database: {}",
            a.difference(&b)
                .unwrap_or_else(|| "the dumps differ".to_owned())
        )),
        (Err(e), _) | (_, Err(e)) => Some(format!("cannot dump a database: {e}")),
    }
}

/// The kind of a baseline-less set's note (see `compiler/src/baseline.rs`),
/// when it is one a corpus set may give; any other note fails the test, so a
/// new kind of fallback is noticed. A baseline that fails or differs when
/// the compiler verifies it is a derive bug, except for what SQLite keeps
/// in `sqlite_stat*` (`ANALYZE`), which a baseline may not write.
fn no_baseline_kind(note: &str) -> Option<&'static str> {
    let unreproducible = note.ends_with(", which a build cannot reproduce");
    let clock = [
        " reads the clock in a `",
        " takes a value from the clock that no clock expression of the chain gives",
        " depend on the clock",
        " depends on the clock",
        "the chain fails when replayed at another instant",
    ];
    if unreproducible && clock.iter().any(|c| note.contains(c)) {
        Some("clock beyond its values")
    } else if unreproducible && note.contains(" calls `") {
        Some("unreproducible function")
    } else if unreproducible && note.contains(" inserts into `") {
        Some("unreproducible default")
    } else if unreproducible && note.contains(" writes rows that depend on `") {
        Some("schema listing")
    } else if note.starts_with("the virtual table `") && note.ends_with("` holds rows") {
        Some("virtual table rows")
    } else if note.starts_with("the chain leaves a broken foreign key") {
        Some("broken foreign key")
    } else if note.starts_with("a row of `") && note.ends_with("(`SQLITE_LIMIT_SQL_LENGTH`)") {
        Some("row over the statement limit")
    } else if note.starts_with("the baseline would be ") {
        Some("size")
    } else if note.starts_with("the baseline does not give the chain's database: ")
        && note.contains("`sqlite_stat")
    {
        Some("statistics (ANALYZE)")
    } else {
        None
    }
}

/// Whether SQLite's verdict on file `i` saw the same database as the replay:
/// no file before it (in its chain) failed in the verdicts.
fn comparable(set: &Set, i: usize) -> bool {
    set.files
        .iter()
        .take(i)
        .filter(|f| f.up)
        .all(|f| f.sqlite_ok)
}

/// Statements after the last one: SQLite's splitting counts a trailing
/// comment as one more (empty) statement.
fn trailing_comment(text: &str) -> bool {
    let end = split_statements(text)
        .last()
        .map_or(0, |s| s.offset + s.sql.len());
    text.get(end..)
        .unwrap_or_default()
        .trim_start_matches(|c: char| c == ';' || c.is_whitespace())
        .chars()
        .any(|c| !c.is_whitespace() && c != ';')
}

fn show(set: &Set, f: &Finding) -> String {
    format!(
        "  [{}] rule {}: {}",
        set.name,
        f.rule.map_or("none (SQLite error)", Rule::name),
        f.diagnostic.to_string().replace('\n', "\n      ")
    )
}

#[test]
fn corpus_sets_real_sqlite_accepts_pass_the_validator() {
    let corpus = Corpus::select();
    let ran = corpus.describe();
    // Straight to stderr, so the line shows even when the test passes.
    let _ = writeln!(std::io::stderr(), "{ran}");
    let sets = load(&corpus);
    let expected = &corpus.expected;
    let mut failures: Vec<String> = Vec::new();

    let files: usize = sets.iter().map(|s| s.files.len()).sum();
    if files != expected.files || sets.len() != expected.sets {
        failures.push(format!(
            "the corpus has {files} files in {} sets, expected {} in {}",
            sets.len(),
            expected.files,
            expected.sets
        ));
    }

    // The splitter against SQLite's statement counts.
    for set in &sets {
        for f in &set.files {
            let ours = split_statements(&f.text).len() + usize::from(trailing_comment(&f.text));
            if ours != f.stmts {
                failures.push(format!(
                    "{}: split into {ours} statements (counting a trailing comment), SQLite counted {}",
                    f.path, f.stmts
                ));
            }
        }
    }

    // In the vendored corpus, exceptions of sets it does not hold belong to
    // the full corpus: not required here. All others must happen.
    let loaded = |set_name: &str| sets.iter().any(|s| s.name == set_name);
    let required = |set_name: &str| corpus.full || loaded(set_name);
    let mut required_exceptions = 0;
    for &(set_name, file, rule) in EXCEPTIONS {
        if !required(set_name) {
            continue;
        }
        required_exceptions += 1;
        match sets.iter().find(|s| s.name == set_name) {
            None => failures.push(format!("exception names unknown set `{set_name}`")),
            Some(set) => match set.files.iter().position(|f| f.name == file) {
                None => failures.push(format!(
                    "exception names unknown file `{file}` in `{set_name}`"
                )),
                Some(i) if !set.files[i].sqlite_ok || !comparable(set, i) => {
                    failures.push(format!(
                    "exception `{set_name}` `{file}` ({}) names a file SQLite does not accept in \
                     the same state; exceptions are for files SQLite accepts",
                    rule.name()
                ))
                }
                Some(_) => {}
            },
        }
    }

    let mut accepted = 0;
    let mut passed = 0;
    let mut with_exceptions = 0;
    let mut by_rule: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut rejected = 0;
    let mut rejected_by_us = 0;
    let mut confirmed_files = 0;
    let mut confirmed_sets = 0;
    let mut used: BTreeSet<(&str, &str, Rule)> = BTreeSet::new();

    let mut baselines = 0;
    let mut without_baseline: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut fallback_notes: Vec<String> = Vec::new();

    for set in &sets {
        let Checked {
            findings,
            baseline: (tracking, baseline),
        } = check_set(set);
        let at = |i: usize| findings.iter().filter(move |(j, _)| *j == i);
        if set.accepted() {
            accepted += 1;
        } else {
            rejected += 1;
            if !findings.is_empty() {
                rejected_by_us += 1;
            }
        }

        // Files SQLite accepted on the same database: only DO-rule
        // exceptions may be found there.
        let mut excepted = false;
        for (i, file) in set.files.iter().enumerate() {
            if !file.sqlite_ok || !comparable(set, i) {
                continue;
            }
            for (_, f) in at(i) {
                let listed = f.rule.and_then(|rule| {
                    EXCEPTIONS
                        .iter()
                        .find(|(s, n, r)| *s == set.name && *n == file.name && *r == rule)
                });
                match listed {
                    Some(&key) => {
                        excepted = true;
                        used.insert(key);
                    }
                    None => failures.push(format!(
                        "SQLite accepts {} but the validator rejects it{}:\n{}",
                        file.path,
                        match f.rule {
                            Some(_) =>
                                " (a DO rule: add it to EXCEPTIONS if workerd really refuses it)",
                            None => " (not a DO rule: a validator bug or an SQLite difference)",
                        },
                        show(set, f)
                    )),
                }
            }
        }
        if set.accepted() {
            if findings.is_empty() {
                passed += 1;
            } else if excepted {
                with_exceptions += 1;
            }
        }

        // Files SQLite rejected on the same database: the validator must
        // reject them too, with SQLite's message or a DO rule.
        let mut confirmed = !set.accepted();
        for (i, file) in set.files.iter().enumerate() {
            if file.sqlite_ok || !comparable(set, i) {
                continue;
            }
            let ours: Vec<&Finding> = at(i).map(|(_, f)| f).collect();
            // A DO rule that refuses the statement first counts (croak-ai's
            // `vss0` module); the tracking-table name says nothing of SQL.
            let same_reason = ours.iter().any(|f| match f.rule {
                Some(Rule::TrackingTable) => false,
                Some(_) => true,
                None => f.diagnostic.message.starts_with(&file.sqlite_err),
            });
            if ours.is_empty() {
                confirmed = false;
                failures.push(format!(
                    "SQLite rejects {} ({}) but the validator accepts it",
                    file.path, file.sqlite_err
                ));
            } else if same_reason {
                confirmed_files += 1;
            } else {
                confirmed = false;
                failures.push(format!(
                    "SQLite rejects {} with `{}`, the validator for another reason:\n{}",
                    file.path,
                    file.sqlite_err,
                    ours.iter()
                        .map(|f| show(set, f))
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
        if confirmed {
            confirmed_sets += 1;
        }

        // The baseline of an `up` chain that real SQLite and the replay
        // accept must give the chain's database, or say why there is none.
        let ups_accepted = set.files.iter().filter(|f| f.up).all(|f| f.sqlite_ok);
        let ups_clean = findings.iter().all(|(i, _)| !set.files[*i].up);
        if ups_accepted && ups_clean {
            match &baseline {
                Ok(b) => match compare_baseline(set, tracking, b) {
                    None => baselines += 1,
                    Some(problem) => failures.push(format!("[{}] {problem}", set.name)),
                },
                Err(NoBaseline::Because(note)) => match no_baseline_kind(note) {
                    Some(kind) => {
                        *without_baseline.entry(kind).or_default() += 1;
                        fallback_notes.push(format!("  [{}] {kind}: {note}", set.name));
                    }
                    None => failures.push(format!(
                        "[{}] no baseline, for a reason of no known kind (a derive bug, or add \
                         it to no_baseline_kind): {note}",
                        set.name
                    )),
                },
                Err(NoBaseline::Off) => {
                    failures.push(format!("[{}] the baseline is off", set.name));
                }
            }
        }
    }

    if required_exceptions != expected.exceptions {
        failures.push(format!(
            "{required_exceptions} exceptions name sets of this corpus, expected {}",
            expected.exceptions
        ));
    }
    for &(set_name, file, rule) in EXCEPTIONS {
        if required(set_name) && !used.contains(&(set_name, file, rule)) {
            failures.push(format!(
                "stale exception: `{set_name}` `{file}` no longer breaks rule `{}`; remove it \
                 (or update its rule)",
                rule.name()
            ));
        }
    }
    for (_, _, rule) in &used {
        *by_rule.entry(rule.name()).or_default() += 1;
    }
    if accepted < expected.accepted_sets {
        failures.push(format!(
            "only {accepted} sets are accepted by SQLite, expected {}",
            expected.accepted_sets
        ));
    }
    if baselines < expected.baselines {
        failures.push(format!(
            "only {baselines} sets have a baseline that gives their chain's database, expected {}",
            expected.baselines
        ));
    }
    if rejected_by_us != rejected {
        failures.push(format!(
            "the validator rejects {rejected_by_us} of the {rejected} sets SQLite rejects"
        ));
    }

    let rules = by_rule
        .iter()
        .map(|(rule, n)| format!("{rule} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let counts = format!(
        "corpus: {} sets ({files} files); {accepted} accepted by SQLite: {passed} pass, \
         {with_exceptions} pass but for DO-rule exceptions; {} of {required_exceptions} \
         exceptions happen ({rules}){}; \
         {rejected} rejected by SQLite: {rejected_by_us} rejected by the validator, \
         {confirmed_sets} confirmed at the same file ({confirmed_files} files)",
        sets.len(),
        used.len(),
        match EXCEPTIONS.len() - required_exceptions {
            0 => String::new(),
            n => format!(", {n} more belong to sets not run"),
        },
    );
    let fallbacks = without_baseline
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let without: usize = without_baseline.values().sum();
    let counts = format!(
        "{counts}\ncorpus baselines: {} sets whose up files SQLite and the validator accept: \
         {baselines} with a baseline that gives the chain's database, {without} without \
         ({fallbacks}){}",
        baselines + without,
        fallback_notes
            .iter()
            .map(|n| format!("\n{n}"))
            .collect::<String>(),
    );
    let _ = writeln!(std::io::stderr(), "{counts}");
    assert!(
        failures.is_empty(),
        "{ran}\n{counts}\n\n{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The checked queries' inference (`durable_schema_compiler::query`)
/// against real data: for every set whose `up` chain SQLite and the
/// validator accept, the chain is applied with its seeded rows, and for
/// each table `SELECT * FROM t` (and, for each single-column foreign key,
/// the child `LEFT JOIN` its parent) is described against the chain's head
/// schema and run (the parent `LEFT JOIN` the child too: parents without
/// children are common in seeded rows, orphans are not): no value may
/// contradict the inferred type or nullability. Types are judged by storage class, as a decoder reads
/// them: INTEGER holds integers, REAL reals (or integers, which it reads as
/// reals), TEXT text, BLOB blobs; `Any` anything.
#[test]
fn corpus_rows_never_contradict_the_inferred_types() {
    use durable_schema_compiler::head_schema;
    use durable_schema_compiler::query::{Description, HeadDb, SqlType};
    use rusqlite::types::ValueRef;

    let corpus = Corpus::select();
    let sets = load(&corpus);
    let mut failures: Vec<String> = Vec::new();
    let (mut checked_sets, mut queries, mut values) = (0, 0, 0usize);
    for set in &sets {
        if !set.accepted() {
            continue;
        }
        let tracking = if set.files.iter().any(|f| {
            f.text
                .to_ascii_lowercase()
                .contains("table if not exists migrations")
        }) {
            CORPUS_TRACKING
        } else {
            DEFAULT_TRACKING
        };
        let chain: Vec<ReplaySource<'_>> = set
            .files
            .iter()
            .filter(|f| f.up)
            .map(|f| ReplaySource::new(&f.path, &f.text))
            .collect();
        if !replay(&chain, tracking).is_empty() {
            continue;
        }
        let Ok(conn) = database(
            tracking,
            set.files
                .iter()
                .filter(|f| f.up)
                .map(|f| split_statements(&f.text).iter().map(|s| s.sql).collect()),
        ) else {
            continue;
        };
        // The head schema as the replay records it (`Plan::head_schema`).
        let objects = head_schema(&conn, tracking).unwrap();
        let head = match HeadDb::new(&objects, tracking) {
            Ok(head) => head,
            Err(e) => {
                failures.push(format!("{}: the head schema does not build: {e}", set.name));
                continue;
            }
        };
        checked_sets += 1;
        let quoted = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        let columns_of = |table: &str| -> Vec<String> {
            conn.prepare("SELECT name FROM pragma_table_info(?1)")
                .unwrap()
                .query_map([table], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let mut statements: Vec<(String, String)> = Vec::new();
        for table in objects.iter().filter(|o| o.kind == "table") {
            let t = &table.name;
            statements.push((
                format!("SELECT * FROM {}", quoted(t)),
                // For columns whose names are not Rust identifiers.
                format!(
                    "SELECT {} FROM {}",
                    columns_of(t)
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{} AS c{i}", quoted(c)))
                        .collect::<Vec<_>>()
                        .join(", "),
                    quoted(t)
                ),
            ));
            let keys: Vec<(i64, String, String, Option<String>)> = conn
                .prepare("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)")
                .unwrap()
                .query_map([t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for (id, parent, from, to) in &keys {
                let single = keys.iter().filter(|k| k.0 == *id).count() == 1;
                let (Some(to), true) = (to, single) else {
                    continue;
                };
                let mut list = Vec::new();
                for (i, c) in columns_of(t).iter().enumerate() {
                    list.push(format!("c.{} AS c{i}", quoted(c)));
                }
                for (i, c) in columns_of(parent).iter().enumerate() {
                    list.push(format!("p.{} AS p{i}", quoted(c)));
                }
                let join = format!(
                    "SELECT {} FROM {} AS c LEFT JOIN {} AS p ON p.{} = c.{}",
                    list.join(", "),
                    quoted(t),
                    quoted(parent),
                    quoted(to),
                    quoted(from)
                );
                statements.push((join.clone(), join));
                // And from the parent: parents without children give a
                // row of NULLs for the child's NOT NULL columns.
                let reverse = format!(
                    "SELECT {} FROM {} AS p LEFT JOIN {} AS c ON c.{} = p.{}",
                    list.join(", "),
                    quoted(parent),
                    quoted(t),
                    quoted(from),
                    quoted(to)
                );
                statements.push((reverse.clone(), reverse));
            }
        }
        for (sql, aliased) in statements {
            let described: Description = match head.describe(&sql) {
                Ok(d) => d,
                Err(_) => match head.describe(&aliased) {
                    Ok(d) => d,
                    Err(e) => {
                        failures.push(format!("{}: `{aliased}` does not describe: {e}", set.name));
                        continue;
                    }
                },
            };
            let sql = if head.describe(&sql).is_ok() {
                sql
            } else {
                aliased
            };
            queries += 1;
            let mut stmt = conn.prepare(&sql).unwrap();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for (i, column) in described.columns.iter().enumerate() {
                    values += 1;
                    let value = row.get_ref(i).unwrap();
                    let fits = match (value, column.ty) {
                        (ValueRef::Null, _) => column.nullable || column.ty == SqlType::Any,
                        (_, SqlType::Any) => true,
                        (ValueRef::Integer(_), SqlType::Integer) => true,
                        (ValueRef::Integer(_) | ValueRef::Real(_), SqlType::Real) => true,
                        (ValueRef::Text(_), SqlType::Text) => true,
                        (ValueRef::Blob(_), SqlType::Blob) => true,
                        _ => false,
                    };
                    if !fits {
                        failures.push(format!(
                            "{}: `{sql}`: column `{}` inferred as {} holds {value:?}",
                            set.name,
                            column.name,
                            column.rust_type()
                        ));
                    }
                }
            }
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "query inference: {checked_sets} sets, {queries} queries, {values} values checked"
    );
    assert!(queries > 0, "no query was checked");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
