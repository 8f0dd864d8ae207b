//! Identity, compiled: `y = x`, so `dx = dy` (PyTorch's `nn.Identity`, a placeholder
//! layer: a copy forward, a copy backward).
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/identity.rs`, the
//! layer `nn::Identity` (on the dynamic engine it returns its input itself, as PyTorch).

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

/// `y = x`.
pub fn identity_forward<T: Float>(x: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| x);
}

/// `dx = dy`.
pub fn identity_backward<T: Float>(dy: ArrayView2<'_, T>, dx: ArrayViewMut2<'_, T>, write: Write) {
    map2_into(dy, dy, dx, write, |dy, _| dy);
}
