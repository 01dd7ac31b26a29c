fn main() {
    // Rebuild when a migration file is added, not only when one is edited.
    durable_schema::build::watch("migrations");
}
