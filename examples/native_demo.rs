//! The main job, locally: the example schema in `migrations/` (checked when
//! this example compiled) applied to a SQLite file, as a Durable Object would
//! apply it on construction.
//!
//! ```text
//! cargo run --example native_demo --features rusqlite            # ./demo.sqlite
//! cargo run --example native_demo --features rusqlite -- my.db
//! ```
//!
//! Run it twice: the first run applies every migration, the second finds the
//! database current with a single one-row read.

use durable_schema::durable_schema;

#[durable_schema(dir = "migrations")]
struct Chat;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "demo.sqlite".to_owned());
    let conn = rusqlite::Connection::open(&path)?;

    println!(
        "{path}: code schema version {} ({} migrations checked at compile time)",
        Chat::CURRENT_SCHEMA_VERSION,
        Chat::SCHEMA.migrations().len()
    );

    let report = Chat::migrate(&conn)?;
    if report.is_noop() {
        println!(
            "already current at version {} (checked with {} row read)",
            report.to_version(),
            report.rows_read()
        );
    } else {
        for m in report.applied() {
            println!("applied {} ({} statements)", m.name(), m.statements().len());
        }
        println!(
            "migrated from version {} to {}",
            report.from_version(),
            report.to_version()
        );
        if report.baseline() {
            // A new database: the chain's end state, verified at compile
            // time, in one transaction instead of one per migration.
            let statements = Chat::SCHEMA.baseline().map_or(0, |b| b.statements().len());
            println!("(a new database: created from the baseline, {statements} statements in one transaction)");
        }
    }

    let status = Chat::SCHEMA.status(&conn)?;
    println!("tracking table `{}`:", Chat::SCHEMA.table());
    for row in status.applied() {
        println!(
            "  {:>4}  {:<28} {}",
            row.version(),
            row.description(),
            row.applied_at()
        );
    }
    Ok(())
}
