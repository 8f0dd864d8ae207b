//! The losses that end a model: `MSELoss`, `CrossEntropyLoss` (softmax folded in,
//! integer class targets) and `NLLLoss` (after `LogSoftmax`), with PyTorch's mean
//! reduction.
//!
//! ```text
//! MSELoss            loss = mean((y - t)²)                  dy = 2(y - t)/n, n = batch·width
//! CrossEntropyLoss   loss = -mean_rows(log softmax(z)[c])   dz = (softmax(z) - onehot(c))/batch
//! NLLLoss            loss = -mean_rows(y[c])                dy = -onehot(c)/batch
//! ```
//!
//! Runtime: `kernels/loss.rs` (compiled), `tensor/loss.rs` (dynamic ops).

use proc_macro2::TokenStream;
use quote::quote;

/// A loss kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    Mse,
    CrossEntropy,
    Nll,
}

impl LossKind {
    /// Every loss, in the order messages list them.
    pub const ALL: [LossKind; 3] = [LossKind::Mse, LossKind::CrossEntropy, LossKind::Nll];

    /// The name a model writes, as in PyTorch.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "MSELoss",
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

    /// What is wrong with feeding the loss an output of `width` (produced by `source`),
    /// if anything.
    pub fn check_output_width(self, width: Option<usize>, source: &str) -> Option<String> {
        match self {
            LossKind::CrossEntropy if width == Some(1) => Some(format!(
                "CrossEntropyLoss needs at least 2 classes, but the model's output has width 1 (from {source}); \
                 widen the last Linear to the number of classes, or use MSELoss for a single output"
            )),
            LossKind::Nll if width == Some(1) => Some(format!(
                "NLLLoss needs at least 2 classes, but the model's output has width 1 (from {source}); \
                 widen the last Linear to the number of classes"
            )),
            _ => None,
        }
    }

    /// The runtime's name for the loss: `::nnscratch::compiled::LossKind::MSELoss`.
    pub fn runtime_kind(self) -> TokenStream {
        match self {
            LossKind::Mse => quote!(::nnscratch::compiled::LossKind::MSELoss),
            LossKind::CrossEntropy => quote!(::nnscratch::compiled::LossKind::CrossEntropyLoss),
            LossKind::Nll => quote!(::nnscratch::compiled::LossKind::NLLLoss),
        }
    }

    /// The type of the target a step takes.
    pub fn target_type(self) -> TokenStream {
        match self {
            LossKind::Mse => quote!(::nnscratch::ndarray::ArrayView2<'_, T>),
            LossKind::CrossEntropy | LossKind::Nll => quote!(&[usize]),
        }
    }

    /// The run-time check of a target against the batch and the output width.
    pub fn target_check(self, name: &str, output_width: usize) -> TokenStream {
        match self {
            LossKind::Mse => {
                quote!(::nnscratch::compiled::check_values_target(#name, x.nrows(), #output_width, &target)?;)
            }
            LossKind::CrossEntropy | LossKind::Nll => {
                quote!(::nnscratch::compiled::check_classes_target(#name, x.nrows(), #output_width, target)?;)
            }
        }
    }

    /// The `compiled::Target` variant this loss takes, as a pattern binding `target`.
    pub fn target_variant(self) -> TokenStream {
        match self {
            LossKind::Mse => quote!(::nnscratch::compiled::Target::Values(target)),
            LossKind::CrossEntropy | LossKind::Nll => {
                quote!(::nnscratch::compiled::Target::Classes(target))
            }
        }
    }

    /// What the message of a wrong kind of target expects.
    pub fn expected_target(self) -> &'static str {
        match self {
            LossKind::Mse => "Target::Values for a model trained with MSELoss",
            LossKind::CrossEntropy => "Target::Classes for a model trained with CrossEntropyLoss",
            LossKind::Nll => "Target::Classes for a model trained with NLLLoss",
        }
    }

    /// The loss of `output` against `target`.
    pub fn forward(self, output: &TokenStream) -> TokenStream {
        match self {
            LossKind::Mse => quote!(::nnscratch::kernels::mse_loss(#output.view(), target)),
            LossKind::CrossEntropy => {
                quote!(::nnscratch::kernels::cross_entropy(#output.view(), target))
            }
            LossKind::Nll => quote!(::nnscratch::kernels::nll_loss(#output.view(), target)),
        }
    }

    /// The loss, writing its gradient with respect to `output` into `d_output`.
    pub fn backward(self, output: &TokenStream, d_output: &TokenStream) -> TokenStream {
        match self {
            LossKind::Mse => {
                quote!(::nnscratch::kernels::mse_loss_backward(#output.view(), target, #d_output.view_mut()))
            }
            LossKind::CrossEntropy => {
                quote!(::nnscratch::kernels::cross_entropy_backward(#output.view(), target, #d_output.view_mut()))
            }
            LossKind::Nll => {
                quote!(::nnscratch::kernels::nll_loss_backward(#output.view(), target, #d_output.view_mut()))
            }
        }
    }

    /// The loss's equation and the gradient it seeds backward with, for the output
    /// value `out` of width `width`.
    pub fn equations(self, out: &str, width: usize) -> (String, String) {
        match self {
            LossKind::Mse => (
                format!("loss = mean(({out} - target)²)    MSELoss"),
                format!("d_{out} = 2({out} - target)/n    n = batch·{width}"),
            ),
            LossKind::CrossEntropy => (
                format!("loss = -mean_rows(log softmax({out})[class])    CrossEntropyLoss"),
                format!("d_{out} = (softmax({out}) - onehot(class))/batch"),
            ),
            LossKind::Nll => (
                format!("loss = -mean_rows({out}[class])    NLLLoss"),
                format!("d_{out} = -onehot(class)/batch"),
            ),
        }
    }

    /// The partial drawn on the edge into the loss.
    pub fn partial(self) -> &'static str {
        match self {
            LossKind::Mse => "dY = 2(Y - T)/n",
            LossKind::CrossEntropy => "dZ = (softmax(Z) - onehot(T))/N",
            LossKind::Nll => "dY = -onehot(T)/N",
        }
    }
}
