use durable_schema::durable_schema;

#[durable_schema(dir = "/srv/app/migrations")]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
