//! `Linear`: `Y = X·Wᵀ + b` with `W: [out, in]` and `b: [out]`, as PyTorch's `nn.Linear`.
//!
//! Written `Linear(out)` (the input width inferred) or `Linear(in, out)` (checked) in the
//! sequential form, `Linear(h, out)` in the graph form. Its gradients, by the chain rule
//! on `Y_rj = Σ_k X_rk W_jk + b_j`:
//!
//! ```text
//! dW = dYᵀ·X        db = Σ_rows dY        dX = dY·W
//! ```
//!
//! Runtime: `kernels/linear.rs` (compiled: direct loops for small layers, the GEMM for
//! large ones), `tensor/linalg.rs` (the dynamic engine's `matmul`, `t`), `nn::Linear`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Built, Call, Grads, Kind, Layer, ParamSet, Site, args};
use crate::graph::Form;

pub const KIND: Kind = Kind {
    name: "Linear",
    has_parameters: true,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    let args = call.args.clone();
    let (declared_in, out) = match (call.form, args.as_slice()) {
        (_, [out]) => (
            None,
            args::parse_width(out, "Linear's output width", call.errors),
        ),
        (Form::Sequential, [input, out]) => (
            args::parse_width(input, "Linear's input width", call.errors).map(|w| (w, *input)),
            args::parse_width(out, "Linear's output width", call.errors),
        ),
        (Form::Sequential, _) => {
            let found = args::count(args.len(), "argument");
            call.error(
                call.name,
                format!("`Linear` takes `(out_features)` or `(in_features, out_features)`, found {found}"),
            );
            (None, None)
        }
        (Form::Graph, _) => {
            call.error(
                call.name,
                "`Linear` takes the value and the output width: `Linear(h, 16)`",
            );
            (None, None)
        }
    };
    if let (Some((declared, token)), Some(actual)) = (declared_in, call.input)
        && declared != actual
    {
        let source = call.source.clone();
        call.error(
            token,
            format!(
                "width mismatch: expected {actual}, found {declared}; `Linear({declared}, ..)` reads \
                 the output of {source}, which has width {actual}"
            ),
        );
    }
    let in_features = call.input.or(declared_in.map(|(w, _)| w)).unwrap_or(0);
    let out_features = out.unwrap_or(0);
    let (i, o) = (in_features, out_features);
    let tensors = vec![
        call.parameter(
            "weight",
            vec![o, i],
            quote!(::nnscratch::init::linear_weight(#i, #o, rng)),
            "dW = dYᵀ·X",
        ),
        call.parameter(
            "bias",
            vec![o],
            quote!(::nnscratch::init::linear_bias(#i, #o, rng)),
            "db = Σ_rows dY",
        ),
    ];
    // As written: `Linear(16)` names only the output width.
    let written = match (call.form, args.len()) {
        (Form::Sequential, 2) => format!("Linear({i}, {o})"),
        _ => format!("Linear({o})"),
    };
    Built {
        layer: Box::new(Linear {
            in_features,
            out_features,
        }),
        width: out,
        params: Some(ParamSet {
            prefix: call.prefix.clone(),
            tensors,
            layer: format!("Linear({i}, {o})"),
            span: call.name.span(),
        }),
        shown: Some(written),
    }
}

struct Linear {
    in_features: usize,
    out_features: usize,
}

impl Layer for Linear {
    fn describe(&self) -> String {
        format!("Linear({}, {})", self.in_features, self.out_features)
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let prefix = &site.params().prefix;
        format!("{}·[{prefix}.weight]ᵀ + [{prefix}.bias]", site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, w, b) = (site.x(0), site.out(), site.param(0), site.param(1));
        quote!(kernels::linear_forward(#x.view(), #w.view(), #b.view(), #y.view_mut(), &mut ws.gemm);)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, w, b) = (site.x(0), site.dy(), site.param(0), site.param(1));
        let (prefix, dv) = (&site.params().prefix, site.dy_name());
        // dW = dYᵀ·X, db = Σ_rows dY
        grads.emit(
            quote!(kernels::linear_backward_params(#dy.view(), #x.view(), grad.#w.view_mut(), grad.#b.view_mut(), &mut ws.gemm);),
            format!(
                "d[{prefix}.weight] = {dv}ᵀ·{}    d[{prefix}.bias] = Σ_rows {dv}",
                site.x_name(0)
            ),
        );
        // dX = dY·W
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::linear_backward_input(#dy.view(), #w.view(), #dx.view_mut(), #write, &mut ws.gemm);),
                format!("{} {dv}·[{prefix}.weight]", t.lhs),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dX = dY·W".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, w, b) = (
            site.label(),
            site.x_dynamic(0),
            site.param(0),
            site.param(1),
        );
        let prefix = &site.params().prefix;
        quote!(net.linear(#label, #x, #prefix, self.#w.clone(), self.#b.clone()))
    }
}
