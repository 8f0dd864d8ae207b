//! `SiLU`: `y = x·σ(x)`; by the product rule and `σ' = σ(1 - σ)`,
//! `dx = dy ⊙ σ(x)(1 + x(1 - σ(x)))`.
//!
//! Runtime: `kernels/silu.rs` (compiled), `tensor/silu.rs` (dynamic op), `nn::SiLU`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::{no_arguments, unary_partial};
use super::{Built, Call, Grads, Kind, Layer, Site};

pub const KIND: Kind = Kind {
    name: "SiLU",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    no_arguments(call);
    Built::elementwise(SiLU, call)
}

struct SiLU;

impl Layer for SiLU {
    fn describe(&self) -> String {
        "SiLU".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let x = site.x_name(0);
        format!("{x}·σ({x})")
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y) = (site.x(0), site.out());
        quote!(kernels::silu_forward(#x.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy) = (site.x(0), site.dy());
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let x_name = site.x_name(0);
            grads.emit(
                quote!(kernels::silu_backward(#x.view(), #dy.view(), #dx.view_mut(), #write);),
                format!(
                    "{} {} ⊙ σ({x_name})(1 + {x_name}(1 - σ({x_name})))",
                    t.lhs,
                    site.dy_name()
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("σ(X)(1 + X(1 - σ(X)))")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        quote!(net.silu(#label, #x))
    }
}
