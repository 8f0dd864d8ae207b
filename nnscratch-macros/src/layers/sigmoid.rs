//! `Sigmoid`: `y = σ(x) = 1 / (1 + e^-x)`, and since `σ' = σ(1 - σ)`, the backward pass
//! reads the output it kept: `dx = dy ⊙ y(1 - y)`.
//!
//! Runtime: `kernels/sigmoid.rs` (compiled), `tensor/sigmoid.rs` (dynamic op), `nn::Sigmoid`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::{no_arguments, unary_partial};
use super::{Built, Call, Grads, Kind, Layer, Site};

pub const KIND: Kind = Kind {
    name: "Sigmoid",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    no_arguments(call);
    Built::elementwise(Sigmoid, call)
}

struct Sigmoid;

impl Layer for Sigmoid {
    fn describe(&self) -> String {
        "Sigmoid".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("σ({})", site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y) = (site.x(0), site.out());
        quote!(kernels::sigmoid_forward(#x.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (y, dy, v) = (site.out(), site.dy(), site.name());
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::sigmoid_backward(#y.view(), #dy.view(), #dx.view_mut(), #write);),
                format!("{} {} ⊙ {v} ⊙ (1 - {v})", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("Y(1 - Y)")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        quote!(net.sigmoid(#label, #x))
    }
}
