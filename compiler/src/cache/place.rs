//! Where the verdict cache lives, and why another user cannot steer it.
//!
//! What a hit returns is embedded into every Worker built from the
//! directory (the baseline runs on every new object), so the cache is as
//! trusted as the compiler itself. The threat is another local user of a
//! shared build machine (or a cache directory restored from somewhere
//! else) who plants or rewrites entries. Defences, each one enough to stop
//! a planted entry from being used:
//!
//! - **A place only this user can write.** The default is the user's own
//!   cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux,
//!   `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows), plus
//!   `durable-schema/verdicts` (`scripts/wasm-env.sh` keeps the wasm32
//!   toolchain beside it); never a shared temp directory. The directory is
//!   created `0700`, files `0600`. A directory that is a symbolic link, is
//!   not owned by this user, or is writable by group or others is not
//!   used, nor one below a directory that another user could rename it
//!   out of (an ancestor neither this user's nor root's, or writable by
//!   others without the sticky bit). The check then runs uncached: never
//!   an error (the CLI says why with `--verbose`).
//! - **Entries authenticated with a per-user secret.** `secret` (32 random
//!   bytes, `0600`) in the cache directory keys an HMAC-SHA256 over each
//!   entry; an entry whose tag does not verify is a miss. What is cheap to
//!   recompute (checksums, chain values) is never read from an entry at
//!   all (see `cache.rs`).
//!
//! Off Unix (Windows) there are no owner and mode bits to check: the
//! user's local application data directory is private by its ACL, and
//! only the symbolic-link rule and the secret apply.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The environment variable naming the cache directory (`off` disables it).
pub(crate) const ENV: &str = "DURABLE_SCHEMA_CACHE";

/// The name of the per-user secret in the cache directory.
const SECRET: &str = "secret";

/// How many bytes the secret holds.
const SECRET_LEN: usize = 32;

/// A cache directory that passed every check, with its secret.
pub(crate) struct Cache {
    dir: PathBuf,
    secret: [u8; SECRET_LEN],
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Cache").field("dir", &self.dir).finish()
    }
}

/// Which cache a check uses, or why it uses none.
#[derive(Debug)]
pub(crate) enum Choice {
    /// `DURABLE_SCHEMA_CACHE=off`.
    Off,
    /// No per-user cache directory is known (no home directory).
    NoHome,
    /// The directory cannot be trusted or created: the check runs uncached.
    Unusable {
        /// The directory.
        dir: PathBuf,
        /// Why, as a lowercase phrase naming the offending path.
        why: String,
    },
    /// The cache to use.
    Use(Cache),
}

impl Choice {
    /// The cache to use, if any.
    pub(crate) fn cache(&self) -> Option<&Cache> {
        match self {
            Self::Use(cache) => Some(cache),
            _ => None,
        }
    }
}

/// The default cache directory: the user's cache directory plus
/// `durable-schema/verdicts`, or `None` without a home directory.
pub(crate) fn default_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("durable-schema").join("verdicts"))
}

/// The directory for the value of [`ENV`]: `None` for `off` (no cache),
/// `Some(None)` when the default is wanted but unknown, else the directory.
pub(crate) fn dir_for(value: Option<&std::ffi::OsStr>) -> Option<Option<PathBuf>> {
    match value {
        Some(v) if v.eq_ignore_ascii_case("off") => None,
        Some(v) if !v.is_empty() => Some(Some(PathBuf::from(v))),
        _ => Some(default_dir()),
    }
}

/// The cache this process uses: [`ENV`]'s directory or the default,
/// opened with [`Cache::open`].
pub(crate) fn from_env() -> Choice {
    match dir_for(std::env::var_os(ENV).as_deref()) {
        None => Choice::Off,
        Some(None) => Choice::NoHome,
        Some(Some(dir)) => Cache::open(&dir),
    }
}

impl Cache {
    /// Opens (creating it `0700` when missing) the cache directory `dir` and
    /// its secret, if both pass the checks in the module docs.
    pub(crate) fn open(dir: &Path) -> Choice {
        match Self::try_open(dir) {
            Ok(cache) => Choice::Use(cache),
            Err(why) => Choice::Unusable {
                dir: dir.to_owned(),
                why,
            },
        }
    }

    fn try_open(dir: &Path) -> Result<Self, String> {
        let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if std::fs::symlink_metadata(&dir).is_err() {
            create_private_dir(&dir)?;
        }
        secure::check_dir(&dir)?;
        let secret = read_or_create_secret(&dir)?;
        Ok(Self { dir, secret })
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file `name` in the cache directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The HMAC-SHA256 of `parts` under this user's secret, each part
    /// length-prefixed (so no two part lists tag alike).
    fn mac(&self, parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
        // HMAC takes a key of any length: this never fails.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).ok()?;
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        Some(mac)
    }

    /// The tag of `parts` (hex), to store beside them.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Option<String> {
        Some(crate::hash::hex(&self.mac(parts)?.finalize().into_bytes()))
    }

    /// Whether `tag` (hex) is the tag of `parts` (compared in constant time
    /// by the `hmac` crate).
    pub(crate) fn verify(&self, parts: &[&[u8]], tag: &str) -> bool {
        let Some(tag) = unhex(tag) else {
            return false;
        };
        self.mac(parts)
            .is_some_and(|mac| mac.verify_slice(&tag).is_ok())
    }

    /// The bytes of the regular file `name` in the cache, never following a
    /// symbolic link, or `None`.
    pub(crate) fn read(&self, name: &str) -> Option<Vec<u8>> {
        let mut file = secure::open_regular(&self.path(name)).ok()?;
        // Sized from the file, as `fs::read` does (an entry is megabytes at
        // a thousand migrations).
        let size = file.metadata().map_or(0, |m| m.len());
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    /// Writes `bytes` as `name`, readable by this user only: to a new
    /// temporary file first, then renamed into place, so a reader sees the
    /// old entry or the new one, never a part.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let temp = self.path(&format!(
            ".tmp-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let result = secure::create_new_private(&temp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| std::fs::rename(&temp, self.path(name)));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }
}

/// The bytes of the lowercase hex string `hex`.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Creates `dir` `0700` (its missing parents with the default mode).
fn create_private_dir(dir: &Path) -> Result<(), String> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    }
    match secure::create_dir_private(dir) {
        Ok(()) => Ok(()),
        // Another process made it meanwhile: the checks decide.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create `{}`: {e}", dir.display())),
    }
}

/// The secret of `dir`, created (32 random bytes, `0600`) when missing.
fn read_or_create_secret(dir: &Path) -> Result<[u8; SECRET_LEN], String> {
    let path = dir.join(SECRET);
    for _ in 0..2 {
        match secure::open_regular(&path) {
            Ok(file) => return read_secret(&path, file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_secret(dir, &path)?,
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }
    Err(format!("cannot create `{}`", path.display()))
}

fn read_secret(path: &Path, mut file: std::fs::File) -> Result<[u8; SECRET_LEN], String> {
    secure::check_private_file(path, &file)?;
    let len = file.metadata().map_or(0, |m| m.len());
    if len != SECRET_LEN as u64 {
        return Err(format!("`{}` is not {SECRET_LEN} bytes", path.display()));
    }
    let mut secret = [0; SECRET_LEN];
    let mut rest = Vec::new();
    file.read_exact(&mut secret)
        .and_then(|()| file.read_to_end(&mut rest))
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if !rest.is_empty() {
        return Err(format!("`{}` is not {SECRET_LEN} bytes", path.display()));
    }
    Ok(secret)
}

/// Writes a new secret to a private temporary file, then links it as
/// `path`, which fails if another process linked its own first (then that
/// one is read): a reader never sees a partly written secret.
fn create_secret(dir: &Path, path: &Path) -> Result<(), String> {
    let mut secret = [0; SECRET_LEN];
    getrandom::fill(&mut secret).map_err(|e| format!("no random bytes for the secret: {e}"))?;
    let temp = dir.join(format!(".secret-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let written = secure::create_new_private(&temp)
        .and_then(|mut f| f.write_all(&secret).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create `{}`: {e}", path.display())),
    }
}

/// The metadata of `dir`, a directory itself (not a symbolic link to one).
fn real_dir(dir: &Path) -> Result<std::fs::Metadata, String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("`{}` is a symbolic link", dir.display()));
    }
    if !meta.is_dir() {
        return Err(format!("`{}` is not a directory", dir.display()));
    }
    Ok(meta)
}

#[cfg(unix)]
mod secure {
    //! The owner, mode and symbolic-link checks.

    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    /// The effective user id of this process.
    fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    pub(super) fn create_dir_private(dir: &Path) -> std::io::Result<()> {
        std::fs::DirBuilder::new().mode(0o700).create(dir)
    }

    /// `dir` is a directory (not a link to one), owned by this user, not
    /// writable by group or others, and no ancestor lets another user
    /// replace it.
    pub(super) fn check_dir(dir: &Path) -> Result<(), String> {
        let meta = super::real_dir(dir)?;
        let me = euid();
        if meta.uid() != me {
            return Err(format!(
                "`{}` is owned by uid {}, not by this user (uid {me})",
                dir.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "`{}` is writable by group or others (mode {:o})",
                dir.display(),
                meta.mode() & 0o7777
            ));
        }
        // Whoever can write an ancestor can move the cache away and put
        // their own in its place: allow only this user's and root's
        // ancestors, writable by others only with the sticky bit (/tmp).
        let parent = dir.parent().unwrap_or(dir);
        let real =
            std::fs::canonicalize(parent).map_err(|e| format!("`{}`: {e}", parent.display()))?;
        for ancestor in real.ancestors() {
            let meta = std::fs::metadata(ancestor)
                .map_err(|e| format!("`{}`: {e}", ancestor.display()))?;
            let owner_ok = meta.uid() == me || meta.uid() == 0;
            let sticky = meta.mode() & 0o1000 != 0;
            if !owner_ok || (meta.mode() & 0o022 != 0 && !sticky) {
                return Err(format!(
                    "`{}`, above the cache, can be changed by another user (owner uid {}, mode {:o})",
                    ancestor.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                ));
            }
        }
        Ok(())
    }

    /// Opens `path` for reading without following a symbolic link; only a
    /// regular file.
    pub(super) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(file)
    }

    /// Creates `path`, which must not exist, readable and writable by this
    /// user only.
    pub(super) fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // The mode given to open is masked by the umask; 0600 is already
        // the least, but say it explicitly.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }

    /// The opened file is this user's and private to them.
    pub(super) fn check_private_file(path: &Path, file: &std::fs::File) -> Result<(), String> {
        let meta = file
            .metadata()
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        if meta.uid() != euid() || meta.mode() & 0o077 != 0 {
            return Err(format!(
                "`{}` is not private to this user (owner uid {}, mode {:o})",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod secure {
    //! Without Unix owners and modes: only the symbolic-link rule.

    use std::path::Path;

    pub(super) fn create_dir_private(dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)
    }

    pub(super) fn check_dir(dir: &Path) -> Result<(), String> {
        super::real_dir(dir).map(drop)
    }

    pub(super) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
        if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
            return Err(std::io::Error::other("a symbolic link"));
        }
        let file = std::fs::File::open(path)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(file)
    }

    pub(super) fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(path)
    }

    pub(super) fn check_private_file(_: &Path, _: &std::fs::File) -> Result<(), String> {
        Ok(())
    }
}
