//! BatchNorm1d on `[batch, C]` and BatchNorm2d on `[batch, C, H, W]`: each channel
//! normalised over the batch (and, in 2-D, over its `H·W` positions), then scaled and
//! shifted by the learned `γ = weight`, `β = bias` (`[C]`).
//!
//! ```text
//! training:    μ = mean_rows x    σ² = mean_rows (x - μ)²    (biased, to normalise)
//! evaluation:  μ = running_mean   σ² = running_var
//! x̂ = (x - μ)/√(σ² + ε)        y = γ ⊙ x̂ + β
//! ```
//!
//! In training the running statistics move towards the batch's, as PyTorch's do:
//! `running_mean ← (1 - m)·running_mean + m·μ`, `running_var ← (1 - m)·running_var +
//! m·σ²·B/(B - 1)` (the unbiased variance), `num_batches_tracked += 1`.
//!
//! Backward. `dγ = Σ_rows dy ⊙ x̂`, `dβ = Σ_rows dy`. With running statistics `μ` and
//! `σ²` are constants and `dx = γ ⊙ dy/√(σ² + ε)`. With batch statistics they depend on
//! every row of `x`; the chain rule through `μ` and `σ²` gives, per feature, with `B`
//! rows and `s = 1/√(σ² + ε)`:
//!
//! ```text
//! dx = (γ·s/B) ⊙ (B·dy - Σ_rows dy - x̂ ⊙ Σ_rows (dy ⊙ x̂))
//! ```
//!
//! The forward pass keeps `x̂` and `s` for backward in workspace buffers; `stats` is a
//! `[3, C]` scratch buffer (its rows: `s`, and two per-feature sums), so nothing here
//! allocates.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::{Write, rows, rows_mut, vector};
use crate::Float;

/// A BatchNorm layer's running statistics, PyTorch's buffers of the same names.
pub struct RunningStats<'a, T> {
    /// `running_mean`, `[C]`.
    pub mean: ArrayViewMut1<'a, T>,
    /// `running_var`, `[C]`.
    pub var: ArrayViewMut1<'a, T>,
    /// `num_batches_tracked`.
    pub num_batches_tracked: &'a mut u64,
}

/// The forward pass (see the module docs): writes `y`, `x̂` and `s` (row 0 of `stats`);
/// uses batch statistics when `training` or when there are no running statistics, and
/// updates the running statistics when both are there. Each row holds `C` channels of
/// `spatial` values (`1` for BatchNorm1d, `H·W` for BatchNorm2d): a channel's statistics
/// are over the batch and its positions.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward<T: Float>(
    x: ArrayView2<'_, T>,
    spatial: usize,
    weight: Option<ArrayView1<'_, T>>,
    bias: Option<ArrayView1<'_, T>>,
    running: Option<RunningStats<'_, T>>,
    training: bool,
    eps: f64,
    momentum: f64,
    mut y: ArrayViewMut2<'_, T>,
    mut x_hat: ArrayViewMut2<'_, T>,
    mut stats: ArrayViewMut2<'_, T>,
) {
    let (batch, width) = x.dim();
    let channels = width / spatial;
    let (x, y, x_hat) = (rows(&x), rows_mut(&mut y), rows_mut(&mut x_hat));
    let stats = rows_mut(&mut stats);
    let (inv_std, rest) = stats.split_at_mut(channels);
    let (mean, var) = rest.split_at_mut(channels);
    let eps = T::of(eps);
    match running {
        Some(running) if !training => {
            let (rm, rv) = (running.mean, running.var);
            for c in 0..channels {
                mean[c] = rm[c];
                inv_std[c] = T::one() / (rv[c] + eps).sqrt();
            }
        }
        running => {
            mean.fill(T::zero());
            var.fill(T::zero());
            for row in x.chunks_exact(width) {
                for (m, values) in mean.iter_mut().zip(row.chunks_exact(spatial)) {
                    *m += values.iter().copied().sum::<T>();
                }
            }
            let count = batch * spatial;
            let n = T::of(count as f64);
            mean.iter_mut().for_each(|m| *m /= n);
            for row in x.chunks_exact(width) {
                for ((s, &m), values) in var
                    .iter_mut()
                    .zip(mean.iter())
                    .zip(row.chunks_exact(spatial))
                {
                    *s += values.iter().map(|&v| (v - m) * (v - m)).sum::<T>();
                }
            }
            var.iter_mut().for_each(|s| *s /= n);
            for (inv, &v) in inv_std.iter_mut().zip(var.iter()) {
                *inv = T::one() / (v + eps).sqrt();
            }
            if let Some(running) = running
                && training
            {
                let m = T::of(momentum);
                // The running variance is unbiased: σ²·n/(n - 1).
                let unbias = n / T::of(count.saturating_sub(1).max(1) as f64);
                let (mut rm, mut rv) = (running.mean, running.var);
                for c in 0..channels {
                    rm[c] = (T::one() - m) * rm[c] + m * mean[c];
                    rv[c] = (T::one() - m) * rv[c] + m * var[c] * unbias;
                }
                *running.num_batches_tracked += 1;
            }
        }
    }
    let (weight, bias) = (vector(&weight), vector(&bias));
    for ((y_row, x_row), h_row) in y
        .chunks_exact_mut(width)
        .zip(x.chunks_exact(width))
        .zip(x_hat.chunks_exact_mut(width))
    {
        for (c, ((ys, xs), hs)) in y_row
            .chunks_exact_mut(spatial)
            .zip(x_row.chunks_exact(spatial))
            .zip(h_row.chunks_exact_mut(spatial))
            .enumerate()
        {
            let (scale, shift) = (
                weight.map_or(T::one(), |w| w[c]),
                bias.map_or(T::zero(), |b| b[c]),
            );
            for ((y, &x), h) in ys.iter_mut().zip(xs).zip(hs.iter_mut()) {
                *h = (x - mean[c]) * inv_std[c];
                *y = scale * *h + shift;
            }
        }
    }
}

/// `dγ = Σ dy ⊙ x̂` and `dβ = Σ dy` per channel, over the batch and each channel's
/// `spatial` positions, overwriting both.
pub fn batch_norm_backward_params<T: Float>(
    dy: ArrayView2<'_, T>,
    x_hat: ArrayView2<'_, T>,
    spatial: usize,
    dweight: Option<ArrayViewMut1<'_, T>>,
    dbias: Option<ArrayViewMut1<'_, T>>,
) {
    let width = dy.ncols();
    let (dy, x_hat) = (rows(&dy), rows(&x_hat));
    if let Some(mut dw) = dweight {
        let dw = dw
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous gradient"));
        dw.fill(T::zero());
        for (g_row, h_row) in dy.chunks_exact(width).zip(x_hat.chunks_exact(width)) {
            for ((dw, gs), hs) in dw
                .iter_mut()
                .zip(g_row.chunks_exact(spatial))
                .zip(h_row.chunks_exact(spatial))
            {
                *dw += gs.iter().zip(hs).map(|(&g, &h)| g * h).sum::<T>();
            }
        }
    }
    if let Some(mut db) = dbias {
        let db = db
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous gradient"));
        db.fill(T::zero());
        for g_row in dy.chunks_exact(width) {
            for (db, gs) in db.iter_mut().zip(g_row.chunks_exact(spatial)) {
                *db += gs.iter().copied().sum::<T>();
            }
        }
    }
}

/// `dγ = Σ_rows dy ⊙ x̂` and `dβ = Σ_rows dy`, overwriting both (BatchNorm and
/// LayerNorm share this: both scale and shift `x̂` per feature).
pub fn norm_backward_params<T: Float>(
    dy: ArrayView2<'_, T>,
    x_hat: ArrayView2<'_, T>,
    dweight: Option<ArrayViewMut1<'_, T>>,
    dbias: Option<ArrayViewMut1<'_, T>>,
) {
    let features = dy.ncols();
    let (dy, x_hat) = (rows(&dy), rows(&x_hat));
    if let Some(mut dw) = dweight {
        let dw = dw
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous gradient"));
        dw.fill(T::zero());
        for (g_row, h_row) in dy.chunks_exact(features).zip(x_hat.chunks_exact(features)) {
            for ((dw, &g), &h) in dw.iter_mut().zip(g_row).zip(h_row) {
                *dw += g * h;
            }
        }
    }
    if let Some(mut db) = dbias {
        let db = db
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous gradient"));
        db.fill(T::zero());
        for g_row in dy.chunks_exact(features) {
            for (db, &g) in db.iter_mut().zip(g_row) {
                *db += g;
            }
        }
    }
}

/// `dx` (see the module docs): through the batch statistics when `batch_statistics`,
/// else through the running ones; `n = batch·spatial` values per channel. Uses rows 1
/// and 2 of `stats` as scratch.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward_input<T: Float>(
    dy: ArrayView2<'_, T>,
    x_hat: ArrayView2<'_, T>,
    spatial: usize,
    weight: Option<ArrayView1<'_, T>>,
    batch_statistics: bool,
    mut stats: ArrayViewMut2<'_, T>,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    let (batch, width) = dy.dim();
    let channels = width / spatial;
    let (dy, x_hat, dx) = (rows(&dy), rows(&x_hat), rows_mut(&mut dx));
    let stats = rows_mut(&mut stats);
    let (inv_std, rest) = stats.split_at_mut(channels);
    let (sum_dy, sum_dy_h) = rest.split_at_mut(channels);
    let weight = vector(&weight);
    let gamma = |c: usize| weight.map_or(T::one(), |w| w[c]);
    if !batch_statistics {
        for (dx_row, g_row) in dx.chunks_exact_mut(width).zip(dy.chunks_exact(width)) {
            for (c, (dxs, gs)) in dx_row
                .chunks_exact_mut(spatial)
                .zip(g_row.chunks_exact(spatial))
                .enumerate()
            {
                let scale = gamma(c) * inv_std[c];
                for (dx, &g) in dxs.iter_mut().zip(gs) {
                    write.store(dx, scale * g);
                }
            }
        }
        return;
    }
    sum_dy.fill(T::zero());
    sum_dy_h.fill(T::zero());
    for (g_row, h_row) in dy.chunks_exact(width).zip(x_hat.chunks_exact(width)) {
        for (c, (gs, hs)) in g_row
            .chunks_exact(spatial)
            .zip(h_row.chunks_exact(spatial))
            .enumerate()
        {
            for (&g, &h) in gs.iter().zip(hs) {
                sum_dy[c] += g;
                sum_dy_h[c] += g * h;
            }
        }
    }
    let n = T::of((batch * spatial) as f64);
    for ((dx_row, g_row), h_row) in dx
        .chunks_exact_mut(width)
        .zip(dy.chunks_exact(width))
        .zip(x_hat.chunks_exact(width))
    {
        for (c, ((dxs, gs), hs)) in dx_row
            .chunks_exact_mut(spatial)
            .zip(g_row.chunks_exact(spatial))
            .zip(h_row.chunks_exact(spatial))
            .enumerate()
        {
            let scale = gamma(c) * inv_std[c] / n;
            for ((dx, &g), &h) in dxs.iter_mut().zip(gs).zip(hs) {
                write.store(dx, scale * (n * g - sum_dy[c] - h * sum_dy_h[c]));
            }
        }
    }
}
