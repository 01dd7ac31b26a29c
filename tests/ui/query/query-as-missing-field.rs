use durable_schema::{durable_schema, query_as};

#[durable_schema(dir = "ui-fixtures/query")]
pub struct Chat;

pub struct User {
    pub id: i64,
    pub name: Option<String>,
}

fn main() {
    // `name` is not selected.
    let _ = query_as!(User, Chat, "SELECT id FROM users");
}
