//! `ELU(alpha = 1)`: `y = x` where `x > 0`, else `α(e^x - 1)`; its derivative is 1, or
//! `α·e^x`, so `dx = dy ⊙ (1 if x > 0 else α·e^x)`.
//!
//! Runtime: `kernels/elu.rs` (compiled), `tensor/elu.rs` (dynamic op), `nn::ELU`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::unary_partial;
use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const KIND: Kind = Kind {
    name: "ELU",
    has_parameters: false,
    build,
};

/// PyTorch's default.
const ALPHA: f64 = 1.0;

fn build(call: &mut Call<'_>) -> Built {
    let [alpha] = args::bind(call, &["alpha"], "its alpha (default 1)")[..] else {
        unreachable!("one slot per name")
    };
    let alpha = match alpha {
        None => ALPHA,
        Some(expr) => args::number(expr).unwrap_or_else(|| {
            let found = args::tokens_text(expr);
            call.error(
                expr,
                format!("ELU's alpha must be a number literal such as `1.0`, found `{found}`"),
            );
            ALPHA
        }),
    };
    Built::elementwise(Elu { alpha }, call)
}

struct Elu {
    alpha: f64,
}

impl Layer for Elu {
    fn describe(&self) -> String {
        format!("ELU({})", self.alpha)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let (x, a) = (site.x_name(0), self.alpha);
        format!("{x} where {x} > 0, else {a}(e^{x} - 1)")
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, alpha) = (site.x(0), site.out(), self.alpha);
        quote!(kernels::elu_forward(#x.view(), T::of(#alpha), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, alpha) = (site.x(0), site.dy(), self.alpha);
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let x_name = site.x_name(0);
            grads.emit(
                quote!(kernels::elu_backward(#x.view(), T::of(#alpha), #dy.view(), #dx.view_mut(), #write);),
                format!(
                    "{} {} ⊙ (1 where {x_name} > 0, else {alpha}·e^{x_name})",
                    t.lhs,
                    site.dy_name()
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial(&format!("(1 if X > 0 else {}·e^X)", self.alpha))
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, alpha) = (site.label(), site.x_dynamic(0), self.alpha);
        quote!(net.elu(#label, #x, T::of(#alpha)))
    }
}
