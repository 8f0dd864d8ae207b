//! Element-wise activations, each `f` beside its `f'`:
//!
//! ```text
//! ReLU        y = max(x, 0)              dx = dy ⊙ [x > 0]
//! LeakyReLU   y = x if x > 0 else a·x    dx = dy ⊙ (1 if x > 0 else a)
//! Sigmoid     y = 1 / (1 + e^-x)         dx = dy ⊙ y(1 - y)
//! Tanh        y = tanh(x)                dx = dy ⊙ (1 - y²)
//! ```
//!
//! Sigmoid and tanh differentiate through their output `y`, which the forward pass kept.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;
use crate::tensor::sigmoid;

/// `y = max(x, 0)`.
pub fn relu_forward<T: Float>(x: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| if x > T::zero() { x } else { T::zero() });
}

/// `dx = dy ⊙ [x > 0]`.
pub fn relu_backward<T: Float>(
    x: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(
        x,
        dy,
        dx,
        write,
        |x, dy| if x > T::zero() { dy } else { T::zero() },
    );
}

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
