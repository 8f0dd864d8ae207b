//! `softmax` and `log_softmax` along the last axis (each row of a matrix).
//!
//! With `s = softmax(z)`, `s_i = e^(z_i) / Σ_j e^(z_j)` and `∂s_i/∂z_k = s_i(δ_ik - s_k)`, so
//!
//! ```text
//! softmax:      dz = s ⊙ (ds - Σ_k ds_k s_k)
//! log_softmax:  dz = dy - s · Σ_k dy_k          (y = log s,  ∂y_i/∂z_k = δ_ik - s_k)
//! ```
//!
//! Both subtract the row maximum before exponentiating, which changes nothing
//! mathematically and keeps `e^z` from overflowing.

use std::cell::Ref;

use ndarray::{ArrayD, Axis, Zip};

use super::{Function, Partial, Tensor};
use crate::Float;

/// Applies `f` to every lane (row) along the last axis; a 0-D value is one lane of one.
fn map_rows<T: Float>(
    value: &ArrayD<T>,
    mut f: impl FnMut(ndarray::ArrayViewMut1<'_, T>),
) -> ArrayD<T> {
    let mut out = value.clone();
    if out.ndim() == 0 {
        let mut as_row = out
            .into_shape_with_order(ndarray::IxDyn(&[1]))
            .unwrap_or_else(|_| unreachable!("a 0-D array has one element"));
        f(as_row
            .view_mut()
            .into_dimensionality()
            .unwrap_or_else(|_| unreachable!("1-D")));
        return as_row
            .into_shape_with_order(ndarray::IxDyn(&[]))
            .unwrap_or_else(|_| unreachable!("one element"));
    }
    let last = Axis(out.ndim() - 1);
    for row in out.lanes_mut(last) {
        f(row);
    }
    out
}

/// `log_softmax` of one row, in place: `z - max - ln Σ e^(z - max)`.
pub(crate) fn log_softmax_row<T: Float>(mut row: ndarray::ArrayViewMut1<'_, T>) {
    let max = row.iter().copied().fold(T::neg_infinity(), T::max);
    let log_sum = row.iter().map(|&z| (z - max).exp()).sum::<T>().ln();
    row.mapv_inplace(|z| z - max - log_sum);
}

/// `softmax` of one row, in place.
pub(crate) fn softmax_row<T: Float>(mut row: ndarray::ArrayViewMut1<'_, T>) {
    let max = row.iter().copied().fold(T::neg_infinity(), T::max);
    row.mapv_inplace(|z| (z - max).exp());
    let sum = row.sum();
    row.mapv_inplace(|e| e / sum);
}

/// Row sums along the last axis, kept as a size-1 axis so they broadcast back.
fn row_sums<T: Float>(value: &ArrayD<T>) -> ArrayD<T> {
    if value.ndim() == 0 {
        return value.clone();
    }
    let last = Axis(value.ndim() - 1);
    value.sum_axis(last).insert_axis(last)
}

struct SoftmaxBackward;

impl<T: Float> Function<T> for SoftmaxBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        map_rows(inputs[0], softmax_row)
    }
    fn name(&self) -> String {
        "softmax".into()
    }
    // dz = s ⊙ (ds - Σ_k ds_k s_k)
    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], s: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        let dot = row_sums(&(g * s));
        vec![s * &(g - &dot)]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], s: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::with_value(
            "s_i(δ_ik - s_k); diagonal s(1 - s)",
            s.mapv(|s| s * (T::one() - s)),
        )
    }
}

struct LogSoftmaxBackward;

impl<T: Float> Function<T> for LogSoftmaxBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        map_rows(inputs[0], log_softmax_row)
    }
    fn name(&self) -> String {
        "log_softmax".into()
    }
    // dz = dy - softmax(z) · Σ_k dy_k, with softmax(z) = e^y
    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], y: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        let total = row_sums(g);
        let mut grad = g.clone();
        Zip::from(&mut grad)
            .and(y)
            .and_broadcast(&total)
            .for_each(|grad, &y, &total| *grad -= y.exp() * total);
        vec![grad]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], y: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::with_value("δ_ik - s_k; diagonal 1 - s", y.mapv(|y| T::one() - y.exp()))
    }
}

impl<T: Float> Tensor<T> {
    /// `softmax` along the last axis: each row becomes positive numbers summing to 1.
    pub fn softmax(&self) -> Tensor<T> {
        let data = map_rows(&self.data(), softmax_row);
        Tensor::from_op(data, SoftmaxBackward, vec![self.clone()])
    }

    /// `log(softmax(x))` along the last axis, computed stably.
    pub fn log_softmax(&self) -> Tensor<T> {
        let data = map_rows(&self.data(), log_softmax_row);
        Tensor::from_op(data, LogSoftmaxBackward, vec![self.clone()])
    }
}
