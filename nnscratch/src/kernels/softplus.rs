//! Softplus, compiled, as PyTorch defines it (`beta = 1`, `threshold = 20` by default):
//!
//! ```text
//! y = ln(1 + e^(β·x)) / β     where β·x <= threshold
//! y = x                       where β·x >  threshold
//! ```
//!
//! Differentiating the first branch, `dy/dx = (1/β)·β·e^(β·x)/(1 + e^(β·x)) = σ(β·x)`;
//! the second has slope 1. So `dx = dy ⊙ σ(β·x)` below the threshold and `dx = dy`
//! above it, computed from the input `x` (as PyTorch's `softplus_backward` does).
//!
//! `ln(1 + e^z)` is evaluated as `max(z, 0) + ln(1 + e^-|z|)`, which never overflows,
//! whatever threshold the user chose (`e^z` alone overflows `f32` beyond `z ≈ 88`).
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/softplus.rs`, the
//! dynamic op in `tensor/softplus.rs`, the layer `nn::Softplus`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;
use crate::tensor::sigmoid;

/// `softplus(x)` for one element (shared with the dynamic engine's forward value).
#[inline]
pub(crate) fn softplus<T: Float>(x: T, beta: T, threshold: T) -> T {
    let z = beta * x;
    if z > threshold {
        x
    } else {
        (z.max(T::zero()) + (-z.abs()).exp().ln_1p()) / beta
    }
}

/// `y = ln(1 + e^(β·x))/β`, or `x` where `β·x > threshold`.
pub fn softplus_forward<T: Float>(
    x: ArrayView2<'_, T>,
    beta: T,
    threshold: T,
    y: ArrayViewMut2<'_, T>,
) {
    map_into(x, y, |x| softplus(x, beta, threshold));
}

/// `dx = dy ⊙ σ(β·x)`, or `dy` where `β·x > threshold`.
pub fn softplus_backward<T: Float>(
    x: ArrayView2<'_, T>,
    beta: T,
    threshold: T,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(x, dy, dx, write, |x, dy| {
        let z = beta * x;
        if z > threshold { dy } else { dy * sigmoid(z) }
    });
}
