use durable_schema::durable_schema;

// A drizzle-kit directory whose journal and files disagree: an entry
// without its file, a `.sql` file without an entry, a file numbered
// differently from its entry's `idx`. One build reports all three.
#[durable_schema(dir = "ui-fixtures/drizzle-journal-mismatch")]
pub struct Chat;

fn main() {
    let _ = Chat::CURRENT_SCHEMA_VERSION;
}
