//! The baseline the attribute embeds for new objects: for each directory,
//! the schema with its baseline and the same directory with
//! `baseline = false` must leave the same database and tracking rows.

use durable_schema::testing::DurableObjectDb;
use durable_schema::{durable_schema, Schema};
use durable_schema_compiler::CanonicalDump;
use durable_schema_workerd::ClockedConnection;
use rusqlite::Connection;

macro_rules! pair {
    ($with:ident, $without:ident, $dir:literal) => {
        #[durable_schema(dir = $dir)]
        struct $with;
        #[durable_schema(dir = $dir, baseline = false)]
        struct $without;
    };
}

pair!(Triggers, TriggersChain, "tests/fixtures/pass/triggers");
pair!(
    Strict,
    StrictChain,
    "tests/fixtures/pass/strict-without-rowid"
);
pair!(
    Generated,
    GeneratedChain,
    "tests/fixtures/pass/generated-columns"
);
pair!(Rebuild, RebuildChain, "tests/fixtures/pass/table-rebuild");
pair!(
    Deferred,
    DeferredChain,
    "tests/fixtures/pass/deferred-rebuild"
);
pair!(Fts5, Fts5Chain, "tests/fixtures/pass/fts5-options");
pair!(Window, WindowChain, "tests/fixtures/pass/window-view");
pair!(Drizzle, DrizzleChain, "tests/fixtures/pass/drizzle-journal");
pair!(Example, ExampleChain, "migrations");

fn migrated(schema: &Schema) -> (Connection, durable_schema::Report) {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let report = schema.migrate(&conn).unwrap();
    (conn, report)
}

fn tracking(conn: &Connection) -> Vec<(i64, String, String, String)> {
    let mut stmt = conn
        .prepare("SELECT version, description, checksum, chain FROM migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_baseline_leaves_the_database_the_chain_leaves() {
    let pairs: [(&str, Schema, Schema); 9] = [
        ("triggers", Triggers::SCHEMA, TriggersChain::SCHEMA),
        ("strict", Strict::SCHEMA, StrictChain::SCHEMA),
        ("generated", Generated::SCHEMA, GeneratedChain::SCHEMA),
        ("rebuild", Rebuild::SCHEMA, RebuildChain::SCHEMA),
        ("deferred", Deferred::SCHEMA, DeferredChain::SCHEMA),
        ("fts5", Fts5::SCHEMA, Fts5Chain::SCHEMA),
        ("window", Window::SCHEMA, WindowChain::SCHEMA),
        ("drizzle", Drizzle::SCHEMA, DrizzleChain::SCHEMA),
        ("example", Example::SCHEMA, ExampleChain::SCHEMA),
    ];
    let mut with_baseline = 0;
    for (name, with, without) in pairs {
        assert_eq!(without.baseline(), None, "{name}");
        assert_eq!(
            without.baseline_note(),
            Some("turned off (`baseline = false`)")
        );
        let (chain, report) = migrated(&without);
        assert!(!report.baseline(), "{name}");
        let Some(baseline) = with.baseline() else {
            println!("{name}: no baseline: {}", with.baseline_note().unwrap());
            continue;
        };
        with_baseline += 1;
        assert_eq!(with.baseline_note(), None);
        assert!(!baseline.statements().is_empty());
        let (created, report) = migrated(&with);
        assert!(report.baseline(), "{name}");
        assert_eq!(report.to_version(), with.version());
        assert_eq!(
            CanonicalDump::of(&created, "migrations").unwrap(),
            CanonicalDump::of(&chain, "migrations").unwrap(),
            "{name}"
        );
        assert_eq!(tracking(&created), tracking(&chain), "{name}");
    }
    assert_eq!(with_baseline, 9, "every fixture here has a baseline");
}

/// A baseline runs under workerd's rules and limits, inside the event's
/// implicit transaction, as a Durable Object's constructor runs it.
#[test]
fn a_baseline_passes_the_durable_object_rules() {
    for schema in [
        Triggers::SCHEMA,
        Fts5::SCHEMA,
        Deferred::SCHEMA,
        Example::SCHEMA,
        ClockSeed::SCHEMA,
    ] {
        let db = DurableObjectDb::new();
        let report = schema.migrate(&db).unwrap();
        assert!(report.baseline());
        db.end_event().unwrap();
        assert!(schema.migrate(&db).unwrap().is_noop());
    }
}

/// What a build cannot reproduce keeps new objects on the chain, and the
/// schema says why.
#[durable_schema(dir = "tests/fixtures/pass/unreproducible")]
struct Seeded;

#[test]
fn a_seed_row_with_a_random_token_has_no_baseline() {
    assert_eq!(Seeded::SCHEMA.baseline(), None);
    assert_eq!(
        Seeded::SCHEMA.baseline_note(),
        Some("tests/fixtures/pass/unreproducible/0002_seed_admin.sql:1:1 inserts into `users`, whose column `token` defaults to `randomblob`, which a build cannot reproduce")
    );
    let (_, report) = migrated(&Seeded::SCHEMA);
    assert!(!report.baseline());
    assert_eq!(report.applied().len(), 2);
}

pair!(ClockSeed, ClockSeedChain, "tests/fixtures/pass/clock_seed");

/// A seed row stamped with the clock: the baseline reads the clock when it
/// runs, so at one instant (a frozen clock) it gives the chain's database.
#[test]
fn a_seed_row_stamped_with_the_clock_has_a_baseline_that_reads_it() {
    assert_eq!(ClockSeed::SCHEMA.baseline_note(), None);
    let baseline = ClockSeed::SCHEMA.baseline().unwrap();
    assert!(baseline
        .sql()
        .contains("(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"));
    // 2024-02-29 12:34:56.789 UTC.
    let at = |schema: &Schema| {
        let conn = ClockedConnection::open_in_memory(1_709_210_096_789).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let report = schema.migrate(&*conn).unwrap();
        (conn, report)
    };
    let (created, report) = at(&ClockSeed::SCHEMA);
    assert!(report.baseline());
    let (chain, report) = at(&ClockSeedChain::SCHEMA);
    assert!(!report.baseline());
    assert_eq!(
        CanonicalDump::of(&created, "migrations").unwrap(),
        CanonicalDump::of(&chain, "migrations").unwrap()
    );
    let stamp: String = created
        .query_row("SELECT created_at FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stamp, "2024-02-29T12:34:56.789Z");
}
