//! The `model!` compiler behind nnscratch: a network declared once is parsed, built into a
//! graph, checked, differentiated and emitted as straight-line Rust, at compile time.
//!
//! Stages, one module each (the shape of `serde_derive`):
//!
//! * `parse.rs`: syntax → AST, keeping every token's span;
//! * `graph.rs`: AST → petgraph IR with every width inferred; all validation lives here,
//!   and all errors are collected and reported together;
//! * `emit/`: IR → Rust tokens (`forward.rs`, `backward.rs`, `params.rs`, `docs.rs`);
//!   codegen never validates.
//!
//! On an invalid model the macro emits the errors plus a stand-in struct whose methods
//! are `unreachable!()` (`emit/fallback.rs`), so the user sees the real mistakes and not a
//! cascade of "cannot find type" errors where the model is used.
//!
//! Users depend on `nnscratch`, which re-exports this macro as `nnscratch::model`; its
//! documentation describes the language.

mod emit;
mod graph;
mod parse;

use proc_macro::TokenStream;

/// Compiles a network declaration into a struct with forward, loss and a hand-derived
/// backward pass. See the `nnscratch` crate documentation for the language.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as parse::ModelInput);
    match graph::build(&input) {
        Ok(model) => emit::model(&input, &model),
        Err(errors) => emit::fallback(&input, errors),
    }
    .into()
}
