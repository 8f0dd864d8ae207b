//! `Linear`: `y = x·Wᵀ + b`, with `W: [out_features, in_features]` as in PyTorch.
//!
//! On the dynamic engine the layer is just three recorded ops (transpose, matmul, add),
//! so its gradients come from those ops' derivatives; the compiled path derives the
//! same thing in one step (`dW = dYᵀ·X`, `db = Σ_rows dY`, `dX = dY·W`).

use std::fmt;

use ndarray::{Array1, Array2};
use rand::Rng;

use super::Module;
use crate::optim::{Param, Parameters};
use crate::{Error, Float, Result, Tensor, init};

/// A fully connected layer with weight `[out_features, in_features]` and (unless built
/// [`without_bias`](Linear::without_bias)) bias `[out_features]`, accepting inputs
/// `[in_features]`, `[batch, in_features]` or, as PyTorch, `[..., in_features]` with any
/// leading dimensions.
pub struct Linear<T: Float = f32> {
    in_features: usize,
    out_features: usize,
    /// `[out_features, in_features]`, PyTorch's layout.
    pub weight: Tensor<T>,
    /// `[out_features]`, or `None` for a layer without bias (PyTorch's `bias=False`).
    pub bias: Option<Tensor<T>>,
}

impl<T: Float> Linear<T> {
    /// A layer initialised as PyTorch's `nn.Linear`: weight and bias from
    /// `U(-1/√in_features, 1/√in_features)`.
    pub fn new<R: Rng + ?Sized>(
        in_features: usize,
        out_features: usize,
        rng: &mut R,
    ) -> Result<Self> {
        init::check_linear_widths(in_features, out_features)?;
        let weight = init::linear_weight(in_features, out_features, rng)?;
        let bias = init::linear_bias(in_features, out_features, rng)?;
        Self::from_parameters(weight, bias)
    }

    /// A layer `y = x·Wᵀ` with no bias (PyTorch's `nn.Linear(in, out, bias=False)`),
    /// its weight initialised as [`Linear::new`]'s.
    pub fn without_bias<R: Rng + ?Sized>(
        in_features: usize,
        out_features: usize,
        rng: &mut R,
    ) -> Result<Self> {
        init::check_linear_widths(in_features, out_features)?;
        let weight = init::linear_weight(in_features, out_features, rng)?;
        Self::from_parameters(weight, None)
    }

    /// A layer with the given weight `[out, in]` and bias `[out]` (or `None`: no bias).
    pub fn from_parameters(weight: Array2<T>, bias: impl Into<Option<Array1<T>>>) -> Result<Self> {
        let (out_features, in_features) = weight.dim();
        let bias = bias.into();
        if let Some(bias) = &bias
            && bias.len() != out_features
        {
            return Err(Error::ShapeMismatch {
                op: "Linear::from_parameters",
                lhs: vec![out_features, in_features],
                rhs: vec![bias.len()],
                expected: "a bias with one entry per output (weight rows)".into(),
            });
        }
        init::check_linear_widths(in_features, out_features)?;
        Ok(Linear {
            in_features,
            out_features,
            weight: Tensor::parameter(weight.into_dyn()).with_label("weight"),
            bias: bias.map(|b| Tensor::parameter(b.into_dyn()).with_label("bias")),
        })
    }

    /// Width of the input.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Width of the output.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Labels the parameters `"{prefix}.weight"` and `"{prefix}.bias"` for pictures.
    pub(crate) fn set_prefix(self, prefix: &str) -> Self {
        Linear {
            weight: self.weight.with_label(format!("{prefix}.weight")),
            bias: self.bias.map(|b| b.with_label(format!("{prefix}.bias"))),
            ..self
        }
    }

    fn check_input(&self, x: &Tensor<T>) -> Result<()> {
        let shape = x.shape();
        if shape.last() != Some(&self.in_features) {
            return Err(Error::BadShape {
                op: self.to_string(),
                expected: format!(
                    "an input of shape [{0}], [batch, {0}] or [..., {0}] (any leading dimensions)",
                    self.in_features
                ),
                found: shape,
            });
        }
        Ok(())
    }

    fn run(
        &self,
        x: &Tensor<T>,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
    ) -> Result<Tensor<T>> {
        self.check_input(x)?;
        let product = x.matmul(&weight.t())?;
        match bias {
            Some(bias) => product.try_add(bias),
            None => Ok(product),
        }
    }
}

impl<T: Float> Module<T> for Linear<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, &self.weight, self.bias.as_ref())
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let bias = self.bias.as_ref().map(Tensor::detach);
        self.run(&x.detach(), &self.weight.detach(), bias.as_ref())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = vec![("weight".to_string(), self.weight.clone())];
        if let Some(bias) = &self.bias {
            params.push(("bias".to_string(), bias.clone()));
        }
        params
    }
}

impl<T: Float> Parameters<T> for Linear<T> {
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Param<'_, T>)) {
        super::visit_module(self, visitor);
    }
    fn zero_grad(&mut self) {
        Module::zero_grad(self);
    }
}

impl<T: Float> fmt::Display for Linear<T> {
    /// PyTorch's repr: `Linear(in_features=10, out_features=30, bias=True)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features,
            self.out_features,
            if self.bias.is_some() { "True" } else { "False" }
        )
    }
}
