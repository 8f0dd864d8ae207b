//! The forward pass: one kernel call per value, operands before consumers.

use proc_macro2::TokenStream;
use quote::quote;

use super::value_expr;
use crate::graph::{Model, Op};

/// One kernel call per non-input value (the equations are in the struct's rustdoc).
pub fn statements(model: &Model) -> Vec<TokenStream> {
    let mut code = Vec::new();
    for &node in &model.order {
        let value = &model.graph[node];
        let out = &value.ident;
        let operands = model.operands(node);
        let arg = |i: usize| value_expr(model, operands[i]);
        let call = match &value.op {
            Op::Input => continue,
            Op::Linear { param } => {
                let p = &model.linears[*param];
                let (w, b, x) = (&p.weight, &p.bias, arg(0));
                quote!(kernels::linear_forward(#x.view(), #w.view(), #b.view(), ws.#out.view_mut(), &mut ws.gemm);)
            }
            Op::ReLU => {
                let x = arg(0);
                quote!(kernels::relu_forward(#x.view(), ws.#out.view_mut());)
            }
            Op::LeakyReLU(slope) => {
                let x = arg(0);
                quote!(kernels::leaky_relu_forward(#x.view(), T::of(#slope), ws.#out.view_mut());)
            }
            Op::Sigmoid => {
                let x = arg(0);
                quote!(kernels::sigmoid_forward(#x.view(), ws.#out.view_mut());)
            }
            Op::Tanh => {
                let x = arg(0);
                quote!(kernels::tanh_forward(#x.view(), ws.#out.view_mut());)
            }
            Op::Add => {
                let (a, b) = (arg(0), arg(1));
                quote!(kernels::add_forward(#a.view(), #b.view(), ws.#out.view_mut());)
            }
            Op::Mul => {
                let (a, b) = (arg(0), arg(1));
                quote!(kernels::mul_forward(#a.view(), #b.view(), ws.#out.view_mut());)
            }
        };
        code.push(call);
    }
    code
}
