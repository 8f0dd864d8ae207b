//! The losses that end a model, with PyTorch's names, arguments and reductions.
//!
//! ```text
//! MSELoss            loss = mean((y - t)²)                  dy = 2(y - t)/n, n = batch·width
//! L1Loss             loss = mean(|y - t|)                   dy = sign(y - t)/n
//! SmoothL1Loss(β)    loss = mean(smooth_l1_β(y - t))        dy = clamp((y - t)/β, ±1)/n
//! HuberLoss(δ)       loss = mean(huber_δ(y - t))            dy = clamp(y - t, ±δ)/n
//! BCEWithLogitsLoss  loss = mean(bce(σ(y), t))              dy = (σ(y) - t)/n
//! CrossEntropyLoss   loss = -mean_rows(log softmax(z)[c])   dz = (softmax(z) - onehot(c))/batch
//! NLLLoss            loss = -mean_rows(y[c])                dy = -onehot(c)/batch
//! ```
//!
//! Every loss takes `reduction = "mean"` (the default) or `"sum"` (no division);
//! `SmoothL1Loss` takes `beta` (default 1, `>= 0`) and `HuberLoss` `delta` (default 1,
//! `> 0`), all as keywords, as in PyTorch. The first five take value targets of the
//! output's shape, the last two class indices.
//!
//! Runtime: `kernels/loss.rs` (compiled), `tensor/loss.rs` (dynamic ops).

use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, quote};
use syn::{Expr, ExprLit, Lit};

use super::args;
use crate::graph::{Errors, suggestion};

/// A loss kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    Mse,
    L1,
    SmoothL1,
    Huber,
    BceWithLogits,
    CrossEntropy,
    Nll,
}

/// A loss with its arguments.
#[derive(Debug, Clone, Copy)]
pub struct Loss {
    pub kind: LossKind,
    /// `reduction = "sum"` rather than the mean.
    pub sum: bool,
    /// SmoothL1Loss's `beta` or HuberLoss's `delta`.
    pub beta: f64,
}

impl LossKind {
    /// Every loss, in the order messages list them.
    pub const ALL: [LossKind; 7] = [
        LossKind::Mse,
        LossKind::L1,
        LossKind::SmoothL1,
        LossKind::Huber,
        LossKind::BceWithLogits,
        LossKind::CrossEntropy,
        LossKind::Nll,
    ];

    /// The name a model writes, as in PyTorch.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "MSELoss",
            LossKind::L1 => "L1Loss",
            LossKind::SmoothL1 => "SmoothL1Loss",
            LossKind::Huber => "HuberLoss",
            LossKind::BceWithLogits => "BCEWithLogitsLoss",
            LossKind::CrossEntropy => "CrossEntropyLoss",
            LossKind::Nll => "NLLLoss",
        }
    }

    /// The loss called `name`.
    pub fn find(name: &str) -> Option<LossKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Every loss name, for "did you mean".
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|kind| kind.name()).collect()
    }

    /// Whether the targets are class indices (else values of the output's shape).
    fn takes_classes(self) -> bool {
        matches!(self, LossKind::CrossEntropy | LossKind::Nll)
    }

    /// The keyword arguments it accepts besides `reduction`.
    fn parameter(self) -> Option<&'static str> {
        match self {
            LossKind::SmoothL1 => Some("beta"),
            LossKind::Huber => Some("delta"),
            _ => None,
        }
    }

    /// `Loss` with PyTorch's defaults, then the keyword arguments `options` (the
    /// arguments after the output, in the graph form) applied, each mistake reported on
    /// its token.
    pub fn with_options(self, options: &[&Expr], errors: &mut Errors) -> Loss {
        let mut loss = Loss {
            kind: self,
            sum: false,
            beta: 1.0,
        };
        let name = self.name();
        let mut known = vec!["reduction"];
        known.extend(self.parameter());
        for &option in options {
            let Expr::Assign(assign) = option else {
                let example = match self.parameter() {
                    Some(p) => format!("`{name}({p} = 0.5)`"),
                    None => format!("`{name}(reduction = \"sum\")`"),
                };
                errors.at(
                    option,
                    format!("{name}'s arguments are keywords, as in PyTorch: {example}"),
                );
                continue;
            };
            let key = args::tokens_text(&assign.left);
            let value = &*assign.right;
            match key.as_str() {
                "reduction" => match value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) if s.value() == "mean" => loss.sum = false,
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) if s.value() == "sum" => loss.sum = true,
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) if s.value() == "none" => errors.at(
                        value,
                        "reduction = \"none\" gives one loss per element, but a model! loss must be \
                         one number to differentiate: use \"mean\" or \"sum\"",
                    ),
                    other => errors.at(
                        other,
                        format!(
                            "reduction must be \"mean\" or \"sum\", as in PyTorch; found `{}`",
                            args::tokens_text(other)
                        ),
                    ),
                },
                parameter if Some(parameter) == self.parameter() => {
                    let minimum = if self == LossKind::Huber {
                        "> 0"
                    } else {
                        ">= 0"
                    };
                    match args::number(value) {
                        Some(v) if v > 0.0 || (v == 0.0 && self == LossKind::SmoothL1) => {
                            loss.beta = v;
                        }
                        Some(v) => errors.at(
                            value,
                            format!("{name}'s {parameter} must be {minimum}, found {v}"),
                        ),
                        None => errors.at(
                            value,
                            format!(
                                "{name}'s {parameter} must be a number literal {minimum}, found `{}`",
                                args::tokens_text(value)
                            ),
                        ),
                    }
                }
                other => {
                    let list = known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let hint = match suggestion(other, &known) {
                        Some(close) => format!("did you mean `{close}`? (its arguments: {list})"),
                        None => format!("its arguments are {list}"),
                    };
                    errors.at(&assign.left, format!("`{name}` has no argument `{other}`: {hint}"));
                }
            }
        }
        loss
    }
}

impl Loss {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// How the loss reads: `HuberLoss(delta = 0.5, reduction = "sum")`, `MSELoss`.
    pub fn describe(&self) -> String {
        let mut args = Vec::new();
        if let Some(p) = self.kind.parameter() {
            args.push(format!("{p} = {}", self.beta));
        }
        if self.sum {
            args.push("reduction = \"sum\"".to_string());
        }
        if args.is_empty() {
            self.name().to_string()
        } else {
            format!("{}({})", self.name(), args.join(", "))
        }
    }

    /// What is wrong with feeding the loss an output of `width` (produced by `source`),
    /// if anything.
    pub fn check_output_width(&self, width: Option<usize>, source: &str) -> Option<String> {
        match self.kind {
            LossKind::CrossEntropy if width == Some(1) => Some(format!(
                "CrossEntropyLoss needs at least 2 classes, but the model's output has width 1 (from {source}); \
                 widen the last Linear to the number of classes, or use BCEWithLogitsLoss for one yes/no output"
            )),
            LossKind::Nll if width == Some(1) => Some(format!(
                "NLLLoss needs at least 2 classes, but the model's output has width 1 (from {source}); \
                 widen the last Linear to the number of classes"
            )),
            _ => None,
        }
    }

    fn reduction(&self) -> TokenStream {
        if self.sum {
            quote!(::nnscratch::Reduction::Sum)
        } else {
            quote!(::nnscratch::Reduction::Mean)
        }
    }

    /// The runtime's `ValueLoss` for a value-target loss.
    fn value_loss(&self) -> Option<TokenStream> {
        let beta = Literal::f64_unsuffixed(self.beta);
        Some(match self.kind {
            LossKind::Mse => quote!(::nnscratch::kernels::ValueLoss::Mse),
            LossKind::L1 => quote!(::nnscratch::kernels::ValueLoss::L1),
            LossKind::SmoothL1 => quote!(::nnscratch::kernels::ValueLoss::SmoothL1 { beta: #beta }),
            LossKind::Huber => quote!(::nnscratch::kernels::ValueLoss::Huber { delta: #beta }),
            LossKind::BceWithLogits => quote!(::nnscratch::kernels::ValueLoss::BceWithLogits),
            LossKind::CrossEntropy | LossKind::Nll => return None,
        })
    }

    /// The runtime's name for the loss kind: `::nnscratch::compiled::LossKind::MSELoss`.
    pub fn runtime_kind(&self) -> TokenStream {
        let variant = syn::Ident::new(self.name(), proc_macro2::Span::call_site());
        quote!(::nnscratch::compiled::LossKind::#variant)
    }

    /// The runtime's `Loss`, arguments included (for the dynamic twin).
    pub fn runtime_loss(&self) -> TokenStream {
        let (kind, reduction) = (self.runtime_kind(), self.reduction());
        let beta = Literal::f64_unsuffixed(self.beta);
        quote!(::nnscratch::compiled::Loss::new(#kind).reduction(#reduction).beta(#beta))
    }

    /// The type of the target a step takes.
    pub fn target_type(&self) -> TokenStream {
        if self.kind.takes_classes() {
            quote!(&[usize])
        } else {
            quote!(::nnscratch::ndarray::ArrayView2<'_, T>)
        }
    }

    /// The run-time check of a target against the batch and the output width.
    pub fn target_check(&self, name: &str, output_width: usize) -> TokenStream {
        let loss = self.name();
        if self.kind.takes_classes() {
            quote!(::nnscratch::compiled::check_classes_target(#name, #loss, x.nrows(), #output_width, target)?;)
        } else {
            quote!(::nnscratch::compiled::check_values_target(#name, #loss, x.nrows(), #output_width, &target)?;)
        }
    }

    /// The `compiled::Target` variant this loss takes, as a pattern binding `target`.
    pub fn target_variant(&self) -> TokenStream {
        if self.kind.takes_classes() {
            quote!(::nnscratch::compiled::Target::Classes(target))
        } else {
            quote!(::nnscratch::compiled::Target::Values(target))
        }
    }

    /// What the message of a wrong kind of target expects.
    pub fn expected_target(&self) -> String {
        let variant = if self.kind.takes_classes() {
            "Classes"
        } else {
            "Values"
        };
        format!("Target::{variant} for a model trained with {}", self.name())
    }

    /// The loss of `output` against `target`.
    pub fn forward(&self, output: &TokenStream) -> TokenStream {
        let reduction = self.reduction();
        match self.kind {
            LossKind::CrossEntropy => {
                quote!(::nnscratch::kernels::cross_entropy(#output.view(), target, #reduction))
            }
            LossKind::Nll => {
                quote!(::nnscratch::kernels::nll_loss(#output.view(), target, #reduction))
            }
            _ => {
                let loss = self.value_loss().into_token_stream();
                quote!(::nnscratch::kernels::value_loss(#loss, #reduction, #output.view(), target))
            }
        }
    }

    /// The loss, writing its gradient with respect to `output` into `d_output`.
    pub fn backward(&self, output: &TokenStream, d_output: &TokenStream) -> TokenStream {
        let reduction = self.reduction();
        match self.kind {
            LossKind::CrossEntropy => {
                quote!(::nnscratch::kernels::cross_entropy_backward(#output.view(), target, #reduction, #d_output.view_mut()))
            }
            LossKind::Nll => {
                quote!(::nnscratch::kernels::nll_loss_backward(#output.view(), target, #reduction, #d_output.view_mut()))
            }
            _ => {
                let loss = self.value_loss().into_token_stream();
                quote!(::nnscratch::kernels::value_loss_backward(#loss, #reduction, #output.view(), target, #d_output.view_mut()))
            }
        }
    }

    /// The loss's equation and the gradient it seeds backward with, for the output
    /// value `out` of width `width`.
    pub fn equations(&self, out: &str, width: usize) -> (String, String) {
        let (beta, described) = (self.beta, self.describe());
        let (reduce, per) = if self.sum {
            ("Σ", String::new())
        } else if self.kind.takes_classes() {
            ("mean_rows", "/batch".to_string())
        } else {
            ("mean", format!("/n    n = batch·{width}"))
        };
        let (loss, seed) = match self.kind {
            LossKind::Mse => (
                format!("{reduce}(({out} - target)²)"),
                format!("2({out} - target){per}"),
            ),
            LossKind::L1 => (
                format!("{reduce}(|{out} - target|)"),
                format!("sign({out} - target){per}"),
            ),
            LossKind::SmoothL1 => (
                format!(
                    "{reduce}(smooth_l1({out} - target))    smooth_l1(d) = d²/(2·{beta}) if |d| < {beta}, else |d| - {beta}/2"
                ),
                format!("clamp(({out} - target)/{beta}, -1, 1){per}"),
            ),
            LossKind::Huber => (
                format!(
                    "{reduce}(huber({out} - target))    huber(d) = d²/2 if |d| < {beta}, else {beta}·(|d| - {beta}/2)"
                ),
                format!("clamp({out} - target, -{beta}, {beta}){per}"),
            ),
            LossKind::BceWithLogits => (
                format!("{reduce}(max({out}, 0) - {out}·target + ln(1 + e^-|{out}|))"),
                format!("(σ({out}) - target){per}"),
            ),
            LossKind::CrossEntropy => (
                format!("-{reduce}(log softmax({out})[class])"),
                format!("(softmax({out}) - onehot(class)){per}"),
            ),
            LossKind::Nll => (
                format!("-{reduce}({out}[class])"),
                format!("-onehot(class){per}"),
            ),
        };
        (
            format!("loss = {loss}    {described}"),
            format!("d_{out} = {seed}"),
        )
    }

    /// The partial drawn on the edge into the loss.
    pub fn partial(&self) -> String {
        let (n, big_n) = if self.sum { ("", "") } else { ("/n", "/N") };
        match self.kind {
            LossKind::Mse => format!("dY = 2(Y - T){n}"),
            LossKind::L1 => format!("dY = sign(Y - T){n}"),
            LossKind::SmoothL1 => format!("dY = clamp((Y - T)/β, ±1){n}"),
            LossKind::Huber => format!("dY = clamp(Y - T, ±δ){n}"),
            LossKind::BceWithLogits => format!("dY = (σ(Y) - T){n}"),
            LossKind::CrossEntropy => format!("dZ = (softmax(Z) - onehot(T)){big_n}"),
            LossKind::Nll => format!("dY = -onehot(T){big_n}"),
        }
    }
}
