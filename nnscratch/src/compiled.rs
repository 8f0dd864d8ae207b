//! Runtime support for models compiled by [`model!`](crate::model): the trait every
//! generated struct implements, and the small checks its methods run on user input.
//!
//! Generated code calls these helpers so that every compiled model reports bad input the
//! same way: a wrong width, a wrong target, a class index out of range or a non-finite
//! loss is an `Err` naming the model, never a panic.

use ndarray::{Array2, ArrayView2, IntoDimension};

use crate::graph::{Graph, GraphEdge, GraphNode, NodeKind};
use crate::kernels::{Reduction, ValueLoss};
use crate::nn::GraphModule;
use crate::optim::{Param, ParameterLayout, Parameters};
use crate::tensor::{LeafKind, Partial};
use crate::{Error, Float, Result};

/// The loss a model was compiled with (its arguments are in [`Loss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Mean squared error against targets `[batch, outputs]`.
    MSELoss,
    /// Mean absolute error against targets `[batch, outputs]`.
    L1Loss,
    /// Smooth L1 (quadratic below `beta`) against targets `[batch, outputs]`.
    SmoothL1Loss,
    /// Huber (quadratic below `delta`) against targets `[batch, outputs]`.
    HuberLoss,
    /// Binary cross-entropy of logits against probabilities `[batch, outputs]`.
    BCEWithLogitsLoss,
    /// Softmax cross-entropy against class indices, one per row.
    CrossEntropyLoss,
    /// Negative log-likelihood of log-probabilities (after `LogSoftmax`) against class
    /// indices, one per row.
    NLLLoss,
}

impl LossKind {
    /// Whether the loss takes class indices ([`Target::Classes`]) rather than values.
    pub fn takes_classes(self) -> bool {
        matches!(self, LossKind::CrossEntropyLoss | LossKind::NLLLoss)
    }

    /// PyTorch's class name: `"MSELoss"`.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::MSELoss => "MSELoss",
            LossKind::L1Loss => "L1Loss",
            LossKind::SmoothL1Loss => "SmoothL1Loss",
            LossKind::HuberLoss => "HuberLoss",
            LossKind::BCEWithLogitsLoss => "BCEWithLogitsLoss",
            LossKind::CrossEntropyLoss => "CrossEntropyLoss",
            LossKind::NLLLoss => "NLLLoss",
        }
    }
}

/// A loss with its arguments: the kind, the reduction, and `beta` (SmoothL1Loss) or
/// `delta` (HuberLoss), PyTorch's defaults unless set.
///
/// ```
/// use nnscratch::compiled::{Loss, LossKind};
/// use nnscratch::Reduction;
///
/// let huber = Loss::new(LossKind::HuberLoss).delta(0.5).reduction(Reduction::Sum);
/// assert_eq!(huber.to_string(), "HuberLoss(delta=0.5, reduction='sum')");
/// assert_eq!(Loss::from(LossKind::MSELoss).to_string(), "MSELoss()");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loss {
    /// Which loss.
    pub kind: LossKind,
    /// Mean (the default) or sum.
    pub reduction: Reduction,
    /// SmoothL1Loss's `beta` or HuberLoss's `delta` (default 1; unused by the others).
    pub beta: f64,
}

impl Loss {
    /// `kind` with PyTorch's defaults.
    pub fn new(kind: LossKind) -> Self {
        Loss {
            kind,
            reduction: Reduction::Mean,
            beta: 1.0,
        }
    }

    /// The same loss with another reduction.
    pub fn reduction(self, reduction: Reduction) -> Self {
        Loss { reduction, ..self }
    }

    /// SmoothL1Loss's `beta`.
    pub fn beta(self, beta: f64) -> Self {
        Loss { beta, ..self }
    }

    /// HuberLoss's `delta` (stored in the same field as `beta`).
    pub fn delta(self, delta: f64) -> Self {
        Loss {
            beta: delta,
            ..self
        }
    }

    /// The value-target loss this is, or `None` for a class-target loss.
    pub fn value_loss(&self) -> Option<ValueLoss> {
        Some(match self.kind {
            LossKind::MSELoss => ValueLoss::Mse,
            LossKind::L1Loss => ValueLoss::L1,
            LossKind::SmoothL1Loss => ValueLoss::SmoothL1 { beta: self.beta },
            LossKind::HuberLoss => ValueLoss::Huber { delta: self.beta },
            LossKind::BCEWithLogitsLoss => ValueLoss::BceWithLogits,
            LossKind::CrossEntropyLoss | LossKind::NLLLoss => return None,
        })
    }
}

impl From<LossKind> for Loss {
    fn from(kind: LossKind) -> Self {
        Loss::new(kind)
    }
}

impl std::fmt::Display for Loss {
    /// PyTorch's repr of the module, arguments that differ from the default shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut args = Vec::new();
        match self.kind {
            LossKind::SmoothL1Loss => args.push(format!("beta={}", self.beta)),
            LossKind::HuberLoss => args.push(format!("delta={}", self.beta)),
            _ => {}
        }
        if self.reduction != Reduction::Mean {
            args.push(format!("reduction='{}'", self.reduction.name()));
        }
        write!(f, "{}({})", self.kind.name(), args.join(", "))
    }
}

/// A training target, whichever loss the model has.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a, T> {
    /// Values `[batch, outputs]`, for `MSELoss`, `L1Loss`, `SmoothL1Loss`, `HuberLoss`
    /// and `BCEWithLogitsLoss`.
    Values(ArrayView2<'a, T>),
    /// Class indices, one per row, for `CrossEntropyLoss` and `NLLLoss`.
    Classes(&'a [usize]),
}

/// What every `model!` struct can do; generic code (such as [`crate::check`]) uses this.
///
/// The generated struct also has inherent methods of the same names that take the
/// target in its natural type (`ArrayView2` for MSE, `&[usize]` for cross-entropy).
pub trait CompiledModel<T: Float>: Parameters<T> {
    /// The struct's name.
    const NAME: &'static str;
    /// Width of the input, `[batch, INPUT_WIDTH]`.
    const INPUT_WIDTH: usize;
    /// Width of the output, `[batch, OUTPUT_WIDTH]`.
    const OUTPUT_WIDTH: usize;
    /// The loss.
    const LOSS: LossKind;
    /// The forward and backward equations the compiler derived, as text.
    const BACKWARD_EQUATIONS: &'static str;
    /// The same, value by value, with the kernel calls the generated code makes (what
    /// [`explain`] shows beside each step). Empty for a model written by hand.
    const DERIVATION: &'static [ValueDerivation] = &[];

    /// The output for a batch `[batch, INPUT_WIDTH]`, a view into the model's workspace.
    fn forward(&mut self, x: ArrayView2<'_, T>) -> Result<ArrayView2<'_, T>>;

    /// The loss of a batch, without computing gradients.
    fn loss(&mut self, x: ArrayView2<'_, T>, target: Target<'_, T>) -> Result<T>;

    /// Forward, loss and the derived backward pass: fills the parameters' gradients and
    /// returns the loss.
    fn loss_backward(&mut self, x: ArrayView2<'_, T>, target: Target<'_, T>) -> Result<T>;

    /// The same network, with the same weights (buffers, dropout generators and mode
    /// included), on the dynamic engine.
    fn to_dynamic(&self) -> GraphModule<T>;

    /// Runs the model's kernels on `path` (see the generated `set_kernel_path`):
    /// `Portable` gives the same bits on every CPU.
    fn set_kernel_path(&mut self, path: crate::kernels::KernelPath) -> Result<()>;

    /// Switches training-mode behaviour (Dropout, BatchNorm) on or off; a model without
    /// such layers has nothing to switch.
    fn set_training(&mut self, _training: bool) {}

    /// Whether the model is in training mode (every model starts in it).
    fn is_training(&self) -> bool {
        true
    }

    /// Fixed-mask mode for every dropout layer: each forward pass reuses the current
    /// mask, so the loss is a fixed function of the parameters (for gradient checks).
    fn fix_dropout_masks(&mut self, _fixed: bool) {}

    /// The compiled graph with each edge's derived partial derivative.
    fn graph() -> Graph<T>;

    /// Writes the model to `path` as ONNX, in evaluation mode, for onnxruntime, tract
    /// and the other ONNX engines (see [`crate::onnx`]); atomically, as checkpoints are.
    fn export_onnx(&self, path: impl AsRef<std::path::Path>) -> Result<()>
    where
        Self: Sized,
    {
        crate::onnx::save(&crate::onnx::from_compiled(self)?, path)
    }
}

/// Checks a batch: `[batch >= 1, width]`.
pub fn check_input<T>(model: &str, width: usize, x: &ArrayView2<'_, T>) -> Result<()> {
    if x.ncols() != width || x.nrows() == 0 {
        return Err(Error::BadShape {
            op: model.to_string(),
            expected: format!("an input of shape [batch, {width}] with batch >= 1"),
            found: x.shape().to_vec(),
        });
    }
    Ok(())
}

/// Checks a value target (MSE, L1, smooth L1, Huber, BCE): one row of `width` values
/// per input row.
pub fn check_values_target<T>(
    model: &str,
    loss: &str,
    rows: usize,
    width: usize,
    target: &ArrayView2<'_, T>,
) -> Result<()> {
    if target.dim() != (rows, width) {
        return Err(Error::BadShape {
            op: format!("{model} ({loss} target)"),
            expected: format!("a target of shape [{rows}, {width}], one row per input row"),
            found: target.shape().to_vec(),
        });
    }
    Ok(())
}

/// Checks class targets (cross-entropy, NLL): one class index below `classes` per input
/// row.
pub fn check_classes_target(
    model: &str,
    loss: &'static str,
    rows: usize,
    classes: usize,
    targets: &[usize],
) -> Result<()> {
    if targets.len() != rows {
        return Err(Error::BadShape {
            op: format!("{model} ({loss} targets)"),
            expected: format!(
                "{rows} class indices, one per input row; {} given",
                match targets.len() {
                    1 => "1 was".to_string(),
                    n => format!("{n} were"),
                }
            ),
            found: vec![targets.len()],
        });
    }
    crate::error::check_class_indices(loss, targets, classes)
}

/// Makes an index buffer `len` long (max pooling's argmax positions), reallocating only
/// when the length changes; too large to allocate is an [`Error::TooLarge`].
pub fn resize_indices(model: &str, buffer: &mut Vec<u32>, len: usize) -> Result<()> {
    if buffer.len() != len {
        *buffer = Vec::new();
        let mut fresh = Vec::new();
        fresh.try_reserve_exact(len).map_err(|e| Error::TooLarge {
            what: format!("{model} workspace"),
            shape: vec![len],
            bytes: Some(len as u128 * 4),
            reason: e.to_string(),
        })?;
        fresh.resize(len, 0);
        *buffer = fresh;
    }
    Ok(())
}

/// A seed for a model's dropout generators, drawn from the generator `new` was given.
pub fn draw_seed<R: rand::Rng + ?Sized>(rng: &mut R) -> u64 {
    rng.next_u64()
}

/// BatchNorm in training needs more than one row per batch (the variance of one value is
/// 0, so every output would be 0): an `Err` naming the layer, as PyTorch raises.
pub fn check_batch_norm_batch(model: &str, layer: &str, rows: usize) -> Result<()> {
    if rows < 2 {
        return Err(Error::InvalidArgument {
            what: format!("{model}: {layer} in training mode"),
            expected: "more than one row per batch (batch statistics of one row are \
                       degenerate); call eval() to run single rows"
                .into(),
            found: format!("a batch of {rows} row"),
        });
    }
    Ok(())
}

/// Runs `part`, a segment of a deep model's straight-line `run`, as a function of its
/// own: LLVM's time grows faster than linearly with a function's size, so a 1000-layer
/// program compiles faster in segments of a few dozen kernel calls (each closure is
/// its own type, so each instance of this function is one segment).
#[inline(never)]
pub fn segment<R>(part: impl FnOnce() -> R) -> R {
    part()
}

/// A zero-filled array of `shape`: one out-of-line function for every buffer a generated
/// model creates (inlined, 2000 of them made a 1000-layer model's constructors take
/// seconds of LLVM's time).
#[inline(never)]
pub fn zeros<T: Float, Sh: ndarray::ShapeBuilder>(shape: Sh) -> ndarray::Array<T, Sh::Dim> {
    ndarray::Array::zeros(shape)
}

/// A zero-filled `Vec` of `len` values: a compiled model's parameters and gradients,
/// each stored in one slice. Panics, as `new` documents, if the memory cannot be had
/// (`model!` has already limited every layer's size at compile time).
#[inline(never)]
pub fn flat_zeros<T: Float>(len: usize) -> Vec<T> {
    let mut values = Vec::new();
    if let Err(error) = values.try_reserve_exact(len) {
        panic!("cannot allocate {len} parameters: {error}");
    }
    values.resize(len, T::zero());
    values
}

/// Copies a parameter's initial value (row-major) into its place in the model's slice,
/// or panics with the error (memory for it could not be allocated: `model!` has already
/// limited every layer's size). What a generated `new` calls for each tensor, in
/// PyTorch's drawing order.
#[track_caller]
#[inline(never)]
pub fn place<T: Float, D: ndarray::Dimension>(
    flat: &mut [T],
    offset: usize,
    value: Result<ndarray::Array<T, D>>,
) {
    let value = match value {
        Ok(value) => value,
        Err(error) => panic!("{error}"),
    };
    let slots = &mut flat[offset..offset + value.len()];
    for (slot, &v) in slots.iter_mut().zip(value.iter()) {
        *slot = v;
    }
}

/// Splits a compiled model's parameter (or gradient) slice into the parts holding the
/// tensors of each rank, `lengths[r]` values each (the slice holds the rank-1 tensors,
/// then the rank-2 ones, and so on).
///
/// # Panics
/// If the slice is shorter than the lengths together: generated tables always agree.
#[inline]
pub fn split_ranks<T, const K: usize>(flat: &[T], lengths: [usize; K]) -> [&[T]; K] {
    let mut rest = flat;
    lengths.map(|len| {
        let (part, tail) = rest.split_at(len);
        rest = tail;
        part
    })
}

/// [`split_ranks`] for the gradients, which the backward pass writes.
#[inline]
pub fn split_ranks_mut<T, const K: usize>(flat: &mut [T], lengths: [usize; K]) -> [&mut [T]; K] {
    let mut rest = flat;
    lengths.map(|len| {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        part
    })
}

/// Views of consecutive row-major tensors of `shapes` in `part` (one rank's part of a
/// compiled model's parameters), what `run` binds to the tensors' names.
///
/// # Panics
/// If `part` is shorter than the shapes together: generated tables always agree.
#[inline]
pub fn views<'a, T, const R: usize, const N: usize>(
    part: &'a [T],
    shapes: &[[usize; R]; N],
) -> [ndarray::ArrayView<'a, T, <[usize; R] as IntoDimension>::Dim>; N]
where
    [usize; R]: IntoDimension,
{
    let mut rest = part;
    std::array::from_fn(|k| {
        let len = shapes[k].iter().product();
        let (values, tail) = rest.split_at(len);
        rest = tail;
        // SAFETY: `values` holds exactly the shape's product of elements, which the
        // shape's row-major strides address and nothing beyond; the view borrows them.
        unsafe { ndarray::ArrayView::from_shape_ptr(shapes[k].into_dimension(), values.as_ptr()) }
    })
}

/// [`views`] that the backward pass writes the gradients through.
///
/// # Panics
/// As [`views`].
#[inline]
pub fn views_mut<'a, T, const R: usize, const N: usize>(
    part: &'a mut [T],
    shapes: &[[usize; R]; N],
) -> [ndarray::ArrayViewMut<'a, T, <[usize; R] as IntoDimension>::Dim>; N]
where
    [usize; R]: IntoDimension,
{
    let mut rest = part;
    std::array::from_fn(|k| {
        let len = shapes[k].iter().product();
        let (values, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        // SAFETY: as in `views`; the parts are disjoint, so the views are too.
        unsafe {
            ndarray::ArrayViewMut::from_shape_ptr(shapes[k].into_dimension(), values.as_mut_ptr())
        }
    })
}

/// A compiled model's `visit_parameters`: `layout` names and shapes each tensor in
/// visiting order, `offsets` says where it starts in `values` (and in `grads`, laid out
/// alike; `None` when backward has not filled them).
pub fn visit_flat<T: Float>(
    layout: ParameterLayout,
    offsets: &[usize],
    values: &mut [T],
    grads: Option<&[T]>,
    visitor: &mut dyn FnMut(Param<'_, T>),
) {
    for (&(name, shape), &offset) in layout.iter().zip(offsets) {
        let range = offset..offset + shape.iter().product::<usize>();
        visitor(Param {
            name,
            shape,
            value: &mut values[range.clone()],
            grad: grads.map(|g| &g[range]),
        });
    }
}

/// Returns the loss, or an error if it is NaN or infinite (diverged training, bad input).
pub fn check_loss<T: Float>(model: &str, loss: T) -> Result<T> {
    if !loss.is_finite() {
        return Err(Error::NotFinite {
            what: format!("{model} loss"),
            value: loss.to_string(),
        });
    }
    Ok(loss)
}

/// Makes `buffer` `[rows, cols]`, reallocating only when the shape changes: after the
/// first batch of a given size, a step allocates nothing. A batch too large to allocate
/// is an [`Error::TooLarge`] naming the model, not an abort.
pub fn resize<T: Float>(
    model: &str,
    buffer: &mut Array2<T>,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if buffer.dim() != (rows, cols) {
        // Free the old buffer first, so that growing does not need both at once.
        *buffer = Array2::zeros((0, 0));
        *buffer = crate::alloc::try_zeros(&format!("{model} workspace"), (rows, cols))?;
    }
    Ok(())
}

/// `x` itself when it is row-major (the kernels need contiguous rows), else a copy of it
/// in `buffer` (sized once, then reused).
pub fn standard_layout<'a, T: Float>(
    model: &str,
    x: ArrayView2<'a, T>,
    buffer: &'a mut Array2<T>,
) -> Result<ArrayView2<'a, T>> {
    if x.is_standard_layout() {
        return Ok(x);
    }
    resize(model, buffer, x.nrows(), x.ncols())?;
    buffer.assign(&x);
    Ok(buffer.view())
}

/// What the compiler derived for one value of a compiled model.
#[derive(Debug, Clone, Copy)]
pub struct ValueDerivation {
    /// The value's name (`"h1"`, `"loss"`), as the dynamic twin labels it.
    pub value: &'static str,
    /// Its forward equation: `h1 = tanh(h0)`.
    pub forward: &'static str,
    /// The kernel call that computes it: `kernels::tanh_forward(h0.view(), h1.view_mut())`.
    pub forward_code: &'static str,
    /// The backward equations run once its gradient is complete: `d_h0 = d_h1 ⊙ (1 - h1²)`.
    pub backward: &'static [&'static str],
    /// The kernel calls that compute them.
    pub backward_code: &'static [&'static str],
}

/// Writes the step-through page ([`crate::graph::explain`]) of a compiled model on one
/// batch: its dynamic twin, with the same weights, walked forward and backward, and
/// beside each value the equations `model!` derived for it and the generated kernel
/// calls that compute them.
///
/// ```
/// use nnscratch::compiled::{self, Target};
/// use rand::SeedableRng;
/// nnscratch::model! { struct Tiny { input: 2, Linear(3), Tanh, Linear(1), loss: MSELoss, } }
///
/// let model = Tiny::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(0));
/// let x = ndarray::arr2(&[[0.5, -1.0]]);
/// let t = ndarray::arr2(&[[0.25]]);
/// let html = compiled::explain_html(&model, x.view(), Target::Values(t.view()))?;
/// assert!(html.contains("kernels::tanh_forward"));
/// # Ok::<(), nnscratch::Error>(())
/// ```
pub fn explain<T: Float, M: CompiledModel<T>>(
    model: &M,
    x: ArrayView2<'_, T>,
    target: Target<'_, T>,
    path: impl AsRef<std::path::Path>,
) -> Result<()> {
    crate::io::write_atomic(path, explain_html(model, x, target)?.as_bytes())
}

/// The page of [`explain`] as a string.
pub fn explain_html<T: Float, M: CompiledModel<T>>(
    model: &M,
    x: ArrayView2<'_, T>,
    target: Target<'_, T>,
) -> Result<String> {
    check_input(M::NAME, M::INPUT_WIDTH, &x)?;
    let twin = model.to_dynamic();
    let input_name = M::DERIVATION.first().map_or("x", |d| d.value);
    let x = crate::Tensor::new(x.to_owned().into_dyn()).with_label(input_name);
    let loss = twin.loss(&x, target)?;
    let annotations = M::DERIVATION
        .iter()
        .map(|d| {
            let mut equations = vec![d.forward.to_string()];
            equations.extend(d.backward.iter().map(|e| e.to_string()));
            let mut code: Vec<String> = Vec::new();
            if !d.forward_code.is_empty() {
                code.push(d.forward_code.to_string());
            }
            code.extend(d.backward_code.iter().map(|c| c.to_string()));
            (
                d.value.to_string(),
                crate::graph::Annotation { equations, code },
            )
        })
        .collect();
    crate::graph::explain_annotated(&loss, M::NAME, &annotations)
}

/// One node of a compiled graph's picture, as the macro describes it.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    /// The value's name (`"h0"`, `"0.weight"`).
    pub name: &'static str,
    /// The op (`"Linear(1, 64)"`, `"Tanh"`, `"input"`, `"parameter"`).
    pub op: &'static str,
    /// The value's shape in words, e.g. `"[batch, 64]"` or `"[64, 1]"`.
    pub shape: &'static str,
    /// Whether this is a parameter leaf (drawn green) rather than an op or the input.
    pub parameter: bool,
    /// The operands: (node index, derived local partial derivative in words).
    pub inputs: &'static [(usize, &'static str)],
}

/// Builds the petgraph picture of a compiled model from the macro's description.
pub fn picture<T: Float>(nodes: &[NodeSpec]) -> Graph<T> {
    let mut graph = Graph::new();
    let indices: Vec<_> = nodes
        .iter()
        .map(|spec| {
            let kind = match (spec.parameter, spec.op) {
                (true, _) => NodeKind::Leaf(LeafKind::Parameter),
                (false, "input") => NodeKind::Leaf(LeafKind::Input),
                (false, op) => NodeKind::Op(op.to_string()),
            };
            let title = if spec.parameter || spec.op == "input" {
                spec.name.to_string()
            } else {
                format!("{} = {}", spec.name, spec.op)
            };
            graph.add_node(GraphNode {
                title,
                kind,
                shape: Vec::new(),
                value: None,
                grad: None,
                note: Some(spec.shape.to_string()),
            })
        })
        .collect();
    for (spec, &node) in nodes.iter().zip(&indices) {
        for (input, &(from, formula)) in spec.inputs.iter().enumerate() {
            graph.add_edge(
                indices[from],
                node,
                GraphEdge {
                    input,
                    partial: Partial::formula(formula),
                },
            );
        }
    }
    graph
}
