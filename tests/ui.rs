//! Compile-fail cases: one per class of mistake, each with its reviewed
//! `.stderr`. Run `TRYBUILD=overwrite cargo test --test ui` after changing a
//! message, then review the diff of `tests/ui/*.stderr`.
//!
//! trybuild compiles the cases in its own crate under
//! `<target>/tests/trybuild/durable-schema/`, and that is the
//! `CARGO_MANIFEST_DIR` the attribute resolves `dir` against. So the fixtures
//! are laid out there as `ui-fixtures/<case>/` before the run: copied from
//! `tests/ui/fixtures/`, plus the ones whose bytes git should not carry (an
//! empty directory, invalid UTF-8, a 100 KB statement).

use std::fs;
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn write(path: PathBuf, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn prepare_fixtures() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let root = target.join("tests/trybuild/durable-schema/ui-fixtures");
    let _ = fs::remove_dir_all(&root);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/fixtures"),
        &root,
    );

    fs::create_dir_all(root.join("empty-directory")).unwrap();

    let utf8 = root.join("invalid-utf8");
    write(
        utf8.join("0001_ok.sql"),
        b"CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
    );
    write(
        utf8.join("0002_latin1.sql"),
        b"CREATE TABLE b (id INTEGER PRIMARY KEY);\nINSERT INTO b VALUES (1); -- caf\xe9\n",
    );

    let big = format!(
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY, data TEXT);\nINSERT INTO blobs (data) VALUES ('{}');\n",
        "x".repeat(100_000)
    );
    write(
        root.join("statement-over-100kb/0001_seed.sql"),
        big.as_bytes(),
    );

    let columns: Vec<String> = (1..=101).map(|i| format!("    c{i} TEXT")).collect();
    let wide = format!("CREATE TABLE wide (\n{}\n);\n", columns.join(",\n"));
    write(
        root.join("table-over-100-columns/0001_wide.sql"),
        wide.as_bytes(),
    );
}

#[test]
fn ui() {
    prepare_fixtures();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    // Checked queries: one case per class of mistake.
    t.compile_fail("tests/ui/query/*.rs");
}
