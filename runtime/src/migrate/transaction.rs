//! One transaction of a run: its steps, each with the role it plays, so a
//! failed step maps back to its cause (a migration's statement, its
//! foreign-key check, its tracking row, the adoption) and becomes the
//! [`MigrateError`] that names it.

use super::{text_of, Executor};
use crate::backend::{contains, Step, TxError, Value};
use crate::error::MigrateError;
use crate::Migration;

/// What a step of a migration's transaction is, so a failure at step `i`
/// maps back to its cause without index arithmetic.
#[derive(Clone, Copy)]
pub(super) enum Role {
    /// Creating the tracking table.
    Create,
    /// Adopting a hand-rolled tracking table or drizzle's history.
    Adopt,
    /// The migration's tracking row.
    Record,
    /// The migration's statement with this 0-based index.
    Statement(usize),
    /// The baseline's statement with this 0-based index.
    Baseline(usize),
    /// A foreign-key check after the migration's statements (or switching
    /// deferral off after them).
    ForeignKeyCheck,
    /// Carrying the started record to the next migration (or clearing it).
    Started,
    /// Recording a batched migration's progress (or upgrading the table
    /// that holds it).
    Progress,
    /// The check that the recorded progress is the one the run continues.
    Expected,
}

/// The steps of one transaction with the role of each.
#[derive(Default, Clone)]
pub(super) struct Batch {
    pub(super) steps: Vec<Step>,
    pub(super) roles: Vec<Role>,
}

impl Batch {
    pub(super) fn push(&mut self, role: Role, step: Step) {
        self.steps.push(step);
        self.roles.push(role);
    }
}

impl Executor<'_> {
    /// Runs one transaction (`m`'s, or the adoption alone for `None`) and
    /// returns the rows it wrote; on failure names what failed.
    pub(super) fn commit(
        &self,
        batch: Batch,
        m: Option<&'static Migration>,
    ) -> Result<u64, MigrateError> {
        let Batch { steps, roles } = batch;
        self.backend
            .transaction(steps)
            .map_err(|e| self.failed_step(&e, &roles, m))
    }

    /// The error naming the cause of a failed transaction: the role of the
    /// step that failed, when the backend knows which one did.
    fn failed_step(
        &self,
        e: &TxError,
        roles: &[Role],
        m: Option<&'static Migration>,
    ) -> MigrateError {
        let message = e.error().message().to_owned();
        let table = self.table();
        let context = match (e.step().and_then(|i| roles.get(i)), m) {
            (Some(Role::Statement(index)), Some(m)) => {
                return statement_error(m, *index, message);
            }
            // A row of `PRAGMA foreign_key_check`: table, rowid, parent, fkid.
            (Some(Role::ForeignKeyCheck), Some(m)) if e.row().is_some() => {
                let row = e.row().unwrap_or_default();
                return MigrateError::ForeignKey {
                    version: m.version(),
                    file: m.name(),
                    table: text_of(row.first()).unwrap_or_default().to_owned(),
                    rowid: row.get(1).and_then(Value::as_i64),
                    parent: text_of(row.get(2)).unwrap_or_default().to_owned(),
                };
            }
            (Some(Role::ForeignKeyCheck), Some(m)) => {
                format!("checking foreign keys after {}", m.name())
            }
            (Some(Role::Create), _) => format!("creating table \"{table}\""),
            (Some(Role::Started), Some(m)) => {
                format!(
                    "recording the end of {} in table \"{table}_failure\"",
                    m.name()
                )
            }
            (Some(Role::Adopt), _) => format!("adopting table \"{table}\""),
            // Another migrator committed a phase of this migration meanwhile.
            (Some(Role::Expected), Some(m)) if e.row().is_some() => {
                return MigrateError::Concurrent {
                    version: m.version(),
                    file: m.name(),
                    table,
                };
            }
            (Some(Role::Progress | Role::Expected), Some(m)) => format!(
                "recording the progress of {} in table \"{table}_failure\"",
                m.name()
            ),
            // The row's primary key exists: another migrator (another
            // process on the same file) committed this version meanwhile.
            (Some(Role::Record), Some(m)) if contains(&message, "UNIQUE constraint failed") => {
                return MigrateError::Concurrent {
                    version: m.version(),
                    file: m.name(),
                    table,
                };
            }
            (Some(Role::Record), Some(m)) => format!(
                "recording version {} ({}) in table \"{table}\"",
                m.version(),
                m.name()
            ),
            // Outside the steps: BEGIN or COMMIT (the message says which).
            (_, Some(m)) => format!("running migration {}", m.name()),
            (_, None) => format!("adopting table \"{table}\""),
        };
        MigrateError::Backend { context, message }
    }
}

/// The tracking row of `m` with chain value `chain`, by `insert`
/// ([`tracking::insert`](crate::tracking::insert)): the same row whether
/// the chain or the baseline applied it. `breaks_below` is the schema's
/// [`Schema::breaks_below`](crate::Schema::breaks_below) at `m`.
pub(super) fn record(insert: &str, m: &Migration, chain: &str, breaks_below: u32) -> Step {
    let mut params = vec![
        Value::from(m.version()),
        Value::from(m.description()),
        Value::from(m.checksum()),
        Value::from(chain),
    ];
    params.extend(class_values(m, breaks_below));
    Step::with_params(insert.to_owned(), params)
}

/// `m`'s class, findings (NULL when it has none) and `breaks_below`, as the
/// tracking row records them.
pub(super) fn class_values(m: &Migration, breaks_below: u32) -> [Value; 3] {
    let findings = match m.findings() {
        "" => Value::Null,
        findings => Value::from(findings),
    };
    [
        Value::from(m.class().as_str()),
        findings,
        Value::from(breaks_below),
    ]
}

/// [`MigrateError::Statement`] for statement `index` (0-based) of `m`,
/// with its position in the file.
pub(super) fn statement_error(m: &Migration, index: usize, message: String) -> MigrateError {
    let s = m.statements().get(index);
    MigrateError::Statement {
        version: m.version(),
        file: m.name(),
        statement: index + 1,
        line: s.map_or(0, |s| s.line()),
        column: s.map_or(0, |s| s.column()),
        message,
    }
}
