//! The `#[durable_schema]` attribute. Use it through the `durable-schema`
//! crate, which documents it.
//!
//! This crate is a thin shell: `args → load → check → expand`, with all the
//! compile-time logic in `durable-schema-compiler` so the macro, the tests and
//! the CLI share one code path. It never panics: every problem becomes a
//! spanned `compile_error!`, and all problems are reported at once.

mod args;
mod expand;
mod query;

use proc_macro::TokenStream;

/// Checks a directory of SQL migrations at compile time and embeds them.
///
/// See the `durable-schema` crate for the full documentation.
#[proc_macro_attribute]
pub fn durable_schema(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::durable_schema(args.into(), item.into()).into()
}

/// A statement checked at compile time against the schema of a struct
/// carrying `#[durable_schema]`; see the `durable-schema` crate.
#[proc_macro]
pub fn query(input: TokenStream) -> TokenStream {
    query::query(input.into()).into()
}

/// [`query!`] into the caller's struct; see the `durable-schema` crate.
#[proc_macro]
pub fn query_as(input: TokenStream) -> TokenStream {
    query::query_as(input.into()).into()
}

/// What the `macro_rules!` that `#[durable_schema]` declares beside its
/// struct calls. Not a public API.
#[doc(hidden)]
#[proc_macro]
pub fn checked_query(input: TokenStream) -> TokenStream {
    query::checked_query(input.into()).into()
}
