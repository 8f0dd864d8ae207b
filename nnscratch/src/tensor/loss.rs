//! The losses, each one fused node with its closed-form gradient.
//!
//! ```text
//! mse_loss(y, t)      = (1/n) Σ (y - t)²                 dy = 2(y - t)/n,  dt = -dy
//! cross_entropy(z, c) = -(1/N) Σ_rows log softmax(z)[c]  dz = (softmax(z) - onehot(c)) / N
//! nll_loss(y, c)      = -(1/N) Σ_rows y[c]               dy = -onehot(c) / N
//! ```
//!
//! Both take the mean, PyTorch's default `reduction="mean"`. `cross_entropy` takes raw
//! scores (logits) and integer class indices, with the softmax folded in, exactly like
//! `torch.nn.functional.cross_entropy`.

use std::cell::Ref;

use ndarray::{ArrayD, Axis, IxDyn};

use super::softmax::{log_softmax_row, softmax_row};
use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

struct MseBackward;

impl<T: Float> Function<T> for MseBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let n = T::of(inputs[0].len() as f64);
        let sum_sq: T = ndarray::Zip::from(inputs[0])
            .and(inputs[1])
            .fold(T::zero(), |acc, &y, &t| acc + (y - t) * (y - t));
        ArrayD::from_elem(IxDyn(&[]), sum_sq / n)
    }
    fn name(&self) -> String {
        "mse_loss".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let g = g.iter().copied().next().unwrap_or_else(T::zero);
        let grad_y = self.local(&inputs[0], &inputs[1]).mapv(|d| d * g);
        let grad_t = grad_y.mapv(|d| -d);
        vec![grad_y, grad_t]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        let local = self.local(&inputs[0], &inputs[1]);
        if index == 0 {
            Partial::with_value("2(y - t)/n", local)
        } else {
            Partial::with_value("-2(y - t)/n", local.mapv(|d| -d))
        }
    }
}

impl MseBackward {
    /// `∂loss/∂y = 2(y - t)/n`.
    fn local<T: Float>(&self, y: &ArrayD<T>, t: &ArrayD<T>) -> ArrayD<T> {
        let scale = T::of(2.0) / T::of(y.len() as f64);
        (y - t).mapv(|d| d * scale)
    }
}

/// Cross-entropy of logits `[batch, classes]` against class indices.
struct CrossEntropyBackward {
    targets: Vec<usize>,
}

impl CrossEntropyBackward {
    /// `∂loss/∂z = (softmax(z) - onehot(targets)) / batch`, rows along the last axis.
    fn local<T: Float>(&self, logits: &ArrayD<T>) -> ArrayD<T> {
        let mut grad = as_rows(logits);
        let batch = T::of(self.targets.len() as f64);
        for (mut row, &target) in grad.axis_iter_mut(Axis(0)).zip(&self.targets) {
            softmax_row(row.view_mut());
            row[target] -= T::one();
            row.mapv_inplace(|v| v / batch);
        }
        grad.into_shape_with_order(logits.raw_dim())
            .unwrap_or_else(|_| unreachable!("same element count"))
    }
}

impl<T: Float> Function<T> for CrossEntropyBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let mut log_probs = as_rows(inputs[0]);
        let mut total = T::zero();
        for (mut row, &target) in log_probs.axis_iter_mut(Axis(0)).zip(&self.targets) {
            log_softmax_row(row.view_mut());
            total -= row[target];
        }
        ArrayD::from_elem(IxDyn(&[]), total / T::of(self.targets.len() as f64))
    }
    fn name(&self) -> String {
        "cross_entropy".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let g = g.iter().copied().next().unwrap_or_else(T::zero);
        vec![self.local(&inputs[0]).mapv(|d| d * g)]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::with_value("(softmax(z) - onehot(t))/N", self.local(&inputs[0]))
    }
}

/// Logits as a 2-D `[rows, classes]` array (a vector is one row).
fn as_rows<T: Float>(logits: &ArrayD<T>) -> ndarray::Array2<T> {
    let classes = logits.shape().last().copied().unwrap_or(1);
    let rows = logits.len() / classes.max(1);
    logits
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, classes))
        .unwrap_or_else(|_| unreachable!("checked to be 1-D or 2-D"))
}

/// Negative log-likelihood of log-probabilities `[batch, classes]` against class indices.
struct NllBackward {
    targets: Vec<usize>,
}

impl NllBackward {
    /// `∂loss/∂y = -onehot(targets) / batch`.
    fn local<T: Float>(&self, y: &ArrayD<T>) -> ArrayD<T> {
        let mut grad = as_rows(y);
        grad.fill(T::zero());
        let scale = T::one() / T::of(self.targets.len() as f64);
        for (mut row, &target) in grad.axis_iter_mut(Axis(0)).zip(&self.targets) {
            row[target] = -scale;
        }
        grad.into_shape_with_order(y.raw_dim())
            .unwrap_or_else(|_| unreachable!("same element count"))
    }
}

impl<T: Float> Function<T> for NllBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let rows = as_rows(inputs[0]);
        let total = rows
            .axis_iter(Axis(0))
            .zip(&self.targets)
            .fold(T::zero(), |acc, (row, &t)| acc - row[t]);
        ArrayD::from_elem(IxDyn(&[]), total / T::of(self.targets.len() as f64))
    }
    fn name(&self) -> String {
        "nll_loss".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let g = g.iter().copied().next().unwrap_or_else(T::zero);
        vec![self.local(&inputs[0]).mapv(|v| v * g)]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::with_value("-onehot(c)/N", self.local(&inputs[0]))
    }
}

/// Checks scores `[batch, classes]` or `[classes]` against one class index per row;
/// returns the number of rows.
fn check_class_targets(op: &'static str, shape: &[usize], targets: &[usize]) -> Result<usize> {
    let rows = match shape.len() {
        1 => 1,
        2 => shape[0],
        _ => {
            return Err(Error::BadShape {
                op: op.into(),
                expected: "scores of shape [batch, classes] or [classes]".into(),
                found: shape.to_vec(),
            });
        }
    };
    let classes = shape[shape.len() - 1];
    if rows == 0 || classes == 0 {
        return Err(Error::BadShape {
            op: op.into(),
            expected: "at least one row and one class".into(),
            found: shape.to_vec(),
        });
    }
    if targets.len() != rows {
        return Err(Error::BadShape {
            op: op.into(),
            expected: format!("one target per row: {} targets were given", targets.len()),
            found: shape.to_vec(),
        });
    }
    crate::error::check_class_indices(op, targets, classes)?;
    Ok(rows)
}

impl<T: Float> Tensor<T> {
    /// Mean squared error against `target` of the same shape (`nn.MSELoss()`).
    pub fn mse_loss(&self, target: &Tensor<T>) -> Result<Tensor<T>> {
        let (lhs, rhs) = (self.shape(), target.shape());
        if lhs != rhs {
            return Err(Error::ShapeMismatch {
                op: "mse_loss",
                lhs,
                rhs,
                expected: "prediction and target of the same shape".into(),
            });
        }
        if lhs.iter().product::<usize>() == 0 {
            return Err(Error::BadShape {
                op: "mse_loss".into(),
                expected: "at least one element".into(),
                found: lhs,
            });
        }
        let n = T::of(self.data().len() as f64);
        let sum_sq: T = ndarray::Zip::from(&*self.data())
            .and(&*target.data())
            .fold(T::zero(), |acc, &y, &t| acc + (y - t) * (y - t));
        let data = ArrayD::from_elem(IxDyn(&[]), sum_sq / n);
        Ok(Tensor::from_op(
            data,
            MseBackward,
            vec![self.clone(), target.clone()],
        ))
    }

    /// Negative log-likelihood of log-probabilities (`nn.NLLLoss()`, after a
    /// `log_softmax`): `[batch, classes]` with one target per row, or `[classes]` with
    /// one target. `log_softmax` then `nll_loss` is `cross_entropy`.
    pub fn nll_loss(&self, targets: &[usize]) -> Result<Tensor<T>> {
        check_class_targets("nll_loss", &self.shape(), targets)?;
        let function = NllBackward {
            targets: targets.to_vec(),
        };
        let data = function.forward(&[&self.data()]);
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }

    /// Cross-entropy of logits against class indices (`nn.CrossEntropyLoss()`): logits
    /// `[batch, classes]` with one target per row, or `[classes]` with one target.
    pub fn cross_entropy(&self, targets: &[usize]) -> Result<Tensor<T>> {
        let rows = check_class_targets("cross_entropy", &self.shape(), targets)?;
        let mut log_probs = as_rows(&self.data());
        let mut total = T::zero();
        for (mut row, &target) in log_probs.axis_iter_mut(Axis(0)).zip(targets) {
            log_softmax_row(row.view_mut());
            total -= row[target];
        }
        let data = ArrayD::from_elem(IxDyn(&[]), total / T::of(rows as f64));
        let function = CrossEntropyBackward {
            targets: targets.to_vec(),
        };
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }
}
