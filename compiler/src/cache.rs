//! The verdict cache: a successful check's result, so that an unchanged
//! migration directory is not replayed again on every expansion of the
//! attribute (every build, every rust-analyzer expansion) or every
//! `durable-schema check`.
//!
//! Only the replay is cached. The loader (names, versions, UTF-8, the
//! drizzle journal) and the history lock are checked before the lookup on
//! every call, so their errors never come from the cache; errors of the
//! replay are never cached either: only a success is stored, and a miss
//! runs the full check.
//!
//! **Key**: a SHA-256 over everything that decides the replay's verdict
//! and the plan, each field length-prefixed: this crate's version and
//! [`FORMAT`] (bumped whenever the entry layout or any check changes), a
//! fingerprint of this crate's source (`build.rs`: a build whose checks
//! changed misses even at the same version), the SQLite library version,
//! the tracking table's name, whether a baseline is wanted, the locked
//! mode, and
//! for each migration in order its version, file name, description, display
//! path, normalized text and journal `when`, then the lock file's bytes and
//! the journal's bytes when present.
//!
//! **Where**: `DURABLE_SCHEMA_CACHE` names the directory (`off` disables the
//! cache), else `durable-schema/verdicts` in the user's own cache directory; a
//! directory another user could steer is not used (see [`place`], which
//! owns every read and write of the cache's files). One file per key,
//! `<key>.plan`, `0600`, written to a temporary file and renamed into
//! place, so a reader never sees half an entry.
//!
//! **Entry**: one header line, then the payload (JSON):
//!
//! ```text
//! durable-schema-cache <FORMAT> <compiler version> <key> <HMAC-SHA256 of the header's words and the payload>
//! {"migrations":[{"name":"0001_init.sql","statements":[[0,42,1,1,false]],"foreign_key_checks":[],"unreproducible":null,"clock":null,"changes":[],"cost_hints":[]}],"clock":null,"baseline":{"Built":["PRAGMA defer_foreign_keys = ON;\n…",[[0,30,1,1,false]]]},"head_schema":[{"kind":"table","name":"users","table":"users","sql":"CREATE TABLE users (…)"}]}
//! ```
//!
//! **A hit trusts nothing it can cheaply recompute.** The payload holds
//! what the replay decided and is expensive to decide again: that the
//! directory passed, the statements it ran (splitting a thousand files
//! costs twice the rest of a hit), the foreign-key checks, what a build
//! cannot reproduce, and the baseline for new objects, verified before it
//! was stored (or why there is none), and the head schema the checked
//! queries prepare against; all of it is authenticated by the
//! HMAC under the user's secret, so an entry written by anyone without the
//! secret is a miss, and every span is checked to lie in its file's text.
//! The files' names and texts are in the key (each text by its SHA-256,
//! which is the plan's checksum: one pass over the text), and on a hit the
//! checksums and the chain values are computed from the files just read
//! (so are the absolute paths `include_str!` needs). An entry whose
//! header, key, tag or payload does not match — corrupt, truncated, of
//! another format or version, another key's, another user's — is a miss,
//! and the full check overwrites it. Failing to read or write an entry is a
//! miss too: never an error, never a panic.
//!
//! **Replay images**: a successful check also stores the replay database
//! after its last migration (`sqlite3_serialize`), `<image key>.image`, so
//! that a directory with new migrations on top of checked ones replays only
//! the new ones (see `check_resuming` in `lib.rs`). One image per success,
//! for the directory's head, never one per migration; a cache keeps the
//! [`MAX_IMAGES`] most recently stored or used. The image key
//! ([`image_key`]) covers what decides the replay of a prefix: the chain
//! value of its last migration (every version and normalized text up to
//! it), the number of migrations, [`FORMAT`], this crate's version and
//! source fingerprint, the SQLite version and the tracking table. A miss
//! looks for the longest prefix with an image, from the last version down,
//! computing each chain value from the files. The entry:
//!
//! ```text
//! durable-schema-image <FORMAT> <compiler version> <image key> <HMAC of the header's words, payload and image> <payload length>
//! <payload, as above: the prefix's plan and the replay's clock><the database image>
//! ```
//!
//! The replay runs on a clock standing at one instant (see
//! `crate::baseline`): an image's payload holds that instant, and the
//! replay resumed from it stands at the same one, so the values the prefix
//! read from the clock and those the new migrations read agree.
//!
//! An image is used only when its header, key and tag match and its plan's
//! names are the files' (the key covers the prefix's chain value, computed
//! from the files); SQLite must accept it and it must hold the tracking
//! table. Anything else: the full
//! replay. No image is stored when the replay left state outside the
//! database (a lasting pragma), and none is used or stored for a directory
//! whose texts may read the connection's history (`changes()`,
//! `last_insert_rowid()`, ...), which a new connection would not share.

mod place;

use durable_schema_runtime::packed::Over;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
use place::default_dir;
pub(crate) use place::{from_env, Cache, Choice, ENV};

use crate::source::LoadedFile;
use crate::{
    journal, lock, BaselineScript, NoBaseline, Options, Plan, PlannedMigration, PlannedStatement,
    SchemaObject,
};

/// The entry layout and checks version: bump it when the payload's layout
/// or any check changes, so older entries are never trusted.
pub(crate) const FORMAT: u32 = 16;

/// The first word of an entry's header.
const MAGIC: &str = "durable-schema-cache";

/// Feeds length-prefixed fields to a SHA-256, so no two field lists hash
/// alike by shifting bytes from one field to the next.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn optional(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            Some(bytes) => {
                self.0.update([1]);
                self.field(bytes);
            }
            None => self.0.update([0]),
        }
    }
}

/// The key of checking `files` (loaded from `dir` under `base`) with
/// `options`: see the module docs for what it covers.
pub(crate) fn key(
    base: &std::path::Path,
    dir: &str,
    options: &Options,
    files: &[LoadedFile],
) -> String {
    let path = base.join(dir);
    let read = |relative: &str| crate::source::read_regular(&path.join(relative)).ok();
    key_of(
        options,
        options.locked,
        files,
        read(lock::LOCK_FILE).as_deref(),
        read(journal::JOURNAL).as_deref(),
    )
}

/// [`key`] with the lock's and the journal's bytes given.
fn key_of(
    options: &Options,
    require_lock: bool,
    files: &[LoadedFile],
    lock: Option<&[u8]>,
    journal: Option<&[u8]>,
) -> String {
    let mut h = KeyHasher(Sha256::new());
    h.field(MAGIC.as_bytes());
    h.field(&FORMAT.to_le_bytes());
    h.field(env!("CARGO_PKG_VERSION").as_bytes());
    h.field(env!("DURABLE_SCHEMA_COMPILER_FINGERPRINT").as_bytes());
    h.field(rusqlite::version().as_bytes());
    h.field(options.table.as_bytes());
    h.field(&[u8::from(options.baseline)]);
    h.field(&[u8::from(require_lock)]);
    h.field(&(files.len() as u64).to_le_bytes());
    for f in files {
        let s = &f.source;
        h.field(&s.version.to_le_bytes());
        h.field(s.name.as_bytes());
        h.field(s.description.as_bytes());
        h.field(s.display_path.as_bytes());
        // The text's SHA-256, which the plan's checksum reuses: the key
        // covers the text without a second pass over it.
        h.field(f.checksum().as_bytes());
        h.optional(
            s.journal_when
                .map(u64::to_le_bytes)
                .as_ref()
                .map(|b| &b[..]),
        );
    }
    h.optional(lock);
    h.optional(journal);
    crate::hash::hex(&h.0.finalize())
}

/// The payload: what the replay decided for each migration, and for a
/// directory's verdict (not a replay image's prefix) its baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    migrations: Vec<CachedMigration>,
    /// A replay image's: the instant its replay's clock stood at
    /// (milliseconds since the Unix epoch).
    clock: Option<i64>,
    baseline: Option<CachedBaseline>,
    /// A verdict's [`crate::Plan::head_schema`] (none in an image's
    /// payload: a resumed replay reads it from the database).
    head_schema: Option<Vec<SchemaObject>>,
}

/// A plan's [`BaselineScript`] or why it has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum CachedBaseline {
    /// The verified script and its statements' spans.
    Built(String, Vec<CachedSpan>),
    Off,
    Because(String),
}

impl CachedBaseline {
    fn of(baseline: &Result<BaselineScript, NoBaseline>) -> Self {
        match baseline {
            Ok(b) => Self::Built(b.sql.clone(), b.statements.iter().map(span).collect()),
            Err(NoBaseline::Off) => Self::Off,
            Err(NoBaseline::Because(why)) => Self::Because(why.clone()),
        }
    }

    /// The baseline, or `None` when a span lies outside its text.
    fn into_baseline(self) -> Option<Result<BaselineScript, NoBaseline>> {
        Some(match self {
            Self::Built(sql, spans) => {
                let statements = statements(&spans, &sql)?;
                Ok(BaselineScript { sql, statements })
            }
            Self::Off => Err(NoBaseline::Off),
            Self::Because(why) => Err(NoBaseline::Because(why)),
        })
    }
}

/// A statement as an entry holds it: `(start, end, line, column, batch,
/// over)`, `over` a range batch's `(limit, table start, table end)` (see
/// [`PlannedStatement`]).
type CachedSpan = (usize, usize, u32, u32, bool, Option<(u32, usize, usize)>);

fn span(s: &PlannedStatement) -> CachedSpan {
    let over = s.over.map(|o| (o.limit, o.table_start, o.table_end));
    (s.start, s.end, s.line, s.column, s.batch, over)
}

/// The statements of `spans`, or `None` when one lies outside `text`.
fn statements(spans: &[CachedSpan], text: &str) -> Option<Vec<PlannedStatement>> {
    spans
        .iter()
        .map(|&(start, end, line, column, batch, over)| {
            let over = over.map(|(limit, table_start, table_end)| Over {
                limit,
                table_start,
                table_end,
            });
            let fits = |a: usize, b: usize| a <= b && text.get(a..b).is_some();
            (fits(start, end) && over.is_none_or(|o| fits(o.table_start, o.table_end))).then_some(
                PlannedStatement {
                    start,
                    end,
                    line,
                    column,
                    batch,
                    over,
                },
            )
        })
        .collect()
}

/// One migration of the payload: what the replay decided of it and nothing
/// that the file gives (its text, checksum, chain value and statements are
/// computed from the file on a hit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CachedMigration {
    /// The file name, checked against the file on a hit.
    name: String,
    /// `(start, end, line, column, batch)` of each statement the replay
    /// ran: the split is the costliest part of a hit (two thirds of it at a
    /// thousand migrations), so the spans (and their batch marks) are
    /// authenticated with the entry rather than computed again, and checked
    /// to lie in the text.
    statements: Vec<CachedSpan>,
    foreign_key_checks: Vec<String>,
    unreproducible: Option<String>,
    /// The classification's findings (see [`crate::Change`]).
    changes: Vec<crate::Change>,
    cost_hints: Vec<String>,
    clock: Option<String>,
}

/// The entry's file name for `key`.
pub(crate) fn entry_name(key: &str) -> String {
    format!("{key}.plan")
}

/// The words of an entry's header before its tag.
fn header_words(key: &str) -> String {
    format!("{MAGIC} {FORMAT} {} {key}", env!("CARGO_PKG_VERSION"))
}

/// A cached verdict: the migrations of the plan, its baseline and its head
/// schema.
pub(crate) type Hit = (
    Vec<CachedPlan>,
    Result<BaselineScript, NoBaseline>,
    Vec<SchemaObject>,
);

/// The plan cached under `key` for `files`, or `None` (a miss) when there
/// is no such entry or it cannot be trusted.
pub(crate) fn lookup(cache: &Cache, key: &str, files: &[LoadedFile]) -> Option<Hit> {
    let bytes = cache.read(&entry_name(key))?;
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let (head, payload) = (bytes.get(..newline)?, bytes.get(newline + 1..)?);
    let (words, tag) = std::str::from_utf8(head).ok()?.rsplit_once(' ')?;
    if words != header_words(key) || !cache.verify(&[words.as_bytes(), payload], tag) {
        return None;
    }
    let mut payload: Payload = serde_json::from_slice(payload).ok()?;
    let baseline = payload.baseline.take()?.into_baseline()?;
    let head_schema = payload.head_schema.take()?;
    Some((verified(payload, files)?, baseline, head_schema))
}

/// The payload's migrations joined with `files`, or `None` when they do not
/// match: another count, another file name.
fn verified(payload: Payload, files: &[LoadedFile]) -> Option<Vec<CachedPlan>> {
    if payload.migrations.len() != files.len() {
        return None;
    }
    payload
        .migrations
        .into_iter()
        .zip(files)
        .map(|(m, file)| {
            let statements = statements(&m.statements, &file.source.text)?;
            (m.name == file.source.name).then_some(CachedPlan {
                statements,
                foreign_key_checks: m.foreign_key_checks,
                unreproducible: m.unreproducible,
                changes: m.changes,
                cost_hints: m.cost_hints,
                clock: m.clock,
            })
        })
        .collect()
}

/// A cached migration, to join with its file (see [`CachedPlan::with`]).
#[derive(Debug)]
pub(crate) struct CachedPlan {
    statements: Vec<PlannedStatement>,
    foreign_key_checks: Vec<String>,
    unreproducible: Option<String>,
    changes: Vec<crate::Change>,
    cost_hints: Vec<String>,
    clock: Option<String>,
}

impl CachedPlan {
    /// The planned migration of `file`, whose checksum and chain value are
    /// `sums` (computed from the file).
    pub(crate) fn with(self, file: LoadedFile, sums: (String, String)) -> PlannedMigration {
        PlannedMigration {
            source: file.source,
            checksum: sums.0,
            chain: sums.1,
            statements: self.statements,
            foreign_key_checks: self.foreign_key_checks,
            unreproducible: self.unreproducible,
            changes: self.changes,
            cost_hints: self.cost_hints,
            clock: self.clock,
        }
    }
}

/// The payload of `migrations`, with the baseline and head schema of
/// `verdict` for a verdict, and the instant of the replay's clock.
fn payload_of(
    migrations: &[PlannedMigration],
    clock: Option<i64>,
    verdict: Option<&Plan>,
) -> Option<Vec<u8>> {
    let payload = Payload {
        clock,
        baseline: verdict.map(|p| CachedBaseline::of(&p.baseline)),
        head_schema: verdict.map(|p| p.head_schema.clone()),
        migrations: migrations
            .iter()
            .map(|m| CachedMigration {
                name: m.source.name.clone(),
                statements: m.statements.iter().map(span).collect(),
                foreign_key_checks: m.foreign_key_checks.clone(),
                unreproducible: m.unreproducible.clone(),
                changes: m.changes.clone(),
                cost_hints: m.cost_hints.clone(),
                clock: m.clock.clone(),
            })
            .collect(),
    };
    serde_json::to_vec(&payload).ok()
}

/// Stores `plan` (a successful check's: its migrations, baseline and head
/// schema) under `key`; silently does nothing when that fails.
pub(crate) fn store(cache: &Cache, key: &str, plan: &Plan) {
    let Some(payload) = payload_of(&plan.migrations, None, Some(plan)) else {
        return;
    };
    let words = header_words(key);
    let Some(tag) = cache.tag(&[words.as_bytes(), &payload]) else {
        return;
    };
    let mut bytes = format!("{words} {tag}\n").into_bytes();
    bytes.extend_from_slice(&payload);
    let _ = cache.write(&entry_name(key), &bytes);
}

/// The first word of a replay image's header.
const IMAGE_MAGIC: &str = "durable-schema-image";

/// The key of the replay image after the first `count` migrations whose
/// last chain value is `chain`: what decides the replay of a prefix, and
/// nothing else. The chain value covers every version and normalized text
/// up to it (so the statements, which the split derives from the text);
/// then this crate's version, source fingerprint and [`FORMAT`], the SQLite
/// version and the tracking table's name (the options). Not in it: the
/// files' names, descriptions and paths (they name migrations in messages,
/// and a stored prefix had none; the cached entries' names are checked
/// against the files on a hit), the journal's `when`, the lock and the
/// locked mode (checked before the replay, on every call).
pub(crate) fn image_key(options: &Options, count: usize, chain: &str) -> String {
    let mut h = KeyHasher(Sha256::new());
    h.field(IMAGE_MAGIC.as_bytes());
    h.field(&FORMAT.to_le_bytes());
    h.field(env!("CARGO_PKG_VERSION").as_bytes());
    h.field(env!("DURABLE_SCHEMA_COMPILER_FINGERPRINT").as_bytes());
    h.field(rusqlite::version().as_bytes());
    h.field(options.table.as_bytes());
    h.field(&(count as u64).to_le_bytes());
    h.field(chain.as_bytes());
    crate::hash::hex(&h.0.finalize())
}

/// The replay image's file name for `key`.
pub(crate) fn image_name(key: &str) -> String {
    format!("{key}.image")
}

/// The words of an image's header before its tag and payload length.
fn image_words(key: &str) -> String {
    format!("{IMAGE_MAGIC} {FORMAT} {} {key}", env!("CARGO_PKG_VERSION"))
}

/// Stores the replay database's `image` after the successful check of
/// `migrations` (the whole directory: one image per success, for the
/// head), with their plan and the instant `clock` the replay's clock stood
/// at, so a later check of the same migrations plus new ones replays only
/// the new ones. Silently does nothing when that fails.
pub(crate) fn store_image(
    cache: &Cache,
    options: &Options,
    migrations: &[PlannedMigration],
    clock: i64,
    image: &[u8],
) {
    let Some(last) = migrations.last() else {
        return;
    };
    let Some(payload) = payload_of(migrations, Some(clock), None) else {
        return;
    };
    let key = image_key(options, migrations.len(), &last.chain);
    let words = image_words(&key);
    let Some(tag) = cache.tag(&[words.as_bytes(), &payload, image]) else {
        return;
    };
    let mut bytes = format!("{words} {tag} {}\n", payload.len()).into_bytes();
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(image);
    if cache.write(&image_name(&key), &bytes).is_ok() {
        prune_images(cache, MAX_IMAGES);
    }
}

/// How many replay images a cache keeps (an image is the whole replay
/// database: megabytes at a thousand migrations).
pub(crate) const MAX_IMAGES: usize = 8;

/// Removes all but the `keep` most recently used images of `cache` (a used
/// image's modification time is renewed, see [`lookup_image`]). Only
/// regular files are looked at, in a directory [`Cache`] checked.
fn prune_images(cache: &Cache, keep: usize) {
    let Ok(entries) = std::fs::read_dir(cache.dir()) else {
        return;
    };
    let mut images: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "image"))
        .filter_map(|p| {
            let meta = std::fs::symlink_metadata(&p).ok()?;
            meta.is_file().then_some((meta.modified().ok()?, p))
        })
        .collect();
    images.sort_by_key(|image| std::cmp::Reverse(image.0));
    for (_, path) in images.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

/// A cached replay image of a prefix of the directory.
#[derive(Debug)]
pub(crate) struct Resume {
    /// The prefix's cached plan, one per migration of the prefix.
    pub(crate) prefix: Vec<CachedPlan>,
    /// The replay database after the prefix.
    pub(crate) image: Vec<u8>,
    /// The instant the replay's clock stood at.
    pub(crate) clock: i64,
}

/// The longest prefix of `files` with a trustworthy replay image in
/// `cache`. `sums` holds each file's checksum and chain value (computed
/// from the files: the image key covers the prefix's last chain value). An
/// image whose header, key, tag or payload does not match, or whose
/// entries' names are not the files', is skipped.
pub(crate) fn lookup_image(
    cache: &Cache,
    options: &Options,
    files: &[LoadedFile],
    sums: &[(String, String)],
) -> Option<Resume> {
    (1..=files.len().min(sums.len())).rev().find_map(|count| {
        let key = image_key(options, count, &sums[count - 1].1);
        let name = image_name(&key);
        let bytes = cache.read(&name)?;
        let resume = read_image(cache, &bytes, &key, &files[..count])?;
        // Used: the last to be pruned.
        let _ = std::fs::File::options()
            .append(true)
            .open(cache.path(&name))
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(resume)
    })
}

/// The image in `bytes`, stored under `key` for `files`, if it verifies.
fn read_image(cache: &Cache, bytes: &[u8], key: &str, files: &[LoadedFile]) -> Option<Resume> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let (head, rest) = (bytes.get(..newline)?, bytes.get(newline + 1..)?);
    let (words, length) = std::str::from_utf8(head).ok()?.rsplit_once(' ')?;
    let (words, tag) = words.rsplit_once(' ')?;
    let length: usize = length.parse().ok()?;
    let (payload, image) = (rest.get(..length)?, rest.get(length..)?);
    if words != image_words(key) || !cache.verify(&[words.as_bytes(), payload, image], tag) {
        return None;
    }
    let payload: Payload = serde_json::from_slice(payload).ok()?;
    let clock = payload.clock?;
    let prefix = verified(payload, files)?;
    Some(Resume {
        prefix,
        image: image.to_vec(),
        clock,
    })
}

#[cfg(test)]
mod attacks;
#[cfg(test)]
pub(crate) mod tests;
