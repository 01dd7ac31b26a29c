//! Adding a migration file must rebuild the crate that embeds the schema.
//!
//! An edit already does (each file is an `include_str!` input), but a new
//! file is invisible to rustc. `durable_schema::build::watch` in `build.rs`
//! makes Cargo rerun the build script, and so rebuild the crate, when the
//! directory changes. This test builds a scratch crate the way a user would,
//! adds `0003_x.sql`, rebuilds, and sees `CURRENT_SCHEMA_VERSION` change; then
//! edits a file and sees its checksum change.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The workspace's target directory, shared with the scratch crate: the
/// compiler, macro and their dependencies are already built there with the
/// same lockfile.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds and runs the scratch crate, returning what it printed.
fn run(krate: &Path) -> String {
    // Offline first (everything is usually cached by the workspace build);
    // on a fresh machine, adding the scratch package to the copied lockfile
    // may need registry index entries of other platforms' dependencies.
    let out = cargo_run(krate, true);
    let out = if out.status.success() {
        out
    } else {
        cargo_run(krate, false)
    };
    assert!(
        out.status.success(),
        "scratch crate failed to build or run:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn cargo_run(krate: &Path, offline: bool) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--quiet"]);
    if offline {
        cmd.arg("--offline");
    }
    cmd.current_dir(krate)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap()
}

#[test]
fn adding_a_migration_rebuilds_and_bumps_the_version() {
    let krate = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rebuild-scratch");
    let _ = fs::remove_dir_all(&krate);
    let facade = root().display().to_string().replace('\\', "/");
    write(
        &krate.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"rebuild-scratch\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [workspace]\n\n\
             [dependencies]\ndurable-schema = {{ path = \"{facade}\" }}\n\n\
             [build-dependencies]\ndurable-schema = {{ path = \"{facade}\" }}\n"
        ),
    );
    // Same dependency versions as the workspace, so nothing is fetched.
    fs::copy(root().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    write(
        &krate.join("build.rs"),
        "fn main() {\n    durable_schema::build::watch(\"migrations\");\n}\n",
    );
    write(
        &krate.join("src/main.rs"),
        "#[durable_schema::durable_schema(dir = \"migrations\")]\nstruct Db;\n\n\
         fn main() {\n    println!(\"{} {}\", Db::CURRENT_SCHEMA_VERSION, Db::SCHEMA.migrations()[0].checksum());\n}\n",
    );
    let migrations = krate.join("migrations");
    write(
        &migrations.join("0001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    );
    write(
        &migrations.join("0002_posts.sql"),
        "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
    );

    let first = run(&krate);
    let (version, checksum) = first.split_once(' ').unwrap();
    assert_eq!(version, "2");

    // The watch is in force: a build script that prints no rerun-if
    // directive reruns on any change in the package, which would make the
    // next check pass by accident. With the directive, an unrelated file
    // does not rebuild anything.
    let binary = target_dir()
        .join("debug")
        .join(format!("rebuild-scratch{}", std::env::consts::EXE_SUFFIX));
    let built = fs::metadata(&binary).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(&krate.join("NOTES.txt"), "not a migration\n");
    assert_eq!(run(&krate), first);
    assert_eq!(
        fs::metadata(&binary).unwrap().modified().unwrap(),
        built,
        "an unrelated file rebuilt the crate: the build script's watch is not in force"
    );

    // A new file: only the build script's watch can notice it. (Wait a
    // moment first: within one mtime tick Cargo may rebuild for no reason,
    // which would hide a missing watch.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(
        &migrations.join("0003_x.sql"),
        "ALTER TABLE posts ADD COLUMN title TEXT;\n",
    );
    let second = run(&krate);
    assert_eq!(second, format!("3 {checksum}"));

    // An edit: the include_str! input changed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(
        &migrations.join("0001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n",
    );
    let third = run(&krate);
    let (version, edited) = third.split_once(' ').unwrap();
    assert_eq!(version, "3");
    assert_ne!(edited, checksum);
    assert_eq!(
        edited,
        durable_schema_compiler::checksum(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n"
        )
    );
}
