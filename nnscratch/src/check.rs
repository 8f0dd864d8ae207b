//! Gradient checks: a compiled model's derived gradients against its dynamic twin (which
//! differentiates elementary ops) and against central finite differences of its loss.
//!
//! ```
//! use nnscratch::{check, model};
//! use nnscratch::compiled::Target;
//! use rand::SeedableRng;
//!
//! model! {
//!     struct Tiny { input: 2, Linear(3), Tanh, Linear(1), loss: MSELoss, }
//! }
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut net = Tiny::<f64>::new(&mut rng);
//! let x = ndarray::arr2(&[[0.5, -1.0], [2.0, 0.25]]);
//! let t = ndarray::arr2(&[[1.0], [-1.0]]);
//! let report = check::gradients(&mut net, x.view(), Target::Values(t.view()))?;
//! assert!(report.max_dynamic_error() < 1e-12);
//! assert!(report.max_finite_difference_error() < 1e-6);
//! println!("{report}");
//! # Ok::<(), nnscratch::Error>(())
//! ```

use std::fmt;

use ndarray::{ArrayD, ArrayView2};

use crate::compiled::{CompiledModel, Target};
use crate::nn::Module;
use crate::optim::{BufferValue, Parameters};
use crate::{Error, Float, Result, Tensor};

/// Norm-wise relative error `max|a - b| / max|b|` (absolute when `b` is all zeros).
pub fn relative_error<T: Float>(actual: &ArrayD<T>, expected: &ArrayD<T>) -> f64 {
    relative_error_above(actual, expected, 0.0)
}

/// [`relative_error`] with the scale `max|b|` raised to at least `floor`: for a gradient
/// that is zero in exact arithmetic (a bias before a training-mode BatchNorm, which
/// removes any constant), both sides are rounding noise, and their ratio means nothing.
fn relative_error_above<T: Float>(actual: &ArrayD<T>, expected: &ArrayD<T>, floor: f64) -> f64 {
    if actual.shape() != expected.shape() {
        return f64::INFINITY;
    }
    let scale = expected
        .iter()
        .fold(0.0f64, |m, v| m.max(v.as_f64().abs()))
        .max(floor);
    let diff = actual
        .iter()
        .zip(expected)
        .fold(0.0f64, |m, (a, b)| m.max((a.as_f64() - b.as_f64()).abs()));
    if scale > 0.0 { diff / scale } else { diff }
}

/// How one parameter's gradient compares.
#[derive(Debug, Clone)]
pub struct ParameterReport {
    /// The `state_dict` name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Relative error of the compiled gradient against the dynamic engine's (its scale
    /// at least `√ε` of the model's largest gradient: a gradient below that is zero up
    /// to rounding).
    pub dynamic_error: f64,
    /// Relative error of the compiled gradient against central finite differences (its
    /// scale at least `ε^(1/4)` of the model's largest gradient).
    pub finite_difference_error: f64,
    /// `max|compiled - dynamic|` over the parameter's elements.
    pub dynamic_difference: f64,
}

/// The result of [`gradients`].
#[derive(Debug, Clone)]
pub struct GradientReport {
    /// The model's name.
    pub model: &'static str,
    /// The element type, `"float32"` or `"float64"`.
    pub dtype: &'static str,
    /// The loss computed by the compiled code.
    pub compiled_loss: f64,
    /// The loss computed by the dynamic twin.
    pub dynamic_loss: f64,
    /// One entry per parameter, in visiting order.
    pub parameters: Vec<ParameterReport>,
    /// The largest gradient element of the whole model (the scale below which a
    /// parameter's gradient counts as zero: `√ε` of it).
    pub largest_gradient: f64,
}

impl GradientReport {
    /// The largest compiled-vs-dynamic difference relative to the model's largest
    /// gradient: the error on the scale of the whole gradient vector, which is what
    /// rounding bounds in `f32`, where a gradient that is zero in exact arithmetic
    /// (a bias before a training-mode BatchNorm) is noise of order `ε` times the
    /// terms that cancelled.
    pub fn max_dynamic_error_model_wide(&self) -> f64 {
        let scale = self.largest_gradient.max(f64::MIN_POSITIVE);
        self.parameters
            .iter()
            .map(|p| p.dynamic_difference / scale)
            .fold(0.0, f64::max)
    }

    /// The largest compiled-vs-dynamic relative error, the loss included.
    pub fn max_dynamic_error(&self) -> f64 {
        let loss = (self.compiled_loss - self.dynamic_loss).abs()
            / self.dynamic_loss.abs().max(f64::MIN_POSITIVE);
        self.parameters
            .iter()
            .map(|p| p.dynamic_error)
            .fold(loss, f64::max)
    }

    /// The largest compiled-vs-finite-differences relative error.
    pub fn max_finite_difference_error(&self) -> f64 {
        self.parameters
            .iter()
            .map(|p| p.finite_difference_error)
            .fold(0.0, f64::max)
    }
}

impl fmt::Display for GradientReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}): loss compiled {:.12e}, dynamic {:.12e}",
            self.model, self.dtype, self.compiled_loss, self.dynamic_loss
        )?;
        writeln!(
            f,
            "  {:<14} {:<10} {:>14} {:>14}",
            "parameter", "shape", "vs dynamic", "vs finite diff"
        )?;
        for p in &self.parameters {
            let shape = format!("{:?}", p.shape);
            writeln!(
                f,
                "  {:<14} {:<10} {:>14.3e} {:>14.3e}",
                p.name, shape, p.dynamic_error, p.finite_difference_error
            )?;
        }
        Ok(())
    }
}

/// Values and gradients of every parameter, copied out.
fn snapshot<T: Float>(
    model: &mut impl Parameters<T>,
) -> Vec<(String, ArrayD<T>, Option<ArrayD<T>>)> {
    let mut out = Vec::new();
    model.visit_parameters(&mut |p| {
        out.push((
            p.name.to_string(),
            p.value_view().to_owned(),
            p.grad_view().map(|g| g.to_owned()),
        ))
    });
    out
}

/// Sets element `element` of parameter `index` to `value`.
fn set<T: Float>(model: &mut impl Parameters<T>, index: usize, element: usize, value: T) {
    let mut i = 0;
    model.visit_parameters(&mut |p| {
        if i == index
            && let Some(v) = p.value.get_mut(element)
        {
            *v = value;
        }
        i += 1;
    });
}

/// The buffers' values (running statistics), copied out.
fn buffer_snapshot<T: Float>(model: &mut impl Parameters<T>) -> Vec<(Vec<T>, u64)> {
    let mut out = Vec::new();
    model.visit_buffers(&mut |b| {
        out.push(match b.value {
            BufferValue::Float { value, .. } => (value.to_vec(), 0),
            BufferValue::Count(count) => (Vec::new(), *count),
        })
    });
    out
}

/// Writes back what [`buffer_snapshot`] copied.
fn restore_buffers<T: Float>(model: &mut impl Parameters<T>, saved: &[(Vec<T>, u64)]) {
    let mut saved = saved.iter();
    model.visit_buffers(&mut |b| {
        let Some((values, count)) = saved.next() else {
            return;
        };
        match b.value {
            BufferValue::Float { value, .. } => value.copy_from_slice(values),
            BufferValue::Count(c) => *c = *count,
        }
    });
}

/// Compares the compiled gradients of `model` on one batch with its `to_dynamic()` twin
/// and with central finite differences `(L(p + h) - L(p - h)) / 2h`, `h = ε^(1/3)·max(1, |p|)`.
/// The model's parameters are left as they were; its gradients are those of this batch.
///
/// The check runs in the model's mode. Dropout layers are held in fixed-mask mode
/// meanwhile (every loss the check evaluates, compiled or dynamic, uses the mask the
/// next step would draw), and running statistics, which a training-mode forward pass
/// updates, are restored at the end: the model leaves as it came.
pub fn gradients<T: Float, M: CompiledModel<T>>(
    model: &mut M,
    x: ArrayView2<'_, T>,
    target: Target<'_, T>,
) -> Result<GradientReport> {
    let buffers = buffer_snapshot(model);
    model.fix_dropout_masks(true);
    let report = compare(model, x, target);
    model.fix_dropout_masks(false);
    restore_buffers(model, &buffers);
    report
}

fn compare<T: Float, M: CompiledModel<T>>(
    model: &mut M,
    x: ArrayView2<'_, T>,
    target: Target<'_, T>,
) -> Result<GradientReport> {
    let compiled_loss = model.loss_backward(x, target)?;
    let compiled = snapshot(model);

    let twin = model.to_dynamic();
    let dynamic_loss = twin.loss(&Tensor::new(x.to_owned().into_dyn()), target)?;
    dynamic_loss.backward()?;
    let dynamic: Vec<(String, Tensor<T>)> = twin.named_parameters();

    // Gradients below √ε of the model's largest are zero up to rounding (see
    // `relative_error_above`); they are compared on that scale against the dynamic
    // engine.
    let largest = compiled
        .iter()
        .filter_map(|(_, _, g)| g.as_ref())
        .flat_map(|g| g.iter())
        .fold(0.0f64, |m, g| m.max(g.as_f64().abs()));
    let floor = T::epsilon().as_f64().sqrt() * largest;
    // Finite differences are themselves only good to about ε^(2/3) of the loss
    // (truncation and rounding balanced by the step below), so their floor is higher.
    let fd_floor = T::epsilon().as_f64().powf(0.25) * largest;
    let step_scale = T::epsilon().cbrt();
    let mut parameters = Vec::new();
    for (index, (name, value, grad)) in compiled.iter().enumerate() {
        let grad = grad.as_ref().ok_or_else(|| Error::InvalidArgument {
            what: format!("check::gradients: {name}"),
            expected: "a gradient after loss_backward".into(),
            found: "none".into(),
        })?;
        let twin_grad = dynamic
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.grad())
            .unwrap_or_else(|| ArrayD::zeros(grad.raw_dim()));
        let mut numeric = ArrayD::zeros(grad.raw_dim());
        for (element, (slot, &p)) in numeric.iter_mut().zip(value.iter()).enumerate() {
            let h = step_scale * p.abs().max(T::one());
            set(model, index, element, p + h);
            let plus = model.loss(x, target);
            set(model, index, element, p - h);
            let minus = model.loss(x, target);
            set(model, index, element, p); // restored exactly, even if a loss failed
            // The step actually taken, (p + h) - (p - h), differs from 2h by rounding.
            *slot = (plus? - minus?) / ((p + h) - (p - h));
        }
        parameters.push(ParameterReport {
            name: name.clone(),
            shape: value.shape().to_vec(),
            dynamic_error: relative_error_above(grad, &twin_grad, floor),
            dynamic_difference: grad
                .iter()
                .zip(&twin_grad)
                .fold(0.0f64, |m, (a, b)| m.max((a.as_f64() - b.as_f64()).abs())),
            finite_difference_error: relative_error_above(grad, &numeric, fd_floor),
        });
    }
    // Leave the model's gradients those of the unperturbed parameters.
    model.loss_backward(x, target)?;
    Ok(GradientReport {
        model: M::NAME,
        dtype: T::DTYPE,
        compiled_loss: compiled_loss.as_f64(),
        dynamic_loss: dynamic_loss.item()?.as_f64(),
        parameters,
        largest_gradient: largest,
    })
}
