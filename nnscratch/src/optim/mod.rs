//! Optimizers with PyTorch's update formulas, written against one small visitor trait.
//!
//! An optimizer never needs to know what a model is: it needs, for each parameter in a
//! fixed order, its value (to update) and its gradient (to read). [`Parameters`] is
//! exactly that, so the same [`Sgd`], [`Adam`] (and AdamW, AMSGrad, gradient clipping)
//! and [`RMSprop`] train a dynamic [`crate::nn::Sequential`] and a compiled `model!`
//! struct. Learning-rate schedules ([`StepLR`], [`CosineAnnealingLR`], [`LinearLR`] for
//! warm-up) change any optimizer's rate through [`LearningRate`]. Every formula is
//! checked against PyTorch fixtures (`tests/engine_fixtures.rs`, up to 25 steps).
//!
//! ```
//! use nnscratch::nn::{Linear, ReLU, Sequential};
//! use nnscratch::optim::{Optimizer, Parameters, Sgd};
//! use nnscratch::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut model = Sequential::<f64>::new([Linear(2, 8), ReLU, Linear(8, 1)], &mut rng)?;
//! let mut sgd = Sgd::new(0.1).momentum(0.9);
//! let x = Tensor::from([[0.0, 1.0], [1.0, 0.0]]);
//! let target = Tensor::from([[1.0], [-1.0]]);
//! for _ in 0..5 {
//!     model.zero_grad();
//!     let loss = nnscratch::nn::Module::forward(&model, &x)?.mse_loss(&target)?;
//!     loss.backward()?;
//!     sgd.step(&mut model)?;
//! }
//! # Ok::<(), nnscratch::Error>(())
//! ```

mod adam;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamW};
pub use rmsprop::RMSprop;
pub use schedule::{CosineAnnealingLR, LinearLR, Schedule, Scheduler, StepLR};
pub use sgd::Sgd;

use ndarray::{Array, ArrayD, ArrayViewD, Dimension, IxDyn};

use crate::kernels::KernelPath;
use crate::kernels::rows::with_rows;
use crate::{Error, Float, Result, Tensor};

/// One parameter as an optimizer sees it: plain slices in row-major order, so an update
/// is a loop over memory with no shape machinery in the way.
pub struct Param<'a, T: Float> {
    /// The name, as in a PyTorch `state_dict` (`"0.weight"`).
    pub name: &'a str,
    /// The shape (weights `[out, in]`, biases `[out]`).
    pub shape: &'a [usize],
    /// The values in row-major order, updated in place.
    pub value: &'a mut [T],
    /// The gradient in the same order, or `None` if backward never reached this parameter.
    pub grad: Option<&'a [T]>,
}

impl<T: Float> Param<'_, T> {
    /// The value as an array view of its shape.
    pub fn value_view(&self) -> ArrayViewD<'_, T> {
        ArrayViewD::from_shape(IxDyn(self.shape), self.value)
            .unwrap_or_else(|_| unreachable!("shape and length agree"))
    }

    /// The gradient as an array view of the parameter's shape.
    pub fn grad_view(&self) -> Option<ArrayViewD<'_, T>> {
        let grad = self.grad?;
        Some(
            ArrayViewD::from_shape(IxDyn(self.shape), grad)
                .unwrap_or_else(|_| unreachable!("shape and length agree")),
        )
    }
}

/// Visits one array parameter: what a `Parameters` impl over arrays calls for each of
/// them (the dynamic engine's named tensors do; a `model!` struct keeps its parameters in
/// one slice and visits them with [`crate::compiled::visit_flat`]). An array in another
/// layout than row-major is converted once.
pub fn visit_array<T: Float, D: Dimension>(
    name: &str,
    value: &mut Array<T, D>,
    grad: Option<&Array<T, D>>,
    visitor: &mut dyn FnMut(Param<'_, T>),
) {
    if value.as_slice().is_none() {
        *value = value.as_standard_layout().into_owned();
    }
    let mut dims = [0usize; 8];
    let ndim = value.ndim().min(dims.len());
    dims[..ndim].copy_from_slice(&value.shape()[..ndim]);
    // Row-major gradients (the usual case) are lent as they are; others copied.
    let reordered;
    let grad = match grad {
        Some(g) if g.as_slice().is_none() => {
            reordered = g.as_standard_layout().into_owned();
            reordered.as_slice()
        }
        Some(g) => g.as_slice(),
        None => None,
    };
    let value = value
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("made standard above"));
    visitor(Param {
        name,
        shape: &dims[..ndim],
        value,
        grad,
    });
}

/// A buffer as `io` sees it: state a layer keeps and saves with its weights but that no
/// optimizer trains (PyTorch's `register_buffer`: BatchNorm's running statistics).
pub struct Buffer<'a, T: Float> {
    /// The name, as in a PyTorch `state_dict` (`"1.running_mean"`).
    pub name: &'a str,
    /// The values.
    pub value: BufferValue<'a, T>,
}

/// A buffer's values: floats of the model's type, or a count (PyTorch's `int64`
/// `num_batches_tracked`, a 0-dimensional tensor).
pub enum BufferValue<'a, T: Float> {
    /// Values of a shape, row-major.
    Float {
        /// The shape.
        shape: &'a [usize],
        /// The values, updated in place when loading.
        value: &'a mut [T],
    },
    /// A count.
    Count(&'a mut u64),
}

/// Visits one array buffer (what `model!`-generated code calls for running statistics).
pub fn visit_buffer_array<T: Float, D: Dimension>(
    name: &str,
    value: &mut Array<T, D>,
    visitor: &mut dyn FnMut(Buffer<'_, T>),
) {
    if value.as_slice().is_none() {
        *value = value.as_standard_layout().into_owned();
    }
    let shape = value.shape().to_vec();
    let value = value
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("made standard above"));
    visitor(Buffer {
        name,
        value: BufferValue::Float {
            shape: &shape,
            value,
        },
    });
}

/// Names and shapes of a model's parameters, in visiting order (see
/// [`Parameters::parameter_layout`]).
pub type ParameterLayout = &'static [(&'static str, &'static [usize])];

/// All of a model's parameters and gradients as two slices (see
/// [`Parameters::flat_parameters`]).
pub struct FlatParameters<'a, T: Float> {
    /// Every parameter's values, updated in place.
    pub values: &'a mut [T],
    /// The gradients, value for value, or `None` if backward has not filled them.
    pub grads: Option<&'a [T]>,
}

/// Anything with named, trainable parameters: the one trait optimizers and `io` need.
pub trait Parameters<T: Float> {
    /// Calls `visitor` once per parameter, always in the same order.
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Param<'_, T>));

    /// Calls `visitor` once per buffer (saved and loaded with the parameters, never
    /// trained), always in the same order. None by default.
    fn visit_buffers(&mut self, _visitor: &mut dyn FnMut(Buffer<'_, T>)) {}

    /// The buffers' names and shapes (`[]` for a count), in visiting order.
    fn buffer_shapes(&mut self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        self.visit_buffers(&mut |b| {
            let shape = match &b.value {
                BufferValue::Float { shape, .. } => shape.to_vec(),
                BufferValue::Count(_) => Vec::new(),
            };
            shapes.push((b.name.to_string(), shape));
        });
        shapes
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&mut self);

    /// Every parameter's name and shape in visiting order, when the type alone fixes
    /// them (a `model!` struct returns its `PARAMETERS`); `None`, the default, when they
    /// are only known at run time. An optimizer that has seen this same list before
    /// need not compare the names one by one at each step.
    fn parameter_layout(&self) -> Option<ParameterLayout> {
        None
    }

    /// Every parameter's values in one slice and their gradients in another laid out
    /// alike, when the model stores them so (a `model!` struct does); `None`, the
    /// default, otherwise. An optimizer whose update is the same for every value (plain
    /// SGD, the finiteness check) then makes one pass rather than one per tensor. The
    /// order inside is the model's own: only [`visit_parameters`](Parameters::visit_parameters)
    /// says which value belongs to which tensor.
    fn flat_parameters(&mut self) -> Option<FlatParameters<'_, T>> {
        None
    }

    /// The parameters' names and shapes, in visiting order.
    fn parameter_shapes(&mut self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        self.visit_parameters(&mut |p| shapes.push((p.name.to_string(), p.shape.to_vec())));
        shapes
    }

    /// A copy of the parameter called `name` (its `state_dict` name, e.g. `"0.weight"`),
    /// or `None` if there is none.
    fn parameter(&mut self, name: &str) -> Option<ArrayD<T>> {
        let mut found = None;
        self.visit_parameters(&mut |p| {
            if p.name == name {
                found = Some(p.value_view().to_owned());
            }
        });
        found
    }

    /// A copy of the gradient of the parameter called `name`, or `None` if there is no
    /// such parameter or backward has not filled its gradient since the last
    /// [`zero_grad`](Parameters::zero_grad).
    fn gradient(&mut self, name: &str) -> Option<ArrayD<T>> {
        let mut found = None;
        self.visit_parameters(&mut |p| {
            if p.name == name {
                found = p.grad_view().map(|g| g.to_owned());
            }
        });
        found
    }

    /// Overwrites the parameter called `name` with `value` (any memory layout). Fails,
    /// changing nothing, if there is no such parameter or the shapes differ; this is the
    /// checked way to set a compiled model's weights, whose fields are private so that
    /// no assignment can leave them with a shape the generated code does not expect.
    fn set_parameter(&mut self, name: &str, value: ArrayViewD<'_, T>) -> Result<()> {
        let mut outcome = None;
        self.visit_parameters(&mut |p| {
            if p.name != name {
                return;
            }
            if p.shape != value.shape() {
                outcome = Some(Err(Error::BadShape {
                    op: format!("set_parameter(\"{name}\")"),
                    expected: format!("a value of shape {:?}", p.shape),
                    found: value.shape().to_vec(),
                }));
                return;
            }
            // Row-major order on both sides, whatever `value`'s strides are.
            for (slot, &v) in p.value.iter_mut().zip(value.iter()) {
                *slot = v;
            }
            outcome = Some(Ok(()));
        });
        outcome.unwrap_or_else(|| {
            Err(Error::InvalidArgument {
                what: "set_parameter".into(),
                expected: format!(
                    "one of the parameter names {:?}",
                    self.parameter_shapes()
                        .into_iter()
                        .map(|(n, _)| n)
                        .collect::<Vec<_>>()
                ),
                found: format!("\"{name}\""),
            })
        })
    }

    /// Total number of trainable numbers.
    fn num_parameters(&mut self) -> usize {
        self.parameter_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// Named tensors are parameters: what a dynamic model's `named_parameters()` returns.
impl<T: Float> Parameters<T> for [(String, Tensor<T>)] {
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Param<'_, T>)) {
        for (name, tensor) in self.iter() {
            let mut value = tensor.data_mut();
            let grad = tensor.grad_ref();
            visit_array(name, &mut value, grad.as_ref(), visitor);
        }
    }

    fn zero_grad(&mut self) {
        for (_, tensor) in self.iter() {
            tensor.zero_grad();
        }
    }
}

/// An optimizer: updates every parameter from its gradient.
pub trait Optimizer<T: Float> {
    /// One update of every parameter that has a gradient (others are skipped, as in
    /// PyTorch). Fails, changing nothing, if the model's parameters are not those the
    /// optimizer's state was built for.
    fn step(&mut self, model: &mut (impl Parameters<T> + ?Sized)) -> Result<()>;
}

/// Per-parameter state of an optimizer, created on first use and checked afterwards.
#[derive(Debug, Clone, Default)]
pub(crate) struct StateList<S> {
    entries: Vec<(String, Vec<usize>, S)>,
    /// The [`Parameters::parameter_layout`] of the model the entries were made for.
    layout: Option<ParameterLayout>,
}

impl<S> StateList<S> {
    /// Checks, before any update and in one pass over the parameters, that `model` has
    /// the parameters this state was built for (same count, names and shapes; an empty
    /// state accepts any model) and that every gradient is finite: a NaN or an infinity
    /// would be written into the weights and every later step would compute garbage.
    /// A refused step leaves every weight as it was; the error names the parameter (and
    /// the first bad element).
    pub(crate) fn check_step<T: Float>(
        &mut self,
        model: &mut (impl Parameters<T> + ?Sized),
    ) -> Result<()> {
        // A model whose type fixes its parameters, the same list as before: nothing to
        // compare by name. Otherwise names and shapes are compared while visiting, so
        // that a good step allocates nothing.
        let layout = model.parameter_layout();
        let same_layout = matches!((self.layout, layout),
            (Some(known), Some(now)) if std::ptr::eq(known, now) || known == now);
        let check_names = !self.entries.is_empty() && !same_layout;
        if self.entries.is_empty() {
            // This step makes the entries, from this model.
            self.layout = layout;
        }
        let path = KernelPath::default_for_this_cpu();
        if !check_names
            && let Some(flat) = model.flat_parameters()
            && flat.grads.is_none_or(|grads| all_finite(path, grads))
        {
            // Every gradient in one pass; only a failure needs the names, below.
            return Ok(());
        }
        let mut index = 0;
        let mut agrees = true;
        let mut bad: Option<(String, usize, T)> = None;
        model.visit_parameters(&mut |p| {
            if check_names {
                agrees &= matches!(self.entries.get(index),
                    Some((name, shape, _)) if name == p.name && shape.as_slice() == p.shape);
            }
            index += 1;
            let Some(grad) = p.grad else { return };
            // A branch-free pass first (it vectorises); the position only on failure.
            if bad.is_some() || all_finite(path, grad) {
                return;
            }
            if let Some((i, &g)) = grad.iter().enumerate().find(|(_, g)| !g.is_finite()) {
                bad = Some((p.name.to_string(), i, g));
            }
        });
        if check_names && !(agrees && index == self.entries.len()) {
            let known: Vec<_> = self
                .entries
                .iter()
                .map(|(n, s, _)| (n.clone(), s.clone()))
                .collect();
            return Err(Error::InvalidArgument {
                what: "optimizer step".into(),
                expected: format!("the parameters this optimizer was used with: {known:?}"),
                found: format!("{:?}", model.parameter_shapes()),
            });
        }
        match bad {
            None => Ok(()),
            Some((name, index, value)) => Err(Error::NotFinite {
                what: format!(
                    "gradient of `{name}` (element {index} in row-major order); no parameter was updated"
                ),
                value: value.to_string(),
            }),
        }
    }

    /// Whether the state has an entry for each parameter of `model`, which
    /// [`StateList::check_step`] has just accepted (so an update that needs no state may
    /// skip visiting the parameters one by one).
    pub(crate) fn covers<T: Float>(&self, model: &(impl Parameters<T> + ?Sized)) -> bool {
        matches!((self.layout, model.parameter_layout()),
            (Some(known), Some(now)) if self.entries.len() == now.len()
                && (std::ptr::eq(known, now) || known == now))
    }

    /// The state of parameter `index`, created by `init` on first use.
    pub(crate) fn get(
        &mut self,
        index: usize,
        name: &str,
        shape: &[usize],
        init: impl FnOnce() -> S,
    ) -> &mut S {
        if index == self.entries.len() {
            self.entries
                .push((name.to_string(), shape.to_vec(), init()));
        }
        &mut self.entries[index].2
    }
}

/// An optimizer whose learning rate a [`Scheduler`] can change between steps.
pub trait LearningRate {
    /// The learning rate the next step uses.
    fn lr(&self) -> f64;
    /// Sets the learning rate, keeping the optimizer's state (moments, buffers).
    fn set_lr(&mut self, lr: f64);
}

/// Gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_(params, max_norm)` before
/// `optimizer.step()`: the one implementation every optimizer's `clip_grad_norm` uses.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clipping {
    /// The largest global 2-norm allowed, if clipping is on.
    pub(crate) max_norm: Option<f64>,
    /// The norm the last step measured (what `clip_grad_norm_` returns).
    pub(crate) last_norm: Option<f64>,
}

impl Clipping {
    /// `max_norm > 0`, when set.
    pub(crate) fn check(&self) -> Result<()> {
        match self.max_norm {
            Some(max_norm) => check_hyper(
                "clip_grad_norm max_norm",
                max_norm,
                "max_norm > 0",
                max_norm > 0.0,
            ),
            None => Ok(()),
        }
    }

    /// The factor every gradient is multiplied by, `min(1, max_norm / (‖g‖₂ + 1e-6))`
    /// over all gradients together (1 without clipping); records `‖g‖₂`.
    pub(crate) fn coefficient<T: Float>(&mut self, model: &mut (impl Parameters<T> + ?Sized)) -> T {
        let Some(max_norm) = self.max_norm else {
            self.last_norm = None;
            return T::one();
        };
        let mut sum_of_squares = 0.0f64;
        model.visit_parameters(&mut |p| {
            if let Some(grad) = p.grad {
                sum_of_squares += grad.iter().map(|g| g.as_f64() * g.as_f64()).sum::<f64>();
            }
        });
        let norm = sum_of_squares.sqrt();
        self.last_norm = Some(norm);
        T::of((max_norm / (norm + 1e-6)).min(1.0))
    }
}

with_rows! {
    /// Whether every value is finite, in one branch-free pass that vectorises (see
    /// [`Rows::all_finite`](crate::kernels::rows::Rows::all_finite)).
    fn all_finite<T>(rows, slices(values), slices_mut(), values()) -> bool {
        // SAFETY: `with_rows` picks rows the CPU can run.
        unsafe { rows.all_finite(values) }
    }
}

/// Checks a hyper-parameter is finite and in range.
pub(crate) fn check_hyper(what: &str, value: f64, range: &str, ok: bool) -> Result<()> {
    if !value.is_finite() || !ok {
        return Err(Error::InvalidArgument {
            what: what.to_string(),
            expected: range.to_string(),
            found: value.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::all_finite;
    use crate::kernels::KernelPath;

    #[test]
    fn all_finite_finds_any_infinity_or_nan_anywhere() {
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 70] {
            let values: Vec<f32> = (0..len).map(|i| ((i % 30) as f32 - 3.5) * 1e37).collect();
            for path in KernelPath::ALL.into_iter().filter(|p| p.is_available()) {
                assert!(all_finite(path, &values), "{path:?} {values:?}");
                for position in 0..len {
                    for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
                        let mut with_bad = values.clone();
                        with_bad[position] = bad;
                        let found = all_finite(path, &with_bad);
                        assert!(!found, "{path:?}: {bad} at {position} of {len}");
                    }
                }
            }
        }
        let extremes = [f64::MAX, f64::MIN, f64::MIN_POSITIVE / 2.0, -0.0];
        assert!(all_finite(KernelPath::Portable, &extremes));
        assert!(!all_finite(KernelPath::Portable, &[1.0, f64::NAN]));
    }
}
