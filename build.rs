//! Rebuild when a migration file is added (edits already rebuild through
//! include_str!). This is the one line users copy into their own build.rs.
fn main() {
    durable_schema_runtime::build::watch("migrations");
}
