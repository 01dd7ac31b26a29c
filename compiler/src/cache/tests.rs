//! The verdict cache: a hit is exactly the full check's plan and replays
//! nothing; every input of the verdict misses when it changes; an entry
//! that cannot be trusted is ignored and overwritten; nothing is written
//! without a cache or for a failing directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::replay::{REPLAYED, RUNS};
use crate::source::load_dir;
use crate::tests::Scratch;
use crate::{check_dir_with, render_lock, Diagnostic, Plan};

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
    let cache = cache.map(Cache::open);
    let options = Options {
        locked,
        ..options.clone()
    };
    let result = check_dir_with(base, dir, &options, cache.as_ref().and_then(Choice::cache));
    (result, RUNS.with(std::cell::Cell::get) - before)
}

/// The cache in `dir`, which must be usable.
fn open(dir: &Path) -> Cache {
    match Cache::open(dir) {
        Choice::Use(cache) => cache,
        other => panic!("{}: {other:?}", dir.display()),
    }
}

/// An entry for `key` with `payload`, under `words` (the header before the
/// tag), tagged with the secret of the cache in `signer`.
fn signed(signer: &Path, words: &str, payload: &[u8]) -> Vec<u8> {
    let tag = open(signer).tag(&[words.as_bytes(), payload]).unwrap();
    let mut bytes = format!("{words} {tag}\n").into_bytes();
    bytes.extend_from_slice(payload);
    bytes
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

/// Every file in `cache`, entries and leftovers alike, but its secret.
fn files_in(cache: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(cache) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with("secret"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The one entry in `cache` (beside at most one replay image).
fn only_entry(cache: &Path) -> PathBuf {
    let (plans, others): (Vec<PathBuf>, Vec<PathBuf>) = files_in(cache)
        .into_iter()
        .partition(|f| f.extension().is_some_and(|e| e == "plan"));
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert!(
        others.len() <= 1 && others.iter().all(|f| f.extension().unwrap() == "image"),
        "{others:?}"
    );
    plans.into_iter().next().unwrap()
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
    let text = render_lock(&plan.lock_entries());
    std::fs::write(base.join(dir).join(crate::LOCK_FILE), text).unwrap();
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

    // The options: the tracking table, the baseline, the locked mode.
    let other_table = Options {
        table: "schema_history".to_owned(),
        ..Options::default()
    };
    let (plan, hit) = cached(&plain.0, "m", &other_table, false, &cache.0);
    assert!(!hit);
    assert_eq!(plan, full(&plain.0, "m", &other_table, false));
    let no_baseline = Options {
        baseline: false,
        ..Options::default()
    };
    let (plan, hit) = cached(&plain.0, "m", &no_baseline, false, &cache.0);
    assert!(!hit);
    assert_eq!(plan.baseline, Err(crate::NoBaseline::Off));
    assert_eq!(plan, full(&plain.0, "m", &no_baseline, false));
    let (plan, hit) = cached(&plain.0, "m", &no_baseline, false, &cache.0);
    assert!(hit);
    assert_eq!(plan.baseline, Err(crate::NoBaseline::Off));
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
    assert_eq!(base, key(&scratch.0, ".", &options, &files));
    assert_eq!(base.len(), 64);
    // The build's source fingerprint (build.rs) is in it.
    let fingerprint = env!("DURABLE_SCHEMA_COMPILER_FINGERPRINT");
    assert!(fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));

    let mut keys = HashSet::from([base]);
    let mut distinct = |key: String| assert!(keys.insert(key), "a key repeats");
    let table = Options {
        table: "other".to_owned(),
        ..Options::default()
    };
    distinct(key_of(&table, false, &files, None, None));
    let no_baseline = Options {
        baseline: false,
        ..Options::default()
    };
    distinct(key_of(&no_baseline, false, &files, None, None));
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
        distinct(key_of(&options, false, &fresh(changed), None, None));
    }
    // Field boundaries count: text moved from one file to the next.
    let mut shifted = files.clone();
    let moved = shifted[0].source.text.pop().unwrap();
    shifted[1].source.text.insert(0, moved);
    distinct(key_of(&options, false, &fresh(shifted), None, None));
    // Where the directory is does not: only what is in it.
    let mut elsewhere = files.clone();
    elsewhere[0].source.abs_path = "/elsewhere".to_owned();
    assert!(keys.contains(&key_of(&options, false, &elsewhere, None, None)));
}

type SourceFileOf = crate::SourceFile;

/// `files` loaded anew from their edited sources (nothing split or hashed
/// from before the edit).
fn fresh(files: Vec<LoadedFile>) -> Vec<LoadedFile> {
    files
        .into_iter()
        .map(|f| LoadedFile::new(f.source))
        .collect()
}

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
    // Tagged with this cache's own secret: only the other checks can
    // refuse these.
    let with_header = |format: u32, key: &str, version: &str, payload: &[u8]| {
        signed(
            &cache.0,
            &format!("{MAGIC} {format} {version} {key}"),
            payload,
        )
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
    // The integrity hash the previous format used, which anyone can
    // recompute over a payload of their own.
    let sha = |payload: &[u8]| {
        let mut bytes = format!(
            "{} {}\n",
            header_words(&key),
            crate::hash::hex(&Sha256::digest(payload))
        )
        .into_bytes();
        bytes.extend_from_slice(payload);
        bytes
    };

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
        ("a SHA-256 instead of the tag", sha(payload)),
        (
            "a span off the text, tagged with this user's secret",
            with_header(FORMAT, &key, env!("CARGO_PKG_VERSION"), wide.as_bytes()),
        ),
        (
            "another user's tag",
            signed(&other_cache.0, &header_words(&key), payload),
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
    use place::dir_for;
    assert_eq!(dir_for(Some("off".as_ref())), None);
    assert_eq!(dir_for(Some("OFF".as_ref())), None);
    let default = default_dir();
    assert_eq!(dir_for(None), Some(default.clone()));
    assert_eq!(dir_for(Some("".as_ref())), Some(default.clone()));
    assert_eq!(
        dir_for(Some("/somewhere/else".as_ref())),
        Some(Some(PathBuf::from("/somewhere/else")))
    );
    let default = default.unwrap_or_default();

    // A directory no other test checks, so its key is its own.
    let unique = format!(
        "-- {} {:?}\nCREATE TABLE t (id INTEGER PRIMARY KEY);\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let dir = Scratch::new("cache-off", &[("0001_t.sql", unique.as_bytes())]);
    let files = load_dir(&dir.0, ".").files;
    let key = key(&dir.0, ".", &Options::default(), &files);

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
        !default.join(entry_name(&key)).exists(),
        "`off` wrote the default cache"
    );
    // (Other tests' checks may land in `chosen` while the variable names it.)
    assert!(
        chosen.0.join(entry_name(&key)).is_file(),
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

#[allow(unreachable_pub)]
#[path = "../../tests/common/chain.rs"]
mod generated;

/// The check through `cache`, with the number of migrations it replayed.
fn resumed(base: &Path, dir: &str, cache: &Path) -> (Result<Plan, Vec<Diagnostic>>, usize) {
    let before = REPLAYED.with(std::cell::Cell::get);
    let cache = Cache::open(cache);
    let result = check_dir_with(base, dir, &Options::default(), cache.cache());
    (result, REPLAYED.with(std::cell::Cell::get) - before)
}

/// The replay images in `cache`.
fn images_in(cache: &Path) -> Vec<PathBuf> {
    files_in(cache)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "image"))
        .collect()
}

#[test]
fn new_migrations_resume_from_the_cached_image_of_the_checked_ones() {
    let files = generated::chain(40, 2026);
    for appended in [1, 2] {
        let scratch = Scratch::new("resume-generated", &[]);
        let cache = scratch.0.join("cache");
        let dir = scratch.0.join("m");
        std::fs::create_dir_all(&dir).unwrap();
        let kept = files.len() - 2;
        for (name, text) in &files[..kept] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let (first, replayed) = resumed(&scratch.0, "m", &cache);
        assert_eq!(
            first.unwrap(),
            full(&scratch.0, "m", &Options::default(), false)
        );
        assert_eq!(replayed, kept);
        assert_eq!(images_in(&cache).len(), 1);
        for (name, text) in &files[kept..kept + appended] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let (plan, replayed) = resumed(&scratch.0, "m", &cache);
        assert_eq!(replayed, appended, "only the new migrations are replayed");
        assert_eq!(
            plan.unwrap(),
            full(&scratch.0, "m", &Options::default(), false)
        );
        // The head's image is stored too: one more migration resumes from it.
        assert_eq!(images_in(&cache).len(), 2);
        let (again, replayed) = resumed(&scratch.0, "m", &cache);
        assert_eq!(replayed, 0, "now a verdict hit");
        assert_eq!(
            again.unwrap(),
            full(&scratch.0, "m", &Options::default(), false)
        );
    }
}

#[test]
fn a_migration_appended_to_the_example_schema_resumes() {
    let scratch = copy_of("resume-example", "migrations");
    let cache = scratch.0.join("cache");
    let (_, replayed) = resumed(&scratch.0, "m", &cache);
    assert_eq!(replayed, 3);
    std::fs::write(
        scratch.0.join("m/0004_add_bio.sql"),
        "ALTER TABLE users ADD COLUMN bio TEXT;\nCREATE INDEX users_bio ON users(bio);\n",
    )
    .unwrap();
    let (plan, replayed) = resumed(&scratch.0, "m", &cache);
    assert_eq!(replayed, 1);
    let plan = plan.unwrap();
    assert_eq!(plan.version(), 4);
    assert_eq!(plan, full(&scratch.0, "m", &Options::default(), false));
}

/// A replay resumed from an image stands at the image's instant, so the
/// clock's values of the checked migrations and of the new ones agree:
/// otherwise the second replay's comparison finds prefix values that no
/// clock expression gives at the resumed instant, and no baseline.
#[test]
fn a_chain_reading_the_clock_resumes_at_the_instant_of_its_image() {
    let scratch = Scratch::new(
        "resume-clock",
        &[
            (
                "m/0001_users.sql",
                b"CREATE TABLE users (id INTEGER PRIMARY KEY, at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')));\nINSERT INTO users (id) VALUES (1);\n",
            ),
        ],
    );
    let cache = scratch.0.join("cache");
    let (first, replayed) = resumed(&scratch.0, "m", &cache);
    assert_eq!(replayed, 1);
    assert!(first.unwrap().baseline.is_ok());
    std::fs::write(
        scratch.0.join("m/0002_more.sql"),
        "INSERT INTO users (id) VALUES (2);\n",
    )
    .unwrap();
    let (plan, replayed) = resumed(&scratch.0, "m", &cache);
    assert_eq!(replayed, 1, "resumed from the image");
    let plan = plan.unwrap();
    assert!(plan.migrations.iter().all(|m| m.clock.is_some()));
    assert_eq!(plan, full(&scratch.0, "m", &Options::default(), false));
}

#[test]
fn a_failing_new_migration_has_the_full_checks_diagnostics() {
    let files = generated::chain(12, 7);
    let scratch = Scratch::new("resume-failing", &[]);
    let cache = scratch.0.join("cache");
    let dir = scratch.0.join("m");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let (ok, _) = resumed(&scratch.0, "m", &cache);
    ok.unwrap();
    // A migration that needs a table only a later one creates, a foreign
    // key broken at the end of the migration, and a denied pragma.
    std::fs::write(
        dir.join("0013_index_later.sql"),
        "CREATE INDEX later_x ON later(x);\nPRAGMA journal_mode = WAL;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0014_later.sql"),
        "CREATE TABLE later(x INTEGER REFERENCES nope(id));\nPRAGMA defer_foreign_keys = ON;\nINSERT INTO later VALUES (1);\n",
    )
    .unwrap();
    let expected = check(&scratch.0, "m", &Options::default(), false, None)
        .0
        .unwrap_err();
    assert!(expected.len() >= 2, "{expected:#?}");
    assert!(
        expected.iter().any(|d| d
            .help
            .as_deref()
            .is_some_and(|h| h.contains("0014_later.sql"))),
        "{expected:#?}"
    );
    let (errors, replayed) = resumed(&scratch.0, "m", &cache);
    assert_eq!(replayed, 2, "resumed after the 12 checked migrations");
    assert_eq!(errors.unwrap_err(), expected);
    // Nothing is stored for the failure: the image of the 12 stays alone.
    assert_eq!(images_in(&cache).len(), 1);
}

#[test]
fn an_untrustworthy_image_is_ignored() {
    let files = generated::chain(8, 11);
    let scratch = Scratch::new("resume-untrusted", &[]);
    let cache = scratch.0.join("cache");
    let other_cache = scratch.0.join("other-cache");
    let dir = scratch.0.join("m");
    let other = scratch.0.join("o");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    for (name, text) in &files[..7] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    // Another directory's image, of other migrations.
    for (name, text) in &generated::chain(7, 12) {
        std::fs::write(other.join(name), text).unwrap();
    }
    resumed(&scratch.0, "m", &cache).0.unwrap();
    resumed(&scratch.0, "o", &other_cache).0.unwrap();
    let image = images_in(&cache).pop().unwrap();
    let foreign = images_in(&other_cache).pop().unwrap();
    let pristine = std::fs::read(&image).unwrap();
    std::fs::write(dir.join(&files[7].0), &files[7].1).unwrap();
    let expected = full(&scratch.0, "m", &Options::default(), false);
    let len = pristine.len();
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("a byte of the image", {
            let mut b = pristine.clone();
            b[len - 100] ^= 1;
            b
        }),
        ("a byte of the payload", {
            let mut b = pristine.clone();
            let at = b.iter().position(|&c| c == b'{').unwrap() + 5;
            b[at] ^= 1;
            b
        }),
        ("truncated", pristine[..len / 2].to_vec()),
        ("empty", Vec::new()),
        ("another key's", std::fs::read(&foreign).unwrap()),
        ("not an image", {
            // A well-formed entry around bytes SQLite refuses.
            let head_end = pristine.iter().position(|&c| c == b'\n').unwrap();
            let head = std::str::from_utf8(&pristine[..head_end]).unwrap();
            let fields: Vec<&str> = head.split(' ').collect();
            let length: usize = fields[5].parse().unwrap();
            let payload = &pristine[head_end + 1..head_end + 1 + length];
            let junk = vec![7u8; 4096];
            let words = image_words(fields[3]);
            let tag = open(&cache)
                .tag(&[words.as_bytes(), payload, &junk])
                .unwrap();
            let mut b = format!("{words} {tag} {length}\n").into_bytes();
            b.extend_from_slice(payload);
            b.extend_from_slice(&junk);
            b
        }),
        ("re-tagged with another user's secret", {
            // The attacker's own image for this very key (the key needs
            // only public inputs), tagged with their secret.
            let head_end = pristine.iter().position(|&c| c == b'\n').unwrap();
            let head = std::str::from_utf8(&pristine[..head_end]).unwrap();
            let fields: Vec<&str> = head.split(' ').collect();
            let length: usize = fields[5].parse().unwrap();
            let body = &pristine[head_end + 1..];
            let words = image_words(fields[3]);
            let (payload, image) = body.split_at(length);
            let tag = open(&other_cache)
                .tag(&[words.as_bytes(), payload, image])
                .unwrap();
            let mut b = format!("{words} {tag} {length}\n").into_bytes();
            b.extend_from_slice(body);
            b
        }),
    ];
    for (what, bytes) in corruptions {
        std::fs::write(&image, &bytes).unwrap();
        forget_verdicts(&cache);
        let (plan, replayed) = resumed(&scratch.0, "m", &cache);
        assert_eq!(replayed, 8, "{what}: a full replay");
        assert_eq!(plan.unwrap(), expected, "{what}");
        // Back to the state before the new migration.
        for f in images_in(&cache) {
            if f != image {
                std::fs::remove_file(f).unwrap();
            }
        }
    }
    // A prefix file renamed (same version and text, so the same chain
    // value): the cached names do not match, the image is not used.
    std::fs::write(&image, &pristine).unwrap();
    forget_verdicts(&cache);
    let (old, new) = (&files[2].0, files[2].0.replace(".sql", "_renamed.sql"));
    std::fs::rename(dir.join(old), dir.join(&new)).unwrap();
    let renamed = full(&scratch.0, "m", &Options::default(), false);
    let (plan, replayed) = resumed(&scratch.0, "m", &cache);
    assert_eq!(replayed, 8, "renamed: a full replay");
    assert_eq!(plan.unwrap(), renamed);
    assert_eq!(renamed.migrations[2].source.name, new);
}

/// Removes every verdict entry from `cache` (so the next check is not a
/// verdict hit), keeping the replay images.
fn forget_verdicts(cache: &Path) {
    for f in files_in(cache) {
        if f.extension().is_some_and(|e| e == "plan") {
            std::fs::remove_file(f).unwrap();
        }
    }
}

#[test]
fn state_outside_the_image_keeps_the_replay_full() {
    let base = "CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER);\nINSERT INTO t(n) VALUES (1);\n";
    let cases: [(&str, &str, &str); 3] = [
        // A pragma that outlives its migration: no image is stored.
        (
            "PRAGMA recursive_triggers = ON;\n",
            "INSERT INTO t(n) VALUES (2);\n",
            "pragma",
        ),
        // The connection's history read by a new migration.
        (
            "",
            "INSERT INTO t(n) VALUES (last_insert_rowid());\n",
            "last_insert_rowid",
        ),
        // ... or by a trigger of the checked ones.
        (
            "CREATE TABLE log(c INTEGER);\nCREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (changes ()); END;\n",
            "INSERT INTO t(n) VALUES (2);\n",
            "changes",
        ),
    ];
    for (first, second, what) in cases {
        let first = format!("{base}{first}");
        let scratch = Scratch::new("resume-state", &[("m/0001_first.sql", first.as_bytes())]);
        let cache = scratch.0.join("cache");
        resumed(&scratch.0, "m", &cache).0.unwrap();
        let before = images_in(&cache);
        std::fs::write(scratch.0.join("m/0002_second.sql"), second).unwrap();
        let (plan, replayed) = resumed(&scratch.0, "m", &cache);
        assert_eq!(replayed, 2, "{what}: a full replay");
        assert_eq!(
            plan.unwrap(),
            full(&scratch.0, "m", &Options::default(), false),
            "{what}"
        );
        assert_eq!(images_in(&cache), before, "{what}: no image stored");
        if what == "pragma" {
            assert!(before.is_empty());
        }
    }
}

#[test]
fn reading_the_connections_history_is_spotted() {
    use crate::replay::reads_connection_history as reads;
    for text in [
        "SELECT changes();",
        "SELECT CHANGES ( );",
        "SELECT total_changes/**/();",
        "SELECT \"changes\"();",
        "INSERT INTO t VALUES (last_insert_rowid());",
        "SELECT * FROM pragma_data_version;",
    ] {
        assert!(reads(text), "{text}");
    }
    for text in [
        "-- schema changes\nCREATE TABLE changes_log(x);",
        "CREATE TABLE t(x); INSERT INTO t VALUES ('changes');",
    ] {
        assert!(!reads(text), "{text}");
    }
}

#[test]
fn only_the_most_recently_used_images_are_kept() {
    let scratch = Scratch::new("resume-prune", &[]);
    let cache = scratch.0.join("cache");
    let dir = scratch.0.join("m");
    std::fs::create_dir_all(&dir).unwrap();
    let files = generated::chain(MAX_IMAGES + 3, 5);
    let mut first_image = None;
    for (i, (name, text)) in files.iter().enumerate() {
        std::fs::write(dir.join(name), text).unwrap();
        let (plan, replayed) = resumed(&scratch.0, "m", &cache);
        plan.unwrap();
        assert_eq!(replayed, 1, "each check replays only the new migration");
        if i == 0 {
            first_image = images_in(&cache).pop();
        }
        assert!(images_in(&cache).len() <= MAX_IMAGES);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(images_in(&cache).len(), MAX_IMAGES);
    assert!(!first_image.unwrap().exists(), "the oldest image is gone");
}

#[test]
fn editing_the_last_migration_resumes_from_the_ones_before() {
    let files = generated::chain(10, 3);
    let scratch = Scratch::new("resume-edit-last", &[]);
    let cache = scratch.0.join("cache");
    let dir = scratch.0.join("m");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in &files[..9] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    resumed(&scratch.0, "m", &cache).0.unwrap();
    let (name, text) = &files[9];
    for edit in [
        "",
        "\nCREATE TABLE edited_once(x);",
        "\nCREATE TABLE edited_twice(x);",
    ] {
        std::fs::write(dir.join(name), format!("{text}{edit}")).unwrap();
        let (plan, replayed) = resumed(&scratch.0, "m", &cache);
        assert_eq!(replayed, 1, "{edit:?}: only the edited migration");
        assert_eq!(
            plan.unwrap(),
            full(&scratch.0, "m", &Options::default(), false)
        );
    }
}

#[test]
fn the_head_schema_is_in_creation_order_and_the_same_on_a_hit_and_a_resume() {
    let scratch = copy_of("head-schema", "migrations");
    let cache = scratch.0.join("cache");
    let options = Options::default();
    let plan = full(&scratch.0, "m", &options, false);
    let names: Vec<String> = plan
        .head_schema
        .iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect();
    // Creation order; no autoindex (no SQL), no fts5 shadow tables, no
    // tracking table.
    assert_eq!(
        names,
        [
            "table users",
            "index users_email",
            "table sessions",
            "index sessions_user",
            "trigger sessions_touch_user",
            "table messages",
            "table messages_fts",
            "trigger messages_ai",
            "trigger messages_ad",
        ]
    );
    assert!(plan.head_schema[0].sql.contains("last_seen_at"));
    let (first, hit) = cached(&scratch.0, "m", &options, false, &cache);
    assert!(!hit);
    assert_eq!(first.head_schema, plan.head_schema);
    let (second, hit) = cached(&scratch.0, "m", &options, false, &cache);
    assert!(hit);
    assert_eq!(second.head_schema, plan.head_schema);
    // A new migration on top resumes from the image: the head schema is
    // read from the resumed database.
    std::fs::write(
        scratch.0.join("m/0004_drop.sql"),
        "DROP TRIGGER messages_ad;\nCREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let (resumed, hit) = cached(&scratch.0, "m", &options, false, &cache);
    assert!(!hit);
    assert_eq!(resumed, full(&scratch.0, "m", &options, false));
    assert_eq!(
        resumed.head_schema.last().map(|o| o.name.as_str()),
        Some("notes")
    );
    assert!(!resumed.head_schema.iter().any(|o| o.name == "messages_ad"));
}

/// A batch mark is part of the cached plan: a hit, and a check resumed from
/// a cached replay image, return it, and it reaches the runtime's
/// statements through the packed spans.
#[test]
fn batch_marks_survive_the_cache_and_reach_the_runtime() {
    let first: &[u8] = b"CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, w INTEGER);\nINSERT INTO items (v) VALUES (1), (2), (3);\n";
    let second: &[u8] = b"CREATE INDEX items_v ON items (v);\n-- durable-schema: batch\nUPDATE items SET w = v * 2 WHERE id IN (SELECT id FROM items WHERE w IS NULL LIMIT 2);\n";
    let dir = Scratch::new(
        "cache-batch",
        &[("m/0001_items.sql", first), ("m/0002_backfill.sql", second)],
    );
    let cache = Scratch::new("cache-batch-dir", &[]);
    let options = Options::default();
    let (miss, runs) = check(&dir.0, "m", &options, false, Some(&cache.0));
    let miss = miss.unwrap();
    assert_eq!(runs, 1);
    let marks = |plan: &Plan| -> Vec<Vec<bool>> {
        plan.migrations
            .iter()
            .map(|m| m.statements.iter().map(|s| s.batch).collect())
            .collect()
    };
    assert_eq!(marks(&miss), [vec![false, false], vec![false, true]]);
    let (hit, runs) = check(&dir.0, "m", &options, false, Some(&cache.0));
    assert_eq!((runs, &hit.unwrap()), (0, &miss));

    // A third migration: the first two come from the cached image.
    std::fs::write(
        dir.0.join("m/0003_more.sql"),
        "DELETE FROM items WHERE v = 1;\n",
    )
    .unwrap();
    let before = REPLAYED.with(std::cell::Cell::get);
    let (resumed, _) = check(&dir.0, "m", &options, false, Some(&cache.0));
    let resumed = resumed.unwrap();
    assert_eq!(REPLAYED.with(std::cell::Cell::get) - before, 1);
    assert_eq!(marks(&resumed)[..2], marks(&miss)[..]);
    assert_eq!(
        resumed.migrations[1].batches(),
        ["m/0002_backfill.sql:3:1 repeated until it changes no row"]
    );

    let schema = crate::runtime_schema(&resumed, "migrations").unwrap();
    let runtime: Vec<Vec<bool>> = schema
        .migrations()
        .iter()
        .map(|m| m.statements().iter().map(|s| s.is_batch()).collect())
        .collect();
    assert_eq!(
        runtime,
        [vec![false, false], vec![false, true], vec![false]]
    );
}
