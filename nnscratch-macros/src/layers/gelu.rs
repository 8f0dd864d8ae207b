//! `GELU(approximate = "none")`: `y = x·Φ(x)`, `Φ` the standard normal CDF, or with
//! `approximate = "tanh"` PyTorch's approximation `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
//! By the product rule, `dx = dy ⊙ (Φ(x) + x·φ(x))` (`φ` the normal density), computed
//! from the input the forward pass read.
//!
//! Runtime: `kernels/gelu.rs` (compiled), `tensor/gelu.rs` (dynamic op), `nn::GELU`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Lit};

use super::activation::unary_partial;
use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const KIND: Kind = Kind {
    name: "GELU",
    has_parameters: false,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    let [approximate] = args::bind(
        call,
        &["approximate"],
        "`approximate`, \"none\" (the default) or \"tanh\"",
    )[..] else {
        unreachable!("one slot per name")
    };
    let tanh = match approximate {
        None => false,
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        })) if s.value() == "none" => false,
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        })) if s.value() == "tanh" => true,
        Some(other) => {
            let found = args::tokens_text(other);
            let hint = if found == "tanh" || found == "none" {
                format!(": write it as a string, `approximate = \"{found}\"`")
            } else {
                String::new()
            };
            call.error(
                other,
                format!("GELU's approximate must be \"none\" or \"tanh\", as in PyTorch; found `{found}`{hint}"),
            );
            false
        }
    };
    Built::elementwise(Gelu { tanh }, call)
}

struct Gelu {
    tanh: bool,
}

impl Layer for Gelu {
    fn describe(&self) -> String {
        if self.tanh { "GELU(tanh)" } else { "GELU" }.into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let x = site.x_name(0);
        if self.tanh {
            format!("½{x}(1 + tanh(√(2/π)({x} + 0.044715{x}³)))")
        } else {
            format!("{x}·Φ({x})")
        }
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, tanh) = (site.x(0), site.out(), self.tanh);
        quote!(kernels::gelu_forward(#x.view(), #tanh, #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, tanh) = (site.x(0), site.dy(), self.tanh);
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let x_name = site.x_name(0);
            let derivative = if self.tanh {
                format!("gelu_tanh'({x_name})")
            } else {
                format!("(Φ({x_name}) + {x_name}·φ({x_name}))")
            };
            grads.emit(
                quote!(kernels::gelu_backward(#x.view(), #tanh, #dy.view(), #dx.view_mut(), #write);),
                format!("{} {} ⊙ {derivative}", t.lhs, site.dy_name()),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        unary_partial(if self.tanh {
            "gelu_tanh'(X)"
        } else {
            "(Φ(X) + X·φ(X))"
        })
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, tanh) = (site.label(), site.x_dynamic(0), self.tanh);
        quote!(net.gelu(#label, #x, #tanh))
    }
}
