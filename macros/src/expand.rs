//! `args → load → check → expand`, and the error path.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use durable_schema_compiler::{check_dir, Options, Plan, ReplacedLink};

use crate::args::{self, Args};
use crate::query;

/// The attribute's entry point. The user's item is always re-emitted
/// untouched; on error it comes with the `compile_error!`s and stub items so
/// that code using `CURRENT_SCHEMA_VERSION` or `migrate` reports nothing more.
pub(crate) fn durable_schema(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: syn::Item = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        // rustc reports the item's own syntax error; adding ours would only
        // be noise.
        Err(_) => return item,
    };
    let target = match Target::of(&parsed) {
        Ok(target) => target,
        Err(e) => {
            let stubs = Target::impl_target(&parsed).map(|t| {
                let queries = query::schema_macro(&t.ident, "migrations", "migrations", true, true);
                let stubs = stubs(&t, "migrations", false);
                quote! { #stubs #queries }
            });
            let error = e.into_compile_error();
            return quote! { #item #error #stubs };
        }
    };
    let args = args::parse(args);
    let result = args.as_ref().map_err(Clone::clone).and_then(|args| {
        let plan = load_and_check(args)?;
        let links = plan
            .replaced_links()
            .map_err(|d| syn::Error::new(args.dir.span(), d.to_string()))?;
        let queries = query::schema_macro(
            &target.ident,
            &args.dir.value(),
            &args.table,
            args.baseline,
            false,
        );
        let generated = expand(&target, args, &plan, &links);
        Ok(quote! { #generated #queries })
    });
    match result {
        Ok(generated) => quote! { #item #generated },
        Err(errors) => {
            let (table, strict) = match &args {
                Ok(a) => (a.table.as_str(), a.strict),
                Err(_) => ("migrations", false),
            };
            let stubs = stubs(&target, table, strict);
            let queries = query::schema_macro(&target.ident, "migrations", table, true, true);
            let errors = errors.into_compile_error();
            quote! { #item #errors #stubs #queries }
        }
    }
}

/// The type the attribute generates an `impl` for.
struct Target {
    ident: syn::Ident,
    generics: syn::Generics,
}

impl Target {
    fn of(item: &syn::Item) -> syn::Result<Self> {
        let (kind, span) = match item {
            syn::Item::Struct(s) => {
                return Ok(Self {
                    ident: s.ident.clone(),
                    generics: s.generics.clone(),
                })
            }
            syn::Item::Enum(e) => ("an enum", e.enum_token.span()),
            syn::Item::Union(u) => ("a union", u.union_token.span()),
            syn::Item::Fn(f) => ("a function", f.sig.fn_token.span()),
            syn::Item::Impl(i) => ("an impl block", i.impl_token.span()),
            syn::Item::Trait(t) => ("a trait", t.trait_token.span()),
            syn::Item::Mod(m) => ("a module", m.mod_token.span()),
            other => ("this item", other.span()),
        };
        Err(syn::Error::new(
            span,
            format!("#[durable_schema] goes on the Durable Object's struct, not on {kind}"),
        ))
    }

    /// Types that can still carry stub items after a misplaced attribute.
    fn impl_target(item: &syn::Item) -> Option<Self> {
        match item {
            syn::Item::Enum(e) => Some(Self {
                ident: e.ident.clone(),
                generics: e.generics.clone(),
            }),
            syn::Item::Union(u) => Some(Self {
                ident: u.ident.clone(),
                generics: u.generics.clone(),
            }),
            _ => None,
        }
    }
}

fn load_and_check(args: &Args) -> Result<Plan, syn::Error> {
    let span = args.dir.span();
    let Some(base) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return Err(syn::Error::new(
            span,
            "CARGO_MANIFEST_DIR is not set: build with Cargo so `dir` can be resolved",
        ));
    };
    let options = Options {
        table: args.table.clone(),
        baseline: args.baseline,
        ..Options::default()
    };
    check_dir(std::path::Path::new(&base), &args.dir.value(), &options).map_err(|diagnostics| {
        let mut all: Option<syn::Error> = None;
        for d in diagnostics {
            let e = syn::Error::new(span, d.to_string());
            match &mut all {
                Some(all) => all.combine(e),
                None => all = Some(e),
            }
        }
        all.unwrap_or_else(|| syn::Error::new(span, "migration check failed"))
    })
}

fn expand(target: &Target, args: &Args, plan: &Plan, links: &[Vec<ReplacedLink>]) -> TokenStream {
    let version = plan.version();
    let table = &args.table;
    let strict = args.strict;
    // Tie the embedded data to the files: an edit changes an `include_str!`
    // input, which makes Cargo rebuild this crate. A file whose bytes are its
    // normalized text is embedded by its own `include_str!` below; the others
    // (a BOM, CRLF) are embedded normalized and included here for tracking.
    let mut paths: Vec<String> = plan
        .migrations
        .iter()
        .filter(|m| !m.source.verbatim)
        .map(|m| m.source.abs_path.clone())
        .collect();
    // The history lock too, when there is one: a lock edit re-runs the check.
    if let Some(lock) = &plan.lock {
        paths.push(lock.abs_path.clone());
    }
    // A drizzle-kit directory: its journal decides order and names, so an
    // edit of it must rebuild too.
    let journal = plan
        .migrations
        .iter()
        .find(|m| m.source.journal_when.is_some())
        .and_then(|m| std::path::Path::new(&m.source.abs_path).parent())
        .map(|dir| dir.join("meta").join("_journal.json"));
    if let Some(journal) = journal.and_then(|p| p.to_str().map(str::to_owned)) {
        paths.push(journal);
    }
    // The executor's drizzle path (taking drizzle's history over) is linked
    // only into a program whose schema comes from a journal.
    let from_journal = plan
        .migrations
        .iter()
        .any(|m| m.source.journal_when.is_some());
    let drizzle = from_journal.then(|| quote! { .__with_drizzle() });
    // Likewise the phases of batched statements: only with a batch.
    let has_batch = plan
        .migrations
        .iter()
        .any(|m| m.statements.iter().any(|s| s.batch));
    let batches = has_batch.then(|| quote! { .__with_batches() });
    let includes = paths.iter().map(|path| {
        quote! { const _: &str = include_str!(#path); }
    });
    // Each file's text is embedded once: rustc reads it from the file when
    // the file is its normalized text, else it is a literal. Its statements
    // are spans of it (see `Statements`).
    let texts = plan.migrations.iter().map(|m| {
        if m.source.verbatim {
            let path = &m.source.abs_path;
            quote! { include_str!(#path) }
        } else {
            string_literal(&m.source.text)
        }
    });
    // A file edited while this build runs could give rustc other bytes than
    // the ones checked: their total length must still match (the edit itself
    // makes the next build check it again). One check for all: a constant
    // per migration costs rustc a tenth of a second at a thousand.
    let total: usize = plan.migrations.iter().map(|m| m.source.text.len()).sum();
    // Everything else about the migrations is one packed string, decoded at
    // run time on first use: a constructor call per migration cost rustc a
    // tenth of a second of checking on every build at a thousand.
    let meta = string_literal(&durable_schema_compiler::pack_migrations(plan, links));
    let head_chain = plan.migrations.last().map_or("", |m| m.chain.as_str());
    // New objects: the verified baseline, embedded once like a migration's
    // text, or why there is none (`SCHEMA.baseline_note()`).
    let baseline = match &plan.baseline {
        Ok(b) => {
            let text = string_literal(&b.sql);
            let spans = durable_schema_compiler::encode_spans(&b.statements);
            quote! {
                .__with_baseline(&::durable_schema::__private::Baseline::__new(#text, #spans))
            }
        }
        Err(no) => {
            let note = no.to_string();
            quote! { .__without_baseline(#note) }
        }
    };
    let head_query = durable_schema_compiler::tracking::head_query(table);
    let retry_after = args
        .retry_after
        .map(|seconds| quote! { .__with_retry_after(#seconds) });
    let budget_ms = args.budget_ms.map(|ms| quote! { .__with_budget_ms(#ms) });
    let dir = args.dir.value();
    let doc_version = format!(
        " The schema version of this Durable Object: the highest migration in `{dir}` ({version})."
    );
    let body = quote! {
        #[doc = #doc_version]
        pub const CURRENT_SCHEMA_VERSION: u32 = #version;

        /// The migrations checked at compile time by `#[durable_schema]`.
        pub const SCHEMA: ::durable_schema::Schema = {
            #(#includes)*
            const TEXTS: &[&str] = &[#(#texts),*];
            const META: &str = #meta;
            const _: () = ::durable_schema::__private::check_tag(META);
            const _: [(); #total] = [(); ::durable_schema::__private::total_len(TEXTS)];
            fn decoded() -> &'static [::durable_schema::__private::Migration] {
                static CELL: ::durable_schema::__private::DecodedCell =
                    ::durable_schema::__private::DecodedCell::new();
                ::durable_schema::__private::decoded(&CELL, TEXTS, META)
            }
            ::durable_schema::__private::Schema::__packed(
                #table, #strict, #version, #head_chain, decoded,
            )
                .__with_head_query(#head_query)
                #retry_after
                #budget_ms
                #drizzle
                #batches
                #baseline
        };
    };
    implement(target, &body)
}

/// `text` as a string literal. A large one (a baseline, a file with CRLF
/// line ends) is written raw when it can be: a normal literal is escaped by
/// the macro and unescaped by rustc, byte by byte, on every build, a raw one
/// only scanned. Raw literals cannot hold a carriage return, and a NUL or
/// other control character is kept escaped too.
fn string_literal(text: &str) -> TokenStream {
    let plain = text
        .chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\t');
    if plain {
        // Enough `#`s that no `"#...` inside ends the literal; rustc
        // allows at most 255.
        let mut hashes = 1;
        while hashes < 256 && text.contains(&format!("\"{}", "#".repeat(hashes))) {
            hashes += 1;
        }
        let fence = "#".repeat(hashes);
        if hashes < 256 {
            if let Ok(tokens) = format!("r{fence}\"{text}\"{fence}").parse::<TokenStream>() {
                return tokens;
            }
        }
    }
    quote! { #text }
}

/// The items the attribute adds, with `body` holding the two constants.
fn implement(target: &Target, body: &TokenStream) -> TokenStream {
    let ident = &target.ident;
    let (impl_generics, ty_generics, where_clause) = target.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #ident #ty_generics #where_clause {
            #body

            /// Brings the database up to [`Self::SCHEMA`]; call it first thing
            /// in the constructor.
            ///
            /// On a Durable Object (`&worker::State`) it runs
            /// `SCHEMA.wake` under `blockConcurrencyWhile`, so no request sees
            /// an old schema; a failure never resets the object, and code
            /// reaches the database through `durable_schema::worker::sql`.
            /// On a `rusqlite::Connection` it migrates and returns the report.
            // The parameter's name must not clash with the struct's own
            // generic parameters, which are in scope here.
            #[allow(dead_code)]
            pub fn migrate<__DurableSchemaTarget>(
                target: &__DurableSchemaTarget,
            ) -> <__DurableSchemaTarget as ::durable_schema::__private::MigrateTarget>::Output
            where
                __DurableSchemaTarget: ::durable_schema::__private::MigrateTarget + ?Sized,
            {
                ::durable_schema::__private::MigrateTarget::__migrate(target, &Self::SCHEMA)
            }
        }
    }
}

/// Items with the right names and types but no migrations, emitted only
/// next to a `compile_error!`, so one mistake gives one error.
fn stubs(target: &Target, table: &str, strict: bool) -> TokenStream {
    let body = quote_spanned! {Span::call_site()=>
        #[doc(hidden)]
        pub const CURRENT_SCHEMA_VERSION: u32 = 0;
        #[doc(hidden)]
        pub const SCHEMA: ::durable_schema::__private::Schema =
            ::durable_schema::__private::Schema::__new(#table, #strict, &[]);
    };
    implement(target, &body)
}

#[cfg(test)]
mod tests {
    use super::string_literal;

    #[test]
    fn string_literals_read_back_as_their_text() {
        let texts = [
            "",
            "plain",
            "say \"#hi\"#",
            "\"## and \"#",
            "tab\there\nline",
            "a carriage return\r",
            "nul\0",
            "é ∑",
        ];
        for text in texts {
            let literal: syn::LitStr = syn::parse2(string_literal(text)).unwrap();
            assert_eq!(literal.value(), text, "{text:?}");
        }
        // Raw, with one more `#` than any `"#...` inside; escaped when a
        // raw literal cannot hold the text.
        assert!(string_literal("a \"#b").to_string().starts_with("r##\""));
        assert!(string_literal("\"##").to_string().starts_with("r###\""));
        assert!(string_literal("plain").to_string().starts_with("r#\""));
        assert!(string_literal("cr\r").to_string().starts_with('"'));
        let fenced = format!("\"{}", "#".repeat(300));
        assert!(string_literal(&fenced).to_string().starts_with('"'));
        let literal: syn::LitStr = syn::parse2(string_literal(&fenced)).unwrap();
        assert_eq!(literal.value(), fenced);
    }
}
