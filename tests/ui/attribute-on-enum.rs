use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/ok")]
pub enum Chat {
    Open,
    Closed,
}

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
