use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/ok", retry_after = "60s")]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
