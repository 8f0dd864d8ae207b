//! `Softplus(beta = 1, threshold = 20)`: a smooth ReLU, as PyTorch defines it.
//!
//! ```text
//! y  = ln(1 + e^(β·x)) / β        where β·x <= threshold
//! y  = x                          where β·x >  threshold (the curve is x there, to
//!                                 float precision, and e^(β·x) would overflow)
//! dy/dx = e^(β·x) / (1 + e^(β·x)) = σ(β·x)     (1 beyond the threshold)
//! ```
//!
//! so `dx = dy ⊙ σ(β·x)`, computed from the input the forward pass read.
//!
//! Runtime: `kernels/softplus.rs` (compiled), `tensor/softplus.rs` (dynamic op),
//! `nn::Softplus`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::unary_partial;
use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const KIND: Kind = Kind {
    name: "Softplus",
    has_parameters: false,
    build,
};

/// PyTorch's defaults.
const BETA: f64 = 1.0;
const THRESHOLD: f64 = 20.0;

fn build(call: &mut Call<'_>) -> Built {
    let [beta, threshold] = args::bind(
        call,
        &["beta", "threshold"],
        "`beta` (default 1) and `threshold` (default 20)",
    )[..] else {
        unreachable!("one slot per name")
    };
    let beta = match beta {
        None => BETA,
        Some(expr) => {
            match args::number(expr) {
                Some(beta) if beta > 0.0 => beta,
                Some(_) => {
                    let found = args::tokens_text(expr);
                    call.error(
                        expr,
                        format!(
                            "Softplus's beta must be > 0 (PyTorch's default is 1), found `{found}`"
                        ),
                    );
                    BETA
                }
                None => {
                    let found = args::tokens_text(expr);
                    call.error(
                    expr,
                    format!("Softplus's beta must be a number literal such as `1.0`, found `{found}`"),
                );
                    BETA
                }
            }
        }
    };
    let threshold = match threshold {
        None => THRESHOLD,
        Some(expr) => args::number(expr).unwrap_or_else(|| {
            let found = args::tokens_text(expr);
            call.error(
                expr,
                format!(
                    "Softplus's threshold must be a number literal such as `20.0`, found `{found}`"
                ),
            );
            THRESHOLD
        }),
    };
    Built::elementwise(Softplus { beta, threshold }, call)
}

struct Softplus {
    beta: f64,
    threshold: f64,
}

impl Layer for Softplus {
    fn describe(&self) -> String {
        format!("Softplus({}, {})", self.beta, self.threshold)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let (b, t, x) = (self.beta, self.threshold, site.x_name(0));
        format!("ln(1 + e^({b}·{x}))/{b} ({x} where {b}·{x} > {t})")
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, beta, threshold) = (site.x(0), site.out(), self.beta, self.threshold);
        quote!(kernels::softplus_forward(#x.view(), T::of(#beta), T::of(#threshold), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, beta, threshold) = (site.x(0), site.dy(), self.beta, self.threshold);
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let x_name = site.x_name(0);
            grads.emit(
                quote!(kernels::softplus_backward(#x.view(), T::of(#beta), T::of(#threshold), #dy.view(), #dx.view_mut(), #write);),
                format!(
                    "{} {} ⊙ σ({beta}·{x_name}) (1 where {beta}·{x_name} > {threshold})",
                    t.lhs,
                    site.dy_name()
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        let (b, t) = (self.beta, self.threshold);
        unary_partial(&format!("σ({b}·X) (1 if {b}·X > {t})"))
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, beta, threshold) =
            (site.label(), site.x_dynamic(0), self.beta, self.threshold);
        quote!(net.softplus(#label, #x, T::of(#beta), T::of(#threshold)))
    }
}
