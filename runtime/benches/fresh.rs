//! Creating a new object: the executor on an empty database with and
//! without the compile-time baseline, against plain rusqlite running the
//! same files, at 10, 200 and 1000 migrations.
//!
//! The chains come from the compiler's seeded generator
//! (`compiler/tests/common/chain.rs`, seed 2026, as `compiler/benches/check.rs`
//! uses it: tables with foreign keys, CHECKs and indexes, added columns with
//! backfills, triggers, views, seed rows; 1–3 KB per migration). Each chain is
//! written to a temp directory and checked once by
//! `check_dir` with `CacheSetting::Off` (no verdict cache), which also derives and
//! verifies the baseline; the plan is then embedded into two `'static`
//! schemas the way `#[durable_schema]` embeds it (`macros/src/expand.rs`),
//! one with the baseline and one without.
//!
//! Each size runs twice: the chain as generated (`…/N`), and the same chain
//! with the clock in it (`…-clock/N`: `CURRENT_TIMESTAMP` defaults that the
//! seed rows leave out, triggers stamping `updated_at`; see
//! `chain_with_clock`), whose baseline reads the clock where the chain did.
//!
//! - `fresh/chain/N`: `migrate` without a baseline: every migration in its own
//!   transaction, with its tracking row.
//! - `fresh/baseline/N`: `migrate` with the baseline: one transaction running
//!   the baseline script and every version's tracking row.
//! - `fresh/raw/N`: plain rusqlite: each file in its own transaction
//!   (`BEGIN; execute_batch(file); COMMIT`), no tracking.
//!
//! Every iteration gets a new in-memory connection with `PRAGMA foreign_keys =
//! ON` (as on a Durable Object), opened outside the timing. Before timing,
//! the setup checks once that the three paths leave the same database
//! ([`CanonicalDump`], each on a connection whose clock stands at the same
//! instant) and that both executor paths record the same tracking rows, and
//! prints the baseline's size against the chain's.
//!
//! `cargo bench -p durable-schema-runtime --features rusqlite --bench fresh`
//! (a few minutes, most of it the chain and plain runs at 1000, which take
//! seconds per iteration: that group takes criterion's minimum of 10 samples,
//! flat sampling). Results in `runtime/benches/RESULTS.md`.

#[path = "../../compiler/tests/common/chain.rs"]
mod chain;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use durable_schema_compiler::{
    check_dir, runtime_schema, CacheSetting, CanonicalDump, NoBaseline, Options, Plan,
};
use durable_schema_runtime::{Report, Schema};
use durable_schema_workerd::ClockedConnection;
use rusqlite::Connection;

const SIZES: [usize; 3] = [10, 200, 1000];
const SEED: u64 = 2026;
const TABLE: &str = "migrations";

/// The plan as two schemas: with its baseline, and without one (built
/// twice, as two builds of the macro would).
fn schemas(plan: &Plan) -> (Schema, Schema) {
    if let Err(no) = &plan.baseline {
        panic!("the generated chain has no baseline: {no}");
    }
    let with = runtime_schema(plan, TABLE).unwrap();
    let without = Plan {
        baseline: Err(NoBaseline::Off),
        ..plan.clone()
    };
    (with, runtime_schema(&without, TABLE).unwrap())
}

/// A new in-memory database configured like a Durable Object's.
fn fresh() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    conn
}

/// Plain rusqlite: each file's SQL in its own transaction, nothing recorded.
fn raw_apply(conn: &Connection, schema: &Schema) {
    for m in schema.migrations() {
        conn.execute_batch("BEGIN").unwrap();
        conn.execute_batch(m.sql()).unwrap();
        conn.execute_batch("COMMIT").unwrap();
    }
}

/// The tracking rows: version, description, checksum, chain.
fn tracking(conn: &Connection) -> Vec<(i64, String, String, String)> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT version, description, checksum, chain FROM \"{TABLE}\" ORDER BY version"
        ))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A new in-memory database like [`fresh`]'s, its clock standing at
/// 2024-02-29 12:34:56.789 UTC.
fn frozen() -> ClockedConnection {
    let conn = ClockedConnection::open_in_memory(1_709_210_096_789).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    conn
}

/// Outside the timing: both executor paths take the path they should,
/// leave the database plain rusqlite leaves (at one instant of the clock),
/// and record the same rows.
fn verify(n: usize, with: &Schema, without: &Schema) {
    let (by_chain, by_baseline, by_raw) = (frozen(), frozen(), frozen());
    let report = without.migrate(&*by_chain).unwrap();
    assert!(!report.baseline() && report.applied().len() == n);
    let report = with.migrate(&*by_baseline).unwrap();
    assert!(report.baseline(), "the baseline did not run");
    assert_eq!(report.baseline_error(), None);
    assert_eq!(report.applied().len(), n);
    raw_apply(&by_raw, without);

    let dump = |conn: &Connection| CanonicalDump::of(conn, TABLE).unwrap();
    let (chain, baseline, raw) = (dump(&by_chain), dump(&by_baseline), dump(&by_raw));
    assert_eq!(
        chain.difference(&baseline),
        None,
        "chain vs baseline at {n}"
    );
    assert_eq!(chain.difference(&raw), None, "chain vs raw at {n}");
    assert!(chain == baseline && chain == raw);

    let rows = tracking(&by_chain);
    assert_eq!(rows.len(), n);
    assert_eq!(rows, tracking(&by_baseline), "tracking rows at {n}");
}

/// Prints the baseline's size against the chain's.
fn sizes(n: usize, label: &str, schema: &Schema) {
    let baseline = schema.baseline().unwrap();
    let migrations = schema.migrations();
    let text: usize = migrations.iter().map(|m| m.sql().len()).sum();
    let statements: usize = migrations.iter().map(|m| m.statements().len()).sum();
    println!(
        "fresh{label}/{n}: chain {n} migrations, {statements} statements, {:.1} KB; \
         baseline {} statements, {:.1} KB ({:.0} % of the chain's text)",
        text as f64 / 1024.0,
        baseline.statements().len(),
        baseline.sql().len() as f64 / 1024.0,
        100.0 * baseline.sql().len() as f64 / text as f64,
    );
}

/// The timed routine: `migrate` on the iteration's connection; both are
/// dropped after the timing.
fn migrate(schema: Schema) -> impl FnMut(Connection) -> (Connection, Report) {
    move |conn| {
        let report = schema.migrate(&conn).unwrap();
        (conn, report)
    }
}

fn fresh_object(c: &mut Criterion) {
    let dir = chain::Chains::with_clock("fresh", &SIZES, SEED);
    let mut group = c.benchmark_group("fresh");
    for (n, label, chain) in SIZES
        .into_iter()
        .flat_map(|n| [(n, "", format!("m{n}")), (n, "-clock", format!("c{n}"))])
    {
        let plan = check_dir(
            &dir.0,
            &chain,
            &Options::default().with_cache(CacheSetting::Off),
        )
        .unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(plan.version() as usize, n);
        let (with, without) = schemas(&plan);
        verify(n, &with, &without);
        sizes(n, label, &with);

        // The chain and plain runs take about 0.4 s per iteration at 200 and
        // seconds at 1000: flat sampling, criterion's minimum of 10 samples
        // (at 1000 criterion warns that 1 s is too short: each sample is then
        // one iteration, which is the point).
        match n {
            10 => group
                .sampling_mode(SamplingMode::Auto)
                .sample_size(20)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(2)),
            200 => group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(5)),
            _ => group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(100))
                .measurement_time(Duration::from_secs(1)),
        };

        group.bench_with_input(BenchmarkId::new(format!("raw{label}"), n), &n, |b, _| {
            b.iter_batched(
                fresh,
                |conn| {
                    raw_apply(&conn, &without);
                    conn
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_with_input(BenchmarkId::new(format!("chain{label}"), n), &n, |b, _| {
            b.iter_batched(fresh, migrate(without), BatchSize::PerIteration)
        });
        group.bench_with_input(
            BenchmarkId::new(format!("baseline{label}"), n),
            &n,
            |b, _| b.iter_batched(fresh, migrate(with), BatchSize::PerIteration),
        );
    }
    group.finish();
}

criterion_group!(benches, fresh_object);
criterion_main!(benches);
