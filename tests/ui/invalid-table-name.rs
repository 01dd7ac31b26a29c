use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/ok", table = "_cf_migrations")]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
