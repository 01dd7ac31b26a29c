//! drizzle-kit directories: when `<dir>/meta/_journal.json` exists, the
//! journal decides the order and the names of the migrations.
//!
//! drizzle-kit writes `NNNN_tag.sql` numbered from `0000` and a journal
//! `{"version": "7", "dialect": "sqlite", "entries": [{"idx": 0, "version":
//! "6", "when": 1700000000000, "tag": "0000_wild_drizzle", "breakpoints":
//! true}, …]}`; drizzle's migrator runs the entries in journal order and
//! records each one's `when` as `created_at`. Here entry `idx` i is version
//! i + 1, its file is `<tag>.sql` and keeps its name; the journal and the
//! files must agree (see [`load`]).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::source::{display_join, read_file, read_regular, Loaded, SourceFile, Unreadable};
use crate::Diagnostic;

/// Where drizzle-kit keeps its journal, relative to the migration directory.
pub(crate) const JOURNAL: &str = "meta/_journal.json";

/// The help of every problem with the journal file itself.
const RESTORE_HELP: &str = "restore the journal drizzle-kit wrote, e.g. from version control";

/// The help of a malformed entry.
const ENTRY_HELP: &str = "each entry needs `idx` (0, 1, 2…), `when` (milliseconds) and `tag` (the file name without `.sql`), as drizzle-kit writes them";

/// A numeric tag prefix this long or longer is a timestamp (drizzle-kit's
/// `migrations.prefix` = `timestamp`, `supabase` or `unix`), not an index.
const TIMESTAMP_DIGITS: usize = 10;

/// One journal entry with the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournalEntry {
    /// Its position in `entries` (0-based): the journal's order.
    pub(crate) position: usize,
    /// Its `idx`, which must equal `position`.
    pub(crate) idx: u64,
    /// Its `when`, in milliseconds.
    pub(crate) when: u64,
    /// Its `tag`: the file name without `.sql`.
    pub(crate) tag: String,
}

/// What [`parse`] found.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    /// The well-formed entries, in journal order.
    pub(crate) entries: Vec<JournalEntry>,
    /// Problems with the file or with single entries.
    pub(crate) errors: Vec<Diagnostic>,
    /// Whether the journal has an `entries` list (else nothing else can be
    /// checked).
    pub(crate) usable: bool,
    /// Whether every entry has a usable tag, so a file without an entry is
    /// really not listed.
    pub(crate) all_tagged: bool,
}

/// Parses the journal's bytes; `display` is its path as the user wrote it.
pub(crate) fn parse(display: &str, bytes: &[u8]) -> Journal {
    let fail = |d: Diagnostic| Journal {
        errors: vec![d.help(RESTORE_HELP)],
        ..Journal::default()
    };
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full);
            let line = u32::try_from(e.line()).unwrap_or(u32::MAX).max(1);
            let column = u32::try_from(e.column()).unwrap_or(u32::MAX).max(1);
            return fail(Diagnostic::at(
                display,
                line,
                column,
                format!("drizzle journal is not valid JSON: {message}"),
            ));
        }
    };
    let Some(object) = value.as_object() else {
        return fail(Diagnostic::file(
            display,
            format!(
                "drizzle journal is {}, not an object with an `entries` list",
                kind(&value)
            ),
        ));
    };
    let list = match object.get("entries") {
        None => {
            return fail(Diagnostic::file(
                display,
                "drizzle journal has no `entries` list".to_owned(),
            ))
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return fail(Diagnostic::file(
                display,
                format!("drizzle journal's `entries` is {}, not a list", kind(other)),
            ))
        }
    };
    let mut journal = Journal {
        usable: true,
        all_tagged: true,
        ..Journal::default()
    };
    for (position, value) in list.iter().enumerate() {
        match entry(position, value) {
            Ok(entry) => journal.entries.push(entry),
            Err((message, tagged)) => {
                journal.all_tagged &= tagged;
                journal
                    .errors
                    .push(Diagnostic::file(display, message).help(ENTRY_HELP));
            }
        }
    }
    journal
}

/// One entry, or what is wrong with it and whether it still has a usable
/// tag.
fn entry(position: usize, value: &Value) -> Result<JournalEntry, (String, bool)> {
    let Some(object) = value.as_object() else {
        return Err((
            format!("entry {position} is {}, not an object", kind(value)),
            false,
        ));
    };
    let tag = match object.get("tag") {
        None => Err(format!("entry {position} has no `tag`")),
        Some(Value::String(tag)) if is_file_stem(tag) => Ok(tag.clone()),
        Some(Value::String(tag)) => Err(format!(
            "entry {position}: `tag` `{tag}` is not a file name"
        )),
        Some(other) => Err(format!(
            "entry {position}: `tag` is {}, expected a string",
            kind(other)
        )),
    };
    let number = |field: &str, what: &str| match object.get(field) {
        None => Err(format!("entry {position} has no `{field}`")),
        Some(value) => value.as_u64().ok_or_else(|| {
            format!(
                "entry {position}: `{field}` is {}, expected {what}",
                kind(value)
            )
        }),
    };
    let idx = number("idx", "a whole number");
    let when = number("when", "milliseconds as a whole number");
    let tagged = tag.is_ok();
    match (idx, when, tag) {
        (Ok(idx), Ok(when), Ok(tag)) => Ok(JournalEntry {
            position,
            idx,
            when,
            tag,
        }),
        (idx, when, tag) => {
            let first = [tag.err(), idx.err(), when.err()]
                .into_iter()
                .flatten()
                .next()
                .unwrap_or_default();
            Err((first, tagged))
        }
    }
}

/// Whether `tag` + `.sql` names a file directly inside the directory.
pub(crate) fn is_file_stem(tag: &str) -> bool {
    !tag.is_empty() && !tag.contains(['/', '\\', '\0'])
}

/// How a JSON value is described in a message.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The index in a tag's `NNNN_` prefix, if it has one (not a timestamp).
pub(crate) fn index_prefix(tag: &str) -> Option<u64> {
    let (digits, _) = tag.split_once('_')?;
    let index_like = !digits.is_empty()
        && digits.len() < TIMESTAMP_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit());
    index_like.then(|| digits.parse().ok()).flatten()
}

/// A tag without its numeric prefix: `0000_wild_drizzle` → `wild_drizzle`.
/// A tag without one (drizzle-kit's `migrations.prefix = "none"`) is its own
/// description.
pub(crate) fn description(tag: &str) -> &str {
    match tag.split_once('_') {
        Some((digits, rest))
            if !digits.is_empty()
                && !rest.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => tag,
    }
}

/// Loads a drizzle-kit directory at `path` (`dir` as the user wrote it),
/// whose `.sql` files are `names`; `errors` holds the problems found while
/// listing it.
///
/// Entry at position i of the journal is version i + 1; its file is
/// `<tag>.sql`, named as it is, described by the tag without its `NNNN_`
/// prefix. Problems, all reported together: the journal unreadable, not
/// JSON or of the wrong shape; an entry's `idx` not its position; a file
/// numbered differently from its entry's `idx`; two entries with one tag or
/// one `when`; an entry without its file; a `.sql` file without an entry.
/// A `when` smaller than the previous one is allowed: drizzle allows it.
pub(crate) fn load(
    path: &Path,
    dir: &str,
    names: &[String],
    mut errors: Vec<Diagnostic>,
) -> Loaded {
    let display = display_join(dir, JOURNAL);
    let bytes = match read_regular(&path.join(JOURNAL)) {
        Ok(bytes) => bytes,
        Err(Unreadable::Io(e)) => {
            errors.push(
                Diagnostic::file(&display, format!("drizzle journal cannot be read: {e}"))
                    .help(RESTORE_HELP),
            );
            return Loaded {
                errors,
                ..Loaded::default()
            };
        }
        Err(e) => {
            errors.push(e.diagnostic(&display, "the drizzle journal"));
            return Loaded {
                errors,
                ..Loaded::default()
            };
        }
    };
    let journal = parse(&display, &bytes);
    errors.extend(journal.errors);
    if !journal.usable {
        return Loaded {
            errors,
            ..Loaded::default()
        };
    }
    let entries = journal.entries;
    errors.extend(order_errors(&display, &entries));

    // Problems of the journal itself first, then of the files.
    let mut replayable = true;
    let mut by_tag: HashMap<&str, &JournalEntry> = HashMap::new();
    let mut by_when: HashMap<u64, &JournalEntry> = HashMap::new();
    let mut unique = Vec::new();
    for entry in &entries {
        if let Some(first) = by_when.get(&entry.when) {
            errors.push(
                Diagnostic::file(
                    &display,
                    format!(
                        "entries {} (`{}`) and {} (`{}`) both have `when` {}",
                        first.position, first.tag, entry.position, entry.tag, entry.when
                    ),
                )
                .help("the runtime tells drizzle's applied migrations apart by `when`; give the later entry a larger one"),
            );
        } else {
            by_when.insert(entry.when, entry);
        }
        if let Some(first) = by_tag.get(entry.tag.as_str()) {
            errors.push(
                Diagnostic::file(
                    &display,
                    format!(
                        "entries {} and {} both have tag `{}`",
                        first.position, entry.position, entry.tag
                    ),
                )
                .help("list each migration once; remove the later entry"),
            );
            replayable = false;
        } else {
            by_tag.insert(&entry.tag, entry);
            unique.push(entry);
        }
    }

    let present: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut listed = HashSet::new();
    let mut files = Vec::new();
    for entry in unique {
        let name = format!("{}.sql", entry.tag);
        let display_path = display_join(dir, &name);
        listed.insert(name.clone());
        if !present.contains(name.as_str()) {
            errors.push(
                Diagnostic::file(
                    &display_path,
                    format!(
                        "is missing, but `{display}` lists it as entry {}",
                        entry.position
                    ),
                )
                .help("restore the file, e.g. from version control, so the journal and the files agree"),
            );
            continue;
        }
        if let Some(number) = index_prefix(&entry.tag) {
            if number != entry.idx {
                errors.push(
                    Diagnostic::file(
                        &display_path,
                        format!(
                            "is numbered {number}, but `{display}` runs it at `idx` {}, an order that differs from the numbering",
                            entry.idx
                        ),
                    )
                    .help("renumber the file and its tag, or reorder the journal, so that the numbers follow `idx`"),
                );
            }
        }
        let source = SourceFile {
            version: u32::try_from(entry.position + 1).unwrap_or(u32::MAX),
            name: name.clone(),
            description: description(&entry.tag).to_owned(),
            display_path,
            abs_path: String::new(),
            text: String::new(),
            verbatim: false,
            journal_when: Some(entry.when),
        };
        match read_file(&path.join(&name), source) {
            Ok(file) => files.push(file),
            Err(diag) => errors.push(*diag),
        }
    }

    if journal.all_tagged {
        for name in names.iter().filter(|name| !listed.contains(*name)) {
            errors.push(
                Diagnostic::file(
                    &display_join(dir, name),
                    format!("is not listed in `{display}`"),
                )
                .help(format!(
                    "add its entry to the journal (`drizzle-kit generate --custom` writes one), or move the file out of `{dir}`"
                )),
            );
        }
    }

    if entries.is_empty() && errors.is_empty() {
        errors.push(
            Diagnostic::file(&display, "drizzle journal lists no migrations".to_owned())
                .help("generate the first one with `drizzle-kit generate`"),
        );
    }
    Loaded {
        files,
        errors,
        replayable,
    }
}

/// The first entry whose `idx` is not its position, and how many more.
fn order_errors(display: &str, entries: &[JournalEntry]) -> Option<Diagnostic> {
    let mut wrong = entries.iter().filter(|e| e.idx != e.position as u64);
    let first = wrong.next()?;
    let more = match wrong.count() {
        0 => String::new(),
        1 => " (1 later entry too)".to_owned(),
        n => format!(" ({n} later entries too)"),
    };
    Some(
        Diagnostic::file(
            display,
            format!(
                "entry {} has `idx` {}, but `idx` must run 0, 1, 2… in journal order{more}",
                first.position, first.idx
            ),
        )
        .help("the journal's order decides the versions; renumber `idx` to follow it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::Scratch;
    use crate::{check_dir, Options};

    const JOURNAL_PATH: &str = "drizzle/meta/_journal.json";

    /// A journal as drizzle-kit 0.45 writes it, with `(idx, when, tag)`
    /// entries.
    fn journal(entries: &[(u64, u64, &str)]) -> String {
        let entries: Vec<String> = entries
            .iter()
            .map(|(idx, when, tag)| {
                format!(
                    "\n    {{\n      \"idx\": {idx},\n      \"version\": \"6\",\n      \"when\": {when},\n      \"tag\": \"{tag}\",\n      \"breakpoints\": true\n    }}"
                )
            })
            .collect();
        format!(
            "{{\n  \"version\": \"7\",\n  \"dialect\": \"sqlite\",\n  \"entries\": [{}\n  ]\n}}",
            entries.join(",")
        )
    }

    const USERS: &[u8] = b"CREATE TABLE `users` (\n\t`id` integer PRIMARY KEY NOT NULL\n);\n";
    const POSTS: &[u8] = b"CREATE TABLE `posts` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`author` integer NOT NULL,\n\tFOREIGN KEY (`author`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade\n);\n--> statement-breakpoint\nCREATE INDEX `posts_author` ON `posts` (`author`);";
    const TAGS: &[u8] = b"CREATE TABLE `tags` (`name` text PRIMARY KEY NOT NULL);\n";

    /// Checks a scratch directory laid out as `drizzle/…`, returning the
    /// plan or the messages (`path: message`, without helps).
    fn check(name: &str, files: &[(&str, &[u8])]) -> Result<crate::Plan, Vec<String>> {
        let files: Vec<(String, &[u8])> = files
            .iter()
            .map(|(path, bytes)| (format!("drizzle/{path}"), *bytes))
            .collect();
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), *b)).collect();
        let scratch = Scratch::new(&format!("journal-{name}"), &files);
        check_dir(&scratch.0, "drizzle", &Options::default()).map_err(|errors| {
            errors
                .iter()
                .map(|d| {
                    assert!(d.help.is_some(), "no help: {d}");
                    let mut d = d.clone();
                    d.help = None;
                    d.to_string()
                })
                .collect()
        })
    }

    fn errors(name: &str, files: &[(&str, &[u8])]) -> Vec<String> {
        match check(name, files) {
            Ok(plan) => panic!("expected errors, got {plan:#?}"),
            Err(errors) => errors,
        }
    }

    #[test]
    fn the_journal_decides_versions_names_and_descriptions() {
        // `when` may decrease along the journal: drizzle allows it.
        let j = journal(&[
            (0, 1_700_000_000_000, "0000_wild_drizzle"),
            (1, 1_700_000_500_000, "0001_brave_posts"),
            (2, 1_700_000_100_000, "0002_tags"),
        ]);
        let plan = check(
            "happy",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("meta/0000_snapshot.json", b"{}"),
                (
                    "migrations.js",
                    b"// drizzle-kit's bundle for durable-sqlite",
                ),
                ("0000_wild_drizzle.sql", USERS),
                ("0001_brave_posts.sql", POSTS),
                ("0002_tags.sql", TAGS),
            ],
        )
        .unwrap();
        let seen: Vec<(u32, &str, &str, &str, Option<u64>)> = plan
            .migrations
            .iter()
            .map(|m| {
                let s = &m.source;
                (
                    s.version,
                    s.name.as_str(),
                    s.description.as_str(),
                    s.display_path.as_str(),
                    s.journal_when,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    1,
                    "0000_wild_drizzle.sql",
                    "wild_drizzle",
                    "drizzle/0000_wild_drizzle.sql",
                    Some(1_700_000_000_000)
                ),
                (
                    2,
                    "0001_brave_posts.sql",
                    "brave_posts",
                    "drizzle/0001_brave_posts.sql",
                    Some(1_700_000_500_000)
                ),
                (
                    3,
                    "0002_tags.sql",
                    "tags",
                    "drizzle/0002_tags.sql",
                    Some(1_700_000_100_000)
                ),
            ]
        );
        assert_eq!(plan.version(), 3);
        assert_eq!(plan.migrations[1].statements.len(), 2);
        assert_eq!(plan.migrations[1].foreign_key_checks, Vec::<String>::new());
        // The chain is over the journal's versions, like any other.
        assert_eq!(
            plan.migrations[0].chain,
            crate::chain("", 1, &plan.migrations[0].checksum)
        );
    }

    #[test]
    fn the_journal_order_wins_over_file_names() {
        // Timestamp prefixes (drizzle-kit's `migrations.prefix`) are not
        // compared with `idx`, and sort differently from the journal here.
        let j = journal(&[
            (0, 1, "20240301120000_users"),
            (1, 2, "20240101120000_posts"),
            (2, 3, "tags"),
        ]);
        let plan = check(
            "timestamps",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("20240301120000_users.sql", USERS),
                ("20240101120000_posts.sql", POSTS),
                ("tags.sql", TAGS),
            ],
        )
        .unwrap();
        let seen: Vec<(u32, &str, &str)> = plan
            .migrations
            .iter()
            .map(|m| {
                (
                    m.source.version,
                    m.source.name.as_str(),
                    m.source.description.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "20240301120000_users.sql", "users"),
                (2, "20240101120000_posts.sql", "posts"),
                (3, "tags.sql", "tags"),
            ]
        );
    }

    #[test]
    fn a_plain_directory_has_no_journal_when() {
        let plan = check("plain", &[("0001_users.sql", USERS)]).unwrap();
        assert_eq!(plan.migrations[0].source.journal_when, None);
        // Without a journal, a directory from `0000_` is a plain one
        // numbered from zero (as D1's): version 1, and no `when`.
        let plan = check("plain-zero", &[("0000_users.sql", USERS)]).unwrap();
        let source = &plan.migrations[0].source;
        assert_eq!(
            (source.version, source.name.as_str(), source.journal_when),
            (1, "0000_users.sql", None)
        );
    }

    #[test]
    fn a_missing_file_is_named_with_its_entry() {
        let j = journal(&[(0, 1, "0000_users"), (1, 2, "0001_posts")]);
        let errs = errors(
            "missing",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0000_users.sql", USERS),
            ],
        );
        assert_eq!(
            errs,
            [format!(
                "drizzle/0001_posts.sql: is missing, but `{JOURNAL_PATH}` lists it as entry 1"
            )]
        );
    }

    #[test]
    fn a_file_without_an_entry_is_refused() {
        let j = journal(&[(0, 1, "0000_users")]);
        let errs = errors(
            "extra",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0000_users.sql", USERS),
                ("0001_posts.sql", POSTS),
                ("seed.sql", b"SELECT 1;"),
                ("README.md", b"not a migration"),
            ],
        );
        assert_eq!(
            errs,
            [
                format!("drizzle/0001_posts.sql: is not listed in `{JOURNAL_PATH}`"),
                format!("drizzle/seed.sql: is not listed in `{JOURNAL_PATH}`"),
            ]
        );
    }

    #[test]
    fn idx_must_run_in_journal_order() {
        // Entry 1 was deleted by hand: one error, counting the rest.
        let j = journal(&[
            (0, 1, "0000_users"),
            (2, 3, "0002_posts"),
            (3, 4, "0003_tags"),
        ]);
        let errs = errors(
            "idx",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0000_users.sql", USERS),
                ("0002_posts.sql", POSTS),
                ("0003_tags.sql", TAGS),
            ],
        );
        assert_eq!(
            errs,
            [format!(
                "{JOURNAL_PATH}: entry 1 has `idx` 2, but `idx` must run 0, 1, 2… in journal order (1 later entry too)"
            )]
        );
        let j = journal(&[(1, 1, "0001_users"), (0, 2, "0000_posts")]);
        let errs = errors(
            "idx-swapped",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0001_users.sql", USERS),
                ("0000_posts.sql", POSTS),
            ],
        );
        assert_eq!(
            errs,
            [format!(
                "{JOURNAL_PATH}: entry 0 has `idx` 1, but `idx` must run 0, 1, 2… in journal order (1 later entry too)"
            )]
        );
    }

    #[test]
    fn the_numbering_must_follow_idx() {
        let j = journal(&[(0, 1, "0000_users"), (1, 2, "0002_posts")]);
        let errs = errors(
            "prefix",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0000_users.sql", USERS),
                ("0002_posts.sql", POSTS),
            ],
        );
        assert_eq!(
            errs,
            [format!(
                "drizzle/0002_posts.sql: is numbered 2, but `{JOURNAL_PATH}` runs it at `idx` 1, an order that differs from the numbering"
            )]
        );
    }

    #[test]
    fn duplicate_tags_and_whens_name_both_entries() {
        let j = journal(&[
            (0, 1, "0000_users"),
            (1, 2, "0001_posts"),
            (2, 2, "0002_tags"),
            (3, 4, "0001_posts"),
        ]);
        let errs = errors(
            "duplicates",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0000_users.sql", USERS),
                ("0001_posts.sql", POSTS),
                ("0002_tags.sql", TAGS),
            ],
        );
        assert_eq!(
            errs,
            [
                format!(
                    "{JOURNAL_PATH}: entries 1 (`0001_posts`) and 2 (`0002_tags`) both have `when` 2"
                ),
                format!("{JOURNAL_PATH}: entries 1 and 3 both have tag `0001_posts`"),
            ]
        );
    }

    #[test]
    fn an_unusable_journal_is_the_only_error() {
        let unreadable = Scratch::new(
            "journal-unreadable",
            &[
                ("drizzle/meta/_journal.json/x", b""),
                ("drizzle/0000_users.sql", USERS),
            ],
        );
        let errs = check_dir(&unreadable.0, "drizzle", &Options::default()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].to_string().starts_with(&format!(
                "{JOURNAL_PATH}: is not a regular file: it is a directory"
            )),
            "{}",
            errs[0]
        );
        for (case, text, expected) in [
            (
                "not-json",
                "{\n  \"entries\": [\n    {\"idx\": 0,}\n  ]\n}",
                format!("{JOURNAL_PATH}:3:15: drizzle journal is not valid JSON: trailing comma"),
            ),
            (
                "empty-file",
                "",
                format!(
                    "{JOURNAL_PATH}:1:1: drizzle journal is not valid JSON: EOF while parsing a value"
                ),
            ),
            (
                "list",
                "[]",
                format!("{JOURNAL_PATH}: drizzle journal is a list, not an object with an `entries` list"),
            ),
            (
                "no-entries",
                "{\"version\": \"7\", \"dialect\": \"sqlite\"}",
                format!("{JOURNAL_PATH}: drizzle journal has no `entries` list"),
            ),
            (
                "entries-object",
                "{\"entries\": {}}",
                format!("{JOURNAL_PATH}: drizzle journal's `entries` is an object, not a list"),
            ),
        ] {
            let errs = errors(
                case,
                &[
                    ("meta/_journal.json", text.as_bytes()),
                    ("0000_users.sql", USERS),
                ],
            );
            assert_eq!(errs, [expected], "{case}");
        }
    }

    #[test]
    fn malformed_entries_are_each_reported() {
        let text = r#"{"entries": [
            {"idx": 0, "when": 1, "tag": "0000_users"},
            {"idx": 1, "when": 2},
            {"when": 3, "tag": "0002_tags"},
            {"idx": 3, "tag": "0003_x"},
            {"idx": -4, "when": 5, "tag": "0004_x"},
            {"idx": 5, "when": "6", "tag": "0005_x"},
            {"idx": 6, "when": 7, "tag": 6},
            {"idx": 7, "when": 8, "tag": "../0007_x"},
            "0008_x"
        ]}"#;
        let journal = parse(JOURNAL_PATH, text.as_bytes());
        assert!(journal.usable && !journal.all_tagged);
        assert_eq!(journal.entries.len(), 1);
        let messages: Vec<&str> = journal.errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "entry 1 has no `tag`",
                "entry 2 has no `idx`",
                "entry 3 has no `when`",
                "entry 4: `idx` is `-4`, expected a whole number",
                "entry 5: `when` is the string `6`, expected milliseconds as a whole number",
                "entry 6: `tag` is `6`, expected a string",
                "entry 7: `tag` `../0007_x` is not a file name",
                "entry 8 is the string `0008_x`, not an object",
            ]
        );
        assert!(journal
            .errors
            .iter()
            .all(|d| d.file.as_deref() == Some(JOURNAL_PATH)
                && d.help.as_deref() == Some(ENTRY_HELP)));
        // Files of tagless entries are not reported as unlisted: that would
        // be an echo of the entry's own error.
        let errs = errors(
            "tagless",
            &[
                (
                    "meta/_journal.json",
                    br#"{"entries": [{"idx": 0, "when": 1, "tag": "0000_users"}, {"idx": 1, "when": 2}]}"#,
                ),
                ("0000_users.sql", USERS),
                ("0001_posts.sql", POSTS),
            ],
        );
        assert_eq!(errs, [format!("{JOURNAL_PATH}: entry 1 has no `tag`")]);
    }

    #[test]
    fn an_empty_journal_says_how_to_start() {
        let j = journal(&[]);
        let errs = errors("empty", &[("meta/_journal.json", j.as_bytes())]);
        assert_eq!(
            errs,
            [format!(
                "{JOURNAL_PATH}: drizzle journal lists no migrations"
            )]
        );
    }

    #[test]
    fn every_disagreement_is_reported_in_one_run() {
        let j = journal(&[
            (0, 1, "0000_users"),
            (1, 2, "0001_posts"),
            (2, 3, "0002_tags"),
            (3, 3, "0004_likes"),
        ]);
        let errs = errors(
            "all",
            &[
                ("meta/_journal.json", j.as_bytes()),
                ("0000_users.sql", USERS),
                ("0001_posts.sql", POSTS),
                ("0003_orphan.sql", TAGS),
                ("0004_likes.sql", b"CREATE TABLE likes (post INTEGER REFERENCES posts(id));\nCREATE INDEX likes_tag ON tags (name);\n"),
            ],
        );
        assert_eq!(
            errs,
            [
                format!("{JOURNAL_PATH}: entries 2 (`0002_tags`) and 3 (`0004_likes`) both have `when` 3"),
                format!("drizzle/0002_tags.sql: is missing, but `{JOURNAL_PATH}` lists it as entry 2"),
                format!("drizzle/0004_likes.sql: is numbered 4, but `{JOURNAL_PATH}` runs it at `idx` 3, an order that differs from the numbering"),
                format!("drizzle/0003_orphan.sql: is not listed in `{JOURNAL_PATH}`"),
                // The files that loaded are replayed too.
                "drizzle/0004_likes.sql:2:1: no such table: main.tags\n  in statement: CREATE INDEX likes_tag ON tags (name)".to_owned(),
            ]
        );
    }

    #[test]
    fn tags_map_to_descriptions_and_prefixes() {
        assert_eq!(description("0000_wild_drizzle"), "wild_drizzle");
        assert_eq!(description("20240101120000_init"), "init");
        assert_eq!(description("init"), "init");
        assert_eq!(description("0001_"), "0001_");
        assert_eq!(description("_x"), "_x");
        assert_eq!(index_prefix("0003_x"), Some(3));
        assert_eq!(index_prefix("12345_x"), Some(12345));
        assert_eq!(index_prefix("1700000000_x"), None, "unix seconds");
        assert_eq!(index_prefix("20240101120000_x"), None, "timestamp");
        assert_eq!(index_prefix("init"), None);
        assert_eq!(index_prefix("v1_x"), None);
    }
}
