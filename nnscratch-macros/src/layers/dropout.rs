//! `Dropout(p = 0.5)`: inverted dropout, as PyTorch's `nn.Dropout`. In training each
//! element is kept with probability `1 - p` and scaled by `1/(1 - p)`; in evaluation the
//! layer is the identity. With the mask `m` drawn in forward and kept for backward:
//!
//! ```text
//! y = x ⊙ m        dx = dy ⊙ m        (evaluation: y = x, dx = dy)
//! ```
//!
//! The layer owns a mask generator (a field of the model struct), seeded in `new` and by
//! `manual_seed`; its mask lives in the workspace, so a step allocates nothing.
//!
//! Runtime: `kernels/dropout.rs` (compiled), `nn/dropout.rs` (dynamic), `nn::Dropout`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::unary_partial;
use super::{Built, Call, Grads, Kind, Layer, Site, StateKind, args};

pub const KIND: Kind = Kind {
    name: "Dropout",
    has_parameters: false,
    build,
};

/// PyTorch's default.
const P: f64 = 0.5;

fn build(call: &mut Call<'_>) -> Built {
    let [p] = args::bind(call, &["p"], "the drop probability `p` (default 0.5)")[..] else {
        unreachable!("one slot per name")
    };
    let p = match p {
        None => P,
        Some(expr) => match args::number(expr) {
            Some(p) if (0.0..=1.0).contains(&p) => p,
            Some(p) => {
                call.error(
                    expr,
                    format!(
                        "Dropout's p is the probability of dropping an element, between 0 and 1; found {p}"
                    ),
                );
                P
            }
            None => {
                let found = args::tokens_text(expr);
                call.error(
                    expr,
                    format!("Dropout's p must be a number literal such as `0.5`, found `{found}`"),
                );
                P
            }
        },
    };
    let mut built = Built::elementwise(Dropout { p }, call);
    built.state.push(call.state(
        "dropout",
        quote!(::nnscratch::kernels::DropoutGenerator),
        // Seeded at the end of `new`, from its random number generator.
        quote!(::nnscratch::kernels::DropoutGenerator::new(0)),
        StateKind::DropoutGenerator,
    ));
    let width = call.input.unwrap_or(0);
    built.scratch.push(call.scratch(
        "mask",
        None,
        width,
        "the dropout mask of the last training-mode forward pass (0 or 1/(1 - p)).",
    ));
    built
}

struct Dropout {
    p: f64,
}

impl Layer for Dropout {
    fn describe(&self) -> String {
        format!("Dropout({})", self.p)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let p = self.p;
        format!(
            "{} ⊙ mask    mask = 1/(1 - {p}) with probability 1 - {p}, else 0 (training; evaluation: the identity)",
            site.x_name(0)
        )
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, p) = (site.x(0), site.out(), self.p);
        let (generator, mask) = (site.state(0), site.scratch(0));
        quote!(kernels::dropout_forward(#x.view(), #y.view_mut(), #mask.view_mut(), #p, training, #generator);)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (dy, mask) = (site.dy(), site.scratch(0));
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::dropout_backward(#dy.view(), #mask.view(), #dx.view_mut(), #write, training);),
                format!(
                    "{} {} ⊙ mask    (evaluation: {})",
                    t.lhs,
                    site.dy_name(),
                    site.dy_name()
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("mask (0 or 1/(1 - p))")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, p, generator) = (site.label(), site.x_dynamic(0), self.p, site.state(0));
        quote!(net.module(
            #label,
            #x,
            #label,
            ::nnscratch::nn::Layer::Dropout(::nnscratch::nn::Dropout::with_generator(#p, self.#generator)?),
        ))
    }
}
