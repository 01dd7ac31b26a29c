//! The `durable-schema` binary end to end: each subcommand run as a user
//! runs it, on the UI fixtures and on scratch directories, asserting exit
//! codes and output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use durable_schema_compiler::{check_dir, runtime_schema, NoBaseline, Options, Plan};
use durable_schema_runtime::Schema;

/// What a run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `cwd`.
fn run(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_durable-schema"))
        .args(args)
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui/fixtures")
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.0.join(path)).unwrap()
    }

    fn run(&self, args: &[&str]) -> Run {
        run(&self.0, args)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const USERS: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n";
const NAMES: &str = "ALTER TABLE users ADD COLUMN name TEXT;\n";
const INDEX: &str = "CREATE INDEX users_email ON users (email);\n";

/// A project with three migrations.
fn project(name: &str) -> Scratch {
    let s = Scratch::new(name);
    s.write("migrations/0001_users.sql", USERS);
    s.write("migrations/0002_names.sql", NAMES);
    s.write("migrations/0003_index.sql", INDEX);
    s
}

#[test]
fn every_subcommand_has_help() {
    let top = run(&fixtures(), &["--help"]);
    assert_eq!(top.code, 0, "{}", top.stderr);
    for sub in ["new", "check", "lock", "schema", "diff", "status"] {
        assert!(
            top.stdout.contains(&format!("\n  {sub} ")),
            "{}",
            top.stdout
        );
        let help = run(&fixtures(), &[sub, "--help"]);
        assert_eq!(help.code, 0, "{sub}: {}", help.stderr);
        assert!(
            help.stdout
                .contains(&format!("Usage: durable-schema {sub}")),
            "{sub}: {}",
            help.stdout
        );
    }
    let usage = run(&fixtures(), &["check", "--format", "xml"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    let table = run(&fixtures(), &["check", "--table", "_cf_x"]);
    assert_eq!(table.code, 2);
    assert!(table.stderr.contains("reserved"), "{}", table.stderr);
}

#[test]
fn check_shows_the_source_line_with_a_caret() {
    let r = run(&fixtures(), &["check", "--dir", "syntax-error"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        r#"error: near ")": syntax error
 --> syntax-error/0001_users.sql:6:58
  |
6 | INSERT INTO users (id, email) VALUES (1, 'a@example.com',);
  |                                                          ^
  |
  = note: sqlparser: expected: an expression, found: ) at 6:58

error: `syntax-error` has 1 problem
"#
    );
    // A word is underlined whole; every problem of the directory is shown.
    let r = run(&fixtures(), &["check", "--dir", "several-bad-files"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            " --> several-bad-files/0003_c.sql:2:22\n  |\n2 |   name TEXT NOT NULL DEFALT 1);\n  |                      ^^^^^^\n"
        ),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("error: `several-bad-files` has 5 problems"));
    // A problem with a whole file names it; help follows.
    assert!(
        r.stderr.contains(
            "error: `4_d.sql` is not a migration file name\n --> several-bad-files/4_d.sql\n  = help: name migrations `NNNN_description.sql`"
        ),
        "{}",
        r.stderr
    );
}

/// `check` lists the statements whose time grows with an object's rows,
/// where they are and what they do, and nothing for a migration that only
/// fills a table it creates.
#[test]
fn check_lists_the_statements_over_existing_rows() {
    let s = Scratch::new("cost-hints");
    s.write(
        "migrations/0001_items.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER);\nUPDATE items SET v = 0;\n",
    );
    s.write(
        "migrations/0002_backfill.sql",
        "ALTER TABLE items ADD COLUMN w INTEGER;\nUPDATE items SET w = v * 2 WHERE w IS NULL;\nCREATE INDEX items_w ON items (w);\n",
    );
    let r = s.run(&["check", "--dir", "migrations"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.stdout);
    assert!(
        r.stdout.ends_with(
            "2 statements work through the rows an object already holds (slow on a large object; see docs/failures.md):\n  \
             migrations/0002_backfill.sql:2:1 rewrites the rows of `items` it matches; on a large object, make it a batch, e.g. `-- durable-schema: batch over items limit 10000` (docs/batches.md)\n  \
             migrations/0002_backfill.sql:3:1 builds an index over every row of `items`\n"
        ),
        "{}",
        r.stdout
    );
    s.write("migrations/0002_backfill.sql", "CREATE TABLE other (x);\n");
    let r = s.run(&["check", "--dir", "migrations"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("work"), "{}", r.stdout);
}

/// `check` lists the batch statements, after the cost hints, and its JSON
/// has an object for each batch and each cost hint, the statement-level
/// objects of a migration before its classification's findings.
#[test]
fn check_lists_the_batch_statements() {
    let s = Scratch::new("batches");
    s.write(
        "migrations/0001_items.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);\nINSERT INTO items (v) VALUES (1), (2), (3);\n",
    );
    s.write(
        "migrations/0002_backfill.sql",
        "ALTER TABLE items ADD COLUMN w INTEGER;\n\
         -- durable-schema: batch\n\
         UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 2);\n\
         DELETE FROM items WHERE v > 2;\n",
    );
    s.write(
        "migrations/0003_range.sql",
        "-- durable-schema: batch over items limit 1000\n\
         UPDATE items SET w = v WHERE id BETWEEN :from AND :to;\n",
    );
    let r = s.run(&["check", "--dir", "migrations"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.stdout);
    assert!(
        r.stdout.ends_with(
            "3 statements work through the rows an object already holds (slow on a large object; see docs/failures.md):\n  \
             migrations/0002_backfill.sql:3:1 rewrites the rows of `items` it matches, as a batch (a transaction per repetition)\n  \
             migrations/0002_backfill.sql:4:1 deletes the rows of `items` it matches; on a large object, make it a batch, e.g. `-- durable-schema: batch over items limit 10000` (docs/batches.md)\n  \
             migrations/0003_range.sql:2:1 rewrites the rows of `items` it matches, as a batch (a transaction per repetition)\n\
             2 batch statements, one transaction per repetition (see docs/batches.md):\n  \
             migrations/0002_backfill.sql:3:1 repeated until it changes no row\n  \
             migrations/0003_range.sql:2:1 over `items`, 1000 rows a slice\n"
        ),
        "{}",
        r.stdout
    );
    let json = s.run(&["check", "--dir", "migrations", "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["file"] == "migrations/0002_backfill.sql")
        .collect();
    let kinds: Vec<(&str, u64)> = lines
        .iter()
        .map(|v| (v["kind"].as_str().unwrap(), v["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds[..3],
        [("batch", 3), ("cost", 3), ("cost", 4)],
        "{}",
        json.stdout
    );
    assert!(kinds[3..].iter().all(|(k, _)| *k == "change"), "{kinds:?}");
    assert_eq!(
        lines[0]["statement"],
        "UPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 2)"
    );
    assert_eq!(lines[0]["file"], "migrations/0002_backfill.sql");
    assert_eq!(
        (&lines[1]["batch"], &lines[2]["batch"]),
        (&true.into(), &false.into())
    );
    assert_eq!(
        lines[0]["message"],
        "repeated until it changes no row, one transaction per repetition"
    );
    assert_eq!(lines[0].get("over"), None);
    let range: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["file"] == "migrations/0003_range.sql" && v["kind"] == "batch")
        .collect();
    assert_eq!(
        (&range[0]["over"], &range[0]["limit"], &range[0]["message"]),
        (
            &"items".into(),
            &1000.into(),
            &"over `items`, 1000 rows a slice, one transaction per repetition".into()
        ),
        "{}",
        json.stdout
    );
    assert_eq!(lines[2]["message"], "deletes the rows of `items` it matches; on a large object, make it a batch, e.g. `-- durable-schema: batch over items limit 10000` (docs/batches.md)");
}

#[test]
fn check_passes_a_good_directory() {
    let r = run(&fixtures(), &["check", "--dir", "ok"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let b = check_dir(&fixtures(), "ok", &Options::default())
        .unwrap()
        .baseline
        .unwrap();
    assert_eq!(
        r.stdout,
        format!(
            "`ok`: 1 migration checked, schema version 1\n\
             new objects: one transaction from a verified baseline ({} statements, 1 KB)\n",
            b.statements.len()
        )
    );
    let r = run(&fixtures(), &["check", "--dir", "ok", "--format", "json"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    // A passing check lists the classification's findings.
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        (&v["code"], &v["class"], &v["object"]),
        (&"AD101".into(), &"additive".into(), &"users".into())
    );
    let r = run(&fixtures(), &["check", "--dir", "no-such-dir"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("error: migration directory `no-such-dir` does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn breaking_migrations_are_reported_and_refused_until_acknowledged() {
    let s = project("breaking");
    assert_eq!(s.run(&["lock"]).code, 0);
    s.write(
        "migrations/0004_drop_name.sql",
        "-- nobody reads it any more\nALTER TABLE users DROP COLUMN name;\n",
    );
    let r = s.run(&["check"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with(
            "error: this migration breaks code built for version 3: BC103 column `users.name` dropped, DS102 values of column `users.name` dropped\n \
             --> migrations/0004_drop_name.sql:2:1\n"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("= help: expand and contract: deploy code that stops using `users.name` first, then add the line `-- durable-schema: breaking` to this file\n"), "{}", r.stderr);
    let json = s.run(&["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!((&v["rule"], &v["line"]), (&"breaking".into(), &2.into()));

    s.write(
        "migrations/0004_drop_name.sql",
        "-- durable-schema: breaking\nALTER TABLE users DROP COLUMN name;\n",
    );
    let r = s.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "migrations/0004_drop_name.sql:2:1: breaking: BC103 column `users.name` dropped\n\
             migrations/0004_drop_name.sql:2:1: destructive: DS102 values of column `users.name` dropped\n\
             0004_drop_name.sql: breaking migration, acknowledged by `-- durable-schema: breaking`\n"
        ),
        "{}",
        r.stdout
    );
    let json = s.run(&["check", "--format", "json"]);
    let last: serde_json::Value =
        serde_json::from_str(json.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            &last["code"],
            &last["migration_class"],
            &last["acknowledged"],
            &last["locked"]
        ),
        (
            &"DS102".into(),
            &"breaking".into(),
            &true.into(),
            &false.into()
        )
    );
    let diff = s.run(&["diff", "3"]);
    assert!(
        diff.stdout.ends_with("\nfindings:\nmigrations/0004_drop_name.sql:2:1: breaking: BC103 column `users.name` dropped\nmigrations/0004_drop_name.sql:2:1: destructive: DS102 values of column `users.name` dropped\n"),
        "{}",
        diff.stdout
    );
}

#[test]
fn json_is_one_object_per_line() {
    let r = run(
        &fixtures(),
        &["check", "--dir", "several-bad-files", "--format", "json"],
    );
    assert_eq!((r.code, r.stderr.as_str()), (1, ""));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "file",
                "line",
                "column",
                "rule",
                "message",
                "help",
                "note",
                "statement"
            ]
        );
        assert!(v["message"].is_string());
        assert!(v["file"].is_string());
    }
    let begin: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        begin,
        serde_json::json!({
            "file": "several-bad-files/0001_a.sql",
            "line": 1,
            "column": 1,
            "rule": "transaction",
            "message": "`BEGIN` is not allowed in a migration",
            "help": "remove it: durable-schema runs each migration in its own transaction, and a Durable Object refuses transaction statements",
            "note": null,
            "statement": "BEGIN",
        })
    );
    let name: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert!(name["line"].is_null() && name["rule"].is_null(), "{name}");
}

/// One source of messages: for every UI fixture, the CLI reports exactly
/// the compiler's diagnostics, the ones the macro prints.
#[test]
fn messages_are_the_compilers_for_every_ui_fixture() {
    let root = fixtures();
    let mut cases: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "{cases:?}");
    let mut failing = 0;
    for case in &cases {
        let expected = match check_dir(&root, case, &Options::default()) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics,
        };
        let r = run(&root, &["check", "--dir", case, "--format", "json"]);
        assert_eq!(
            r.code,
            i32::from(!expected.is_empty()),
            "{case}: {}",
            r.stderr
        );
        // A passing check also lists the classification's findings, which
        // carry a `code`; the diagnostics do not.
        let got: Vec<serde_json::Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("code").is_none())
            .collect();
        assert_eq!(got.len(), expected.len(), "{case}: {}", r.stdout);
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g["message"].as_str(), Some(e.message.as_str()), "{case}");
            assert_eq!(g["help"].as_str(), e.help.as_deref(), "{case}");
            assert_eq!(g["file"].as_str(), e.file.as_deref(), "{case}");
            assert_eq!(g["rule"].as_str(), e.rule, "{case}");
            assert_eq!(
                g["line"].as_u64(),
                e.position.map(|p| u64::from(p.0)),
                "{case}"
            );
        }
        // The human form shows the same words.
        let human = run(&root, &["check", "--dir", case]);
        for e in &expected {
            assert!(
                human.stderr.contains(&format!("error: {}", e.message)),
                "{case}"
            );
            if let Some(help) = &e.help {
                assert!(human.stderr.contains(&format!("help: {help}")), "{case}");
            }
        }
        failing += usize::from(!expected.is_empty());
    }
    assert!(failing >= 20, "{failing}");
}

#[test]
fn new_creates_the_next_migration() {
    let s = Scratch::new("new");
    let r = s.run(&["new", "init"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "migrations/0001_init.sql\n"),
        "{}",
        r.stderr
    );
    assert!(s
        .read("migrations/0001_init.sql")
        .starts_with("-- 0001_init.sql: migration 1."));
    // Until it has statements the build (and check) refuses it.
    let r = s.run(&["check"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("contains no SQL statement"),
        "{}",
        r.stderr
    );
    s.write("migrations/0001_init.sql", USERS);
    let r = s.run(&["new", "add-names_2"]);
    assert_eq!(
        r.stdout, "migrations/0002_add-names_2.sql\n",
        "{}",
        r.stderr
    );
    s.write("migrations/0002_add-names_2.sql", NAMES);
    assert_eq!(s.run(&["check"]).code, 0);

    for (bad, why) in [
        ("add sessions", "`add sessions` has a space"),
        ("add.sessions", "has `.`"),
        ("0003_x.sql", "looks like a file name"),
        ("", "the name is empty"),
    ] {
        let r = s.run(&["new", bad]);
        assert_eq!(r.code, 1, "{bad}");
        assert!(r.stderr.starts_with("error: "), "{bad}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{bad}: {}", r.stderr);
    }
    assert!(!s.0.join("migrations/0003_add sessions.sql").exists());

    // The prefix keeps the directory's width; `--dir` is shown as given.
    s.write("legacy/00041_old.sql", "SELECT 1;\n");
    let r = s.run(&["new", "next", "--dir", "./legacy/"]);
    assert_eq!(r.stdout, "./legacy/00042_next.sql\n", "{}", r.stderr);
}

#[test]
fn schema_and_diff_between_versions() {
    let s = project("schema");
    s.write(
        "migrations/0004_view.sql",
        "CREATE VIEW named AS SELECT id, name FROM users WHERE name IS NOT NULL;\nDROP INDEX users_email;\n",
    );
    let r = s.run(&["schema", "--at", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "-- the schema of `migrations` at version 1\n\nCREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n"
    );
    let r = s.run(&["schema", "--at", "3"]);
    assert_eq!(
        r.stdout,
        "-- the schema of `migrations` at version 3\n\n\
         CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);\n\n\
         CREATE INDEX users_email ON users (email);\n"
    );
    let head = s.run(&["schema"]);
    assert_eq!(head.stdout, s.run(&["schema", "--at", "4"]).stdout);
    assert!(
        head.stdout.contains("CREATE VIEW named AS"),
        "{}",
        head.stdout
    );
    let empty = s.run(&["schema", "--at", "0"]);
    assert_eq!(empty.stdout, "-- the schema of `migrations` at version 0\n");

    let r = s.run(&["diff", "1", "4"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "--- `migrations` at version 1\n+++ `migrations` at version 4\n\
         \nchanged table users\n\
         - CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n\
         + CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);\n\
         \nadded view named\n\
         + CREATE VIEW named AS SELECT id, name FROM users WHERE name IS NOT NULL;\n\
         \nfindings:\n\
         migrations/0002_names.sql:1:1: additive: AD102 column `users.name` added\n\
         migrations/0003_index.sql:1:1: additive: AD103 index `users_email` added\n\
         migrations/0004_view.sql:1:1: additive: AD104 view `named` added or redefined\n"
    );
    let r = s.run(&["diff", "3"]);
    assert!(
        r.stdout.contains(
            "\nremoved index users_email\n- CREATE INDEX users_email ON users (email);\n"
        ),
        "{}",
        r.stdout
    );
    let same = s.run(&["diff", "2", "2"]);
    assert!(
        same.stdout.ends_with("no schema changes\n"),
        "{}",
        same.stdout
    );

    let r = s.run(&["schema", "--at", "9"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("error: there is no version 9: `migrations` ends at version 4"),
        "{}",
        r.stderr
    );
    s.write("migrations/0005_bad.sql", "CREATE INDEX i ON nope (x);\n");
    let r = s.run(&["diff", "1", "5"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no such table: main.nope"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--> migrations/0005_bad.sql:1:"),
        "{}",
        r.stderr
    );
}

/// The runtime's schema of the first `n` migrations of `plan`, as the macro
/// would embed them.
fn schema(plan: &Plan, n: usize) -> Schema {
    let mut prefix = plan.clone();
    prefix.migrations.truncate(n);
    // The baseline is the whole chain's.
    prefix.baseline = Err(NoBaseline::Off);
    runtime_schema(&prefix, "migrations").unwrap()
}

/// Migrates `db` in `s` to the first `n` migrations of its `migrations/`.
fn migrate(s: &Scratch, db: &str, n: usize) {
    let plan = check_dir(&s.0, "migrations", &Options::default()).unwrap();
    let conn = rusqlite::Connection::open(s.0.join(db)).unwrap();
    schema(&plan, n).migrate(&conn).unwrap();
}

/// The files of `s` beside the database (a read-only open leaves no
/// journal), with the database's bytes.
fn snapshot(s: &Scratch, db: &str) -> (Vec<String>, Vec<u8>) {
    let mut names: Vec<String> = fs::read_dir(&s.0)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    (names, fs::read(s.0.join(db)).unwrap())
}

#[test]
fn status_of_a_database_migrated_by_the_runtime() {
    let s = project("status");
    migrate(&s, "app.sqlite", 2);
    let before = snapshot(&s, "app.sqlite");
    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "`app.sqlite`: behind: database at version 2, `migrations` at version 3"
    );
    assert!(
        lines[1].starts_with("  applied  0001  0001_users.sql  20"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].starts_with("  applied  0002  0002_names.sql  20"),
        "{}",
        r.stdout
    );
    assert_eq!(lines[3], "  pending  0003  0003_index.sql");
    assert_eq!(lines.len(), 4);
    assert_eq!(
        snapshot(&s, "app.sqlite"),
        before,
        "status changed the database"
    );

    migrate(&s, "app.sqlite", 3);
    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert!(
        r.stdout
            .starts_with("`app.sqlite`: current: database at version 3"),
        "{}",
        r.stdout
    );

    // An applied migration edited: the history diverged, exit 1.
    s.write(
        "migrations/0002_names.sql",
        "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';\n",
    );
    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("`app.sqlite`: diverged at version 2:"),
        "{}",
        r.stdout
    );
    let edited = r.stdout.lines().find(|l| l.contains("0002")).unwrap();
    assert!(
        edited.starts_with("  edited   0002  0002_names.sql  20"),
        "{edited}"
    );
    assert!(
        edited.ends_with(": edited since it was applied"),
        "{edited}"
    );

    // Declared in the lock as a replacement, it is shown as such.
    let old = durable_schema_compiler::checksum(NAMES);
    let lock = s.run(&["lock"]);
    assert_eq!(lock.code, 0, "{}", lock.stderr);
    let text = s.read("migrations/durable-schema.lock");
    let line = text.lines().find(|l| l.starts_with("0002 ")).unwrap();
    s.write(
        "migrations/durable-schema.lock",
        &text.replace(line, &format!("{line} replaces {old}")),
    );
    let r = s.run(&["status", "--db", "app.sqlite"]);
    // The runtime accepts the replaced history, as the built code does.
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("`app.sqlite`: current: database at version 3,"),
        "{}",
        r.stdout
    );
    let replaced = r.stdout.lines().find(|l| l.contains("0002")).unwrap();
    assert!(replaced.starts_with("  replaced 0002"), "{}", r.stdout);
    assert!(replaced.ends_with(": declared in the lock"), "{replaced}");

    // A database ahead of the code (a rolled-back deploy).
    let s = project("status-ahead");
    migrate(&s, "app.sqlite", 3);
    fs::remove_file(s.0.join("migrations/0003_index.sql")).unwrap();
    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("`app.sqlite`: ahead: database at version 3, `migrations` at version 2"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\n  ahead    0003  index           20")
            && r.stdout.ends_with("Z  not in `migrations`\n"),
        "{}",
        r.stdout
    );

    // A fresh database, and none at all.
    let fresh = s.run(&["status", "--db", "missing.sqlite"]);
    assert_eq!(fresh.code, 1);
    assert_eq!(
        fresh.stderr,
        "error: `missing.sqlite` is not a database file: it does not exist\n"
    );
    rusqlite::Connection::open(s.0.join("empty.sqlite")).unwrap();
    let r = s.run(&["status", "--db", "empty.sqlite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "`empty.sqlite`: fresh: database at version 0, `migrations` at version 2\n  pending  0001  0001_users.sql\n  pending  0002  0002_names.sql\n"
    );
}

/// A database whose 0003 failed in a real `Schema::wake` (twice, with
/// `retry_after = 0`): `status` shows the failure record after the pending
/// migration, read-only, and when the next attempt is allowed.
#[test]
fn status_shows_the_failure_record_of_a_failed_wake() {
    let s = project("status-failed");
    s.write(
        "migrations/0003_index.sql",
        "CREATE UNIQUE INDEX users_email ON users (email);\n",
    );
    migrate(&s, "app.sqlite", 2);
    let conn = rusqlite::Connection::open(s.0.join("app.sqlite")).unwrap();
    conn.execute_batch("INSERT INTO users (email) VALUES ('a@example.com'), ('a@example.com')")
        .unwrap();
    let plan = check_dir(&s.0, "migrations", &Options::default()).unwrap();
    let code = schema(&plan, 3).__with_retry_after(0);
    for _ in 0..2 {
        assert!(code.wake(&conn).error().is_some());
    }
    let failed_at: String = conn
        .query_row("SELECT attempted_at FROM migrations_failure", [], |r| {
            r.get(0)
        })
        .unwrap();
    let later = |seconds: u32| -> String {
        conn.query_row(
            "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1, ?2)",
            rusqlite::params![failed_at, format!("+{seconds} seconds")],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = snapshot(&s, "app.sqlite");

    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    assert_eq!(lines[3], "  pending  0003  0003_index.sql");
    assert_eq!(
        lines[4],
        format!(
            "  failed   0003  0003_index.sql  2 attempts, last {failed_at}: migration \
             0003_index.sql (version 3) failed at statement 1 (0003_index.sql:1:1): UNIQUE \
             constraint failed: users.email; it was rolled back: fix the statement or the data \
             it trips over, then deploy again; next attempt after {} or with new code",
            later(60)
        )
    );
    assert_eq!(
        snapshot(&s, "app.sqlite"),
        before,
        "status changed the database"
    );

    // The code's own `retry_after`.
    let r = s.run(&["status", "--db", "app.sqlite", "--retry-after", "600"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.ends_with(&format!(
            "; next attempt after {} or with new code\n",
            later(600)
        )),
        "{}",
        r.stdout
    );

    // Other code (a fixed 0003) does not wait for it.
    s.write("migrations/0003_index.sql", INDEX);
    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .ends_with("; recorded by other code: the next wake-up of this code tries at once\n"),
        "{}",
        r.stdout
    );

    // The help says where `wrangler dev` keeps an object's database.
    let help = s.run(&["status", "--help"]);
    assert!(
        help.stdout
            .contains("`.wrangler/state/v3/do/<script>-<Class>/<object id>.sqlite`"),
        "{}",
        help.stdout
    );
}

#[test]
fn lock_then_edit_then_check_fails() {
    let s = project("lock");
    let r = s.run(&["lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "locked 3 migrations in `migrations/durable-schema.lock` (new: 0001_users.sql, 0002_names.sql, 0003_index.sql)\n"
    );
    let lock = s.read("migrations/durable-schema.lock");
    let entries: Vec<&str> = lock.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        entries,
        [
            format!(
                "0001 0001_users.sql {}",
                durable_schema_compiler::checksum(USERS)
            ),
            format!(
                "0002 0002_names.sql {}",
                durable_schema_compiler::checksum(NAMES)
            ),
            format!(
                "0003 0003_index.sql {}",
                durable_schema_compiler::checksum(INDEX)
            ),
        ]
    );
    let again = s.run(&["lock"]);
    assert_eq!(
        again.stdout,
        "`migrations/durable-schema.lock` is up to date: 3 migrations locked\n"
    );
    let r = s.run(&["check", "--locked"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().next(),
        Some("`migrations`: 3 migrations checked, schema version 3, 3 locked")
    );

    // A CRLF checkout is not an edit.
    s.write("migrations/0001_users.sql", &USERS.replace('\n', "\r\n"));
    assert_eq!(s.run(&["check", "--locked"]).code, 0);

    // A new migration is fine, except for `--locked`.
    s.write("migrations/0004_more.sql", "CREATE TABLE more (x);\n");
    assert_eq!(s.run(&["check"]).code, 0);
    let r = s.run(&["check", "--locked"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: `0004_more.sql` is not in `migrations/durable-schema.lock` yet\n \
         --> migrations/0004_more.sql\n  \
         = help: run `durable-schema lock` and commit the lock with the migration\n\n\
         error: `migrations` has 1 problem\n"
    );
    let r = s.run(&["lock"]);
    assert!(r.stdout.ends_with("(new: 0004_more.sql)\n"), "{}", r.stdout);

    // An edit of a locked migration fails the check, and `lock` refuses it.
    s.write(
        "migrations/0002_names.sql",
        "ALTER TABLE users ADD COLUMN nick TEXT;\n",
    );
    let locked = s.read("migrations/durable-schema.lock");
    let r = s.run(&["check"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: released migration `0002_names.sql` was edited: its checksum differs from `migrations/durable-schema.lock`\n \
         --> migrations/0002_names.sql\n  \
         = help: restore it and add the change as `0005_<description>.sql`, or record a deliberate fix with `durable-schema lock --replace 0002`\n\n\
         error: `migrations` has 1 problem\n"
    );
    let json = s.run(&["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["rule"], "lock");
    let r = s.run(&["lock"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .ends_with("\n\nerror: `migrations` was not locked: fix the problems above first\n"),
        "{}",
        r.stderr
    );
    assert_eq!(s.read("migrations/durable-schema.lock"), locked);

    // Removed: the caret points at the lock's line.
    s.write("migrations/0002_names.sql", NAMES);
    fs::remove_file(s.0.join("migrations/0004_more.sql")).unwrap();
    let r = s.run(&["check"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with(
            "error: released migration `0004_more.sql` was removed\n --> migrations/durable-schema.lock:8:1\n  |\n8 | 0004 0004_more.sql "
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn lock_keeps_declared_replacements() {
    let s = project("lock-replaces");
    assert_eq!(s.run(&["lock"]).code, 0);
    let old = "0123456789abcdef".repeat(4);
    let text = s.read("migrations/durable-schema.lock");
    let line = text.lines().find(|l| l.starts_with("0002 ")).unwrap();
    let declared = format!("{line} replaces {old}");
    s.write(
        "migrations/durable-schema.lock",
        &text.replace(line, &declared),
    );
    s.write("migrations/0004_more.sql", "CREATE TABLE more (x);\n");
    let r = s.run(&["lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = s.read("migrations/durable-schema.lock");
    assert!(text.contains(&format!("\n{declared}\n")), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("0004 0004_more.sql ")),
        "{text}"
    );
    // The lock is never taken for a migration.
    assert_eq!(
        s.run(&["check"]).stdout.lines().next(),
        Some("`migrations`: 4 migrations checked, schema version 4, 4 locked")
    );
}

#[test]
fn check_says_why_new_objects_run_every_migration() {
    let s = Scratch::new("baseline-note");
    s.write(
        "migrations/0001_tokens.sql",
        "CREATE TABLE tokens (id INTEGER PRIMARY KEY, secret BLOB NOT NULL);\n\
         INSERT INTO tokens (secret) VALUES (randomblob(16));\n",
    );
    let r = s.run(&["check"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(
        r.stdout,
        "`migrations`: 1 migration checked, schema version 1\n\
         new objects run every migration: migrations/0001_tokens.sql:2:1 calls `randomblob()`, which a build cannot reproduce\n"
    );
}

/// Copies `examples/drizzle-chat/drizzle` into `s` as `drizzle/`.
fn drizzle_example(s: &Scratch) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/drizzle-chat/drizzle");
    for sub in ["", "meta"] {
        for entry in fs::read_dir(example.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let to = s.0.join("drizzle").join(sub).join(entry.file_name());
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::copy(entry.path(), to).unwrap();
            }
        }
    }
}

#[test]
fn lock_check_and_the_build_agree_on_a_drizzle_directory() {
    let s = Scratch::new("lock-drizzle");
    drizzle_example(&s);
    let r = s.run(&["lock", "--dir", "drizzle"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "locked 2 migrations in `drizzle/durable-schema.lock` (new: 0000_create_messages.sql, 0001_index_by_author.sql)\n"
    );
    // Versions are the journal's idx + 1, names drizzle-kit's.
    let lock = s.read("drizzle/durable-schema.lock");
    let entries: Vec<String> = lock
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    assert_eq!(
        entries,
        [
            "0001 0000_create_messages.sql",
            "0002 0001_index_by_author.sql"
        ]
    );
    for args in [
        &["check", "--dir", "drizzle"][..],
        &["check", "--locked", "--dir", "drizzle"],
    ] {
        let r = s.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stdout.lines().next(),
            Some("`drizzle`: 2 migrations checked, schema version 2, 2 locked")
        );
    }
    assert_eq!(
        s.run(&["lock", "--dir", "drizzle"]).stdout,
        "`drizzle/durable-schema.lock` is up to date: 2 migrations locked\n"
    );
    // What the macro runs takes the same lock.
    let plan = check_dir(&s.0, "drizzle", &Options::default()).unwrap();
    assert_eq!(plan.lock.map(|l| l.entries.len()), Some(2));

    // An edit of a released file is refused, by the check and by `lock`.
    let first = "drizzle/0000_create_messages.sql";
    let original = s.read(first);
    s.write(
        first,
        &format!("{original}\n--> statement-breakpoint\nCREATE INDEX x ON messages (id);\n"),
    );
    let r = s.run(&["check", "--dir", "drizzle"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: released migration `0000_create_messages.sql` was edited: its checksum differs from `drizzle/durable-schema.lock`\n \
         --> drizzle/0000_create_messages.sql\n  \
         = help: restore it and add the change as `0002_<description>.sql`, or record a deliberate fix with `durable-schema lock --replace 0001`\n\n\
         error: `drizzle` has 1 problem\n"
    );
    assert_eq!(s.run(&["lock", "--dir", "drizzle"]).code, 1);
    let errors = check_dir(&s.0, "drizzle", &Options::default()).unwrap_err();
    assert!(errors[0].message.contains("was edited"), "{errors:?}");
    s.write(first, &original);

    // A new migration, as `drizzle-kit generate` adds it, is fine; `lock`
    // takes it as version 3.
    let journal = s.read("drizzle/meta/_journal.json");
    let end = journal.rfind("\n  ]").unwrap();
    let entry = "    {\n      \"idx\": 2,\n      \"version\": \"6\",\n      \"when\": 1768000000000,\n      \"tag\": \"0002_add_edited\",\n      \"breakpoints\": true\n    }";
    s.write(
        "drizzle/meta/_journal.json",
        &format!("{},\n{entry}{}", &journal[..end], &journal[end..]),
    );
    s.write(
        "drizzle/0002_add_edited.sql",
        "ALTER TABLE `messages` ADD `edited` integer;\n",
    );
    assert_eq!(s.run(&["check", "--dir", "drizzle"]).code, 0);
    assert_eq!(s.run(&["check", "--locked", "--dir", "drizzle"]).code, 1);
    let r = s.run(&["lock", "--dir", "drizzle"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.ends_with("(new: 0002_add_edited.sql)\n"),
        "{}",
        r.stdout
    );
    assert!(s
        .read("drizzle/durable-schema.lock")
        .contains("\n0003 0002_add_edited.sql "));
    assert_eq!(s.run(&["check", "--locked", "--dir", "drizzle"]).code, 0);
    check_dir(&s.0, "drizzle", &Options::default()).unwrap();
}

/// [`run`], killing the binary if it has not ended after a generous
/// minute (a check that hangs on a FIFO would otherwise hang the test).
fn run_within_a_minute(cwd: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_durable-schema"))
        .args(args)
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`durable-schema {}` did not end within a minute",
                args.join(" ")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_device_named_like_a_migration_is_an_error_not_a_hang() {
    let s = project("special-files");
    let status = Command::new("mkfifo")
        .arg(s.0.join("migrations/0004_fifo.sql"))
        .status()
        .unwrap();
    assert!(status.success());
    std::os::unix::fs::symlink("/dev/zero", s.0.join("migrations/0005_zero.sql")).unwrap();
    let r = run_within_a_minute(&s.0, &["check"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: is not a regular file: it is a FIFO\n \
         --> migrations/0004_fifo.sql\n  \
         = help: a migration must be a regular file (or a symlink to one); replace it with the file itself\n\n\
         error: is not a regular file: it is a device\n \
         --> migrations/0005_zero.sql\n  \
         = help: a migration must be a regular file (or a symlink to one); replace it with the file itself\n\n\
         error: `migrations` has 2 problems\n"
    );
    let r = run_within_a_minute(&s.0, &["lock"]);
    assert_eq!(r.code, 1);
    assert!(!s.0.join("migrations/durable-schema.lock").exists());
}

#[test]
fn dir_and_db_arguments_that_name_the_wrong_kind_of_thing() {
    let s = project("wrong-kinds");
    // A file as `--dir`: one error, in the CLI's words.
    let r = s.run(&["check", "--dir", "migrations/0001_users.sql"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: migration directory `migrations/0001_users.sql` is not a directory (it is resolved against the current directory)\n  \
         |\n  \
         = help: point `--dir` at the directory that holds the `.sql` migrations\n\n\
         error: `migrations/0001_users.sql` has 1 problem\n"
    );
    let r = s.run(&["check", "--dir", "nope"]);
    assert!(
        r.stderr.starts_with(
            "error: migration directory `nope` does not exist (it is resolved against the current directory)\n  |\n  = help: create `nope/0001_init.sql`, or point `--dir` at the existing directory\n"
        ),
        "{}",
        r.stderr
    );
    for command in ["schema", "diff"] {
        let args: &[&str] = if command == "diff" {
            &["diff", "0", "--dir", "nope"]
        } else {
            &["schema", "--dir", "nope"]
        };
        let r = s.run(args);
        assert_eq!(r.code, 1, "{command}");
        assert!(
            r.stderr.contains("resolved against the current directory"),
            "{command}: {}",
            r.stderr
        );
    }
    // An empty `--dir` is a usage error; `/` gets paths under `/`.
    let r = s.run(&["check", "--dir", ""]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("the directory is empty"), "{}", r.stderr);
    let empty = Scratch::new("wrong-kinds-root");
    fs::create_dir(empty.0.join("m")).unwrap();
    let r = empty.run(&["check", "--dir", "m/"]);
    assert!(
        r.stderr.contains("help: add `m/0001_init.sql` "),
        "{}",
        r.stderr
    );
    let r = s.run(&["check", "--dir", "/"]);
    assert_eq!(r.code, 1);
    assert!(!r.stderr.contains("//"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("help: add `/0001_init.sql` with your first CREATE TABLE"),
        "{}",
        r.stderr
    );
    // A directory as `--db`.
    let r = s.run(&["status", "--db", "migrations"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: `migrations` is not a database file: it is a directory\n"
    );
    let r = s.run(&["status", "--db", "none.sqlite"]);
    assert_eq!(
        r.stderr,
        "error: `none.sqlite` is not a database file: it does not exist\n"
    );
}

/// The non-comment lines of `s`'s lock.
fn lock_lines(s: &Scratch) -> Vec<String> {
    s.read("migrations/durable-schema.lock")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn lock_replace_records_a_deliberate_fix() {
    let s = project("lock-replace");
    assert_eq!(s.run(&["lock"]).code, 0);
    let sum = durable_schema_compiler::checksum;
    // The checksums are printed where a user looks for them.
    let r = s.run(&["check", "--verbose"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("\n0002 0002_names.sql {}\n", sum(NAMES))),
        "{}",
        r.stdout
    );

    // A released migration that fails on some objects' data, fixed.
    let fixed = "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';\n";
    s.write("migrations/0002_names.sql", fixed);
    let r = s.run(&["check"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("or record a deliberate fix with `durable-schema lock --replace 0002`\n"),
        "{}",
        r.stderr
    );
    let r = s.run(&["lock", "--replace", "0002"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "recorded the replacement of `0002_names.sql` (version 0002) in `migrations/durable-schema.lock`: {} -> {}\nlocked 3 migrations in `migrations/durable-schema.lock`\n",
            sum(NAMES),
            sum(fixed)
        )
    );
    assert_eq!(
        lock_lines(&s)[1],
        format!("0002 0002_names.sql {} replaces {}", sum(fixed), sum(NAMES))
    );
    assert_eq!(s.run(&["check", "--locked"]).code, 0);
    // The build takes what `lock --replace` wrote.
    let plan = check_dir(&s.0, "migrations", &Options::default()).unwrap();
    assert_eq!(plan.lock.unwrap().entry(2).unwrap().replaces, [sum(NAMES)]);

    // A second replacement appends; the version may be written unpadded.
    let again = "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT 'x';\n";
    s.write("migrations/0002_names.sql", again);
    let r = s.run(&["lock", "--replace", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        lock_lines(&s)[1],
        format!(
            "0002 0002_names.sql {} replaces {},{}",
            sum(again),
            sum(NAMES),
            sum(fixed)
        )
    );
    assert_eq!(s.run(&["check", "--locked"]).code, 0);

    // Refused, and the lock untouched: unchanged, not released, not locked.
    s.write("migrations/0004_more.sql", "CREATE TABLE more (x);\n");
    let locked = s.read("migrations/durable-schema.lock");
    for (version, why) in [
        ("2", "error: `0002_names.sql` matches its line in `migrations/durable-schema.lock`: there is no new text to record"),
        ("9", "error: version 9 is not a released migration of `migrations`: `migrations/durable-schema.lock` has no line for it"),
        ("4", "error: `0004_more.sql` (version 4) is not in `migrations/durable-schema.lock`: it was never released"),
    ] {
        let r = s.run(&["lock", "--replace", version]);
        assert_eq!(r.code, 1, "{version}");
        assert!(r.stderr.starts_with(why), "{version}: {}", r.stderr);
        assert!(
            r.stderr
                .ends_with("error: `migrations` was not locked: fix the problems above first\n"),
            "{}",
            r.stderr
        );
        assert_eq!(s.read("migrations/durable-schema.lock"), locked);
    }
    // Another edit is not declared by replacing a different version.
    s.write(
        "migrations/0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n",
    );
    s.write("migrations/0002_names.sql", NAMES);
    let r = s.run(&["lock", "--replace", "2"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("`0001_users.sql` was edited"),
        "{}",
        r.stderr
    );
    assert_eq!(s.read("migrations/durable-schema.lock"), locked);
}

#[test]
fn a_d1_directory_numbered_from_zero() {
    let s = Scratch::new("d1-zero");
    s.write("migrations/0000_initial.sql", USERS);
    s.write("migrations/0001_add_names.sql", NAMES);
    let r = s.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().next(),
        Some("`migrations`: 2 migrations checked, schema version 2")
    );
    // `new` follows the files' numbering; the template names the version.
    let r = s.run(&["new", "index"]);
    assert_eq!(r.stdout, "migrations/0002_index.sql\n", "{}", r.stderr);
    assert!(s
        .read("migrations/0002_index.sql")
        .starts_with("-- 0002_index.sql: migration 3."));
    s.write("migrations/0002_index.sql", INDEX);
    let r = s.run(&["lock"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = s.read("migrations/durable-schema.lock");
    assert!(text.contains("\n# numbered from 0000_"), "{text}");
    assert_eq!(
        lock_lines(&s),
        [
            format!(
                "0001 0000_initial.sql {}",
                durable_schema_compiler::checksum(USERS)
            ),
            format!(
                "0002 0001_add_names.sql {}",
                durable_schema_compiler::checksum(NAMES)
            ),
            format!(
                "0003 0002_index.sql {}",
                durable_schema_compiler::checksum(INDEX)
            ),
        ]
    );
    assert_eq!(s.run(&["check", "--locked"]).code, 0);
    // `schema` defaults to the last version, 3.
    let r = s.run(&["schema"]);
    assert!(
        r.stdout
            .starts_with("-- the schema of `migrations` at version 3\n"),
        "{}",
        r.stdout
    );
    // `status` shows versions with the files' names.
    migrate(&s, "app.sqlite", 2);
    let r = s.run(&["status", "--db", "app.sqlite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "`app.sqlite`: behind: database at version 2, `migrations` at version 3"
    );
    assert!(
        lines[1].starts_with("  applied  0001  0000_initial.sql    20"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].starts_with("  applied  0002  0001_add_names.sql  20"),
        "{}",
        r.stdout
    );
    assert_eq!(lines[3], "  pending  0003  0002_index.sql");
    // A replacement names the version, as the lock does.
    s.write(
        "migrations/0000_initial.sql",
        &USERS.replace("NOT NULL", "NOT NULL DEFAULT ''"),
    );
    let r = s.run(&["check"]);
    assert!(
        r.stderr.contains("`durable-schema lock --replace 0001`"),
        "{}",
        r.stderr
    );
    let r = s.run(&["lock", "--replace", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        lock_lines(&s)[0].starts_with("0001 0000_initial.sql "),
        "{:?}",
        lock_lines(&s)
    );
    assert_eq!(s.run(&["check", "--locked"]).code, 0);
}
