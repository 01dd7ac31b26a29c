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
//! `cargo bench -p durable-schema-runtime --features rusqlite --bench batch`
//! (env `DS_BATCH_ROWS`, default 1000000; `DS_BATCH_BUDGET_MS`, default 200).
//! Figures in `runtime/benches/RESULTS.md` and `docs/performance.md`.

#[path = "../tests/executor/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{prefix, schema, TempDir};
use durable_schema_runtime::{MigrateError, Schema};
use rusqlite::Connection;

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

    let single = build(&files(rows, "UPDATE items SET w = v * 2;\n"));
    let conn = at_v1(&dir, "single.db", &single);
    let t = Instant::now();
    let wake = single.wake(&conn);
    let one = t.elapsed();
    assert!(wake.error().is_none(), "{:?}", wake.error());
    println!(
        "{rows} rows, one statement: {:.0} ms (one wake, one transaction)",
        one.as_secs_f64() * 1000.0
    );
    println!("budget {budget} ms per wake:");
    println!(
        "  pattern | batch rows | repetition (ms) | wakes | longest wake (ms) | first (ms) | total (ms) | total / one \
         | by hand (ms) | total / by hand"
    );
    // `scan`: the batch's subquery finds the next rows by scanning from the
    // start (past every row already done: quadratic). `indexed`: a partial
    // index of the rows still to do, created before the batch and dropped
    // after it, so each repetition reads only its own rows.
    for (pattern, size) in [
        ("scan", 10_000u64),
        ("scan", 50_000),
        ("scan", 100_000),
        ("indexed", 1_000),
        ("indexed", 50_000),
    ] {
        let (before, after) = match pattern {
            "indexed" => (
                "CREATE INDEX items_todo ON items (id) WHERE w IS NULL;\n",
                "DROP INDEX items_todo;\n",
            ),
            _ => ("", ""),
        };
        let batched = build(&files(
            rows,
            &format!(
                "{before}-- durable-schema: batch\n\
                 UPDATE items SET w = v * 2 WHERE id IN \
                 (SELECT id FROM items WHERE w IS NULL LIMIT {size});\n{after}"
            ),
        ))
        .__with_budget_ms(budget);
        let conn = at_v1(&dir, &format!("batch-{pattern}-{size}.db"), &batched);
        let (mut wakes, mut longest, mut total) = (0u32, Duration::ZERO, Duration::ZERO);
        let (mut longest_at, mut first) = (0u32, Duration::ZERO);
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
        // Those that change rows, and the one that changes none.
        let repetitions = rows.div_ceil(size) + 1;
        let wrong: i64 = conn
            .query_row("SELECT count(*) FROM items WHERE w IS NOT v * 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(wrong, 0);
        // The same statements by hand (plain rusqlite, one transaction per
        // repetition until one changes nothing, no progress, no budget):
        // what the batch pattern costs in SQLite itself.
        let plain = at_v1(&dir, &format!("plain-{pattern}-{size}.db"), &batched);
        let m = &batched.migrations()[1];
        let t = Instant::now();
        for s in m.statements().iter() {
            loop {
                plain.execute_batch("BEGIN").unwrap();
                let changed = plain.execute(s.sql(), []).unwrap();
                plain.execute_batch("COMMIT").unwrap();
                if !s.is_batch() || changed == 0 {
                    break;
                }
            }
        }
        let by_hand = t.elapsed();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {pattern:>7} | {size:>10} | {:>15.1} | {wakes:>5} | {:>11.0} (#{longest_at:<2}) | {:>10.0} | {:>10.0} | {:>11.2}x | {:>12.0} | {:>13.2}x",
            ms(total) / repetitions as f64,
            ms(longest),
            ms(first),
            ms(total),
            total.as_secs_f64() / one.as_secs_f64(),
            ms(by_hand),
            total.as_secs_f64() / by_hand.as_secs_f64()
        );
    }
}
