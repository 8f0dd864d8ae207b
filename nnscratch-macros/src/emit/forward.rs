//! The forward pass: one kernel call per value, operands before consumers, each asked
//! of the value's layer (`layers/`).

use proc_macro2::TokenStream;

use crate::graph::{Model, Op};
use crate::layers::Site;

/// One kernel call per non-input value (the equations are in the struct's rustdoc).
pub fn statements(model: &Model) -> Vec<TokenStream> {
    model
        .order
        .iter()
        .filter_map(|&node| match &model.graph[node].op {
            Op::Input => None,
            Op::Layer(layer) => Some(layer.forward(&Site::new(model, node))),
        })
        .collect()
}
