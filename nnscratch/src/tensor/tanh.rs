//! `tanh`, on the dynamic engine: `tanh'(x) = 1 - tanh²(x) = 1 - y²`.
//!
//! The same layer: `kernels/tanh.rs` (compiled), `nn::Tanh`, and `model!`'s rules in
//! `nnscratch-macros/src/layers/tanh.rs`.

use super::Tensor;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `tanh(x)`; `tanh'(x) = 1 - tanh²(x) = 1 - y²`.
    pub fn tanh(&self) -> Tensor<T> {
        self.elementwise(
            |x, _| x.tanh(),
            "tanh",
            "1 - y^2",
            |_, y, _| T::one() - y * y,
            &[],
        )
    }
}
