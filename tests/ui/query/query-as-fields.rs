use durable_schema::{durable_schema, query_as};

#[durable_schema(dir = "ui-fixtures/query")]
pub struct Chat;

pub struct User {
    pub id: i64,
    pub name: Option<String>,
}

fn main() {
    // `email` has no field, and `name` is not selected.
    let _ = query_as!(User, Chat, "SELECT id, email FROM users");
}
