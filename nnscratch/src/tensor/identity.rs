//! `identity`, on the dynamic engine: `y = x` as a node of its own, derivative 1.
//!
//! The same layer: `kernels/identity.rs` (compiled), `nn::Identity` (which, as PyTorch's,
//! returns its input itself; a `to_dynamic()` graph uses this op, so that the value has
//! its own name as in the compiled model), and `model!`'s rules in
//! `nnscratch-macros/src/layers/identity.rs`.

use super::Tensor;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `x`, recorded as an op of its own (derivative 1).
    pub fn identity(&self) -> Tensor<T> {
        self.elementwise(|x, _| x, "identity", "1", |_, _, _| T::one(), &[])
    }
}
