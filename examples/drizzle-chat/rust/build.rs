fn main() {
    // Rebuild when drizzle-kit adds a migration (the journal changes too).
    durable_schema::build::watch("../drizzle");
}
