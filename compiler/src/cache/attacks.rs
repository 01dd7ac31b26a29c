//! The verdict cache against another local user: a place they can write is
//! never used, and nothing they write without this user's secret is ever
//! embedded (each attack of issue 17, reproduced).

use std::path::{Path, PathBuf};

use super::*;
use crate::replay::{REPLAYED, RUNS};
use crate::source::load_dir;
use crate::tests::Scratch;
use crate::{check_dir_with, Diagnostic, Plan};

/// The check through the cache directory `cache` (opened with every check
/// a build makes): the result, and the number of replays it ran.
fn check(base: &Path, dir: &str, cache: &Path) -> (Result<Plan, Vec<Diagnostic>>, usize) {
    let before = RUNS.with(std::cell::Cell::get);
    let choice = Cache::open(cache);
    let result = check_dir_with(base, dir, &Options::default(), choice.cache());
    (result, RUNS.with(std::cell::Cell::get) - before)
}

/// Why `dir` is not used as a cache, which it must not be.
fn refused(dir: &Path) -> String {
    match Cache::open(dir) {
        Choice::Unusable { why, .. } => why,
        other => panic!("{} is used: {other:?}", dir.display()),
    }
}

fn usable(dir: &Path) -> Cache {
    match Cache::open(dir) {
        Choice::Use(cache) => cache,
        other => panic!("{}: {other:?}", dir.display()),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every name in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const GOOD: &[(&str, &[u8])] = &[
    (
        "0001_users.sql",
        b"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nINSERT INTO users (name) VALUES ('seed');\n",
    ),
    (
        "0002_email.sql",
        b"ALTER TABLE users ADD COLUMN email TEXT;\n",
    ),
];

#[test]
fn the_default_cache_is_the_users_own_not_the_temp_dir() {
    let Some(dir) = default_dir() else {
        // No home directory: no default cache at all, which is safe.
        return;
    };
    assert!(
        dir.ends_with("durable-schema/verdicts"),
        "{}",
        dir.display()
    );
    assert_ne!(dir, std::env::temp_dir().join("durable-schema-cache"));
    let home = dirs::home_dir().expect("a cache directory comes from a home");
    if !home.starts_with(std::env::temp_dir()) {
        assert!(
            !dir.starts_with(std::env::temp_dir()),
            "{} is in the shared temp directory",
            dir.display()
        );
    }
}

#[cfg(unix)]
#[test]
fn a_new_cache_is_private_to_its_user() {
    let scratch = Scratch::new("attack-private", GOOD);
    let cache = scratch.0.join("new/cache");
    let (plan, runs) = check(&scratch.0, ".", &cache);
    plan.unwrap();
    assert_eq!(runs, 1);
    assert_eq!(mode(&cache), 0o700);
    let files = names(&cache);
    assert!(files.iter().any(|f| f.ends_with(".plan")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".image")), "{files:?}");
    assert!(files.iter().any(|f| f == "secret"), "{files:?}");
    for file in &files {
        assert_eq!(mode(&cache.join(file)), 0o600, "{file}");
    }
    assert_eq!(std::fs::read(cache.join("secret")).unwrap().len(), 32);
    // And a hit from it.
    assert_eq!(check(&scratch.0, ".", &cache).1, 0);
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_is_not_used_and_gets_nothing() {
    let scratch = Scratch::new("attack-shared", GOOD);
    for (name, bits) in [("world", 0o777), ("group", 0o770), ("others", 0o703)] {
        // Created first by "another user" with a permissive mode.
        let cache = scratch.0.join(name);
        std::fs::create_dir(&cache).unwrap();
        chmod(&cache, bits);
        let why = refused(&cache);
        assert!(why.contains("writable by group or others"), "{why}");
        for _ in 0..2 {
            let (plan, runs) = check(&scratch.0, ".", &cache);
            plan.unwrap();
            assert_eq!(runs, 1, "{name}: a hit from a shared directory");
        }
        assert!(
            names(&cache).is_empty(),
            "{name}: wrote {:?}",
            names(&cache)
        );
    }
}

#[cfg(unix)]
#[test]
fn a_directory_below_one_others_can_write_is_not_used() {
    let scratch = Scratch::new("attack-parent", GOOD);
    let open = scratch.0.join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let why = refused(&open.join("cache"));
    assert!(why.contains("can be changed by another user"), "{why}");
    // With the sticky bit (like /tmp), nobody else can move it away.
    chmod(&open, 0o1777);
    usable(&open.join("cache"));
}

#[cfg(unix)]
#[test]
fn a_directory_of_another_user_is_not_used() {
    let scratch = Scratch::new("attack-owner", GOOD);
    // As root, give a directory away; otherwise a root-owned directory is
    // another user's.
    // SAFETY: no preconditions.
    let dir = if unsafe { libc::geteuid() } == 0 {
        let theirs = scratch.0.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chmod(&theirs, 0o700);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        theirs
    } else {
        PathBuf::from("/")
    };
    let why = refused(&dir);
    assert!(why.contains("is owned by uid"), "{why}");
    let (plan, runs) = check(&scratch.0, ".", &dir);
    plan.unwrap();
    assert_eq!(runs, 1);
}

#[cfg(unix)]
#[test]
fn a_symlinked_cache_is_not_used_and_its_target_is_not_pruned() {
    let scratch = Scratch::new("attack-symlink", &[]);
    let target = scratch.0.join("target");
    std::fs::create_dir(&target).unwrap();
    let planted: Vec<String> = (0..MAX_IMAGES + 4).map(|i| format!("{i}.image")).collect();
    for name in &planted {
        std::fs::write(target.join(name), b"not ours").unwrap();
    }
    let link = scratch.0.join("cache");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let why = refused(&link);
    assert!(why.contains("symbolic link"), "{why}");
    // Checks that would store images (and prune) through it.
    let dir = scratch.0.join("m");
    std::fs::create_dir(&dir).unwrap();
    for (name, text) in GOOD {
        std::fs::write(dir.join(name), text).unwrap();
        let (plan, runs) = check(&scratch.0, "m", &link);
        plan.unwrap();
        assert_eq!(runs, 1);
    }
    let mut expected = planted.clone();
    expected.sort();
    assert_eq!(names(&target), expected);
}

#[cfg(unix)]
#[test]
fn a_secret_that_is_not_private_is_not_used() {
    let scratch = Scratch::new("attack-secret", GOOD);
    let cache = scratch.0.join("cache");
    usable(&cache);
    let secret = cache.join("secret");
    chmod(&secret, 0o644);
    assert!(refused(&cache).contains("not private"));
    chmod(&secret, 0o600);
    usable(&cache);
    // A link to a secret someone else chose.
    let chosen = scratch.0.join("chosen");
    std::fs::write(&chosen, [7u8; 32]).unwrap();
    chmod(&chosen, 0o600);
    std::fs::remove_file(&secret).unwrap();
    std::os::unix::fs::symlink(&chosen, &secret).unwrap();
    refused(&cache);
    std::fs::remove_file(&secret).unwrap();
    std::fs::write(&secret, [7u8; 31]).unwrap();
    chmod(&secret, 0o600);
    assert!(refused(&cache).contains("not 32 bytes"));
}

/// The entry `check` stored for the directory `dir` under `base`.
fn entry_of(base: &Path, dir: &str, cache: &Path) -> (String, PathBuf) {
    let files = load_dir(base, dir).files;
    let key = key(base, dir, &Options::default(), &files);
    let path = cache.join(entry_name(&key));
    (key, path)
}

/// `payload` under an entry header for `key` whose last word is the
/// integrity hash of the previous format: SHA-256, which anyone can compute.
fn hashed(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "{} {}\n",
        header_words(key),
        crate::hash::hex(&Sha256::digest(payload))
    )
    .into_bytes();
    bytes.extend_from_slice(payload);
    bytes
}

/// `payload` under an entry header for `key`, tagged with the secret of
/// the attacker's own cache `theirs`.
fn tagged_by(theirs: &Path, key: &str, payload: &[u8]) -> Vec<u8> {
    let words = header_words(key);
    let tag = usable(theirs).tag(&[words.as_bytes(), payload]).unwrap();
    let mut bytes = format!("{words} {tag}\n").into_bytes();
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn a_rewritten_baseline_is_never_embedded() {
    let scratch = Scratch::new("attack-baseline", GOOD);
    let cache = scratch.0.join("cache");
    let theirs = scratch.0.join("theirs");
    let expected = check(&scratch.0, ".", &cache).0.unwrap();
    let (key, entry) = entry_of(&scratch.0, ".", &cache);
    let bytes = std::fs::read(&entry).unwrap();
    let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
    let mut payload: Payload = serde_json::from_slice(&bytes[newline + 1..]).unwrap();
    let Some(CachedBaseline::Built(sql, spans)) = &mut payload.baseline else {
        panic!("no baseline: {:?}", payload.baseline);
    };
    let evil = "INSERT INTO users (name) VALUES ('admin');\nCREATE TRIGGER steal AFTER INSERT ON users BEGIN DELETE FROM users; END;\n";
    let at = sql.len();
    sql.push_str(evil);
    spans.push((at, at + evil.len(), 99, 1, false, None));
    let evil_payload = serde_json::to_vec(&payload).unwrap();
    for (how, planted) in [
        ("hashed", hashed(&key, &evil_payload)),
        (
            "tagged by another user",
            tagged_by(&theirs, &key, &evil_payload),
        ),
    ] {
        std::fs::write(&entry, planted).unwrap();
        let (plan, runs) = check(&scratch.0, ".", &cache);
        let plan = plan.unwrap();
        assert_eq!(runs, 1, "{how}: the planted entry was a hit");
        assert_eq!(plan, expected, "{how}");
        let baseline = plan.baseline.unwrap();
        assert!(!baseline.sql.contains("admin"), "{how}: {}", baseline.sql);
    }
}

#[test]
fn an_entry_planted_for_a_public_directory_does_not_pass_a_broken_chain() {
    // A duplicate column: the replay refuses it.
    let broken: &[(&str, &[u8])] = &[
        GOOD[0],
        (
            "0002_twice.sql",
            b"ALTER TABLE users ADD COLUMN name TEXT;\n",
        ),
    ];
    let scratch = Scratch::new("attack-planted", broken);
    let cache = scratch.0.join("cache");
    let theirs = scratch.0.join("theirs");
    usable(&cache);
    // The key needs only public inputs; the payload claims success.
    let files = load_dir(&scratch.0, ".").files;
    let key = key(&scratch.0, ".", &Options::default(), &files);
    let payload = Payload {
        migrations: files
            .iter()
            .map(|f| CachedMigration {
                name: f.source.name.clone(),
                statements: f.statements().iter().map(span).collect(),
                foreign_key_checks: Vec::new(),
                unreproducible: None,
                changes: Vec::new(),
                cost_hints: Vec::new(),
                clock: None,
            })
            .collect(),
        clock: None,
        baseline: Some(CachedBaseline::Off),
        head_schema: Some(Vec::new()),
    };
    let payload = serde_json::to_vec(&payload).unwrap();
    for (how, planted) in [
        ("hashed", hashed(&key, &payload)),
        ("tagged by another user", tagged_by(&theirs, &key, &payload)),
    ] {
        std::fs::write(cache.join(entry_name(&key)), planted).unwrap();
        let (result, runs) = check(&scratch.0, ".", &cache);
        assert_eq!(runs, 1, "{how}");
        let errors = result.expect_err(how);
        assert!(
            errors[0]
                .to_string()
                .contains("duplicate column name: name"),
            "{how}: {errors:?}"
        );
    }
}

#[test]
fn a_replay_image_rewritten_by_another_user_is_not_resumed_from() {
    let scratch = Scratch::new("attack-image", GOOD);
    let cache = scratch.0.join("cache");
    let theirs = scratch.0.join("theirs");
    check(&scratch.0, ".", &cache).0.unwrap();
    let image_file = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "image"))
        .unwrap();
    let bytes = std::fs::read(&image_file).unwrap();
    let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
    let head = std::str::from_utf8(&bytes[..newline]).unwrap();
    let fields: Vec<&str> = head.split(' ').collect();
    let length: usize = fields[5].parse().unwrap();
    let (payload, image) = bytes[newline + 1..].split_at(length);
    // The attacker adds a table and a trigger to the replay database.
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.deserialize_read_exact(rusqlite::MAIN_DB, image, image.len(), false)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE planted (secret TEXT);\nCREATE TRIGGER planted_t AFTER INSERT ON users BEGIN INSERT INTO planted VALUES (new.name); END;",
    )
    .unwrap();
    let evil = conn.serialize(rusqlite::MAIN_DB).unwrap().to_vec();
    let words = image_words(fields[3]);
    let tag = usable(&theirs)
        .tag(&[words.as_bytes(), payload, &evil])
        .unwrap();
    let mut planted = format!("{words} {tag} {length}\n").into_bytes();
    planted.extend_from_slice(payload);
    planted.extend_from_slice(&evil);
    std::fs::write(&image_file, planted).unwrap();
    for f in std::fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "plan") {
            std::fs::remove_file(f).unwrap();
        }
    }
    // A new migration that reads the planted table must fail.
    std::fs::write(
        scratch.0.join("0003_read.sql"),
        "INSERT INTO users (name) SELECT secret FROM planted;\n",
    )
    .unwrap();
    let before = REPLAYED.with(std::cell::Cell::get);
    let (result, _) = check(&scratch.0, ".", &cache);
    assert_eq!(
        REPLAYED.with(std::cell::Cell::get) - before,
        3,
        "resumed from the planted image"
    );
    let errors = result.unwrap_err();
    assert!(
        errors[0].to_string().contains("no such table: planted"),
        "{errors:?}"
    );
}
