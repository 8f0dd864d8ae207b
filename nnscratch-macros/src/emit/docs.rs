//! What a learner reads: the derived equations (a constant and the struct's rustdoc) and
//! the compiled graph's picture description.

use petgraph::graph::NodeIndex;
use proc_macro2::TokenStream;
use quote::quote;

use crate::graph::{Form, Model, Op};
use crate::layers::Site;

/// The right-hand side of a value's forward equation, e.g. `x·[0.weight]ᵀ + [0.bias]`.
pub fn forward_equation(model: &Model, node: NodeIndex) -> String {
    match &model.graph[node].op {
        Op::Input => format!("input [batch, {}]", model.graph[node].width),
        Op::Layer(layer) => layer.equation(&Site::new(model, node)),
    }
}

/// The whole derivation as text: forward, loss, backward.
pub fn equations(model: &Model, backward: &super::backward::Backward) -> String {
    let mut text = String::from("forward (each value is [batch, width])\n");
    for &node in &model.order {
        let value = &model.graph[node];
        let layer = model.describe(node);
        text.push_str(&format!(
            "    {} = {}    {layer} -> [batch, {}]\n",
            value.name,
            forward_equation(model, node),
            value.width
        ));
    }
    let output = &model.graph[model.output];
    let (loss, seed) = model.loss.equations(&output.name, output.width);
    text.push_str(&format!(
        "    {loss}\nbackward (reverse topological order; d_v = ∂loss/∂v)\n    {seed}\n"
    ));
    for line in &backward.equations {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// The rustdoc appended to the user's own doc comment.
pub fn struct_docs(model: &Model, name: &str, equations: &str) -> TokenStream {
    let form = match model.form {
        Form::Sequential => "sequential",
        Form::Graph => "graph",
    };
    let names: Vec<String> = model
        .params
        .iter()
        .flat_map(|p| p.tensors.iter().map(|t| format!("`{}`", p.name(t))))
        .collect();
    let lines = [
        String::new(),
        format!("# Compiled by `model!` ({form} form)"),
        String::new(),
        format!(
            "Input `[batch, {}]`, output `[batch, {}]`, loss `{}`. Parameters (PyTorch `state_dict` names): {}.",
            model.graph[model.input].width,
            model.graph[model.output].width,
            model.loss.name(),
            names.join(", ")
        ),
        String::new(),
        format!(
            "The equations the compiler derived for `{name}` (also in `{name}::BACKWARD_EQUATIONS`):"
        ),
        String::new(),
        "```text".into(),
        equations.trim_end().to_string(),
        "```".into(),
    ];
    quote!(#(#[doc = #lines])*)
}

/// `graph()`'s body: a static description of values, parameters and derived partials.
pub fn picture(model: &Model) -> TokenStream {
    // Picture nodes: every value, and a leaf per parameter, in order.
    let mut specs = Vec::new();
    let mut position = std::collections::HashMap::new();
    // Parameter leaves by (parameter set, tensor): a shared layer's appear once.
    let mut leaves = std::collections::HashMap::new();
    for &node in &model.order {
        let value = &model.graph[node];
        let operands = model.operands(node);
        let mut inputs: Vec<(usize, String)> = Vec::new();
        let op = match &value.op {
            Op::Input => "input".to_string(),
            Op::Layer(layer) => {
                // Operands' edges first, then a leaf and an edge per parameter tensor.
                for (operand, partial) in operands.iter().zip(layer.partials()) {
                    inputs.push((position[operand], partial));
                }
                if let Some(index) = value.params {
                    let p = &model.params[index];
                    for (k, tensor) in p.tensors.iter().enumerate() {
                        if let Some(&leaf) = leaves.get(&(index, k)) {
                            inputs.push((leaf, tensor.partial.to_string()));
                            continue;
                        }
                        let shape = tensor
                            .shape
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ");
                        specs.push((
                            p.name(tensor),
                            "parameter".to_string(),
                            format!("[{shape}]"),
                            true,
                            Vec::new(),
                        ));
                        leaves.insert((index, k), specs.len() - 1);
                        inputs.push((specs.len() - 1, tensor.partial.to_string()));
                    }
                }
                model.describe(node)
            }
        };
        specs.push((
            value.name.clone(),
            op,
            format!("[batch, {}]", value.width),
            false,
            inputs,
        ));
        position.insert(node, specs.len() - 1);
    }
    specs.push((
        "loss".into(),
        model.loss.name().into(),
        "scalar".into(),
        false,
        vec![(position[&model.output], model.loss.partial())],
    ));
    let specs = specs.iter().map(|(name, op, shape, parameter, inputs)| {
        let inputs = inputs.iter().map(|(i, formula)| quote!((#i, #formula)));
        quote! {
            ::nnscratch::compiled::NodeSpec { name: #name, op: #op, shape: #shape, parameter: #parameter, inputs: &[#(#inputs),*] }
        }
    });
    quote! {
        const NODES: &[::nnscratch::compiled::NodeSpec] = &[#(#specs),*];
        ::nnscratch::compiled::picture(NODES)
    }
}

/// Generated code as a learner reads it: `kernels::tanh_forward(ws.h0.view(), ...)`
/// rather than the token stream's spacing.
fn code_text(code: &TokenStream) -> String {
    let mut text = code
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" . ", "."),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ,", ","),
        (" ;", ";"),
        ("& mut ", "&mut "),
        ("# ", "#"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// `DERIVATION`: for each value (and the loss), its forward equation and kernel call,
/// and the backward equations and kernel calls emitted when its gradient is complete,
/// which `compiled::explain` shows beside the dynamic twin's steps.
pub fn derivation(
    model: &Model,
    forward_code: &[TokenStream],
    backward: &super::backward::Backward,
) -> TokenStream {
    let mut forward_calls = forward_code.iter();
    let mut entries = Vec::new();
    for &node in &model.order {
        let value = &model.graph[node];
        let (forward, forward_call) = match &value.op {
            Op::Input => (
                format!("{} = input [batch, {}]", value.name, value.width),
                String::new(),
            ),
            Op::Layer(_) => (
                format!("{} = {}", value.name, forward_equation(model, node)),
                forward_calls.next().map(code_text).unwrap_or_default(),
            ),
        };
        let (equations, calls) = backward
            .per_value
            .iter()
            .find(|(n, _, _)| *n == node)
            .map(|(_, code, equations)| {
                (
                    backward.equations[equations.clone()].to_vec(),
                    backward.code[code.clone()].iter().map(code_text).collect(),
                )
            })
            .unwrap_or_else(|| (Vec::new(), Vec::<String>::new()));
        let name = &value.name;
        entries.push(quote! {
            ::nnscratch::compiled::ValueDerivation {
                value: #name,
                forward: #forward,
                forward_code: #forward_call,
                backward: &[#(#equations),*],
                backward_code: &[#(#calls),*],
            }
        });
    }
    let output = &model.graph[model.output];
    let (loss, seed) = model.loss.equations(&output.name, output.width);
    let (y, dy) = (&output.ident, &output.grad_ident);
    let loss_forward = code_text(&model.loss.forward(&quote!(#y)));
    let loss_backward = code_text(&model.loss.backward(&quote!(#y), &quote!(#dy)));
    entries.push(quote! {
        ::nnscratch::compiled::ValueDerivation {
            value: "loss",
            forward: #loss,
            forward_code: #loss_forward,
            backward: &[#seed],
            backward_code: &[#loss_backward],
        }
    });
    quote! {
        /// For each value: its forward equation and kernel call, and the backward
        /// equations and kernel calls the generated code runs once its gradient is
        /// complete (what `compiled::explain` shows).
        pub const DERIVATION: &'static [::nnscratch::compiled::ValueDerivation] = &[#(#entries),*];
    }
}
