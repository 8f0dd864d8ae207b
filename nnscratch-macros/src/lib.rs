//! The `model!` compiler behind nnscratch: a network declared once is parsed, built into a
//! graph, checked, differentiated and emitted as straight-line Rust, at compile time.
//!
//! Stages, one module each (the shape of `serde_derive`):
//!
//! * `parse.rs`: syntax → AST, keeping every token's span;
//! * `graph/`: AST → petgraph IR with every width inferred; all validation lives here,
//!   and all errors are collected and reported together;
//! * `layers/`: one module per layer kind, holding everything the compiler knows about
//!   it (its syntax and shape rule, asked by `graph/`; its forward and backward code,
//!   equations, picture labels and dynamic twin, asked by `emit/`);
//! * `emit/`: IR → Rust tokens (`forward.rs`, `backward.rs`, `params.rs`, `docs.rs`),
//!   walking the graph and asking each node's layer; codegen never validates.
//!
//! On an invalid model the macro emits the errors plus a stand-in struct whose methods
//! are `unreachable!()` (`emit/fallback.rs`), so the user sees the real mistakes and not a
//! cascade of "cannot find type" errors where the model is used.
//!
//! Users depend on `nnscratch`, which re-exports this macro as `nnscratch::model`; its
//! documentation describes the language.

mod emit;
mod graph;
mod layers;
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
