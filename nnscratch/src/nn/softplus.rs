//! `Softplus`: PyTorch's `nn.Softplus(beta=1, threshold=20)`, a smooth ReLU,
//! `y = ln(1 + e^(β·x))/β` (and `y = x` where `β·x > threshold`).
//!
//! The same layer: the dynamic op [`Tensor::softplus`] (`tensor/softplus.rs`), the
//! compiled kernels `kernels::softplus_forward`/`softplus_backward`
//! (`kernels/softplus.rs`), and `model!`'s rules in
//! `nnscratch-macros/src/layers/softplus.rs`.

use std::fmt;

use super::Module;
use crate::{Error, Float, Result, Tensor};

/// PyTorch's default `beta` of `Softplus`.
pub const SOFTPLUS_BETA: f64 = 1.0;
/// PyTorch's default `threshold` of `Softplus`.
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

/// The Softplus activation as a layer (no parameters).
///
/// ```
/// use nnscratch::nn::{Module, Softplus};
/// use nnscratch::Tensor;
///
/// let layer = Softplus::<f64>::default(); // beta = 1, threshold = 20
/// let y = layer.forward(&Tensor::from([0.0, 30.0]))?;
/// assert!((y.to_array()[0] - 2f64.ln()).abs() < 1e-15);
/// assert_eq!(y.to_array()[1], 30.0); // beyond the threshold, y = x
/// assert_eq!(layer.to_string(), "Softplus(beta=1.0, threshold=20.0)");
/// # Ok::<(), nnscratch::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softplus<T: Float = f32> {
    beta: T,
    threshold: T,
}

impl<T: Float> Softplus<T> {
    /// `Softplus(beta, threshold)`: `beta` must be a positive number and `threshold`
    /// a finite one.
    pub fn new(beta: f64, threshold: f64) -> Result<Self> {
        if !(beta.is_finite() && beta > 0.0 && threshold.is_finite()) {
            return Err(Error::InvalidArgument {
                what: "Softplus".into(),
                expected: "a finite beta > 0 and a finite threshold (PyTorch's defaults: 1, 20)"
                    .into(),
                found: format!("beta = {beta}, threshold = {threshold}"),
            });
        }
        Ok(Softplus {
            beta: T::of(beta),
            threshold: T::of(threshold),
        })
    }

    /// `beta`.
    pub fn beta(&self) -> T {
        self.beta
    }

    /// `threshold`.
    pub fn threshold(&self) -> T {
        self.threshold
    }
}

impl<T: Float> Default for Softplus<T> {
    /// PyTorch's `nn.Softplus()`: `beta = 1`, `threshold = 20`.
    fn default() -> Self {
        Softplus {
            beta: T::of(SOFTPLUS_BETA),
            threshold: T::of(SOFTPLUS_THRESHOLD),
        }
    }
}

impl<T: Float> Module<T> for Softplus<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.softplus(self.beta, self.threshold))
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(x.detach().softplus(self.beta, self.threshold))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        Vec::new()
    }
}

impl<T: Float> fmt::Display for Softplus<T> {
    /// PyTorch's repr: `Softplus(beta=1.0, threshold=20.0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Softplus(beta={:?}, threshold={:?})",
            self.beta.as_f64(),
            self.threshold.as_f64()
        )
    }
}
