//! `a + b` and `a * b` of the graph form: element-wise, of two values of one width.
//!
//! ```text
//! y = a + b      da = dy          db = dy
//! y = a ⊙ b      da = dy ⊙ b      db = dy ⊙ a
//! ```
//!
//! Runtime: `kernels/elementwise.rs` (compiled), `tensor/arith.rs` (dynamic ops, with
//! broadcasting).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ExprBinary;

use super::{Built, Grads, Layer, Site, args};
use crate::graph::Errors;

/// Whether `op` combines values (`+`, `*`); reports any other operator. Checked before
/// the operands are lowered, so a wrong operator is one error.
pub fn check_operator(op: &syn::BinOp, errors: &mut Errors) -> bool {
    let known = matches!(op, syn::BinOp::Add(_) | syn::BinOp::Mul(_));
    if !known {
        errors.at(op, "only `+` and `*` (element-wise) combine values");
    }
    known
}

/// The layer a binary operator (`+` or `*`, see [`check_operator`]) denotes and its
/// output width (`None` when unknown); operands of different widths are an error.
pub fn binary(
    expr: &ExprBinary,
    widths: (Option<usize>, Option<usize>),
    errors: &mut Errors,
) -> Option<Built> {
    let (layer, symbol): (Box<dyn Layer>, &str) = match expr.op {
        syn::BinOp::Add(_) => (Box::new(Add), "+"),
        syn::BinOp::Mul(_) => (Box::new(Mul), "*"),
        _ => return None,
    };
    if let (Some(lw), Some(rw)) = widths
        && lw != rw
    {
        errors.at(
            expr.op,
            format!(
                "`{symbol}` needs operands of equal width: `{}` has width {lw}, `{}` has width {rw}",
                args::tokens_text(&*expr.left),
                args::tokens_text(&*expr.right)
            ),
        );
    }
    Some(Built {
        layer,
        width: widths.0.or(widths.1),
        params: None,
        shown: None,
        state: Vec::new(),
        scratch: Vec::new(),
    })
}

struct Add;

impl Layer for Add {
    fn describe(&self) -> String {
        "+".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("{} + {}", site.x_name(0), site.x_name(1))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (a, b, y) = (site.x(0), site.x(1), site.out());
        quote!(kernels::add_forward(#a.view(), #b.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let dy = site.dy();
        for i in 0..2 {
            if let Some(t) = grads.operand(site, i) {
                let (d, write) = (&t.dx, &t.write);
                grads.emit(
                    quote!(kernels::add_backward(#dy.view(), #d.view_mut(), #write);),
                    format!("{} {}", t.lhs, site.dy_name()),
                );
            }
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dA = dY".into(), "dB = dY".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, a, b) = (site.label(), site.x_dynamic(0), site.x_dynamic(1));
        quote!(net.add(#label, #a, #b))
    }
}

struct Mul;

impl Layer for Mul {
    fn describe(&self) -> String {
        "*".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("{} ⊙ {}", site.x_name(0), site.x_name(1))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (a, b, y) = (site.x(0), site.x(1), site.out());
        quote!(kernels::mul_forward(#a.view(), #b.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let dy = site.dy();
        for i in 0..2 {
            let other = site.x(1 - i);
            if let Some(t) = grads.operand(site, i) {
                let (d, write) = (&t.dx, &t.write);
                grads.emit(
                    quote!(kernels::mul_backward(#dy.view(), #other.view(), #d.view_mut(), #write);),
                    format!("{} {} ⊙ {}", t.lhs, site.dy_name(), site.x_name(1 - i)),
                );
            }
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dA = dY ⊙ B".into(), "dB = dY ⊙ A".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, a, b) = (site.label(), site.x_dynamic(0), site.x_dynamic(1));
        quote!(net.mul(#label, #a, #b))
    }
}
