//! The style of every diagnostic: a one-line message, and a help of one
//! short sentence (a recipe goes to the docs, a list comes from its rule
//! table). Checked over the UI fixtures, a chain for every help the replay
//! gives, and the rule table.

use std::path::Path;

use rusqlite::hooks::{AuthAction, AuthContext, TransactionOperation};

use crate::diagnostic::REBUILD_GUIDE;
use crate::tests::Scratch;
use crate::{check_dir, replay, Diagnostic, Options, ReplaySource};
use durable_schema_workerd::rules::{self, Rule};

/// Help prose beyond this many characters is a paragraph, not a hint.
const MAX_HELP_CHARS: usize = 160;

/// What a help may contain beyond its prose: the docs' section and the lists
/// derived from the rule tables.
fn prose(help: &str) -> String {
    help.replace(REBUILD_GUIDE, "…")
        .replace(&rules::name_list(&rules::ALLOWED_PRAGMAS.concat()), "…")
        .replace(&rules::name_list(rules::ALLOWED_MODULES), "…")
}

/// Where a second sentence starts, if the text has one (abbreviations and
/// file names are not sentence ends).
fn second_sentence(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|i| {
        let ends = matches!(bytes.get(i), Some(b'.' | b'!' | b'?'))
            && bytes.get(i + 1) == Some(&b' ')
            && !text[..=i].ends_with("e.g.")
            && !text[..=i].ends_with("i.e.");
        ends.then(|| &text[i + 1..])
    })
}

/// Every way `d` breaks the style.
fn problems(d: &Diagnostic, ours: bool) -> Vec<String> {
    let mut out = Vec::new();
    if d.message.contains('\n') {
        out.push("the message has several lines".to_owned());
    }
    if ours && d.message.starts_with(|c: char| c.is_ascii_uppercase()) {
        out.push("the message starts with a capital".to_owned());
    }
    let Some(help) = &d.help else { return out };
    if help.contains('\n') {
        out.push("the help has several lines".to_owned());
    }
    if let Some(rest) = second_sentence(help) {
        out.push(format!("the help has a second sentence:{rest}"));
    }
    if help.ends_with('.') {
        out.push("the help ends with a full stop".to_owned());
    }
    let n = prose(help).chars().count();
    if n > MAX_HELP_CHARS {
        out.push(format!(
            "the help has {n} characters of prose (at most {MAX_HELP_CHARS})"
        ));
    }
    out
}

/// Diagnostics of the UI fixtures, checked as the macro checks them.
fn fixture_diagnostics() -> Vec<Diagnostic> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui/fixtures");
    let mut cases: Vec<String> = std::fs::read_dir(&root)
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    cases.sort();
    // The workspace has them; a packaged crate does not, and the chains
    // below still cover every help.
    if !cases.is_empty() {
        assert!(cases.len() >= 20, "fixtures: {cases:?}");
    }
    let mut out = Vec::new();
    for case in cases.iter().map(String::as_str).chain(["no-such-dir"]) {
        if let Err(diags) = check_dir(&root, case, &Options::default()) {
            out.extend(diags);
        }
    }
    out
}

/// Diagnostics of the fixtures `tests/ui.rs` writes at run time, and of the
/// file rules.
fn file_rule_diagnostics() -> Vec<Diagnostic> {
    let columns: Vec<String> = (1..=101).map(|i| format!("c{i} TEXT")).collect();
    let wide = format!("CREATE TABLE wide ({});\n", columns.join(", "));
    let big = format!("SELECT '{}';", "x".repeat(100_000));
    let scratch = Scratch::new(
        "style",
        &[
            ("0000_zero.sql", b"SELECT 1;"),
            ("0001_latin1.sql", b"SELECT 'caf\xe9';"),
            ("0001_dup.sql", b"SELECT 1;"),
            ("0003_comments.sql", b"-- nothing\n"),
            ("3_bad.sql", b"SELECT 1;"),
            ("99999999999_big.sql", b"SELECT 1;"),
            ("0005_wide.sql", wide.as_bytes()),
            ("0006_big.sql", big.as_bytes()),
        ],
    );
    let empty = Scratch::new("style-empty", &[]);
    let mut out = check_dir(&scratch.0, ".", &Options::default()).unwrap_err();
    out.extend(check_dir(&empty.0, ".", &Options::default()).unwrap_err());
    out.extend(journal_diagnostics());
    out
}

/// Diagnostics of drizzle-kit directories whose journal and files disagree.
fn journal_diagnostics() -> Vec<Diagnostic> {
    const JOURNAL: &str = "meta/_journal.json";
    let disagreeing = br#"{"version": "7", "dialect": "sqlite", "entries": [
        {"idx": 0, "when": 1, "tag": "0000_a"},
        {"idx": 2, "when": 1, "tag": "0002_b"},
        {"idx": 2, "when": 3, "tag": "0005_c"},
        {"idx": 3, "when": 4, "tag": "0002_b"},
        {"idx": 4, "when": 5, "tag": "0004_missing"},
        {"idx": 5, "when": 6}
    ]}"#;
    let cases: &[&[(&str, &[u8])]] = &[
        &[
            (JOURNAL, disagreeing),
            ("0000_a.sql", b"SELECT 1;"),
            ("0002_b.sql", b"SELECT 1;"),
            ("0005_c.sql", b"SELECT 1;"),
        ],
        &[
            (
                JOURNAL,
                br#"{"entries": [{"idx": 0, "when": 1, "tag": "0000_a"}]}"#,
            ),
            ("0000_a.sql", b"SELECT 1;"),
            ("0001_extra.sql", b"SELECT 1;"),
        ],
        &[(JOURNAL, b"{\"entries\": [")],
        &[(JOURNAL, b"[]")],
        &[(JOURNAL, b"{}")],
        &[(JOURNAL, b"{\"entries\": {}}")],
        &[(JOURNAL, b"{\"entries\": []}")],
        &[("meta/_journal.json/unreadable", b"")],
    ];
    let mut out = Vec::new();
    for (i, files) in cases.iter().enumerate() {
        let scratch = Scratch::new(&format!("style-journal-{i}"), files);
        out.extend(check_dir(&scratch.0, ".", &Options::default()).unwrap_err());
    }
    assert_eq!(out.len(), 13, "{out:#?}");
    out
}

const PARENT_CHILD: &str = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));";

/// A chain for every help the replay gives: `(chains, rule expected)`.
fn replay_diagnostics() -> Vec<(Diagnostic, Option<Rule>)> {
    let cascade = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id) ON DELETE CASCADE);";
    let restrict = "CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(p INTEGER REFERENCES p(id) ON DELETE RESTRICT);";
    let chains: &[&[&str]] = &[
        &["BEGIN; SAVEPOINT s; RELEASE s; ROLLBACK TO s; COMMIT; END; ROLLBACK;"],
        &["PRAGMA journal_mode = WAL; PRAGMA user_version = 1; PRAGMA FOREIGN_KEYS = OFF; PRAGMA integrity_check; PRAGMA foreign_keys = maybe; PRAGMA table_info; PRAGMA page_size = 8192; PRAGMA optimize = 99999999999;"],
        &["CREATE TEMP TABLE t(x); CREATE VIRTUAL TABLE v USING fts4(x); CREATE TABLE _cf_t(x); CREATE TABLE migrations(x);"],
        &["SELECT sqlite_version(); SELECT power(2, 2); SELECT ceiling(1); SELECT log10(1); SELECT unistr('x');"],
        &["CREATE TABLE t(x); ALTER TABLE t ADD CONSTRAINT k CHECK (x > 0); ALTER TABLE t ALTER COLUMN x SET NOT NULL;"],
        &["ATTACH 'x.db' AS x; ATTACH 'x' || '.db' AS y; DETACH x;"],
        &["SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6;"],
        &["CREATE TABLE t(x); ALTER TABLE t RENAME TO _cf_t;", "ALTER TABLE t RENAME TO migrations;"],
        &["CREATE TABLE t(x); CREATE TRIGGER a AFTER INSERT ON t BEGIN DELETE FROM migrations; END; CREATE TRIGGER b AFTER INSERT ON t BEGIN INSERT INTO _cf_KV VALUES (1); END;"],
        &["CREATE INDEX i ON later(x);", "CREATE TABLE later(x);"],
        &["CREATE INDEX i ON nowhere(x);"],
        &["CREATE TABLE t(x); ALTER TABLE t ADD COLUMN x; ALTER TABLE t DROP COLUMN y;"],
        &["SELECT no_such_function(1);"],
        &["CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) INSERT INTO t SELECT i FROM n;"],
        &[PARENT_CHILD, "DROP TABLE p;"],
        &[restrict, "DROP TABLE p;"],
        &[cascade, "DROP TABLE p; CREATE TABLE p(id INTEGER PRIMARY KEY);"],
        &[PARENT_CHILD, "PRAGMA defer_foreign_keys = ON; DROP TABLE p;"],
        &[PARENT_CHILD, "PRAGMA defer_foreign_keys = ON; CREATE TABLE p2(id INTEGER PRIMARY KEY); DROP TABLE p; ALTER TABLE p2 RENAME TO p;"],
        &[PARENT_CHILD, "PRAGMA foreign_keys = OFF; INSERT INTO c VALUES (1, 42);"],
        &[PARENT_CHILD, "PRAGMA foreign_keys = OFF; PRAGMA defer_foreign_keys = ON; INSERT INTO c VALUES (1, 42);"],
        &[PARENT_CHILD, "PRAGMA defer_foreign_keys = ON; INSERT INTO c VALUES (1, 42);"],
        &["CREATE TABLE t(x);\n-- durable-schema: batch\n-- durable-schema: batch\nCREATE INDEX i ON t(x);\nINSERT INTO t VALUES (1), (2);\n-- durable-schema: batch\nUPDATE t SET x = x + 1;\nINSERT INTO t VALUES ('\n-- durable-schema: batch\n');\n-- durable-schema: batch\n"],
        &["CREATE TABLE t(x, y);", "ALTER TABLE t RENAME COLUMN y TO z;\n-- durable-schema: batch\nUPDATE t SET x = 1 WHERE x IS NULL;"],
    ];
    let mut out = Vec::new();
    for chain in chains {
        let names: Vec<String> = (1..=chain.len())
            .map(|i| format!("migrations/{i:04}_a_migration_name.sql"))
            .collect();
        let sources: Vec<ReplaySource<'_>> = chain
            .iter()
            .zip(&names)
            .map(|(text, name)| ReplaySource::new(name, text))
            .collect();
        out.extend(
            replay(&sources, "migrations")
                .into_iter()
                .map(|f| (f.diagnostic, f.rule)),
        );
    }
    out
}

/// Denials of the rule table that SQL cannot reach.
fn rule_table_diagnostics() -> Vec<(Diagnostic, Option<Rule>)> {
    let actions = [
        AuthAction::Unknown {
            code: 0,
            arg1: None,
            arg2: None,
        },
        AuthAction::Unknown {
            code: 99,
            arg1: None,
            arg2: None,
        },
        AuthAction::Transaction {
            operation: TransactionOperation::Unknown,
        },
        AuthAction::Insert { table_name: "t" },
    ];
    actions
        .into_iter()
        .map(|action| {
            let db = matches!(action, AuthAction::Insert { .. }).then_some("aux");
            let ctx = AuthContext {
                action,
                database_name: db,
                accessor: None,
            };
            let denial = rules::decide(&ctx, Some("migrations")).unwrap_err();
            let d = Diagnostic::at("m/0001_x.sql", 1, 1, denial.message).help(denial.help);
            (d, Some(denial.rule))
        })
        .collect()
}

/// Every variant, so a new rule must be added here (and get a case).
fn all_rules() -> Vec<Rule> {
    let all = vec![
        Rule::Transaction,
        Rule::Pragma,
        Rule::Attach,
        Rule::Temp,
        Rule::Module,
        Rule::ReservedName,
        Rule::Function,
        Rule::TrackingTable,
        Rule::Limit,
        Rule::ForeignKeysOff,
        Rule::ReferencedDrop,
        Rule::Other,
    ];
    for rule in &all {
        match rule {
            Rule::Transaction
            | Rule::Pragma
            | Rule::Attach
            | Rule::Temp
            | Rule::Module
            | Rule::ReservedName
            | Rule::Function
            | Rule::TrackingTable
            | Rule::Limit
            | Rule::ForeignKeysOff
            | Rule::ReferencedDrop
            | Rule::Other => {}
        }
    }
    all
}

/// A checked query's diagnostic for each class of mistake.
fn query_diagnostics() -> Vec<Diagnostic> {
    let schema = [crate::SchemaObject {
        kind: "table".into(),
        name: "t".into(),
        table: "t".into(),
        sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)".into(),
    }];
    let db = crate::query::HeadDb::new(&schema, "migrations").unwrap();
    let many = vec!["?"; 101].join(", ");
    let long = format!("SELECT '{}' AS x", "x".repeat(100_001));
    let queries = [
        "SELECT id FORM t",
        "SELECT nope FROM t",
        "SELECT id FROM nope",
        "SELECT sqlite_version() AS v",
        "PRAGMA user_version",
        "SELECT 1 AS a; SELECT 2 AS b",
        "SELECT id FROM t WHERE id = ?1 OR id = ?3",
        "SELECT count(*) FROM t",
        "SELECT id, id FROM t",
        "SELECT id AS \"n: \" FROM t",
        "",
    ];
    let mut all: Vec<Diagnostic> = queries
        .iter()
        .map(|q| *db.describe(q).expect_err(q))
        .collect();
    all.push(
        *db.describe(&format!("SELECT id FROM t WHERE id IN ({many})"))
            .unwrap_err(),
    );
    all.push(*db.describe(&long).unwrap_err());
    all
}

#[test]
fn every_message_is_one_line_and_every_help_one_short_sentence() {
    let mut all: Vec<(Diagnostic, bool)> = Vec::new();
    for d in query_diagnostics() {
        assert!(d.help.is_some(), "{d}");
        all.push((d, true));
    }
    let mut rules_seen = Vec::new();
    for d in fixture_diagnostics()
        .into_iter()
        .chain(file_rule_diagnostics())
    {
        all.push((d, true));
    }
    for (d, rule) in replay_diagnostics()
        .into_iter()
        .chain(rule_table_diagnostics())
    {
        // Limits and foreign-key failures quote SQLite's own message.
        let ours = rule.is_some_and(|r| !matches!(r, Rule::Limit | Rule::ForeignKeysOff));
        rules_seen.extend(rule);
        all.push((d, ours));
    }
    for rule in all_rules() {
        assert!(rules_seen.contains(&rule), "no case shows rule {rule:?}");
    }
    assert!(all.len() > 60, "{} diagnostics", all.len());
    let mut failures = Vec::new();
    for (d, ours) in &all {
        for problem in problems(d, *ours) {
            failures.push(format!("{problem}\n    {d}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_style_check_can_fail() {
    let d = |help: &str| Diagnostic::plain("x".into()).help(help);
    assert!(problems(&d("do this; then that, e.g. `0001_x.sql`"), true).is_empty());
    assert_eq!(problems(&d("do this. Then that"), true).len(), 1);
    assert_eq!(problems(&d(&"x".repeat(MAX_HELP_CHARS + 1)), true).len(), 1);
    assert_eq!(problems(&d("done."), true).len(), 1);
    assert!(problems(&d(&format!("see {REBUILD_GUIDE}")), true).is_empty());
    assert_eq!(
        problems(&Diagnostic::plain("Two\nlines".into()), true).len(),
        2
    );
}

#[test]
fn the_docs_have_the_section_help_texts_link_to() {
    // REBUILD_GUIDE names a page of the repository and one of its headings.
    let page = REBUILD_GUIDE
        .split_whitespace()
        .find_map(|word| {
            let word = word.trim_end_matches(',');
            (word.starts_with("docs/") && word.ends_with(".md")).then_some(word)
        })
        .expect("REBUILD_GUIDE names a `docs/*.md` page");
    let section = REBUILD_GUIDE
        .split('"')
        .nth(1)
        .expect("REBUILD_GUIDE names a section in double quotes");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(page);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return; // a packaged crate has no workspace docs
    };
    let found = text
        .lines()
        .any(|line| line.starts_with('#') && line.trim_start_matches('#').trim() == section);
    assert!(found, "{page} has no heading {section:?}");
}
