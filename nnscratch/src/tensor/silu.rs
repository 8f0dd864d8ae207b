//! `silu`, on the dynamic engine: `x·σ(x)`. The derivative is written in terms of the
//! output here (the compiled kernel uses the input only): with `s = σ(x)`, `y = x·s`,
//! `dy/dx = s + x·s(1 - s) = s + y(1 - s)`.
//!
//! The same layer: `kernels/silu.rs` (compiled), `nn::SiLU`, and `model!`'s rules in
//! `nnscratch-macros/src/layers/silu.rs`.

use super::Tensor;
use super::sigmoid::sigmoid;
use crate::Float;

impl<T: Float> Tensor<T> {
    /// `x·σ(x)` (PyTorch's `F.silu`, also called swish); derivative `s + y(1 - s)`,
    /// `s = σ(x)`.
    pub fn silu(&self) -> Tensor<T> {
        self.elementwise(
            |x, _| x * sigmoid(x),
            "silu",
            "σ(x) + y(1 - σ(x))",
            |x, y, _| {
                let s = sigmoid(x);
                s + y * (T::one() - s)
            },
            &[],
        )
    }
}
