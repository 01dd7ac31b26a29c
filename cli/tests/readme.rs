//! The `durable-schema` session of `docs/workflow.md` (the page the README
//! links to as "Workflow", the fenced block after `<!-- cli-session -->`) is
//! what the binary prints: this test
//! plays the session in a scratch copy of the example schema and compares.
//! With `UPDATE_README=1` it rewrites the block from the run instead, so
//! pasted output is regenerated, never edited by hand.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use durable_schema_compiler::{check_dir, runtime_schema, NoBaseline, Options};

const MARKER: &str = "<!-- cli-session -->";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$ durable-schema ARGS` with what it printed (stdout, then stderr: the
/// session's commands print to one of them only, asserted).
fn step(dir: &Path, args: &[&str], comment: &str, code: i32) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_durable-schema"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stdout}{stderr}");
    assert!(
        stdout.is_empty() || stderr.is_empty(),
        "{args:?} printed to both stdout and stderr, whose order a transcript cannot keep"
    );
    format!(
        "$ durable-schema {}{comment}\n{stdout}{stderr}",
        args.join(" ")
    )
}

/// The session: the example schema (`migrations/`, three migrations), a
/// database the native demo migrated to version 3, a new migration with a
/// typo, fixed, then status, diff and lock.
fn session() -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-readme-session");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("migrations")).unwrap();
    for entry in fs::read_dir(repo().join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sql") {
            fs::copy(
                &path,
                dir.join("migrations").join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    // demo.sqlite as `cargo run --example native_demo --features rusqlite`
    // leaves it: the example schema applied, version 3.
    let plan = check_dir(&dir, "migrations", &Options::default()).unwrap();
    assert_eq!(plan.migrations.len(), 3, "the session starts at version 3");
    let mut demo = plan.clone();
    demo.baseline = Err(NoBaseline::Off);
    let conn = rusqlite::Connection::open(dir.join("demo.sqlite")).unwrap();
    runtime_schema(&demo, "migrations")
        .unwrap()
        .migrate(&conn)
        .unwrap();
    drop(conn);

    let fixed = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/readme/0004_add_reactions.sql"),
    )
    .unwrap();
    let typo = fixed.replace("(user_id, emoji);", "(user_id, emoij);");
    assert_ne!(typo, fixed);
    let new_file = dir.join("migrations/0004_add_reactions.sql");

    let mut out = step(&dir, &["new", "add_reactions"], "", 0);
    fs::write(&new_file, typo).unwrap();
    out += &step(&dir, &["check"], "", 1);
    fs::write(&new_file, fixed).unwrap();
    out += &step(&dir, &["check"], "        # after fixing the typo", 0);
    out += &step(&dir, &["status", "--db", "demo.sqlite"], "", 0);
    out += &step(&dir, &["diff", "3"], "", 0);
    out += &step(&dir, &["lock"], "", 0);
    let _ = fs::remove_dir_all(&dir);
    out
}

/// The byte range of the block's body (between the fences) after MARKER.
fn block(readme: &str) -> std::ops::Range<usize> {
    let at = readme
        .find(&format!("{MARKER}\n```text\n"))
        .expect("docs/workflow.md has `<!-- cli-session -->` followed by a ```text block");
    let start = at + MARKER.len() + "\n```text\n".len();
    let len = readme[start..]
        .find("\n```\n")
        .expect("the session block is closed")
        + 1;
    start..start + len
}

/// `2026-11-30T14:51:18.632Z` (when a migration was applied) as `<time>`:
/// the only part of the session that differs from run to run.
fn mask_times(text: &str) -> String {
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let is_time = bytes.len() - i >= shape.len()
            && shape.iter().zip(&bytes[i..]).all(|(s, b)| match s {
                b'd' => b.is_ascii_digit(),
                s => s == b,
            });
        if is_time {
            out.push_str("<time>");
            i += shape.len();
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn mask_times_replaces_only_timestamps() {
    assert_eq!(
        mask_times("applied  2026-11-30T14:51:18.632Z é 2026-11-30"),
        "applied  <time> é 2026-11-30"
    );
}

#[test]
fn readme_session_is_what_the_cli_prints() {
    let path = repo().join("docs/workflow.md");
    let readme = fs::read_to_string(&path).unwrap();
    let range = block(&readme);
    let actual = session();
    if std::env::var_os("UPDATE_README").is_some() {
        let mut updated = readme.clone();
        updated.replace_range(range, &actual);
        fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        mask_times(&readme[range]),
        mask_times(&actual),
        "docs/workflow.md's durable-schema session differs from what the binary prints; \
         regenerate it with `UPDATE_README=1 cargo test -p durable-schema-cli --test readme`"
    );
}
