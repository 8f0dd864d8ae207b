//! Softmax and LogSoftmax over each row (the features), compiled. With `s = softmax(x)`,
//! `s_i = e^(x_i) / Σ_j e^(x_j)` and `∂s_i/∂x_k = s_i(δ_ik - s_k)`, so
//!
//! ```text
//! Softmax      y = s              dx = y ⊙ (dy - Σ_row(dy ⊙ y))
//! LogSoftmax   y = log s          dx = dy - e^y ⊙ Σ_row dy          (∂y_i/∂x_k = δ_ik - s_k)
//! ```
//!
//! Both subtract the row maximum before exponentiating; both backward passes read only
//! the output the forward pass kept.
//!
//! The same layers: `model!`'s rules in `nnscratch-macros/src/layers/softmax.rs`, the
//! dynamic ops in `tensor/softmax.rs`, the layers `nn::Softmax` and `nn::LogSoftmax`.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use super::Write;
use crate::Float;

/// `y = softmax(x)` row by row.
pub fn softmax_forward<T: Float>(x: ArrayView2<'_, T>, mut y: ArrayViewMut2<'_, T>) {
    for (x, mut y) in x.rows().into_iter().zip(y.rows_mut()) {
        let max = x.iter().copied().fold(T::neg_infinity(), T::max);
        let mut sum = T::zero();
        Zip::from(&mut y).and(&x).for_each(|y, &x| {
            *y = (x - max).exp();
            sum += *y;
        });
        y.mapv_inplace(|e| e / sum);
    }
}

/// `dx = y ⊙ (dy - Σ_row(dy ⊙ y))`.
pub fn softmax_backward<T: Float>(
    y: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    for ((y, dy), mut dx) in y.rows().into_iter().zip(dy.rows()).zip(dx.rows_mut()) {
        let dot = Zip::from(&y)
            .and(&dy)
            .fold(T::zero(), |acc, &y, &d| acc + y * d);
        Zip::from(&mut dx)
            .and(&y)
            .and(&dy)
            .for_each(|dx, &y, &dy| write.store(dx, y * (dy - dot)));
    }
}

/// `y = log softmax(x) = x - max - log Σ e^(x - max)` row by row.
pub fn log_softmax_forward<T: Float>(x: ArrayView2<'_, T>, mut y: ArrayViewMut2<'_, T>) {
    for (x, mut y) in x.rows().into_iter().zip(y.rows_mut()) {
        let max = x.iter().copied().fold(T::neg_infinity(), T::max);
        let log_sum = x.iter().map(|&v| (v - max).exp()).sum::<T>().ln();
        Zip::from(&mut y)
            .and(&x)
            .for_each(|y, &x| *y = x - max - log_sum);
    }
}

/// `dx = dy - e^y ⊙ Σ_row dy`.
pub fn log_softmax_backward<T: Float>(
    y: ArrayView2<'_, T>,
    dy: ArrayView2<'_, T>,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    for ((y, dy), mut dx) in y.rows().into_iter().zip(dy.rows()).zip(dx.rows_mut()) {
        let total = dy.sum();
        Zip::from(&mut dx)
            .and(&y)
            .and(&dy)
            .for_each(|dx, &y, &dy| write.store(dx, dy - y.exp() * total));
    }
}
