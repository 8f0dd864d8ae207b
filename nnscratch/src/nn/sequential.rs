//! `Sequential`: layers applied one after another, named as `nn.Sequential` names them.
//!
//! Layer `i` of the list owns the parameters `"{i}.weight"` and `"{i}.bias"`;
//! activations take an index but own no parameters, exactly as in a PyTorch
//! `state_dict`, so weights move between the two without renaming.

use std::fmt;

use rand::{Rng, RngExt};

use super::{
    BatchNorm1d, Conv1d, Conv2d, ConvOptions, Dropout, ELU_ALPHA, LEAKY_RELU_SLOPE, LayerNorm,
    Linear, Module, Pool2d, SOFTPLUS_BETA, SOFTPLUS_THRESHOLD, Softplus,
};
use crate::kernels::DropoutGenerator;
use crate::optim::{Buffer, Param, Parameters};
use crate::{Error, Float, Result, Tensor};

/// A layer as written in a [`Sequential`] list, before initialisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerSpec {
    /// `Linear(in_features, out_features)`; with `bias: false`, PyTorch's
    /// `nn.Linear(in, out, bias=False)` (also [`LayerSpec::without_bias`]).
    Linear {
        /// Width of the input.
        in_features: usize,
        /// Width of the output.
        out_features: usize,
        /// Whether the layer adds a bias (PyTorch's default: yes).
        bias: bool,
    },
    /// `max(x, 0)`.
    ReLU,
    /// `x` for `x > 0`, else `slope·x` (PyTorch's default slope is
    /// [`LEAKY_RELU_SLOPE`] = 0.01; see [`LayerSpec::leaky_relu`]).
    LeakyReLU(f64),
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `ln(1 + e^(beta·x))/beta`, or `x` where `beta·x > threshold` (see
    /// [`Softplus`](struct@Softplus); PyTorch's defaults with [`LayerSpec::softplus`]).
    Softplus {
        /// `beta > 0`.
        beta: f64,
        /// Where the layer becomes the identity.
        threshold: f64,
    },
    /// `x·Φ(x)`: `GELU("none")` (exact, PyTorch's default, also [`LayerSpec::gelu`]) or
    /// `GELU("tanh")` (PyTorch's `approximate="tanh"`).
    GELU(&'static str),
    /// `x·σ(x)`.
    SiLU,
    /// `x` for `x > 0`, else `alpha·(e^x - 1)` (PyTorch's default alpha is
    /// [`ELU_ALPHA`] = 1; see [`LayerSpec::elu`]).
    ELU(f64),
    /// `x`: a placeholder layer, as PyTorch's `nn.Identity`.
    Identity,
    /// `softmax` along `dim`, which must be the last axis (`-1`, or `1` for a batch
    /// `[batch, features]`), as `nn.Softmax(dim)`.
    Softmax(isize),
    /// `log softmax` along `dim` (the last axis), as `nn.LogSoftmax(dim)`; with
    /// `nll_loss` it is the cross-entropy.
    LogSoftmax(isize),
    /// Batch normalisation of `[batch, num_features]` (see
    /// [`BatchNorm1d`](struct@BatchNorm1d); PyTorch's defaults with
    /// [`BatchNorm1d(n)`](fn@super::BatchNorm1d)).
    BatchNorm1d {
        /// The width of the input.
        num_features: usize,
        /// Added to the variance.
        eps: f64,
        /// How far the running statistics move towards each batch's.
        momentum: f64,
        /// Whether there are `weight` and `bias`.
        affine: bool,
        /// Whether there are running statistics (else batch statistics always).
        track_running_stats: bool,
    },
    /// Batch normalisation of `[batch, C, H, W]` over the batch and positions, per
    /// channel (a [`BatchNorm1d`](struct@BatchNorm1d) built with
    /// [`new_2d`](BatchNorm1d::new_2d); PyTorch's defaults with
    /// [`BatchNorm2d(c)`](fn@super::BatchNorm2d)).
    BatchNorm2d {
        /// The channels of the input.
        num_features: usize,
        /// Added to the variance.
        eps: f64,
        /// How far the running statistics move towards each batch's.
        momentum: f64,
        /// Whether there are `weight` and `bias`.
        affine: bool,
        /// Whether there are running statistics.
        track_running_stats: bool,
    },
    /// Layer normalisation over the features (see [`LayerNorm`](struct@LayerNorm);
    /// PyTorch's defaults with [`LayerNorm(n)`](fn@super::LayerNorm)).
    LayerNorm {
        /// The width of the input.
        normalized_shape: usize,
        /// Added to the variance.
        eps: f64,
        /// Whether there are `weight` and `bias`.
        elementwise_affine: bool,
    },
    /// Inverted dropout with drop probability `p` in training, the identity in
    /// evaluation (see [`Dropout`](struct@Dropout)).
    Dropout(f64),
    /// A 2-D convolution (see [`Conv2d`](struct@Conv2d); [`Conv2d(in, out, k)`](fn@super::Conv2d)
    /// with PyTorch's defaults).
    Conv2d {
        /// Channels of the input.
        in_channels: usize,
        /// Channels of the output.
        out_channels: usize,
        /// `(kh, kw)`.
        kernel_size: (usize, usize),
        /// Stride, padding, dilation, groups, bias.
        options: ConvOptions<(usize, usize)>,
    },
    /// A 1-D convolution (see [`Conv1d`](struct@Conv1d)).
    Conv1d {
        /// Channels of the input.
        in_channels: usize,
        /// Channels of the output.
        out_channels: usize,
        /// The kernel's length.
        kernel_size: usize,
        /// Stride, padding, dilation, groups, bias.
        options: ConvOptions<usize>,
    },
    /// Max or average pooling (see [`Pool2d`]; [`MaxPool2d(k)`](fn@super::MaxPool2d),
    /// [`AvgPool2d(k)`](fn@super::AvgPool2d)).
    Pool2d(Pool2d),
    /// `[N, C, …] -> [N, C·…]`: every axis after the batch merged, as `nn.Flatten()`.
    Flatten,
}

impl LayerSpec {
    /// The same `Linear` without a bias: `Linear(10, 30).without_bias()` is PyTorch's
    /// `nn.Linear(10, 30, bias=False)`. Other layers are returned unchanged.
    pub fn without_bias(self) -> Self {
        match self {
            LayerSpec::Linear {
                in_features,
                out_features,
                ..
            } => LayerSpec::Linear {
                in_features,
                out_features,
                bias: false,
            },
            other => other,
        }
    }

    /// The same convolution or pooling with padding `p` on each side (each spatial axis).
    /// Other layers are returned unchanged.
    pub fn padding(self, p: usize) -> Self {
        self.with_window(|o, pool| match (o, pool) {
            (Some(o), _) => o.padding = p,
            (_, Some(pool)) => pool.padding = (p, p),
            _ => {}
        })
    }

    /// The same convolution or pooling with stride `s` (each spatial axis).
    pub fn stride(self, s: usize) -> Self {
        self.with_window(|o, pool| match (o, pool) {
            (Some(o), _) => o.stride = s,
            (_, Some(pool)) => pool.stride = (s, s),
            _ => {}
        })
    }

    /// The same convolution with dilation `d` (each spatial axis).
    pub fn dilation(self, d: usize) -> Self {
        self.with_window(|o, _| {
            if let Some(o) = o {
                o.dilation = d;
            }
        })
    }

    /// The same convolution with `g` channel groups.
    pub fn groups(self, g: usize) -> Self {
        self.with_window(|o, _| {
            if let Some(o) = o {
                o.groups = g;
            }
        })
    }

    /// Applies `f` to a convolution's options (as 1-D values, copied to both axes of a
    /// 2-D one) or to a pooling.
    fn with_window(self, f: impl Fn(Option<&mut ConvOptions<usize>>, Option<&mut Pool2d>)) -> Self {
        match self {
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                kernel_size,
                options,
            } => {
                let mut one = ConvOptions {
                    stride: options.stride.1,
                    padding: options.padding.1,
                    dilation: options.dilation.1,
                    groups: options.groups,
                    bias: options.bias,
                };
                let before = one;
                f(Some(&mut one), None);
                let pick = |new: usize, old: usize, both: (usize, usize)| {
                    if new != old { (new, new) } else { both }
                };
                LayerSpec::Conv2d {
                    in_channels,
                    out_channels,
                    kernel_size,
                    options: ConvOptions {
                        stride: pick(one.stride, before.stride, options.stride),
                        padding: pick(one.padding, before.padding, options.padding),
                        dilation: pick(one.dilation, before.dilation, options.dilation),
                        groups: one.groups,
                        bias: one.bias,
                    },
                }
            }
            LayerSpec::Conv1d {
                in_channels,
                out_channels,
                kernel_size,
                mut options,
            } => {
                f(Some(&mut options), None);
                LayerSpec::Conv1d {
                    in_channels,
                    out_channels,
                    kernel_size,
                    options,
                }
            }
            LayerSpec::Pool2d(mut pool) => {
                f(None, Some(&mut pool));
                LayerSpec::Pool2d(pool)
            }
            other => other,
        }
    }

    /// `LeakyReLU` with PyTorch's default slope 0.01.
    pub fn leaky_relu() -> Self {
        LayerSpec::LeakyReLU(LEAKY_RELU_SLOPE)
    }

    /// `GELU` exact (PyTorch's default `approximate="none"`).
    pub fn gelu() -> Self {
        LayerSpec::GELU("none")
    }

    /// `ELU` with PyTorch's default `alpha = 1`.
    pub fn elu() -> Self {
        LayerSpec::ELU(ELU_ALPHA)
    }

    /// `Softplus` with PyTorch's defaults, `beta = 1`, `threshold = 20`.
    pub fn softplus() -> Self {
        LayerSpec::Softplus {
            beta: SOFTPLUS_BETA,
            threshold: SOFTPLUS_THRESHOLD,
        }
    }
}

/// An initialised layer of a [`Sequential`].
pub enum Layer<T: Float = f32> {
    /// A fully connected layer.
    Linear(Linear<T>),
    /// `max(x, 0)`.
    ReLU,
    /// Leaky ReLU with the given negative slope.
    LeakyReLU(T),
    /// The logistic function.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softplus.
    Softplus(Softplus<T>),
    /// GELU, exact (`false`) or with the tanh approximation (`true`).
    GELU(bool),
    /// `x·σ(x)`.
    SiLU,
    /// ELU with the given alpha.
    ELU(T),
    /// `x`.
    Identity,
    /// Softmax along `dim` (checked against the input's last axis when run).
    Softmax(isize),
    /// LogSoftmax along `dim`.
    LogSoftmax(isize),
    /// Batch normalisation.
    BatchNorm1d(BatchNorm1d<T>),
    /// Layer normalisation.
    LayerNorm(LayerNorm<T>),
    /// Dropout.
    Dropout(Dropout),
    /// A 2-D convolution.
    Conv2d(Conv2d<T>),
    /// A 1-D convolution.
    Conv1d(Conv1d<T>),
    /// Max or average pooling.
    Pool2d(Pool2d),
    /// Every axis after the batch merged.
    Flatten,
}

impl<T: Float> Layer<T> {
    fn run(&self, x: &Tensor<T>, record: bool) -> Result<Tensor<T>> {
        Ok(match self {
            Layer::Linear(linear) if record => linear.forward(x)?,
            Layer::Linear(linear) => linear.forward_no_grad(x)?,
            Layer::ReLU => x.relu(),
            Layer::LeakyReLU(slope) => x.leaky_relu(*slope),
            Layer::Sigmoid => x.sigmoid(),
            Layer::Tanh => x.tanh(),
            Layer::Softplus(layer) => layer.forward(x)?,
            Layer::GELU(tanh) => x.gelu(*tanh),
            Layer::SiLU => x.silu(),
            Layer::ELU(alpha) => x.elu(*alpha),
            Layer::Identity => x.clone(),
            Layer::Softmax(dim) => {
                check_last_axis("Softmax", *dim, x)?;
                x.softmax()
            }
            Layer::LogSoftmax(dim) => {
                check_last_axis("LogSoftmax", *dim, x)?;
                x.log_softmax()
            }
            Layer::BatchNorm1d(layer) if record => layer.forward(x)?,
            Layer::BatchNorm1d(layer) => layer.forward_no_grad(x)?,
            Layer::LayerNorm(layer) if record => layer.forward(x)?,
            Layer::LayerNorm(layer) => layer.forward_no_grad(x)?,
            Layer::Dropout(layer) => Module::<T>::forward(layer, x)?,
            Layer::Conv2d(layer) if record => layer.forward(x)?,
            Layer::Conv2d(layer) => layer.forward_no_grad(x)?,
            Layer::Conv1d(layer) if record => layer.forward(x)?,
            Layer::Conv1d(layer) => layer.forward_no_grad(x)?,
            Layer::Pool2d(layer) => Module::<T>::forward(layer, x)?,
            Layer::Flatten => x.flatten(1, -1)?,
        })
    }

    /// The width a layer needs its input to have, if it has one.
    pub(crate) fn input_width(&self) -> Option<usize> {
        match self {
            Layer::Linear(linear) => Some(linear.in_features()),
            Layer::BatchNorm1d(layer) if !layer.is_2d() => Some(layer.num_features()),
            Layer::LayerNorm(layer) => Some(layer.normalized_shape()),
            _ => None,
        }
    }

    /// The shape per sample this layer makes of one of shape `input` (what
    /// [`GraphModule::module`](super::GraphModule::module) records).
    pub(crate) fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let bad = |expected: &str| Error::BadShape {
            op: self.to_string(),
            expected: expected.to_string(),
            found: input.to_vec(),
        };
        let out = crate::tensor::output_size;
        Ok(match self {
            Layer::Linear(linear) => vec![linear.out_features()],
            Layer::Flatten => vec![input.iter().product()],
            Layer::Conv2d(conv) => {
                let [_, h, w] = input else {
                    return Err(bad("[C, H, W] per sample"));
                };
                let (k, o) = (conv.kernel_size, &conv.options);
                let sizes = (
                    out(*h, k.0, o.stride.0, o.padding.0, o.dilation.0),
                    out(*w, k.1, o.stride.1, o.padding.1, o.dilation.1),
                );
                match sizes {
                    (Some(ho), Some(wo)) => vec![conv.out_channels(), ho, wo],
                    _ => return Err(bad("a kernel that fits the padded input")),
                }
            }
            Layer::Conv1d(conv) => {
                let [_, l] = input else {
                    return Err(bad("[C, L] per sample"));
                };
                let o = &conv.options;
                match out(*l, conv.kernel_size, o.stride, o.padding, o.dilation) {
                    Some(lo) => vec![conv.out_channels, lo],
                    None => return Err(bad("a kernel that fits the padded input")),
                }
            }
            Layer::Pool2d(pool) => {
                let [c, h, w] = input else {
                    return Err(bad("[C, H, W] per sample"));
                };
                let (k, s, p) = (pool.kernel_size, pool.stride, pool.padding);
                match (out(*h, k.0, s.0, p.0, 1), out(*w, k.1, s.1, p.1, 1)) {
                    (Some(ho), Some(wo)) => vec![*c, ho, wo],
                    _ => return Err(bad("a window that fits the padded input")),
                }
            }
            _ => input.to_vec(),
        })
    }

    /// Visits the layer's buffers, named `{prefix}running_mean`, ….
    pub(crate) fn visit_buffers(&mut self, prefix: &str, visitor: &mut dyn FnMut(Buffer<'_, T>)) {
        if let Layer::BatchNorm1d(layer) = self {
            layer.visit_buffers(prefix, visitor);
        }
    }

    /// Reseeds a dropout layer's generator (the `index`-th dropout of its model).
    pub(crate) fn reseed(&mut self, seed: u64, index: u64) {
        if let Layer::Dropout(layer) = self {
            layer.set_generator(DropoutGenerator::for_layer(seed, index));
        }
    }

    /// Puts a dropout layer's generator in or out of fixed-mask mode.
    pub(crate) fn fix_mask(&mut self, fixed: bool) {
        if let Layer::Dropout(layer) = self {
            let mut generator = layer.generator();
            generator.fix_mask(fixed);
            layer.set_generator(generator);
        }
    }
}

impl<T: Float> Module<T> for Layer<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, true)
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(&x.detach(), false)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        match self {
            Layer::Linear(linear) => linear.named_parameters(),
            Layer::BatchNorm1d(layer) => layer.named_parameters(),
            Layer::LayerNorm(layer) => layer.named_parameters(),
            Layer::Conv2d(layer) => layer.named_parameters(),
            Layer::Conv1d(layer) => layer.named_parameters(),
            _ => Vec::new(),
        }
    }

    fn set_training(&mut self, training: bool) {
        match self {
            Layer::BatchNorm1d(layer) => Module::<T>::set_training(layer, training),
            Layer::Dropout(layer) => Module::<T>::set_training(layer, training),
            _ => {}
        }
    }
}

/// The activations are modules on their own, as in PyTorch: `ReLU.forward(&x)` is
/// `nn.ReLU()(x)`. A `Linear` description has no weights yet and is an `Err` here:
/// build it with [`Linear::new`](struct@Linear) (or in a [`Sequential`]).
///
/// ```
/// use nnscratch::nn::{LeakyReLU, Module, ReLU, Tanh};
/// use nnscratch::Tensor;
///
/// let x = Tensor::from([-2.0, 0.5]).requires_grad_();
/// let y = ReLU.forward(&x)?;
/// assert_eq!(y.to_array(), ndarray::arr1(&[0.0, 0.5]).into_dyn());
/// assert_eq!(LeakyReLU(0.1).forward(&x)?.to_array()[0], -0.2);
/// assert!(Tanh.forward(&x)?.grad_fn().is_some());
/// # Ok::<(), nnscratch::Error>(())
/// ```
impl<T: Float> Module<T> for LayerSpec {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.layer::<T>()?.forward(x)
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.layer::<T>()?.forward_no_grad(x)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        Vec::new()
    }
}

impl LayerSpec {
    /// The layer this description denotes, for any but `Linear` (whose weights need a
    /// random number generator).
    fn layer<T: Float>(&self) -> Result<Layer<T>> {
        Ok(match *self {
            LayerSpec::Linear {
                in_features,
                out_features,
                ..
            } => {
                return Err(Error::InvalidArgument {
                    what: format!("Linear({in_features}, {out_features}).forward"),
                    expected: "a layer with weights: Linear::new(in, out, &mut rng), or a \
                               Sequential"
                        .into(),
                    found: "a description of a Linear layer, which has no weights yet".into(),
                });
            }
            LayerSpec::ReLU => Layer::ReLU,
            LayerSpec::LeakyReLU(slope) => {
                if !slope.is_finite() {
                    return Err(Error::InvalidArgument {
                        what: "LeakyReLU".into(),
                        expected: "a finite negative slope".into(),
                        found: slope.to_string(),
                    });
                }
                Layer::LeakyReLU(T::of(slope))
            }
            LayerSpec::Sigmoid => Layer::Sigmoid,
            LayerSpec::Tanh => Layer::Tanh,
            LayerSpec::Softplus { beta, threshold } => {
                Layer::Softplus(Softplus::new(beta, threshold)?)
            }
            LayerSpec::GELU(approximate) => match approximate {
                "none" => Layer::GELU(false),
                "tanh" => Layer::GELU(true),
                other => {
                    return Err(Error::InvalidArgument {
                        what: "GELU".into(),
                        expected: "approximate = \"none\" or \"tanh\", as PyTorch".into(),
                        found: format!("{other:?}"),
                    });
                }
            },
            LayerSpec::SiLU => Layer::SiLU,
            LayerSpec::ELU(alpha) => {
                if !alpha.is_finite() {
                    return Err(Error::InvalidArgument {
                        what: "ELU".into(),
                        expected: "a finite alpha (PyTorch's default is 1)".into(),
                        found: alpha.to_string(),
                    });
                }
                Layer::ELU(T::of(alpha))
            }
            LayerSpec::Identity => Layer::Identity,
            LayerSpec::Softmax(dim) => Layer::Softmax(dim),
            LayerSpec::LogSoftmax(dim) => Layer::LogSoftmax(dim),
            LayerSpec::BatchNorm1d {
                num_features,
                eps,
                momentum,
                affine,
                track_running_stats,
            } => Layer::BatchNorm1d(BatchNorm1d::with_options(
                num_features,
                eps,
                momentum,
                affine,
                track_running_stats,
            )?),
            LayerSpec::BatchNorm2d {
                num_features,
                eps,
                momentum,
                affine,
                track_running_stats,
            } => Layer::BatchNorm1d(
                BatchNorm1d::with_options(
                    num_features,
                    eps,
                    momentum,
                    affine,
                    track_running_stats,
                )?
                .for_images(),
            ),
            LayerSpec::LayerNorm {
                normalized_shape,
                eps,
                elementwise_affine,
            } => Layer::LayerNorm(LayerNorm::with_options(
                normalized_shape,
                eps,
                elementwise_affine,
            )?),
            // Seeded for real by the Sequential that holds it (see `Sequential::new`).
            LayerSpec::Dropout(p) => Layer::Dropout(Dropout::new(p, 0)?),
            LayerSpec::Conv2d {
                in_channels,
                out_channels,
                ..
            }
            | LayerSpec::Conv1d {
                in_channels,
                out_channels,
                ..
            } => {
                return Err(Error::InvalidArgument {
                    what: format!("Conv({in_channels}, {out_channels}).forward"),
                    expected: "a layer with weights: Conv2d::new(..., &mut rng), or a Sequential"
                        .into(),
                    found: "a description of a convolution, which has no weights yet".into(),
                });
            }
            LayerSpec::Pool2d(pool) => Layer::Pool2d(pool),
            LayerSpec::Flatten => Layer::Flatten,
        })
    }
}

impl<T: Float> fmt::Display for Layer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Linear(linear) => write!(f, "{linear}"),
            Layer::ReLU => write!(f, "ReLU()"),
            Layer::LeakyReLU(slope) => write!(f, "LeakyReLU(negative_slope={slope})"),
            Layer::Sigmoid => write!(f, "Sigmoid()"),
            Layer::Tanh => write!(f, "Tanh()"),
            Layer::Softplus(layer) => write!(f, "{layer}"),
            Layer::GELU(tanh) => {
                write!(
                    f,
                    "GELU(approximate='{}')",
                    if *tanh { "tanh" } else { "none" }
                )
            }
            Layer::SiLU => write!(f, "SiLU()"),
            Layer::ELU(alpha) => write!(f, "ELU(alpha={:?})", alpha.as_f64()),
            Layer::Identity => write!(f, "Identity()"),
            Layer::Softmax(dim) => write!(f, "Softmax(dim={dim})"),
            Layer::LogSoftmax(dim) => write!(f, "LogSoftmax(dim={dim})"),
            Layer::BatchNorm1d(layer) => write!(f, "{layer}"),
            Layer::LayerNorm(layer) => write!(f, "{layer}"),
            Layer::Dropout(layer) => write!(f, "{layer}"),
            Layer::Conv2d(layer) => write!(f, "{layer}"),
            Layer::Conv1d(layer) => write!(f, "{layer}"),
            Layer::Pool2d(layer) => write!(f, "{layer}"),
            Layer::Flatten => write!(f, "Flatten(start_dim=1, end_dim=-1)"),
        }
    }
}

/// Softmax and LogSoftmax here normalise over the last axis only (the features):
/// `dim` must name it, as `-1` or its index.
fn check_last_axis<T: Float>(layer: &str, dim: isize, x: &Tensor<T>) -> Result<()> {
    let ndim = x.ndim() as isize;
    if dim == -1 || (ndim > 0 && dim == ndim - 1) {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        what: format!("{layer}(dim={dim})"),
        expected: format!(
            "dim = -1 or {}, the last axis of the input (the features)",
            ndim - 1
        ),
        found: format!("an input of shape {:?}", x.shape()),
    })
}

/// Layers applied in order; the dynamic twin of `nn.Sequential`.
pub struct Sequential<T: Float = f32> {
    layers: Vec<Layer<T>>,
}

impl<T: Float> Sequential<T> {
    /// Builds and initialises the layers (PyTorch's `nn.Linear` initialisation), checking
    /// that each Linear's input width equals the width of the layer before it.
    pub fn new<R: Rng + ?Sized>(
        specs: impl IntoIterator<Item = LayerSpec>,
        rng: &mut R,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut width: Option<(usize, usize)> = None; // (width, index of the Linear that set it)
        for (index, spec) in specs.into_iter().enumerate() {
            let layer = match spec {
                LayerSpec::Linear {
                    in_features,
                    out_features,
                    bias,
                } => {
                    if let Some((previous, at)) = width
                        && previous != in_features
                    {
                        return Err(Error::InvalidArgument {
                            what: format!(
                                "Sequential layer {index}: Linear({in_features}, {out_features})"
                            ),
                            expected: format!(
                                "in_features = {previous}, the output width of layer {at}"
                            ),
                            found: format!("in_features = {in_features}"),
                        });
                    }
                    width = Some((out_features, index));
                    let linear = if bias {
                        Linear::new(in_features, out_features, rng)?
                    } else {
                        Linear::without_bias(in_features, out_features, rng)?
                    };
                    Layer::Linear(linear.set_prefix(&index.to_string()))
                }
                LayerSpec::Conv2d {
                    in_channels,
                    out_channels,
                    kernel_size,
                    options,
                } => {
                    // Widths of shaped values are checked when the network runs.
                    width = None;
                    Layer::Conv2d(Conv2d::new(
                        in_channels,
                        out_channels,
                        kernel_size,
                        options,
                        rng,
                    )?)
                }
                LayerSpec::Conv1d {
                    in_channels,
                    out_channels,
                    kernel_size,
                    options,
                } => {
                    width = None;
                    Layer::Conv1d(Conv1d::new(
                        in_channels,
                        out_channels,
                        kernel_size,
                        options,
                        rng,
                    )?)
                }
                LayerSpec::Flatten => {
                    width = None;
                    Layer::Flatten
                }
                other => other.layer().map_err(|error| match error {
                    Error::InvalidArgument {
                        what,
                        expected,
                        found,
                    } => Error::InvalidArgument {
                        what: format!("Sequential layer {index}: {what}"),
                        expected,
                        found,
                    },
                    error => error,
                })?,
            };
            // (A Linear's own width was checked above, and has set `width` already.)
            if let Some(needed) = layer.input_width()
                && !matches!(layer, Layer::Linear(_))
                && let Some((previous, at)) = width
                && previous != needed
            {
                return Err(Error::InvalidArgument {
                    what: format!("Sequential layer {index}: {layer}"),
                    expected: format!("{previous} features, the output width of layer {at}"),
                    found: format!("{needed} features"),
                });
            }
            layers.push(layer);
        }
        let mut sequential = Sequential::from_layers(layers);
        // Dropout seeds come last, so that a network's weights do not depend on whether
        // it has dropout layers (PyTorch's constructors draw nothing for them either).
        sequential.manual_seed(rng.random());
        Ok(sequential)
    }

    /// Reseeds every dropout layer's mask generator (the `k`-th dropout layer gets
    /// stream `k` of `seed`), as `torch.manual_seed` does for PyTorch's dropout.
    pub fn manual_seed(&mut self, seed: u64) {
        let mut k = 0;
        for layer in &mut self.layers {
            if matches!(layer, Layer::Dropout(_)) {
                layer.reseed(seed, k);
                k += 1;
            }
        }
    }

    /// Fixed-mask mode for every dropout layer: each forward pass reuses the current
    /// mask (for gradient checks), until turned off.
    pub fn fix_dropout_masks(&mut self, fixed: bool) {
        for layer in &mut self.layers {
            layer.fix_mask(fixed);
        }
    }

    /// A network from already built layers.
    pub fn from_layers(layers: Vec<Layer<T>>) -> Self {
        let layers = layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| match layer {
                Layer::Linear(linear) => Layer::Linear(linear.set_prefix(&i.to_string())),
                Layer::BatchNorm1d(layer) => Layer::BatchNorm1d(layer.set_prefix(&i.to_string())),
                Layer::LayerNorm(layer) => Layer::LayerNorm(layer.set_prefix(&i.to_string())),
                Layer::Conv2d(layer) => Layer::Conv2d(layer.set_prefix(&i.to_string())),
                Layer::Conv1d(layer) => Layer::Conv1d(layer.set_prefix(&i.to_string())),
                other => other,
            })
            .collect();
        Sequential { layers }
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer<T>] {
        &self.layers
    }

    fn run(&self, x: &Tensor<T>, record: bool) -> Result<Tensor<T>> {
        let mut h = if record { x.clone() } else { x.detach() };
        for layer in &self.layers {
            h = layer.run(&h, record)?;
        }
        Ok(h)
    }
}

impl<T: Float> Module<T> for Sequential<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, true)
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, false)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            // Linear layers (the common case, visited by every optimizer step) name
            // their tensors directly, without the intermediate list.
            if let Layer::Linear(linear) = layer {
                params.push((format!("{i}.weight"), linear.weight.clone()));
                if let Some(bias) = &linear.bias {
                    params.push((format!("{i}.bias"), bias.clone()));
                }
                continue;
            }
            for (name, tensor) in layer.named_parameters() {
                params.push((format!("{i}.{name}"), tensor));
            }
        }
        params
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }
}

impl<T: Float> Parameters<T> for Sequential<T> {
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Param<'_, T>)) {
        super::visit_module(self, visitor);
    }
    fn visit_buffers(&mut self, visitor: &mut dyn FnMut(Buffer<'_, T>)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_buffers(&format!("{i}."), visitor);
        }
    }
    fn zero_grad(&mut self) {
        Module::zero_grad(self);
    }
}

impl<T: Float> fmt::Display for Sequential<T> {
    /// PyTorch's repr of an `nn.Sequential`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sequential(")?;
        for (i, layer) in self.layers.iter().enumerate() {
            writeln!(f, "  ({i}): {layer}")?;
        }
        write!(f, ")")
    }
}
