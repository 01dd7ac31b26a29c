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
//! have applied. The lock does not end in `.sql`, so the loader never takes
//! it for a migration.
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

use crate::journal::{self, JOURNAL};
use crate::source::{display_join, parse_migration_name, read_regular, LoadedFile, Unreadable};
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

/// The line [`render_drizzle_lock`] adds to [`HEADER`].
const DRIZZLE_HEADER: &str = "\
# drizzle-kit directory: the version is the journal's idx + 1, the file is its tag + .sql.
";

/// The text of a lock with `entries`, as `durable-schema lock` writes it.
pub fn render_lock(entries: &[LockEntry]) -> String {
    render(String::from(HEADER), entries)
}

/// The text of the lock of a drizzle-kit directory with `entries` (versions
/// `idx` + 1, drizzle-kit's file names), as `durable-schema lock` writes it:
/// [`render_lock`]'s, with a header line that says how versions and names
/// relate there.
pub fn render_drizzle_lock(entries: &[LockEntry]) -> String {
    render(format!("{HEADER}{DRIZZLE_HEADER}"), entries)
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
    // The loader's test for a drizzle-kit directory, so both agree.
    let naming = if dir_path.join(JOURNAL).exists() {
        Naming::Drizzle
    } else {
        Naming::Plain
    };
    let entries = parse(&display_path, &text, naming)?;
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

/// How the files of a directory are named and numbered, which decides what
/// a lock line may say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// `NNNN_description.sql`, the version being `NNNN`.
    Plain,
    /// drizzle-kit's: the version is the journal's `idx` + 1, the name its
    /// `tag` + `.sql` (`0000_x.sql` is version 1).
    Drizzle,
}

/// The version a lock line of `name` must have under `naming`: `Ok(Some)`
/// when the name decides it, `Ok(None)` when any version from 1 is fine (a
/// drizzle-kit name without an index prefix), `Err` when `name` cannot be a
/// migration's there.
fn version_of(name: &str, naming: Naming) -> Result<Option<u32>, ()> {
    match naming {
        Naming::Plain => parse_migration_name(name)
            .map(|(version, _)| Some(version))
            .map_err(|_| ()),
        Naming::Drizzle => {
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
    naming: Naming,
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
        let Ok(named_version) = version_of(name, naming) else {
            errors.push(
                at(
                    name,
                    format!("`{name}` in the lock is not a migration file name"),
                )
                .help(match naming {
                    Naming::Plain => {
                        "lock lines name files `NNNN_description.sql`, as in the directory"
                    }
                    Naming::Drizzle => {
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
                    .help(match naming {
                        Naming::Plain => "the first field is the version in the file name",
                        Naming::Drizzle => {
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
    // The next file's name as the directory's tool writes it: in a
    // drizzle-kit directory, numbered by `idx`, one below its version.
    let drizzle = base.join(dir).join(JOURNAL).exists();
    let next = if drizzle {
        format!("{last:04}")
    } else {
        format!("{:04}", last.saturating_add(1))
    };
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
                "released migrations are immutable: restore it and add the change as `{next}_<description>.sql` instead"
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
        let parsed = parse("m/durable-schema.lock", &text, Naming::Plain).unwrap();
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
        let parsed = parse("l", &loose, Naming::Plain).unwrap();
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
        let errors = parse("m/durable-schema.lock", &text, Naming::Plain).unwrap_err();
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
        let parsed = parse("drizzle/durable-schema.lock", &text, Naming::Drizzle).unwrap();
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
        assert!(parse("l", &text, Naming::Plain).is_err());
        let plain = format!("0001 0001_init.sql {A}\n0000 x.sql {B}\n0001 0000_a.sql {C}\n");
        let errors = parse("l", &plain, Naming::Drizzle).unwrap_err();
        let got: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            got,
            [
                "lock line of `0001_init.sql` has version `0001`, not 2",
                "lock line of `x.sql` has version `0000`, not a number from 1",
            ]
        );
        let errors = parse("l", &format!("0001 notsql {A}\n"), Naming::Drizzle).unwrap_err();
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
        let entries: Vec<LockEntry> = plan
            .migrations
            .iter()
            .map(|m| LockEntry {
                version: m.source.version,
                name: m.source.name.clone(),
                checksum: m.checksum.clone(),
                replaces: vec![],
                line: 0,
            })
            .collect();
        render_drizzle_lock(&entries)
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
        check_dir_locked(&scratch.0, "drizzle", &options).unwrap();
        // An edit of a released migration is refused.
        let first = dir.join("0000_create_messages.sql");
        let original = std::fs::read(&first).unwrap();
        let mut edited = original.clone();
        edited.extend_from_slice(b"\n--> statement-breakpoint\nCREATE INDEX x ON messages (id);\n");
        std::fs::write(&first, &edited).unwrap();
        let errors = messages(check_dir(&scratch.0, "drizzle", &options));
        assert_eq!(
            errors,
            ["drizzle/0000_create_messages.sql: released migration `0000_create_messages.sql` was edited: its checksum differs from `drizzle/durable-schema.lock`\n  help: released migrations are immutable: restore it and add the change as `0002_<description>.sql` instead"]
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
        let errors = messages(check_dir_locked(&scratch.0, "drizzle", &options));
        assert_eq!(
            errors,
            ["drizzle/0002_add_edited.sql: `0002_add_edited.sql` is not in `drizzle/durable-schema.lock` yet\n  help: run `durable-schema lock` and commit the lock with the migration"]
        );
        std::fs::write(dir.join(LOCK_FILE), lock_of_plan(&plan)).unwrap();
        check_dir_locked(&scratch.0, "drizzle", &options).unwrap();
    }

    use crate::tests::Scratch;
    use crate::{check_dir, check_dir_locked, Options};

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
        let errors = messages(check_dir_locked(&scratch.0, ".", &Options::default()));
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
                "0001_users.sql: released migration `0001_users.sql` was edited: its checksum differs from `durable-schema.lock`\n  help: released migrations are immutable: restore it and add the change as `0005_<description>.sql` instead",
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
        let plan = check_dir_locked(&scratch.0, ".", &Options::default()).unwrap();
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
        let errors = messages(check_dir_locked(&scratch.0, ".", &Options::default()));
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
}
