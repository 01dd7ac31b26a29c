use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/batch-breaking-first")]
pub struct Chat;

fn main() {
    // Stubs keep this line quiet: one mistake, one error.
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
