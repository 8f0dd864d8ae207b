//! ELU, compiled: `y = x` where `x > 0`, else `α(e^x - 1)` (PyTorch's `alpha = 1`);
//! its derivative is 1, or `α·e^x` (at `x = 0` too, as PyTorch), so
//! `dx = dy ⊙ (1 if x > 0 else α·e^x)`.
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/elu.rs`, the dynamic op
//! in `tensor/elu.rs`, the layer `nn::ELU`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

/// `y = x` where `x > 0`, else `α(e^x - 1)`.
pub fn elu_forward<T: Float>(x: ArrayView2<'_, T>, alpha: T, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| if x > T::zero() { x } else { alpha * x.exp_m1() });
}

/// `dx = dy ⊙ (1 if x > 0 else α·e^x)`.
pub fn elu_backward<T: Float>(
    x: ArrayView2<'_, T>,
    alpha: T,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(x, dy, dx, write, |x, dy| {
        if x > T::zero() {
            dy
        } else {
            dy * alpha * x.exp()
        }
    });
}
