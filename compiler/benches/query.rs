//! What a checked query (`query!`) costs at compile time, on a generated
//! chain of 200 migrations (`tests/common/chain.rs`) with the verdict cache
//! warm, as the macro pays it for each query:
//!
//! - `query/per-query/200`: `check_dir` (a cache hit: reading, normalizing
//!   and hashing the files, reading the entry) then `describe` against the
//!   head database, which the process already built: what every `query!`
//!   would cost without the plan's memo. Goal: at most 5 ms per query.
//! - `query/per-query-memoized/200`: what the macro pays: `query::plan`,
//!   the plan memoized in the process while the directory's files keep
//!   their names, lengths and modification times (listing the directory),
//!   then `describe`.
//! - `query/describe/200`: the prepare and the description alone.
//! - `query/first/200`: building the head database from the plan's head
//!   schema, paid once per rustc run and head (the first `query!`).
//!
//! `cargo bench -p durable-schema-compiler --bench query`.

#[path = "../tests/common/chain.rs"]
mod chain;

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use durable_schema_compiler::query::{self, describe, HeadDb};
use durable_schema_compiler::{check_dir, CacheSetting, Options, Plan};

const N: usize = 200;
const SEED: u64 = 2026;

fn options(cache: &Path) -> Options {
    Options::default().with_cache(CacheSetting::In(cache.to_owned()))
}

fn plan(base: &Path, cache: &Path) -> Plan {
    check_dir(base, &format!("m{N}"), &options(cache)).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// A query over the first table the chain created, with a parameter
/// compared with its key and a join to itself.
fn sql(plan: &Plan) -> String {
    let table = &plan
        .head_schema
        .iter()
        .find(|o| o.kind == "table")
        .expect("the chain creates tables")
        .name;
    format!(
        "SELECT a.id, b.id AS other, count(*) AS n FROM {table} a LEFT JOIN {table} b ON b.id = a.id WHERE a.id > ? GROUP BY a.id"
    )
}

fn bench(c: &mut Criterion) {
    let chains = chain::Chains::new("query", &[N], SEED);
    let base = chains.0.as_path();
    let cache = base.join("cache");
    // Warm: the verdict is stored, and the next check is a hit.
    let plan = plan(base, &cache);
    let sql = sql(&plan);
    let table = "migrations";
    describe(&plan, table, &sql).unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("query");
    group.bench_function(format!("per-query/{N}"), |b| {
        b.iter(|| {
            let plan = check_dir(base, &format!("m{N}"), &options(&cache)).unwrap();
            describe(&plan, table, &sql).unwrap().columns.len()
        });
    });
    group.bench_function(format!("per-query-memoized/{N}"), |b| {
        b.iter(|| {
            let plan = query::plan(base, &format!("m{N}"), &options(&cache)).unwrap();
            describe(&plan, table, &sql).unwrap().columns.len()
        });
    });
    group.bench_function(format!("describe/{N}"), |b| {
        b.iter(|| describe(&plan, table, &sql).unwrap().columns.len());
    });
    group.bench_function(format!("first/{N}"), |b| {
        b.iter(|| HeadDb::new(&plan.head_schema, table).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
