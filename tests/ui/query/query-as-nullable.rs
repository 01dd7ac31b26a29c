use durable_schema::{durable_schema, query_as};

#[durable_schema(dir = "ui-fixtures/query")]
pub struct Chat;

pub struct User {
    pub id: i64,
    pub name: String,
}

fn main() {
    // `name` may be NULL: the field must be an `Option<String>`.
    let _ = query_as!(User, Chat, "SELECT id, name FROM users");
}
