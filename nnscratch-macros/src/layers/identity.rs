//! `Identity`: `y = x`, so `dx = dy` (PyTorch's `nn.Identity`, a placeholder layer).
//!
//! Runtime: `kernels/identity.rs` (compiled), `tensor/identity.rs` (dynamic op),
//! `nn::Identity`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::{no_arguments, unary_partial};
use super::{Built, Call, Grads, Kind, Layer, Site};

pub const KIND: Kind = Kind {
    name: "Identity",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    no_arguments(call);
    Built::elementwise(Identity, call)
}

struct Identity;

impl Layer for Identity {
    fn describe(&self) -> String {
        "Identity".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        site.x_name(0).to_string()
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y) = (site.x(0), site.out());
        quote!(kernels::identity_forward(#x.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let dy = site.dy();
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::identity_backward(#dy.view(), #dx.view_mut(), #write);),
                format!("{} {}", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("1")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        quote!(net.identity(#label, #x))
    }
}
