//! Build-script helper: makes Cargo rebuild when a migration file is added.
//!
//! `#[durable_schema]` embeds each migration with `include_str!`, so editing a
//! file already rebuilds the crate. A *new* file is invisible to that: no
//! compiled code mentions it yet. A build script that watches the directory
//! closes the gap.
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     // Through the facade: `durable_schema::build::watch("migrations")`.
//!     durable_schema_runtime::build::watch("migrations");
//! }
//! ```

use std::io::Write;

/// Tells Cargo to rerun the build script, and so rebuild the crate, whenever
/// anything under `dir` (relative to the crate root) changes, including a
/// new migration file.
///
/// Call it from `build.rs` with the same path as the attribute's `dir`.
pub fn watch(dir: &str) {
    // Cargo scans a directory given to rerun-if-changed recursively, so added,
    // removed and edited files all count.
    let _ = write_directives(&mut std::io::stdout().lock(), &[dir]);
}

/// [`watch`] for several directories (several Durable Object classes).
pub fn watch_all(dirs: &[&str]) {
    let _ = write_directives(&mut std::io::stdout().lock(), dirs);
}

fn write_directives(out: &mut impl Write, dirs: &[&str]) -> std::io::Result<()> {
    for dir in dirs {
        writeln!(out, "cargo:rerun-if-changed={dir}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_one_directive_per_directory() {
        let mut out = Vec::new();
        write_directives(&mut out, &["migrations", "other/dir"]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cargo:rerun-if-changed=migrations\ncargo:rerun-if-changed=other/dir\n"
        );
    }
}
