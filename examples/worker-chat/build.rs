use std::path::Path;

fn main() {
    // Rebuild when a migration file is added, not only when one is edited.
    durable_schema::build::watch("migrations");
    // The checked queries that read or write `messages.reactions` compile
    // only against a schema that has the column (`query!` prepares them at
    // the head version), so they are compiled in only when the migration
    // that adds it ships: the same source builds with or without it.
    println!("cargo::rustc-check-cfg=cfg(reactions)");
    if Path::new("migrations/0003_add_reactions.sql").exists() {
        println!("cargo::rustc-cfg=reactions");
    }
}
