//! `elu`, on the dynamic engine: `x` where `x > 0`, else `α(e^x - 1)`. The derivative is
//! written in terms of the output here (the compiled kernel uses `α·e^x`): for `x <= 0`,
//! `y = α(e^x - 1)`, so `α·e^x = y + α`.
//!
//! The same layer: `kernels/elu.rs` (compiled), `nn::ELU`, and `model!`'s rules in
//! `nnscratch-macros/src/layers/elu.rs`.

use super::Tensor;
use super::unary::Derivative;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `x` where `x > 0`, else `α(e^x - 1)` (PyTorch's `F.elu`, `alpha = 1` by default:
    /// [`crate::nn::ELU_ALPHA`]); derivative 1, or `y + α`.
    pub fn elu(&self, alpha: T) -> Tensor<T> {
        let derivative: Derivative<T> =
            |x, y, [alpha, _]| if x > T::zero() { T::one() } else { y + alpha };
        let f = |x: T, [alpha, _]: [T; 2]| if x > T::zero() { x } else { alpha * x.exp_m1() };
        self.elementwise(f, "elu", "1 if x > 0 else y + α", derivative, &[alpha])
    }
}
