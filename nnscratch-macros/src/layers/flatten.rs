//! `Flatten`: `[batch, C, H, W] -> [batch, C·H·W]`, as PyTorch's `nn.Flatten()`. The
//! values do not move (each sample is already one row of `C·H·W` values, channel-first),
//! so its derivative passes the gradient straight back: `dx = dy`.
//!
//! Runtime: `kernels/identity.rs` (a copy), `Tensor::flatten`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::unary_partial;
use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const KIND: Kind = Kind {
    name: "Flatten",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    let [start, end] = args::bind(
        call,
        &["start_dim", "end_dim"],
        "`start_dim = 1`, `end_dim = -1`",
    )[..] else {
        unreachable!("one slot per name")
    };
    for (expr, expected) in [(start, 1.0), (end, -1.0)] {
        if let Some(expr) = expr
            && args::number(expr) != Some(expected)
        {
            call.error(
                expr,
                "model! flattens everything after the batch: `Flatten` (start_dim = 1, end_dim = -1)",
            );
        }
    }
    let mut built = Built::elementwise(Flatten, call);
    built.shape = built.width.map(|w| vec![w]);
    built.shown = call.input.map(|w| format!("Flatten (width {w})"));
    built
}

struct Flatten;

impl Layer for Flatten {
    fn describe(&self) -> String {
        "Flatten".into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!(
            "{} as rows [batch, C·H·W]    (the same values)",
            site.x_name(0)
        )
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
                format!("{} {}    (reshaped back)", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial("1 (a reshape)")
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        quote!(net.module(#label, #x, #label, ::nnscratch::nn::Layer::Flatten))
    }
}
