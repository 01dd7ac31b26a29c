//! The CLI and the verdict cache: a cache directory another user could
//! write is not used, the check still passes, and `--verbose` says why,
//! once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stderr: String,
}

fn run(cwd: &Path, cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_durable-schema"))
        .args(args)
        .current_dir(cwd)
        .env("DURABLE_SCHEMA_CACHE", cache)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-cache-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("migrations")).unwrap();
    fs::write(
        dir.join("migrations/0001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn a_shared_cache_directory_is_skipped_and_verbose_says_why_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("shared");
    let shared = dir.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();

    let quiet = run(&dir, &shared, &["check"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("cache"), "{}", quiet.stderr);

    let verbose = run(&dir, &shared, &["check", "--verbose"]);
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    assert_eq!(
        verbose.stderr.matches("cache: not used").count(),
        1,
        "{}",
        verbose.stderr
    );
    assert!(
        verbose
            .stderr
            .contains("is writable by group or others (mode 777)"),
        "{}",
        verbose.stderr
    );
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0, "wrote into it");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn verbose_names_a_private_cache() {
    let dir = scratch("private");
    let private = dir.join("private");
    let verbose = run(&dir, &private, &["check", "-v"]);
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    assert!(
        verbose
            .stderr
            .contains(&format!("cache: {}", private.display())),
        "{}",
        verbose.stderr
    );
    assert!(fs::read_dir(&private).unwrap().any(|e| e
        .unwrap()
        .path()
        .extension()
        .is_some_and(|e| e == "plan")));
    let _ = fs::remove_dir_all(&dir);
}
