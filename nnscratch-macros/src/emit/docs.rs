//! What a learner reads: the derived equations (a constant and the struct's rustdoc) and
//! the compiled graph's picture description.

use petgraph::graph::NodeIndex;
use proc_macro2::TokenStream;
use quote::quote;

use crate::graph::{Form, LossKind, Model, Op};

/// The right-hand side of a value's forward equation, e.g. `x·[0.weight]ᵀ + [0.bias]`.
pub fn forward_equation(model: &Model, node: NodeIndex) -> String {
    let operands = model.operands(node);
    let name = |i: usize| model.graph[operands[i]].name.clone();
    match &model.graph[node].op {
        Op::Input => format!("input [batch, {}]", model.graph[node].width),
        Op::Linear { param } => {
            let p = &model.linears[*param];
            format!("{}·[{1}.weight]ᵀ + [{1}.bias]", name(0), p.prefix)
        }
        Op::ReLU => format!("max({}, 0)", name(0)),
        Op::LeakyReLU(slope) => format!("leaky_relu({}, {slope})", name(0)),
        Op::Sigmoid => format!("σ({})", name(0)),
        Op::Tanh => format!("tanh({})", name(0)),
        Op::Add => format!("{} + {}", name(0), name(1)),
        Op::Mul => format!("{} ⊙ {}", name(0), name(1)),
    }
}

/// The loss and the gradient it starts the backward pass with.
fn loss_equations(model: &Model) -> (String, String) {
    let out = &model.graph[model.output].name;
    match model.loss {
        LossKind::Mse => (
            format!("loss = mean(({out} - target)²)    MSELoss"),
            format!(
                "d_{out} = 2({out} - target)/n    n = batch·{}",
                model.graph[model.output].width
            ),
        ),
        LossKind::CrossEntropy => (
            format!("loss = -mean_rows(log softmax({out})[class])    CrossEntropyLoss"),
            format!("d_{out} = (softmax({out}) - onehot(class))/batch"),
        ),
    }
}

/// The whole derivation as text: forward, loss, backward.
pub fn equations(model: &Model) -> String {
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
    let (loss, seed) = loss_equations(model);
    text.push_str(&format!(
        "    {loss}\nbackward (reverse topological order; d_v = ∂loss/∂v)\n    {seed}\n"
    ));
    for line in super::backward::derive(model).equations {
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
        .linears
        .iter()
        .flat_map(|p| {
            [
                format!("`{}.weight`", p.prefix),
                format!("`{}.bias`", p.prefix),
            ]
        })
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
    for &node in &model.order {
        let value = &model.graph[node];
        let operands = model.operands(node);
        let mut inputs: Vec<(usize, String)> = Vec::new();
        let op = match &value.op {
            Op::Input => "input".to_string(),
            Op::Linear { param } => {
                let p = &model.linears[*param];
                for (suffix, shape, formula) in [
                    (
                        "weight",
                        format!("[{}, {}]", p.out_features, p.in_features),
                        "dW = dYᵀ·X",
                    ),
                    ("bias", format!("[{}]", p.out_features), "db = Σ_rows dY"),
                ] {
                    specs.push((
                        format!("{}.{suffix}", p.prefix),
                        "parameter".to_string(),
                        shape,
                        true,
                        Vec::new(),
                    ));
                    inputs.push((specs.len() - 1, formula.to_string()));
                }
                inputs.insert(0, (position[&operands[0]], "dX = dY·W".into()));
                model.describe(node)
            }
            Op::ReLU => {
                inputs.push((position[&operands[0]], "dX = dY ⊙ [X > 0]".into()));
                model.describe(node)
            }
            Op::LeakyReLU(slope) => {
                inputs.push((
                    position[&operands[0]],
                    format!("dX = dY ⊙ (1 if X > 0 else {slope})"),
                ));
                model.describe(node)
            }
            Op::Sigmoid => {
                inputs.push((position[&operands[0]], "dX = dY ⊙ Y(1 - Y)".into()));
                model.describe(node)
            }
            Op::Tanh => {
                inputs.push((position[&operands[0]], "dX = dY ⊙ (1 - Y²)".into()));
                model.describe(node)
            }
            Op::Add => {
                inputs.push((position[&operands[0]], "dA = dY".into()));
                inputs.push((position[&operands[1]], "dB = dY".into()));
                model.describe(node)
            }
            Op::Mul => {
                inputs.push((position[&operands[0]], "dA = dY ⊙ B".into()));
                inputs.push((position[&operands[1]], "dB = dY ⊙ A".into()));
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
    let (loss_name, loss_formula) = match model.loss {
        LossKind::Mse => ("MSELoss", "dY = 2(Y - T)/n"),
        LossKind::CrossEntropy => ("CrossEntropyLoss", "dZ = (softmax(Z) - onehot(T))/N"),
    };
    specs.push((
        "loss".into(),
        loss_name.into(),
        "scalar".into(),
        false,
        vec![(position[&model.output], loss_formula.into())],
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
