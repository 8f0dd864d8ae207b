//! PyTorch-style layers on the dynamic engine: [`Module`], [`Linear`](struct@Linear), the activations
//! and [`Sequential`].
//!
//! A network is written as a list of layer descriptions, the way `nn.Sequential` reads,
//! and initialised from a seedable random number generator:
//!
//! ```
//! use nnscratch::nn::{Linear, Module, ReLU, Sequential};
//! use nnscratch::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let model = Sequential::<f32>::new(
//!     [Linear(10, 30), ReLU, Linear(30, 30), ReLU, Linear(30, 1)],
//!     &mut rng,
//! )?;
//! let y = model.forward(&Tensor::arange(10))?;
//! y.backward()?;
//! let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]);
//! assert!(model.named_parameters()[0].1.grad().is_some());
//! # Ok::<(), nnscratch::Error>(())
//! ```

mod batch_norm;
mod conv;
mod dropout;
mod graph_module;
mod layer_norm;
mod linear;
mod sequential;
mod softplus;

pub use LayerSpec::{
    ELU, Flatten, GELU, Identity, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh,
};
pub use batch_norm::{BATCH_NORM_MOMENTUM, BatchNorm1d, NORM_EPS};
pub use conv::{Conv1d, Conv2d, ConvOptions, Pool2d};
pub use dropout::{DROPOUT_P, Dropout};
pub use graph_module::{GraphModule, GraphOp};
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use sequential::{Layer, LayerSpec, Sequential};
pub use softplus::{SOFTPLUS_BETA, SOFTPLUS_THRESHOLD, Softplus};

use crate::optim::{Param, Parameters};
use crate::{Float, Result, Tensor};

/// PyTorch's default negative slope of `LeakyReLU`.
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

/// PyTorch's default `alpha` of `ELU`.
pub const ELU_ALPHA: f64 = 1.0;

/// A layer or a network on the dynamic engine.
pub trait Module<T: Float> {
    /// Runs the layer, recording the graph for `backward()`.
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>>;

    /// Runs the layer without recording anything (PyTorch's `torch.no_grad()`), for
    /// evaluation: the parameters enter as detached values.
    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>>;

    /// The parameters with their `state_dict` names, in a fixed order.
    fn named_parameters(&self) -> Vec<(String, Tensor<T>)>;

    /// Switches training-mode behaviour on (`true`) or off: Dropout drops only in
    /// training, BatchNorm uses batch statistics (and updates its running ones) only in
    /// training. Layers without such behaviour ignore it.
    fn set_training(&mut self, _training: bool) {}

    /// Training mode, the mode every module starts in (PyTorch's `model.train()`).
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (PyTorch's `model.eval()`): Dropout is the identity and
    /// BatchNorm uses its running statistics.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// Clears the gradient of every parameter.
    fn zero_grad(&self) {
        for (_, p) in self.named_parameters() {
            p.zero_grad();
        }
    }
}

/// Describes a Linear layer for [`Sequential::new`]: `Linear(in_features, out_features)`.
///
/// (The layer itself is the type [`Linear`](struct@Linear); this function only describes one, so that a
/// network reads like PyTorch's `nn.Sequential(nn.Linear(10, 30), nn.ReLU(), ...)`.)
#[allow(non_snake_case)]
pub fn Linear(in_features: usize, out_features: usize) -> LayerSpec {
    LayerSpec::Linear {
        in_features,
        out_features,
        bias: true,
    }
}

/// Describes a Softplus layer for [`Sequential::new`]: `Softplus(beta, threshold)`
/// (PyTorch's defaults are `Softplus(1.0, 20.0)`, also [`LayerSpec::softplus`]).
///
/// (The layer itself is the type [`Softplus`](struct@Softplus).)
#[allow(non_snake_case)]
pub fn Softplus(beta: f64, threshold: f64) -> LayerSpec {
    LayerSpec::Softplus { beta, threshold }
}

/// Describes a BatchNorm1d layer for [`Sequential::new`] with PyTorch's defaults:
/// `eps = 1e-5`, `momentum = 0.1`, `affine`, `track_running_stats`.
///
/// (The layer itself is the type [`BatchNorm1d`](struct@BatchNorm1d); other arguments
/// through [`LayerSpec::BatchNorm1d`].)
#[allow(non_snake_case)]
pub fn BatchNorm1d(num_features: usize) -> LayerSpec {
    LayerSpec::BatchNorm1d {
        num_features,
        eps: NORM_EPS,
        momentum: BATCH_NORM_MOMENTUM,
        affine: true,
        track_running_stats: true,
    }
}

/// Describes a BatchNorm2d layer for [`Sequential::new`] with PyTorch's defaults: inputs
/// `[batch, num_features, H, W]`.
#[allow(non_snake_case)]
pub fn BatchNorm2d(num_features: usize) -> LayerSpec {
    LayerSpec::BatchNorm2d {
        num_features,
        eps: NORM_EPS,
        momentum: BATCH_NORM_MOMENTUM,
        affine: true,
        track_running_stats: true,
    }
}

/// Describes a LayerNorm layer for [`Sequential::new`] with PyTorch's defaults:
/// `eps = 1e-5`, `elementwise_affine`.
///
/// (The layer itself is the type [`LayerNorm`](struct@LayerNorm).)
#[allow(non_snake_case)]
pub fn LayerNorm(normalized_shape: usize) -> LayerSpec {
    LayerSpec::LayerNorm {
        normalized_shape,
        eps: NORM_EPS,
        elementwise_affine: true,
    }
}

/// Describes a Dropout layer for [`Sequential::new`]: `Dropout(p)`.
///
/// (The layer itself is the type [`Dropout`](struct@Dropout).)
#[allow(non_snake_case)]
pub fn Dropout(p: f64) -> LayerSpec {
    LayerSpec::Dropout(p)
}

/// Describes a Conv2d layer for [`Sequential::new`] with PyTorch's defaults (stride 1,
/// no padding, dilation 1, one group, bias): `Conv2d(1, 8, 3)`; other arguments with
/// [`LayerSpec::padding`], [`LayerSpec::stride`], [`LayerSpec::dilation`],
/// [`LayerSpec::groups`] (`Conv2d(1, 8, 3).padding(1)`), or through [`LayerSpec::Conv2d`].
///
/// (The layer itself is the type [`Conv2d`](struct@Conv2d).)
#[allow(non_snake_case)]
pub fn Conv2d(in_channels: usize, out_channels: usize, kernel_size: usize) -> LayerSpec {
    LayerSpec::Conv2d {
        in_channels,
        out_channels,
        kernel_size: (kernel_size, kernel_size),
        options: ConvOptions::default(),
    }
}

/// Describes a Conv1d layer for [`Sequential::new`] with PyTorch's defaults.
///
/// (The layer itself is the type [`Conv1d`](struct@Conv1d).)
#[allow(non_snake_case)]
pub fn Conv1d(in_channels: usize, out_channels: usize, kernel_size: usize) -> LayerSpec {
    LayerSpec::Conv1d {
        in_channels,
        out_channels,
        kernel_size,
        options: ConvOptions::default(),
    }
}

/// Describes a MaxPool2d layer: a `k×k` window, stride `k`, no padding.
#[allow(non_snake_case)]
pub fn MaxPool2d(kernel_size: usize) -> LayerSpec {
    LayerSpec::Pool2d(Pool2d {
        max: true,
        kernel_size: (kernel_size, kernel_size),
        stride: (kernel_size, kernel_size),
        padding: (0, 0),
    })
}

/// Describes an AvgPool2d layer: a `k×k` window, stride `k`, no padding.
#[allow(non_snake_case)]
pub fn AvgPool2d(kernel_size: usize) -> LayerSpec {
    LayerSpec::Pool2d(Pool2d {
        max: false,
        kernel_size: (kernel_size, kernel_size),
        stride: (kernel_size, kernel_size),
        padding: (0, 0),
    })
}

/// Visits a dynamic module's parameters: what lets optimizers train it.
pub(crate) fn visit_module<T: Float>(
    module: &impl Module<T>,
    visitor: &mut dyn FnMut(Param<'_, T>),
) {
    let mut params = module.named_parameters();
    params.as_mut_slice().visit_parameters(visitor);
}
