//! `Softmax(dim = 1)` and `LogSoftmax(dim = 1)`: normalised over each row's features.
//! With `s = softmax(x)`, `∂s_i/∂x_k = s_i(δ_ik - s_k)`, so
//!
//! ```text
//! Softmax      y = s        dx = y ⊙ (dy - Σ_row(dy ⊙ y))
//! LogSoftmax   y = log s    dx = dy - e^y ⊙ Σ_row dy
//! ```
//!
//! A family: one shape rule (the width is kept) and one argument, `dim`, which must name
//! the features (`1` or `-1`; `0` would normalise over the batch). As in PyTorch for a
//! 2-D input, `dim` defaults to 1.
//!
//! Runtime: `kernels/softmax.rs` (compiled), `tensor/softmax.rs` (dynamic ops),
//! `nn::Softmax`, `nn::LogSoftmax`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const SOFTMAX: Kind = Kind {
    name: "Softmax",
    has_parameters: false,
    build: build_softmax,
};

pub const LOG_SOFTMAX: Kind = Kind {
    name: "LogSoftmax",
    has_parameters: false,
    build: build_log_softmax,
};

fn build_softmax(call: &mut Call<'_>) -> Built {
    check_dim(call);
    Built::elementwise(Normalise { log: false }, call)
}

fn build_log_softmax(call: &mut Call<'_>) -> Built {
    check_dim(call);
    Built::elementwise(Normalise { log: true }, call)
}

/// `dim` must be the features: 1 or -1 (of flat values).
fn check_dim(call: &mut Call<'_>) {
    call.require_flat();
    let [dim] = args::bind(call, &["dim"], "`dim`, the features' axis (1 or -1)")[..] else {
        unreachable!("one slot per name")
    };
    let Some(expr) = dim else { return };
    let name = call.name.to_string();
    match args::number(expr) {
        Some(d) if d == 1.0 || d == -1.0 => {}
        Some(d) if d == 0.0 || d == -2.0 => call.error(
            expr,
            format!(
                "{name} over dim {d} would normalise across the batch; model! values are \
                 [batch, features], so use dim = 1 (or -1)"
            ),
        ),
        _ => {
            let found = args::tokens_text(expr);
            call.error(
                expr,
                format!("{name}'s dim must be 1 or -1 (the features of [batch, features]), found `{found}`"),
            );
        }
    }
}

struct Normalise {
    log: bool,
}

impl Normalise {
    fn name(&self) -> &'static str {
        if self.log { "log_softmax" } else { "softmax" }
    }
}

impl Layer for Normalise {
    fn describe(&self) -> String {
        if self.log { "LogSoftmax" } else { "Softmax" }.into()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        format!("{}({})", self.name(), site.x_name(0))
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y) = (site.x(0), site.out());
        let kernel = format_ident!("{}_forward", self.name());
        quote!(kernels::#kernel(#x.view(), #y.view_mut());)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (y, dy, v, dv) = (site.out(), site.dy(), site.name(), site.dy_name());
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let kernel = format_ident!("{}_backward", self.name());
            let equation = if self.log {
                format!("{} {dv} - e^{v} ⊙ Σ_row {dv}", t.lhs)
            } else {
                format!("{} {v} ⊙ ({dv} - Σ_row({dv} ⊙ {v}))", t.lhs)
            };
            grads.emit(
                quote!(kernels::#kernel(#y.view(), #dy.view(), #dx.view_mut(), #write);),
                equation,
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        // Not element-wise: each output depends on its whole row.
        if self.log {
            vec!["dX = dY - e^Y ⊙ Σ_row dY".into()]
        } else {
            vec!["dX = Y ⊙ (dY - Σ_row(dY ⊙ Y))".into()]
        }
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x) = (site.label(), site.x_dynamic(0));
        let method = format_ident!("{}", self.name());
        quote!(net.#method(#label, #x))
    }
}
