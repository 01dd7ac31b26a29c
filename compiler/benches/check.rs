//! What the `#[durable_schema]` attribute costs at compile time:
//! `check_dir` on generated chains of 10, 200 and 1000 migrations
//! (`tests/common/chain.rs`: tables with foreign keys, CHECKs and indexes,
//! added columns with backfills, triggers, views, seed rows; 1–3 KB each).
//!
//! - `cold/*`: no verdict cache (`DURABLE_SCHEMA_CACHE=off`): loading plus
//!   the full replay, what every build paid before the cache.
//! - `hit/*`: the cache holds the directory's verdict: loading, normalizing
//!   and hashing the files, reading the entry.
//! - `one-new/*`: a new migration on top of N - 1 checked ones: the cache
//!   holds the replay image of the N - 1 (stored by their check), not the
//!   directory's verdict: loading, finding the image, restoring it,
//!   replaying the new migration, storing the new verdict and image.
//!
//! `cargo bench -p durable-schema-compiler --bench check` (results in
//! `compiler/benches/RESULTS.md`). The cold run at 1000 takes seconds per
//! iteration, so its group takes the minimum sample (10, flat sampling).

#[path = "../tests/common/chain.rs"]
mod chain;

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use durable_schema_compiler::{check_dir, CacheSetting, Options};

const SIZES: [usize; 3] = [10, 200, 1000];
const SEED: u64 = 2026;
const ONE_NEW: [usize; 2] = [200, 1000];

/// The chains of every size, and for the one-new case the chain of `n`
/// without its last migration (`new{n}`) and that migration (`last{n}.sql`).
struct TempDir(chain::Chains);

impl TempDir {
    fn new() -> Self {
        let chains = chain::Chains::new("check", &SIZES, SEED);
        let dir = &chains.0;
        for n in ONE_NEW {
            // The chain of `m{n}`, its last migration still to come.
            let prefix = dir.join(format!("new{n}"));
            chain::write_chain(&prefix, n, SEED);
            let last = chain::chain(n, SEED).pop().unwrap().0;
            std::fs::rename(prefix.join(&last), dir.join(format!("last{n}.sql"))).unwrap();
        }
        Self(chains)
    }

    fn path(&self) -> &Path {
        &self.0 .0
    }

    fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }
}

fn check(base: &Path, n: usize, cache: Option<&Path>) -> usize {
    check_in(base, &format!("m{n}"), n, cache)
}

fn check_in(base: &Path, dir: &str, n: usize, cache: Option<&Path>) -> usize {
    let plan = check_dir(
        base,
        dir,
        &Options::default()
            .with_cache(cache.map_or(CacheSetting::Off, |c| CacheSetting::In(c.to_owned()))),
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(plan.version() as usize, n);
    plan.migrations.len()
}

/// The files of `cache`.
fn entries(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = TempDir::new();
    let cache = dir.cache();

    let mut hit = c.benchmark_group("hit");
    hit.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        check(dir.path(), n, Some(&cache)); // the miss that fills the cache
        hit.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| check(dir.path(), n, Some(&cache)))
        });
    }
    hit.finish();

    let mut one_new = c.benchmark_group("one-new");
    one_new
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for n in ONE_NEW {
        let cache = dir.path().join(format!("cache-new{n}"));
        let name = format!("new{n}");
        // The check of the N - 1 stores their image; then the N-th arrives.
        check_in(dir.path(), &name, n - 1, Some(&cache));
        let prefix = entries(&cache);
        let last = chain::chain(n, SEED).pop().unwrap().0;
        std::fs::rename(
            dir.path().join(format!("last{n}.sql")),
            dir.path().join(&name).join(last),
        )
        .unwrap();
        one_new.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || {
                    // Only what the check of the N - 1 left: no verdict of
                    // the N, no image of them.
                    for f in entries(&cache) {
                        if !prefix.contains(&f) {
                            std::fs::remove_file(f).unwrap();
                        }
                    }
                },
                |()| check_in(dir.path(), &name, n, Some(&cache)),
                BatchSize::PerIteration,
            )
        });
    }
    one_new.finish();

    let mut cold = c.benchmark_group("cold");
    cold.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        cold.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| check(dir.path(), n, None))
        });
    }
    cold.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
