//! What the `#[durable_schema]` attribute costs at compile time:
//! `check_dir` on generated chains of 10, 200 and 1000 migrations
//! (`tests/common/chain.rs`: tables with foreign keys, CHECKs and indexes,
//! added columns with backfills, triggers, views, seed rows; 1–3 KB each).
//!
//! - `cold/*`: no verdict cache (`DURABLE_SCHEMA_CACHE=off`): loading plus
//!   the full replay, what every build paid before the cache.
//! - `hit/*`: the cache holds the directory's verdict: loading, normalizing
//!   and hashing the files, reading the entry.
//!
//! `cargo bench -p durable-schema-compiler --bench check` (results in
//! `compiler/benches/RESULTS.md`). The cold run at 1000 takes seconds per
//! iteration, so its group takes the minimum sample (10, flat sampling).

#[path = "../tests/common/chain.rs"]
mod chain;

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use durable_schema_compiler::{check_dir_cached_in, Options};

const SIZES: [usize; 3] = [10, 200, 1000];
const SEED: u64 = 2026;

/// A directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("durable-schema-bench-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for n in SIZES {
            chain::write_chain(&dir.join(format!("m{n}")), n, SEED);
        }
        Self(dir)
    }

    fn cache(&self) -> PathBuf {
        self.0.join("cache")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(base: &Path, n: usize, cache: Option<&Path>) -> usize {
    let plan = check_dir_cached_in(base, &format!("m{n}"), &Options::default(), cache)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(plan.version() as usize, n);
    plan.migrations.len()
}

fn bench(c: &mut Criterion) {
    let dir = TempDir::new();
    let cache = dir.cache();

    let mut hit = c.benchmark_group("hit");
    hit.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        check(&dir.0, n, Some(&cache)); // the miss that fills the cache
        hit.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| check(&dir.0, n, Some(&cache)))
        });
    }
    hit.finish();

    let mut cold = c.benchmark_group("cold");
    cold.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    for n in SIZES {
        cold.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| check(&dir.0, n, None))
        });
    }
    cold.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
