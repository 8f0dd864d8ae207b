//! LayerNorm over the features of `[batch, C]`: each row normalised by its own mean and
//! (biased) variance, then scaled and shifted by `γ = weight`, `β = bias` (`[C]`). The
//! same in training and evaluation.
//!
//! ```text
//! μ_r = mean_j x_rj    σ²_r = mean_j (x_rj - μ_r)²    x̂ = (x - μ)/√(σ² + ε)    y = γ ⊙ x̂ + β
//! ```
//!
//! Backward: `dγ = Σ_rows dy ⊙ x̂`, `dβ = Σ_rows dy` (shared with BatchNorm:
//! [`norm_backward_params`](super::norm_backward_params)); with `g = γ ⊙ dy` and
//! `s_r = 1/√(σ²_r + ε)`, the chain rule through each row's own `μ_r` and `σ²_r` gives
//!
//! ```text
//! dx_r = (s_r/C)·(C·g_r - Σ_j g_rj - x̂_r·Σ_j g_rj x̂_rj)
//! ```
//!
//! BatchNorm's formula with rows and columns exchanged. The forward pass keeps `x̂`
//! (`[batch, C]`) and `s` (`[batch, 1]`) for backward.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use super::{Write, rows, rows_mut, vector};
use crate::Float;

/// Writes `y`, `x̂` and `s` (see the module docs).
pub fn layer_norm_forward<T: Float>(
    x: ArrayView2<'_, T>,
    weight: Option<ArrayView1<'_, T>>,
    bias: Option<ArrayView1<'_, T>>,
    eps: f64,
    mut y: ArrayViewMut2<'_, T>,
    mut x_hat: ArrayViewMut2<'_, T>,
    mut inv_std: ArrayViewMut2<'_, T>,
) {
    let features = x.ncols();
    let (x, y, x_hat) = (rows(&x), rows_mut(&mut y), rows_mut(&mut x_hat));
    let inv_std = rows_mut(&mut inv_std);
    let (weight, bias) = (vector(&weight), vector(&bias));
    let (n, eps) = (T::of(features as f64), T::of(eps));
    for (((x_row, y_row), h_row), inv) in x
        .chunks_exact(features)
        .zip(y.chunks_exact_mut(features))
        .zip(x_hat.chunks_exact_mut(features))
        .zip(inv_std.iter_mut())
    {
        let mean = x_row.iter().copied().sum::<T>() / n;
        let var = x_row.iter().map(|&v| (v - mean) * (v - mean)).sum::<T>() / n;
        *inv = T::one() / (var + eps).sqrt();
        for c in 0..features {
            let h = (x_row[c] - mean) * *inv;
            h_row[c] = h;
            let scaled = weight.map_or(h, |w| w[c] * h);
            y_row[c] = bias.map_or(scaled, |b| scaled + b[c]);
        }
    }
}

/// `dx` (see the module docs).
pub fn layer_norm_backward_input<T: Float>(
    dy: ArrayView2<'_, T>,
    x_hat: ArrayView2<'_, T>,
    weight: Option<ArrayView1<'_, T>>,
    inv_std: ArrayView2<'_, T>,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    let features = dy.ncols();
    let (dy, x_hat, inv_std) = (rows(&dy), rows(&x_hat), rows(&inv_std));
    let dx = rows_mut(&mut dx);
    let weight = vector(&weight);
    let n = T::of(features as f64);
    for (((dx_row, g_row), h_row), &inv) in dx
        .chunks_exact_mut(features)
        .zip(dy.chunks_exact(features))
        .zip(x_hat.chunks_exact(features))
        .zip(inv_std)
    {
        let g = |c: usize| weight.map_or(g_row[c], |w| w[c] * g_row[c]);
        let (mut sum_g, mut sum_gh) = (T::zero(), T::zero());
        for (c, &h) in h_row.iter().enumerate() {
            sum_g += g(c);
            sum_gh += g(c) * h;
        }
        for c in 0..features {
            let value = inv / n * (n * g(c) - sum_g - h_row[c] * sum_gh);
            write.store(&mut dx_row[c], value);
        }
    }
}
