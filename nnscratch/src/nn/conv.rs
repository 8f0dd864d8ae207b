//! `Conv1d` and `Conv2d`: PyTorch's `nn.Conv1d`/`nn.Conv2d` with their initialisation,
//! `state_dict` names and layouts (weight `[out, in/groups, kernel...]`, bias `[out]`).
//!
//! The dynamic op is [`Tensor::conv1d`]/[`Tensor::conv2d`] (`tensor/conv.rs`, written as
//! the definition); the compiled kernels are in `kernels/conv.rs` (unfolded patches and
//! the packed matrix product).

use std::fmt;

use ndarray::ArrayD;
use rand::Rng;

use super::Module;
use crate::{Error, Float, Result, Tensor, init};

/// The arguments of a convolution (`stride`, `padding`, `dilation`, `groups`, `bias`),
/// PyTorch's defaults from [`Default`]: `1, 0, 1, 1, true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvOptions<S> {
    /// Step between windows.
    pub stride: S,
    /// Zeros added on each side.
    pub padding: S,
    /// Spacing of the kernel's taps.
    pub dilation: S,
    /// Channel groups (`in_channels` and `out_channels` divisible by it).
    pub groups: usize,
    /// Whether there is a bias.
    pub bias: bool,
}

impl Default for ConvOptions<usize> {
    fn default() -> Self {
        ConvOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }
}

impl Default for ConvOptions<(usize, usize)> {
    fn default() -> Self {
        ConvOptions {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
}

fn check_channels(
    layer: &str,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
) -> Result<()> {
    if in_channels == 0
        || out_channels == 0
        || groups == 0
        || !in_channels.is_multiple_of(groups)
        || !out_channels.is_multiple_of(groups)
    {
        return Err(Error::InvalidArgument {
            what: layer.into(),
            expected: "at least one channel in and out, both divisible by groups".into(),
            found: format!(
                "in_channels {in_channels}, out_channels {out_channels}, groups {groups}"
            ),
        });
    }
    Ok(())
}

/// A 2-D convolution layer on `[N, C_in, H, W]`.
///
/// ```
/// use nnscratch::nn::{Conv2d, ConvOptions, Module};
/// use nnscratch::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let conv = Conv2d::<f64>::new(1, 8, (3, 3), ConvOptions { padding: (1, 1), ..Default::default() }, &mut rng)?;
/// let y = conv.forward(&Tensor::zeros(&[2, 1, 28, 28]))?;
/// assert_eq!(y.shape(), [2, 8, 28, 28]);
/// # Ok::<(), nnscratch::Error>(())
/// ```
pub struct Conv2d<T: Float = f32> {
    in_channels: usize,
    out_channels: usize,
    pub(crate) kernel_size: (usize, usize),
    pub(crate) options: ConvOptions<(usize, usize)>,
    /// `[out_channels, in_channels/groups, kh, kw]`.
    pub weight: Tensor<T>,
    /// `[out_channels]`, or `None` without bias.
    pub bias: Option<Tensor<T>>,
}

impl<T: Float> Conv2d<T> {
    /// `Conv2d(in_channels, out_channels, kernel_size, ...)` initialised as PyTorch's.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel_size: (usize, usize),
        options: ConvOptions<(usize, usize)>,
        rng: &mut R,
    ) -> Result<Self> {
        check_channels("Conv2d", in_channels, out_channels, options.groups)?;
        let shape = [
            out_channels,
            in_channels / options.groups,
            kernel_size.0,
            kernel_size.1,
        ];
        let weight = init::conv_weight(&shape, rng)?;
        let fan_in = shape[1..].iter().product();
        let bias = if options.bias {
            Some(init::conv_bias(fan_in, out_channels, rng)?.into_dyn())
        } else {
            None
        };
        Self::from_parameters(in_channels, weight, bias, options)
    }

    /// A layer with the given weight `[out, in/groups, kh, kw]` and bias.
    pub fn from_parameters(
        in_channels: usize,
        weight: ArrayD<T>,
        bias: Option<ArrayD<T>>,
        options: ConvOptions<(usize, usize)>,
    ) -> Result<Self> {
        let shape = weight.shape().to_vec();
        let ok = shape.len() == 4
            && options.groups > 0
            && shape[1] * options.groups == in_channels
            && bias.as_ref().is_none_or(|b| b.shape() == [shape[0]]);
        if !ok {
            return Err(Error::BadShape {
                op: "Conv2d::from_parameters".into(),
                expected: format!("a weight [out, {in_channels}/groups, kh, kw] and a bias [out]"),
                found: shape,
            });
        }
        check_channels("Conv2d", in_channels, shape[0], options.groups)?;
        Ok(Conv2d {
            in_channels,
            out_channels: shape[0],
            kernel_size: (shape[2], shape[3]),
            options: ConvOptions {
                bias: bias.is_some(),
                ..options
            },
            weight: Tensor::parameter(weight).with_label("weight"),
            bias: bias.map(|b| Tensor::parameter(b).with_label("bias")),
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Labels the parameters `"{prefix}.weight"`, `"{prefix}.bias"` for pictures.
    pub(crate) fn set_prefix(self, prefix: &str) -> Self {
        Conv2d {
            weight: self.weight.with_label(format!("{prefix}.weight")),
            bias: self.bias.map(|b| b.with_label(format!("{prefix}.bias"))),
            ..self
        }
    }

    fn run(
        &self,
        x: &Tensor<T>,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
    ) -> Result<Tensor<T>> {
        let o = &self.options;
        x.conv2d(weight, bias, o.stride, o.padding, o.dilation, o.groups)
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, &self.weight, self.bias.as_ref())
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let bias = self.bias.as_ref().map(Tensor::detach);
        self.run(&x.detach(), &self.weight.detach(), bias.as_ref())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = vec![("weight".to_string(), self.weight.clone())];
        params.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        params
    }
}

impl<T: Float> fmt::Display for Conv2d<T> {
    /// PyTorch's repr: `Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        write!(
            f,
            "Conv2d({}, {}, kernel_size={:?}, stride={:?}",
            self.in_channels, self.out_channels, self.kernel_size, o.stride
        )?;
        if o.padding != (0, 0) {
            write!(f, ", padding={:?}", o.padding)?;
        }
        if o.dilation != (1, 1) {
            write!(f, ", dilation={:?}", o.dilation)?;
        }
        if o.groups != 1 {
            write!(f, ", groups={}", o.groups)?;
        }
        if !o.bias {
            write!(f, ", bias=False")?;
        }
        write!(f, ")")
    }
}

/// A 1-D convolution layer on `[N, C_in, L]`.
pub struct Conv1d<T: Float = f32> {
    in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) kernel_size: usize,
    pub(crate) options: ConvOptions<usize>,
    /// `[out_channels, in_channels/groups, k]`.
    pub weight: Tensor<T>,
    /// `[out_channels]`, or `None` without bias.
    pub bias: Option<Tensor<T>>,
}

impl<T: Float> Conv1d<T> {
    /// `Conv1d(in_channels, out_channels, kernel_size, ...)` initialised as PyTorch's.
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        options: ConvOptions<usize>,
        rng: &mut R,
    ) -> Result<Self> {
        check_channels("Conv1d", in_channels, out_channels, options.groups)?;
        let shape = [out_channels, in_channels / options.groups, kernel_size];
        let weight = init::conv_weight(&shape, rng)?;
        let fan_in = shape[1..].iter().product();
        let bias = if options.bias {
            Some(init::conv_bias(fan_in, out_channels, rng)?.into_dyn())
        } else {
            None
        };
        Self::from_parameters(in_channels, weight, bias, options)
    }

    /// A layer with the given weight `[out, in/groups, k]` and bias.
    pub fn from_parameters(
        in_channels: usize,
        weight: ArrayD<T>,
        bias: Option<ArrayD<T>>,
        options: ConvOptions<usize>,
    ) -> Result<Self> {
        let shape = weight.shape().to_vec();
        let ok = shape.len() == 3
            && options.groups > 0
            && shape[1] * options.groups == in_channels
            && bias.as_ref().is_none_or(|b| b.shape() == [shape[0]]);
        if !ok {
            return Err(Error::BadShape {
                op: "Conv1d::from_parameters".into(),
                expected: format!("a weight [out, {in_channels}/groups, k] and a bias [out]"),
                found: shape,
            });
        }
        check_channels("Conv1d", in_channels, shape[0], options.groups)?;
        Ok(Conv1d {
            in_channels,
            out_channels: shape[0],
            kernel_size: shape[2],
            options: ConvOptions {
                bias: bias.is_some(),
                ..options
            },
            weight: Tensor::parameter(weight).with_label("weight"),
            bias: bias.map(|b| Tensor::parameter(b).with_label("bias")),
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Labels the parameters for pictures.
    pub(crate) fn set_prefix(self, prefix: &str) -> Self {
        Conv1d {
            weight: self.weight.with_label(format!("{prefix}.weight")),
            bias: self.bias.map(|b| b.with_label(format!("{prefix}.bias"))),
            ..self
        }
    }

    fn run(
        &self,
        x: &Tensor<T>,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
    ) -> Result<Tensor<T>> {
        let o = &self.options;
        x.conv1d(weight, bias, o.stride, o.padding, o.dilation, o.groups)
    }
}

impl<T: Float> Module<T> for Conv1d<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, &self.weight, self.bias.as_ref())
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let bias = self.bias.as_ref().map(Tensor::detach);
        self.run(&x.detach(), &self.weight.detach(), bias.as_ref())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = vec![("weight".to_string(), self.weight.clone())];
        params.extend(self.bias.iter().map(|b| ("bias".to_string(), b.clone())));
        params
    }
}

impl<T: Float> fmt::Display for Conv1d<T> {
    /// PyTorch's repr: `Conv1d(2, 4, kernel_size=(3,), stride=(1,))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        write!(
            f,
            "Conv1d({}, {}, kernel_size=({},), stride=({},)",
            self.in_channels, self.out_channels, self.kernel_size, o.stride
        )?;
        if o.padding != 0 {
            write!(f, ", padding=({},)", o.padding)?;
        }
        if o.dilation != 1 {
            write!(f, ", dilation=({},)", o.dilation)?;
        }
        if o.groups != 1 {
            write!(f, ", groups={}", o.groups)?;
        }
        if !o.bias {
            write!(f, ", bias=False")?;
        }
        write!(f, ")")
    }
}

/// A pooling layer, `MaxPool2d` or `AvgPool2d`, on `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Max (`true`) or average pooling.
    pub max: bool,
    /// `(kh, kw)`.
    pub kernel_size: (usize, usize),
    /// `(sh, sw)` (PyTorch's default: the kernel size).
    pub stride: (usize, usize),
    /// `(ph, pw)`.
    pub padding: (usize, usize),
}

impl Pool2d {
    fn run<T: Float>(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        if self.max {
            x.max_pool2d(self.kernel_size, self.stride, self.padding)
        } else {
            x.avg_pool2d(self.kernel_size, self.stride, self.padding)
        }
    }
}

impl<T: Float> Module<T> for Pool2d {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x)
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(&x.detach())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        Vec::new()
    }
}

impl fmt::Display for Pool2d {
    /// PyTorch's repr: `MaxPool2d(kernel_size=2, stride=2, padding=0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.max { "MaxPool2d" } else { "AvgPool2d" };
        let show = |(a, b): (usize, usize)| {
            if a == b {
                a.to_string()
            } else {
                format!("({a}, {b})")
            }
        };
        write!(
            f,
            "{name}(kernel_size={}, stride={}, padding={})",
            show(self.kernel_size),
            show(self.stride),
            show(self.padding)
        )
    }
}
