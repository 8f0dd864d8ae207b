//! Losses, mean-reduced as PyTorch's defaults:
//!
//! ```text
//! MSELoss           L = (1/n) Σ (y - t)²                   dy = 2(y - t)/n     (n = all elements)
//! CrossEntropyLoss  L = -(1/N) Σ_i log softmax(z_i)[t_i]   dz_i = (softmax(z_i) - onehot(t_i))/N
//! NLLLoss           L = -(1/N) Σ_i y_i[t_i]                dy_i = -onehot(t_i)/N  (y = log-probabilities)
//! ```
//!
//! The cross-entropy folds the softmax in: its gradient is the famous "prediction minus
//! truth", with no division by a probability that could underflow. Row maxima are
//! subtracted before exponentiating so nothing overflows. The callers check shapes and
//! class indices; these kernels assume them.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::Float;

/// `(1/n) Σ (y - t)²`.
pub fn mse_loss<T: Float>(y: ArrayView2<'_, T>, t: ArrayView2<'_, T>) -> T {
    let n = T::of(y.len() as f64);
    Zip::from(&y)
        .and(&t)
        .fold(T::zero(), |acc, &y, &t| acc + (y - t) * (y - t))
        / n
}

/// The loss, and `dy = 2(y - t)/n` written into `dy`.
pub fn mse_loss_backward<T: Float>(
    y: ArrayView2<'_, T>,
    t: ArrayView2<'_, T>,
    dy: ArrayViewMut2<'_, T>,
) -> T {
    let scale = T::of(2.0) / T::of(y.len() as f64);
    Zip::from(dy)
        .and(&y)
        .and(&t)
        .for_each(|dy, &y, &t| *dy = (y - t) * scale);
    mse_loss(y, t)
}

/// `-(1/N) Σ_i log softmax(z_i)[t_i]`, computed as `log Σ_k e^(z_ik - m_i) - (z_it - m_i)`.
pub fn cross_entropy<T: Float>(z: ArrayView2<'_, T>, targets: &[usize]) -> T {
    let mut total = T::zero();
    for (row, &target) in z.rows().into_iter().zip(targets) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        let log_sum = row.iter().map(|&v| (v - max).exp()).sum::<T>().ln();
        total += log_sum - (row[target] - max);
    }
    total / T::of(targets.len() as f64)
}

/// The loss, and `dz = (softmax(z) - onehot(t))/N` written into `dz`.
pub fn cross_entropy_backward<T: Float>(
    z: ArrayView2<'_, T>,
    targets: &[usize],
    mut dz: ArrayViewMut2<'_, T>,
) -> T {
    let batch = T::of(targets.len() as f64);
    let mut total = T::zero();
    for ((row, mut grad), &target) in z.rows().into_iter().zip(dz.rows_mut()).zip(targets) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        let mut sum = T::zero();
        for (g, &v) in grad.iter_mut().zip(row) {
            *g = (v - max).exp();
            sum += *g;
        }
        total += sum.ln() - (row[target] - max);
        grad.mapv_inplace(|e| e / sum / batch);
        grad[target] -= T::one() / batch;
    }
    total / batch
}

/// `-(1/N) Σ_i y_i[t_i]`: the negative log-likelihood of log-probabilities `y`
/// (`LogSoftmax` before it makes this the cross-entropy).
pub fn nll_loss<T: Float>(y: ArrayView2<'_, T>, targets: &[usize]) -> T {
    let total = y
        .rows()
        .into_iter()
        .zip(targets)
        .fold(T::zero(), |acc, (row, &t)| acc - row[t]);
    total / T::of(targets.len() as f64)
}

/// The loss, and `dy = -onehot(t)/N` written into `dy`.
pub fn nll_loss_backward<T: Float>(
    y: ArrayView2<'_, T>,
    targets: &[usize],
    mut dy: ArrayViewMut2<'_, T>,
) -> T {
    let scale = T::one() / T::of(targets.len() as f64);
    dy.fill(T::zero());
    for (mut row, &t) in dy.rows_mut().into_iter().zip(targets) {
        row[t] = -scale;
    }
    nll_loss(y, targets)
}
