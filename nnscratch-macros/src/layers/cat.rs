//! `cat(a, b, …)` of the graph form (also PyTorch's spelling `cat((a, b), dim = 1)`):
//! values joined along the features, `[batch, wa] ⊕ [batch, wb] → [batch, wa + wb]`.
//! Each operand's gradient is its block of columns of the output's:
//!
//! ```text
//! y = [a | b]      da = dy[:, 0..wa]      db = dy[:, wa..wa + wb]
//! ```
//!
//! Runtime: `kernels/elementwise.rs` (`cat_forward`, `cat_backward`), `tensor/cat.rs`
//! (the dynamic op `Tensor::cat`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::Expr;

use super::{Built, Grads, Layer, Site, args};
use crate::graph::Errors;

/// The operands of a `cat` call, after checking its `dim`: `cat(a, b)`, `cat((a, b))`,
/// `cat([a, b], dim = 1)`; `None` (reported) when it has none.
pub fn operands<'e>(call: &'e syn::ExprCall, errors: &mut Errors) -> Option<Vec<&'e Expr>> {
    let mut operands = Vec::new();
    for arg in &call.args {
        match arg {
            Expr::Assign(assign) if args::tokens_text(&assign.left) == "dim" => {
                let dim = args::number(&assign.right);
                if dim != Some(1.0) && dim != Some(-1.0) {
                    errors.at(
                        &assign.right,
                        format!(
                            "cat joins values along the features: dim = 1 or -1 (dim 0 is the batch), found `{}`",
                            args::tokens_text(&assign.right)
                        ),
                    );
                }
            }
            Expr::Assign(assign) => errors.at(
                &assign.left,
                format!(
                    "`cat` has no argument `{}`; write `cat(a, b)` or `cat((a, b), dim = 1)`",
                    args::tokens_text(&assign.left)
                ),
            ),
            Expr::Tuple(tuple) => operands.extend(tuple.elems.iter()),
            Expr::Array(array) => operands.extend(array.elems.iter()),
            Expr::Paren(paren) => operands.push(&*paren.expr),
            other => operands.push(other),
        }
    }
    if operands.is_empty() {
        errors.at(&call.func, "`cat` needs the values it joins: `cat(a, b)`");
        return None;
    }
    Some(operands)
}

/// The layer joining values of the given shapes (`None` where a mistake made one
/// unknown) along their first axis (the features, or the channels of `[C, H, W]`
/// values, whose other axes must agree); each sample's rows are stored channel-first, so
/// either way an output row is the operands' rows one after another.
pub fn concatenation(
    call: &syn::ExprCall,
    shapes: &[Option<Vec<usize>>],
    errors: &mut Errors,
) -> Built {
    let known: Option<Vec<Vec<usize>>> = shapes.iter().cloned().collect();
    let shape = known.as_ref().and_then(|shapes| {
        let first = &shapes[0];
        let agree = shapes.iter().all(|s| s.len() == first.len() && s[1..] == first[1..]);
        if !agree {
            let list = shapes.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
            errors.at(
                &call.func,
                format!("`cat` joins values along their first axis, so the others must agree; found shapes {list}"),
            );
            return None;
        }
        let mut shape = first.clone();
        shape[0] = shapes.iter().map(|s| s[0]).sum();
        Some(shape)
    });
    let widths = known
        .map(|shapes| shapes.iter().map(|s| s.iter().product()).collect())
        .unwrap_or_default();
    Built {
        layer: Box::new(Cat { widths }),
        width: shape.as_ref().map(|s| s.iter().product()),
        shape,
        params: None,
        shown: None,
        state: Vec::new(),
        scratch: Vec::new(),
    }
}

struct Cat {
    widths: Vec<usize>,
}

impl Cat {
    /// Where operand `i`'s columns start.
    fn offset(&self, i: usize) -> usize {
        self.widths[..i].iter().sum()
    }
}

impl Layer for Cat {
    fn describe(&self) -> String {
        "cat".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let names: Vec<&str> = (0..self.widths.len()).map(|i| site.x_name(i)).collect();
        format!("[{}]    (joined along the features)", names.join(" | "))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let y = site.out();
        let copies = (0..self.widths.len()).map(|i| {
            let (x, offset) = (site.x(i), self.offset(i));
            quote!(kernels::cat_forward(#x.view(), #offset, #y.view_mut());)
        });
        quote!(#(#copies)*)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let dy = site.dy();
        for i in 0..self.widths.len() {
            let (start, end) = (self.offset(i), self.offset(i) + self.widths[i]);
            if let Some(t) = grads.operand(site, i) {
                let (d, write) = (&t.dx, &t.write);
                grads.emit(
                    quote!(kernels::cat_backward(#dy.view(), #start, #d.view_mut(), #write);),
                    format!("{} {}[:, {start}..{end}]", t.lhs, site.dy_name()),
                );
            }
        }
    }

    fn partials(&self) -> Vec<String> {
        (0..self.widths.len())
            .map(|i| {
                let start = self.offset(i);
                format!("dX = dY[:, {start}..{}]", start + self.widths[i])
            })
            .collect()
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let label = site.label();
        let operands = (0..self.widths.len()).map(|i| site.x_dynamic(i));
        quote!(net.cat(#label, &[#(#operands),*]))
    }
}
