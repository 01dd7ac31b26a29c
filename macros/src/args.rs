//! `#[durable_schema(dir = "...", table = "...", strict = true, retry_after = 60, budget_ms = 10000, baseline = false)]`.

use durable_schema_compiler::tracking;
use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Lit, LitStr};

/// The attribute's arguments, validated.
pub(crate) struct Args {
    /// The `dir` literal: its value is resolved against `CARGO_MANIFEST_DIR`,
    /// and errors about migration files point at it.
    pub dir: LitStr,
    /// Tracking table name (`migrations` by default).
    pub table: String,
    /// Whether a database ahead of the code is an error.
    pub strict: bool,
    /// Seconds before the constructor hook runs a failed migration of the
    /// same code again (`None`: the runtime's default).
    pub retry_after: Option<u32>,
    /// Milliseconds of batch repetitions one wake runs before it stops
    /// between two repetitions (`None`: the runtime's default).
    pub budget_ms: Option<u32>,
    /// Whether new objects are created from the compile-time baseline
    /// (`baseline = false` turns it off).
    pub baseline: bool,
}

const KEYS: &str = "expected `dir = \"...\"`, `table = \"...\"`, `strict = true|false`, `retry_after = SECONDS`, `budget_ms = MILLISECONDS` or `baseline = true|false`";

/// Parses the arguments, collecting every problem instead of stopping at
/// the first (serde_derive style).
pub(crate) fn parse(tokens: TokenStream) -> Result<Args, syn::Error> {
    let mut dir: Option<LitStr> = None;
    let mut table: Option<LitStr> = None;
    let mut strict: Option<bool> = None;
    let mut retry_after: Option<u32> = None;
    let mut budget_ms: Option<u32> = None;
    let mut baseline: Option<bool> = None;
    let errors = std::cell::RefCell::new(Errors(None));
    let push = |e: syn::Error| errors.borrow_mut().push(e);

    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "dir" | "table" | "strict" | "retry_after" | "budget_ms" | "baseline" => {}
            _ => {
                // Consume a `= value` so the next argument still parses.
                if meta.input.peek(syn::Token![=]) {
                    let _: Lit = meta.value()?.parse()?;
                }
                push(meta.error(format!(
                    "unknown argument `{}`: {KEYS}",
                    path_text(&meta.path)
                )));
                return Ok(());
            }
        }
        let lit: Lit = meta.value()?.parse()?;
        let seen = match key.as_str() {
            "dir" => dir.is_some(),
            "table" => table.is_some(),
            "retry_after" => retry_after.is_some(),
            "budget_ms" => budget_ms.is_some(),
            "baseline" => baseline.is_some(),
            _ => strict.is_some(),
        };
        if seen {
            push(syn::Error::new(
                meta.path.span(),
                format!("`{key}` is given twice; keep one"),
            ));
            return Ok(());
        }
        match (key.as_str(), lit) {
            ("dir", Lit::Str(s)) => dir = Some(s),
            ("table", Lit::Str(s)) => table = Some(s),
            ("strict", Lit::Bool(b)) => strict = Some(b.value),
            ("strict", other) => push(syn::Error::new(
                other.span(),
                "`strict` takes `true` or `false`, e.g. `strict = true`",
            )),
            ("baseline", Lit::Bool(b)) => baseline = Some(b.value),
            ("baseline", other) => push(syn::Error::new(
                other.span(),
                "`baseline` takes `true` or `false`, e.g. `baseline = false`",
            )),
            ("retry_after", Lit::Int(n)) => match n.base10_parse::<u32>() {
                Ok(n) => retry_after = Some(n),
                Err(_) => push(syn::Error::new(
                    n.span(),
                    "`retry_after` takes whole seconds that fit a u32, e.g. `retry_after = 60`",
                )),
            },
            ("retry_after", other) => push(syn::Error::new(
                other.span(),
                "`retry_after` takes whole seconds, e.g. `retry_after = 60` (0 retries on every wake-up)",
            )),
            ("budget_ms", Lit::Int(n)) => match n.base10_parse::<u32>() {
                // No repetition fits in no time: the batch would never
                // advance, and its migration would stay pending forever.
                Ok(0) => push(syn::Error::new(
                    n.span(),
                    "`budget_ms = 0` leaves no time for a batch to advance; give milliseconds per wake, e.g. `budget_ms = 10000`",
                )),
                // workerd resets an object whose `blockConcurrencyWhile`
                // callback runs about 30 s: a budget that long never stops
                // a run before the reset it exists to avoid.
                Ok(ms) if ms >= 30_000 => push(syn::Error::new(
                    n.span(),
                    format!("`budget_ms = {ms}` reaches workerd's 30-second gate, which resets the object before the budget stops the run; keep it well under, e.g. `budget_ms = 10000`"),
                )),
                Ok(n) => budget_ms = Some(n),
                Err(_) => push(syn::Error::new(
                    n.span(),
                    "`budget_ms` takes whole milliseconds that fit a u32, e.g. `budget_ms = 10000`",
                )),
            },
            ("budget_ms", other) => push(syn::Error::new(
                other.span(),
                "`budget_ms` takes whole milliseconds, e.g. `budget_ms = 10000` (well under the 30-second gate)",
            )),
            (key, other) => push(syn::Error::new(
                other.span(),
                format!("`{key}` takes a string literal, e.g. `{key} = \"migrations\"`"),
            )),
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, tokens) {
        push(e);
    }

    let dir = match dir {
        Some(dir) => {
            validate_dir_literal(&dir, &push);
            Some(dir)
        }
        None => {
            if errors.borrow().0.is_none() {
                push(syn::Error::new(
                    proc_macro2::Span::call_site(),
                    "missing `dir`: write `#[durable_schema(dir = \"migrations\")]`, the directory of NNNN_description.sql files relative to Cargo.toml",
                ));
            }
            None
        }
    };
    let table_name = table
        .as_ref()
        .map_or_else(|| tracking::DEFAULT_TABLE.to_owned(), LitStr::value);
    if let Some(lit) = &table {
        if let Err(e) = tracking::check_name(&table_name) {
            push(syn::Error::new(
                lit.span(),
                format!("invalid `table = \"{table_name}\"`: {e}"),
            ));
        }
    }
    match (errors.into_inner().0, dir) {
        (Some(e), _) => Err(e),
        (None, Some(dir)) => Ok(Args {
            dir,
            table: table_name,
            strict: strict.unwrap_or(false),
            retry_after,
            budget_ms,
            baseline: baseline.unwrap_or(true),
        }),
        (None, None) => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "missing `dir`",
        )),
    }
}

/// The `dir` literal's own shape (not empty, relative to Cargo.toml); whether
/// the directory holds a valid chain is for the compiler to judge.
fn validate_dir_literal(dir: &LitStr, push: &impl Fn(syn::Error)) {
    let value = dir.value();
    if value.trim().is_empty() {
        push(syn::Error::new(
            dir.span(),
            "`dir` is empty: give the migration directory relative to Cargo.toml, e.g. \"migrations\"",
        ));
    } else if std::path::Path::new(&value).is_absolute()
        || value.starts_with('/')
        || value.starts_with('\\')
    {
        push(syn::Error::new(
            dir.span(),
            format!("`dir` must be relative to the crate root (where Cargo.toml is), not absolute: `{value}`"),
        ));
    }
}

fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Every argument error, combined so rustc shows them all at once.
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}
