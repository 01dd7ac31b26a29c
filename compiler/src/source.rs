//! Discovering migration files: naming rules, version order, decoding.
//! A plain directory is numbered from `0001_`, or from `0000_` as wrangler's
//! D1 tooling wrote it (see [`Numbering`]).
//! A directory with drizzle-kit's `meta/_journal.json` follows the journal
//! instead of the naming rules (see [`crate::journal`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::Diagnostic;

/// The largest file the check reads: 16 MiB. It bounds every migration
/// file, the history lock and drizzle-kit's journal, in the build and in the
/// CLI alike. Real migrations are far smaller (the largest of the vendored
/// corpus, a seed-data file, is 357 KB; workerd caps one statement at
/// 100 KB), and a Worker bundle that embeds the migrations must fit in a few
/// MB anyway; the bound is there so that a mistake (a symlink to
/// `/dev/zero`, a database dump saved as `.sql`) is an error instead of a
/// build that reads until memory runs out.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why [`read_regular`] could not read a file.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// Not a regular file (after following symlinks): a directory, a FIFO,
    /// a socket, a device; what it is, in words (`a FIFO`).
    NotRegular(&'static str),
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge,
    /// The operating system's error (`NotFound`, a permission).
    Io(std::io::Error),
}

impl Unreadable {
    /// The problem of the file at `display_path`, whose role (`a migration`,
    /// `the lock`) `role` names in the help.
    pub(crate) fn diagnostic(&self, display_path: &str, role: &str) -> Diagnostic {
        match self {
            Self::NotRegular(kind) => Diagnostic::file(
                display_path,
                format!("is not a regular file: it is {kind}"),
            )
            .help(format!(
                "{role} must be a regular file (or a symlink to one); replace it with the file itself"
            )),
            Self::TooLarge => Diagnostic::file(
                display_path,
                format!(
                    "is larger than {} MiB, the most the check reads from one file",
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
            )
            .help(format!(
                "keep {role} under the bound: split it, and load bulk data at runtime instead"
            )),
            Self::Io(e) => Diagnostic::file(display_path, format!("cannot be read: {e}")),
        }
    }
}

/// What a file that is not a regular one is, in words.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    "not a file"
}

/// Reads the regular file at `path` (symlinks are followed: a migration
/// shared through a symlink loads like its target), at most
/// [`MAX_FILE_BYTES`] of it.
///
/// Anything else is refused before it is opened, since opening a FIFO
/// blocks until a writer comes and a device may never end; the read itself
/// stops one byte past the bound whatever the file claims its size is.
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>, Unreadable> {
    let metadata = std::fs::metadata(path).map_err(Unreadable::Io)?;
    if !metadata.is_file() {
        return Err(Unreadable::NotRegular(kind_of(metadata.file_type())));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    let file = open_no_block(path).map_err(Unreadable::Io)?;
    // Checked again on what was opened: a file swapped for a FIFO between
    // the two looks is refused too, never waited on.
    let opened = file.metadata().map_err(Unreadable::Io)?;
    if !opened.is_file() {
        return Err(Unreadable::NotRegular(kind_of(opened.file_type())));
    }
    // Sized from the opened file (at most the bound), as `fs::read` does: a
    // buffer grown from empty costs a probe read and reallocations per file.
    let mut bytes = Vec::with_capacity(opened.len().min(MAX_FILE_BYTES) as usize + 1);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Unreadable::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    Ok(bytes)
}

/// Opens `path` for reading; on Unix without waiting for a writer, so a
/// FIFO opened by mistake never blocks.
fn open_no_block(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::File::options();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// The bytes of the file at `path` as the check reads them, for callers
/// outside the compiler (the CLI quoting a source line): `None` unless it
/// is a regular file (symlinks followed) of at most [`MAX_FILE_BYTES`].
/// Never opens a FIFO or a device, and never reads past the bound.
pub fn read_source(path: &Path) -> Option<Vec<u8>> {
    read_regular(path).ok()
}

/// A migration file read from disk, decoded and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The version: the numeric prefix of the name (+ 1 in a directory
    /// numbered from `0000_`); in a drizzle-kit directory, the journal
    /// entry's `idx` + 1.
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
    /// The hex SHA-256 of `source.text`, computed once: the cache key and
    /// the plan's checksum share it (one pass over the text per check).
    checksum: std::cell::OnceCell<String>,
}

impl LoadedFile {
    /// A loaded `source`, not split or hashed yet.
    pub(crate) fn new(source: SourceFile) -> Self {
        Self {
            source,
            statements: std::cell::OnceCell::new(),
            checksum: std::cell::OnceCell::new(),
        }
    }

    /// Its statements, as spans of `source.text`, in order.
    pub(crate) fn statements(&self) -> &[crate::PlannedStatement] {
        self.statements
            .get_or_init(|| crate::split::spans(&self.source.text))
    }

    /// The hex SHA-256 of its normalized text ([`crate::checksum`]).
    pub(crate) fn checksum(&self) -> &str {
        self.checksum
            .get_or_init(|| crate::checksum(&self.source.text))
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
pub(crate) enum MigrationNameError {
    /// Not `NNNN_description.sql`.
    Malformed,
    /// The numeric prefix does not fit in a `u32`.
    VersionTooLarge,
}

/// Parses `NNNN_description.sql` into `(number, description)`: the number
/// is the file's numeric prefix, which is its version in a directory
/// numbered from `0001_` and one less in one numbered from `0000_` (see
/// [`Numbering`]).
///
/// The prefix has at least four digits (so names sort in version order); the
/// description is non-empty and made of ASCII letters, digits, `_` and `-`:
/// `0003_add_sessions.sql` is `(3, "add_sessions")`, `3_init.sql` is
/// malformed, `0000_init.sql` is number zero.
pub(crate) fn parse_migration_name(name: &str) -> Result<(u32, &str), MigrationNameError> {
    let stem = name
        .strip_suffix(".sql")
        .ok_or(MigrationNameError::Malformed)?;
    let (digits, description) = stem.split_once('_').ok_or(MigrationNameError::Malformed)?;
    let description_ok = !description.is_empty()
        && description
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || !description_ok {
        return Err(MigrationNameError::Malformed);
    }
    let number: u32 = digits
        .parse()
        .map_err(|_| MigrationNameError::VersionTooLarge)?;
    Ok((number, description))
}

/// How a migrations directory numbers its files, which decides each file's
/// version (and what a lock line of it says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// `NNNN_description.sql` from `0001_`: the version is the number.
    FromOne,
    /// `NNNN_description.sql` from `0000_`, as wrangler's
    /// `d1 migrations create` numbered files for years: the version is the
    /// number + 1, so `0000_initial.sql` is version 1.
    FromZero,
    /// drizzle-kit's (a directory with `meta/_journal.json`): the version
    /// is the journal entry's `idx` + 1, the name its `tag` + `.sql`.
    Drizzle,
}

impl Numbering {
    /// The numbering of `dir` (resolved against `base`), by the loader's
    /// rule: drizzle-kit's when it has `meta/_journal.json`, from zero when
    /// a `.sql` file is named `0000_…`, from one otherwise (also when the
    /// directory cannot be read: the check reports that).
    pub fn of_dir(base: &Path, dir: &str) -> Self {
        let path = base.join(dir);
        if path.join(crate::journal::JOURNAL).exists() {
            return Self::Drizzle;
        }
        let names: Vec<String> = std::fs::read_dir(&path)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        Self::of_plain_names(&names)
    }

    /// The numbering of a directory without a drizzle journal whose `.sql`
    /// files are `names`.
    pub(crate) fn of_plain_names(names: &[String]) -> Self {
        let zero = names
            .iter()
            .any(|name| matches!(parse_migration_name(name), Ok((0, _))));
        if zero {
            Self::FromZero
        } else {
            Self::FromOne
        }
    }

    /// The version of the file numbered `number` (`None` past `u32::MAX`,
    /// or for number 0 in a directory numbered from one).
    pub fn version(self, number: u32) -> Option<u32> {
        match self {
            Self::FromOne => (number > 0).then_some(number),
            Self::FromZero | Self::Drizzle => number.checked_add(1),
        }
    }

    /// The number of the file of `version`: the prefix its name has.
    pub fn number(self, version: u32) -> u32 {
        match self {
            Self::FromOne => version,
            Self::FromZero | Self::Drizzle => version.saturating_sub(1),
        }
    }
}

/// Joins the directory as the user wrote it with a file name, for messages:
/// `migrations/` and `0001_x.sql` make `migrations/0001_x.sql`, `.` (or
/// nothing) makes `0001_x.sql`, the root `/` makes `/0001_x.sql`.
pub(crate) fn display_join(dir: &str, name: &str) -> String {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() && !dir.is_empty() {
        format!("/{name}")
    } else if trimmed.is_empty() || trimmed == "." {
        name.to_owned()
    } else {
        format!("{trimmed}/{name}")
    }
}

/// How a caller resolves a migration directory, for the messages about a
/// directory that is missing or is not one: the build and the CLI resolve
/// `dir` against different places and take it from different settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSetting {
    /// What `dir` is resolved against, in words: `the crate root, where
    /// Cargo.toml is`.
    pub resolved_against: &'static str,
    /// The setting that names the directory, quoted: `` `dir` ``.
    pub setting: &'static str,
}

impl DirSetting {
    /// The build's: the attribute's `dir`, resolved against
    /// `CARGO_MANIFEST_DIR`. [`crate::check_dir`] words its directory
    /// errors so.
    pub const BUILD: Self = Self {
        resolved_against: "the crate root, where Cargo.toml is",
        setting: "`dir`",
    };
}

/// Whether `dir` (as the user wrote it, resolved against `base`) is a
/// directory that can be listed: `None` when it is, else the problem,
/// worded for `setting` (where `dir` is resolved from, which setting names
/// it). [`crate::check_dir`] finds the same problem and words it for the
/// build ([`DirSetting::BUILD`]); a caller that resolves `dir` elsewhere (the CLI,
/// against the current directory) asks first, in its own words.
pub fn directory_problem(base: &Path, dir: &str, setting: &DirSetting) -> Option<Diagnostic> {
    std::fs::read_dir(base.join(dir))
        .err()
        .map(|e| directory_error(dir, &e, setting))
}

/// The problem of a migration directory that `read_dir` refused with `e`.
fn directory_error(dir: &str, e: &std::io::Error, setting: &DirSetting) -> Diagnostic {
    let DirSetting {
        resolved_against,
        setting,
    } = setting;
    match e.kind() {
        std::io::ErrorKind::NotFound => Diagnostic::plain(format!(
            "migration directory `{dir}` does not exist (it is resolved against {resolved_against})"
        ))
        .help(format!(
            "create `{}`, or point {setting} at the existing directory",
            display_join(dir, "0001_init.sql")
        )),
        std::io::ErrorKind::NotADirectory => Diagnostic::plain(format!(
            "migration directory `{dir}` is not a directory (it is resolved against {resolved_against})"
        ))
        .help(format!(
            "point {setting} at the directory that holds the `.sql` migrations"
        )),
        _ => Diagnostic::plain(format!(
            "migration directory `{dir}` cannot be read: {e} (it is resolved against {resolved_against})"
        ))
        .help(format!(
            "make the directory readable, or point {setting} at another one"
        )),
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
/// numbers start at `0001_` (or at `0000_`, each version then being the
/// number + 1: see [`Numbering`]), are unique and contiguous; other files
/// are ignored;
/// the text must be UTF-8 and contain at least one statement. A directory
/// with drizzle-kit's `meta/_journal.json` follows the journal instead (see
/// [`crate::journal::load`]).
pub(crate) fn load_dir(base: &Path, dir: &str) -> Loaded {
    let path = base.join(dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) => {
            return Loaded {
                errors: vec![directory_error(dir, &e, &DirSetting::BUILD)],
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

    // A directory that starts at `0000_` (wrangler's D1 numbering) is
    // numbered from zero throughout: every file's version is its number + 1,
    // as in a drizzle-kit directory.
    let numbering = Numbering::of_plain_names(&names);
    // version → files claiming it (duplicates are reported together).
    let mut by_version: BTreeMap<u32, Vec<LoadedFile>> = BTreeMap::new();
    for name in &names {
        let display_path = display_join(dir, name);
        let parsed = parse_migration_name(name).and_then(|(number, description)| {
            let version = numbering
                .version(number)
                .ok_or(MigrationNameError::VersionTooLarge)?;
            Ok((version, description))
        });
        let (version, description) = match parsed {
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

    check_versions(dir, numbering, &by_version, &mut errors);

    if by_version.is_empty() && errors.is_empty() {
        errors.push(
            Diagnostic::plain(format!("migration directory `{dir}` has no migrations")).help(
                format!(
                    "add `{}` with your first CREATE TABLE",
                    display_join(dir, "0001_init.sql")
                ),
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
/// `abs_path` this fills in), or explains why it is not a migration: a
/// directory or another file that is not a regular one, larger than
/// [`MAX_FILE_BYTES`], unreadable, not UTF-8, or without statements.
/// `file_path` is in the directory `load_dir` made canonical, and is kept
/// as the file's `abs_path`.
pub(crate) fn read_file(
    file_path: &Path,
    mut source: SourceFile,
) -> Result<LoadedFile, Box<Diagnostic>> {
    let display_path = source.display_path.as_str();
    let bytes = match read_regular(file_path) {
        Ok(bytes) => bytes,
        Err(Unreadable::NotRegular("a directory")) => {
            return Err(Box::new(Diagnostic::file(
                display_path,
                "is a directory, not a migration file".to_owned(),
            )))
        }
        Err(e) => return Err(Box::new(e.diagnostic(display_path, "a migration"))),
    };
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
    Ok(LoadedFile::new(source))
}

fn name_error(display_path: &str, name: &str, err: &MigrationNameError) -> Diagnostic {
    match err {
        MigrationNameError::Malformed => Diagnostic::file(
            display_path,
            format!("`{name}` is not a migration file name"),
        )
        .help(
            "name migrations `NNNN_description.sql`: at least four digits, `_`, then letters, digits, `_` or `-`, e.g. `0001_create_users.sql`",
        ),
        MigrationNameError::VersionTooLarge => Diagnostic::file(
            display_path,
            format!("the version of `{name}` does not fit in 32 bits"),
        )
        .help("use small, contiguous versions: `0001_`, `0002_`, …"),
    }
}

/// Reports duplicate versions and gaps; in a directory numbered from
/// `0000_`, in the files' numbers, which are what the user sees and renames.
fn check_versions(
    dir: &str,
    numbering: Numbering,
    by_version: &BTreeMap<u32, Vec<LoadedFile>>,
    errors: &mut Vec<Diagnostic>,
) {
    let zero = numbering == Numbering::FromZero;
    let what = if zero { "number" } else { "version" };
    let mut expected = 1u32;
    for (&version, files) in by_version {
        if files.len() > 1 {
            let list = files
                .iter()
                .map(|f| format!("`{}`", f.source.name))
                .collect::<Vec<_>>()
                .join(", ");
            let shown = numbering.number(version);
            errors.push(
                Diagnostic::plain(format!(
                    "duplicate migration {what} {shown} in `{dir}`: {list}"
                ))
                .help(format!(
                    "each {what} must be used by exactly one file; renumber one of them"
                )),
            );
        }
        if version != expected {
            let (from, to) = (numbering.number(expected), numbering.number(version - 1));
            let missing = if from == to {
                format!("{what} {from} is missing")
            } else {
                format!("{what}s {from} to {to} are missing")
            };
            let name = files.first().map_or("", |f| f.source.name.as_str());
            errors.push(
                Diagnostic::plain(format!(
                    "gap in migration {what}s in `{dir}`: {missing} before `{name}`"
                ))
                .help(if zero {
                    "a directory that starts at `0000_` is numbered contiguously from there; renumber the files"
                } else {
                    "versions must be contiguous from 1; renumber the files"
                }),
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
            Err(MigrationNameError::Malformed)
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
                Err(MigrationNameError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(parse_migration_name("0000_x.sql"), Ok((0, "x")));
        assert_eq!(
            parse_migration_name("99999999999_x.sql"),
            Err(MigrationNameError::VersionTooLarge)
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
        assert_eq!(display_join("", "0001_x.sql"), "0001_x.sql");
        assert_eq!(display_join("/", "0001_x.sql"), "/0001_x.sql");
        assert_eq!(display_join("//", "0001_x.sql"), "/0001_x.sql");
    }

    use crate::tests::Scratch;
    use crate::{check_dir, Options};

    const USERS: &[u8] = b"CREATE TABLE users (id INTEGER PRIMARY KEY);\n";

    /// The messages of checking `dir` under `base`, in a thread given a
    /// generous minute: a check that hangs (a FIFO opened for reading waits
    /// for a writer forever) fails the test instead of hanging it. The
    /// thread of a hung check is left behind; the test binary exits anyway.
    fn messages_within_a_minute(base: &Path, dir: &str) -> Vec<String> {
        let (send, receive) = std::sync::mpsc::channel();
        let (base, dir) = (base.to_owned(), dir.to_owned());
        std::thread::spawn(move || {
            let result = check_dir(&base, &dir, &Options::default());
            let _ = send.send(
                result
                    .map(|_| ())
                    .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>()),
            );
        });
        let result = receive
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the check did not finish within a minute");
        result.expect_err("the check passed")
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read() {
        let scratch = Scratch::new(
            "source-special",
            &[
                ("m/0001_users.sql", USERS),
                ("shared/0002_more.sql", b"CREATE TABLE more (id);\n"),
            ],
        );
        let m = scratch.0.join("m");
        let status = std::process::Command::new("mkfifo")
            .arg(m.join("0003_fifo.sql"))
            .status()
            .unwrap();
        assert!(status.success());
        std::os::unix::fs::symlink("/dev/zero", m.join("0004_zero.sql")).unwrap();
        // A symlink to a regular file loads like the file.
        std::os::unix::fs::symlink("../shared/0002_more.sql", m.join("0002_more.sql")).unwrap();
        assert_eq!(
            messages_within_a_minute(&scratch.0, "m"),
            [
                "m/0003_fifo.sql: is not a regular file: it is a FIFO\n  help: a migration must be a regular file (or a symlink to one); replace it with the file itself",
                "m/0004_zero.sql: is not a regular file: it is a device\n  help: a migration must be a regular file (or a symlink to one); replace it with the file itself",
            ]
        );
        std::fs::remove_file(m.join("0003_fifo.sql")).unwrap();
        std::fs::remove_file(m.join("0004_zero.sql")).unwrap();
        let plan = check_dir(&scratch.0, "m", &Options::default()).unwrap();
        assert_eq!(plan.version(), 2);
        // The lock and the drizzle journal are read the same way.
        let status = std::process::Command::new("mkfifo")
            .arg(m.join(crate::LOCK_FILE))
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            messages_within_a_minute(&scratch.0, "m"),
            ["m/durable-schema.lock: is not a regular file: it is a FIFO\n  help: the lock must be a regular file (or a symlink to one); replace it with the file itself"]
        );
        std::fs::remove_file(m.join(crate::LOCK_FILE)).unwrap();
        std::fs::create_dir(m.join("meta")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", m.join(crate::journal::JOURNAL)).unwrap();
        assert_eq!(
            messages_within_a_minute(&scratch.0, "m"),
            ["m/meta/_journal.json: is not a regular file: it is a device\n  help: the drizzle journal must be a regular file (or a symlink to one); replace it with the file itself"]
        );
    }

    #[test]
    fn a_file_over_the_bound_is_refused_unread() {
        let scratch = Scratch::new("source-large", &[("0001_users.sql", USERS)]);
        // Sparse: the bound is checked without writing 16 MiB.
        let big = std::fs::File::create(scratch.0.join("0002_dump.sql")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(
            messages_within_a_minute(&scratch.0, "."),
            ["0002_dump.sql: is larger than 16 MiB, the most the check reads from one file\n  help: keep a migration under the bound: split it, and load bulk data at runtime instead"]
        );
        // At the bound is fine for the reader (the check then finds no
        // statement in the NUL bytes, a different problem).
        big.set_len(MAX_FILE_BYTES).unwrap();
        assert_eq!(
            read_regular(&scratch.0.join("0002_dump.sql"))
                .unwrap()
                .len() as u64,
            MAX_FILE_BYTES
        );
    }

    #[test]
    fn a_dir_that_is_a_file_is_one_error_worded_for_the_caller() {
        let scratch = Scratch::new("source-dir-file", &[("0001_users.sql", USERS)]);
        let errors = check_dir(&scratch.0, "0001_users.sql", &Options::default()).unwrap_err();
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            ["migration directory `0001_users.sql` is not a directory (it is resolved against the crate root, where Cargo.toml is)\n  help: point `dir` at the directory that holds the `.sql` migrations"]
        );
        let cli = DirSetting {
            resolved_against: "the current directory",
            setting: "`--dir`",
        };
        let missing = directory_problem(&scratch.0, "nope", &cli).unwrap();
        assert_eq!(
            missing.to_string(),
            "migration directory `nope` does not exist (it is resolved against the current directory)\n  help: create `nope/0001_init.sql`, or point `--dir` at the existing directory"
        );
        assert_eq!(directory_problem(&scratch.0, ".", &cli), None);
    }

    #[test]
    fn a_directory_from_zero_is_numbered_from_zero_throughout() {
        let scratch = Scratch::new(
            "source-from-zero",
            &[
                ("m/0000_initial.sql", USERS),
                ("m/0001_add_x.sql", b"ALTER TABLE users ADD COLUMN x;\n"),
            ],
        );
        let plan = check_dir(&scratch.0, "m", &Options::default()).unwrap();
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
                (1, "0000_initial.sql", "initial"),
                (2, "0001_add_x.sql", "add_x")
            ]
        );
        assert_eq!(Numbering::of_dir(&scratch.0, "m"), Numbering::FromZero);
        // Gaps and duplicates are still refused, in the files' numbers.
        std::fs::write(scratch.0.join("m/0001_add_y.sql"), b"SELECT 1;\n").unwrap();
        std::fs::write(scratch.0.join("m/0004_z.sql"), b"SELECT 1;\n").unwrap();
        let errors: Vec<String> = check_dir(&scratch.0, "m", &Options::default())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "duplicate migration number 1 in `m`: `0001_add_x.sql`, `0001_add_y.sql`\n  help: each number must be used by exactly one file; renumber one of them",
                "gap in migration numbers in `m`: numbers 2 to 3 are missing before `0004_z.sql`\n  help: a directory that starts at `0000_` is numbered contiguously from there; renumber the files",
            ]
        );
    }
}
