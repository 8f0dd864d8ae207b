//! Tanh, compiled: `y = tanh(x)`. Differentiating `tanh = sinh/cosh`,
//! `tanh'(x) = (cosh² - sinh²)/cosh² = 1 - tanh²(x)`, so the backward pass reads the
//! output the forward pass kept: `dx = dy ⊙ (1 - y²)`. For `f32` the forward pass uses
//! the vectorised approximation of `math.rs`.
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/tanh.rs`, the dynamic
//! op in `tensor/tanh.rs`, the layer `nn::Tanh`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

/// `y = tanh(x)` (for `f32`, the vectorised approximation of [`super::tanh_f32`]).
pub fn tanh_forward<T: Float>(x: ArrayView2<'_, T>, mut y: ArrayViewMut2<'_, T>) {
    match (x.to_slice(), y.as_slice_mut()) {
        (Some(x), Some(y)) => T::tanh_slice(x, y),
        _ => map_into(x, y, T::tanh),
    }
}

/// `dx = dy ⊙ (1 - y²)`.
pub fn tanh_backward<T: Float>(
    y: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(y, dy, dx, write, |y, dy| dy * (T::one() - y * y));
}
