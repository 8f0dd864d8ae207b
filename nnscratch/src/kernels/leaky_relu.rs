//! LeakyReLU, compiled: `y = x` where `x > 0`, else `slope·x`; its derivative is 1 or
//! `slope`, so `dx = dy ⊙ (1 if x > 0 else slope)`.
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/leaky_relu.rs`, the
//! dynamic op in `tensor/leaky_relu.rs`, the layer `nn::LeakyReLU`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

/// `y = x` where `x > 0`, else `slope·x`.
pub fn leaky_relu_forward<T: Float>(x: ArrayView2<'_, T>, slope: T, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| if x > T::zero() { x } else { slope * x });
}

/// `dx = dy ⊙ (1 if x > 0 else slope)`.
pub fn leaky_relu_backward<T: Float>(
    x: ArrayView2<'_, T>,
    slope: T,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(x, dy, dx, write, |x, dy| {
        if x > T::zero() { dy } else { slope * dy }
    });
}
