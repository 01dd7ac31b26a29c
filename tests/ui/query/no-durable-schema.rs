use durable_schema::query;

pub struct Chat;

fn main() {
    let _ = query!(Chat, "SELECT 1 AS one");
}
