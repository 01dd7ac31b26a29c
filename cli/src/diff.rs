//! `durable-schema diff A [B]`: how the schema changes between two
//! versions, object by object, in the dump's order (tables, indexes,
//! views, triggers; each by name).

use std::fmt::Write;
use std::process::ExitCode;

use durable_schema_compiler::{classify_dir, schemas_at, Options, SchemaDump, SchemaObject};

use crate::{base, directory, head, human, report, term};

/// One object that differs.
#[derive(Debug, PartialEq, Eq)]
enum Change<'a> {
    Added(&'a SchemaObject),
    Removed(&'a SchemaObject),
    Changed(&'a SchemaObject, &'a SchemaObject),
}

impl Change<'_> {
    /// The object it is about, for ordering.
    fn object(&self) -> &SchemaObject {
        match self {
            Change::Added(o) | Change::Removed(o) | Change::Changed(_, o) => o,
        }
    }
}

fn rank(kind: &str) -> u8 {
    match kind {
        "table" => 0,
        "index" => 1,
        "view" => 2,
        _ => 3,
    }
}

/// The objects that differ from `from` to `to`, in dump order.
fn changes<'a>(from: &'a SchemaDump, to: &'a SchemaDump) -> Vec<Change<'a>> {
    let mut out = Vec::new();
    for old in &from.objects {
        match to.object(&old.kind, &old.name) {
            None => out.push(Change::Removed(old)),
            Some(new) if new.sql != old.sql => out.push(Change::Changed(old, new)),
            Some(_) => {}
        }
    }
    for new in &to.objects {
        if from.object(&new.kind, &new.name).is_none() {
            out.push(Change::Added(new));
        }
    }
    out.sort_by(|a, b| {
        let (a, b) = (a.object(), b.object());
        (rank(&a.kind), a.name.to_lowercase()).cmp(&(rank(&b.kind), b.name.to_lowercase()))
    });
    out
}

/// `sql;` with every line prefixed by `sign`.
fn signed(out: &mut String, sign: char, sql: &str) {
    let text = format!("{sql};");
    for line in text.lines() {
        let _ = writeln!(out, "{sign} {line}");
    }
}

/// The diff as text: a header, then each change with its SQL.
fn render(dir: &str, from: &SchemaDump, to: &SchemaDump) -> String {
    let mut out = format!(
        "--- `{dir}` at version {}\n+++ `{dir}` at version {}\n",
        from.version, to.version
    );
    let all = changes(from, to);
    if all.is_empty() {
        out.push_str("no schema changes\n");
    }
    for change in all {
        out.push('\n');
        match change {
            Change::Added(o) => {
                let _ = writeln!(out, "added {} {}", o.kind, o.name);
                signed(&mut out, '+', &o.sql);
            }
            Change::Removed(o) => {
                let _ = writeln!(out, "removed {} {}", o.kind, o.name);
                signed(&mut out, '-', &o.sql);
            }
            Change::Changed(old, new) => {
                let _ = writeln!(out, "changed {} {}", new.kind, new.name);
                signed(&mut out, '-', &old.sql);
                signed(&mut out, '+', &new.sql);
            }
        }
    }
    out
}

pub(crate) fn run(dir: &str, a: u32, b: Option<u32>, options: &Options) -> ExitCode {
    if let Err(problem) = directory(dir) {
        return report(&problem);
    }
    let b = b.unwrap_or_else(|| head(dir));
    match schemas_at(base(), dir, options, &[a, b]) {
        Ok(dumps) => match dumps.as_slice() {
            [from, to] => {
                let mut out = render(dir, from, to);
                // What the migrations between the two versions do to older
                // code (the classification's findings), when going forward.
                if let Ok(plan) = classify_dir(base(), dir, options) {
                    let between = plan
                        .migrations
                        .iter()
                        .filter(|m| m.source.version > a && m.source.version <= b);
                    let lines: Vec<String> = between
                        .flat_map(|m| m.changes.iter().map(move |c| human::change(m, c)))
                        .collect();
                    if !lines.is_empty() {
                        out.push_str("\nfindings:\n");
                        for line in lines {
                            let _ = writeln!(out, "{line}");
                        }
                    }
                }
                term::print(&out);
                ExitCode::SUCCESS
            }
            _ => ExitCode::FAILURE,
        },
        Err(errors) => report(&errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, sql: &str) -> SchemaObject {
        SchemaObject {
            kind: kind.into(),
            name: name.into(),
            table: name.into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn added_removed_and_changed_in_dump_order() {
        let from = SchemaDump {
            version: 1,
            objects: vec![
                object("table", "users", "CREATE TABLE users (id)"),
                object("index", "old", "CREATE INDEX old ON users (id)"),
            ],
        };
        let to = SchemaDump {
            version: 2,
            objects: vec![
                object("table", "posts", "CREATE TABLE posts (\n  id\n)"),
                object("table", "users", "CREATE TABLE users (id, name)"),
                object("trigger", "t", "CREATE TRIGGER t ..."),
            ],
        };
        assert_eq!(
            render("m", &from, &to),
            "--- `m` at version 1\n+++ `m` at version 2\n\
             \nadded table posts\n+ CREATE TABLE posts (\n+   id\n+ );\n\
             \nchanged table users\n- CREATE TABLE users (id);\n+ CREATE TABLE users (id, name);\n\
             \nremoved index old\n- CREATE INDEX old ON users (id);\n\
             \nadded trigger t\n+ CREATE TRIGGER t ...;\n"
        );
        assert!(render("m", &to, &to).ends_with("no schema changes\n"));
    }
}
