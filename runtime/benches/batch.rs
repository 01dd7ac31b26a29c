//! Issue 21's goal for batched statements, natively: a 1M-row object, the
//! backfill as one statement against the same backfill as a batch run by
//! `Schema::wake` within a budget, wake after wake until it is applied.
//!
//! Prints, per batch size: the longest single wake (goal: at most the budget
//! plus one repetition), the wakes it took, and the total time against the
//! single statement (goal: at most 1.3x) and against the same statements run
//! by hand (plain rusqlite, one transaction per repetition: the executor's
//! own overhead). File databases (journal mode WAL,
//! `synchronous = NORMAL`, as a Durable Object's storage commits each
//! transaction): each repetition pays its own commit.
//!
//! Patterns: `scan` and `indexed` are plain batches (`-- durable-schema:
//! batch`, a subquery picks the next rows); `range` is a range batch
//! (`-- durable-schema: batch over items limit n`, the executor's cursor
//! binds each slice's rowid bounds).
//!
//! `cargo bench -p durable-schema-runtime --features rusqlite --bench batch`
//! (env `DS_BATCH_ROWS`, default 1000000; `DS_BATCH_BUDGET_MS`, default 200;
//! `DS_BATCH_PATTERNS`, a comma-separated subset of `scan,indexed,range`;
//! `DS_BATCH_RUNS`, default 1: each figure is the fastest of that many runs,
//! each on a database of its own, which keeps the ratios readable on a
//! machine shared with other work).
//! Figures in `runtime/benches/RESULTS.md` and `docs/performance.md`.

#[path = "../tests/executor/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{prefix, schema, TempDir};
use durable_schema_runtime::{tracking, MigrateError, Schema};
use rusqlite::Connection;

/// The CPU time this thread has run (Linux: `/proc/thread-self/schedstat`,
/// in nanoseconds; zero elsewhere). Wall time on a machine shared with
/// other work varies by tens of percent between runs; CPU time much less,
/// and with `synchronous = NORMAL` a WAL commit does not wait for the disk.
fn cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A database file at version 1: `rows` items with `v`.
fn at_v1(dir: &TempDir, name: &str, schema: &Schema) -> Connection {
    let conn = Connection::open(dir.db(name)).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    prefix(schema, 1).migrate(&conn).unwrap();
    conn
}

fn files(rows: u64, backfill: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "0001_items.sql",
            format!(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, note TEXT);\n\
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})\n\
                 INSERT INTO items (id, v, note) SELECT x, x, 'item ' || x FROM c;\n"
            ),
        ),
        (
            "0002_backfill.sql",
            format!("ALTER TABLE items ADD COLUMN w INTEGER;\n{backfill}"),
        ),
    ]
}

fn build(files: &[(&'static str, String)]) -> Schema {
    let pairs: Vec<(&str, &str)> = files.iter().map(|(n, s)| (*n, s.as_str())).collect();
    schema(&pairs)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rows = env("DS_BATCH_ROWS", 1_000_000);
    let budget = u32::try_from(env("DS_BATCH_BUDGET_MS", 200)).unwrap_or(200);
    let dir = TempDir::new("bench-batch");

    let runs = env("DS_BATCH_RUNS", 1).max(1);
    let single = build(&files(rows, "UPDATE items SET w = v * 2;\n"));
    let (mut one, mut one_cpu) = (Duration::MAX, Duration::MAX);
    for run in 0..runs {
        let conn = at_v1(&dir, &format!("single-{run}.db"), &single);
        let (t, c) = (Instant::now(), cpu());
        let wake = single.wake(&conn);
        one = one.min(t.elapsed());
        one_cpu = one_cpu.min(cpu() - c);
        assert!(wake.error().is_none(), "{:?}", wake.error());
    }
    println!(
        "{rows} rows, one statement: {:.0} ms, CPU {:.0} ms (one wake, one transaction; fastest of {runs})",
        one.as_secs_f64() * 1000.0,
        one_cpu.as_secs_f64() * 1000.0
    );
    println!("budget {budget} ms per wake:");
    println!(
        "  pattern | batch rows | repetition (ms) | wakes | longest wake (ms) | first (ms) | total (ms) | total / one \
         | by hand (ms) | total / by hand | CPU (ms) | CPU / one | CPU by hand (ms)"
    );
    let patterns = std::env::var("DS_BATCH_PATTERNS").unwrap_or_default();
    let wanted = |p: &str| patterns.is_empty() || patterns.split(',').any(|w| w == p);
    // `scan`: the batch's subquery finds the next rows by scanning from the
    // start (past every row already done: quadratic). `indexed`: a partial
    // index of the rows still to do, created before the batch and dropped
    // after it, so each repetition reads only its own rows. `range`: the
    // executor's slices of rowids, each read by one query from the cursor.
    for (pattern, size) in [
        ("scan", 10_000u64),
        ("scan", 50_000),
        ("scan", 100_000),
        ("indexed", 1_000),
        ("indexed", 50_000),
        ("range", 1_000),
        ("range", 10_000),
        ("range", 50_000),
        ("range", 100_000),
    ] {
        if !wanted(pattern) {
            continue;
        }
        let backfill = match pattern {
            "range" => format!(
                "-- durable-schema: batch over items limit {size}\n\
                 UPDATE items SET w = v * 2 WHERE id BETWEEN :from AND :to;\n"
            ),
            _ => {
                let (before, after) = match pattern {
                    "indexed" => (
                        "CREATE INDEX items_todo ON items (id) WHERE w IS NULL;\n",
                        "DROP INDEX items_todo;\n",
                    ),
                    _ => ("", ""),
                };
                format!(
                    "{before}-- durable-schema: batch\n\
                     UPDATE items SET w = v * 2 WHERE id IN \
                     (SELECT id FROM items WHERE w IS NULL LIMIT {size});\n{after}"
                )
            }
        };
        let batched = build(&files(rows, &backfill)).__with_budget_ms(budget);
        // The fastest run's wakes, longest wake (and which), first wake
        // and total.
        let mut best: Option<(u32, Duration, u32, Duration, Duration)> = None;
        let mut total_cpu = Duration::MAX;
        for run in 0..runs {
            let conn = at_v1(&dir, &format!("batch-{pattern}-{size}-{run}.db"), &batched);
            let (mut wakes, mut longest, mut total) = (0u32, Duration::ZERO, Duration::ZERO);
            let (mut longest_at, mut first) = (0u32, Duration::ZERO);
            let c = cpu();
            loop {
                let t = Instant::now();
                let wake = batched.wake(&conn);
                let took = t.elapsed();
                wakes += 1;
                total += took;
                if wakes == 1 {
                    first = took;
                }
                if took > longest {
                    (longest, longest_at) = (took, wakes);
                }
                match wake.error() {
                    None => break,
                    Some(MigrateError::InProgress { .. }) => {}
                    Some(e) => panic!("{e}"),
                }
            }
            total_cpu = total_cpu.min(cpu() - c);
            let wrong: i64 = conn
                .query_row("SELECT count(*) FROM items WHERE w IS NOT v * 2", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(wrong, 0);
            if best.is_none_or(|b| total < b.4) {
                best = Some((wakes, longest, longest_at, first, total));
            }
        }
        let (wakes, longest, longest_at, first, total) = best.unwrap_or_default();
        // Those that change rows, and the one that changes none (a range
        // batch: the short or empty slice that ends it).
        let repetitions = match pattern {
            "range" => rows.div_ceil(size) + u64::from(rows % size == 0),
            _ => rows.div_ceil(size) + 1,
        };
        // The same statements by hand (plain rusqlite, one transaction per
        // repetition until one changes nothing, no progress, no budget):
        // what the batch pattern costs in SQLite itself.
        let m = &batched.migrations()[1];
        let (mut by_hand, mut by_hand_cpu) = (Duration::MAX, Duration::MAX);
        for run in 0..runs {
            let plain = at_v1(&dir, &format!("plain-{pattern}-{size}-{run}.db"), &batched);
            let (t, c) = (Instant::now(), cpu());
            for s in m.statements().iter() {
                if let Some((table, limit)) = s.batch_over() {
                    // The executor's slices by hand: the slice query outside
                    // the transaction, the statement bound in it.
                    let mut cursor: Option<i64> = None;
                    loop {
                        let sql = tracking::slice(table, limit, cursor.is_some());
                        let (from, to, full): (Option<i64>, Option<i64>, bool) = plain
                            .query_row(&sql, rusqlite::params_from_iter(cursor), |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })
                            .unwrap();
                        if from.is_some() {
                            plain.execute_batch("BEGIN").unwrap();
                            plain.execute(s.sql(), [from, to]).unwrap();
                            plain.execute_batch("COMMIT").unwrap();
                            cursor = to;
                        }
                        if !full {
                            break;
                        }
                    }
                    continue;
                }
                loop {
                    plain.execute_batch("BEGIN").unwrap();
                    let changed = plain.execute(s.sql(), []).unwrap();
                    plain.execute_batch("COMMIT").unwrap();
                    if !s.is_batch() || changed == 0 {
                        break;
                    }
                }
            }
            by_hand = by_hand.min(t.elapsed());
            by_hand_cpu = by_hand_cpu.min(cpu() - c);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {pattern:>7} | {size:>10} | {:>15.1} | {wakes:>5} | {:>11.0} (#{longest_at:<2}) | {:>10.0} | {:>10.0} | {:>11.2}x | {:>12.0} | {:>13.2}x | {:>8.0} | {:>8.2}x | {:>16.0}",
            ms(total) / repetitions as f64,
            ms(longest),
            ms(first),
            ms(total),
            total.as_secs_f64() / one.as_secs_f64(),
            ms(by_hand),
            total.as_secs_f64() / by_hand.as_secs_f64(),
            ms(total_cpu),
            total_cpu.as_secs_f64() / one_cpu.as_secs_f64(),
            ms(by_hand_cpu)
        );
    }
}
