//! `durable-schema status --db FILE`: where a local database stands, by the
//! runtime's own `Schema::status` on the checked migrations, read-only.

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use durable_schema_compiler::{tracking, Lock, Options, Plan};
use durable_schema_runtime::{__ChainLink as ChainLink, Migration, Schema, SchemaState, Status};
use rusqlite::{Connection, OpenFlags};

use crate::{checked, fail, human, term};

/// `s`, alive for the rest of the process (the CLI is short-lived).
/// The statements' spans as the macro embeds them, leaked.
fn leak_spans(statements: &[durable_schema_compiler::PlannedStatement]) -> &'static str {
    leak(&durable_schema_compiler::encode_spans(statements))
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// The runtime's `Schema` for a checked plan, as the macro would embed it:
/// with the foreign-key checks, the drizzle journal's `when`s and the chain
/// links of the lock's `replaces`, so the runtime judges a database exactly
/// as the built code would.
pub(crate) fn schema_of(plan: &Plan, table: &str) -> Result<Schema, String> {
    let replaces = plan.replaces();
    let links = plan.chain_links().map_err(|d| d.to_string())?;
    let migrations: Vec<Migration> = plan
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let text = leak(&m.source.text);
            let statements = leak_spans(&m.statements);
            let checks: Vec<&'static str> = m.foreign_key_checks.iter().map(|t| leak(t)).collect();
            let migration = Migration::__new(
                m.source.version,
                leak(&m.source.name),
                leak(&m.source.description),
                text,
                leak(&m.checksum),
                leak(&m.chain),
                statements,
            )
            .__with_foreign_key_checks(Box::leak(checks.into_boxed_slice()));
            let migration = match m.source.journal_when {
                Some(when) => migration.__with_journal_when(when),
                None => migration,
            };
            let olds: Vec<&'static str> = replaces
                .get(i)
                .map(|olds| olds.iter().map(|o| leak(o)).collect())
                .unwrap_or_default();
            let chain_links: Vec<ChainLink> = links
                .get(i)
                .map(|links| {
                    links
                        .iter()
                        .map(|l| ChainLink::__new(leak(&l.prev), leak(&l.checksum), leak(&l.chain)))
                        .collect()
                })
                .unwrap_or_default();
            migration.__with_replacements(
                Box::leak(olds.into_boxed_slice()),
                Box::leak(chain_links.into_boxed_slice()),
            )
        })
        .collect();
    let table = leak(table);
    Ok(
        Schema::__new(table, false, Box::leak(migrations.into_boxed_slice()))
            .__with_head_query(leak(&tracking::head_query(table))),
    )
}

/// The first 12 hex digits of a checksum.
fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// The status as lines: a summary, then one line per migration, aligned:
/// `applied` (with when), `edited` (the recorded checksum differs from the
/// file's; `replaced` when the lock declares the recorded one replaced),
/// `ahead` (recorded, unknown to the code) and `pending`.
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
    let width = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    for (what, version, name, when, remark) in rows {
        let line = format!("  {what:<8} {version:04}  {name:<width$}  {when}  {remark}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

pub(crate) fn run(db: &Path, dir: &str, options: &Options) -> ExitCode {
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
    if !db.is_file() {
        return fail(format!(
            "`{shown}` is not a database file: it does not exist"
        ));
    }
    // Read-only: status never changes the database (a `wrangler dev` file
    // stays exactly as the object left it).
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(db, flags) {
        Ok(conn) => conn,
        Err(e) => return fail(format!("cannot open `{shown}` read-only: {e}")),
    };
    let schema = match schema_of(&plan, &options.table) {
        Ok(schema) => schema,
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
