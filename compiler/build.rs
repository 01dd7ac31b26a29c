//! Fingerprints the compiler's source for the verdict cache's key (see
//! `src/cache.rs`): a build whose checks changed never trusts the entries
//! of another build, even at the same version (as while durable-schema
//! itself is developed). The cache's `FORMAT` still says when the entries'
//! layout changes.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let mut files = Vec::new();
    collect(Path::new("src"), &mut files);
    files.push(PathBuf::from("Cargo.toml"));
    files.sort();
    // `DefaultHasher::new` has fixed keys: the same source, the same
    // fingerprint (for one Rust release, which rebuilds the crate anyway).
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        file.to_string_lossy().hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    println!(
        "cargo:rustc-env=DURABLE_SCHEMA_COMPILER_FINGERPRINT={:016x}",
        hasher.finish()
    );
}
