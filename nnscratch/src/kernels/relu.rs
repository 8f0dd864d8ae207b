//! ReLU, compiled: `y = max(x, 0)`, and since `d/dx max(x, 0)` is 1 for `x > 0` and 0
//! otherwise (0 at the kink, as PyTorch), `dx = dy ⊙ [x > 0]`.
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/relu.rs`, the dynamic
//! op in `tensor/relu.rs`, the layer `nn::ReLU`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

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
