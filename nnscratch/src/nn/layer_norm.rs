//! `LayerNorm`: PyTorch's `nn.LayerNorm(normalized_shape, eps=1e-5,
//! elementwise_affine=True)` over the last axis of `[batch, features]` or `[features]`.
//!
//! On the dynamic engine it is composed of elementary ops (each row's mean and biased
//! variance, taken along axis 0 of the transposed input), so its backward pass emerges
//! from theirs; the compiled kernel (`kernels/layer_norm.rs`) uses the closed form.
//! There are no running statistics: training and evaluation are the same.

use std::fmt;

use ndarray::Array1;

use super::Module;
use super::batch_norm::{NORM_EPS, affine_parameters, check_norm_arguments};
use crate::{Error, Float, Result, Tensor};

/// Layer normalisation over the features of each row (see the module docs).
///
/// ```
/// use nnscratch::nn::{LayerNorm, Module};
/// use nnscratch::Tensor;
///
/// let ln = LayerNorm::<f64>::new(2)?;
/// let y = ln.forward(&Tensor::from([[1.0, 3.0], [10.0, 30.0]]))?.to_array();
/// assert!((y[[0, 0]] + 1.0).abs() < 1e-4 && (y[[1, 1]] - 1.0).abs() < 1e-4);
/// # Ok::<(), nnscratch::Error>(())
/// ```
#[derive(Debug)]
pub struct LayerNorm<T: Float = f32> {
    normalized_shape: usize,
    eps: f64,
    /// `γ`, `[normalized_shape]` (ones), or `None` with `elementwise_affine = false`.
    pub weight: Option<Tensor<T>>,
    /// `β`, `[normalized_shape]` (zeros), or `None` with `elementwise_affine = false`.
    pub bias: Option<Tensor<T>>,
}

impl<T: Float> LayerNorm<T> {
    /// `LayerNorm(normalized_shape)` with PyTorch's defaults.
    pub fn new(normalized_shape: usize) -> Result<Self> {
        Self::with_options(normalized_shape, NORM_EPS, true)
    }

    /// Every argument of PyTorch's constructor (`normalized_shape` one size: the last
    /// axis).
    pub fn with_options(
        normalized_shape: usize,
        eps: f64,
        elementwise_affine: bool,
    ) -> Result<Self> {
        check_norm_arguments("LayerNorm", normalized_shape, eps)?;
        let (weight, bias) = affine_parameters(normalized_shape, elementwise_affine);
        Ok(LayerNorm {
            normalized_shape,
            eps,
            weight,
            bias,
        })
    }

    /// A layer with the given `weight` and `bias` (or none).
    pub fn from_parts(
        normalized_shape: usize,
        eps: f64,
        affine: Option<(Array1<T>, Array1<T>)>,
    ) -> Result<Self> {
        let mut layer = Self::with_options(normalized_shape, eps, affine.is_some())?;
        if let Some((weight, bias)) = affine {
            if weight.len() != normalized_shape || bias.len() != normalized_shape {
                return Err(Error::BadShape {
                    op: "LayerNorm::from_parts".into(),
                    expected: format!("weight and bias of shape [{normalized_shape}]"),
                    found: vec![weight.len(), bias.len()],
                });
            }
            layer.weight = Some(Tensor::parameter(weight.into_dyn()).with_label("weight"));
            layer.bias = Some(Tensor::parameter(bias.into_dyn()).with_label("bias"));
        }
        Ok(layer)
    }

    /// The value added to the variance (`eps`).
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The size of the normalised (last) axis.
    pub fn normalized_shape(&self) -> usize {
        self.normalized_shape
    }

    /// Labels the parameters `"{prefix}.weight"`, `"{prefix}.bias"` for pictures.
    pub(crate) fn set_prefix(self, prefix: &str) -> Self {
        LayerNorm {
            weight: self
                .weight
                .map(|w| w.with_label(format!("{prefix}.weight"))),
            bias: self.bias.map(|b| b.with_label(format!("{prefix}.bias"))),
            ..self
        }
    }

    fn run(
        &self,
        x: &Tensor<T>,
        weight: Option<Tensor<T>>,
        bias: Option<Tensor<T>>,
    ) -> Result<Tensor<T>> {
        let shape = x.shape();
        if !matches!(shape.len(), 1 | 2) || shape.last() != Some(&self.normalized_shape) {
            return Err(Error::BadShape {
                op: self.to_string(),
                expected: format!(
                    "an input of shape [{0}] or [batch, {0}]",
                    self.normalized_shape
                ),
                found: shape,
            });
        }
        let eps = Tensor::scalar(T::of(self.eps));
        let x_hat = if shape.len() == 1 {
            let centered = x.try_sub(&x.mean())?;
            let var = centered.square().mean();
            centered.try_mul(&var.try_add(&eps)?.powf(T::of(-0.5)))?
        } else {
            // Rows become columns, so each row's statistics are a mean along axis 0.
            let columns = x.t();
            let centered = columns.try_sub(&columns.mean_axis(0)?)?;
            let var = centered.square().mean_axis(0)?;
            centered.try_mul(&var.try_add(&eps)?.powf(T::of(-0.5)))?.t()
        };
        let scaled = match weight {
            Some(w) => x_hat.try_mul(&w)?,
            None => x_hat,
        };
        match bias {
            Some(b) => scaled.try_add(&b),
            None => Ok(scaled),
        }
    }
}

impl<T: Float> Module<T> for LayerNorm<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, self.weight.clone(), self.bias.clone())
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let detach = |t: &Option<Tensor<T>>| t.as_ref().map(Tensor::detach);
        self.run(&x.detach(), detach(&self.weight), detach(&self.bias))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = Vec::new();
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            params.push(("weight".to_string(), w.clone()));
            params.push(("bias".to_string(), b.clone()));
        }
        params
    }
}

impl<T: Float> fmt::Display for LayerNorm<T> {
    /// PyTorch's repr: `LayerNorm((16,), eps=1e-05, elementwise_affine=True)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LayerNorm(({},), eps={:e}, elementwise_affine={})",
            self.normalized_shape,
            self.eps,
            if self.weight.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }
}
