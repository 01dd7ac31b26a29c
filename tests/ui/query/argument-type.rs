use durable_schema::{durable_schema, query};

#[durable_schema(dir = "ui-fixtures/query")]
pub struct Chat;

fn main() {
    let id = String::from("1");
    let _ = query!(Chat, "SELECT email FROM users WHERE id = ?", id);
}
