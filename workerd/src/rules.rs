//! The Durable Object rules, decided the way workerd's SQLite authorizer
//! decides them. Mirrored from workerd's `src/workerd/util/sqlite.c++`
//! (`SqliteDatabase::isAuthorized`, its allowlists `ALLOWED_SQLITE_FUNCTIONS`
//! and the PRAGMA table, `isAllowedName`; release 2026-08-22): when workerd
//! changes them, this file changes with it.
//!
//! [`decide`] is a pure function of one authorizer callback, so the rules are
//! unit-tested on plain data and hold even for statements no SQL parser
//! accepts: SQLite itself reports every action a statement performs. The
//! one rule the callback of a stock SQLite cannot see, the new name of
//! `ALTER TABLE … RENAME TO`, is read from the statement's words by
//! [`rename_denial`].

use rusqlite::hooks::{AuthAction, AuthContext, TransactionOperation};

use crate::words::{unquote, word_is, words};

/// Where durable-schema's docs explain rebuilding a table (and what
/// foreign keys do to it inside a migration), for help texts that need a
/// recipe: a refused `ALTER TABLE` form here, the replay's foreign-key
/// findings in the compiler. A page and a section named in words: the help
/// is read in the user's crate, where a relative link would not resolve.
pub const REBUILD_GUIDE: &str =
    "durable-schema's docs/checks.md, section \"Rebuilding a table that others reference\"";

/// Which Durable Object rule a statement breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE.
    Transaction,
    /// A PRAGMA outside workerd's allowlist, or with a refused argument.
    Pragma,
    /// ATTACH / DETACH, or a schema other than `main`.
    Attach,
    /// TEMP tables, views, indexes and triggers.
    Temp,
    /// A virtual-table module other than fts5, fts5vocab, rtree, rtree_i32.
    Module,
    /// A name starting with `_cf_` (any case): reserved by workerd.
    ReservedName,
    /// An SQL function missing from workerd's allowlist.
    Function,
    /// Creating, altering, dropping or writing the migration tracking table.
    TrackingTable,
    /// A limit workerd sets below SQLite's defaults: 100 KB statements, 100
    /// columns, 5 compound terms, expression depth 100, and the like.
    Limit,
    /// (Judged by the compile-time replay, not by the authorizer.) A
    /// foreign-key failure that happens only because `PRAGMA foreign_keys =
    /// OFF` does nothing inside a transaction: each migration runs in one (on
    /// a Durable Object too), so the keys stay checked where a plain SQLite
    /// session outside a transaction would have switched them off.
    ForeignKeysOff,
    /// (Judged by the compile-time replay, not by the authorizer.) Dropping
    /// a table that other tables' foreign keys reference: with the
    /// keys on (always, inside a migration's transaction) the drop deletes
    /// or changes the referencing rows (ON DELETE CASCADE / SET NULL / SET
    /// DEFAULT), or fails once there is data (RESTRICT, or NO ACTION without
    /// `PRAGMA defer_foreign_keys = ON`). The replay has no data, so this is
    /// judged from the schema.
    ReferencedDrop,
    /// An action workerd never allows (e.g. COPY) or does not know.
    Other,
}

impl Rule {
    /// A short kebab-case name, used in lists of exceptions.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Transaction => "transaction",
            Rule::Pragma => "pragma",
            Rule::Attach => "attach",
            Rule::Temp => "temp",
            Rule::Module => "module",
            Rule::ReservedName => "reserved-name",
            Rule::Function => "function",
            Rule::TrackingTable => "tracking-table",
            Rule::Limit => "limit",
            Rule::ForeignKeysOff => "foreign-keys-off",
            Rule::ReferencedDrop => "referenced-drop",
            Rule::Other => "other",
        }
    }
}

/// A refused action: the rule, what was refused, and how to fix it. Plain
/// data: the compile-time replay builds its own for the rules it judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule broken.
    pub rule: Rule,
    /// What was refused, quoting the offending name.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Denial {
    /// The rule broken.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// What was refused, quoting the offending name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it.
    pub fn help(&self) -> &str {
        &self.help
    }
}

fn deny(rule: Rule, message: String, help: impl Into<String>) -> Result<(), Denial> {
    Err(Denial {
        rule,
        message,
        help: help.into(),
    })
}

/// `a, b, c`: a rule table as a list in a help text.
pub fn name_list(items: &[&str]) -> String {
    items.join(", ")
}

/// workerd's `isAllowedName`: false iff the name starts with `_cf_`,
/// compared case-insensitively.
pub fn is_allowed_name(name: &str) -> bool {
    durable_schema_runtime::tracking::reserved_prefix(name) != Some("_cf_")
}

/// The SQL functions a Durable Object may call (workerd's
/// `ALLOWED_SQLITE_FUNCTIONS`, all 138 names, exact case).
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    // core
    "abs",
    "changes",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "format",
    "glob",
    "hex",
    "ifnull",
    "iif",
    "instr",
    "last_insert_rowid",
    "length",
    "like",
    "likelihood",
    "likely",
    "load_extension",
    "lower",
    "ltrim",
    "max_scalar",
    "min_scalar",
    "nullif",
    "octet_length",
    "printf",
    "quote",
    "random",
    "randomblob",
    "replace",
    "round",
    "rtrim",
    "sign",
    "soundex",
    "substr",
    "substring",
    "total_changes",
    "trim",
    "typeof",
    "unhex",
    "unicode",
    "unlikely",
    "upper",
    "zeroblob",
    // date and time
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
    "current_date",
    "current_time",
    "current_timestamp",
    // aggregate
    "avg",
    "count",
    "group_concat",
    "max",
    "min",
    "string_agg",
    "sum",
    "total",
    // window
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // math
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "ceil",
    "cos",
    "cosh",
    "degrees",
    "exp",
    "floor",
    "ln",
    "log",
    "log2",
    "mod",
    "pi",
    "pow",
    "radians",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
    // json
    "json",
    "jsonb",
    "json_array",
    "jsonb_array",
    "json_array_length",
    "json_extract",
    "jsonb_extract",
    "->",
    "->>",
    "json_insert",
    "jsonb_insert",
    "json_object",
    "jsonb_object",
    "json_patch",
    "jsonb_patch",
    "json_remove",
    "jsonb_remove",
    "json_replace",
    "jsonb_replace",
    "json_set",
    "jsonb_set",
    "json_type",
    "json_valid",
    "json_quote",
    "json_group_array",
    "jsonb_group_array",
    "json_group_object",
    "jsonb_group_object",
    "json_each",
    "json_tree",
    // fts5, rtree
    "match",
    "highlight",
    "bm25",
    "snippet",
    "rtreecheck",
    // ALTER TABLE internals (seen by the authorizer, not callable by users)
    "sqlite_rename_column",
    "sqlite_rename_table",
    "sqlite_rename_test",
    "sqlite_drop_column",
    "sqlite_rename_quotefix",
];

/// Virtual-table modules a Durable Object provides.
pub const ALLOWED_MODULES: &[&str] = &["fts5", "fts5vocab", "rtree", "rtree_i32"];

/// Pragmas that take an on/off value (or none, to read it).
const BOOLEAN_PRAGMAS: &[&str] = &[
    "foreign_keys",
    "defer_foreign_keys",
    "case_sensitive_like",
    "ignore_check_constraints",
    "legacy_alter_table",
    "recursive_triggers",
    "reverse_unordered_selects",
];
/// Pragmas that need the name of a table or index.
const OBJECT_NAME_PRAGMAS: &[&str] = &[
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
];
/// Pragmas that can only be read.
const NO_ARG_PRAGMAS: &[&str] = &["data_version", "page_size"];
/// Pragmas with rules of their own (see [`pragma`]).
const OTHER_PRAGMAS: &[&str] = &[
    "table_list",
    "table_info",
    "table_xinfo",
    "foreign_key_check",
    "quick_check",
    "optimize",
];
/// Every pragma a Durable Object allows, in the order the help lists them.
pub const ALLOWED_PRAGMAS: [&[&str]; 4] = [
    BOOLEAN_PRAGMAS,
    OBJECT_NAME_PRAGMAS,
    OTHER_PRAGMAS,
    NO_ARG_PRAGMAS,
];

const TX_HELP: &str = "remove it: durable-schema runs each migration in its own transaction, and a Durable Object refuses transaction statements";
const NAME_HELP: &str =
    "names starting with `_cf_` are reserved for Cloudflare's internal tables; rename the object";
const TEMP_HELP: &str = "a Durable Object has no TEMP schema; create a regular object (and drop it at the end of the migration if it is scratch space)";
const TRACKING_HELP: &str = "durable-schema owns this table; rename yours, or move the tracking table with `table = \"...\"` in #[durable_schema]";
const ATTACH_HELP: &str = "a Durable Object has a single database; keep all tables in it";

/// The help for a virtual-table module a Durable Object lacks, listing
/// [`ALLOWED_MODULES`].
pub fn module_help() -> String {
    format!(
        "a Durable Object provides only the modules {} (fts5 for full-text search)",
        name_list(ALLOWED_MODULES)
    )
}

/// The help for a pragma off the allowlist, listing it.
fn pragma_list_help() -> String {
    format!(
        "a Durable Object allows only the pragmas {}",
        name_list(&ALLOWED_PRAGMAS.concat())
    )
}

/// A transaction statement as written, from what the authorizer reports
/// (SQLite reports `END` as `COMMIT`).
fn transaction_sql(action: &AuthAction<'_>) -> String {
    match action {
        AuthAction::Transaction { operation } => match operation {
            TransactionOperation::Begin => "BEGIN".to_owned(),
            TransactionOperation::Rollback => "ROLLBACK".to_owned(),
            _ => "COMMIT".to_owned(),
        },
        AuthAction::Savepoint {
            operation,
            savepoint_name,
        } => match operation {
            TransactionOperation::Begin => format!("SAVEPOINT {savepoint_name}"),
            TransactionOperation::Release => format!("RELEASE {savepoint_name}"),
            TransactionOperation::Rollback => format!("ROLLBACK TO {savepoint_name}"),
            _ => format!("savepoint {savepoint_name}"),
        },
        _ => "transaction control".to_owned(),
    }
}

/// A readable name for an action no rule names: SQLite's name for its code,
/// or the variant's name in words.
fn action_name(action: &AuthAction<'_>) -> String {
    if let AuthAction::Unknown { code, .. } = action {
        return match *code {
            0 => "`COPY`".to_owned(),
            code => format!("unknown authorizer action {code}"),
        };
    }
    // A variant rusqlite adds later: `CreateFoo { .. }` becomes `create foo`.
    let debug = format!("{action:?}");
    let variant = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut words = String::new();
    for c in variant.chars() {
        if c.is_ascii_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    format!("authorizer action `{words}`")
}

/// Decides one authorizer callback as workerd would, plus, when `tracking`
/// is given, the protection of the tracking table (compared
/// case-insensitively, as SQLite compares identifiers): migrations may not
/// touch it, while a Durable Object itself (`None`) lets any query do so.
pub fn decide(ctx: &AuthContext<'_>, tracking: Option<&str>) -> Result<(), Denial> {
    use AuthAction as A;
    // Schema first. For ALTER TABLE workerd reads the schema from arg1.
    let schema = match &ctx.action {
        A::AlterTable { database_name, .. } => Some(*database_name),
        _ => ctx.database_name,
    };
    if schema == Some("temp") {
        // SQLite's own ALTER TABLE reads and updates sqlite_temp_master.
        return match &ctx.action {
            A::Read { table_name, .. } | A::Update { table_name, .. } => name_ok(table_name),
            _ => deny(
                Rule::Temp,
                "`TEMP` objects are not allowed in a Durable Object".to_owned(),
                TEMP_HELP,
            ),
        };
    }
    if let Some(other) = schema.filter(|s| *s != "main") {
        return deny(
            Rule::Attach,
            format!("schema `{other}` does not exist in a Durable Object (only `main`)"),
            "a Durable Object has a single database; drop the schema prefix",
        );
    }
    let tracked = |table: &str| -> Result<(), Denial> {
        if tracking.is_some_and(|tracking| durable_schema_runtime::tracking::owns(tracking, table))
        {
            deny(
                Rule::TrackingTable,
                format!(
                    "migrations must not create, alter, drop or write `{table}`, a table durable-schema owns"
                ),
                TRACKING_HELP,
            )
        } else {
            Ok(())
        }
    };
    match &ctx.action {
        A::Select | A::Recursive | A::Analyze { .. } => Ok(()),
        A::Read { table_name, .. } => name_ok(table_name),
        A::Update { table_name, .. } | A::Insert { table_name } | A::Delete { table_name } => {
            name_ok(table_name)?;
            tracked(table_name)
        }
        A::CreateTable { table_name } | A::DropTable { table_name } => {
            name_ok(table_name)?;
            tracked(table_name)
        }
        A::CreateView { view_name } | A::DropView { view_name } => name_ok(view_name),
        A::Reindex { index_name } => name_ok(index_name),
        A::CreateIndex {
            index_name,
            table_name,
        }
        | A::DropIndex {
            index_name,
            table_name,
        } => {
            name_ok(index_name)?;
            name_ok(table_name)?;
            tracked(table_name)
        }
        A::CreateTrigger {
            trigger_name,
            table_name,
        }
        | A::DropTrigger {
            trigger_name,
            table_name,
        } => {
            name_ok(trigger_name)?;
            name_ok(table_name)?;
            tracked(table_name)
        }
        A::AlterTable { table_name, .. } => {
            name_ok(table_name)?;
            // Stock SQLite passes the dropped column's name as the extra
            // argument; workerd checks it like any other name.
            if let Some(extra) = ctx.database_name {
                name_ok(extra)?;
            }
            tracked(table_name)
        }
        A::CreateVtable {
            table_name,
            module_name,
        }
        | A::DropVtable {
            table_name,
            module_name,
        } => {
            if !ALLOWED_MODULES
                .iter()
                .any(|m| m.eq_ignore_ascii_case(module_name))
            {
                return deny(
                    Rule::Module,
                    format!(
                        "virtual table module `{module_name}` is not available in a Durable Object"
                    ),
                    module_help(),
                );
            }
            name_ok(table_name)?;
            tracked(table_name)
        }
        A::Function { function_name } => {
            // SQLite reports a resolved function under its canonical (lower
            // case) name, which workerd matches exactly. SQLite 3.54 also
            // reports the functions of DEFAULT clauses, under the name *as
            // typed* (`DEFAULT CURRENT_TIMESTAMP` arrives as
            // `CURRENT_TIMESTAMP`); 3.53, which workerd and the replay run,
            // does not check DEFAULT clauses at all. Matching
            // case-insensitively gives the same answer as an exact match for
            // canonical names and keeps such chains valid on either version.
            if ALLOWED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                Ok(())
            } else {
                let message = if alter_table_internal(function_name) {
                    format!("this ALTER TABLE form is not available in a Durable Object (it calls SQLite's internal `{function_name}`)")
                } else {
                    format!("function `{function_name}` is not available in a Durable Object")
                };
                deny(Rule::Function, message, function_help(function_name))
            }
        }
        A::Pragma {
            pragma_name,
            pragma_value,
        } => pragma(pragma_name, *pragma_value),
        action @ (A::Transaction { .. } | A::Savepoint { .. }) => deny(
            Rule::Transaction,
            format!(
                "`{}` is not allowed in a migration",
                transaction_sql(action)
            ),
            TX_HELP,
        ),
        // SQLite reports an ATTACH of a computed file name without the name.
        A::Attach { .. }
        | A::Unknown {
            code: rusqlite::ffi::SQLITE_ATTACH,
            ..
        } => deny(
            Rule::Attach,
            "`ATTACH` is not allowed in a Durable Object".to_owned(),
            ATTACH_HELP,
        ),
        A::Detach { .. }
        | A::Unknown {
            code: rusqlite::ffi::SQLITE_DETACH,
            ..
        } => deny(
            Rule::Attach,
            "`DETACH` is not allowed in a Durable Object".to_owned(),
            ATTACH_HELP,
        ),
        A::CreateTempIndex { .. }
        | A::CreateTempTable { .. }
        | A::CreateTempTrigger { .. }
        | A::CreateTempView { .. }
        | A::DropTempIndex { .. }
        | A::DropTempTable { .. }
        | A::DropTempTrigger { .. }
        | A::DropTempView { .. } => deny(
            Rule::Temp,
            "`TEMP` objects are not allowed in a Durable Object".to_owned(),
            TEMP_HELP,
        ),
        other => deny(
            Rule::Other,
            format!("{} is not allowed in a Durable Object", action_name(other)),
            "remove the statement",
        ),
    }
}

fn name_ok(name: &str) -> Result<(), Denial> {
    if is_allowed_name(name) {
        Ok(())
    } else {
        deny(
            Rule::ReservedName,
            format!("`{name}` is a reserved name in a Durable Object"),
            NAME_HELP,
        )
    }
}

/// `ALTER TABLE … RENAME TO _cf_…`.
pub const RENAME_RESERVED_HELP: &str =
    "names starting with `_cf_` are reserved for Cloudflare's internal tables; pick another name";

/// `ALTER TABLE … RENAME TO <tracking table>`.
pub const RENAME_TRACKING_HELP: &str = "durable-schema owns this table; choose another name";

/// The one rule the authorizer of a stock SQLite cannot see: `ALTER TABLE
/// … RENAME TO` a `_cf_` name (workerd's patched SQLite shows its
/// authorizer the new name; here it is read from the statement's words)
/// or, when `tracking` is given, to the tracking table (as in [`decide`]).
/// `sql` is one statement.
pub fn rename_denial(sql: &str, tracking: Option<&str>) -> Option<Denial> {
    let target = rename_target(sql)?;
    if !is_allowed_name(&target) {
        return Some(Denial {
            rule: Rule::ReservedName,
            message: format!("`{target}` is a reserved name in a Durable Object"),
            help: RENAME_RESERVED_HELP.to_owned(),
        });
    }
    if tracking.is_some_and(|t| durable_schema_runtime::tracking::owns(t, &target)) {
        return Some(Denial {
            rule: Rule::TrackingTable,
            message: format!("migrations must not rename a table to the tracking table `{target}`"),
            help: RENAME_TRACKING_HELP.to_owned(),
        });
    }
    None
}

/// The new name in `ALTER TABLE … RENAME TO x`, unquoted.
pub fn rename_target(sql: &str) -> Option<String> {
    let words = words(sql);
    let is = |i: usize, k: &str| word_is(&words, i, k);
    if !(is(0, "alter") && is(1, "table")) {
        return None;
    }
    let rename = (2..words.len()).find(|&i| is(i, "rename") && is(i + 1, "to"))?;
    Some(unquote(words.get(rename + 2)?))
}

/// SQLite-internal functions that `ALTER TABLE … ADD/DROP CONSTRAINT` and
/// `ALTER COLUMN … SET/DROP NOT NULL` (SQLite 3.53) call, which workerd does
/// not allow.
fn alter_table_internal(name: &str) -> bool {
    [
        "sqlite_fail",
        "sqlite_add_constraint",
        "sqlite_drop_constraint",
        "sqlite_find_constraint",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

fn function_help(name: &str) -> String {
    let help = match name.to_ascii_lowercase().as_str() {
        "power" => "use `pow` (workerd allows only that spelling)",
        "ceiling" => "use `ceil` (workerd allows only that spelling)",
        "log10" => "use `log(x)` (base 10) or `log(10, x)`",
        n if alter_table_internal(n) => {
            return format!("rebuild the table instead; see {REBUILD_GUIDE}")
        }
        n if n.starts_with("sqlite_") => {
            "sqlite_* introspection functions are hidden from Durable Objects"
        }
        _ => "see the list of functions a Durable Object allows in workerd's sqlite.c++",
    };
    help.to_owned()
}

/// workerd's PRAGMA rules, in workerd's order (`WORKERD-AUTHORIZER.md` §1b).
fn pragma(name: &str, value: Option<&str>) -> Result<(), Denial> {
    let refuse = |why: String| {
        let help = if name.bytes().any(|b| b.is_ascii_uppercase())
            && allowed_pragma_name(&name.to_ascii_lowercase())
        {
            format!("write the pragma name in lower case (`PRAGMA {}`): workerd compares pragma names case-sensitively", name.to_ascii_lowercase())
        } else {
            match name {
                "user_version" => "a Durable Object has no user_version; durable-schema records versions in its tracking table, so drop this pragma".to_owned(),
                "journal_mode" | "synchronous" | "locking_mode" => "a Durable Object manages its own storage; remove this pragma".to_owned(),
                _ if NO_ARG_PRAGMAS.contains(&name) => format!("read it with `PRAGMA {name}`, without a value"),
                _ if BOOLEAN_PRAGMAS.contains(&name) => format!("write `PRAGMA {name} = ON` or `PRAGMA {name} = OFF`"),
                "optimize" => "write `PRAGMA optimize` alone, or with a 32-bit mask".to_owned(),
                _ if allowed_pragma_name(name) => format!("name a table or index, e.g. `PRAGMA {name}(users)`"),
                _ => pragma_list_help(),
            }
        };
        Err(Denial {
            rule: Rule::Pragma,
            message: why,
            help,
        })
    };
    let shown = match value {
        Some(v) => format!("PRAGMA {name} = {v}"),
        None => format!("PRAGMA {name}"),
    };
    match name {
        "table_list" => return Ok(()),
        "table_info" | "table_xinfo" => {
            return match value {
                Some(v) => name_ok(v),
                None => refuse(format!("`{shown}` needs a table name in a Durable Object")),
            }
        }
        _ => {}
    }
    if NO_ARG_PRAGMAS.contains(&name) {
        return match value {
            None => Ok(()),
            Some(_) => refuse(format!(
                "`{shown}` is not allowed: `{name}` can only be read"
            )),
        };
    }
    if BOOLEAN_PRAGMAS.contains(&name) {
        let Some(v) = value else { return Ok(()) };
        let v = strip_one_quote_pair(v);
        let ok = ["true", "false", "yes", "no", "on", "off", "1", "0"]
            .iter()
            .any(|p| {
                v.as_bytes()
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
            });
        return if ok {
            Ok(())
        } else {
            refuse(format!(
                "`{shown}` is not allowed: expected on/off, true/false, yes/no or 1/0"
            ))
        };
    }
    if OBJECT_NAME_PRAGMAS.contains(&name) {
        return match value {
            Some(v) => name_ok(v),
            None => refuse(format!(
                "`{shown}` needs an object name in a Durable Object"
            )),
        };
    }
    match name {
        "foreign_key_check" => value.map_or(Ok(()), name_ok),
        "quick_check" => match value {
            None => Ok(()),
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
            Some(v) => name_ok(v),
        },
        "optimize" => match value {
            None => Ok(()),
            Some(v) if parses_as_i32(v) => Ok(()),
            Some(_) => refuse(format!(
                "`{shown}` is not allowed: the argument must be a 32-bit integer"
            )),
        },
        _ => refuse(format!("`{shown}` is not allowed in a Durable Object")),
    }
}

fn allowed_pragma_name(name: &str) -> bool {
    ALLOWED_PRAGMAS.iter().any(|list| list.contains(&name))
}

/// Whether `PRAGMA foreign_keys = <value>` switches the keys off, read the
/// way SQLite reads a boolean pragma (`sqlite3GetBoolean`): a leading digit
/// means the number (as a byte), `on`/`yes`/`true` mean on, and anything
/// else means off. `value` is the argument the authorizer sees (unquoted).
pub fn turns_foreign_keys_off(name: &str, value: Option<&str>) -> bool {
    match value {
        Some(value) if name == "foreign_keys" => !is_true(value),
        _ => false,
    }
}

/// Whether SQLite reads a boolean pragma's `value` as on
/// (`sqlite3GetBoolean`).
pub fn is_true(value: &str) -> bool {
    if value.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        // sqlite3Atoi: the leading digits as an i32, 0 when they overflow;
        // getSafetyLevel keeps its low byte.
        let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
        let n = digits.parse::<i32>().unwrap_or(0);
        return (n & 0xff) != 0;
    }
    ["on", "yes", "true"]
        .iter()
        .any(|on| value.eq_ignore_ascii_case(on))
}

fn strip_one_quote_pair(v: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// workerd parses `optimize`'s argument as an `int32_t` (decimal, `-`, `0x`).
fn parses_as_i32(v: &str) -> bool {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let parsed = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => digits.parse::<i64>().ok(),
    };
    parsed
        .map(|n| if neg { -n } else { n })
        .is_some_and(|n| i32::try_from(n).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::hooks::TransactionOperation;

    fn ctx<'a>(action: AuthAction<'a>, db: Option<&'a str>) -> AuthContext<'a> {
        AuthContext {
            action,
            database_name: db,
            accessor: None,
        }
    }

    fn rule(action: AuthAction<'_>, db: Option<&'static str>) -> Option<Rule> {
        decide(&ctx(action, db), Some("migrations"))
            .err()
            .map(|d| d.rule)
    }

    #[test]
    fn renaming_to_a_reserved_name_is_read_from_the_text() {
        let denial = rename_denial("ALTER TABLE t RENAME TO \"_CF_t\"", None).unwrap();
        assert_eq!(denial.rule(), Rule::ReservedName);
        assert_eq!(
            rename_denial("ALTER TABLE t RENAME TO migrations", None),
            None
        );
        assert_eq!(
            rename_denial("ALTER TABLE t RENAME TO [Migrations]", Some("migrations"))
                .map(|d| d.rule),
            Some(Rule::TrackingTable)
        );
        assert_eq!(
            rename_denial("ALTER TABLE _cf_t RENAME TO t", None),
            None,
            "the authorizer's"
        );
        assert_eq!(
            rename_target("alter table main.t /* x */ rename to `a``b`").as_deref(),
            Some("a`b")
        );
        assert_eq!(rename_target("ALTER TABLE t RENAME COLUMN a TO b"), None);
    }

    #[test]
    fn reserved_names_are_case_insensitive() {
        assert!(!is_allowed_name("_cf_KV"));
        assert!(!is_allowed_name("_CF_x"));
        assert!(!is_allowed_name("_cf_"));
        assert!(is_allowed_name("_cf"));
        assert!(is_allowed_name("cf_x"));
        assert_eq!(
            rule(
                AuthAction::CreateTable {
                    table_name: "_Cf_t"
                },
                Some("main")
            ),
            Some(Rule::ReservedName)
        );
        assert_eq!(
            rule(
                AuthAction::Read {
                    table_name: "_cf_KV",
                    column_name: "key"
                },
                Some("main")
            ),
            Some(Rule::ReservedName)
        );
    }

    #[test]
    fn transactions_and_savepoints_are_denied() {
        assert_eq!(
            rule(
                AuthAction::Transaction {
                    operation: TransactionOperation::Begin
                },
                None
            ),
            Some(Rule::Transaction)
        );
        assert_eq!(
            rule(
                AuthAction::Savepoint {
                    operation: TransactionOperation::Begin,
                    savepoint_name: "s"
                },
                None
            ),
            Some(Rule::Transaction)
        );
    }

    #[test]
    fn temp_schema_allows_only_read_and_update() {
        assert_eq!(
            rule(
                AuthAction::Read {
                    table_name: "sqlite_temp_master",
                    column_name: "sql"
                },
                Some("temp")
            ),
            None
        );
        assert_eq!(
            rule(AuthAction::Insert { table_name: "t" }, Some("temp")),
            Some(Rule::Temp)
        );
        assert_eq!(
            rule(
                AuthAction::CreateTempTable { table_name: "t" },
                Some("temp")
            ),
            Some(Rule::Temp)
        );
        assert_eq!(
            rule(AuthAction::Insert { table_name: "t" }, Some("aux")),
            Some(Rule::Attach)
        );
    }

    #[test]
    fn modules() {
        for ok in ["fts5", "FtS5", "fts5vocab", "rtree", "rtree_i32"] {
            assert_eq!(
                rule(
                    AuthAction::CreateVtable {
                        table_name: "v",
                        module_name: ok
                    },
                    Some("main")
                ),
                None,
                "{ok}"
            );
        }
        for bad in ["fts4", "fts3", "csv", "dbstat"] {
            assert_eq!(
                rule(
                    AuthAction::CreateVtable {
                        table_name: "v",
                        module_name: bad
                    },
                    Some("main")
                ),
                Some(Rule::Module),
                "{bad}"
            );
        }
    }

    #[test]
    fn functions() {
        for ok in [
            "lower",
            "json_extract",
            "->>",
            "strftime",
            "sqrt",
            "bm25",
            "sqlite_rename_table",
        ] {
            assert_eq!(
                rule(AuthAction::Function { function_name: ok }, None),
                None,
                "{ok}"
            );
        }
        for bad in [
            "sqlite_version",
            "power",
            "log10",
            "json_pretty",
            "unistr",
            "if",
        ] {
            assert_eq!(
                rule(AuthAction::Function { function_name: bad }, None),
                Some(Rule::Function),
                "{bad}"
            );
        }
        assert_eq!(ALLOWED_FUNCTIONS.len(), 138);
    }

    fn pragma_rule(name: &'static str, value: Option<&'static str>) -> Option<Rule> {
        rule(
            AuthAction::Pragma {
                pragma_name: name,
                pragma_value: value,
            },
            None,
        )
    }

    #[test]
    fn pragmas() {
        for (name, value) in [
            ("foreign_keys", Some("OFF")),
            ("foreign_keys", None),
            ("defer_foreign_keys", Some("on")),
            ("legacy_alter_table", Some("'1'")),
            ("foreign_keys", Some("onion")), // workerd's prefix quirk
            ("table_list", Some("anything")),
            ("table_info", Some("users")),
            ("index_list", Some("users")),
            ("foreign_key_check", None),
            ("quick_check", Some("10")),
            ("optimize", Some("0x10002")),
            ("optimize", Some("-1")),
            ("data_version", None),
            ("page_size", None),
        ] {
            assert_eq!(pragma_rule(name, value), None, "{name} {value:?}");
        }
        for (name, value) in [
            ("user_version", Some("3")),
            ("journal_mode", Some("WAL")),
            ("integrity_check", None),
            ("FOREIGN_KEYS", Some("OFF")),
            ("foreign_keys", Some("abcd")),
            ("table_info", None),
            ("table_info", Some("_cf_KV")),
            ("index_info", None),
            ("page_size", Some("8192")),
            ("optimize", Some("99999999999")),
        ] {
            assert!(pragma_rule(name, value).is_some(), "{name} {value:?}");
        }
    }

    #[test]
    fn functions_match_case_insensitively() {
        // SQLite 3.54 reports DEFAULT-clause functions as typed.
        for ok in [
            "CURRENT_TIMESTAMP",
            "Current_Date",
            "STRFTIME",
            "JSON_EXTRACT",
        ] {
            assert_eq!(
                rule(AuthAction::Function { function_name: ok }, None),
                None,
                "{ok}"
            );
        }
        for bad in ["SQLITE_VERSION", "Power", "LOG10"] {
            assert_eq!(
                rule(AuthAction::Function { function_name: bad }, None),
                Some(Rule::Function),
                "{bad}"
            );
        }
        let d = decide(
            &ctx(
                AuthAction::Function {
                    function_name: "POWER",
                },
                None,
            ),
            Some("migrations"),
        )
        .unwrap_err();
        assert!(d.help.contains("`pow`"), "{}", d.help);
    }

    #[test]
    fn foreign_keys_off_values_read_like_sqlite() {
        for off in [
            "OFF", "off", "0", "false", "No", "00", "256", "onion", "full",
        ] {
            assert!(turns_foreign_keys_off("foreign_keys", Some(off)), "{off}");
        }
        for on in ["ON", "1", "true", "YES", "10", "1x"] {
            assert!(!turns_foreign_keys_off("foreign_keys", Some(on)), "{on}");
        }
        assert!(!turns_foreign_keys_off("foreign_keys", None));
        assert!(!turns_foreign_keys_off("defer_foreign_keys", Some("off")));
    }

    #[test]
    fn uppercase_pragma_gets_a_lowercase_hint() {
        let d = decide(
            &ctx(
                AuthAction::Pragma {
                    pragma_name: "FOREIGN_KEYS",
                    pragma_value: Some("OFF"),
                },
                None,
            ),
            Some("migrations"),
        )
        .unwrap_err();
        assert!(d.help.contains("PRAGMA foreign_keys"), "{}", d.help);
    }

    #[test]
    fn tracking_table_is_protected_case_insensitively() {
        for action in [
            AuthAction::CreateTable {
                table_name: "Migrations",
            },
            AuthAction::DropTable {
                table_name: "migrations",
            },
            AuthAction::Insert {
                table_name: "migrations",
            },
            AuthAction::Delete {
                table_name: "MIGRATIONS",
            },
            AuthAction::AlterTable {
                database_name: "main",
                table_name: "migrations",
            },
            AuthAction::CreateIndex {
                index_name: "i",
                table_name: "migrations",
            },
            // The failure record of `Schema::wake` is owned too.
            AuthAction::CreateTable {
                table_name: "Migrations_Failure",
            },
            AuthAction::Insert {
                table_name: "migrations_failure",
            },
        ] {
            assert_eq!(rule(action, Some("main")), Some(Rule::TrackingTable));
        }
        assert_eq!(
            rule(
                AuthAction::Read {
                    table_name: "migrations",
                    column_name: "version"
                },
                Some("main")
            ),
            None
        );
        // A Durable Object itself protects no table of ours.
        let write = AuthAction::Insert {
            table_name: "migrations",
        };
        assert_eq!(decide(&ctx(write, Some("main")), None), Ok(()));
    }

    #[test]
    fn other_actions_have_readable_names() {
        let unknown = |code| AuthAction::Unknown {
            code,
            arg1: None,
            arg2: None,
        };
        let d = decide(&ctx(unknown(0), None), Some("migrations")).unwrap_err();
        assert_eq!(d.rule, Rule::Other);
        assert_eq!(d.message, "`COPY` is not allowed in a Durable Object");
        // `ATTACH 'x' || '.db'`: SQLite reports no file name, so rusqlite
        // cannot name the action; it is still an ATTACH.
        assert_eq!(
            rule(unknown(rusqlite::ffi::SQLITE_ATTACH), None),
            Some(Rule::Attach)
        );
        assert_eq!(
            rule(unknown(rusqlite::ffi::SQLITE_DETACH), None),
            Some(Rule::Attach)
        );
    }

    #[test]
    fn list_helps_come_from_the_rule_tables() {
        let pragmas = ALLOWED_PRAGMAS.concat();
        assert_eq!(pragmas.len(), 19, "workerd's allowlist has 19 pragmas");
        let help = pragma_list_help();
        for name in &pragmas {
            assert!(allowed_pragma_name(name), "{name}");
            assert!(help.contains(name), "{help}");
        }
        let help = module_help();
        for module in ALLOWED_MODULES {
            assert!(help.contains(module), "{help}");
        }
    }

    #[test]
    fn attach_and_everyday_actions() {
        assert_eq!(
            rule(AuthAction::Attach { filename: "x.db" }, None),
            Some(Rule::Attach)
        );
        assert_eq!(rule(AuthAction::Select, None), None);
        assert_eq!(
            rule(
                AuthAction::Insert {
                    table_name: "sqlite_master"
                },
                Some("main")
            ),
            None
        );
        assert_eq!(
            rule(
                AuthAction::AlterTable {
                    database_name: "main",
                    table_name: "users"
                },
                None
            ),
            None
        );
        assert_eq!(
            rule(
                AuthAction::AlterTable {
                    database_name: "main",
                    table_name: "users"
                },
                Some("_cf_col")
            ),
            Some(Rule::ReservedName)
        );
    }
}
