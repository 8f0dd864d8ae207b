//! Losses, with PyTorch's reductions: `Mean` (the default) divides the sum by `n`, the
//! number of elements for value targets and the number of rows for class targets;
//! `Sum` does not.
//!
//! Value targets `t` (same shape as `y`), each a sum of a pointwise loss `ℓ(y, t)`, with
//! `d = y - t`:
//!
//! ```text
//! MSELoss            ℓ = d²                                    ∂ℓ/∂y = 2d
//! L1Loss             ℓ = |d|                                   ∂ℓ/∂y = sign(d)
//! SmoothL1Loss(β)    ℓ = d²/(2β) if |d| < β, else |d| - β/2     ∂ℓ/∂y = d/β, else sign(d)
//! HuberLoss(δ)       ℓ = d²/2 if |d| < δ, else δ(|d| - δ/2)     ∂ℓ/∂y = d, else δ·sign(d)
//! BCEWithLogitsLoss  ℓ = max(y, 0) - y·t + ln(1 + e^-|y|)      ∂ℓ/∂y = σ(y) - t
//! ```
//!
//! (`SmoothL1Loss` with `β = 0` is `L1Loss`, as in PyTorch; `HuberLoss(δ)` is
//! `δ·SmoothL1Loss(β = δ)`. The binary cross-entropy takes logits: the form above is
//! `-t·ln σ(y) - (1 - t)·ln(1 - σ(y))` rewritten so that no exponential overflows.)
//!
//! Class targets, one index per row:
//!
//! ```text
//! CrossEntropyLoss  L = -Σ_i log softmax(z_i)[t_i]   dz_i = softmax(z_i) - onehot(t_i)
//! NLLLoss           L = -Σ_i y_i[t_i]                dy_i = -onehot(t_i)   (y = log-probabilities)
//! ```
//!
//! each divided by `N` rows under `Mean`. The cross-entropy folds the softmax in: its
//! gradient is the famous "prediction minus truth", with no division by a probability
//! that could underflow. Row maxima are subtracted before exponentiating so nothing
//! overflows. The callers check shapes and class indices; these kernels assume them.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::Float;

/// How a loss combines its per-element (or per-row) terms, as PyTorch's `reduction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean: `reduction="mean"`, PyTorch's default.
    #[default]
    Mean,
    /// The sum: `reduction="sum"`.
    Sum,
}

impl Reduction {
    /// What the sum of `n` terms is multiplied by: `1/n` or `1`.
    pub fn scale<T: Float>(self, n: usize) -> T {
        match self {
            Reduction::Mean => T::one() / T::of(n as f64),
            Reduction::Sum => T::one(),
        }
    }

    /// PyTorch's spelling: `"mean"`, `"sum"`.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
        }
    }
}

/// A loss against value targets of the output's shape: `ℓ` and `∂ℓ/∂y` per element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueLoss {
    /// `(y - t)²`.
    Mse,
    /// `|y - t|`.
    L1,
    /// Quadratic below `beta`, linear above (PyTorch's default `beta = 1`).
    SmoothL1 {
        /// Where the quadratic part ends, `>= 0`.
        beta: f64,
    },
    /// Quadratic below `delta`, linear above (PyTorch's default `delta = 1`).
    Huber {
        /// Where the quadratic part ends, `> 0`.
        delta: f64,
    },
    /// Binary cross-entropy of logits `y` against probabilities `t`.
    BceWithLogits,
}

impl ValueLoss {
    /// PyTorch's functional name: `mse_loss`, `binary_cross_entropy_with_logits`.
    pub fn name(self) -> &'static str {
        match self {
            ValueLoss::Mse => "mse_loss",
            ValueLoss::L1 => "l1_loss",
            ValueLoss::SmoothL1 { .. } => "smooth_l1_loss",
            ValueLoss::Huber { .. } => "huber_loss",
            ValueLoss::BceWithLogits => "binary_cross_entropy_with_logits",
        }
    }

    /// `ℓ(y, t)`.
    #[inline]
    pub fn pointwise<T: Float>(self, y: T, t: T) -> T {
        let d = y - t;
        match self {
            ValueLoss::Mse => d * d,
            ValueLoss::L1 => d.abs(),
            ValueLoss::SmoothL1 { beta } => {
                let beta = T::of(beta);
                if d.abs() < beta {
                    T::of(0.5) * d * d / beta
                } else {
                    d.abs() - T::of(0.5) * beta
                }
            }
            ValueLoss::Huber { delta } => {
                let delta = T::of(delta);
                if d.abs() < delta {
                    T::of(0.5) * d * d
                } else {
                    delta * (d.abs() - T::of(0.5) * delta)
                }
            }
            ValueLoss::BceWithLogits => y.max(T::zero()) - y * t + (-y.abs()).exp().ln_1p(),
        }
    }

    /// `∂ℓ/∂y` at `(y, t)`.
    #[inline]
    pub fn slope<T: Float>(self, y: T, t: T) -> T {
        let d = y - t;
        match self {
            ValueLoss::Mse => T::of(2.0) * d,
            ValueLoss::L1 => sign(d),
            ValueLoss::SmoothL1 { beta } => {
                let beta = T::of(beta);
                if d.abs() < beta { d / beta } else { sign(d) }
            }
            ValueLoss::Huber { delta } => {
                let delta = T::of(delta);
                if d.abs() < delta { d } else { delta * sign(d) }
            }
            ValueLoss::BceWithLogits => T::one() / (T::one() + (-y).exp()) - t,
        }
    }

    /// `∂ℓ/∂t` at `(y, t)` (the dynamic engine lets gradients reach a target too).
    #[inline]
    pub fn target_slope<T: Float>(self, y: T, t: T) -> T {
        match self {
            ValueLoss::BceWithLogits => -y,
            _ => -self.slope(y, t),
        }
    }

    /// The derivative's formula, for pictures: `2(y - t)/n`.
    pub fn formula(self, reduction: Reduction) -> String {
        let slope = match self {
            ValueLoss::Mse => "2(y - t)",
            ValueLoss::L1 => "sign(y - t)",
            ValueLoss::SmoothL1 { .. } => "clamp((y - t)/β, ±1)",
            ValueLoss::Huber { .. } => "clamp(y - t, ±δ)",
            ValueLoss::BceWithLogits => "(σ(y) - t)",
        };
        match reduction {
            Reduction::Mean => format!("{slope}/n"),
            Reduction::Sum => slope.to_string(),
        }
    }
}

/// `sign(d)`, `0` at `0` (PyTorch's `sign`).
#[inline]
fn sign<T: Float>(d: T) -> T {
    if d > T::zero() {
        T::one()
    } else if d < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

/// `reduce Σ ℓ(y, t)`.
pub fn value_loss<T: Float>(
    loss: ValueLoss,
    reduction: Reduction,
    y: ArrayView2<'_, T>,
    t: ArrayView2<'_, T>,
) -> T {
    let scale: T = reduction.scale(y.len());
    let total = match loss {
        // One loop per kind, so that the per-element code has no branch on the kind.
        ValueLoss::Mse => sum(&y, &t, |y, t| ValueLoss::Mse.pointwise(y, t)),
        ValueLoss::L1 => sum(&y, &t, |y, t| ValueLoss::L1.pointwise(y, t)),
        ValueLoss::BceWithLogits => sum(&y, &t, |y, t| ValueLoss::BceWithLogits.pointwise(y, t)),
        other => sum(&y, &t, |y, t| other.pointwise(y, t)),
    };
    total * scale
}

/// `Σ f(y, t)` in row-major order (row-major slices directly: `Zip`'s layout checks cost
/// more than the sum for the few values of a small model's batch).
fn sum<T: Float>(y: &ArrayView2<'_, T>, t: &ArrayView2<'_, T>, f: impl Fn(T, T) -> T) -> T {
    if y.dim() == t.dim()
        && let (Some(y), Some(t)) = (y.as_slice(), t.as_slice())
    {
        return y
            .iter()
            .zip(t)
            .fold(T::zero(), |acc, (&y, &t)| acc + f(y, t));
    }
    Zip::from(y)
        .and(t)
        .fold(T::zero(), |acc, &y, &t| acc + f(y, t))
}

/// The loss, and `dy = scale·∂ℓ/∂y` written into `dy`.
pub fn value_loss_backward<T: Float>(
    loss: ValueLoss,
    reduction: Reduction,
    y: ArrayView2<'_, T>,
    t: ArrayView2<'_, T>,
    dy: ArrayViewMut2<'_, T>,
) -> T {
    let scale: T = reduction.scale(y.len());
    let mut dy = dy;
    let same = dy.dim() == y.dim() && y.dim() == t.dim();
    match (dy.as_slice_mut(), y.as_slice(), t.as_slice()) {
        (Some(dy), Some(y), Some(t)) if same => {
            for ((dy, &y), &t) in dy.iter_mut().zip(y).zip(t) {
                *dy = loss.slope(y, t) * scale;
            }
        }
        _ => Zip::from(dy)
            .and(&y)
            .and(&t)
            .for_each(|dy, &y, &t| *dy = loss.slope(y, t) * scale),
    }
    value_loss(loss, reduction, y, t)
}

/// `(1/n) Σ (y - t)²`.
pub fn mse_loss<T: Float>(y: ArrayView2<'_, T>, t: ArrayView2<'_, T>) -> T {
    value_loss(ValueLoss::Mse, Reduction::Mean, y, t)
}

/// The loss, and `dy = 2(y - t)/n` written into `dy`.
pub fn mse_loss_backward<T: Float>(
    y: ArrayView2<'_, T>,
    t: ArrayView2<'_, T>,
    dy: ArrayViewMut2<'_, T>,
) -> T {
    value_loss_backward(ValueLoss::Mse, Reduction::Mean, y, t, dy)
}

/// `-reduce_i log softmax(z_i)[t_i]`, computed as `log Σ_k e^(z_ik - m_i) - (z_it - m_i)`.
pub fn cross_entropy<T: Float>(z: ArrayView2<'_, T>, targets: &[usize], reduction: Reduction) -> T {
    let mut total = T::zero();
    for (row, &target) in z.rows().into_iter().zip(targets) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        let log_sum = row.iter().map(|&v| (v - max).exp()).sum::<T>().ln();
        total += log_sum - (row[target] - max);
    }
    total * reduction.scale(targets.len())
}

/// The loss, and `dz = (softmax(z) - onehot(t))·scale` written into `dz`.
pub fn cross_entropy_backward<T: Float>(
    z: ArrayView2<'_, T>,
    targets: &[usize],
    reduction: Reduction,
    mut dz: ArrayViewMut2<'_, T>,
) -> T {
    let scale: T = reduction.scale(targets.len());
    let mut total = T::zero();
    for ((row, mut grad), &target) in z.rows().into_iter().zip(dz.rows_mut()).zip(targets) {
        let max = row.iter().copied().fold(T::neg_infinity(), T::max);
        let mut sum = T::zero();
        for (g, &v) in grad.iter_mut().zip(row) {
            *g = (v - max).exp();
            sum += *g;
        }
        total += sum.ln() - (row[target] - max);
        grad.mapv_inplace(|e| e / sum * scale);
        grad[target] -= scale;
    }
    total * scale
}

/// `-reduce_i y_i[t_i]`: the negative log-likelihood of log-probabilities `y`
/// (`LogSoftmax` before it makes this the cross-entropy).
pub fn nll_loss<T: Float>(y: ArrayView2<'_, T>, targets: &[usize], reduction: Reduction) -> T {
    let total = y
        .rows()
        .into_iter()
        .zip(targets)
        .fold(T::zero(), |acc, (row, &t)| acc - row[t]);
    total * reduction.scale(targets.len())
}

/// The loss, and `dy = -onehot(t)·scale` written into `dy`.
pub fn nll_loss_backward<T: Float>(
    y: ArrayView2<'_, T>,
    targets: &[usize],
    reduction: Reduction,
    mut dy: ArrayViewMut2<'_, T>,
) -> T {
    let scale: T = reduction.scale(targets.len());
    dy.fill(T::zero());
    for (mut row, &t) in dy.rows_mut().into_iter().zip(targets) {
        row[t] = -scale;
    }
    nll_loss(y, targets, reduction)
}
