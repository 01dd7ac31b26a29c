//! The verdict cache: a hit is exactly the full check's plan and replays
//! nothing; every input of the verdict misses when it changes; an entry
//! that cannot be trusted is ignored and overwritten; nothing is written
//! without a cache or for a failing directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::replay::RUNS;
use crate::source::load_dir;
use crate::tests::Scratch;
use crate::{check_dir_with, render_lock, Diagnostic, LockEntry, Plan};

/// The workspace root, where the example schema and the macro's fixtures
/// live.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The check, with the number of replays it ran.
fn check(
    base: &Path,
    dir: &str,
    options: &Options,
    locked: bool,
    cache: Option<&Path>,
) -> (Result<Plan, Vec<Diagnostic>>, usize) {
    let before = RUNS.with(std::cell::Cell::get);
    let result = check_dir_with(base, dir, options, locked, cache);
    (result, RUNS.with(std::cell::Cell::get) - before)
}

/// A full check without a cache, which must succeed.
fn full(base: &Path, dir: &str, options: &Options, locked: bool) -> Plan {
    let (plan, runs) = check(base, dir, options, locked, None);
    assert_eq!(runs, 1);
    plan.unwrap_or_else(|e| panic!("{dir}: {e:#?}"))
}

/// The check through `cache`, which must succeed: the plan and whether it
/// was a hit (no replay).
fn cached(base: &Path, dir: &str, options: &Options, locked: bool, cache: &Path) -> (Plan, bool) {
    let (plan, runs) = check(base, dir, options, locked, Some(cache));
    let plan = plan.unwrap_or_else(|e| panic!("{dir}: {e:#?}"));
    assert!(runs <= 1, "{runs} replays");
    (plan, runs == 0)
}

/// Every file in `cache`, entries and leftovers alike.
fn files_in(cache: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(cache) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The one entry in `cache`.
fn only_entry(cache: &Path) -> PathBuf {
    let files = files_in(cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let entry = files.into_iter().next().unwrap();
    assert_eq!(entry.extension().unwrap(), "plan");
    entry
}

/// Copies the directory `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A scratch copy of the workspace directory `dir`, as `<scratch>/m`.
fn copy_of(name: &str, dir: &str) -> Scratch {
    let scratch = Scratch::new(name, &[]);
    copy_dir(&root().join(dir), &scratch.0.join("m"));
    scratch
}

/// Writes a lock of every migration of `<base>/<dir>`.
fn lock_all(base: &Path, dir: &str) {
    let plan = full(base, dir, &Options::default(), false);
    let entries: Vec<LockEntry> = plan
        .migrations
        .iter()
        .map(|m| LockEntry {
            version: m.source.version,
            name: m.source.name.clone(),
            checksum: m.checksum.clone(),
            replaces: Vec::new(),
            line: 0,
        })
        .collect();
    std::fs::write(base.join(dir).join(crate::LOCK_FILE), render_lock(&entries)).unwrap();
}

/// Replaces the byte at `at` (from the end when negative) of `path`.
fn edit_byte(path: &Path, at: isize, byte: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at.unsigned_abs()
    };
    assert_ne!(
        bytes[at],
        byte,
        "{}: the edit changes nothing",
        path.display()
    );
    bytes[at] = byte;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_hit_returns_exactly_the_plan_a_full_check_returns() {
    // A copy of the example schema with a lock of all of it, for the
    // locked mode.
    let locked = copy_of("cache-hit-locked", "migrations");
    lock_all(&locked.0, "m");
    let root = root();
    let cases: [(&Path, &str, bool); 8] = [
        (&root, "migrations", false),
        (&root, "tests/fixtures/pass/drizzle-journal", false),
        (&root, "examples/drizzle-chat/drizzle", false),
        (&root, "tests/fixtures/pass/replaced", false),
        (&root, "tests/fixtures/pass/deferred-rebuild", false),
        (&root, "tests/fixtures/pass/triggers", false),
        (&locked.0, "m", false),
        (&locked.0, "m", true),
    ];
    let mut with_checks = false;
    let mut with_lock = false;
    let mut with_journal = false;
    for (base, dir, locked) in cases {
        let cache = Scratch::new("cache-hit", &[]);
        let options = Options::default();
        let expected = full(base, dir, &options, locked);
        let (first, hit) = cached(base, dir, &options, locked, &cache.0);
        assert!(!hit, "{dir}: an empty cache cannot hit");
        assert_eq!(first, expected, "{dir}");
        only_entry(&cache.0);
        for _ in 0..2 {
            let (again, hit) = cached(base, dir, &options, locked, &cache.0);
            assert!(hit, "{dir}: the second check must replay nothing");
            assert_eq!(again, expected, "{dir}");
        }
        with_checks |= expected
            .migrations
            .iter()
            .any(|m| !m.foreign_key_checks.is_empty());
        with_lock |= expected.lock.is_some();
        with_journal |= expected
            .migrations
            .iter()
            .all(|m| m.source.journal_when.is_some());
    }
    assert!(with_checks, "no case has foreign-key checks to round-trip");
    assert!(with_lock && with_journal);
}

#[test]
fn a_hit_takes_its_paths_from_the_directory_checked() {
    let cache = Scratch::new("cache-paths", &[]);
    let one = copy_of("cache-paths-one", "migrations");
    let two = copy_of("cache-paths-two", "migrations");
    let options = Options::default();
    let (_, hit) = cached(&one.0, "m", &options, false, &cache.0);
    assert!(!hit);
    // Same files, same key: the entry serves the other copy too, with the
    // other copy's absolute paths (for include_str!).
    let (plan, hit) = cached(&two.0, "m", &options, false, &cache.0);
    assert!(hit);
    assert_eq!(plan, full(&two.0, "m", &options, false));
    let canonical = std::fs::canonicalize(two.0.join("m")).unwrap();
    for m in &plan.migrations {
        assert!(
            Path::new(&m.source.abs_path).starts_with(&canonical),
            "{}",
            m.source.abs_path
        );
    }
}

#[test]
fn editing_any_input_misses() {
    let cache = Scratch::new("cache-edits", &[]);
    let options = Options::default();

    // Each migration file, by one byte (the trailing newline becomes a
    // space); then the original again, whose entry is still there.
    let plain = copy_of("cache-edits-plain", "migrations");
    let (_, hit) = cached(&plain.0, "m", &options, false, &cache.0);
    assert!(!hit);
    let mut names: Vec<PathBuf> = files_in(&plain.0.join("m"));
    names.sort();
    assert_eq!(names.len(), 3);
    for file in &names {
        let original = std::fs::read(file).unwrap();
        edit_byte(file, -1, b' ');
        let (plan, hit) = cached(&plain.0, "m", &options, false, &cache.0);
        assert!(!hit, "{}", file.display());
        assert_eq!(plan, full(&plain.0, "m", &options, false));
        let (_, hit) = cached(&plain.0, "m", &options, false, &cache.0);
        assert!(hit);
        std::fs::write(file, original).unwrap();
        let (_, hit) = cached(&plain.0, "m", &options, false, &cache.0);
        assert!(hit, "the original's entry serves again");
    }

    // The options: the tracking table, the locked mode.
    let other_table = Options {
        table: "schema_history".to_owned(),
    };
    let (plan, hit) = cached(&plain.0, "m", &other_table, false, &cache.0);
    assert!(!hit);
    assert_eq!(plan, full(&plain.0, "m", &other_table, false));
    lock_all(&plain.0, "m");
    let (_, hit) = cached(&plain.0, "m", &options, false, &cache.0);
    assert!(!hit, "a new lock misses");
    let (plan, hit) = cached(&plain.0, "m", &options, true, &cache.0);
    assert!(!hit, "the locked mode misses");
    assert_eq!(plan, full(&plain.0, "m", &options, true));

    // The lock, by one byte of a comment (it still verifies).
    let lock = plain.0.join("m").join(crate::LOCK_FILE);
    edit_byte(&lock, 2, b'D');
    let (plan, hit) = cached(&plain.0, "m", &options, false, &cache.0);
    assert!(!hit);
    assert_eq!(plan, full(&plain.0, "m", &options, false));
    // A locked file edited is the lock's error, whatever the cache holds.
    let first = names.first().unwrap();
    let original = std::fs::read(first).unwrap();
    edit_byte(first, -1, b' ');
    let (result, _) = check(&plain.0, "m", &options, false, Some(&cache.0));
    let errors = result.unwrap_err();
    assert!(errors.iter().any(|e| e.rule == Some("lock")), "{errors:#?}");
    std::fs::write(first, original).unwrap();
    let (_, hit) = cached(&plain.0, "m", &options, false, &cache.0);
    assert!(hit);

    // The journal: a `when` by one digit, then by one byte of whitespace.
    let drizzle = copy_of("cache-edits-drizzle", "tests/fixtures/pass/drizzle-journal");
    let journal = drizzle.0.join("m").join(crate::journal::JOURNAL);
    let (_, hit) = cached(&drizzle.0, "m", &options, false, &cache.0);
    assert!(!hit);
    let text = std::fs::read_to_string(&journal).unwrap();
    let digit = text.find("1700086400000").unwrap() + 12;
    edit_byte(&journal, digit as isize, b'7');
    let (plan, hit) = cached(&drizzle.0, "m", &options, false, &cache.0);
    assert!(!hit);
    assert_eq!(
        plan.migrations[2].source.journal_when,
        Some(1_700_086_400_007)
    );
    assert_eq!(plan, full(&drizzle.0, "m", &options, false));
    edit_byte(&journal, 1, b' ');
    let (plan, hit) = cached(&drizzle.0, "m", &options, false, &cache.0);
    assert!(!hit);
    assert_eq!(plan, full(&drizzle.0, "m", &options, false));
    let (_, hit) = cached(&drizzle.0, "m", &options, false, &cache.0);
    assert!(hit);
}

#[test]
fn the_key_covers_every_input() {
    let scratch = Scratch::new(
        "cache-key",
        &[
            ("0001_a.sql", b"CREATE TABLE a (id INTEGER PRIMARY KEY);\n"),
            ("0002_b.sql", b"CREATE TABLE b (id INTEGER PRIMARY KEY);\n"),
        ],
    );
    let files = load_dir(&scratch.0, ".").files;
    let options = Options::default();
    let base = key_of(&options, false, &files, None, None);
    assert_eq!(base, key_of(&options, false, &files, None, None));
    assert_eq!(base, key(&scratch.0, ".", &options, false, &files));
    assert_eq!(base.len(), 64);
    // The build's source fingerprint (build.rs) is in it.
    let fingerprint = env!("DURABLE_SCHEMA_COMPILER_FINGERPRINT");
    assert!(fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));

    let mut keys = HashSet::from([base]);
    let mut distinct = |key: String| assert!(keys.insert(key), "a key repeats");
    let table = Options {
        table: "other".to_owned(),
    };
    distinct(key_of(&table, false, &files, None, None));
    distinct(key_of(&options, true, &files, None, None));
    distinct(key_of(&options, false, &files, Some(b""), None));
    distinct(key_of(&options, false, &files, Some(b"# x"), None));
    distinct(key_of(&options, false, &files, None, Some(b"")));
    distinct(key_of(&options, false, &files, None, Some(b"{}")));
    distinct(key_of(&options, false, &files[..1], None, None));
    let edits: [fn(&mut SourceFileOf); 6] = [
        |s| s.version += 1,
        |s| s.name.push('x'),
        |s| s.description.push('x'),
        |s| s.display_path.insert_str(0, "m/"),
        |s| s.text.push(' '),
        |s| s.journal_when = Some(0),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut changed = files.clone();
        edit(&mut changed[i % 2].source);
        distinct(key_of(&options, false, &changed, None, None));
    }
    // Field boundaries count: text moved from one file to the next.
    let mut shifted = files.clone();
    let moved = shifted[0].source.text.pop().unwrap();
    shifted[1].source.text.insert(0, moved);
    distinct(key_of(&options, false, &shifted, None, None));
    // Where the directory is does not: only what is in it.
    let mut elsewhere = files.clone();
    elsewhere[0].source.abs_path = "/elsewhere".to_owned();
    assert!(keys.contains(&key_of(&options, false, &elsewhere, None, None)));
}

type SourceFileOf = crate::SourceFile;

/// The ways an entry can be untrustworthy: each is a miss, the full check
/// runs and the entry is written anew.
#[test]
fn an_untrustworthy_entry_is_ignored_and_overwritten() {
    let cache = Scratch::new("cache-corrupt", &[]);
    let dir = copy_of("cache-corrupt-dir", "migrations");
    let options = Options::default();
    let expected = full(&dir.0, "m", &options, false);
    let (_, hit) = cached(&dir.0, "m", &options, false, &cache.0);
    assert!(!hit);
    let entry = only_entry(&cache.0);
    let good = std::fs::read(&entry).unwrap();
    let key = entry.file_stem().unwrap().to_str().unwrap().to_owned();
    let newline = good.iter().position(|&b| b == b'\n').unwrap();
    let payload = &good[newline + 1..];
    let with_header = |format: u32, key: &str, version: &str, payload: &[u8]| {
        let mut bytes = header(format, key, payload)
            .replacen(env!("CARGO_PKG_VERSION"), version, 1)
            .into_bytes();
        bytes.extend_from_slice(payload);
        bytes
    };
    let flipped = |at: usize| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        bytes
    };
    // Another directory's entry, re-keyed with a valid header.
    let other_cache = Scratch::new("cache-corrupt-other", &[]);
    let (_, _) = cached(
        &root(),
        "tests/fixtures/pass/triggers",
        &options,
        false,
        &other_cache.0,
    );
    let other = std::fs::read(only_entry(&other_cache.0)).unwrap();
    let other_payload = &other[other.iter().position(|&b| b == b'\n').unwrap() + 1..];
    // A payload whose first span no longer fits the text.
    let mut parsed: Payload = serde_json::from_slice(payload).unwrap();
    parsed.migrations[0].statements[0].1 = expected.migrations[0].source.text.len() + 1;
    let wide = serde_json::to_string(&parsed).unwrap();

    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("a payload byte flipped", flipped(good.len() - 3)),
        ("a header byte flipped", flipped(newline - 1)),
        ("the key's byte flipped", flipped(newline - 70)),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("only the header", good[..=newline].to_vec()),
        ("no newline", good[..newline].to_vec()),
        ("empty", Vec::new()),
        ("not UTF-8", vec![0xff; 100]),
        (
            "another key inside",
            with_header(FORMAT, &"0".repeat(64), env!("CARGO_PKG_VERSION"), payload),
        ),
        (
            "another format",
            with_header(FORMAT + 1, &key, env!("CARGO_PKG_VERSION"), payload),
        ),
        (
            "another compiler version",
            with_header(FORMAT, &key, "0.0.0-other", payload),
        ),
        (
            "another directory's payload",
            with_header(FORMAT, &key, env!("CARGO_PKG_VERSION"), other_payload),
        ),
        (
            "a span off the text",
            with_header(FORMAT, &key, env!("CARGO_PKG_VERSION"), wide.as_bytes()),
        ),
        (
            "JSON of another shape",
            with_header(
                FORMAT,
                &key,
                env!("CARGO_PKG_VERSION"),
                b"{\"migrations\":7}",
            ),
        ),
        (
            "not JSON",
            with_header(FORMAT, &key, env!("CARGO_PKG_VERSION"), b"plan"),
        ),
        (
            "no migrations",
            with_header(
                FORMAT,
                &key,
                env!("CARGO_PKG_VERSION"),
                b"{\"migrations\":[]}",
            ),
        ),
    ];
    for (what, bytes) in variants {
        std::fs::write(&entry, &bytes).unwrap();
        let (plan, hit) = cached(&dir.0, "m", &options, false, &cache.0);
        assert!(!hit, "{what}: trusted");
        assert_eq!(plan, expected, "{what}");
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            good,
            "{what}: not overwritten"
        );
        let (_, hit) = cached(&dir.0, "m", &options, false, &cache.0);
        assert!(hit, "{what}");
    }
    // A directory where the entry should be: a miss, and nothing breaks.
    std::fs::remove_file(&entry).unwrap();
    std::fs::create_dir(&entry).unwrap();
    for _ in 0..2 {
        let (plan, hit) = cached(&dir.0, "m", &options, false, &cache.0);
        assert!(!hit);
        assert_eq!(plan, expected);
    }
}

#[test]
fn without_a_cache_nothing_is_written() {
    assert_eq!(dir_for(Some("off".as_ref())), None);
    assert_eq!(dir_for(Some("OFF".as_ref())), None);
    let default = std::env::temp_dir().join("durable-schema-cache");
    assert_eq!(dir_for(None), Some(default.clone()));
    assert_eq!(dir_for(Some("".as_ref())), Some(default.clone()));
    assert_eq!(
        dir_for(Some("/somewhere/else".as_ref())),
        Some(PathBuf::from("/somewhere/else"))
    );

    // A directory no other test checks, so its key is its own.
    let unique = format!(
        "-- {} {:?}\nCREATE TABLE t (id INTEGER PRIMARY KEY);\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let dir = Scratch::new("cache-off", &[("0001_t.sql", unique.as_bytes())]);
    let files = load_dir(&dir.0, ".").files;
    let key = key(&dir.0, ".", &Options::default(), false, &files);

    // Through the environment, as the macro and the CLI run it. No other
    // test reads the variable (they pass their cache directory).
    let chosen = Scratch::new("cache-off-env", &[]);
    let previous = std::env::var_os(ENV);
    std::env::set_var(ENV, "off");
    let off = crate::check_dir(&dir.0, ".", &Options::default());
    std::env::set_var(ENV, &chosen.0);
    let on = crate::check_dir(&dir.0, ".", &Options::default());
    match previous {
        Some(value) => std::env::set_var(ENV, value),
        None => std::env::remove_var(ENV),
    }
    assert_eq!(off.unwrap(), on.unwrap());
    assert!(
        !entry_path(&default, &key).exists(),
        "`off` wrote the default cache"
    );
    // (Other tests' checks may land in `chosen` while the variable names it.)
    assert!(
        entry_path(&chosen.0, &key).is_file(),
        "the named cache was not used"
    );

    // Without a cache directory: a replay every time.
    for _ in 0..2 {
        let (plan, runs) = check(&dir.0, ".", &Options::default(), false, None);
        assert!(plan.is_ok());
        assert_eq!(runs, 1);
    }
}

/// A scratch directory's files: name and bytes.
type Files<'a> = &'a [(&'a str, &'a [u8])];

#[test]
fn a_failing_directory_writes_nothing() {
    let options = Options::default();
    let cases: [(&str, Files); 4] = [
        (
            "cache-fail-replay",
            &[
                ("0001_a.sql", b"CREATE TABLE a (id INTEGER PRIMARY KEY);\n"),
                ("0002_b.sql", b"ALTER TABLE a ADD COLUMN id TEXT;\n"),
            ],
        ),
        (
            "cache-fail-rule",
            &[("0001_a.sql", b"CREATE TABLE a (id INTEGER PRIMARY KEY);\nPRAGMA user_version = 3;\n")],
        ),
        (
            "cache-fail-name",
            &[
                ("0001_a.sql", b"CREATE TABLE a (id INTEGER PRIMARY KEY);\n"),
                ("2_b.sql", b"CREATE TABLE b (id INTEGER PRIMARY KEY);\n"),
            ],
        ),
        (
            "cache-fail-lock",
            &[
                ("0001_a.sql", b"CREATE TABLE a (id INTEGER PRIMARY KEY);\n"),
                ("durable-schema.lock", b"0001 0001_a.sql 0000000000000000000000000000000000000000000000000000000000000000\n"),
            ],
        ),
    ];
    for (name, files) in cases {
        let dir = Scratch::new(name, files);
        let cache = Scratch::new(&format!("{name}-cache"), &[]);
        for _ in 0..2 {
            let (result, _) = check(&dir.0, ".", &options, false, Some(&cache.0));
            assert!(result.is_err(), "{name}");
            assert_eq!(files_in(&cache.0), Vec::<PathBuf>::new(), "{name}");
        }
    }
    // The locked mode's own error: no lock.
    let dir = Scratch::new("cache-fail-unlocked", &[("0001_a.sql", b"SELECT 1;\n")]);
    let cache = Scratch::new("cache-fail-unlocked-cache", &[]);
    let (result, _) = check(&dir.0, ".", &options, true, Some(&cache.0));
    assert!(result.is_err());
    assert_eq!(files_in(&cache.0), Vec::<PathBuf>::new());
}

#[test]
fn a_cache_that_cannot_be_written_is_a_miss_not_an_error() {
    let dir = copy_of("cache-unwritable-dir", "migrations");
    let options = Options::default();
    let expected = full(&dir.0, "m", &options, false);
    // The cache "directory" is a file.
    let blocker = Scratch::new("cache-unwritable", &[("file", b"not a directory")]);
    let cache = blocker.0.join("file");
    for _ in 0..2 {
        let (plan, hit) = cached(&dir.0, "m", &options, false, &cache);
        assert!(!hit);
        assert_eq!(plan, expected);
    }
    assert_eq!(std::fs::read(&cache).unwrap(), b"not a directory");
}

#[test]
fn concurrent_checks_share_one_entry() {
    let cache = Scratch::new("cache-concurrent", &[]);
    let dir = copy_of("cache-concurrent-dir", "migrations");
    let options = Options::default();
    let expected = full(&dir.0, "m", &options, false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..3)
                        .map(|_| cached(&dir.0, "m", &options, false, &cache.0).0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            for plan in worker.join().unwrap() {
                assert_eq!(plan, expected);
            }
        }
    });
    // One entry, no temporary files left.
    only_entry(&cache.0);
}
