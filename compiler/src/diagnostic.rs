//! One problem found in a migration directory, ready to show to a user.

use std::fmt;

/// Where the docs explain rebuilding a table, for help texts that need
/// a recipe: one reference, shared with the rules' own helps.
pub(crate) use durable_schema_workerd::rules::REBUILD_GUIDE;

/// A problem with a migration, with where it is and how to fix it.
///
/// Displayed as `migrations/0003_x.sql:4:12: message`, then a note (what
/// sqlparser says of a syntax error), the offending statement's first line
/// and a `help:` line when there is advice. Paths are always shown as the
/// user wrote them in `dir`, never absolute. The message is one line; the
/// help is one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// `migrations/0003_x.sql`, or `None` for directory-level problems.
    pub file: Option<String>,
    /// 1-based line and column, when the problem has a position.
    pub position: Option<(u32, u32)>,
    /// The message: one line, lowercase, quoting the offending syntax.
    pub message: String,
    /// A second opinion on the problem (sqlparser's, on a syntax error).
    pub note: Option<String>,
    /// The first line of the statement involved, if any.
    pub statement: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
    /// The name of the rule broken, when the problem is a rule's rather than
    /// SQLite's or a file rule's: a Durable Object rule ([`crate::Rule::name`],
    /// e.g. `pragma`) or `lock` (the history lock). For tools (the CLI's
    /// JSON output); not part of the displayed text.
    pub rule: Option<&'static str>,
}

impl Diagnostic {
    /// A problem with no file (a missing directory, a gap between versions).
    pub(crate) fn plain(message: String) -> Self {
        Self {
            file: None,
            position: None,
            message,
            note: None,
            statement: None,
            help: None,
            rule: None,
        }
    }

    /// A problem with a whole file (its name, its encoding).
    pub(crate) fn file(path: &str, message: String) -> Self {
        Self {
            file: Some(path.to_owned()),
            ..Self::plain(message)
        }
    }

    /// A problem at `line:col` of a file.
    pub(crate) fn at(path: &str, line: u32, col: u32, message: String) -> Self {
        Self {
            position: Some((line, col)),
            ..Self::file(path, message)
        }
    }

    /// Adds advice on how to fix the problem.
    #[must_use]
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Names the rule broken (see [`Diagnostic::rule`]).
    #[must_use]
    pub(crate) fn rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
    }

    /// Quotes the statement involved (its first line is shown).
    #[must_use]
    pub(crate) fn statement(mut self, sql: &str) -> Self {
        self.statement = Some(first_line(sql));
        self
    }
}

/// The first line of a statement, shortened so messages stay readable.
pub(crate) fn first_line(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default().trim_end();
    const MAX: usize = 100;
    if line.chars().count() > MAX {
        let cut: String = line.chars().take(MAX).collect();
        format!("{cut}…")
    } else if sql.trim_end().len() > line.len() {
        format!("{line} …")
    } else {
        line.to_owned()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.position) {
            (Some(file), Some((line, col))) => write!(f, "{file}:{line}:{col}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            (None, _) => {}
        }
        f.write_str(&self.message)?;
        if let Some(note) = &self.note {
            write!(f, "\n  {note}")?;
        }
        if let Some(stmt) = &self.statement {
            write!(f, "\n  in statement: {stmt}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_location_statement_and_help() {
        let d = Diagnostic::at("m/0002_x.sql", 4, 12, "no such table: users".into())
            .statement("CREATE INDEX i ON users(x)")
            .help("create the table first");
        assert_eq!(
            d.to_string(),
            "m/0002_x.sql:4:12: no such table: users\n  in statement: CREATE INDEX i ON users(x)\n  help: create the table first"
        );
    }

    #[test]
    fn replay_findings_name_their_rule() {
        let sources = [crate::ReplaySource::new(
            "m/0001_x.sql",
            "BEGIN; CREATE TABLE t (x); CREATE INDEX i ON nope (x);",
        )];
        let found: Vec<_> = crate::replay(&sources, "migrations")
            .into_iter()
            .map(|f| (f.diagnostic.rule, f.rule.map(crate::Rule::name)))
            .collect();
        assert_eq!(
            found,
            [(Some("transaction"), Some("transaction")), (None, None)]
        );
        assert!(!Diagnostic::plain("x".into())
            .rule("lock")
            .to_string()
            .contains("lock"));
    }

    #[test]
    fn long_and_multiline_statements_are_shortened() {
        assert_eq!(first_line("CREATE TABLE t (\n x\n)"), "CREATE TABLE t ( …");
        let long = "x".repeat(150);
        assert_eq!(first_line(&long).chars().count(), 101);
    }
}
