//! `Tanh`: `y = tanh(x)`, and since `tanh' = 1 - tanh²`, the backward pass reads the
//! output it kept: `dx = dy ⊙ (1 - y²)`.
//!
//! Runtime: `kernels/tanh.rs` (compiled; a vectorised `f32` tanh), `tensor/tanh.rs`
//! (dynamic op), `nn::Tanh`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::{no_arguments, unary_partial};
use super::{Built, Call, Grads, Kind, Layer, Site};

pub const KIND: Kind = Kind {
    name: "Tanh",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    no_arguments(call);
    Built::elementwise(Tanh, call)
}

struct Tanh;

impl Layer for Tanh {
    fn describe(&self) -> String {
        "Tanh".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("tanh({})", site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y) = (site.x(0), site.out());
        quote!(kernels::tanh_forward(#x.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (y, dy, v) = (site.out(), site.dy(), site.name());
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::tanh_backward(#y.view(), #dy.view(), #dx.view_mut(), #write);),
                format!("{} {} ⊙ (1 - {v}²)", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("(1 - Y²)")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        quote!(net.tanh(#label, #x))
    }
}
