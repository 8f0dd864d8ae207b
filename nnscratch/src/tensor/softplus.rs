//! `softplus`, on the dynamic engine, as PyTorch's `F.softplus(x, beta, threshold)`:
//! `y = ln(1 + e^(β·x))/β`, or `x` where `β·x > threshold`.
//!
//! The derivative is written here in terms of the output, independently of the compiled
//! kernel (which uses `σ(β·x)`): from `e^(β·y) = 1 + e^(β·x)`,
//!
//! ```text
//! dy/dx = e^(β·x)/(1 + e^(β·x)) = (e^(β·y) - 1)/e^(β·y) = 1 - e^(-β·y)
//! ```
//!
//! evaluated as `-expm1(-β·y)`, exact even where `y` is tiny; and 1 beyond the threshold.
//!
//! The same layer: `kernels/softplus.rs` (compiled), `nn::Softplus`, and `model!`'s rules
//! in `nnscratch-macros/src/layers/softplus.rs`.

use super::Tensor;
use super::unary::Derivative;
use crate::Float;
use crate::kernels::softplus;

impl<T: Float> Tensor<T> {
    /// `ln(1 + e^(β·x))/β`, or `x` where `β·x > threshold` (PyTorch's defaults are
    /// `beta = 1`, `threshold = 20`: [`crate::nn::SOFTPLUS_BETA`],
    /// [`crate::nn::SOFTPLUS_THRESHOLD`]); derivative `1 - e^(-β·y)`, or 1.
    pub fn softplus(&self, beta: T, threshold: T) -> Tensor<T> {
        let derivative: Derivative<T> = |x, y, [beta, threshold]| {
            if beta * x > threshold {
                T::one()
            } else {
                -(-beta * y).exp_m1()
            }
        };
        let f = |x: T, [beta, threshold]: [T; 2]| softplus(x, beta, threshold);
        self.elementwise(
            f,
            "softplus",
            "1 - e^(-β·y)",
            derivative,
            &[beta, threshold],
        )
    }
}
