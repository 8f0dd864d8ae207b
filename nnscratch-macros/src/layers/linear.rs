//! `Linear`: `Y = X·Wᵀ + b` with `W: [out, in]` and `b: [out]`, as PyTorch's `nn.Linear`.
//!
//! Written `Linear(out)` (the input width inferred) or `Linear(in, out)` (checked) in the
//! sequential form, `Linear(h, out)` in the graph form; `bias = false` drops `b` (as
//! PyTorch's `bias=False`). Its gradients, by the chain rule
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
use syn::{Expr, ExprLit, Lit};

use super::{Built, Call, Grads, Kind, Layer, ParamSet, Site, args};
use crate::graph::Form;

pub const KIND: Kind = Kind {
    name: "Linear",
    has_parameters: true,
    build,
};

fn build(call: &mut Call<'_>) -> Built {
    let bias = take_bias(call);
    call.require_flat();
    let args = call.args.clone();
    let (declared_in, out) = match (call.form, args.as_slice()) {
        (_, [out]) => (
            None,
            args::parse_width(out, "Linear's output width", call.errors),
        ),
        // `Linear(in, out)`: in the sequential form, and in a graph-form declaration of a
        // shared layer (`shared = Linear(4, 16);`, applied later as `shared(x)`).
        (_, [input, out]) if call.form == Form::Sequential || call.input.is_none() => (
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
                "`Linear` takes the value and the output width, `Linear(h, 16)`; or, to declare \
                 a layer applied by name (shared weights), both widths: `shared = Linear(4, 16);`",
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
    let mut tensors = vec![call.parameter(
        "weight",
        vec![o, i],
        quote!(::nnscratch::init::linear_weight(#i, #o, rng)),
        "dW = dYᵀ·X",
    )];
    if bias {
        tensors.push(call.parameter(
            "bias",
            vec![o],
            quote!(::nnscratch::init::linear_bias(#i, #o, rng)),
            "db = Σ_rows dY",
        ));
    }
    let no_bias = if bias { "" } else { ", bias = false" };
    // As written: `Linear(16)` names only the output width.
    let written = match (call.form, args.len()) {
        (Form::Sequential, 2) => format!("Linear({i}, {o}{no_bias})"),
        _ => format!("Linear({o}{no_bias})"),
    };
    Built {
        layer: Box::new(Linear {
            in_features,
            out_features,
            bias,
        }),
        width: out,
        params: Some(ParamSet {
            prefix: call.prefix.clone(),
            tensors,
            layer: format!("Linear({i}, {o}{no_bias})"),
            span: call.name.span(),
        }),
        shown: Some(written),
        shape: None,
        state: Vec::new(),
        scratch: Vec::new(),
    }
}

/// Removes a `bias = true|false` keyword from the call's arguments (PyTorch's
/// `nn.Linear(in, out, bias=False)`) and returns its value, `true` by default; any other
/// keyword is reported.
fn take_bias(call: &mut Call<'_>) -> bool {
    let mut bias = true;
    let mut positional = Vec::new();
    for arg in call.args.clone() {
        let Expr::Assign(assign) = arg else {
            positional.push(arg);
            continue;
        };
        let key = args::tokens_text(&assign.left);
        if key != "bias" {
            call.error(
                &assign.left,
                format!(
                    "`Linear` has no argument `{key}`; its keyword argument is `bias` \
                     (`Linear(16, bias = false)`), the widths are positional"
                ),
            );
            continue;
        }
        match &*assign.right {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(value),
                ..
            }) => bias = value.value,
            other => {
                let found = args::tokens_text(other);
                let hint = match found.as_str() {
                    "False" | "True" => format!(": write Rust's `{}`", found.to_lowercase()),
                    _ => String::new(),
                };
                call.error(
                    other,
                    format!("Linear's bias must be `true` or `false`, found `{found}`{hint}"),
                );
            }
        }
    }
    call.args = positional;
    bias
}

struct Linear {
    in_features: usize,
    out_features: usize,
    bias: bool,
}

impl Layer for Linear {
    fn describe(&self) -> String {
        let no_bias = if self.bias { "" } else { ", bias = false" };
        format!(
            "Linear({}, {}{no_bias})",
            self.in_features, self.out_features
        )
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let prefix = &site.params().prefix;
        let bias = if self.bias {
            format!(" + [{prefix}.bias]")
        } else {
            String::new()
        };
        format!("{}·[{prefix}.weight]ᵀ{bias}", site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, w) = (site.x(0), site.out(), site.param(0));
        let b = if self.bias {
            let b = site.param(1);
            quote!(Some(#b.view()))
        } else {
            quote!(None)
        };
        quote!(kernels::linear_forward(#x.view(), #w.view(), #b, #y.view_mut(), &mut ws.gemm);)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, w) = (site.x(0), site.dy(), site.param(0));
        let grad_w = site.param_grad(0);
        let (prefix, dv) = (&site.params().prefix, site.dy_name());
        let (db, db_equation) = if self.bias {
            let grad_b = site.param_grad(1);
            (
                quote!(Some(#grad_b.view_mut())),
                format!("    d[{prefix}.bias] = Σ_rows {dv}"),
            )
        } else {
            (quote!(None), String::new())
        };
        // dW = dYᵀ·X, db = Σ_rows dY (added to, for a further use of shared weights)
        let (write, op) = grads.parameter_write(site);
        grads.emit(
            quote!(kernels::linear_backward_params(#dy.view(), #x.view(), #grad_w.view_mut(), #db, #write, &mut ws.gemm);),
            format!(
                "d[{prefix}.weight] {op} {dv}ᵀ·{}{}",
                site.x_name(0),
                db_equation.replace(" = ", &format!(" {op} "))
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
        let (label, x, w) = (site.label(), site.x_dynamic(0), site.param(0));
        let b = if self.bias {
            let b = site.param(1);
            quote!(Some(#b.clone()))
        } else {
            quote!(None)
        };
        let prefix = &site.params().prefix;
        if !site.first_use_of_params() {
            return quote!(net.shared_linear(#label, #x, #prefix));
        }
        quote!(net.linear(#label, #x, #prefix, #w.clone(), #b))
    }
}

/// A declared Linear (`shared = Linear(4, 16);`) applied to a value: the same layer
/// rules, its parameters shared by every application.
pub fn applied(in_features: usize, out_features: usize, bias: bool) -> Box<dyn Layer> {
    Box::new(Linear {
        in_features,
        out_features,
        bias,
    })
}
