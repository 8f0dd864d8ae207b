//! Sigmoid, compiled: `y = σ(x) = 1 / (1 + e^-x)`. Differentiating,
//! `σ'(x) = e^-x / (1 + e^-x)² = σ(x)·(1 - σ(x))`, so the backward pass needs only the
//! output the forward pass kept: `dx = dy ⊙ y(1 - y)`.
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/sigmoid.rs`, the
//! dynamic op in `tensor/sigmoid.rs`, the layer `nn::Sigmoid`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;
use crate::tensor::sigmoid;

/// `y = σ(x)`.
pub fn sigmoid_forward<T: Float>(x: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, sigmoid);
}

/// `dx = dy ⊙ y(1 - y)`.
pub fn sigmoid_backward<T: Float>(
    y: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(y, dy, dx, write, |y, dy| dy * y * (T::one() - y));
}
