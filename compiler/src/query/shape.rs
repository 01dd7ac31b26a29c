//! What sqlparser can tell about a query beyond SQLite's column metadata:
//! which tables sit on the nullable side of an outer join, whether the
//! result is an aggregate without `GROUP BY` (one row even over no rows),
//! which result columns are a bare `count(...)`, and which column a
//! parameter is compared with or assigned to.
//!
//! Conservative by construction: sqlparser never rejects a query (SQLite
//! already prepared it); when it cannot parse one, [`Shape::unparsed`]
//! makes every column that could be null `Option`, from the query's words.

use std::collections::{HashMap, HashSet};

use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, FromTable, FunctionArguments, GroupByExpr, InTarget,
    JoinOperator, ObjectName, OnConflict, OnConflictAction, OnInsert, Query, SelectItem, SetExpr,
    Statement, TableFactor, TableObject, TableWithJoins, Value,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Location;

use durable_schema_workerd::words::{tokens, unquote, words, TokenKind};

/// How deep views are followed into views.
const MAX_VIEW_DEPTH: usize = 8;

/// SQLite's aggregate functions: without `GROUP BY`, a query using one
/// returns one row even over an empty table, its plain columns `NULL`.
const AGGREGATES: &[&str] = &[
    "avg",
    "count",
    "group_concat",
    "string_agg",
    "max",
    "min",
    "sum",
    "total",
    "json_group_array",
    "json_group_object",
    "jsonb_group_array",
    "jsonb_group_object",
    "median",
    "percentile",
    "percentile_cont",
    "percentile_disc",
];

/// What the parse says of a query's result and parameters.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// The tables (lowercase) the query reads rows of directly, in a `FROM`
    /// anywhere (through views too): a column whose origin is another table
    /// comes through an expression SQLite saw through (a scalar subquery),
    /// and may be null.
    pub(crate) tables: HashSet<String>,
    /// The tables (lowercase) on the nullable side of an outer join.
    pub(crate) nullable: HashSet<String>,
    /// Every result column may be null: an aggregate without `GROUP BY`, a
    /// compound `SELECT`, or a query sqlparser could not parse that has an
    /// outer join or an aggregate.
    pub(crate) all_nullable: bool,
    /// Result columns (by index) that are a bare `count(...)`: never null.
    pub(crate) counts: HashSet<usize>,
    /// For parameters (by SQLite's 1-based index), the `(table, column)`
    /// the statement compares them with or assigns them to.
    pub(crate) parameter_columns: HashMap<usize, (String, String)>,
    /// An `INSERT`'s table and listed columns (empty without a list).
    pub(crate) insert: Option<(String, Vec<String>)>,
    /// The columns an upsert's `DO UPDATE SET` assigns.
    pub(crate) upsert_columns: Vec<String>,
}

impl Shape {
    /// The shape of `sql`, whose parameters SQLite numbers as
    /// `parameter_index` says (`?NNN`, `:name`), given the views of the
    /// schema (`views`: lowercase name → `CREATE VIEW` statement).
    pub(crate) fn of(
        sql: &str,
        parameter_index: &dyn Fn(&str) -> Option<usize>,
        views: &HashMap<String, String>,
    ) -> Self {
        let Ok(statements) = Parser::parse_sql(&SQLiteDialect {}, sql) else {
            return Self::unparsed(sql);
        };
        let [statement] = statements.as_slice() else {
            return Self::unparsed(sql);
        };
        let mut shape = Self::default();
        let placeholders = placeholders(sql, parameter_index);
        let mut scope = Scope::default();
        match statement {
            Statement::Query(query) => {
                shape.query(query, views, 0, true, &mut scope);
            }
            Statement::Insert(insert) => {
                if let TableObject::TableName(name) = &insert.table {
                    let table = last_part(name);
                    shape.tables.insert(table.to_ascii_lowercase());
                    let columns: Vec<String> = insert.columns.iter().map(last_part).collect();
                    shape.insert = Some((table.clone(), columns.clone()));
                    if let Some(OnInsert::OnConflict(OnConflict {
                        action: OnConflictAction::DoUpdate(update),
                        ..
                    })) = &insert.on
                    {
                        for assignment in &update.assignments {
                            if let AssignmentTarget::ColumnName(column) = &assignment.target {
                                shape.upsert_columns.push(last_part(column));
                            }
                        }
                    }
                    if let Some(source) = &insert.source {
                        if let SetExpr::Values(values) = source.body.as_ref() {
                            for row in &values.rows {
                                for (expr, column) in row.iter().zip(&columns) {
                                    if let Some(index) = placeholder(expr, &placeholders) {
                                        shape
                                            .parameter_columns
                                            .insert(index, (table.clone(), column.clone()));
                                    }
                                }
                            }
                        } else {
                            shape.query(source, views, 0, false, &mut Scope::default());
                        }
                    }
                }
            }
            Statement::Update(update) => {
                shape.from(std::slice::from_ref(&update.table), views, 0, &mut scope);
                let table = scope.single();
                for assignment in &update.assignments {
                    if let (AssignmentTarget::ColumnName(column), Some(table)) =
                        (&assignment.target, &table)
                    {
                        if let Some(index) = placeholder(&assignment.value, &placeholders) {
                            shape
                                .parameter_columns
                                .insert(index, (table.clone(), last_part(column)));
                        }
                    }
                }
                if let Some(selection) = &update.selection {
                    shape.compare(selection, &scope, &placeholders);
                }
            }
            Statement::Delete(delete) => {
                let from = match &delete.from {
                    FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from) => from,
                };
                shape.from(from, views, 0, &mut scope);
                if let Some(selection) = &delete.selection {
                    shape.compare(selection, &scope, &placeholders);
                }
            }
            _ => {}
        }
        if let Statement::Query(query) = statement {
            if let SetExpr::Select(select) = query.body.as_ref() {
                if let Some(selection) = &select.selection {
                    shape.compare(selection, &scope, &placeholders);
                }
                for table in &select.from {
                    for join in &table.joins {
                        if let Some(on) = join_condition(&join.join_operator) {
                            shape.compare(on, &scope, &placeholders);
                        }
                    }
                }
            }
        }
        shape
    }

    /// The conservative shape of a query sqlparser cannot parse: any outer
    /// join or aggregate makes every column nullable.
    pub(crate) fn unparsed(sql: &str) -> Self {
        let words: Vec<String> = words(sql).iter().map(|w| w.to_ascii_lowercase()).collect();
        let outer = words
            .iter()
            .any(|w| matches!(w.as_str(), "left" | "right" | "full" | "outer"));
        let aggregate = words
            .windows(2)
            .any(|w| AGGREGATES.contains(&w[0].as_str()) && w[1] == "(");
        let compound = words
            .iter()
            .any(|w| matches!(w.as_str(), "union" | "intersect" | "except"));
        let mut shape = Self {
            all_nullable: outer || aggregate || compound,
            ..Self::default()
        };
        // Which tables it reads directly is unknown: any may be.
        shape.tables.insert(UNKNOWN.to_owned());
        shape
    }

    /// Whether the query reads rows of `table` directly (see
    /// [`Shape::tables`]).
    pub(crate) fn reads(&self, table: &str) -> bool {
        self.tables.contains(UNKNOWN) || self.tables.contains(&table.to_ascii_lowercase())
    }

    fn query(
        &mut self,
        query: &Query,
        views: &HashMap<String, String>,
        depth: usize,
        top: bool,
        scope: &mut Scope,
    ) {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.query(&cte.query, views, depth, false, &mut Scope::default());
            }
        }
        self.body(&query.body, views, depth, top, scope);
    }

    fn body(
        &mut self,
        body: &SetExpr,
        views: &HashMap<String, String>,
        depth: usize,
        top: bool,
        scope: &mut Scope,
    ) {
        match body {
            SetExpr::Select(select) => {
                self.from(&select.from, views, depth, scope);
                if top {
                    let grouped = match &select.group_by {
                        GroupByExpr::All(_) => true,
                        GroupByExpr::Expressions(exprs, _) => !exprs.is_empty(),
                    };
                    let aggregate = select.projection.iter().any(|item| match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                            has_aggregate(e)
                        }
                        _ => false,
                    }) || select.having.as_ref().is_some_and(has_aggregate);
                    if aggregate && !grouped {
                        self.all_nullable = true;
                    }
                    let wildcard = select.projection.iter().any(|item| {
                        matches!(
                            item,
                            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                        )
                    });
                    if !wildcard {
                        for (i, item) in select.projection.iter().enumerate() {
                            if let SelectItem::UnnamedExpr(e)
                            | SelectItem::ExprWithAlias { expr: e, .. } = item
                            {
                                if is_count(e) {
                                    self.counts.insert(i);
                                }
                            }
                        }
                    }
                }
            }
            SetExpr::Query(query) => self.query(query, views, depth, top, scope),
            SetExpr::SetOperation { left, right, .. } => {
                // Which arm a row comes from is unknown: every column may
                // be another arm's NULL.
                self.all_nullable |= top;
                self.body(left, views, depth, false, &mut Scope::default());
                self.body(right, views, depth, false, &mut Scope::default());
            }
            _ => {}
        }
    }

    /// Reads a `FROM` list: every table it names, those on the nullable
    /// side of an outer join, and the names in scope.
    fn from(
        &mut self,
        from: &[TableWithJoins],
        views: &HashMap<String, String>,
        depth: usize,
        scope: &mut Scope,
    ) {
        for item in from {
            let mut before = self.factor(&item.relation, views, depth, scope);
            for join in &item.joins {
                let this = self.factor(&join.relation, views, depth, scope);
                match &join.join_operator {
                    JoinOperator::Left(_)
                    | JoinOperator::LeftOuter(_)
                    | JoinOperator::OuterApply => self.nullable.extend(this.iter().cloned()),
                    JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
                        self.nullable.extend(before.iter().cloned());
                    }
                    JoinOperator::FullOuter(_) => {
                        self.nullable.extend(before.iter().cloned());
                        self.nullable.extend(this.iter().cloned());
                    }
                    _ => {}
                }
                before.extend(this);
            }
        }
    }

    /// The tables (lowercase) a `FROM` item reads, through views and
    /// subqueries, recording them in [`Shape::tables`].
    fn factor(
        &mut self,
        factor: &TableFactor,
        views: &HashMap<String, String>,
        depth: usize,
        scope: &mut Scope,
    ) -> Vec<String> {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let table = last_part(name);
                let key = table.to_ascii_lowercase();
                scope.names.push((
                    alias
                        .as_ref()
                        .map_or(key.clone(), |a| a.name.value.to_ascii_lowercase()),
                    table.clone(),
                ));
                self.tables.insert(key.clone());
                let mut read = vec![key.clone()];
                if let Some(view) = views.get(&key) {
                    read.extend(self.view(view, views, depth + 1));
                }
                read
            }
            TableFactor::Derived { subquery, .. } => {
                let mut inner = Shape::default();
                inner.query(subquery, views, depth, false, &mut Scope::default());
                let read: Vec<String> = inner.tables.iter().cloned().collect();
                self.absorb(inner);
                read
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                let mut inner = Shape::default();
                let mut inner_scope = Scope::default();
                inner.from(
                    std::slice::from_ref(table_with_joins.as_ref()),
                    views,
                    depth,
                    &mut inner_scope,
                );
                scope.names.extend(inner_scope.names);
                let read: Vec<String> = inner.tables.iter().cloned().collect();
                self.absorb(inner);
                read
            }
            _ => {
                self.tables.insert(UNKNOWN.to_owned());
                Vec::new()
            }
        }
    }

    /// The base tables a view reads, its outer joins recorded; a view
    /// sqlparser cannot parse, or too deep, reads unknown tables whose
    /// columns may all be null.
    fn view(&mut self, create: &str, views: &HashMap<String, String>, depth: usize) -> Vec<String> {
        let parsed = Parser::parse_sql(&SQLiteDialect {}, create);
        let query = match parsed.as_deref() {
            Ok([Statement::CreateView(view)]) if depth <= MAX_VIEW_DEPTH => view.query.clone(),
            _ => {
                self.all_nullable = true;
                self.tables.insert(UNKNOWN.to_owned());
                return Vec::new();
            }
        };
        let mut inner = Shape::default();
        inner.query(&query, views, depth, true, &mut Scope::default());
        // A view that is an aggregate or a compound: its columns may be
        // null whatever their origin.
        if inner.all_nullable {
            self.nullable.extend(inner.tables.iter().cloned());
        }
        let read: Vec<String> = inner.tables.iter().cloned().collect();
        inner.all_nullable = false;
        inner.counts.clear();
        self.absorb(inner);
        read
    }

    fn absorb(&mut self, inner: Shape) {
        self.tables.extend(inner.tables);
        self.nullable.extend(inner.nullable);
        self.all_nullable |= inner.all_nullable;
    }

    /// Records the columns that the comparisons in `expr` (`col = ?`,
    /// `t.col < ?`, `col IN (?, ?)`, `col BETWEEN ? AND ?`) give parameters.
    fn compare(&mut self, expr: &Expr, scope: &Scope, placeholders: &HashMap<Location, usize>) {
        match expr {
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And | BinaryOperator::Or => {
                    self.compare(left, scope, placeholders);
                    self.compare(right, scope, placeholders);
                }
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq => {
                    for (column, value) in [(left, right), (right, left)] {
                        self.bind(column, value, scope, placeholders);
                    }
                }
                _ => {}
            },
            Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => {
                self.compare(inner, scope, placeholders);
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                ..
            } => {
                for value in list {
                    self.bind(expr, value, scope, placeholders);
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.bind(expr, low, scope, placeholders);
                self.bind(expr, high, scope, placeholders);
            }
            Expr::IsDistinctFrom(left, right) | Expr::IsNotDistinctFrom(left, right) => {
                self.bind(left, right, scope, placeholders);
                self.bind(right, left, scope, placeholders);
            }
            _ => {}
        }
    }

    /// `value` is a parameter compared with the column `column`.
    fn bind(
        &mut self,
        column: &Expr,
        value: &Expr,
        scope: &Scope,
        placeholders: &HashMap<Location, usize>,
    ) {
        let Some(index) = placeholder(value, placeholders) else {
            return;
        };
        let resolved = match column {
            Expr::Identifier(ident) => scope.single().map(|t| (t, ident.value.clone())),
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [qualifier, column] => scope
                    .resolve(&qualifier.value)
                    .map(|t| (t, column.value.clone())),
                _ => None,
            },
            _ => None,
        };
        if let Some(resolved) = resolved {
            self.parameter_columns.entry(index).or_insert(resolved);
        }
    }
}

/// A table name no query can use: stands for "tables unknown".
const UNKNOWN: &str = "\0unknown";

/// The tables a statement's `FROM` brings into scope, by the name the
/// statement uses for them (its alias, else its own name, lowercase).
#[derive(Debug, Default)]
struct Scope {
    names: Vec<(String, String)>,
}

impl Scope {
    /// The table, when the scope holds exactly one: an unqualified column is
    /// then that table's.
    fn single(&self) -> Option<String> {
        match self.names.as_slice() {
            [(_, table)] => Some(table.clone()),
            _ => None,
        }
    }

    /// The table `qualifier` names, when exactly one does.
    fn resolve(&self, qualifier: &str) -> Option<String> {
        let mut found = self
            .names
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(qualifier));
        match (found.next(), found.next()) {
            (Some((_, table)), None) => Some(table.clone()),
            _ => None,
        }
    }
}

/// The last part of a (possibly schema-qualified) name, unquoted.
fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|part| match part.as_ident() {
            Some(ident) => ident.value.clone(),
            None => unquote(&part.to_string()),
        })
        .unwrap_or_default()
}

fn join_condition(operator: &JoinOperator) -> Option<&Expr> {
    use sqlparser::ast::JoinConstraint;
    match operator {
        JoinOperator::Join(JoinConstraint::On(on))
        | JoinOperator::Inner(JoinConstraint::On(on))
        | JoinOperator::Left(JoinConstraint::On(on))
        | JoinOperator::LeftOuter(JoinConstraint::On(on))
        | JoinOperator::Right(JoinConstraint::On(on))
        | JoinOperator::RightOuter(JoinConstraint::On(on))
        | JoinOperator::FullOuter(JoinConstraint::On(on))
        | JoinOperator::CrossJoin(JoinConstraint::On(on)) => Some(on),
        _ => None,
    }
}

/// Whether `expr` calls an aggregate function outside a window.
fn has_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            (f.over.is_none() && AGGREGATES.contains(&name.as_str()))
                || match &f.args {
                    FunctionArguments::List(list) => list.args.iter().any(|a| {
                        use sqlparser::ast::{FunctionArg, FunctionArgExpr};
                        match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                            | FunctionArg::Named {
                                arg: FunctionArgExpr::Expr(e),
                                ..
                            } => has_aggregate(e),
                            _ => false,
                        }
                    }),
                    _ => false,
                }
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => {
            has_aggregate(expr)
        }
        Expr::IsNull(e) | Expr::IsNotNull(e) => has_aggregate(e),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(has_aggregate)
                || conditions
                    .iter()
                    .any(|c| has_aggregate(&c.condition) || has_aggregate(&c.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

/// Whether `expr` is a bare `count(...)` (with or without a window): an
/// integer, never null.
fn is_count(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("count"))
}

/// The parameter `expr` is, by SQLite's index, if it is one.
fn placeholder(expr: &Expr, placeholders: &HashMap<Location, usize>) -> Option<usize> {
    match expr {
        Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => {
            placeholders.get(&v.span.start).copied()
        }
        Expr::Nested(inner) => placeholder(inner, placeholders),
        _ => None,
    }
}

/// SQLite's index of each parameter of `sql`, by where it starts (as
/// sqlparser locates it): `?NNN` is NNN, a name (`:a`, `@a`, `$a`) the
/// index SQLite gave it, a plain `?` one more than the largest so far
/// (SQLite's numbering). Read from SQLite's own tokens, which sqlparser's
/// tokenizer does not cut the same way (`:name`).
fn placeholders(
    sql: &str,
    parameter_index: &dyn Fn(&str) -> Option<usize>,
) -> HashMap<Location, usize> {
    let tokens = tokens(sql);
    let mut largest = 0;
    let mut out = HashMap::new();
    for (i, token) in tokens.iter().enumerate() {
        let next = tokens
            .get(i + 1)
            .filter(|t| t.kind == TokenKind::Word && t.start == token.end);
        let index = match (token.text, next) {
            ("?", Some(number)) if number.text.bytes().all(|b| b.is_ascii_digit()) => {
                number.text.parse().ok()
            }
            ("?", _) => Some(largest + 1),
            (":" | "@", Some(name)) => parameter_index(&sql[token.start..name.end]),
            (word, _) if token.kind == TokenKind::Word && word.starts_with('$') => {
                parameter_index(word)
            }
            _ => continue,
        };
        let Some(index) = index else { continue };
        largest = largest.max(index);
        out.insert(location(sql, token.start), index);
    }
    out
}

/// sqlparser's location (1-based line and character column) of `offset`.
fn location(sql: &str, offset: usize) -> Location {
    let before = &sql[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, rest)| rest)
        .chars()
        .count()
        + 1;
    Location::new(line as u64, column as u64)
}
