//! SiLU (swish), compiled: `y = x·σ(x)`. By the product rule and `σ' = σ(1 - σ)`,
//! `dy/dx = σ(x) + x·σ(x)(1 - σ(x)) = σ(x)·(1 + x(1 - σ(x)))`, so
//! `dx = dy ⊙ σ(x)(1 + x(1 - σ(x)))`.
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/silu.rs`, the dynamic
//! op in `tensor/silu.rs`, the layer `nn::SiLU`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;
use crate::tensor::sigmoid;

/// `y = x·σ(x)`.
pub fn silu_forward<T: Float>(x: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| x * sigmoid(x));
}

/// `dx = dy ⊙ σ(x)(1 + x(1 - σ(x)))`.
pub fn silu_backward<T: Float>(
    x: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(x, dy, dx, write, |x, dy| {
        let s = sigmoid(x);
        dy * s * (T::one() + x * (T::one() - s))
    });
}
