//! A clock that stands still: an in-memory connection whose `'now'` (and
//! `CURRENT_TIMESTAMP`, `unixepoch()`, `julianday()`, ...) is an instant the
//! caller sets, so that two databases built at different times hold the same
//! values, and one built twice at two chosen instants shows which values
//! came from the clock.
//!
//! SQLite reads the current time from the connection's VFS
//! (`xCurrentTimeInt64`, once per statement). [`ClockedConnection`] opens
//! its database on a VFS of its own: a copy of the default one (the unix
//! VFS, which an in-memory database uses only for temporary files) whose
//! two clock methods return the set instant. The VFS is registered under a
//! name of its own while the connection lives, and unregistered after the
//! connection is closed.
//!
//! ```
//! use durable_schema_workerd::ClockedConnection;
//!
//! // 2024-02-29 12:34:56.789 UTC.
//! let conn = ClockedConnection::open_in_memory(1_709_210_096_789)?;
//! let now: String = conn.query_row("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')", [], |r| r.get(0))?;
//! assert_eq!(now, "2024-02-29 12:34:56.789");
//! conn.set_clock(0);
//! let now: String = conn.query_row("SELECT CURRENT_TIMESTAMP", [], |r| r.get(0))?;
//! assert_eq!(now, "1970-01-01 00:00:00");
//! # Ok::<(), rusqlite::Error>(())
//! ```

use std::ffi::{c_int, CString};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rusqlite::{ffi, Connection, OpenFlags};

/// Milliseconds from the Julian day number 0 to the Unix epoch, as SQLite's
/// unix VFS counts them (`unixEpoch` in `os_unix.c`).
const UNIX_EPOCH_JULIAN_MS: i64 = 210_866_760_000_000;

/// The VFS and the instant its clock returns. `vfs` comes first in a
/// `repr(C)` struct so the VFS pointer SQLite hands to the clock methods is
/// also a pointer to the whole.
#[repr(C)]
struct Frozen {
    vfs: ffi::sqlite3_vfs,
    /// The instant, in milliseconds since the Unix epoch.
    unix_ms: AtomicI64,
    /// The VFS's name, which `vfs.zName` points into.
    _name: CString,
}

/// A registered frozen VFS, unregistered when dropped.
struct FrozenVfs(Box<Frozen>);

// SAFETY: the raw pointers of the VFS struct point at the default VFS's
// static data and at `_name`, which live as long as `Frozen`; SQLite only
// reads them (under its own mutex for the VFS list), and the instant is an
// atomic.
unsafe impl Send for FrozenVfs {}
// SAFETY: as for `Send`: nothing in it is written but the atomic.
unsafe impl Sync for FrozenVfs {}

/// `xCurrentTimeInt64`: the frozen instant as a Julian day in milliseconds.
unsafe extern "C" fn current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    // SAFETY: SQLite calls this only with the VFS it was registered with,
    // the first field of a live `Frozen` (repr(C)), and a valid `out`.
    unsafe {
        let frozen = &*vfs.cast::<Frozen>();
        *out = frozen.unix_ms.load(Ordering::Relaxed) + UNIX_EPOCH_JULIAN_MS;
    }
    ffi::SQLITE_OK
}

/// `xCurrentTime`: the frozen instant as a fractional Julian day.
unsafe extern "C" fn current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let mut ms = 0;
    // SAFETY: as for `current_time_int64`, with a valid local for its out.
    unsafe {
        current_time_int64(vfs, &mut ms);
        *out = ms as f64 / 86_400_000.0;
    }
    ffi::SQLITE_OK
}

impl FrozenVfs {
    /// Registers a copy of the default VFS whose clock reads `unix_ms`.
    fn register(unix_ms: i64) -> rusqlite::Result<Self> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let name = CString::new(format!("durable-schema-frozen-clock-{serial}"))
            .map_err(|_| failure(ffi::SQLITE_MISUSE))?;
        // SAFETY: `sqlite3_vfs_find(NULL)` initializes SQLite and returns
        // the default VFS (static, never freed) or NULL.
        let default = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
        if default.is_null() {
            return Err(failure(ffi::SQLITE_ERROR));
        }
        // SAFETY: `default` is a valid VFS; copying it copies its methods and
        // its app data (the unix VFS's locking-style finder), which stay
        // valid for the life of the process.
        let mut vfs = unsafe { *default };
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = name.as_ptr();
        vfs.iVersion = vfs.iVersion.max(2);
        vfs.xCurrentTime = Some(current_time);
        vfs.xCurrentTimeInt64 = Some(current_time_int64);
        let mut frozen = Box::new(Frozen {
            vfs,
            unix_ms: AtomicI64::new(unix_ms),
            _name: name,
        });
        // SAFETY: the VFS lives in the box until `drop` unregisters it, and
        // its name (owned by the box) does not move with it.
        let rc = unsafe { ffi::sqlite3_vfs_register(&mut frozen.vfs, 0) };
        if rc != ffi::SQLITE_OK {
            return Err(failure(rc));
        }
        Ok(Self(frozen))
    }

    fn name(&self) -> &str {
        self.0._name.to_str().unwrap_or_default()
    }
}

impl Drop for FrozenVfs {
    fn drop(&mut self) {
        // SAFETY: registered in `register`; the connection opened on it was
        // closed before (see `ClockedConnection`'s field order).
        unsafe {
            ffi::sqlite3_vfs_unregister(&mut self.0.vfs);
        }
    }
}

fn failure(code: c_int) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
}

/// The current time in milliseconds since the Unix epoch (0 before it).
pub fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An in-memory connection whose clock stands at an instant of the
/// caller's (see the module docs). It dereferences to the
/// [`Connection`]; configure it like any other (for example with
/// [`configure`](crate::configure)).
pub struct ClockedConnection {
    // Declared first: the connection is closed before its VFS goes.
    conn: Connection,
    vfs: FrozenVfs,
}

impl std::fmt::Debug for ClockedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockedConnection")
            .field("vfs", &self.vfs.name())
            .field("clock", &self.clock())
            .finish()
    }
}

impl ClockedConnection {
    /// Opens an in-memory database (the flags of
    /// [`Connection::open_in_memory`]) whose clock reads `unix_ms`,
    /// milliseconds since the Unix epoch.
    pub fn open_in_memory(unix_ms: i64) -> rusqlite::Result<Self> {
        let vfs = FrozenVfs::register(unix_ms)?;
        let conn = Connection::open_in_memory_with_flags_and_vfs(OpenFlags::default(), vfs.name())?;
        Ok(Self { conn, vfs })
    }

    /// The instant the clock reads, in milliseconds since the Unix epoch.
    pub fn clock(&self) -> i64 {
        self.vfs.0.unix_ms.load(Ordering::Relaxed)
    }

    /// Sets the clock to `unix_ms` for the statements that start from now
    /// on (SQLite reads it once per statement).
    pub fn set_clock(&self, unix_ms: i64) {
        self.vfs.0.unix_ms.store(unix_ms, Ordering::Relaxed);
    }
}

impl std::ops::Deref for ClockedConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for ClockedConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(conn: &Connection, expr: &str) -> rusqlite::types::Value {
        conn.query_row(&format!("SELECT {expr}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn every_clock_function_reads_the_set_instant() {
        // 2001-02-03 04:05:06.007 UTC.
        let conn = ClockedConnection::open_in_memory(981_173_106_007).unwrap();
        use rusqlite::types::Value::{Integer, Real, Text};
        for (expr, expected) in [
            ("CURRENT_TIMESTAMP", Text("2001-02-03 04:05:06".into())),
            ("CURRENT_DATE", Text("2001-02-03".into())),
            ("CURRENT_TIME", Text("04:05:06".into())),
            ("datetime('now')", Text("2001-02-03 04:05:06".into())),
            ("date()", Text("2001-02-03".into())),
            ("strftime('%s', 'now')", Text("981173106".into())),
            ("strftime('%f', 'now')", Text("06.007".into())),
            ("unixepoch()", Integer(981_173_106)),
            ("julianday('now')", Real(2_451_943.670_208_414_6)),
        ] {
            assert_eq!(now(&conn, expr), expected, "{expr}");
        }
        conn.set_clock(981_173_106_007 + 86_400_000);
        assert_eq!(now(&conn, "date('now')"), Text("2001-02-04".into()));
    }

    #[test]
    fn connections_keep_their_own_clocks() {
        let a = ClockedConnection::open_in_memory(0).unwrap();
        let b = ClockedConnection::open_in_memory(86_400_000).unwrap();
        assert_eq!(
            now(&a, "CURRENT_DATE"),
            rusqlite::types::Value::Text("1970-01-01".into())
        );
        assert_eq!(
            now(&b, "CURRENT_DATE"),
            rusqlite::types::Value::Text("1970-01-02".into())
        );
        // A configured connection (limits, authorizer) keeps the clock.
        let rules = crate::configure(&a, None).unwrap();
        a.execute_batch(
            "CREATE TABLE t (at TEXT DEFAULT CURRENT_TIMESTAMP); INSERT INTO t DEFAULT VALUES",
        )
        .unwrap();
        assert_eq!(rules.take_denial(), None);
        assert_eq!(
            now(&a, "(SELECT at FROM t)"),
            rusqlite::types::Value::Text("1970-01-01 00:00:00".into())
        );
        // The VFS is gone with its connection, and others work on.
        let name = a.vfs.name().to_owned();
        drop(a);
        let c_name = CString::new(name).unwrap();
        // SAFETY: a lookup by a valid C string.
        let found = unsafe { ffi::sqlite3_vfs_find(c_name.as_ptr()) };
        assert!(found.is_null());
        assert_eq!(
            now(&b, "CURRENT_DATE"),
            rusqlite::types::Value::Text("1970-01-02".into())
        );
    }
}
