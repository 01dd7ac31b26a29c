use durable_schema::{durable_schema, query};

// The same migrations, and in `query-b` a second one renames `name`.
#[durable_schema(dir = "ui-fixtures/query-a")]
pub struct Before;

#[durable_schema(dir = "ui-fixtures/query-b")]
pub struct After;

fn main() {
    let _ = query!(Before, "SELECT id, name FROM users WHERE id = ?", 1);
    let _ = query!(After, "SELECT id, name FROM users WHERE id = ?", 1);
}
