use durable_schema::{durable_schema, query};

#[durable_schema(dir = "ui-fixtures/query")]
pub struct Chat;

fn main() {
    let _ = query!(Chat, "SELECT id FROM users WHERE id = ? OR email = ?", 1);
}
