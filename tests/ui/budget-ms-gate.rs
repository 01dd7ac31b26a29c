use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/ok", budget_ms = 30000)]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
