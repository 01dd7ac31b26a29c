//! `durable-schema status --db FILE`: where a local database stands, by the
//! runtime's own `Schema::status` on the checked migrations, read-only.

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use durable_schema_compiler::{runtime_schema, Lock, Options, Plan};
use durable_schema_runtime::{SchemaState, Status};
use rusqlite::{Connection, OpenFlags};

use crate::{checked, fail, human, term};

/// The first 12 hex digits of a checksum.
fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// The status as lines: a summary, then one line per migration, aligned:
/// `applied` (with when), `edited` (the recorded checksum differs from the
/// file's; `replaced` when the lock declares the recorded one replaced),
/// `ahead` (recorded, unknown to the code) and `pending`; then `failed`, the
/// failure record a wake-up left (attempts, when, the error, when the next
/// attempt is allowed).
pub(crate) fn render(
    db: &str,
    dir: &str,
    status: &Status,
    plan: &Plan,
    lock: Option<&Lock>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`{db}`: {}: database at version {}, `{dir}` at version {}",
        status.state(),
        status.db_version(),
        status.code_version()
    );
    // (what, version, name, when applied, remark), then aligned.
    let mut rows: Vec<(&str, u32, String, &str, String)> = Vec::new();
    for row in status.applied() {
        let version = row.version();
        let code = plan
            .migrations
            .get(
                usize::try_from(version)
                    .unwrap_or(usize::MAX)
                    .wrapping_sub(1),
            )
            .filter(|m| m.source.version == version);
        let when = row.applied_at();
        rows.push(match (code, row.checksum()) {
            (None, _) => (
                "ahead",
                version,
                row.description().to_owned(),
                when,
                format!("not in `{dir}`"),
            ),
            (Some(m), Some(sum)) if sum != m.checksum => {
                let replaced = lock
                    .and_then(|l| l.entry(version))
                    .is_some_and(|e| e.replaces.iter().any(|old| old == sum));
                let (what, why) = if replaced {
                    ("replaced", "declared in the lock")
                } else {
                    ("edited", "edited since it was applied")
                };
                let remark = format!(
                    "recorded {}, file {}: {why}",
                    short(sum),
                    short(&m.checksum)
                );
                (what, version, m.source.name.clone(), when, remark)
            }
            (Some(m), _) => (
                "applied",
                version,
                m.source.name.clone(),
                when,
                String::new(),
            ),
        });
    }
    for m in status.pending() {
        rows.push((
            "pending",
            m.version(),
            m.name().to_owned(),
            "",
            String::new(),
        ));
    }
    if let Some(failure) = status.failure() {
        let name = failure.file().unwrap_or("-").to_owned();
        rows.push(("failed", failure.version(), name, "", failure.to_string()));
    }
    let width = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    for (what, version, name, when, remark) in rows {
        let detail = [when, remark.as_str()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("  ");
        let line = format!("  {what:<8} {version:04}  {name:<width$}  {detail}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// `retry_after`: the seconds the code waits before re-running a failed
/// migration (`None`: the attribute's default), for when the next attempt
/// is allowed.
pub(crate) fn run(db: &Path, dir: &str, options: &Options, retry_after: Option<u32>) -> ExitCode {
    let shown = db.display().to_string();
    let plan = match checked(dir, options, false) {
        Ok(plan) => plan,
        Err(errors) => {
            human::eprint(&errors);
            eprintln!();
            return fail(format!(
                "no status of `{shown}`: fix the problems of `{dir}` above first"
            ));
        }
    };
    // `is_file` alone called a directory missing.
    let why = match std::fs::metadata(db) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) if meta.is_dir() => Some("it is a directory".to_owned()),
        Ok(_) => Some("it is not a regular file".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("it does not exist".to_owned()),
        Err(e) => Some(format!("it cannot be read: {e}")),
    };
    if let Some(why) = why {
        return fail(format!("`{shown}` is not a database file: {why}"));
    }
    // Read-only: status never changes the database (a `wrangler dev` file
    // stays exactly as the object left it).
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(db, flags) {
        Ok(conn) => conn,
        Err(e) => return fail(format!("cannot open `{shown}` read-only: {e}")),
    };
    let schema = match runtime_schema(&plan, &options.table) {
        Ok(schema) => match retry_after {
            Some(seconds) => schema.__with_retry_after(seconds),
            None => schema,
        },
        Err(e) => return fail(e),
    };
    let status = match schema.status(&conn) {
        Ok(status) => status,
        Err(e) => return fail(format!("`{shown}`: {e}")),
    };
    term::print(&render(&shown, dir, &status, &plan, plan.lock.as_ref()));
    if matches!(status.state(), SchemaState::Diverged { .. }) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
