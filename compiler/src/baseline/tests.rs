use durable_schema_workerd::ClockedConnection;
use rusqlite::Connection;

use crate::tests::Scratch;
use crate::{
    check_dir, replay_baseline, tracking, CacheSetting, CanonicalDump, NoBaseline, Options, Plan,
    ReplaySource,
};

/// Checks `files` as `m/0001_x.sql`, `m/0002_x.sql`… without a cache.
fn check(name: &str, files: &[&str]) -> (Scratch, Plan) {
    let names: Vec<String> = (1..=files.len())
        .map(|i| format!("m/{i:04}_x.sql"))
        .collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .zip(files)
        .map(|(n, f)| (n.as_str(), f.as_bytes()))
        .collect();
    let scratch = Scratch::new(&format!("baseline-{name}"), &entries);
    let plan = check_dir(
        &scratch.0,
        "m",
        &Options::default().with_cache(CacheSetting::Off),
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    (scratch, plan)
}

/// The instant the tests' databases run at (2024-02-29 12:34:56.789 UTC):
/// the chain and the baseline read the same clock.
const NOW: i64 = 1_709_210_096_789;

/// A database configured like a Durable Object's (workerd's rules) with
/// the tracking table, its clock standing at `clock`, and `texts` run on
/// it, each in a transaction after its tracking row when it has one
/// (`(version, description, checksum, chain)`), as the executor runs a
/// migration.
fn database_at<'a>(
    clock: i64,
    texts: impl IntoIterator<Item = (Option<(u32, &'a str, &'a str, &'a str)>, Vec<&'a str>)>,
) -> ClockedConnection {
    let conn = ClockedConnection::open_in_memory(clock).unwrap();
    let rules = durable_schema_workerd::configure(&conn, None).unwrap();
    conn.execute_batch(&tracking::create_table(tracking::DEFAULT_TABLE))
        .unwrap();
    for (record, statements) in texts {
        rules.trusted(|| conn.execute_batch("BEGIN")).unwrap();
        if let Some((version, description, checksum, chain)) = record {
            conn.execute(
                &tracking::insert(tracking::DEFAULT_TABLE),
                rusqlite::params![
                    version,
                    description,
                    checksum,
                    chain,
                    "additive",
                    None::<String>,
                    0
                ],
            )
            .unwrap();
        }
        for s in statements {
            conn.execute_batch(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        rules.trusted(|| conn.execute_batch("COMMIT")).unwrap();
    }
    conn
}

/// [`database_at`] at [`NOW`].
fn database<'a>(
    texts: impl IntoIterator<Item = (Option<(u32, &'a str, &'a str, &'a str)>, Vec<&'a str>)>,
) -> ClockedConnection {
    database_at(NOW, texts)
}

/// The chain applied as the executor applies it: migration by migration,
/// each in a transaction that writes its tracking row first.
fn chain(plan: &Plan) -> ClockedConnection {
    database(plan.migrations.iter().map(|m| {
        let record = (
            m.source.version,
            m.source.description.as_str(),
            m.checksum.as_str(),
            m.chain.as_str(),
        );
        let statements = m.statements.iter().map(|s| s.sql(&m.source.text)).collect();
        (Some(record), statements)
    }))
}

/// The plan's baseline applied in one transaction.
fn baseline(plan: &Plan) -> ClockedConnection {
    baseline_at(NOW, plan)
}

/// The plan's baseline applied in one transaction, the clock standing at
/// `clock`.
fn baseline_at(clock: i64, plan: &Plan) -> ClockedConnection {
    let b = plan.baseline.as_ref().unwrap_or_else(|e| panic!("{e}"));
    database_at(
        clock,
        [(None, b.statements.iter().map(|s| s.sql(&b.sql)).collect())],
    )
}

fn dump(conn: &Connection) -> CanonicalDump {
    CanonicalDump::of(conn, tracking::DEFAULT_TABLE).unwrap()
}

fn note(plan: &Plan) -> String {
    match &plan.baseline {
        Err(NoBaseline::Because(why)) => why.clone(),
        other => panic!("expected no baseline, got {other:?}"),
    }
}

#[test]
fn the_baseline_gives_the_chains_database() {
    let (_dir, plan) = check(
        "full",
        &[
            "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL);
             CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT,
                 author_id INTEGER NOT NULL REFERENCES authors(id), body TEXT,
                 words INTEGER GENERATED ALWAYS AS (length(body)) VIRTUAL);
             CREATE TABLE audit (at INTEGER PRIMARY KEY, what TEXT);
             CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN
                 INSERT INTO audit (what) VALUES ('post ' || new.id);
             END;
             INSERT INTO authors (id, name, score) VALUES (1, 'it''s me', 0.1), (2, 'big', 1e300), (3, 'neg', -2.5);
             INSERT INTO posts (author_id, body) VALUES (1, 'a'), (2, 'b'), (1, 'c');
             DELETE FROM posts WHERE id = 3;",
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
             INSERT INTO kv VALUES ('x', X'00FF10'), ('nul', CAST(X'610062' AS TEXT)), ('i', 9223372036854775807), ('m', -9223372036854775808);
             CREATE TABLE odd (rowid TEXT, oid INTEGER, n INTEGER);
             INSERT INTO odd VALUES ('r', 1, 2), (NULL, NULL, NULL);
             DELETE FROM odd WHERE n = 2;
             INSERT INTO odd VALUES ('s', 3, 4);
             ALTER TABLE authors ADD COLUMN bio TEXT NOT NULL DEFAULT 'none';
             CREATE VIEW prolific AS SELECT a.name, count(*) AS n FROM authors a JOIN posts p ON p.author_id = a.id GROUP BY a.id;",
            // The twelve-step rebuild: the table's rows move to a new table.
            "PRAGMA defer_foreign_keys = ON;
             DROP VIEW prolific;
             CREATE TABLE authors_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, bio TEXT);
             INSERT INTO authors_new SELECT id, name, score, bio FROM authors;
             DROP TABLE authors;
             ALTER TABLE authors_new RENAME TO authors;
             CREATE INDEX authors_by_score ON authors (score) WHERE score > 0;
             CREATE VIEW prolific AS SELECT a.name, count(*) AS n FROM authors a JOIN posts p ON p.author_id = a.id GROUP BY a.id;
             CREATE VIRTUAL TABLE search USING fts5(body);
             PRAGMA defer_foreign_keys = OFF;",
        ],
    );
    let b = plan.baseline.as_ref().unwrap_or_else(|e| panic!("{e}"));
    // Triggers come after the rows, so the chain's audit rows are not doubled.
    let sql = &b.sql;
    assert!(sql.find("INSERT INTO \"audit\"").unwrap() < sql.find("CREATE TRIGGER").unwrap());
    assert!(sql.starts_with("PRAGMA defer_foreign_keys = ON;\n"));
    assert!(sql.ends_with("PRAGMA defer_foreign_keys = OFF;\n"));
    let (chain, baseline) = (chain(&plan), baseline(&plan));
    assert_eq!(dump(&chain), dump(&baseline));
    // The AUTOINCREMENT counter is above the highest rowid left.
    let seq: i64 = baseline
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'posts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seq, 3);
    // Each statement's span is one statement of the text, at its line.
    for (i, s) in b.statements.iter().enumerate() {
        assert_eq!(&sql[s.end..s.end + 2], ";\n", "statement {i}");
        let line = sql[..s.start].matches('\n').count() + 1;
        assert_eq!(s.line as usize, line);
    }
}

#[test]
fn rows_are_cut_into_statements_under_the_limit() {
    let (_dir, plan) = check(
        "batches",
        &["CREATE TABLE t (id INTEGER PRIMARY KEY, pad TEXT);
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
           INSERT INTO t SELECT i, printf('%.100c', 'x') FROM n;"],
    );
    let b = plan.baseline.as_ref().unwrap();
    let inserts: Vec<&str> = b
        .statements
        .iter()
        .map(|s| s.sql(&b.sql))
        .filter(|s| s.starts_with("INSERT"))
        .collect();
    assert!(inserts.len() >= 4, "{}", inserts.len());
    assert!(inserts.iter().all(|s| s.len() < 100_000));
    assert_eq!(dump(&chain(&plan)), dump(&baseline(&plan)));
}

#[test]
fn unreproducible_chains_have_no_baseline_and_say_where() {
    let (_dir, plan) = check(
        "random",
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, token BLOB);",
            "INSERT INTO t (token) VALUES (randomblob(16));",
        ],
    );
    assert_eq!(
        note(&plan),
        "m/0002_x.sql:1:1 calls `randomblob()`, which a build cannot reproduce"
    );
    assert_eq!(
        plan.migrations[1].unreproducible.as_deref(),
        Some("m/0002_x.sql:1:1 calls `randomblob()`")
    );

    // Through a trigger, and through a column's default, which SQLite does
    // not show the authorizer.
    let (_dir, plan) = check(
        "random-trigger",
        &["CREATE TABLE t (id INTEGER PRIMARY KEY);
           CREATE TABLE log (token BLOB);
           CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (randomblob(4)); END;
           INSERT INTO t DEFAULT VALUES;"],
    );
    assert!(
        note(&plan).starts_with("m/0001_x.sql:4:12 calls `randomblob()`"),
        "{}",
        note(&plan)
    );
    let (_dir, plan) = check(
        "random-default",
        &[
            "CREATE TABLE users (id INTEGER PRIMARY KEY, token TEXT DEFAULT (hex(randomblob(8))));",
            "INSERT INTO users (id) VALUES (1);",
        ],
    );
    assert_eq!(
        note(&plan),
        "m/0002_x.sql:1:1 inserts into `users`, whose column `token` defaults to `randomblob`, which a build cannot reproduce"
    );

    // A row that gives the column a value does not use the default, nor
    // does an insert of every column; a trigger's insert is not read.
    let (_dir, plan) = check(
        "default-given",
        &["CREATE TABLE users (id INTEGER PRIMARY KEY, \"Token\" TEXT DEFAULT (hex(randomblob(8))));",
          "INSERT INTO users (id, token) VALUES (1, 'a');
           INSERT INTO \"USERS\" VALUES (2, 'b');
           INSERT INTO users SELECT 3, 'c';"],
    );
    assert!(plan.baseline.is_ok(), "{:?}", plan.baseline);
    assert!(plan.migrations.iter().all(|m| m.unreproducible.is_none()));
    let (_dir, plan) = check(
        "default-trigger",
        &["CREATE TABLE users (id INTEGER PRIMARY KEY, token TEXT DEFAULT (hex(randomblob(8))));
           CREATE TABLE log (n INTEGER);
           CREATE TRIGGER log_users AFTER INSERT ON log BEGIN INSERT INTO users (id) VALUES (new.n); END;
           INSERT INTO log (n) VALUES (1);"],
    );
    assert!(
        note(&plan).starts_with("m/0001_x.sql:4:12 inserts into `users`"),
        "{}",
        note(&plan)
    );

    // The same default without a row: nothing to reproduce.
    let (_dir, plan) = check(
        "default-only",
        &[
            "CREATE TABLE users (id INTEGER PRIMARY KEY, token TEXT DEFAULT (hex(randomblob(8))));
           CREATE INDEX users_token ON users (token);",
        ],
    );
    assert!(plan.baseline.is_ok(), "{:?}", plan.baseline);
}

/// The chain of `files` has a baseline that gives the chain's database when
/// both run at the same instant, and whose clock values are the clock's
/// when it runs (one day later, they are a day later); returns the plan.
fn reads_the_clock(name: &str, files: &[&str]) -> (Scratch, Plan) {
    let (dir, plan) = check(name, files);
    assert!(plan.baseline.is_ok(), "{name}: {:?}", plan.baseline);
    assert!(
        plan.migrations.iter().any(|m| m.clock.is_some()),
        "{name}: no clock"
    );
    let day = 86_400_000;
    assert_eq!(dump(&chain(&plan)), dump(&baseline(&plan)), "{name}");
    let later = database_at(
        NOW + day,
        plan.migrations.iter().map(|m| {
            let statements = m.statements.iter().map(|s| s.sql(&m.source.text)).collect();
            let record = (m.source.version, "", "", "");
            (Some(record), statements)
        }),
    );
    assert_eq!(
        dump(&later),
        dump(&baseline_at(NOW + day, &plan)),
        "{name} a day later"
    );
    assert_ne!(
        dump(&later),
        dump(&baseline(&plan)),
        "{name}: no clock value"
    );
    (dir, plan)
}

#[test]
fn values_from_the_clock_are_read_from_the_clock_when_the_baseline_runs() {
    // A seed row leaves a clock default out: the baseline leaves it to
    // the same expression.
    let (_dir, plan) = reads_the_clock(
        "default",
        &[
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT,
                 created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
                 at INTEGER DEFAULT (unixepoch() * 1000),
                 day TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));",
            "INSERT INTO users (id, name) VALUES (1, 'admin'), (2, 'bot');
             INSERT INTO users (id, name, created) VALUES (3, 'fixed', '2020-01-01');",
        ],
    );
    assert_eq!(
        plan.migrations[1].clock.as_deref(),
        Some("m/0002_x.sql:1:1 inserts into `users`, whose column `created` defaults to `current_timestamp`")
    );
    assert_eq!(plan.migrations[1].unreproducible, None);
    let b = plan.baseline.as_ref().unwrap();
    assert!(b.sql.contains("(CURRENT_TIMESTAMP)"), "{}", b.sql);
    assert!(b.sql.contains("'2020-01-01'"), "{}", b.sql);

    // Statements and triggers that call the clock, a trigger stamping
    // `updated_at`, and an expression around the call.
    reads_the_clock(
        "calls",
        &[
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT,
                 updated_at TEXT, ms INTEGER, day TEXT);
             CREATE TABLE log (at REAL, what TEXT);
             CREATE TRIGGER posts_log AFTER INSERT ON posts BEGIN
                 INSERT INTO log VALUES (julianday('now'), 'post ' || new.id);
             END;
             CREATE TRIGGER posts_touch AFTER UPDATE OF body ON posts BEGIN
                 UPDATE posts SET updated_at = datetime('now') WHERE id = new.id;
             END;",
            "INSERT INTO posts (id, body, ms, day) VALUES (1, 'a', unixepoch() * 1000, date('now', '+7 days')), (2, 'b', 0, date());
             UPDATE posts SET body = 'c' WHERE id = 2;",
        ],
    );

    // A date that does not depend on the instant is a plain value.
    let (_dir, plan) = check(
        "constant",
        &["CREATE TABLE t (d TEXT); INSERT INTO t VALUES (date('2020-01-01', '+1 day'));"],
    );
    let b = plan.baseline.as_ref().unwrap();
    assert!(b.sql.contains("'2020-01-02'"), "{}", b.sql);
    assert!(plan.migrations[0].clock.is_some());
}

#[test]
fn clock_values_no_expression_gives_have_no_baseline_and_say_where() {
    let (_dir, plan) = check(
        "mixed",
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, label TEXT);",
            "INSERT INTO t VALUES (1, 'a', NULL);\nUPDATE t SET label = name || ' at ' || datetime('now');",
        ],
    );
    assert_eq!(
        note(&plan),
        "m/0002_x.sql:2:1 calls `datetime()`, and `t`.\"label\" takes a value from the clock that no clock expression of the chain gives, which a build cannot reproduce"
    );
    // Rows that exist or not by the clock: the two instants may agree on
    // what the clock decides, and the instant the baseline runs not.
    let (_dir, plan) = check(
        "rows",
        &["CREATE TABLE t (x);\nINSERT INTO t SELECT 1 WHERE strftime('%m', 'now') = '02';"],
    );
    assert_eq!(
        note(&plan),
        "m/0001_x.sql:2:1 calls `strftime()`, and m/0001_x.sql:2:30 reads the clock in a `WHERE` clause, which a build cannot reproduce"
    );
}

#[test]
fn a_virtual_table_holding_rows_has_no_baseline() {
    let (_dir, plan) = check(
        "fts",
        &["CREATE VIRTUAL TABLE search USING fts5(body);
           INSERT INTO search (body) VALUES ('hello');"],
    );
    assert_eq!(note(&plan), "the virtual table `search` holds rows");
}

#[test]
fn what_the_baseline_cannot_write_is_found_by_the_verification() {
    // ANALYZE leaves `sqlite_stat1`, which a baseline may not create.
    let (_dir, plan) = check(
        "analyze",
        &["CREATE TABLE t (id INTEGER PRIMARY KEY, n TEXT);
           CREATE INDEX t_n ON t (n);
           INSERT INTO t (n) VALUES ('a'), ('b');
           ANALYZE;"],
    );
    let note = note(&plan);
    assert!(
        note.starts_with("the baseline does not give the chain's database"),
        "{note}"
    );
    assert!(note.contains("sqlite_stat1"), "{note}");
}

#[test]
fn many_tables_with_foreign_keys_have_a_baseline() {
    // Enough tables that the whole-database `PRAGMA foreign_key_check`
    // passes workerd's VDBE operation limit: the check is per table.
    const TABLES: usize = 1500;
    let mut text = String::from("CREATE TABLE parent (id INTEGER PRIMARY KEY);\n");
    text.push_str("INSERT INTO parent (id) VALUES (1);\n");
    for i in 0..TABLES {
        text.push_str(&format!(
            "CREATE TABLE child_{i} (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id));\n"
        ));
    }
    text.push_str("INSERT INTO child_7 (id, parent_id) VALUES (1, 1);\n");
    let (_dir, plan) = check("many-tables", &[&text]);
    let chain = chain(&plan);
    let whole = chain.prepare("PRAGMA foreign_key_check").map(|_| ());
    assert!(whole.is_err(), "the limit no longer bites: raise TABLES");
    assert_eq!(dump(&chain), dump(&baseline(&plan)));
}

#[test]
fn baseline_false_turns_it_off() {
    let scratch = Scratch::new(
        "baseline-off",
        &[("m/0001_x.sql", b"CREATE TABLE t (id INTEGER PRIMARY KEY);")],
    );
    let options = Options {
        baseline: false,
        ..Options::default()
    };
    let plan = check_dir(
        &scratch.0,
        "m",
        &options.clone().with_cache(CacheSetting::Off),
    )
    .unwrap();
    assert_eq!(plan.baseline, Err(NoBaseline::Off));
    assert_eq!(
        NoBaseline::Off.to_string(),
        "turned off (`baseline = false`)"
    );
}

#[test]
fn a_dropped_autoincrement_table_leaves_what_a_baseline_cannot_create() {
    // `sqlite_sequence` outlives the table; only SQLite may create it.
    let (_dir, plan) = check(
        "dropped-autoincrement",
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n TEXT);",
            "DROP TABLE t; CREATE TABLE u (id INTEGER PRIMARY KEY);",
        ],
    );
    let note = note(&plan);
    assert_eq!(
        note, "the baseline fails: no such table: sqlite_sequence",
        "{note}"
    );
}

#[test]
fn replay_baseline_gives_the_baseline_check_dir_gives() {
    let files = [
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n TEXT);
         INSERT INTO t (n) VALUES ('a'), ('b');",
        "CREATE INDEX t_n ON t (n); DELETE FROM t WHERE n = 'b';",
    ];
    let (_dir, plan) = check("replay", &files);
    let sources = [
        ReplaySource::new("m/0001_x.sql", files[0]),
        ReplaySource::new("m/0002_x.sql", files[1]),
    ];
    let (findings, baseline) = replay_baseline(&sources, tracking::DEFAULT_TABLE);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(baseline, plan.baseline);
    assert!(baseline.is_ok(), "{baseline:?}");

    // The note of what a build cannot reproduce, as in a plan.
    let sources = [ReplaySource::new(
        "a.sql",
        "CREATE TABLE t (x); INSERT INTO t VALUES (random());",
    )];
    let (findings, baseline) = replay_baseline(&sources, tracking::DEFAULT_TABLE);
    assert!(findings.is_empty(), "{findings:#?}");
    assert_eq!(
        baseline,
        Err(NoBaseline::Because(
            "a.sql:1:21 calls `random()`, which a build cannot reproduce".to_owned()
        ))
    );

    // A chain with findings has none.
    let sources = [ReplaySource::new("a.sql", "CREATE TABLE t (x); SELEC 1;")];
    let (findings, baseline) = replay_baseline(&sources, tracking::DEFAULT_TABLE);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(
        baseline,
        Err(NoBaseline::Because("the chain has errors".to_owned()))
    );
}

#[test]
fn connection_state_in_a_migration_is_the_executors_in_the_baseline_too() {
    // The executor writes the tracking row first: `last_insert_rowid()` is
    // the migration's version and `changes()` 1 until its own first write.
    // The replay writes the same row first, so the baseline holds the
    // chain's values.
    for (name, files, expected) in [
        (
            "last-insert-rowid",
            &[
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v);
                 INSERT INTO t (v) VALUES (last_insert_rowid());",
                "INSERT INTO t (v) VALUES (last_insert_rowid()), (changes());
                 INSERT INTO t (v) VALUES (last_insert_rowid() * 10 + changes());",
            ][..],
            &[1, 2, 1, 32][..],
        ),
        (
            "changes-default",
            &[
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v DEFAULT (changes() * 10 + last_insert_rowid()));",
                "INSERT INTO t (id) VALUES (1);",
            ][..],
            &[12][..],
        ),
        (
            "history-trigger",
            &[
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v);
                 CREATE TABLE log (id INTEGER PRIMARY KEY, v);
                 CREATE TRIGGER t_log BEFORE INSERT ON log BEGIN INSERT INTO t (v) VALUES (last_insert_rowid()); END;",
                "INSERT INTO log (id) VALUES (7);",
            ][..],
            &[2][..],
        ),
    ] {
        let (_dir, plan) = check(name, files);
        assert!(plan.baseline.is_ok(), "{name}: {:?}", plan.baseline);
        let chain = chain(&plan);
        let values: Vec<i64> = chain
            .prepare("SELECT v FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(values, expected, "{name}");
        assert_eq!(dump(&chain), dump(&baseline(&plan)), "{name}");
    }
}

#[test]
fn total_changes_has_no_baseline_and_says_where() {
    // It counts every write since the database was opened: on a Durable
    // Object, whatever the object did before in that process.
    let (_dir, plan) = check(
        "total-changes",
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v);",
            "INSERT INTO t (v) SELECT changes() + 100 * total_changes();",
        ],
    );
    assert_eq!(
        note(&plan),
        "m/0002_x.sql:1:1 calls `total_changes()`, which a build cannot reproduce"
    );
    let (_dir, plan) = check(
        "total-changes-default",
        &[
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v DEFAULT (total_changes()));",
            "INSERT INTO t (id) VALUES (1);",
        ],
    );
    assert_eq!(
        note(&plan),
        "m/0002_x.sql:1:1 inserts into `t`, whose column `v` defaults to `total_changes`, which a build cannot reproduce"
    );
    let (_dir, plan) = check(
        "total-changes-trigger",
        &["CREATE TABLE t (id INTEGER PRIMARY KEY);
           CREATE TABLE log (n INTEGER);
           CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (total_changes()); END;",
          "INSERT INTO t DEFAULT VALUES;"],
    );
    assert_eq!(
        note(&plan),
        "m/0002_x.sql:1:1 calls `total_changes()`, which a build cannot reproduce"
    );
}

#[test]
fn rows_copied_from_the_schema_have_no_baseline_and_say_where() {
    // On a Durable Object `sqlite_schema` lists workerd's `_cf_` tables too,
    // which the replay does not have.
    for (name, text, listing, at) in [
        (
            "schema-insert",
            "CREATE TABLE names (name TEXT);\nINSERT INTO names SELECT name FROM sqlite_schema;",
            "sqlite_schema",
            "2:1",
        ),
        (
            "master-update",
            "CREATE TABLE n (k INTEGER PRIMARY KEY, c INTEGER);\nINSERT INTO n (k) VALUES (1);\nUPDATE n SET c = (SELECT count(*) FROM sqlite_master);",
            "sqlite_schema",
            "3:1",
        ),
        (
            "table-list",
            "CREATE TABLE names (name TEXT);\nINSERT INTO names SELECT name FROM pragma_table_list;",
            "pragma_table_list",
            "2:1",
        ),
        (
            "as-select",
            "CREATE TABLE x (a);\nCREATE TABLE names AS SELECT name FROM sqlite_schema;",
            "sqlite_schema",
            "2:1",
        ),
        (
            "through-a-view",
            "CREATE VIEW objects AS SELECT name FROM sqlite_schema;\nCREATE TABLE n (c INTEGER);\nINSERT INTO n SELECT count(*) FROM objects;",
            "sqlite_schema",
            "3:1",
        ),
        (
            "through-a-trigger",
            "CREATE TABLE t (id INTEGER PRIMARY KEY);\nCREATE TABLE n (c INTEGER);\nCREATE TRIGGER t_n AFTER INSERT ON t BEGIN INSERT INTO n SELECT count(*) FROM sqlite_schema; END;\nINSERT INTO t DEFAULT VALUES;",
            "sqlite_schema",
            "4:1",
        ),
    ] {
        let (_dir, plan) = check(name, &[text]);
        assert_eq!(
            note(&plan),
            format!("m/0001_x.sql:{at} writes rows that depend on `{listing}`, which a build cannot reproduce"),
            "{name}"
        );
    }
}

#[test]
fn chains_reading_the_schema_only_to_change_it_keep_their_baseline() {
    // SQLite reads `sqlite_schema` itself for every `CREATE`, `ALTER` and
    // `DROP`; a migration may read it without writing rows, and copy rows
    // between its own tables.
    let (_dir, plan) = check(
        "ddl",
        &[
            "CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);
             CREATE INDEX a_x ON a (x);
             INSERT INTO a (x) VALUES ('one'), ('two');
             CREATE VIEW objects AS SELECT name FROM sqlite_schema;
             CREATE TRIGGER a_touch AFTER UPDATE ON a BEGIN SELECT 1; END;
             SELECT count(*) FROM sqlite_schema;
             SELECT name FROM pragma_table_list;",
            "ALTER TABLE a ADD COLUMN y INTEGER;
             ALTER TABLE a RENAME COLUMN y TO z;
             CREATE TABLE b AS SELECT id, x FROM a;
             CREATE TABLE a_new (id INTEGER PRIMARY KEY, x TEXT, z INTEGER);
             INSERT INTO a_new SELECT id, x, z FROM a;
             DROP VIEW objects;
             DROP TABLE a;
             ALTER TABLE a_new RENAME TO a;
             UPDATE a SET z = id * 2;
             DELETE FROM b WHERE id = 1;",
        ],
    );
    assert!(plan.baseline.is_ok(), "{:?}", plan.baseline);
    assert!(plan.migrations.iter().all(|m| m.unreproducible.is_none()));
    assert_eq!(dump(&chain(&plan)), dump(&baseline(&plan)));
}

#[test]
fn many_small_rows_are_cut_by_the_virtual_machine_limit() {
    // Four thousand rows of a few bytes fit one 64 KB statement, but its
    // program passes workerd's `SQLITE_LIMIT_VDBE_OP` ("out of memory").
    for (name, table, select) in [
        (
            "small-rows",
            "CREATE TABLE seed (id INTEGER PRIMARY KEY, a, b)",
            "SELECT i, i % 2, -1 FROM n",
        ),
        (
            "small-rows-nul",
            "CREATE TABLE seed (a, b TEXT, c)",
            "SELECT i % 3, CAST(X'0061' AS TEXT), NULL FROM n",
        ),
        (
            "small-rows-without-rowid",
            "CREATE TABLE seed (k INTEGER PRIMARY KEY, v, w) WITHOUT ROWID",
            "SELECT i, 0, 1 FROM n",
        ),
    ] {
        let text = format!(
            "{table};\nWITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO seed {select};"
        );
        let (_dir, plan) = check(name, &[&text]);
        let b = plan
            .baseline
            .as_ref()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let inserts = b
            .statements
            .iter()
            .filter(|s| s.sql(&b.sql).starts_with("INSERT"))
            .count();
        assert!(inserts >= 2, "{name}: {inserts}");
        assert_eq!(dump(&chain(&plan)), dump(&baseline(&plan)), "{name}");
    }
}

#[test]
fn wide_rows_are_cut_by_the_statement_limit() {
    // A hundred columns of 600 bytes: a row is 60 KB of SQL, alone in its
    // statement; one 95 KB row fits the statement limit alone.
    let columns: Vec<String> = (1..100).map(|i| format!("c{i} TEXT")).collect();
    let values: Vec<&str> = vec!["printf('%.600c', 'w')"; 99];
    let (_dir, plan) = check(
        "wide-rows",
        &[&format!(
            "CREATE TABLE wide (id INTEGER PRIMARY KEY, {});
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12)
             INSERT INTO wide SELECT i, {} FROM n;
             CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO big (body) VALUES (printf('%.95000c', 'b')), ('small');",
            columns.join(", "),
            values.join(", ")
        )],
    );
    let b = plan.baseline.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let inserts: Vec<&str> = b
        .statements
        .iter()
        .map(|s| s.sql(&b.sql))
        .filter(|s| s.starts_with("INSERT"))
        .collect();
    assert_eq!(
        inserts.len(),
        14,
        "a statement a wide row, and the long one alone"
    );
    assert!(inserts.iter().all(|s| s.len() <= 100_000));
    assert_eq!(dump(&chain(&plan)), dump(&baseline(&plan)));

    // A row longer than a statement may be cannot be written: the note
    // names the limit.
    let (_dir, plan) = check(
        "too-wide-row",
        &["CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT);
           INSERT INTO big (body) VALUES (printf('%.120000c', 'b'));"],
    );
    assert_eq!(
        note(&plan),
        "a row of `big` is 117 KB of SQL, over a Durable Object's 100 KB per statement (`SQLITE_LIMIT_SQL_LENGTH`)"
    );
}

#[test]
fn a_limit_the_baseline_passes_is_named() {
    for (message, limit) in [
        ("out of memory", "`SQLITE_LIMIT_VDBE_OP`"),
        ("statement too long", "`SQLITE_LIMIT_SQL_LENGTH`"),
        ("string or blob too big", "`SQLITE_LIMIT_LENGTH`"),
    ] {
        let named = super::limit_named(message).unwrap_or_default();
        assert!(named.ends_with(&format!("({limit})")), "{message}: {named}");
    }
    assert_eq!(super::limit_named("no such table: t"), None);
}

/// Why the baseline is verified at the second instant too: one that holds
/// the instant of the build (the values as literals) gives the replay's
/// database at the replay's instant, and not at another.
#[test]
fn a_baseline_holding_the_instant_of_the_build_fails_at_the_second_instant() {
    let text = "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT DEFAULT CURRENT_TIMESTAMP);\nINSERT INTO t (id) VALUES (1);";
    let statements = crate::split::spans(text);
    let script = crate::replay::Script {
        display_path: "m/0001_x.sql",
        version: 1,
        text,
        statements: &statements,
    };
    let table = tracking::DEFAULT_TABLE;
    let first = crate::replay::replay_at(&[script], table, NOW).unwrap();
    let second = crate::replay::replay_at(&[script], table, NOW + super::SECOND_INSTANT).unwrap();
    let literal = first
        .read(|conn| super::build(conn, table, None))
        .unwrap()
        .unwrap()
        .into_baseline();
    assert!(
        literal.sql.contains("'2024-02-29 12:34:56'"),
        "{}",
        literal.sql
    );
    assert_eq!(super::verify(&first, &literal, table), Ok(()));
    let err = super::verify(&second, &literal, table).unwrap_err();
    assert!(err.contains("the rows of `t` differ"), "{err}");
}
