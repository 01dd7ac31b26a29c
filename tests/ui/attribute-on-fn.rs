use durable_schema::durable_schema;

#[durable_schema(dir = "ui-fixtures/ok")]
pub fn chat() {}

fn main() {
    chat();
}
