//! A checked plan as the runtime's [`Schema`] value, built at run time: what
//! the macro embeds as constants (`macros/src/expand.rs`), for tools and
//! tests that judge a database as the built code would without building it
//! (the CLI's `status`, benchmarks). Its strings and slices are leaked, so
//! it is for short-lived processes and tests, never for a loop.

use durable_schema_runtime::packed::{self, Entry};
use durable_schema_runtime::{Baseline, Schema};

use crate::{encode_spans, tracking, Plan, PlannedStatement, ReplacedLink};

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// Every migration's metadata packed in one string, as the macro embeds it
/// and the runtime decodes it (`durable_schema_runtime::packed`); `links`
/// are [`Plan::replaced_links`].
pub fn pack_migrations(plan: &Plan, links: &[Vec<ReplacedLink>]) -> String {
    let replaces = plan.replaces();
    let findings: Vec<String> = plan.migrations.iter().map(|m| m.findings()).collect();
    let entries: Vec<Entry<'_>> = plan
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| Entry {
            version: m.source.version,
            name: &m.source.name,
            description: &m.source.description,
            checksum: &m.checksum,
            chain: &m.chain,
            spans: m.statements.iter().map(PlannedStatement::span).collect(),
            journal_when: m.source.journal_when,
            foreign_key_checks: m.foreign_key_checks.iter().map(String::as_str).collect(),
            replaces: replaces
                .get(i)
                .map(|r| r.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            links: links
                .get(i)
                .map(|l| {
                    l.iter()
                        .map(|l| (l.prev.as_str(), l.checksum.as_str(), l.chain.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
            class: m.class(),
            findings: findings.get(i).map_or("", String::as_str),
        })
        .collect();
    packed::encode(&entries)
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
/// use durable_schema_compiler::{check_dir, runtime_schema, CacheSetting, Options};
///
/// let plan = check_dir(&dir, "m", &Options::default().with_cache(CacheSetting::Off)).unwrap();
/// let schema = runtime_schema(&plan, "migrations").unwrap();
/// assert_eq!(schema.version(), 1);
/// assert!(schema.baseline().is_some());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn runtime_schema(plan: &Plan, table: &str) -> Result<Schema, String> {
    let links = plan.replaced_links().map_err(|d| d.to_string())?;
    // Through the packed form the macro embeds, so what tools and tests
    // judge with is what the built code decodes.
    let meta = leak(&pack_migrations(plan, &links));
    let texts: Vec<&'static str> = plan
        .migrations
        .iter()
        .map(|m| leak(&m.source.text))
        .collect();
    // Decoded as the built code decodes it; an error takes a bug in the
    // codec, which this reports rather than judging with fewer migrations.
    let migrations = packed::decode(Box::leak(texts.into_boxed_slice()), meta)
        .map_err(|e| format!("the packed migrations do not decode: {e}"))?;
    let table = leak(table);
    let schema = Schema::__new(table, false, Box::leak(migrations.into_boxed_slice()))
        .__with_head_query(leak(&tracking::head_query(table)));
    Ok(match &plan.baseline {
        Ok(b) => {
            let baseline = Baseline::__new(leak(&b.sql), leak(&encode_spans(&b.statements)));
            schema.__with_baseline(Box::leak(Box::new(baseline)))
        }
        Err(no) => schema.__without_baseline(leak(&no.to_string())),
    })
}
