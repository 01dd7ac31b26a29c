use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/ok", tabel = "schema_history")]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
