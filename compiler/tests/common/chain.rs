//! A seeded generator of realistic migration chains, for the compile-time
//! benchmark (`benches/check.rs`) and its test (`tests/generated_chain.rs`),
//! and for the rebuild benchmark at the repository's root
//! (`benches/rebuild.rs`, which includes this file by path).
//!
//! Each migration is 1–3 KB: a header comment, then two or three steps
//! among creating a table (foreign keys to earlier tables, CHECKs, a UNIQUE
//! constraint, indexes, seed rows), adding columns to an earlier table with
//! a backfill and an index, an audit trigger and the update that fires it,
//! a view joining a table to its parent, and more seed rows. Every chain
//! the generator writes passes the check. Same `n` and seed, same files.
//!
//! [`chain_with_clock`] writes the same chain (the same steps, rows and
//! values) with the clock in it, as real applications have: `created_at`
//! defaults to `CURRENT_TIMESTAMP` (the audit log's `at` too), every table
//! has an `updated_at` defaulting to `strftime('%Y-%m-%dT%H:%M:%fZ',
//! 'now')`, and each audit trigger comes with one stamping `updated_at`, so
//! every seed row, backfill and audited update takes values from the clock.

#![allow(dead_code)]

use std::fmt::Write;

/// splitmix64: small, seeded, good enough to vary a schema.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

const NOUNS: [&str; 16] = [
    "accounts",
    "projects",
    "invoices",
    "orders",
    "customers",
    "products",
    "tickets",
    "comments",
    "teams",
    "documents",
    "payments",
    "shipments",
    "reviews",
    "channels",
    "events",
    "tags",
];

const STATUSES: [&str; 3] = ["active", "archived", "deleted"];

/// What `updated_at` is stamped with in a chain with the clock.
const UPDATED: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// A table the chain created, as later migrations see it.
struct Table {
    name: String,
    /// Every column, the added ones included.
    columns: usize,
    /// Rows 1..=rows exist (rows are never deleted).
    rows: usize,
    /// The tables its foreign keys reference, as `(column, parent)`.
    parents: Vec<(String, usize)>,
}

/// The generator's view of the schema so far.
struct Chain {
    rng: Rng,
    /// Columns and triggers take values from the clock (see
    /// [`chain_with_clock`]).
    clock: bool,
    /// What the clock added to the current migration's text, in bytes
    /// (negative when shorter): its steps are chosen by the text's size
    /// without it, so the chain with the clock has the same steps.
    clock_bytes: isize,
    tables: Vec<Table>,
    /// Numbers views, triggers and added columns, so no name repeats.
    serial: usize,
}

/// `n` migrations, seeded: `(file name, text)` in version order.
pub(crate) fn chain(n: usize, seed: u64) -> Vec<(String, String)> {
    generate(n, seed, false)
}

/// `chain(n, seed)` with the clock in it (see the module docs).
pub(crate) fn chain_with_clock(n: usize, seed: u64) -> Vec<(String, String)> {
    generate(n, seed, true)
}

fn generate(n: usize, seed: u64, clock: bool) -> Vec<(String, String)> {
    let mut chain = Chain {
        rng: Rng::new(seed),
        clock,
        clock_bytes: 0,
        tables: Vec::new(),
        serial: 0,
    };
    (1..=n).map(|v| chain.migration(v)).collect()
}

/// Writes `chain(n, seed)` into `dir` (created if needed).
pub(crate) fn write_chain(dir: &std::path::Path, n: usize, seed: u64) {
    write_files(dir, chain(n, seed));
}

/// Writes `chain_with_clock(n, seed)` into `dir` (created if needed).
pub(crate) fn write_chain_with_clock(dir: &std::path::Path, n: usize, seed: u64) {
    write_files(dir, chain_with_clock(n, seed));
}

fn write_files(dir: &std::path::Path, files: Vec<(String, String)>) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// A scratch directory under the temp dir holding the chain of every `n`
/// of `sizes` as `m{n}`, removed on drop: the benches' setup.
pub(crate) struct Chains(pub std::path::PathBuf);

impl Chains {
    /// `durable-schema-bench-{label}-{pid}` in the temp dir, emptied first.
    pub(crate) fn new(label: &str, sizes: &[usize], seed: u64) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "durable-schema-bench-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for &n in sizes {
            write_chain(&dir.join(format!("m{n}")), n, seed);
        }
        Self(dir)
    }

    /// [`Chains::new`], each chain written twice: as `m{n}` and with the
    /// clock as `c{n}` (see [`chain_with_clock`]).
    pub(crate) fn with_clock(label: &str, sizes: &[usize], seed: u64) -> Self {
        let chains = Self::new(label, sizes, seed);
        for &n in sizes {
            write_chain_with_clock(&chains.0.join(format!("c{n}")), n, seed);
        }
        chains
    }
}

impl Drop for Chains {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Chain {
    fn migration(&mut self, version: usize) -> (String, String) {
        let mut sql = String::new();
        let mut steps: Vec<&str> = Vec::new();
        self.clock_bytes = 0;
        if version == 1 {
            let _ = write!(
                sql,
                "CREATE TABLE audit_log (\n    id         INTEGER PRIMARY KEY,\n    table_name TEXT    NOT NULL,\n    row_id     INTEGER NOT NULL,\n    action     TEXT    NOT NULL CHECK (length(action) <= 200),\n    at         TEXT    NOT NULL DEFAULT {}\n);\nCREATE INDEX audit_log_row ON audit_log (table_name, row_id);\n\n",
                self.created_default()
            );
            steps.push("audit log");
        }
        // Steps until the file is about `target` bytes (the header is about
        // 260): 1–3 KB, as real migrations go.
        let target = self.rng.between(1100, 1900);
        while steps.len() < 2 || (sql.len() as isize - self.clock_bytes) as usize + 260 < target {
            let step = match self.rng.below(10) {
                _ if self.tables.len() < 2 => self.create_table(&mut sql),
                0..=3 => self.create_table(&mut sql),
                4 | 5 => self.add_columns(&mut sql),
                6 => self.trigger(&mut sql),
                7 => self.view(&mut sql),
                _ => self.seed(&mut sql),
            };
            steps.push(step);
        }
        let mut header = format!(
            "-- Migration {version}: {}.\n--\n-- Generated for the compile-time benchmark: a realistic mix of\n-- schema changes and data changes, each step checked by the replay.\n\n",
            steps.join(", ")
        );
        header.push_str(&sql);
        let slug = steps[0].replace(' ', "_");
        (format!("{version:04}_{slug}.sql"), header)
    }

    fn create_table(&mut self, sql: &mut String) -> &'static str {
        let noun = NOUNS[self.rng.below(NOUNS.len())];
        let name = format!("{noun}_{}", self.next_serial());
        let mut parents = Vec::new();
        if !self.tables.is_empty() {
            for _ in 0..self.rng.between(1, 2) {
                let parent = self.rng.below(self.tables.len());
                if !parents.iter().any(|(_, p)| *p == parent) {
                    parents.push((format!("{}_id", self.tables[parent].name), parent));
                }
            }
        }
        let _ = writeln!(sql, "CREATE TABLE {name} (");
        sql.push_str("    id         INTEGER PRIMARY KEY,\n");
        sql.push_str("    name       TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),\n");
        sql.push_str("    status     TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'deleted')),\n");
        sql.push_str("    amount     INTEGER NOT NULL DEFAULT 0 CHECK (amount >= 0),\n");
        let _ = writeln!(
            sql,
            "    created_at TEXT    NOT NULL DEFAULT {},",
            self.created_default()
        );
        if self.clock {
            self.clock_text(
                sql,
                &format!("    updated_at TEXT    NOT NULL DEFAULT ({UPDATED}),\n"),
            );
        }
        for (column, parent) in &parents {
            let _ = writeln!(
                sql,
                "    {column} INTEGER NOT NULL REFERENCES {} (id) ON DELETE CASCADE,",
                self.tables[*parent].name
            );
        }
        sql.push_str("    UNIQUE (name)\n);\n");
        for (column, _) in &parents {
            let _ = writeln!(sql, "CREATE INDEX {name}_{column} ON {name} ({column});");
        }
        let _ = writeln!(
            sql,
            "CREATE INDEX {name}_status ON {name} (status, created_at) WHERE status <> 'deleted';"
        );
        self.tables.push(Table {
            name,
            columns: 5 + usize::from(self.clock) + parents.len(),
            rows: 0,
            parents,
        });
        let index = self.tables.len() - 1;
        self.insert_rows(index, 4, sql);
        sql.push('\n');
        "create a table"
    }

    /// `rows` new rows in table `index`, referencing existing parents.
    fn insert_rows(&mut self, index: usize, rows: usize, sql: &mut String) {
        let table = &self.tables[index];
        let fk_columns: String = table
            .parents
            .iter()
            .map(|(c, _)| format!(", {c}"))
            .collect();
        let _ = writeln!(
            sql,
            "INSERT INTO {} (id, name, status, amount{fk_columns}) VALUES",
            table.name
        );
        let mut values = Vec::new();
        for k in 1..=rows {
            let id = table.rows + k;
            let status = STATUSES[self.rng.below(2)];
            let amount = self.rng.below(10_000);
            let fks: String = table
                .parents
                .iter()
                .map(|(_, p)| format!(", {}", 1 + (id - 1) % self.tables[*p].rows.max(1)))
                .collect();
            values.push(format!(
                "    ({id}, '{}-{id}', '{status}', {amount}{fks})",
                table.name
            ));
        }
        sql.push_str(&values.join(",\n"));
        sql.push_str(";\n");
        self.tables[index].rows += rows;
    }

    /// The default of `created_at` (and the audit log's `at`).
    fn created_default(&mut self) -> &'static str {
        const PLAIN: &str = "'1970-01-01T00:00:00Z'";
        if self.clock {
            let clock = "CURRENT_TIMESTAMP";
            self.clock_bytes += clock.len() as isize - PLAIN.len() as isize;
            clock
        } else {
            PLAIN
        }
    }

    /// Appends `text`, which only a chain with the clock has.
    fn clock_text(&mut self, sql: &mut String, text: &str) {
        sql.push_str(text);
        self.clock_bytes += text.len() as isize;
    }

    fn next_serial(&mut self) -> usize {
        self.serial += 1;
        self.serial
    }

    fn add_columns(&mut self, sql: &mut String) -> &'static str {
        let index = self.rng.below(self.tables.len());
        if self.tables[index].columns > 90 {
            return self.create_table(sql);
        }
        let name = self.tables[index].name.clone();
        let added = self.rng.between(1, 3);
        for k in 0..added {
            let column = format!("extra_{}", self.next_serial());
            let _ = writeln!(
                sql,
                "ALTER TABLE {name} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0 CHECK ({column} >= 0);"
            );
            let _ = writeln!(
                sql,
                "UPDATE {name} SET {column} = amount % {} WHERE id % 2 = {};",
                k + 7,
                k % 2
            );
            let _ = writeln!(
                sql,
                "CREATE INDEX {name}_{column} ON {name} ({column}) WHERE {column} > 0;"
            );
        }
        self.tables[index].columns += added;
        sql.push('\n');
        "add columns with a backfill"
    }

    fn trigger(&mut self, sql: &mut String) -> &'static str {
        let index = self.rng.below(self.tables.len());
        let name = self.tables[index].name.clone();
        let serial = self.next_serial();
        let _ = writeln!(
            sql,
            "CREATE TRIGGER {name}_audit_{serial} AFTER UPDATE OF status ON {name}\nWHEN OLD.status <> NEW.status\nBEGIN\n    INSERT INTO audit_log (table_name, row_id, action)\n    VALUES ('{name}', NEW.id, 'status ' || OLD.status || ' -> ' || NEW.status);\nEND;"
        );
        if self.clock {
            self.clock_text(
                sql,
                &format!("CREATE TRIGGER {name}_touch_{serial} AFTER UPDATE OF status ON {name}\nBEGIN\n    UPDATE {name} SET updated_at = {UPDATED} WHERE id = NEW.id;\nEND;\n"),
            );
        }
        let rows = self.tables[index].rows.max(1);
        let _ = writeln!(
            sql,
            "UPDATE {name} SET status = 'archived' WHERE id = {} AND status = 'active';\n",
            1 + self.rng.below(rows)
        );
        "an audit trigger"
    }

    fn view(&mut self, sql: &mut String) -> &'static str {
        let children: Vec<usize> = (0..self.tables.len())
            .filter(|&t| !self.tables[t].parents.is_empty())
            .collect();
        let version = self.next_serial();
        if children.is_empty() {
            let name = &self.tables[self.rng.below(self.tables.len())].name;
            let _ = writeln!(
                sql,
                "CREATE VIEW {name}_live_{version} AS\n    SELECT id, name, amount FROM {name} WHERE status = 'active';\n"
            );
            return "a view";
        }
        let child = &self.tables[children[self.rng.below(children.len())]];
        let (column, parent) = &child.parents[0];
        let parent = &self.tables[*parent].name;
        let _ = writeln!(
            sql,
            "CREATE VIEW {}_by_parent_{version} AS\n    SELECT p.id AS parent_id, p.name AS parent_name,\n           count(c.id) AS children, coalesce(sum(c.amount), 0) AS total\n    FROM {parent} AS p\n    LEFT JOIN {} AS c ON c.{column} = p.id AND c.status <> 'deleted'\n    GROUP BY p.id, p.name;\n",
            child.name, child.name
        );
        "a view"
    }

    fn seed(&mut self, sql: &mut String) -> &'static str {
        let index = self.rng.below(self.tables.len());
        let rows = self.rng.between(3, 6);
        self.insert_rows(index, rows, sql);
        sql.push('\n');
        "seed rows"
    }
}
