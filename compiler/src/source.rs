//! Discovering migration files: naming rules, version order, decoding.
//! A directory with drizzle-kit's `meta/_journal.json` follows the journal
//! instead of the naming rules (see [`crate::journal`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::Diagnostic;

/// A migration file read from disk, decoded and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The version: the numeric prefix of the name; in a drizzle-kit
    /// directory, the journal entry's `idx` + 1.
    pub version: u32,
    /// The file name, `0003_add_sessions.sql` (in a drizzle-kit directory,
    /// the entry's tag plus `.sql`).
    pub name: String,
    /// The description part of the name, `add_sessions` (in a drizzle-kit
    /// directory, the tag without its `NNNN_` prefix).
    pub description: String,
    /// The path as the user wrote it plus the file name
    /// (`migrations/0003_add_sessions.sql`): used in every message.
    pub display_path: String,
    /// The absolute path, for `include_str!` (never shown to users).
    pub abs_path: String,
    /// The text with a leading BOM removed and CRLF turned into LF.
    pub text: String,
    /// Whether the file's bytes are `text` already (no BOM, no CRLF): the
    /// macro then embeds it with `include_str!` instead of a second copy.
    pub verbatim: bool,
    /// In a drizzle-kit directory, the `when` of the file's journal entry:
    /// milliseconds since the epoch, what drizzle's migrator records as
    /// `created_at`. `None` in a plain `NNNN_description.sql` directory.
    pub journal_when: Option<u64>,
}

/// A migration file that passed the file rules, split into its statements
/// when they are first needed: the only place a migration is split. A
/// directory whose verdict is cached is never split at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadedFile {
    /// The file.
    pub(crate) source: SourceFile,
    /// Its statements, as spans of `source.text`, in order.
    statements: std::cell::OnceCell<Vec<crate::PlannedStatement>>,
}

impl LoadedFile {
    /// Its statements, as spans of `source.text`, in order.
    pub(crate) fn statements(&self) -> &[crate::PlannedStatement] {
        self.statements
            .get_or_init(|| crate::split::spans(&self.source.text))
    }

    /// The file as the replay runs it.
    pub(crate) fn script(&self) -> crate::replay::Script<'_> {
        crate::replay::Script {
            display_path: &self.source.display_path,
            version: self.source.version,
            text: &self.source.text,
            statements: self.statements(),
        }
    }
}

/// Why a file name is not a migration name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameError {
    /// Not `NNNN_description.sql`.
    Malformed,
    /// `0000_x.sql`: versions start at 1.
    VersionZero,
    /// The numeric prefix does not fit in a `u32`.
    VersionTooLarge,
}

/// Parses `NNNN_description.sql` into `(version, description)`.
///
/// The prefix has at least four digits (so names sort in version order); the
/// description is non-empty and made of ASCII letters, digits, `_` and `-`:
/// `0003_add_sessions.sql` is `(3, "add_sessions")`, `3_init.sql` is
/// malformed, `0000_init.sql` has version zero.
pub(crate) fn parse_migration_name(name: &str) -> Result<(u32, &str), NameError> {
    let stem = name.strip_suffix(".sql").ok_or(NameError::Malformed)?;
    let (digits, description) = stem.split_once('_').ok_or(NameError::Malformed)?;
    let description_ok = !description.is_empty()
        && description
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || !description_ok {
        return Err(NameError::Malformed);
    }
    let version: u32 = digits.parse().map_err(|_| NameError::VersionTooLarge)?;
    if version == 0 {
        return Err(NameError::VersionZero);
    }
    Ok((version, description))
}

/// Joins the directory as the user wrote it with a file name, for messages.
pub(crate) fn display_join(dir: &str, name: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Removes a UTF-8 BOM and turns CRLF into LF, so that a file saved on
/// Windows has the same checksum as its Unix twin.
///
/// ```
/// use durable_schema_compiler::normalize_text;
/// assert_eq!(normalize_text("\u{feff}SELECT 1;\r\nSELECT 2;\r\n"), "SELECT 1;\nSELECT 2;\n");
/// ```
pub fn normalize_text(text: &str) -> String {
    text.strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n")
}

/// Decodes raw bytes as UTF-8 and normalizes them, or explains where the
/// first invalid byte is.
pub(crate) fn decode(display_path: &str, bytes: &[u8]) -> Result<String, Box<Diagnostic>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(normalize_text(text)),
        Err(e) => {
            let offset = e.valid_up_to();
            let valid = String::from_utf8_lossy(bytes.get(..offset).unwrap_or_default());
            let (line, col) = crate::split::line_col(&valid, valid.len());
            let byte = bytes.get(offset).copied().unwrap_or_default();
            Err(Box::new(
                Diagnostic::at(
                    display_path,
                    line,
                    col,
                    format!("invalid UTF-8 at byte offset {offset} (byte 0x{byte:02x})"),
                )
                .help("migration files must be UTF-8; re-save the file as UTF-8"),
            ))
        }
    }
}

/// What [`load_dir`] found: the files that loaded, in version order, and
/// the problems with the others.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Files that passed the file rules, in version order.
    pub(crate) files: Vec<LoadedFile>,
    /// Problems with names, versions, encodings or contents.
    pub(crate) errors: Vec<Diagnostic>,
    /// Whether `files` form a chain whose order is certain (no duplicate
    /// versions), so replaying them finds real problems, not echoes.
    pub(crate) replayable: bool,
}

/// Reads `dir` (as the user wrote it, resolved against `base`): the
/// migrations in version order (split into statements when first needed),
/// and every problem found. The files that are fine are kept next to the
/// problems of the others, so one build reports a bad name *and* a bad
/// statement.
///
/// Rules: files ending in `.sql` must be named `NNNN_description.sql`;
/// versions start at 1, are unique and contiguous; other files are ignored;
/// the text must be UTF-8 and contain at least one statement. A directory
/// with drizzle-kit's `meta/_journal.json` follows the journal instead (see
/// [`crate::journal::load`]).
pub(crate) fn load_dir(base: &Path, dir: &str) -> Loaded {
    let path = base.join(dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be read: {e}")
            };
            return Loaded {
                errors: vec![Diagnostic::plain(format!(
                    "migration directory `{dir}` {why} (it is resolved against the crate root, where Cargo.toml is)"
                ))
                .help(format!(
                    "create `{dir}/0001_init.sql`, or point `dir` at the existing directory"
                ))],
                ..Loaded::default()
            };
        }
    };

    // Absolute and canonical once, for the `include_str!` paths of every
    // file: a `canonicalize` per file cost a thousand path walks per build.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let mut errors = Vec::new();
    let mut os_names = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => os_names.push(entry.file_name()),
            Err(e) => errors.push(Diagnostic::plain(format!(
                "cannot list migration directory `{dir}`: {e}"
            ))),
        }
    }
    os_names.sort();
    // The `.sql` files, by name (README.md, .gitkeep, editor backups: not
    // ours).
    let mut names = Vec::new();
    for os_name in os_names {
        match os_name.to_str() {
            Some(name) if name.ends_with(".sql") => names.push(name.to_owned()),
            Some(_) => {}
            None => {
                let lossy = os_name.to_string_lossy();
                if lossy.ends_with(".sql") {
                    errors.push(Diagnostic::file(
                        &display_join(dir, &lossy),
                        "file name is not valid UTF-8".to_owned(),
                    ));
                }
            }
        }
    }

    if path.join(crate::journal::JOURNAL).exists() {
        return crate::journal::load(&path, dir, &names, errors);
    }

    // version → files claiming it (duplicates are reported together).
    let mut by_version: BTreeMap<u32, Vec<LoadedFile>> = BTreeMap::new();
    for name in &names {
        let display_path = display_join(dir, name);
        let (version, description) = match parse_migration_name(name) {
            Ok(parsed) => parsed,
            Err(err) => {
                errors.push(name_error(&display_path, name, &err));
                continue;
            }
        };
        let source = SourceFile {
            version,
            name: name.clone(),
            description: description.to_owned(),
            display_path,
            abs_path: String::new(),
            text: String::new(),
            verbatim: false,
            journal_when: None,
        };
        match read_file(&path.join(name), source) {
            Ok(file) => by_version.entry(version).or_default().push(file),
            Err(diag) => errors.push(*diag),
        }
    }

    check_versions(dir, &by_version, &mut errors);

    if by_version.is_empty() && errors.is_empty() {
        errors.push(
            Diagnostic::plain(format!("migration directory `{dir}` has no migrations")).help(
                format!("add `{dir}/0001_init.sql` with your first CREATE TABLE"),
            ),
        );
    }
    let replayable = by_version.values().all(|files| files.len() == 1);
    Loaded {
        files: by_version.into_values().flatten().collect(),
        errors,
        replayable,
    }
}

/// Reads the file at `file_path` into `source` (whose `text` and
/// `abs_path` this fills in), or explains why it is not a
/// migration: a directory, unreadable, not UTF-8, or without statements.
/// `file_path` is in the directory `load_dir` made canonical, and is kept
/// as the file's `abs_path`.
pub(crate) fn read_file(
    file_path: &Path,
    mut source: SourceFile,
) -> Result<LoadedFile, Box<Diagnostic>> {
    let display_path = source.display_path.as_str();
    if file_path.is_dir() {
        return Err(Box::new(Diagnostic::file(
            display_path,
            "is a directory, not a migration file".to_owned(),
        )));
    }
    let bytes = std::fs::read(file_path).map_err(|e| {
        Box::new(Diagnostic::file(
            display_path,
            format!("cannot be read: {e}"),
        ))
    })?;
    let text = decode(display_path, &bytes)?;
    if !crate::split::has_statement(&text) {
        return Err(Box::new(
            Diagnostic::file(
                display_path,
                "contains no SQL statement (only whitespace or comments)".to_owned(),
            )
            .help("add the migration's statements, or delete the file"),
        ));
    }
    // `load_dir` made the directory canonical.
    source.abs_path = file_path.to_string_lossy().into_owned();
    source.verbatim = text.as_bytes() == bytes.as_slice();
    source.text = text;
    Ok(LoadedFile {
        source,
        statements: std::cell::OnceCell::new(),
    })
}

fn name_error(display_path: &str, name: &str, err: &NameError) -> Diagnostic {
    match err {
        NameError::Malformed => Diagnostic::file(
            display_path,
            format!("`{name}` is not a migration file name"),
        )
        .help(
            "name migrations `NNNN_description.sql`: at least four digits, `_`, then letters, digits, `_` or `-`, e.g. `0001_create_users.sql`",
        ),
        NameError::VersionZero => Diagnostic::file(
            display_path,
            format!("`{name}` has version 0, but versions start at 1"),
        )
        .help("renumber the files from `0001_`"),
        NameError::VersionTooLarge => Diagnostic::file(
            display_path,
            format!("the version of `{name}` does not fit in 32 bits"),
        )
        .help("use small, contiguous versions: `0001_`, `0002_`, …"),
    }
}

fn check_versions(
    dir: &str,
    by_version: &BTreeMap<u32, Vec<LoadedFile>>,
    errors: &mut Vec<Diagnostic>,
) {
    let mut expected = 1u32;
    for (&version, files) in by_version {
        if files.len() > 1 {
            let list = files
                .iter()
                .map(|f| format!("`{}`", f.source.name))
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(
                Diagnostic::plain(format!(
                    "duplicate migration version {version} in `{dir}`: {list}"
                ))
                .help("each version must be used by exactly one file; renumber one of them"),
            );
        }
        if version != expected {
            let missing = if version == expected + 1 {
                format!("version {expected} is missing")
            } else {
                format!("versions {expected} to {} are missing", version - 1)
            };
            let name = files.first().map_or("", |f| f.source.name.as_str());
            errors.push(
                Diagnostic::plain(format!(
                    "gap in migration versions in `{dir}`: {missing} before `{name}`"
                ))
                .help("versions must be contiguous from 1; renumber the files"),
            );
        }
        expected = version.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_migration_name("0001_init.sql"), Ok((1, "init")));
        assert_eq!(
            parse_migration_name("0003_add_sessions.sql"),
            Ok((3, "add_sessions"))
        );
        assert_eq!(
            parse_migration_name("3_init.sql"),
            Err(NameError::Malformed)
        );
        assert_eq!(
            parse_migration_name("00042_add-index_2.sql"),
            Ok((42, "add-index_2"))
        );
        for bad in [
            "001_x.sql",
            "0001.sql",
            "0001_.sql",
            "abcd_x.sql",
            "0001_x y.sql",
            "0001_x.SQL",
            "V1__init.sql",
            "20240101120000-init.sql",
        ] {
            assert_eq!(
                parse_migration_name(bad),
                Err(NameError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            parse_migration_name("0000_x.sql"),
            Err(NameError::VersionZero)
        );
        assert_eq!(
            parse_migration_name("99999999999_x.sql"),
            Err(NameError::VersionTooLarge)
        );
    }

    #[test]
    fn normalization_is_checksum_neutral() {
        assert_eq!(normalize_text("\u{feff}a\r\nb"), normalize_text("a\nb"));
        // A lone CR is content, not a line ending we rewrite.
        assert_eq!(normalize_text("a\rb"), "a\rb");
    }

    #[test]
    fn invalid_utf8_names_offset_and_line() {
        let err = decode("m/0001_x.sql", b"SELECT 1;\nSELECT '\xff';").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("m/0001_x.sql:2:9"), "{text}");
        assert!(text.contains("byte offset 18"), "{text}");
    }

    #[test]
    fn display_join_keeps_the_path_as_written() {
        assert_eq!(
            display_join("migrations/", "0001_x.sql"),
            "migrations/0001_x.sql"
        );
        assert_eq!(display_join(".", "0001_x.sql"), "0001_x.sql");
    }
}
