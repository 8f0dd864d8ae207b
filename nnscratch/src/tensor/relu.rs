//! `relu`, on the dynamic engine: `max(x, 0)`, derivative `[x > 0]`.
//!
//! The same layer: `kernels/relu.rs` (compiled), `nn::ReLU`, and `model!`'s rules in
//! `nnscratch-macros/src/layers/relu.rs`.

use super::Tensor;
use super::unary::Derivative;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `max(x, 0)`; derivative `1` where `x > 0`, else `0` (0 at `x = 0`, as PyTorch).
    pub fn relu(&self) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, _| if x > T::zero() { T::one() } else { T::zero() };
        let f = |x: T, _: [T; 2]| if x > T::zero() { x } else { T::zero() };
        self.elementwise(f, "relu", "[x > 0]", derivative, &[])
    }
}
