//! The history lock: `durable-schema.lock` in the migrations directory,
//! written by `durable-schema lock` when migrations are released, and
//! verified by every check (the macro's and the CLI's), so a released
//! migration cannot be edited, renamed or removed unnoticed.
//!
//! The file is text: `#` comment lines, then one line per locked migration,
//!
//! ```text
//! 0001 0001_create_users.sql 3f2a…(64 hex digits)
//! 0002 0002_add_sessions.sql 9c41… replaces 77d0…,01be…
//! ```
//!
//! `version file-name checksum`, the checksum being [`crate::checksum`] of
//! the normalized text (so a CRLF or BOM checkout is not an edit). A line
//! may end with `replaces <old-checksum>[,<old-checksum>…]`: a deliberate
//! replacement of a released migration, whose old checksums databases may
//! have applied; `durable-schema lock --replace VERSION` writes it
//! ([`replace`], after the full check). The lock does not end in `.sql`, so the loader never takes
//! it for a migration.
//!
//! In a directory numbered from `0000_` (wrangler's D1 numbering, see
//! [`Numbering::FromZero`]) the version is the file's number + 1, so the
//! first line is `0001 0000_initial.sql …`, and the lock says so in a header
//! line.
//!
//! In a drizzle-kit directory (one with `meta/_journal.json`, see
//! [`crate::journal`]) the line format is the same, with the loader's
//! versions and names there: the version is the journal entry's `idx` + 1
//! and the file is named as drizzle-kit wrote it, its `tag` plus `.sql`, so
//! the first migration's line is `0001 0000_create_messages.sql …`. A name
//! with an index prefix (`0000_`, not a timestamp) must then be numbered
//! one below its version; any other `.sql` file name is taken as written.

use std::collections::BTreeMap;
use std::path::Path;

use crate::journal;
use crate::source::{
    display_join, parse_migration_name, read_regular, LoadedFile, Numbering, Unreadable,
};
use crate::{checksum, Diagnostic};

/// The lock's file name, in the migrations directory.
pub const LOCK_FILE: &str = "durable-schema.lock";

/// The rule name of every lock diagnostic (see [`Diagnostic::rule`]).
pub(crate) const RULE: &str = "lock";

/// The lines `durable-schema lock` writes before the entries.
const HEADER: &str = "\
# durable-schema.lock: the released migrations of this directory.
# Written by `durable-schema lock`; every build checks the files against it.
# A locked migration may not be edited, renamed or removed: add a new one.
# version  file  checksum (SHA-256 of the normalized text)  [replaces old-checksum,...]
";

/// One locked migration: a line of the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// The version.
    pub version: u32,
    /// The file name, `0003_add_sessions.sql`.
    pub name: String,
    /// Hex SHA-256 of the normalized text, as [`crate::checksum`] computes it.
    pub checksum: String,
    /// Checksums this version had before a deliberate replacement (the
    /// line's `replaces a,b`), in the order written; empty for most.
    pub replaces: Vec<String>,
    /// The 1-based line of the entry in the lock file (0 for an entry not
    /// read from a file).
    pub line: u32,
}

/// The history lock of a migrations directory, as read and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// `migrations/durable-schema.lock`, as the user wrote `dir`.
    pub display_path: String,
    /// The absolute path, for `include_str!` (never shown to users).
    pub abs_path: String,
    /// The entries, by version.
    pub entries: Vec<LockEntry>,
}

impl Lock {
    /// The entry of `version`, if it is locked.
    pub fn entry(&self, version: u32) -> Option<&LockEntry> {
        self.entries.iter().find(|e| e.version == version)
    }
}

/// The line a drizzle-kit directory's lock adds to [`HEADER`].
const DRIZZLE_HEADER: &str = "\
# drizzle-kit directory: the version is the journal's idx + 1, the file is its tag + .sql.
";

/// The line the lock of a directory numbered from `0000_` adds to [`HEADER`].
const FROM_ZERO_HEADER: &str = "\
# numbered from 0000_ (wrangler's D1 numbering): the version is the file's number + 1.
";

/// The text of a lock with `entries`, as `durable-schema lock` writes it,
/// for a directory numbered from `0001_`.
pub fn render_lock(entries: &[LockEntry]) -> String {
    render_lock_for(Numbering::FromOne, entries)
}

/// The text of the lock of a drizzle-kit directory with `entries` (versions
/// `idx` + 1, drizzle-kit's file names): [`render_lock_for`] with
/// [`Numbering::Drizzle`].
pub fn render_drizzle_lock(entries: &[LockEntry]) -> String {
    render_lock_for(Numbering::Drizzle, entries)
}

/// The text of the lock of a directory numbered by `numbering` with
/// `entries`, as `durable-schema lock` writes it: the common header, and where the
/// version is not the file's number, a line that says how they relate.
pub fn render_lock_for(numbering: Numbering, entries: &[LockEntry]) -> String {
    let extra = match numbering {
        Numbering::FromOne => "",
        Numbering::FromZero => FROM_ZERO_HEADER,
        Numbering::Drizzle => DRIZZLE_HEADER,
    };
    render(format!("{HEADER}{extra}"), entries)
}

fn render(mut out: String, entries: &[LockEntry]) -> String {
    for e in entries {
        out.push_str(&format!("{:04} {} {}", e.version, e.name, e.checksum));
        if !e.replaces.is_empty() {
            out.push_str(" replaces ");
            out.push_str(&e.replaces.join(","));
        }
        out.push('\n');
    }
    out
}

/// Reads the lock of `dir` (resolved against `base`): `Ok(None)` when there
/// is none, every problem with its lines otherwise.
pub(crate) fn read(base: &Path, dir: &str) -> Result<Option<Lock>, Vec<Diagnostic>> {
    let dir_path = base.join(dir);
    // A `dir` that is not a directory is the loader's one error, not a
    // second one about a lock inside it.
    if !dir_path.is_dir() {
        return Ok(None);
    }
    let path = dir_path.join(LOCK_FILE);
    let display_path = display_join(dir, LOCK_FILE);
    let bytes = match read_regular(&path) {
        Ok(bytes) => bytes,
        Err(Unreadable::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(vec![e.diagnostic(&display_path, "the lock").rule(RULE)]),
    };
    let text = crate::source::decode(&display_path, &bytes).map_err(|d| vec![(*d).rule(RULE)])?;
    // The loader's numbering, so both agree.
    let numbering = Numbering::of_dir(base, dir);
    let entries = parse(&display_path, &text, numbering).map_err(|errors| {
        renumbered(base, dir, &display_path, &text, numbering).unwrap_or(errors)
    })?;
    let abs_path = std::fs::canonicalize(&path)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    Ok(Some(Lock {
        display_path,
        abs_path,
        entries,
    }))
}

/// The one error of a lock written for the other plain numbering (every
/// line fits it), instead of an error per line: a `0000_` file was added to
/// a directory locked from `0001_`, which would shift every released
/// version, or the released `0000_` file is gone. `None` when the lock has
/// other problems.
fn renumbered(
    base: &Path,
    dir: &str,
    display_path: &str,
    text: &str,
    numbering: Numbering,
) -> Option<Vec<Diagnostic>> {
    let other = match numbering {
        Numbering::FromOne => Numbering::FromZero,
        Numbering::FromZero => Numbering::FromOne,
        Numbering::Drizzle => return None,
    };
    let entries = parse(display_path, text, other).ok()?;
    let diagnostic = if numbering == Numbering::FromZero {
        let mut zero: Vec<String> = std::fs::read_dir(base.join(dir))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| matches!(parse_migration_name(name), Ok((0, _))))
            .collect();
        zero.sort();
        let zero = zero.first().map_or("0000_", String::as_str);
        Diagnostic::file(
            &display_join(dir, zero),
            format!("`{zero}` numbers `{dir}` from 0, but `{display_path}` numbers its released migrations from `0001_`"),
        )
        .help("a `0000_` file would shift every released version: give it the number after the last file")
    } else {
        let first = entries.first().map_or("", |e| e.name.as_str());
        Diagnostic::plain(format!(
            "`{display_path}` numbers its released migrations from `0000_`, but `{dir}` has no `0000_` file"
        ))
        .help(format!(
            "released migrations are immutable: restore `{first}`"
        ))
    };
    Some(vec![diagnostic.rule(RULE)])
}

/// `true` for 64 lowercase hex digits, the form [`crate::checksum`] writes.
fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 1-based character column of `token`, a slice of `line`.
fn column_of(line: &str, token: &str) -> u32 {
    let offset = (token.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
    let chars = line.get(..offset).map_or(0, |head| head.chars().count());
    u32::try_from(chars + 1).unwrap_or(u32::MAX)
}

/// The version a lock line of `name` must have under `numbering`:
/// `Ok(Some)` when the name decides it, `Ok(None)` when any version from 1
/// is fine (a drizzle-kit name without an index prefix), `Err` when `name`
/// cannot be a migration's there.
fn version_of(name: &str, numbering: Numbering) -> Result<Option<u32>, ()> {
    match numbering {
        Numbering::FromOne | Numbering::FromZero => parse_migration_name(name)
            .ok()
            .and_then(|(number, _)| numbering.version(number))
            .map(Some)
            .ok_or(()),
        Numbering::Drizzle => {
            let stem = name.strip_suffix(".sql").ok_or(())?;
            if !journal::is_file_stem(stem) {
                return Err(());
            }
            Ok(journal::index_prefix(stem)
                .and_then(|index| u32::try_from(index.checked_add(1)?).ok()))
        }
    }
}

/// Parses the lock's normalized text, whose directory names its files by
/// `naming`; `display_path` names it in messages.
pub(crate) fn parse(
    display_path: &str,
    text: &str,
    numbering: Numbering,
) -> Result<Vec<LockEntry>, Vec<Diagnostic>> {
    let mut entries: Vec<LockEntry> = Vec::new();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = |token: &str, message: String| {
            Diagnostic::at(display_path, line_no, column_of(raw, token), message).rule(RULE)
        };
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let (version, name, sum, replaces) = match fields.as_slice() {
            [v, n, c] => (*v, *n, *c, None),
            [v, n, c, "replaces", list] => (*v, *n, *c, Some(*list)),
            _ => {
                errors.push(
                    at(
                        trimmed,
                        "lock line is not `version file checksum [replaces old,...]`".to_owned(),
                    )
                    .help("write `NNNN NNNN_description.sql <sha-256>`, as `durable-schema lock` does"),
                );
                continue;
            }
        };
        let Ok(named_version) = version_of(name, numbering) else {
            errors.push(
                at(
                    name,
                    format!("`{name}` in the lock is not a migration file name"),
                )
                .help(match numbering {
                    Numbering::FromOne | Numbering::FromZero => {
                        "lock lines name files `NNNN_description.sql`, as in the directory"
                    }
                    Numbering::Drizzle => {
                        "lock lines name files `<tag>.sql`, as the drizzle journal does"
                    }
                }),
            );
            continue;
        };
        let written = version.parse::<u32>().ok().filter(|&v| v > 0);
        let file_version = match (written, named_version) {
            (Some(v), Some(named)) if v == named => v,
            (Some(v), None) => v,
            (_, Some(named)) => {
                errors.push(
                    at(
                        version,
                        format!("lock line of `{name}` has version `{version}`, not {named}"),
                    )
                    .help(match numbering {
                        Numbering::FromOne => "the first field is the version in the file name",
                        Numbering::FromZero => {
                            "in a directory numbered from `0000_` the version is one more than the file's number"
                        }
                        Numbering::Drizzle => {
                            "in a drizzle-kit directory the version is the journal's `idx` + 1, one more than the file's number"
                        }
                    }),
                );
                continue;
            }
            (None, None) => {
                errors.push(
                    at(
                        version,
                        format!(
                            "lock line of `{name}` has version `{version}`, not a number from 1"
                        ),
                    )
                    .help("in a drizzle-kit directory the version is the journal's `idx` + 1"),
                );
                continue;
            }
        };
        let mut bad_sum = |token: &str| {
            errors.push(
                at(
                    token,
                    format!("`{token}` is not a checksum (64 lowercase hex digits)"),
                )
                .help("checksums are SHA-256 of the normalized text, as `durable-schema lock` writes them"),
            );
        };
        if !is_checksum(sum) {
            bad_sum(sum);
            continue;
        }
        let mut old = Vec::new();
        if let Some(list) = replaces {
            let tokens: Vec<&str> = list.split(',').collect();
            let bad: Vec<&str> = tokens.iter().copied().filter(|t| !is_checksum(t)).collect();
            if let Some(first) = bad.first() {
                // Point at the list when a token is empty (`a,,b`).
                bad_sum(if first.is_empty() { list } else { first });
                continue;
            }
            if tokens.contains(&sum) {
                errors.push(
                    at(
                        list,
                        format!("lock line of `{name}` replaces its own checksum"),
                    )
                    .help("list after `replaces` only the checksums the file had before"),
                );
                continue;
            }
            old = tokens.into_iter().map(str::to_owned).collect();
        }
        if let Some(first) = seen.insert(file_version, line_no) {
            errors.push(
                at(
                    version,
                    format!(
                        "version {file_version} is locked twice, on lines {first} and {line_no}"
                    ),
                )
                .help("keep one line per version"),
            );
            continue;
        }
        entries.push(LockEntry {
            version: file_version,
            name: name.to_owned(),
            checksum: sum.to_owned(),
            replaces: old,
            line: line_no,
        });
    }
    if errors.is_empty() {
        entries.sort_by_key(|e| e.version);
        Ok(entries)
    } else {
        Err(errors)
    }
}

/// Records in `lock` (of `dir`, whose loaded files are `files`) the
/// deliberate replacement of the released migration of `version`, for
/// `durable-schema lock --replace`: its line takes the file's checksum and
/// the old one ends its `replaces` list (earlier ones are kept). Refused
/// when there is no lock, when `version` has no line, or when the file
/// matches its line. A file that was renamed or removed is left to
/// [`verify`], which reports it.
pub(crate) fn replace(
    dir: &str,
    lock: Option<&mut Lock>,
    files: &[LoadedFile],
    version: u32,
) -> Result<(), Box<Diagnostic>> {
    let file = files.iter().find(|f| f.source.version == version);
    let Some(lock) = lock else {
        return Err(Box::new(Diagnostic::plain(format!(
            "`{dir}` has no lock, so version {version} was never released and has nothing to replace"
        ))
        .help("run `durable-schema lock` without `--replace` to lock the migrations as they are")
        .rule(RULE)));
    };
    let display_path = lock.display_path.clone();
    let Some(entry) = lock.entries.iter_mut().find(|e| e.version == version) else {
        let refusal = match file {
            Some(file) => Diagnostic::file(
                &file.source.display_path,
                format!(
                    "`{}` (version {version}) is not in `{display_path}`: it was never released, so there is nothing to replace",
                    file.source.name
                ),
            )
            .help("run `durable-schema lock` without `--replace` to lock it as it is"),
            None => Diagnostic::plain(format!(
                "version {version} is not a released migration of `{dir}`: `{display_path}` has no line for it"
            ))
            .help("give the version in the first field of the migration's line in the lock"),
        };
        return Err(Box::new(refusal.rule(RULE)));
    };
    let Some(file) = file.filter(|f| f.source.name == entry.name) else {
        return Ok(());
    };
    let new = checksum(&file.source.text);
    if new == entry.checksum {
        return Err(Box::new(
            Diagnostic::file(
                &file.source.display_path,
                format!(
                    "`{}` matches its line in `{display_path}`: there is no new text to record",
                    entry.name
                ),
            )
            .help("fix the migration's text first, then run `durable-schema lock --replace` again")
            .rule(RULE),
        ));
    }
    // Back to a text it had before: that checksum is the line's own now.
    entry.replaces.retain(|old| *old != new);
    let old = std::mem::replace(&mut entry.checksum, new);
    entry.replaces.push(old);
    Ok(())
}

/// Checks the loaded `files` of `dir` against `lock`: a locked migration
/// that was edited, renamed or removed is an error; with `require_all`, so
/// is a migration that is not locked yet (or a missing lock).
pub(crate) fn verify(
    base: &Path,
    dir: &str,
    lock: Option<&Lock>,
    files: &[LoadedFile],
    require_all: bool,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let Some(lock) = lock else {
        if require_all && !files.is_empty() {
            let path = display_join(dir, LOCK_FILE);
            errors.push(
                Diagnostic::plain(format!("`{dir}` has no lock: `{path}` is missing"))
                    .help("run `durable-schema lock` and commit the lock with the migrations")
                    .rule(RULE),
            );
        }
        return errors;
    };
    let last_file = files.iter().map(|f| f.source.version).max().unwrap_or(0);
    let last_locked = lock.entries.iter().map(|e| e.version).max().unwrap_or(0);
    let last = last_file.max(last_locked);
    // The next file's name as the directory's tool writes it: numbered
    // from `0000_` (a D1 or drizzle-kit directory), one below its version.
    let numbering = Numbering::of_dir(base, dir);
    let next = format!("{:04}", numbering.number(last.saturating_add(1)));
    for entry in &lock.entries {
        let locked = &entry.name;
        let file = files.iter().find(|f| f.source.version == entry.version);
        let Some(file) = file else {
            // A file that exists but did not load was reported already.
            if base.join(dir).join(locked).exists() {
                continue;
            }
            errors.push(
                Diagnostic::at(
                    &lock.display_path,
                    entry.line.max(1),
                    1,
                    format!("released migration `{locked}` was removed"),
                )
                .help(format!(
                    "released migrations are immutable: restore it and add `{next}_<description>.sql` to undo it instead"
                ))
                .rule(RULE),
            );
            continue;
        };
        let source = &file.source;
        let edited = checksum(&source.text) != entry.checksum;
        let diagnostic = if source.name != *locked && edited {
            Diagnostic::file(
                &source.display_path,
                format!(
                    "released migration `{locked}` was replaced by `{}`",
                    source.name
                ),
            )
            .help(format!(
                "released migrations are immutable: restore `{locked}` and add `{next}_{}.sql` instead",
                source.description
            ))
        } else if source.name != *locked {
            Diagnostic::file(
                &source.display_path,
                format!(
                    "released migration `{locked}` was renamed to `{}`",
                    source.name
                ),
            )
            .help(format!(
                "released migrations are immutable: rename it back to `{locked}`"
            ))
        } else if edited {
            Diagnostic::file(
                &source.display_path,
                format!(
                    "released migration `{locked}` was edited: its checksum differs from `{}`",
                    lock.display_path
                ),
            )
            .help(format!(
                "restore it and add the change as `{next}_<description>.sql`, or record a deliberate fix with `durable-schema lock --replace {:04}`",
                entry.version
            ))
        } else {
            continue;
        };
        errors.push(diagnostic.rule(RULE));
    }
    if require_all {
        for file in files {
            if lock.entry(file.source.version).is_none() {
                errors.push(
                    Diagnostic::file(
                        &file.source.display_path,
                        format!(
                            "`{}` is not in `{}` yet",
                            file.source.name, lock.display_path
                        ),
                    )
                    .help("run `durable-schema lock` and commit the lock with the migration")
                    .rule(RULE),
                );
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JOURNAL;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    #[test]
    fn render_and_parse_round_trip() {
        let entries = vec![
            LockEntry {
                version: 1,
                name: "0001_init.sql".into(),
                checksum: A.into(),
                replaces: vec![],
                line: 0,
            },
            LockEntry {
                version: 2,
                name: "0002_more.sql".into(),
                checksum: B.into(),
                replaces: vec![C.into(), A.into()],
                line: 0,
            },
        ];
        let text = render_lock(&entries);
        assert!(text.starts_with("# durable-schema.lock"), "{text}");
        assert!(
            text.ends_with(&format!(
                "0001 0001_init.sql {A}\n0002 0002_more.sql {B} replaces {C},{A}\n"
            )),
            "{text}"
        );
        let parsed = parse("m/durable-schema.lock", &text, Numbering::FromOne).unwrap();
        let header = u32::try_from(HEADER.lines().count()).unwrap();
        assert_eq!(parsed.len(), 2);
        for (p, e) in parsed.iter().zip(&entries) {
            assert_eq!(
                (p.version, &p.name, &p.checksum, &p.replaces),
                (e.version, &e.name, &e.checksum, &e.replaces)
            );
        }
        assert_eq!((parsed[0].line, parsed[1].line), (header + 1, header + 2));
        // Versions may be written without padding; blank lines and
        // comments are fine.
        let loose = format!("\n# x\n  2 0002_more.sql {B}\n1 0001_init.sql {A}   \n");
        let parsed = parse("l", &loose, Numbering::FromOne).unwrap();
        assert_eq!(
            parsed
                .iter()
                .map(|e| (e.version, e.line))
                .collect::<Vec<_>>(),
            [(1, 4), (2, 3)]
        );
    }

    #[test]
    fn malformed_lines_are_located() {
        let text = format!(
            "0001 0001_init.sql\n0002 two.sql {A}\n0004 0003_x.sql {A}\n0004 0004_x.sql {}\n0005 0005_x.sql {A} replaces {B},nope\n0006 0006_x.sql {A} replaces {A}\n0007 0007_x.sql {A}\n7 0007_y.sql {B}\n0008 0008_x.sql {A} keeps {B}\n",
            A.to_uppercase()
        );
        let errors = parse("m/durable-schema.lock", &text, Numbering::FromOne).unwrap_err();
        let got: Vec<(Option<(u32, u32)>, &str)> = errors
            .iter()
            .map(|d| (d.position, d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some((1, 1)),
                    "lock line is not `version file checksum [replaces old,...]`"
                ),
                (
                    Some((2, 6)),
                    "`two.sql` in the lock is not a migration file name"
                ),
                (
                    Some((3, 1)),
                    "lock line of `0003_x.sql` has version `0004`, not 3"
                ),
                (
                    Some((4, 17)),
                    &*format!(
                        "`{}` is not a checksum (64 lowercase hex digits)",
                        A.to_uppercase()
                    )
                ),
                (
                    Some((5, 156)),
                    "`nope` is not a checksum (64 lowercase hex digits)"
                ),
                (
                    Some((6, 91)),
                    "lock line of `0006_x.sql` replaces its own checksum"
                ),
                (Some((8, 1)), "version 7 is locked twice, on lines 7 and 8"),
                (
                    Some((9, 1)),
                    "lock line is not `version file checksum [replaces old,...]`"
                ),
            ]
        );
        assert!(errors.iter().all(|d| d.rule == Some(RULE)));
    }

    #[test]
    fn drizzle_lines_carry_idx_plus_one_and_drizzle_kit_names() {
        let text = render_drizzle_lock(&[
            LockEntry {
                version: 1,
                name: "0000_create_messages.sql".into(),
                checksum: A.into(),
                replaces: vec![],
                line: 0,
            },
            LockEntry {
                version: 2,
                name: "20240101120000_add_index.sql".into(),
                checksum: B.into(),
                replaces: vec![],
                line: 0,
            },
            LockEntry {
                version: 3,
                name: "wild_drizzle.sql".into(),
                checksum: C.into(),
                replaces: vec![],
                line: 0,
            },
        ]);
        // The plain header, byte for byte, then one line on the numbering.
        assert!(text.starts_with(HEADER), "{text}");
        assert!(text[HEADER.len()..].starts_with(DRIZZLE_HEADER), "{text}");
        assert!(
            text.ends_with(&format!("0001 0000_create_messages.sql {A}\n0002 20240101120000_add_index.sql {B}\n0003 wild_drizzle.sql {C}\n")),
            "{text}"
        );
        let parsed = parse("drizzle/durable-schema.lock", &text, Numbering::Drizzle).unwrap();
        assert_eq!(
            parsed
                .iter()
                .map(|e| (e.version, e.name.as_str()))
                .collect::<Vec<_>>(),
            [
                (1, "0000_create_messages.sql"),
                (2, "20240101120000_add_index.sql"),
                (3, "wild_drizzle.sql")
            ]
        );
        // What a plain directory's lock rejects, a drizzle one accepts, and
        // the other way round.
        assert!(parse("l", &text, Numbering::FromOne).is_err());
        let plain = format!("0001 0001_init.sql {A}\n0000 x.sql {B}\n0001 0000_a.sql {C}\n");
        let errors = parse("l", &plain, Numbering::Drizzle).unwrap_err();
        let got: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            got,
            [
                "lock line of `0001_init.sql` has version `0001`, not 2",
                "lock line of `x.sql` has version `0000`, not a number from 1",
            ]
        );
        let errors = parse("l", &format!("0001 notsql {A}\n"), Numbering::Drizzle).unwrap_err();
        assert_eq!(
            errors[0].message,
            "`notsql` in the lock is not a migration file name"
        );
    }

    /// A copy of `examples/drizzle-chat/drizzle` under `scratch`.
    fn drizzle_example(name: &str) -> Scratch {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/drizzle-chat/drizzle");
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for sub in ["", "meta"] {
            for entry in std::fs::read_dir(example.join(sub)).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    let rel = Path::new(sub).join(entry.file_name());
                    let rel = format!("drizzle/{}", rel.to_str().unwrap());
                    files.push((rel, std::fs::read(entry.path()).unwrap()));
                }
            }
        }
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        Scratch::new(name, &files)
    }

    /// The lock `durable-schema lock` writes for `plan`.
    fn lock_of_plan(plan: &crate::Plan) -> String {
        render_drizzle_lock(&plan.lock_entries())
    }

    #[test]
    fn the_drizzle_workflow_locks_checks_refuses_edits_and_takes_new_files() {
        let scratch = drizzle_example("lock-drizzle");
        let dir = scratch.0.join("drizzle");
        let options = Options::default();
        let plan = check_dir(&scratch.0, "drizzle", &options).unwrap();
        std::fs::write(dir.join(LOCK_FILE), lock_of_plan(&plan)).unwrap();
        let lock_text = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert!(
            lock_text.contains(&format!(
                "\n0001 0000_create_messages.sql {}\n",
                plan.migrations[0].checksum
            )),
            "{lock_text}"
        );
        // check and check --locked take the lock lock wrote.
        let plan = check_dir(&scratch.0, "drizzle", &options).unwrap();
        assert_eq!(plan.lock.as_ref().map(|l| l.entries.len()), Some(2));
        check_dir(&scratch.0, "drizzle", &options.clone().require_lock()).unwrap();
        // An edit of a released migration is refused.
        let first = dir.join("0000_create_messages.sql");
        let original = std::fs::read(&first).unwrap();
        let mut edited = original.clone();
        edited.extend_from_slice(b"\n--> statement-breakpoint\nCREATE INDEX x ON messages (id);\n");
        std::fs::write(&first, &edited).unwrap();
        let errors = messages(check_dir(&scratch.0, "drizzle", &options));
        assert_eq!(
            errors,
            ["drizzle/0000_create_messages.sql: released migration `0000_create_messages.sql` was edited: its checksum differs from `drizzle/durable-schema.lock`\n  help: restore it and add the change as `0002_<description>.sql`, or record a deliberate fix with `durable-schema lock --replace 0001`"]
        );
        std::fs::write(&first, &original).unwrap();
        // A new migration (file and journal entry) is fine, and not locked yet.
        let journal_path = dir.join(JOURNAL);
        let journal = std::fs::read_to_string(&journal_path).unwrap();
        let entry = "    {\n      \"idx\": 2,\n      \"version\": \"6\",\n      \"when\": 1768000000000,\n      \"tag\": \"0002_add_edited\",\n      \"breakpoints\": true\n    }\n  ]";
        let end = journal.rfind("\n  ]").unwrap();
        let journal = format!("{},\n{entry}{}", &journal[..end], &journal[end + 4..]);
        std::fs::write(&journal_path, journal).unwrap();
        std::fs::write(
            dir.join("0002_add_edited.sql"),
            "ALTER TABLE `messages` ADD `edited` integer;\n",
        )
        .unwrap();
        let plan = check_dir(&scratch.0, "drizzle", &options).unwrap();
        assert_eq!(plan.version(), 3);
        let errors = messages(check_dir(
            &scratch.0,
            "drizzle",
            &options.clone().require_lock(),
        ));
        assert_eq!(
            errors,
            ["drizzle/0002_add_edited.sql: `0002_add_edited.sql` is not in `drizzle/durable-schema.lock` yet\n  help: run `durable-schema lock` and commit the lock with the migration"]
        );
        std::fs::write(dir.join(LOCK_FILE), lock_of_plan(&plan)).unwrap();
        check_dir(&scratch.0, "drizzle", &options.clone().require_lock()).unwrap();
    }

    use crate::tests::Scratch;
    use crate::{check_dir, Options};

    const ONE: &[u8] = b"CREATE TABLE users (id INTEGER PRIMARY KEY);\n";
    const TWO: &[u8] = b"ALTER TABLE users ADD COLUMN name TEXT;\n";

    fn lock_of(files: &[(&str, &[u8])]) -> String {
        let entries: Vec<LockEntry> = files
            .iter()
            .map(|(name, bytes)| LockEntry {
                version: parse_migration_name(name).unwrap().0,
                name: (*name).to_owned(),
                checksum: checksum(&crate::normalize_text(std::str::from_utf8(bytes).unwrap())),
                replaces: vec![],
                line: 0,
            })
            .collect();
        render_lock(&entries)
    }

    fn messages(result: Result<crate::Plan, Vec<Diagnostic>>) -> Vec<String> {
        result
            .unwrap_err()
            .iter()
            .map(|d| {
                assert_eq!(d.rule, Some(RULE), "{d}");
                d.to_string()
            })
            .collect()
    }

    #[test]
    fn an_intact_history_passes_and_the_plan_carries_the_lock() {
        let lock = lock_of(&[("0001_users.sql", ONE)]);
        let scratch = Scratch::new(
            "lock-ok",
            &[
                // A CRLF and BOM checkout of the same text is not an edit.
                (
                    "0001_users.sql",
                    b"\xef\xbb\xbfCREATE TABLE users (id INTEGER PRIMARY KEY);\r\n",
                ),
                ("0002_names.sql", TWO),
                (LOCK_FILE, lock.as_bytes()),
            ],
        );
        let plan = check_dir(&scratch.0, ".", &Options::default()).unwrap();
        // The lock is not a migration.
        assert_eq!(plan.migrations.len(), 2);
        let lock = plan.lock.unwrap();
        assert_eq!(lock.display_path, LOCK_FILE);
        assert!(lock.abs_path.ends_with(LOCK_FILE));
        assert_eq!(lock.entries.len(), 1);
        assert_eq!(lock.entries[0].checksum, plan.migrations[0].checksum);
        // New files beyond the lock are fine, unless every file must be locked.
        let errors = messages(check_dir(
            &scratch.0,
            ".",
            &Options::default().require_lock(),
        ));
        assert_eq!(
            errors,
            ["0002_names.sql: `0002_names.sql` is not in `durable-schema.lock` yet\n  help: run `durable-schema lock` and commit the lock with the migration"]
        );
    }

    #[test]
    fn edited_renamed_replaced_and_removed_migrations_are_errors() {
        let three: &[u8] = b"CREATE INDEX users_name ON users (name);\n";
        let lock = lock_of(&[
            ("0001_users.sql", ONE),
            ("0002_names.sql", TWO),
            ("0003_index.sql", three),
            ("0004_gone.sql", b"SELECT 1;\n"),
        ]);
        let scratch = Scratch::new(
            "lock-broken",
            &[
                (
                    "0001_users.sql",
                    b"CREATE TABLE users (id INTEGER PRIMARY KEY, x);\n",
                ),
                ("0002_renamed.sql", TWO),
                ("0003_other.sql", b"CREATE INDEX users_id ON users (id);\n"),
                (LOCK_FILE, lock.as_bytes()),
            ],
        );
        let errors = messages(check_dir(&scratch.0, ".", &Options::default()));
        assert_eq!(
            errors,
            [
                "0001_users.sql: released migration `0001_users.sql` was edited: its checksum differs from `durable-schema.lock`\n  help: restore it and add the change as `0005_<description>.sql`, or record a deliberate fix with `durable-schema lock --replace 0001`",
                "0002_renamed.sql: released migration `0002_names.sql` was renamed to `0002_renamed.sql`\n  help: released migrations are immutable: rename it back to `0002_names.sql`",
                "0003_other.sql: released migration `0003_index.sql` was replaced by `0003_other.sql`\n  help: released migrations are immutable: restore `0003_index.sql` and add `0005_other.sql` instead",
                "durable-schema.lock:8:1: released migration `0004_gone.sql` was removed\n  help: released migrations are immutable: restore it and add `0005_<description>.sql` to undo it instead",
            ]
        );
    }

    #[test]
    fn a_declared_replacement_is_the_entry_own_checksum() {
        let new = checksum(std::str::from_utf8(ONE).unwrap());
        let text = format!("0001 0001_users.sql {new} replaces {A},{B}\n");
        let scratch = Scratch::new(
            "lock-replaces",
            &[("0001_users.sql", ONE), (LOCK_FILE, text.as_bytes())],
        );
        let plan = check_dir(&scratch.0, ".", &Options::default().require_lock()).unwrap();
        let lock = plan.lock.unwrap();
        assert_eq!(lock.entries[0].replaces, [A, B]);
        // Going back to an old text is an edit like any other.
        let text = format!("0001 0001_users.sql {A} replaces {new}\n");
        std::fs::write(scratch.0.join(LOCK_FILE), text).unwrap();
        let errors = messages(check_dir(&scratch.0, ".", &Options::default()));
        assert!(errors[0].contains("was edited"), "{errors:?}");
    }

    #[test]
    fn a_missing_or_broken_lock() {
        let scratch = Scratch::new("lock-missing", &[("0001_users.sql", ONE)]);
        assert!(check_dir(&scratch.0, ".", &Options::default()).is_ok());
        let errors = messages(check_dir(
            &scratch.0,
            ".",
            &Options::default().require_lock(),
        ));
        assert_eq!(
            errors,
            ["`.` has no lock: `durable-schema.lock` is missing\n  help: run `durable-schema lock` and commit the lock with the migrations"]
        );
        std::fs::write(scratch.0.join(LOCK_FILE), "0001 0001_users.sql nope\n").unwrap();
        let errors = messages(check_dir(&scratch.0, ".", &Options::default()));
        assert!(
            errors[0].starts_with("durable-schema.lock:1:21: `nope` is not a checksum"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_replacement_is_recorded_after_the_full_check_and_appends() {
        let lock = lock_of(&[("0001_users.sql", ONE), ("0002_names.sql", TWO)]);
        let scratch = Scratch::new(
            "lock-replace",
            &[
                ("0001_users.sql", ONE),
                ("0002_names.sql", TWO),
                (LOCK_FILE, lock.as_bytes()),
            ],
        );
        let options = Options::default();
        let sum = |bytes: &[u8]| checksum(std::str::from_utf8(bytes).unwrap());
        // Unchanged, not locked, not released: refused.
        let refused = |version| {
            let errors = messages(check_dir(
                &scratch.0,
                ".",
                &options.clone().replacing(version),
            ));
            errors.join("\n")
        };
        assert!(
            refused(2).starts_with("0002_names.sql: `0002_names.sql` matches its line in `durable-schema.lock`: there is no new text to record"),
            "{}",
            refused(2)
        );
        assert!(
            refused(3).starts_with("version 3 is not a released migration of `.`"),
            "{}",
            refused(3)
        );
        let three: &[u8] = b"CREATE INDEX users_name ON users (name);\n";
        std::fs::write(scratch.0.join("0003_index.sql"), three).unwrap();
        assert!(
            refused(3).starts_with(
                "0003_index.sql: `0003_index.sql` (version 3) is not in `durable-schema.lock`"
            ),
            "{}",
            refused(3)
        );
        // A fixed text of 2: recorded, with the old checksum after `replaces`.
        let fixed: &[u8] = b"ALTER TABLE users ADD COLUMN name TEXT DEFAULT '';\n";
        std::fs::write(scratch.0.join("0002_names.sql"), fixed).unwrap();
        let plan = check_dir(&scratch.0, ".", &options.clone().replacing(2)).unwrap();
        let entry = plan.lock.as_ref().unwrap().entry(2).unwrap().clone();
        assert_eq!(entry.checksum, sum(fixed));
        assert_eq!(entry.replaces, [sum(TWO)]);
        // Another problem still fails it: the edit of 1 is not declared.
        std::fs::write(
            scratch.0.join("0001_users.sql"),
            b"CREATE TABLE users (id INTEGER PRIMARY KEY, x);\n",
        )
        .unwrap();
        let errors = messages(check_dir(&scratch.0, ".", &options.clone().replacing(2)));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("`0001_users.sql` was edited"),
            "{errors:?}"
        );
        std::fs::write(scratch.0.join("0001_users.sql"), ONE).unwrap();
        // Written, the build takes it; a second replacement appends.
        let entries = plan.lock.unwrap().entries;
        std::fs::write(scratch.0.join(LOCK_FILE), render_lock(&entries)).unwrap();
        check_dir(&scratch.0, ".", &options).unwrap();
        let again: &[u8] = b"ALTER TABLE users ADD COLUMN name TEXT DEFAULT 'x';\n";
        std::fs::write(scratch.0.join("0002_names.sql"), again).unwrap();
        let plan = check_dir(&scratch.0, ".", &options.clone().replacing(2)).unwrap();
        let entry = plan.lock.as_ref().unwrap().entry(2).unwrap();
        assert_eq!(entry.checksum, sum(again));
        assert_eq!(entry.replaces, [sum(TWO), sum(fixed)]);
        // Back to the first text: its checksum leaves the list.
        std::fs::write(
            scratch.0.join(LOCK_FILE),
            render_lock(&plan.lock.unwrap().entries),
        )
        .unwrap();
        std::fs::write(scratch.0.join("0002_names.sql"), TWO).unwrap();
        let plan = check_dir(&scratch.0, ".", &options.clone().replacing(2)).unwrap();
        let entry = plan.lock.as_ref().unwrap().entry(2).unwrap();
        assert_eq!(entry.checksum, sum(TWO));
        assert_eq!(entry.replaces, [sum(fixed), sum(again)]);
        // Without a lock there is nothing to replace.
        std::fs::remove_file(scratch.0.join(LOCK_FILE)).unwrap();
        assert!(refused(2).starts_with("`.` has no lock"), "{}", refused(2));
    }

    #[test]
    fn a_directory_numbered_from_zero_locks_with_versions_one_above() {
        let scratch = Scratch::new(
            "lock-from-zero",
            &[("0000_users.sql", ONE), ("0001_names.sql", TWO)],
        );
        let options = Options::default();
        let plan = check_dir(&scratch.0, ".", &options).unwrap();
        assert_eq!(plan.version(), 2);
        let text = render_lock_for(Numbering::FromZero, &plan.lock_entries());
        assert!(text[HEADER.len()..].starts_with(FROM_ZERO_HEADER), "{text}");
        assert!(
            text.contains(&format!(
                "\n0001 0000_users.sql {}\n",
                plan.migrations[0].checksum
            )),
            "{text}"
        );
        std::fs::write(scratch.0.join(LOCK_FILE), &text).unwrap();
        check_dir(&scratch.0, ".", &options.clone().require_lock()).unwrap();
        // An edit asks for the next file by its number.
        std::fs::write(
            scratch.0.join("0001_names.sql"),
            b"ALTER TABLE users ADD COLUMN nick TEXT;\n",
        )
        .unwrap();
        let errors = messages(check_dir(&scratch.0, ".", &options));
        assert_eq!(
            errors,
            ["0001_names.sql: released migration `0001_names.sql` was edited: its checksum differs from `durable-schema.lock`\n  help: restore it and add the change as `0002_<description>.sql`, or record a deliberate fix with `durable-schema lock --replace 0002`"]
        );
        std::fs::write(scratch.0.join("0001_names.sql"), TWO).unwrap();
        // A lock written from `0001_` is one error when a `0000_` file comes.
        let from_one = Scratch::new(
            "lock-from-one-then-zero",
            &[("0001_users.sql", ONE), ("0002_names.sql", TWO)],
        );
        let lock = lock_of(&[("0001_users.sql", ONE), ("0002_names.sql", TWO)]);
        std::fs::write(from_one.0.join(LOCK_FILE), lock).unwrap();
        std::fs::write(
            from_one.0.join("0000_early.sql"),
            b"CREATE TABLE early (x);\n",
        )
        .unwrap();
        let errors = messages(check_dir(&from_one.0, ".", &options));
        assert_eq!(
            errors,
            ["0000_early.sql: `0000_early.sql` numbers `.` from 0, but `durable-schema.lock` numbers its released migrations from `0001_`\n  help: a `0000_` file would shift every released version: give it the number after the last file"]
        );
        // And the other way round: the released `0000_` file is gone.
        std::fs::remove_file(scratch.0.join("0000_users.sql")).unwrap();
        let errors: Vec<String> = check_dir(&scratch.0, ".", &options)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errors[0].starts_with("`durable-schema.lock` numbers its released migrations from `0000_`, but `.` has no `0000_` file"),
            "{errors:?}"
        );
    }
}
