//! `sigmoid`, on the dynamic engine: `σ(x) = 1 / (1 + e^-x)`, `σ' = y(1 - y)`.
//!
//! The same layer: `kernels/sigmoid.rs` (compiled), `nn::Sigmoid`, and `model!`'s rules
//! in `nnscratch-macros/src/layers/sigmoid.rs`.

use super::Tensor;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `σ(x) = 1 / (1 + e^-x)`; `σ'(x) = σ(x)(1 - σ(x)) = y(1 - y)`.
    pub fn sigmoid(&self) -> Tensor<T> {
        self.elementwise(
            |x, _| sigmoid(x),
            "sigmoid",
            "y·(1 - y)",
            |_, y, _| y * (T::one() - y),
            &[],
        )
    }
}

/// The logistic function, written to avoid overflow of `e^-x` for large negative `x`.
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}
