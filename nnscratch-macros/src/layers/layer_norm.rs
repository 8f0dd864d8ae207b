//! `LayerNorm(normalized_shape, eps = 1e-5, elementwise_affine = true)`, as PyTorch's
//! `nn.LayerNorm` over the features of `[batch, C]` (`normalized_shape` may be left out:
//! it is the input's width, checked when given). The same in training and evaluation.
//!
//! ```text
//! μ_r, σ²_r = mean and biased variance of row r     x̂ = (x - μ)/√(σ² + ε)     y = γ ⊙ x̂ + β
//! ```
//!
//! Backward, with `g = γ ⊙ dy` and `s_r = 1/√(σ²_r + ε)`: `dγ = Σ_rows dy ⊙ x̂`,
//! `dβ = Σ_rows dy`, and through each row's own statistics
//! `dx_r = (s_r/C)·(C·g_r - Σ_j g_rj - x̂_r·Σ_j g_rj x̂_rj)` (BatchNorm's formula with
//! rows and features exchanged; derived in `kernels/layer_norm.rs`).
//!
//! Runtime: `kernels/layer_norm.rs` (compiled), `nn/layer_norm.rs` (dynamic, composed of
//! elementary ops), `nn::LayerNorm`.

use proc_macro2::TokenStream;
use quote::quote;

use super::batch_norm::{features_and_eps, flag};
use super::{Built, Call, Grads, Kind, Layer, ParamSet, Site, args};

pub const KIND: Kind = Kind {
    name: "LayerNorm",
    has_parameters: true,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    let [features, eps, affine] = args::bind(
        call,
        &["normalized_shape", "eps", "elementwise_affine"],
        "`normalized_shape`, `eps`, `elementwise_affine`",
    )[..] else {
        unreachable!("one slot per name")
    };
    let (c, eps) = features_and_eps(call, features, eps, "LayerNorm", "normalized_shape");
    let affine = flag(call, affine, "LayerNorm's elementwise_affine", true);
    let mut built = Built::elementwise(
        LayerNorm {
            features: c,
            eps,
            affine,
        },
        call,
    );
    built.shown = Some(format!("LayerNorm({c})"));
    if affine {
        built.params = Some(ParamSet {
            prefix: call.prefix.clone(),
            tensors: vec![
                call.parameter(
                    "weight",
                    vec![c],
                    quote!(::nnscratch::init::ones(#c)),
                    "dγ = Σ_rows dY ⊙ X̂",
                ),
                call.parameter(
                    "bias",
                    vec![c],
                    quote!(::nnscratch::init::zeros(#c)),
                    "dβ = Σ_rows dY",
                ),
            ],
            layer: format!("LayerNorm({c})"),
            span: call.name.span(),
        });
    }
    built.scratch = vec![
        call.scratch(
            "x_hat",
            None,
            c,
            "the normalised input `x̂`, kept for backward.",
        ),
        call.scratch(
            "inv_std",
            None,
            1,
            "each row's `1/√(σ² + ε)`, kept for backward.",
        ),
    ];
    built
}

struct LayerNorm {
    features: usize,
    eps: f64,
    affine: bool,
}

impl LayerNorm {
    fn weight(&self, site: &Site<'_>) -> TokenStream {
        if self.affine {
            let w = site.param(0);
            quote!(Some(#w.view()))
        } else {
            quote!(None)
        }
    }
}

impl Layer for LayerNorm {
    fn describe(&self) -> String {
        format!("LayerNorm({})", self.features)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let x = site.x_name(0);
        let affine = if self.affine {
            let prefix = &site.params().prefix;
            format!("[{prefix}.weight] ⊙ x̂ + [{prefix}.bias]")
        } else {
            "x̂".into()
        };
        format!(
            "{affine}    x̂ = ({x} - μ)/√(σ² + {eps:e}), μ, σ² of each row",
            eps = self.eps
        )
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, weight, eps) = (site.x(0), site.out(), self.weight(site), self.eps);
        let bias = if self.affine {
            let b = site.param(1);
            quote!(Some(#b.view()))
        } else {
            quote!(None)
        };
        let (x_hat, inv_std) = (site.scratch(0), site.scratch(1));
        quote!(kernels::layer_norm_forward(#x.view(), #weight, #bias, #eps, #y.view_mut(), #x_hat.view_mut(), #inv_std.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (dy, dv) = (site.dy(), site.dy_name());
        let (x_hat, inv_std) = (site.scratch(0), site.scratch(1));
        if self.affine {
            let (grad_w, grad_b) = (site.param_grad(0), site.param_grad(1));
            let prefix = &site.params().prefix;
            grads.emit(
                quote!(kernels::norm_backward_params(#dy.view(), #x_hat.view(), Some(#grad_w.view_mut()), Some(#grad_b.view_mut()));),
                format!("d[{prefix}.weight] = Σ_rows {dv} ⊙ x̂    d[{prefix}.bias] = Σ_rows {dv}"),
            );
        }
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let weight = self.weight(site);
            let g = if self.affine {
                format!("[{}.weight] ⊙ {dv}", site.params().prefix)
            } else {
                dv.clone()
            };
            grads.emit(
                quote!(kernels::layer_norm_backward_input(#dy.view(), #x_hat.view(), #weight, #inv_std.view(), #dx.view_mut(), #write);),
                format!(
                    "{} (s/C)·(C·g - Σ_cols g - x̂·Σ_cols(g ⊙ x̂)), g = {g}, s = 1/√(σ² + ε) per row",
                    t.lhs
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dX = (s/C)(C·G - Σ G - X̂·Σ G⊙X̂), G = γ⊙dY".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        let (c, eps) = (self.features, self.eps);
        let (prefix, affine) = if self.affine {
            let (w, b) = (site.param(0), site.param(1));
            (
                site.params().prefix.clone(),
                quote!(Some((#w.clone(), #b.clone()))),
            )
        } else {
            (site.name().to_string(), quote!(None))
        };
        quote!(net.module(
            #label,
            #x,
            #prefix,
            ::nnscratch::nn::Layer::LayerNorm(::nnscratch::nn::LayerNorm::from_parts(#c, #eps, #affine)?),
        ))
    }
}
