//! `leaky_relu`, on the dynamic engine: `x` where `x > 0`, else `slope·x`.
//!
//! The same layer: `kernels/leaky_relu.rs` (compiled), `nn::LeakyReLU`, and `model!`'s
//! rules in `nnscratch-macros/src/layers/leaky_relu.rs`.

use super::Tensor;
use super::unary::Derivative;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `x` where `x > 0`, else `slope·x`; derivative `1` or `slope` (PyTorch's default
    /// slope is 0.01, see [`crate::nn::LEAKY_RELU_SLOPE`]).
    pub fn leaky_relu(&self, slope: T) -> Tensor<T> {
        let derivative: Derivative<T> =
            |x, _, [slope, _]| if x > T::zero() { T::one() } else { slope };
        let f = |x: T, [slope, _]: [T; 2]| if x > T::zero() { x } else { slope * x };
        self.elementwise(
            f,
            "leaky_relu",
            "1 if x > 0 else slope",
            derivative,
            &[slope],
        )
    }
}
