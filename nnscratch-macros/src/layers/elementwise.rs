//! The operators of the graph form: `a + b`, `a - b` and `a * b` element-wise, of two
//! values of one width, and a value times (or divided by) a number, or negated.
//!
//! ```text
//! y = a + b      da = dy          db = dy
//! y = a - b      da = dy          db = -dy
//! y = a ⊙ b      da = dy ⊙ b      db = dy ⊙ a
//! y = c·x        dx = c·dy        (`2.0 * h`, `h * 0.5`, `h / 4.0`, `-h`)
//! ```
//!
//! Runtime: `kernels/elementwise.rs` (compiled), `tensor/arith.rs` (dynamic ops, with
//! broadcasting).

use proc_macro2::TokenStream;
use quote::quote;
use syn::ExprBinary;

use super::{Built, Grads, Layer, Site, args};
use crate::graph::Errors;

/// Whether `op` combines values (`+`, `-`, `*`); reports any other operator. Checked
/// before the operands are lowered, so a wrong operator is one error. (`/` takes a
/// number on its right: see [`scale`].)
pub fn check_operator(op: &syn::BinOp, errors: &mut Errors) -> bool {
    let known = matches!(
        op,
        syn::BinOp::Add(_) | syn::BinOp::Sub(_) | syn::BinOp::Mul(_)
    );
    if !known {
        let message = if matches!(op, syn::BinOp::Div(_)) {
            "`/` divides a value by a number literal, `h / 2.0`; values combine with `+`, `-` and `*`"
        } else {
            "only `+`, `-` and `*` (element-wise) combine values"
        };
        errors.at(op, message);
    }
    known
}

/// The constant factor of `c * x`, `x * c`, `x / c` or `-x`, and which side the value
/// is on (`true`: the left), if the expression is one; a number that cannot scale
/// (`h + 1.0`, `2.0 / h`, `h / 0`) is reported.
pub fn scale(expr: &ExprBinary, errors: &mut Errors) -> Option<(f64, bool)> {
    let (left, right) = (args::number(&expr.left), args::number(&expr.right));
    match (&expr.op, left, right) {
        (_, None, None) => None,
        (syn::BinOp::Mul(_), Some(c), None) => Some((c, false)),
        (syn::BinOp::Mul(_), None, Some(c)) => Some((c, true)),
        (syn::BinOp::Div(_), None, Some(c)) if c != 0.0 => Some((1.0 / c, true)),
        (syn::BinOp::Div(_), None, Some(_)) => {
            errors.at(&expr.right, "division by zero");
            Some((1.0, true))
        }
        _ => {
            errors.at(
                expr,
                format!(
                    "a number can multiply or divide a value (`2.0 * h`, `h / 2.0`), not `{}`: \
                     values are added to values; a learned offset is a Linear's bias",
                    args::tokens_text(expr)
                ),
            );
            Some((1.0, left.is_none()))
        }
    }
}

/// The layer `y = c·x`, keeping the shape of `x`.
pub fn scaled(c: f64, shape: Option<Vec<usize>>) -> Built {
    Built {
        layer: Box::new(Scale { c }),
        width: shape.as_ref().map(|s| s.iter().product()),
        shape,
        params: None,
        shown: None,
        state: Vec::new(),
        scratch: Vec::new(),
    }
}

/// The layer a binary operator (`+`, `-` or `*`, see [`check_operator`]) denotes and its
/// output shape (`None` when unknown); operands of different shapes are an error.
pub fn binary(
    expr: &ExprBinary,
    shapes: (Option<Vec<usize>>, Option<Vec<usize>>),
    errors: &mut Errors,
) -> Option<Built> {
    let (layer, symbol): (Box<dyn Layer>, &str) = match expr.op {
        syn::BinOp::Add(_) => (Box::new(Add), "+"),
        syn::BinOp::Sub(_) => (Box::new(Sub), "-"),
        syn::BinOp::Mul(_) => (Box::new(Mul), "*"),
        _ => return None,
    };
    if let (Some(left), Some(right)) = &shapes
        && left != right
    {
        let (what, l, r) = if left.len() == 1 && right.len() == 1 {
            ("width", left[0].to_string(), right[0].to_string())
        } else {
            ("shape", format!("{left:?}"), format!("{right:?}"))
        };
        errors.at(
            expr.op,
            format!(
                "`{symbol}` needs operands of equal {what}: `{}` has {what} {l}, `{}` has {what} {r}",
                args::tokens_text(&*expr.left),
                args::tokens_text(&*expr.right)
            ),
        );
    }
    let shape = shapes.0.or(shapes.1);
    Some(Built {
        layer,
        width: shape.as_ref().map(|s| s.iter().product()),
        shape,
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

struct Sub;

impl Layer for Sub {
    fn describe(&self) -> String {
        "-".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("{} - {}", site.x_name(0), site.x_name(1))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (a, b, y) = (site.x(0), site.x(1), site.out());
        quote!(kernels::sub_forward(#a.view(), #b.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let dy = site.dy();
        if let Some(t) = grads.operand(site, 0) {
            let (d, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::add_backward(#dy.view(), #d.view_mut(), #write);),
                format!("{} {}", t.lhs, site.dy_name()),
            );
        }
        if let Some(t) = grads.operand(site, 1) {
            let (d, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::sub_backward_right(#dy.view(), #d.view_mut(), #write);),
                format!("{} -{}", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dA = dY".into(), "dB = -dY".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, a, b) = (site.label(), site.x_dynamic(0), site.x_dynamic(1));
        quote!(net.sub(#label, #a, #b))
    }
}

struct Scale {
    c: f64,
}

impl Layer for Scale {
    fn describe(&self) -> String {
        format!("{} *", self.c)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("{}·{}", self.c, site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, c) = (site.x(0), site.out(), self.c);
        quote!(kernels::scale_forward(#x.view(), T::of(#c), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (dy, c) = (site.dy(), self.c);
        if let Some(t) = grads.operand(site, 0) {
            let (d, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::scale_backward(#dy.view(), T::of(#c), #d.view_mut(), #write);),
                format!("{} {c}·{}", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec![format!("dX = {}·dY", self.c)]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, c) = (site.label(), site.x_dynamic(0), self.c);
        quote!(net.scale(#label, #x, T::of(#c)))
    }
}
