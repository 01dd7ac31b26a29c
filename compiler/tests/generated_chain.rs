//! The benchmark's generated chains (`tests/common/chain.rs`) are what the
//! benchmark claims: deterministic, 1–3 KB a file, every kind of step, and
//! accepted by the check.

#[path = "common/chain.rs"]
mod common_chain;

use common_chain::{chain, write_chain};
use durable_schema_compiler::{check_dir, CacheSetting, Options};

#[test]
fn generated_chains_are_seeded_sized_and_valid() {
    let files = chain(120, 7);
    assert_eq!(files, chain(120, 7), "same seed, same chain");
    assert_ne!(files, chain(120, 8));
    for (i, (name, text)) in files.iter().enumerate() {
        assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name}");
        assert!(
            (1024..=3 * 1024).contains(&text.len()),
            "{name}: {} bytes",
            text.len()
        );
    }
    let all: String = files.iter().map(|(_, text)| text.as_str()).collect();
    for step in [
        "REFERENCES",
        "CHECK (",
        "CREATE INDEX",
        "ADD COLUMN",
        "UPDATE ",
        "CREATE TRIGGER",
        "CREATE VIEW",
        "INSERT INTO",
    ] {
        assert!(all.contains(step), "no `{step}` in the chain");
    }

    let dir = std::env::temp_dir().join(format!("durable-schema-generated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_chain(&dir.join("m"), 120, 7);
    let checked = check_dir(&dir, "m", &Options::default().with_cache(CacheSetting::Off));
    let _ = std::fs::remove_dir_all(&dir);
    let plan = checked.unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors.iter().map(|e| format!("{e}\n")).collect::<String>()
        )
    });
    assert_eq!(plan.version(), 120);
    // The generator writes nothing a build cannot reproduce (its defaults
    // are constants), so new objects get a baseline: what the fresh-object
    // benchmark measures.
    let baseline = plan
        .baseline
        .unwrap_or_else(|no| panic!("no baseline: {no}"));
    let chain_bytes: usize = files.iter().map(|(_, text)| text.len()).sum();
    println!(
        "120 migrations, {} KB: baseline of {} statements, {} KB",
        chain_bytes / 1024,
        baseline.statements.len(),
        baseline.sql.len() / 1024
    );
    assert!(baseline.sql.len() < chain_bytes);
}

/// The same chain with the clock in it (`CURRENT_TIMESTAMP` defaults,
/// seed rows that leave them out, triggers stamping `updated_at`) passes
/// the check and gets a baseline: the check replayed it at two frozen
/// instants and verified the baseline at both, and it writes the clock's
/// values as the expressions that read them.
#[test]
fn a_generated_chain_with_the_clock_has_a_baseline_that_reads_it() {
    let (plain, clocked) = (chain(120, 7), common_chain::chain_with_clock(120, 7));
    assert_eq!(plain.len(), clocked.len());
    for ((name, text), (clocked_name, clocked_text)) in plain.iter().zip(&clocked) {
        assert_eq!(name, clocked_name);
        assert_eq!(
            text.lines().next(),
            clocked_text.lines().next(),
            "the same steps"
        );
        let inserts = |t: &str| t.matches("INSERT INTO").count();
        assert_eq!(inserts(text), inserts(clocked_text), "the same rows");
    }
    let all: String = clocked.iter().map(|(_, text)| text.as_str()).collect();
    for clock in ["DEFAULT CURRENT_TIMESTAMP", "SET updated_at = strftime("] {
        assert!(all.contains(clock), "no `{clock}` in the chain");
    }

    let dir = std::env::temp_dir().join(format!(
        "durable-schema-generated-clock-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    common_chain::write_chain_with_clock(&dir.join("m"), 120, 7);
    let checked = check_dir(&dir, "m", &Options::default().with_cache(CacheSetting::Off));
    let _ = std::fs::remove_dir_all(&dir);
    let plan = checked.unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors.iter().map(|e| format!("{e}\n")).collect::<String>()
        )
    });
    assert!(plan.migrations.iter().all(|m| m.unreproducible.is_none()));
    assert!(plan.migrations.iter().any(|m| m.clock.is_some()));
    let baseline = plan
        .baseline
        .unwrap_or_else(|no| panic!("no baseline: {no}"));
    assert!(baseline.sql.contains("(CURRENT_TIMESTAMP)"));
    assert!(baseline
        .sql
        .contains("(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"));
}
