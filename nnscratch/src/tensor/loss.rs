//! The losses, each one fused node with its closed-form gradient.
//!
//! ```text
//! mse_loss(y, t)      = (1/n) Σ (y - t)²                 dy = 2(y - t)/n,  dt = -dy
//! l1_loss, smooth_l1_loss, huber_loss, binary_cross_entropy_with_logits: the same shape,
//!                       (1/n) Σ ℓ(y, t), the pointwise ℓ of `kernels/loss.rs`
//! cross_entropy(z, c) = -(1/N) Σ_rows log softmax(z)[c]  dz = (softmax(z) - onehot(c)) / N
//! nll_loss(y, c)      = -(1/N) Σ_rows y[c]               dy = -onehot(c) / N
//! ```
//!
//! All take the mean, PyTorch's default `reduction="mean"`; `value_loss`,
//! `cross_entropy_reduced` and `nll_loss_reduced` also take `Reduction::Sum`. `cross_entropy` takes raw
//! scores (logits) and integer class indices, with the softmax folded in, exactly like
//! `torch.nn.functional.cross_entropy`.

use std::cell::Ref;

use ndarray::{ArrayD, Axis, IxDyn};

use super::softmax::{log_softmax_row, softmax_row};
use super::{Function, Partial, Tensor};
use crate::kernels::{Reduction, ValueLoss};
use crate::{Error, Float, Result};

/// A loss against value targets (`kernels::ValueLoss`: MSE, L1, smooth L1, Huber,
/// binary cross-entropy with logits): the sum of a pointwise `ℓ(y, t)`, reduced.
struct ValueLossBackward {
    loss: ValueLoss,
    reduction: Reduction,
}

impl<T: Float> Function<T> for ValueLossBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let total: T = ndarray::Zip::from(inputs[0])
            .and(inputs[1])
            .fold(T::zero(), |acc, &y, &t| acc + self.loss.pointwise(y, t));
        ArrayD::from_elem(IxDyn(&[]), total * self.reduction.scale(inputs[0].len()))
    }
    fn name(&self) -> String {
        self.loss.name().into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let g = g.iter().copied().next().unwrap_or_else(T::zero);
        vec![
            self.local(&inputs[0], &inputs[1], 0).mapv(|d| d * g),
            self.local(&inputs[0], &inputs[1], 1).mapv(|d| d * g),
        ]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        let formula = self.loss.formula(self.reduction);
        let formula = if index == 0 {
            formula
        } else if self.loss == ValueLoss::BceWithLogits {
            match self.reduction {
                Reduction::Mean => "-y/n".into(),
                Reduction::Sum => "-y".into(),
            }
        } else {
            format!("-{formula}")
        };
        Partial::with_value(formula, self.local(&inputs[0], &inputs[1], index))
    }
}

impl ValueLossBackward {
    /// `∂loss/∂y = scale·ℓ'(y, t)` (`index` 0) or `∂loss/∂t` (`index` 1).
    fn local<T: Float>(&self, y: &ArrayD<T>, t: &ArrayD<T>, index: usize) -> ArrayD<T> {
        let scale: T = self.reduction.scale(y.len());
        let mut out = y.clone();
        ndarray::Zip::from(&mut out).and(t).for_each(|y, &t| {
            *y = scale
                * if index == 0 {
                    self.loss.slope(*y, t)
                } else {
                    self.loss.target_slope(*y, t)
                };
        });
        out
    }
}

/// Cross-entropy of logits `[batch, classes]` against class indices.
struct CrossEntropyBackward {
    targets: Vec<usize>,
    reduction: Reduction,
}

impl CrossEntropyBackward {
    /// `∂loss/∂z = (softmax(z) - onehot(targets))·scale` (`1/batch` for the mean), rows
    /// along the last axis.
    fn local<T: Float>(&self, logits: &ArrayD<T>) -> ArrayD<T> {
        let mut grad = as_rows(logits);
        let scale: T = self.reduction.scale(self.targets.len());
        for (mut row, &target) in grad.axis_iter_mut(Axis(0)).zip(&self.targets) {
            softmax_row(row.view_mut());
            row[target] -= T::one();
            row.mapv_inplace(|v| v * scale);
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
        ArrayD::from_elem(IxDyn(&[]), total * self.reduction.scale(self.targets.len()))
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
        let formula = match self.reduction {
            Reduction::Mean => "(softmax(z) - onehot(t))/N",
            Reduction::Sum => "softmax(z) - onehot(t)",
        };
        Partial::with_value(formula, self.local(&inputs[0]))
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
    reduction: Reduction,
}

impl NllBackward {
    /// `∂loss/∂y = -onehot(targets)·scale` (`1/batch` for the mean).
    fn local<T: Float>(&self, y: &ArrayD<T>) -> ArrayD<T> {
        let mut grad = as_rows(y);
        grad.fill(T::zero());
        let scale: T = self.reduction.scale(self.targets.len());
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
        ArrayD::from_elem(IxDyn(&[]), total * self.reduction.scale(self.targets.len()))
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
        let formula = match self.reduction {
            Reduction::Mean => "-onehot(c)/N",
            Reduction::Sum => "-onehot(c)",
        };
        Partial::with_value(formula, self.local(&inputs[0]))
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
        self.value_loss(target, ValueLoss::Mse, Reduction::Mean)
    }

    /// Mean absolute error against `target` of the same shape (`nn.L1Loss()`).
    pub fn l1_loss(&self, target: &Tensor<T>) -> Result<Tensor<T>> {
        self.value_loss(target, ValueLoss::L1, Reduction::Mean)
    }

    /// `nn.SmoothL1Loss(beta=beta)`: quadratic where `|y - t| < beta`, linear beyond.
    pub fn smooth_l1_loss(&self, target: &Tensor<T>, beta: f64) -> Result<Tensor<T>> {
        self.value_loss(target, ValueLoss::SmoothL1 { beta }, Reduction::Mean)
    }

    /// `nn.HuberLoss(delta=delta)`: quadratic where `|y - t| < delta`, linear beyond.
    pub fn huber_loss(&self, target: &Tensor<T>, delta: f64) -> Result<Tensor<T>> {
        self.value_loss(target, ValueLoss::Huber { delta }, Reduction::Mean)
    }

    /// `nn.BCEWithLogitsLoss()`: binary cross-entropy of logits (this tensor) against
    /// probabilities `target` in `[0, 1]`, the sigmoid folded in.
    pub fn binary_cross_entropy_with_logits(&self, target: &Tensor<T>) -> Result<Tensor<T>> {
        self.value_loss(target, ValueLoss::BceWithLogits, Reduction::Mean)
    }

    /// Any loss against value targets of this tensor's shape, with either reduction:
    /// `y.value_loss(&t, ValueLoss::L1, Reduction::Sum)` is
    /// `F.l1_loss(y, t, reduction="sum")`. One fused node; its gradient reaches both
    /// operands.
    pub fn value_loss(
        &self,
        target: &Tensor<T>,
        loss: ValueLoss,
        reduction: Reduction,
    ) -> Result<Tensor<T>> {
        let op = loss.name();
        let (lhs, rhs) = (self.shape(), target.shape());
        if lhs != rhs {
            return Err(Error::ShapeMismatch {
                op,
                lhs,
                rhs,
                expected: "prediction and target of the same shape".into(),
            });
        }
        if lhs.iter().product::<usize>() == 0 {
            return Err(Error::BadShape {
                op: op.into(),
                expected: "at least one element".into(),
                found: lhs,
            });
        }
        check_loss_parameter(loss)?;
        let function = ValueLossBackward { loss, reduction };
        let data = function.forward(&[&self.data(), &target.data()]);
        Ok(Tensor::from_op(
            data,
            function,
            vec![self.clone(), target.clone()],
        ))
    }

    /// Negative log-likelihood of log-probabilities (`nn.NLLLoss()`, after a
    /// `log_softmax`): `[batch, classes]` with one target per row, or `[classes]` with
    /// one target. `log_softmax` then `nll_loss` is `cross_entropy`.
    pub fn nll_loss(&self, targets: &[usize]) -> Result<Tensor<T>> {
        self.nll_loss_reduced(targets, Reduction::Mean)
    }

    /// [`nll_loss`](Tensor::nll_loss) with either reduction (`reduction="sum"`).
    pub fn nll_loss_reduced(&self, targets: &[usize], reduction: Reduction) -> Result<Tensor<T>> {
        check_class_targets("nll_loss", &self.shape(), targets)?;
        let function = NllBackward {
            targets: targets.to_vec(),
            reduction,
        };
        let data = function.forward(&[&self.data()]);
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }

    /// Cross-entropy of logits against class indices (`nn.CrossEntropyLoss()`): logits
    /// `[batch, classes]` with one target per row, or `[classes]` with one target.
    pub fn cross_entropy(&self, targets: &[usize]) -> Result<Tensor<T>> {
        self.cross_entropy_reduced(targets, Reduction::Mean)
    }

    /// [`cross_entropy`](Tensor::cross_entropy) with either reduction
    /// (`reduction="sum"`).
    pub fn cross_entropy_reduced(
        &self,
        targets: &[usize],
        reduction: Reduction,
    ) -> Result<Tensor<T>> {
        check_class_targets("cross_entropy", &self.shape(), targets)?;
        let function = CrossEntropyBackward {
            targets: targets.to_vec(),
            reduction,
        };
        let data = function.forward(&[&self.data()]);
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }
}

/// `beta >= 0` for smooth L1, `delta > 0` for Huber, as PyTorch requires.
fn check_loss_parameter(loss: ValueLoss) -> Result<()> {
    let (what, value, ok, expected) = match loss {
        ValueLoss::SmoothL1 { beta } => ("smooth_l1_loss beta", beta, beta >= 0.0, "beta >= 0"),
        ValueLoss::Huber { delta } => ("huber_loss delta", delta, delta > 0.0, "delta > 0"),
        _ => return Ok(()),
    };
    if !value.is_finite() || !ok {
        return Err(Error::InvalidArgument {
            what: what.into(),
            expected: format!("a finite {expected}, as PyTorch"),
            found: value.to_string(),
        });
    }
    Ok(())
}
