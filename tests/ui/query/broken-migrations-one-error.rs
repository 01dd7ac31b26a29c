use durable_schema::{durable_schema, query, query_as};

// The migrations do not check: the attribute says why, and the queries
// on this schema add nothing (one mistake, one error).
#[durable_schema(dir = "ui-fixtures/syntax-error")]
pub struct Chat;

pub struct User {
    pub id: i64,
}

fn main() {
    let _ = query!(Chat, "SELECT id FROM users WHERE id = ?", 1);
    let _ = query_as!(User, Chat, "SELECT id FROM users");
}
