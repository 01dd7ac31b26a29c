use durable_schema::durable_schema;

#[durable_schema(dir = 42, strict = "yes", baseline = 0)]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
