//! The backward pass, derived by the chain rule: values in reverse topological order, so
//! each value's gradient is complete before it is sent on to its operands.
//!
//! A value used by several consumers receives the sum of their contributions: the first
//! contribution emitted sets its gradient buffer (`Write::Set`), later ones add to it
//! (`Write::Add`). Values with no parameter upstream (the input, and anything computed
//! from the input alone) need no gradient and get none.

use std::collections::HashSet;

use petgraph::graph::NodeIndex;
use proc_macro2::TokenStream;
use quote::quote;

use super::{grad_expr, value_expr};
use crate::graph::{Model, Op};

/// Decides `Set` or `Add` for each contribution, in emission order.
pub struct Contributions {
    received: HashSet<NodeIndex>,
}

impl Contributions {
    /// The loss has already set the output's gradient.
    pub fn new(model: &Model) -> Self {
        Contributions {
            received: HashSet::from([model.output]),
        }
    }

    /// `true` for the first contribution to `node` (set), `false` afterwards (add).
    pub fn first(&mut self, node: NodeIndex) -> bool {
        self.received.insert(node)
    }
}

fn write_mode(first: bool) -> TokenStream {
    if first {
        quote!(Write::Set)
    } else {
        quote!(Write::Add)
    }
}

/// The backward pass as code and as the equations it implements (`d_v` is ∂loss/∂v).
pub struct Backward {
    pub code: Vec<TokenStream>,
    pub equations: Vec<String>,
}

/// The backward statements, after the loss kernel has written the output's gradient.
pub fn derive(model: &Model) -> Backward {
    let mut code = Vec::new();
    let mut equations = Vec::new();
    let name = |node: NodeIndex| model.graph[node].name.clone();
    let mut contributions = Contributions::new(model);
    for &node in model.order.iter().rev() {
        let value = &model.graph[node];
        if !value.requires_grad || value.op == Op::Input {
            continue;
        }
        let operands = model.operands(node);
        let dy = grad_expr(model, node);
        let y = value_expr(model, node);
        // Operand `i`'s gradient buffer and write mode, if it needs a gradient at all.
        let mut target = |i: usize| {
            let operand = operands[i];
            model.graph[operand].requires_grad.then(|| {
                let first = contributions.first(operand);
                let assign = if first { "=" } else { "+=" };
                (
                    grad_expr(model, operand),
                    write_mode(first),
                    format!("d_{} {assign}", name(operand)),
                )
            })
        };
        let (v, dv) = (name(node), format!("d_{}", name(node)));
        match &value.op {
            Op::Input => {}
            Op::Linear { param } => {
                let p = &model.linears[*param];
                let (w, b) = (&p.weight, &p.bias);
                let x = value_expr(model, operands[0]);
                let x_name = name(operands[0]);
                // dW = dYᵀ·X, db = Σ_rows dY
                code.push(quote!(kernels::linear_backward_params(#dy.view(), #x.view(), grad.#w.view_mut(), grad.#b.view_mut(), &mut ws.gemm);));
                equations.push(format!(
                    "d[{0}.weight] = {dv}ᵀ·{x_name}    d[{0}.bias] = Σ_rows {dv}",
                    p.prefix
                ));
                // dX = dY·W
                if let Some((dx, write, lhs)) = target(0) {
                    code.push(quote!(kernels::linear_backward_input(#dy.view(), #w.view(), #dx.view_mut(), #write, &mut ws.gemm);));
                    equations.push(format!("{lhs} {dv}·[{}.weight]", p.prefix));
                }
            }
            Op::ReLU => {
                let x = value_expr(model, operands[0]);
                let x_name = name(operands[0]);
                if let Some((dx, write, lhs)) = target(0) {
                    code.push(quote!(kernels::relu_backward(#x.view(), #dy.view(), #dx.view_mut(), #write);));
                    equations.push(format!("{lhs} {dv} ⊙ [{x_name} > 0]"));
                }
            }
            Op::LeakyReLU(slope) => {
                let x = value_expr(model, operands[0]);
                let x_name = name(operands[0]);
                if let Some((dx, write, lhs)) = target(0) {
                    code.push(quote!(kernels::leaky_relu_backward(#x.view(), T::of(#slope), #dy.view(), #dx.view_mut(), #write);));
                    equations.push(format!("{lhs} {dv} ⊙ (1 where {x_name} > 0, else {slope})"));
                }
            }
            Op::Sigmoid => {
                if let Some((dx, write, lhs)) = target(0) {
                    code.push(quote!(kernels::sigmoid_backward(#y.view(), #dy.view(), #dx.view_mut(), #write);));
                    equations.push(format!("{lhs} {dv} ⊙ {v} ⊙ (1 - {v})"));
                }
            }
            Op::Tanh => {
                if let Some((dx, write, lhs)) = target(0) {
                    code.push(quote!(kernels::tanh_backward(#y.view(), #dy.view(), #dx.view_mut(), #write);));
                    equations.push(format!("{lhs} {dv} ⊙ (1 - {v}²)"));
                }
            }
            Op::Add => {
                for i in 0..2 {
                    if let Some((d, write, lhs)) = target(i) {
                        code.push(
                            quote!(kernels::add_backward(#dy.view(), #d.view_mut(), #write);),
                        );
                        equations.push(format!("{lhs} {dv}"));
                    }
                }
            }
            Op::Mul => {
                for i in 0..2 {
                    let other = value_expr(model, operands[1 - i]);
                    let other_name = name(operands[1 - i]);
                    if let Some((d, write, lhs)) = target(i) {
                        code.push(quote!(kernels::mul_backward(#dy.view(), #other.view(), #d.view_mut(), #write);));
                        equations.push(format!("{lhs} {dv} ⊙ {other_name}"));
                    }
                }
            }
        }
    }
    Backward { code, equations }
}
