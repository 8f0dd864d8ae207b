//! `BatchNorm1d(num_features, eps = 1e-5, momentum = 0.1, affine = true,
//! track_running_stats = true)`, as PyTorch's `nn.BatchNorm1d` on `[batch, C]`:
//! `num_features` may be left out (it is the input's width, checked when given).
//!
//! ```text
//! training:    μ, σ² = mean and biased variance of each feature over the batch
//! evaluation:  μ, σ² = running_mean, running_var
//! x̂ = (x - μ)/√(σ² + ε)      y = γ ⊙ x̂ + β
//! ```
//!
//! Backward, with `B` rows and `s = 1/√(σ² + ε)`: `dγ = Σ_rows dy ⊙ x̂`, `dβ = Σ_rows dy`,
//! and through the batch statistics (both depend on every row)
//! `dx = (γ·s/B) ⊙ (B·dy - Σ_rows dy - x̂ ⊙ Σ_rows(dy ⊙ x̂))`; through running statistics
//! (constants) `dx = γ·s ⊙ dy`. The derivation is written out in `kernels/batch_norm.rs`.
//!
//! The buffers `running_mean`, `running_var` and `num_batches_tracked` are fields of the
//! model struct, saved and loaded with the parameters under PyTorch's names; the
//! forward pass keeps `x̂` and `s` in the workspace.
//!
//! Runtime: `kernels/batch_norm.rs` (compiled), `nn/batch_norm.rs` (dynamic, composed of
//! elementary ops), `nn::BatchNorm1d`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Built, Call, Grads, Kind, Layer, ParamSet, Site, StateKind, args};

pub const KIND: Kind = Kind {
    name: "BatchNorm1d",
    has_parameters: true,
    build: build_1d,
};

/// `BatchNorm2d` on `[batch, C, H, W]`: the same rules, each channel's statistics over
/// the batch and its `H·W` positions.
pub const KIND_2D: Kind = Kind {
    name: "BatchNorm2d",
    has_parameters: true,
    build: build_2d,
};

fn build_1d(call: &mut Call<'_>) -> Built {
    build(call, false)
}

fn build_2d(call: &mut Call<'_>) -> Built {
    build(call, true)
}

/// PyTorch's defaults.
const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// The arguments the normalisation layers share: a feature count checked against the
/// input's width, and `eps`.
pub(super) fn features_and_eps(
    call: &mut Call<'_>,
    features: Option<&syn::Expr>,
    eps: Option<&syn::Expr>,
    layer: &str,
    argument: &str,
) -> (usize, f64) {
    call.require_flat();
    let input = call.input;
    let declared = features.and_then(|f| {
        args::parse_width(f, &format!("{layer}'s {argument}"), call.errors).map(|w| (w, f))
    });
    if let (Some((declared, token)), Some(actual)) = (declared, input)
        && declared != actual
    {
        let (what, unit) = if layer == "BatchNorm2d" {
            ("channel", "channels")
        } else {
            ("width", "features")
        };
        let source = call.source.clone();
        call.error(
            token,
            format!(
                "{what} mismatch: {layer}({declared}) normalises {declared} {unit}, but it reads \
                 {source}, which has {actual} {unit}; write `{layer}({actual})`, or `{layer}` alone \
                 to take the input's {unit}"
            ),
        );
    }
    let eps = match eps {
        None => EPS,
        Some(expr) => {
            match args::number(expr) {
                Some(e) if e > 0.0 => e,
                _ => {
                    let found = args::tokens_text(expr);
                    call.error(
                    expr,
                    format!("{layer}'s eps must be a positive number such as `1e-5`, found `{found}`"),
                );
                    EPS
                }
            }
        }
    };
    (input.or(declared.map(|(w, _)| w)).unwrap_or(0), eps)
}

/// A `true`/`false` keyword argument, `default` when absent.
pub(super) fn flag(
    call: &mut Call<'_>,
    expr: Option<&syn::Expr>,
    what: &str,
    default: bool,
) -> bool {
    expr.and_then(|e| args::boolean(e, what, call.errors))
        .unwrap_or(default)
}

fn build(call: &mut Call<'_>, images: bool) -> Built {
    let name = if images { "BatchNorm2d" } else { "BatchNorm1d" };
    // BatchNorm2d checks its channels as BatchNorm1d checks its features.
    let image = if images {
        super::conv::spatial_input(call, true)
    } else {
        None
    };
    let full_shape = call.input_shape.clone();
    let spatial = image.map_or(1, |(_, (h, w))| h * w);
    if images {
        call.input = image.map(|(c, _)| c);
        call.input_shape = call.input.map(|c| vec![c]);
    }
    let [features, eps, momentum, affine, track] = args::bind(
        call,
        &[
            "num_features",
            "eps",
            "momentum",
            "affine",
            "track_running_stats",
        ],
        "`num_features`, `eps`, `momentum`, `affine`, `track_running_stats`",
    )[..] else {
        unreachable!("one slot per name")
    };
    let (c, eps) = features_and_eps(call, features, eps, name, "num_features");
    if images {
        call.input_shape = if image.is_some() { full_shape } else { None };
    }
    let momentum = match momentum {
        None => MOMENTUM,
        Some(expr) => match args::number(expr) {
            Some(m) if (0.0..=1.0).contains(&m) => m,
            _ => {
                let found = args::tokens_text(expr);
                call.error(
                    expr,
                    format!(
                        "BatchNorm1d's momentum must be a number between 0 and 1 (the running \
                         statistics' step towards each batch's), found `{found}`"
                    ),
                );
                MOMENTUM
            }
        },
    };
    let affine = flag(call, affine, "BatchNorm1d's affine", true);
    let track = flag(call, track, "BatchNorm1d's track_running_stats", true);
    let layer = BatchNorm {
        images,
        spatial,
        prefix: call.prefix.clone(),
        features: c,
        eps,
        momentum,
        affine,
        track,
    };
    let mut built = Built::elementwise(layer, call);
    built.shown = Some(format!("{name}({c})"));
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
            layer: format!("{name}({c})"),
            span: call.name.span(),
        });
    }
    if track {
        let array = quote!(::nnscratch::ndarray::Array1<T>);
        built.state = vec![
            call.state(
                "running_mean",
                array.clone(),
                quote!(::nnscratch::ndarray::Array1::zeros(#c)),
                StateKind::Buffer,
            ),
            call.state(
                "running_var",
                array,
                quote!(::nnscratch::ndarray::Array1::ones(#c)),
                StateKind::Buffer,
            ),
            call.state(
                "num_batches_tracked",
                quote!(u64),
                quote!(0),
                StateKind::Count,
            ),
        ];
    }
    built.scratch = vec![
        call.scratch(
            "x_hat",
            None,
            c * spatial,
            "the normalised input `x̂`, kept for backward.",
        ),
        call.scratch(
            "stats",
            Some(3),
            c,
            "per feature: `1/√(σ² + ε)` (row 0) and two sums backward needs (rows 1, 2).",
        ),
    ];
    built
}

struct BatchNorm {
    /// BatchNorm2d.
    images: bool,
    /// Positions per channel (`H·W`; 1 for BatchNorm1d).
    spatial: usize,
    /// The `state_dict` prefix of its parameters and buffers.
    prefix: String,
    features: usize,
    eps: f64,
    momentum: f64,
    affine: bool,
    track: bool,
}

impl BatchNorm {
    /// `Some(weight.view())`, `None` without `affine`.
    fn weight(&self, site: &Site<'_>) -> TokenStream {
        if self.affine {
            let w = site.param(0);
            quote!(Some(#w.view()))
        } else {
            quote!(None)
        }
    }

    /// `γ ⊙ ` or nothing, for equations.
    fn gamma(&self, site: &Site<'_>) -> String {
        if self.affine {
            format!("[{}.weight]", site.params().prefix)
        } else {
            "1".into()
        }
    }
}

impl Layer for BatchNorm {
    fn describe(&self) -> String {
        let dims = if self.images { 2 } else { 1 };
        format!("BatchNorm{dims}d({})", self.features)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let x = site.x_name(0);
        let affine = if self.affine {
            let prefix = &site.params().prefix;
            format!("[{prefix}.weight] ⊙ x̂ + [{prefix}.bias]")
        } else {
            "x̂".into()
        };
        let stats = if self.track {
            "μ, σ² of the batch (training) or running_mean, running_var (evaluation)"
        } else {
            "μ, σ² of the batch"
        };
        format!(
            "{affine}    x̂ = ({x} - μ)/√(σ² + {eps:e}), {stats}",
            eps = self.eps
        )
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, weight) = (site.x(0), site.out(), self.weight(site));
        let bias = if self.affine {
            let b = site.param(1);
            quote!(Some(#b.view()))
        } else {
            quote!(None)
        };
        let running = if self.track {
            let (mean, var, count) = (site.state(0), site.state(1), site.state(2));
            quote!(Some(kernels::RunningStats { mean: #mean.view_mut(), var: #var.view_mut(), num_batches_tracked: #count }))
        } else {
            quote!(None)
        };
        let (x_hat, stats, spatial) = (site.scratch(0), site.scratch(1), self.spatial);
        let (eps, momentum) = (self.eps, self.momentum);
        let describe = format!("{} (value `{}`)", self.describe(), site.name());
        let model = &site.model.name;
        quote! {
            if training {
                ::nnscratch::compiled::check_batch_norm_batch(#model, #describe, #x.nrows())?;
            }
            kernels::batch_norm_forward(#x.view(), #spatial, #weight, #bias, #running, training, #eps, #momentum, #y.view_mut(), #x_hat.view_mut(), #stats.view_mut());
        }
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (dy, dv) = (site.dy(), site.dy_name());
        let (x_hat, stats, spatial) = (site.scratch(0), site.scratch(1), self.spatial);
        if self.affine {
            let (grad_w, grad_b) = (site.param_grad(0), site.param_grad(1));
            let prefix = &site.params().prefix;
            grads.emit(
                quote!(kernels::batch_norm_backward_params(#dy.view(), #x_hat.view(), #spatial, Some(#grad_w.view_mut()), Some(#grad_b.view_mut()));),
                format!("d[{prefix}.weight] = Σ_rows {dv} ⊙ x̂    d[{prefix}.bias] = Σ_rows {dv}"),
            );
        }
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let weight = self.weight(site);
            let gamma = self.gamma(site);
            let batch_statistics = if self.track {
                quote!(training)
            } else {
                quote!(true)
            };
            let evaluation = if self.track {
                format!("    (evaluation: {gamma}·s ⊙ {dv})")
            } else {
                String::new()
            };
            grads.emit(
                quote!(kernels::batch_norm_backward_input(#dy.view(), #x_hat.view(), #spatial, #weight, #batch_statistics, #stats.view_mut(), #dx.view_mut(), #write);),
                format!(
                    "{} ({gamma}·s/B) ⊙ (B·{dv} - Σ_rows {dv} - x̂ ⊙ Σ_rows({dv} ⊙ x̂)), s = 1/√(σ² + ε){evaluation}",
                    t.lhs
                ),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dX = (γ·s/B)(B·dY - Σ dY - X̂·Σ dY⊙X̂)".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        let (c, eps, momentum) = (self.features, self.eps, self.momentum);
        let prefix = &self.prefix;
        let affine = if self.affine {
            let (w, b) = (site.param(0), site.param(1));
            quote!(Some((#w.clone(), #b.clone())))
        } else {
            quote!(None)
        };
        let running = if self.track {
            let (mean, var, count) = (site.state(0), site.state(1), site.state(2));
            quote!(Some((self.#mean.clone(), self.#var.clone(), self.#count)))
        } else {
            quote!(None)
        };
        let layer = quote!(::nnscratch::nn::BatchNorm1d::from_parts(#c, #eps, #momentum, #affine, #running)?);
        let build = if self.images {
            quote!(#layer.for_images())
        } else {
            layer
        };
        quote!(net.module(
            #label,
            #x,
            #prefix,
            ::nnscratch::nn::Layer::BatchNorm1d(#build),
        ))
    }
}
