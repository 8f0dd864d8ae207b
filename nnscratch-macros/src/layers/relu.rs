//! `ReLU`: `y = max(x, 0)`, so `dx = dy ⊙ [x > 0]` (0 at `x = 0`, as PyTorch).
//!
//! Runtime: `kernels/relu.rs` (compiled), `tensor/relu.rs` (dynamic op), `nn::ReLU`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::{no_arguments, unary_partial};
use super::{Built, Call, Grads, Kind, Layer, Site};

pub const KIND: Kind = Kind {
    name: "ReLU",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    no_arguments(call);
    Built::elementwise(ReLU, call)
}

struct ReLU;

impl Layer for ReLU {
    fn describe(&self) -> String {
        "ReLU".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("max({}, 0)", site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y) = (site.x(0), site.out());
        quote!(kernels::relu_forward(#x.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy) = (site.x(0), site.dy());
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::relu_backward(#x.view(), #dy.view(), #dx.view_mut(), #write);),
                format!("{} {} ⊙ [{} > 0]", t.lhs, site.dy_name(), site.x_name(0)),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("[X > 0]")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        quote!(net.relu(#label, #x))
    }
}
