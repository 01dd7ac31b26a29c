//! `durable-schema new <name>`: the next migration file.

use std::io::Write;
use std::process::ExitCode;

use durable_schema_compiler::{migration_name, Numbering};

use crate::{base, display_join, fail, term};

/// Why `name` cannot be a migration's description, in words; `None` when
/// it can.
fn refusal(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".to_owned());
    }
    if name.ends_with(".sql") {
        return Some(format!(
            "`{name}` looks like a file name: give only the description, e.g. `add_sessions`"
        ));
    }
    let mut odd: Vec<String> = Vec::new();
    for c in name.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            let shown = match c {
                ' ' => "a space".to_owned(),
                c if c.is_control() || c.is_whitespace() => format!("{:?}", c),
                c => format!("`{c}`"),
            };
            if !odd.contains(&shown) {
                odd.push(shown);
            }
        }
    }
    (!odd.is_empty()).then(|| {
        format!(
            "`{name}` has {}: a migration's name may only have ASCII letters, digits, `_` and `-`, or the build would not load it",
            odd.join(", ")
        )
    })
}

/// The file names of `dir` that are migrations, with their numbers and
/// the width of their numeric prefix.
fn existing(dir: &str) -> std::io::Result<Vec<(u32, usize)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(base().join(dir))? {
        let Ok(name) = entry?.file_name().into_string() else {
            continue;
        };
        if let Some((number, _)) = migration_name(&name) {
            let width = name.find('_').unwrap_or(4);
            out.push((number, width));
        }
    }
    Ok(out)
}

pub(crate) fn run(name: &str, dir: &str) -> ExitCode {
    if let Some(why) = refusal(name) {
        return fail(why);
    }
    let path = base().join(dir);
    let files = match existing(dir) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Err(e) = std::fs::create_dir_all(&path) {
                return fail(format!("cannot create the directory `{dir}`: {e}"));
            }
            Vec::new()
        }
        Err(e) => return fail(format!("cannot read the directory `{dir}`: {e}")),
    };
    // The next file by the directory's own numbering: after `0000_` and
    // `0001_` (a D1 directory numbered from zero) comes `0002_`, version 3.
    let last = files.iter().map(|&(n, _)| n).max().unwrap_or(0);
    let width = files.iter().map(|&(_, w)| w).max().unwrap_or(4);
    let numbering = Numbering::of_dir(base(), dir);
    let next = last.checked_add(1);
    let Some((number, version)) = next.and_then(|n| Some((n, numbering.version(n)?))) else {
        return fail(format!("`{dir}` has no version left after {last}"));
    };
    let file = format!("{number:0width$}_{name}.sql");
    // The loader's own rule is the judge: what `new` writes, the build loads.
    if migration_name(&file) != Some((number, name)) {
        return fail(format!(
            "`{file}` would not load as a migration: name it `NNNN_description.sql`"
        ));
    }
    let shown = display_join(dir, &file);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path.join(&file));
    let mut out = match created {
        Ok(out) => out,
        Err(e) => return fail(format!("cannot create `{shown}`: {e}")),
    };
    let template = format!(
        "-- {file}: migration {version}.\n\
         -- Its statements run in order, in one transaction with its tracking row.\n\
         -- The build refuses a migration without statements: write them below.\n\n"
    );
    if let Err(e) = out.write_all(template.as_bytes()) {
        return fail(format!("cannot write `{shown}`: {e}"));
    }
    term::print(&format!("{shown}\n"));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_not_load_are_refused_with_the_reason() {
        assert_eq!(refusal("add_sessions"), None);
        assert_eq!(refusal("Add-Index-2"), None);
        let why = refusal("add sessions").unwrap();
        assert!(why.contains("has a space"), "{why}");
        let why = refusal("caf\u{e9}.x").unwrap();
        assert!(why.contains("`\u{e9}`, `.`"), "{why}");
        assert!(refusal("0004_x.sql").unwrap().contains("file name"));
        assert!(refusal("").is_some());
        assert!(refusal("tab\there").unwrap().contains("'\\t'"));
    }
}
