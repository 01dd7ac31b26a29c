use durable_schema::durable_schema;

#[durable_schema(table = "schema_history")]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
