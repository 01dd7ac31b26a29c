//! A checked plan as the runtime's [`Schema`] value, built at run time: what
//! the macro embeds as constants (`macros/src/expand.rs`), for tools and
//! tests that judge a database as the built code would without building it
//! (the CLI's `status`, benchmarks). Its strings and slices are leaked, so
//! it is for short-lived processes and tests, never for a loop.

use durable_schema_runtime::{__ChainLink as ChainLink, Baseline, Migration, Schema};

use crate::{encode_spans, tracking, Plan};

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

fn leak_all<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

/// `plan` as the runtime's [`Schema`] with tracking table `table`: every
/// migration with its statements, foreign-key checks, drizzle journal
/// `when` and the chain links of the lock's `replaces`, and the baseline
/// (or its note): a caller that cuts the plan's migrations must drop the
/// baseline, which creates the whole chain's state. An error when the
/// lock's `replaces` allow too many histories (as the macro reports it).
/// Leaks what it builds.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ds-runtime-schema-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(dir.join("m")).unwrap();
/// # std::fs::write(dir.join("m/0001_init.sql"), "CREATE TABLE t (x);").unwrap();
/// use durable_schema_compiler::{check_dir_cached_in, runtime_schema, Options};
///
/// let plan = check_dir_cached_in(&dir, "m", &Options::default(), None).unwrap();
/// let schema = runtime_schema(&plan, "migrations").unwrap();
/// assert_eq!(schema.version(), 1);
/// assert!(schema.baseline().is_some());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn runtime_schema(plan: &Plan, table: &str) -> Result<Schema, String> {
    let replaces = plan.replaces();
    let links = plan.chain_links().map_err(|d| d.to_string())?;
    let migrations: Vec<Migration> = plan
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let checks = m.foreign_key_checks.iter().map(|t| leak(t)).collect();
            let migration = Migration::__new(
                m.source.version,
                leak(&m.source.name),
                leak(&m.source.description),
                leak(&m.source.text),
                leak(&m.checksum),
                leak(&m.chain),
                leak(&encode_spans(&m.statements)),
            )
            .__with_foreign_key_checks(leak_all(checks));
            let migration = match m.source.journal_when {
                Some(when) => migration.__with_journal_when(when),
                None => migration,
            };
            let olds = replaces
                .get(i)
                .map(|olds| olds.iter().map(|o| leak(o)).collect())
                .unwrap_or_default();
            let chain_links = links
                .get(i)
                .map(|links| {
                    links
                        .iter()
                        .map(|l| ChainLink::__new(leak(&l.prev), leak(&l.checksum), leak(&l.chain)))
                        .collect()
                })
                .unwrap_or_default();
            migration.__with_replacements(leak_all(olds), leak_all(chain_links))
        })
        .collect();
    let table = leak(table);
    let schema = Schema::__new(table, false, leak_all(migrations))
        .__with_head_query(leak(&tracking::head_query(table)));
    Ok(match &plan.baseline {
        Ok(b) => {
            let baseline = Baseline::__new(leak(&b.sql), leak(&encode_spans(&b.statements)));
            schema.__with_baseline(Box::leak(Box::new(baseline)))
        }
        Err(no) => schema.__without_baseline(leak(&no.to_string())),
    })
}
