//! `query!`, `query_as!` and the hidden `checked_query!` they reach
//! through the macro `#[durable_schema]` declares next to its struct.
//!
//! A function-like macro cannot see the attribute on `Chat`, so the
//! attribute emits a `macro_rules!` named `Chat` ([`schema_macro`]) that
//! holds its arguments; `query!(Chat, ...)` expands to `Chat! { @durable_schema
//! query (...) }`, which expands to `checked_query! { {arguments} query (...) }`,
//! which checks the statement against the head schema of those migrations.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{braced, parenthesized, Expr, Ident, LitBool, LitStr, Token};

use durable_schema_compiler::query::{describe, OutputColumn, Override, SqlType};
use durable_schema_compiler::Options;

/// The hidden module and `macro_rules!` the attribute emits beside the
/// struct `ident`: `query!(Chat, ...)` finds the migrations through it.
/// `stub`: the attribute failed, so the queries only produce a value of
/// the right type (one mistake, one error).
pub(crate) fn schema_macro(
    ident: &Ident,
    dir: &str,
    table: &str,
    baseline: bool,
    stub: bool,
) -> TokenStream {
    let module = format_ident!("__durable_schema_{}", ident);
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod #module {
            #[allow(unused_macros)]
            macro_rules! #ident {
                (@durable_schema $($t:tt)*) => {
                    ::durable_schema::__private::checked_query! {
                        { dir = #dir, table = #table, baseline = #baseline, stub = #stub }
                        $($t)*
                    }
                };
            }
            #[allow(unused_imports)]
            pub(crate) use #ident;
        }
        #[allow(unused_imports)]
        pub(crate) use #module::#ident;
    }
}

/// Splits `input` at its first top-level comma.
fn split_comma(input: TokenStream) -> Option<(TokenStream, TokenStream)> {
    let mut head = TokenStream::new();
    let mut tokens = input.into_iter();
    for token in tokens.by_ref() {
        if matches!(&token, TokenTree::Punct(p) if p.as_char() == ',') {
            return Some((head, tokens.collect()));
        }
        head.extend([token]);
    }
    None
}

/// `query!(Chat, "SQL", args...)` → `Chat! { @durable_schema query ("SQL", args...) }`.
pub(crate) fn query(input: TokenStream) -> TokenStream {
    match split_comma(input) {
        Some((schema, rest)) if !schema.is_empty() => quote! {
            #schema! { @durable_schema query (#rest) }
        },
        _ => usage("query!(Chat, \"SELECT …\", args…)"),
    }
}

/// `query_as!(Row, Chat, "SQL", args...)` →
/// `Chat! { @durable_schema query_as (Row) ("SQL", args...) }`.
pub(crate) fn query_as(input: TokenStream) -> TokenStream {
    let Some((row, rest)) = split_comma(input) else {
        return usage("query_as!(Row, Chat, \"SELECT …\", args…)");
    };
    match split_comma(rest) {
        Some((schema, rest)) if !row.is_empty() && !schema.is_empty() => quote! {
            #schema! { @durable_schema query_as (#row) (#rest) }
        },
        _ => usage("query_as!(Row, Chat, \"SELECT …\", args…)"),
    }
}

fn usage(form: &str) -> TokenStream {
    let message = format!("expected `{form}`, where `Chat` carries `#[durable_schema]`");
    quote! { ::core::compile_error!(#message) }
}

/// The attribute's arguments, as the schema's macro passes them.
struct Config {
    dir: String,
    table: String,
    baseline: bool,
    stub: bool,
}

impl Parse for Config {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        braced!(content in input);
        let mut config = Config {
            dir: String::new(),
            table: String::new(),
            baseline: true,
            stub: false,
        };
        while !content.is_empty() {
            let key: Ident = content.parse()?;
            content.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "dir" => config.dir = content.parse::<LitStr>()?.value(),
                "table" => config.table = content.parse::<LitStr>()?.value(),
                "baseline" => config.baseline = content.parse::<LitBool>()?.value,
                "stub" => config.stub = content.parse::<LitBool>()?.value,
                _ => return Err(syn::Error::new(key.span(), "unknown key")),
            }
            if !content.is_empty() {
                content.parse::<Token![,]>()?;
            }
        }
        Ok(config)
    }
}

/// `query (...)` or `query_as (Row) (...)`.
enum Form {
    Record,
    Into(syn::Path),
}

/// What `checked_query!` receives.
struct Input {
    config: Config,
    form: Form,
    sql: LitStr,
    args: Vec<Expr>,
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let config: Config = input.parse()?;
        let kind: Ident = input.parse()?;
        let form = match kind.to_string().as_str() {
            "query" => Form::Record,
            "query_as" => {
                let row;
                parenthesized!(row in input);
                Form::Into(row.parse()?)
            }
            _ => {
                return Err(syn::Error::new(
                    kind.span(),
                    "expected `query` or `query_as`",
                ))
            }
        };
        let body;
        parenthesized!(body in input);
        let sql: LitStr = body.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the SQL as a string literal, e.g. `\"SELECT id FROM users\"`",
            )
        })?;
        let args = if body.is_empty() {
            Vec::new()
        } else {
            body.parse::<Token![,]>()?;
            Punctuated::<Expr, Token![,]>::parse_terminated(&body)?
                .into_iter()
                .collect()
        };
        Ok(Self {
            config,
            form,
            sql,
            args,
        })
    }
}

/// `checked_query!`: the statement checked against the head schema, and
/// the `Query` value that runs it.
pub(crate) fn checked_query(input: TokenStream) -> TokenStream {
    let input: Input = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.into_compile_error(),
    };
    match expand(&input) {
        Ok(tokens) => tokens,
        Err(e) => {
            // The error, and a value of the right type so that the code
            // using it reports nothing more.
            let error = e.into_compile_error();
            let stub = stub(&input);
            quote! {{ #error #stub }}
        }
    }
}

/// A `Query` of the right type that never runs (after an error).
fn stub(input: &Input) -> TokenStream {
    let sql = &input.sql;
    let args = &input.args;
    let q = quote! { ::durable_schema::__private::query };
    let row = match &input.form {
        Form::Record => quote! { () },
        Form::Into(path) => quote! { #path },
    };
    quote! {{
        #( let _ = &(#args); )*
        #q::Query::<#row>::__new(#sql, ::std::vec::Vec::new(), |_| {
            ::core::unreachable!("this query did not check at compile time")
        })
    }}
}

fn expand(input: &Input) -> syn::Result<TokenStream> {
    let span = input.sql.span();
    if input.config.stub {
        // The attribute reported why its migrations do not check.
        return Ok(stub(input));
    }
    let Some(base) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return Err(syn::Error::new(
            span,
            "CARGO_MANIFEST_DIR is not set: build with Cargo so the migrations can be found",
        ));
    };
    let options = Options {
        table: input.config.table.clone(),
        baseline: input.config.baseline,
        ..Options::default()
    };
    let plan = durable_schema_compiler::query::plan(
        std::path::Path::new(&base),
        &input.config.dir,
        &options,
    )
    .map_err(|errors| {
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        syn::Error::new(
            span,
            format!("the migrations of this schema do not check: {first}"),
        )
    })?;
    let sql = input.sql.value();
    let described = describe(&plan, &input.config.table, &sql)
        .map_err(|d| syn::Error::new(span, d.to_string()))?;
    let parameters = &described.parameters;
    if parameters.len() != input.args.len() {
        let at = input.args.get(parameters.len()).map_or(span, Spanned::span);
        let names = parameters
            .iter()
            .map(|p| format!("`{}`", p.name.as_deref().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ");
        let shown = if names.is_empty() {
            String::new()
        } else {
            format!(" ({names})")
        };
        return Err(syn::Error::new(
            at,
            format!(
                "the query has {} parameter{}{shown} and {} argument{} {} given\n  help: pass one argument per parameter, in the order SQLite numbers them",
                parameters.len(),
                if parameters.len() == 1 { "" } else { "s" },
                input.args.len(),
                if input.args.len() == 1 { "" } else { "s" },
                if input.args.len() == 1 { "is" } else { "are" },
            ),
        ));
    }
    let q = quote! { ::durable_schema::__private::query };
    let mut bindings = Vec::new();
    let mut encoded = Vec::new();
    for (i, (arg, parameter)) in input.args.iter().zip(parameters).enumerate() {
        let name = format_ident!("__durable_schema_arg{}", i);
        let arg_span = arg.span();
        bindings.push(quote_spanned! {arg_span=> let #name = &(#arg); });
        if let Some(column) = parameter.column.as_ref().filter(|c| c.ty != SqlType::Any) {
            let marker = Ident::new(column.ty.marker(), Span::call_site());
            bindings.push(quote_spanned! {arg_span=>
                #q::check_arg::<#q::#marker, _>(#name);
            });
        }
        encoded.push(quote! { #q::Encode::encode(#name) });
    }
    let columns = &described.columns;
    let fields: Vec<Ident> = columns.iter().map(|c| field_ident(&c.name, span)).collect();
    // Each column's read is spanned at the SQL, so a field that cannot
    // hold it is reported there; `row` keeps the macro's own span, where
    // the closure declares it.
    let row_ident = Ident::new("row", Span::call_site());
    let reads = columns.iter().enumerate().map(|(i, c)| {
        let name = c.name.as_str();
        quote_spanned! {span=> #row_ident.get(#i, #name)? }
    });
    let (row, mapper, record) = match &input.form {
        Form::Record if columns.is_empty() => (
            quote! { () },
            quote! { |_| ::std::result::Result::Ok(()) },
            TokenStream::new(),
        ),
        Form::Record => {
            let types = columns
                .iter()
                .map(|c| column_type(c, span))
                .collect::<syn::Result<Vec<_>>>()?;
            let overridden = columns
                .iter()
                .any(|c| matches!(c.override_, Some(Override::Type(_))));
            // A type the user names may not be `Clone` or `PartialEq`.
            let derive = if overridden {
                TokenStream::new()
            } else {
                quote! { #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)] }
            };
            (
                quote! { Record },
                quote! {
                    |#row_ident| ::std::result::Result::Ok(Record {
                        #( #fields: #reads, )*
                    })
                },
                quote! {
                    #derive
                    #[allow(non_camel_case_types, dead_code)]
                    struct Record { #( pub #fields: #types, )* }
                },
            )
        }
        Form::Into(path) => {
            let checked = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let inferred = column_type(c, span)?;
                    let name = c.name.as_str();
                    Ok(quote_spanned! {span=>
                        #row_ident.get_checked::<#inferred, _>(#i, #name)?
                    })
                })
                .collect::<syn::Result<Vec<_>>>()?;
            (
                quote! { #path },
                quote! {
                    |#row_ident| ::std::result::Result::Ok(#path {
                        #( #fields: #checked, )*
                    })
                },
                TokenStream::new(),
            )
        }
    };
    let sql_literal = &input.sql;
    // What the statement reads and writes, for the judgement over a newer
    // schema at run time (`query::Checked`).
    let uses = &described.uses;
    Ok(quote! {{
        #record
        #( #bindings )*
        #q::Query::<#row>::__new(
            #sql_literal,
            ::std::vec![ #( #encoded ),* ],
            #mapper,
        )
        .__with_uses(#uses)
    }})
}

/// A field's identifier, at `span` (the SQL literal), raw for a keyword.
fn field_ident(name: &str, span: Span) -> Ident {
    syn::parse_str::<Ident>(name)
        .map(|mut ident| {
            ident.set_span(span);
            ident
        })
        .unwrap_or_else(|_| Ident::new_raw(name, span))
}

/// The Rust type of a result column.
fn column_type(column: &OutputColumn, span: Span) -> syn::Result<TokenStream> {
    if let Some(Override::Type(ty)) = &column.override_ {
        let parsed: syn::Type = syn::parse_str(ty).map_err(|_| {
            syn::Error::new(
                span,
                format!(
                    "the alias of `{}` names `{ty}`, which is not a Rust type\n  help: write a type after the colon, e.g. `AS \"{}: i32\"`",
                    column.name, column.name
                ),
            )
        })?;
        return Ok(quote! { #parsed });
    }
    let base = match column.ty {
        SqlType::Integer => quote! { i64 },
        SqlType::Real => quote! { f64 },
        SqlType::Text => quote! { ::std::string::String },
        SqlType::Blob => quote! { ::std::vec::Vec<u8> },
        SqlType::Any => return Ok(quote! { ::durable_schema::__private::query::Value }),
    };
    Ok(if column.nullable {
        quote! { ::std::option::Option<#base> }
    } else {
        base
    })
}
