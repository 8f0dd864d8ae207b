//! `LeakyReLU(negative_slope = 0.01)`: `y = x` where `x > 0`, else `slope·x`, so
//! `dx = dy ⊙ (1 if x > 0 else slope)`. Any finite slope is accepted, negative ones too,
//! as PyTorch accepts them.
//!
//! Runtime: `kernels/leaky_relu.rs` (compiled), `tensor/leaky_relu.rs` (dynamic op),
//! `nn::LeakyReLU`.

use proc_macro2::TokenStream;
use quote::quote;

use super::activation::unary_partial;
use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const KIND: Kind = Kind {
    name: "LeakyReLU",
    has_parameters: false,
    build,
};

/// PyTorch's default negative slope.
const DEFAULT_SLOPE: f64 = 0.01;

fn build(call: &mut Call<'_>) -> Built {
    let [slope] = args::bind(
        call,
        &["negative_slope"],
        "its negative slope (default 0.01)",
    )[..] else {
        unreachable!("one slot per name")
    };
    let slope = match slope {
        None => DEFAULT_SLOPE,
        Some(expr) => {
            let found = args::tokens_text(expr);
            // Any finite slope, negative ones too, as PyTorch accepts.
            match args::number(expr) {
                Some(slope) => slope,
                None => {
                    call.error(expr, format!("LeakyReLU's slope must be a number literal such as `0.01`, found `{found}`"));
                    DEFAULT_SLOPE
                }
            }
        }
    };
    Built::elementwise(LeakyReLU { slope }, call)
}

struct LeakyReLU {
    slope: f64,
}

impl Layer for LeakyReLU {
    fn describe(&self) -> String {
        format!("LeakyReLU({})", self.slope)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("leaky_relu({}, {})", site.x_name(0), self.slope)
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, slope) = (site.x(0), site.out(), self.slope);
        quote!(kernels::leaky_relu_forward(#x.view(), T::of(#slope), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, slope) = (site.x(0), site.dy(), self.slope);
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::leaky_relu_backward(#x.view(), T::of(#slope), #dy.view(), #dx.view_mut(), #write);),
                format!(
                    "{} {} ⊙ (1 where {} > 0, else {slope})",
                    t.lhs,
                    site.dy_name(),
                    site.x_name(0)
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial(&format!("(1 if X > 0 else {})", self.slope))
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, slope) = (site.label(), site.x_dynamic(0), self.slope);
        quote!(net.leaky_relu(#label, #x, T::of(#slope)))
    }
}
