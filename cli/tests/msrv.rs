//! The declared `rust-version` (the workspace's, 1.85) holds for what users
//! build: every package `cargo install --locked --path cli` compiles, and
//! every package of a native build of the facade (`default-features = false,
//! features = ["rusqlite", "testing"]`), read from Cargo.lock, declares a
//! `rust-version` no higher. Only one toolchain is installable on the
//! project's machines, so this is the check that an older rustc cannot run:
//! `.cargo/config.toml`'s `incompatible-rust-versions = "fallback"` keeps
//! `cargo update` and `cargo install --path cli` from picking newer releases,
//! and this test catches a lock that has one anyway. The Durable
//! Object backend (feature `worker`, on by default) needs what the `worker`
//! crate needs; that figure is checked against the README too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cargo(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `1.85`, `1.85.0` → (1, 85, 0).
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap());
    let major = parts.next().unwrap();
    (major, parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Every `(name, version, rust-version)` of the lock.
fn locked_packages() -> Vec<(String, String, Option<String>)> {
    let json = cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--all-features",
    ]);
    let meta: serde_json::Value = serde_json::from_str(&json).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
                p["rust_version"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The `name vX.Y.Z` packages a build of `package` with `features` compiles
/// on the host (`cargo tree`'s default platform): normal and build
/// dependencies, not dev-dependencies.
fn build_graph(package: &str, features: &[&str]) -> BTreeSet<(String, String)> {
    let mut args = vec![
        "tree",
        "--locked",
        "-p",
        package,
        "-e",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ];
    args.extend_from_slice(features);
    cargo(&args)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect()
}

fn workspace_rust_version() -> String {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the workspace declares rust-version")
        .to_owned()
}

/// The packages of `graph` whose declared rust-version is above `limit`.
fn above(
    graph: &BTreeSet<(String, String)>,
    locked: &[(String, String, Option<String>)],
    limit: &str,
) -> Vec<String> {
    locked
        .iter()
        .filter(|(name, v, _)| graph.contains(&(name.clone(), v.clone())))
        .filter_map(|(name, v, rv)| {
            let rv = rv.as_deref()?;
            (version(rv) > version(limit)).then(|| format!("{name} {v} (rust-version {rv})"))
        })
        .collect()
}

#[test]
fn version_pads_missing_parts() {
    assert_eq!(version("1.85"), version("1.85.0"));
    assert!(version("1.86") > version("1.85.0"));
    assert!(version("1.9") < version("1.85"));
}

#[test]
fn the_cli_and_a_native_facade_build_with_the_declared_rust_version() {
    let ours = workspace_rust_version();
    assert_eq!(ours, "1.85", "the README and this test's docs say 1.85");
    let locked = locked_packages();
    let cli = build_graph("durable-schema-cli", &[]);
    assert!(cli.iter().any(|(n, _)| n == "clap"), "{cli:?}");
    let native = build_graph(
        "durable-schema",
        &["--no-default-features", "--features", "rusqlite,testing"],
    );
    assert!(native.iter().any(|(n, _)| n == "rusqlite"), "{native:?}");
    assert!(!native.iter().any(|(n, _)| n == "worker"), "{native:?}");
    assert_eq!(above(&cli, &locked, &ours), Vec::<String>::new());
    assert_eq!(above(&native, &locked, &ours), Vec::<String>::new());
}

#[test]
fn the_worker_backend_needs_what_worker_needs_as_the_readme_says() {
    let locked = locked_packages();
    let graph = build_graph("durable-schema", &[]);
    let worker = locked
        .iter()
        .find(|(name, v, _)| name == "worker" && graph.contains(&(name.clone(), v.clone())))
        .expect("the default build has the worker backend");
    let needs = worker.2.as_deref().expect("worker declares rust-version");
    // Nothing in the default graph needs more than `worker` itself.
    assert_eq!(above(&graph, &locked, needs), Vec::<String>::new());
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let claim = format!("worker {} needs Rust {}", worker.1, version_text(needs));
    assert!(
        readme.contains(&claim),
        "README.md should say `{claim}` (the default feature's minimum Rust)"
    );
}

/// `1.91.0` → `1.91`, as the README writes it.
fn version_text(rv: &str) -> String {
    let (major, minor, patch) = version(rv);
    if patch == 0 {
        format!("{major}.{minor}")
    } else {
        format!("{major}.{minor}.{patch}")
    }
}
