//! The dynamic autograd engine: a Rust micrograd for scalars, vectors and matrices.
//!
//! A [`Tensor`] is a cheap handle (an `Rc`) to a node of a computational graph. Every
//! operation builds a new node that remembers its inputs and a `Function` that knows
//! the local derivative; [`Tensor::backward`] sorts the graph topologically once and
//! walks it in reverse, sending each node's gradient to its inputs with `+=`. That is
//! the whole algorithm; the files of this module are the ops, one family per file, each
//! op's forward and its derivative side by side:
//!
//! | file            | ops |
//! |-----------------|-----|
//! | `arith.rs`      | `+ - * /` with broadcasting, `neg` |
//! | `linalg.rs`     | `matmul`, `t` (transpose) |
//! | `cat.rs`        | `cat` along an axis |
//! | `conv.rs`       | `conv1d`, `conv2d` (stride, padding, dilation, groups) |
//! | `pool.rs`       | `max_pool2d`, `avg_pool2d` |
//! | `reduce.rs`     | `sum`, `mean`, `sum_axis`, `mean_axis` |
//! | `shape.rs`      | `reshape`, `flatten`, `unsqueeze`, `squeeze`, `permute`, `transpose`, `sum_dims`, `mean_dims` |
//! | `unary.rs`      | `exp`, `ln`, `powf`, and what every element-wise op shares |
//! | `relu.rs`, `leaky_relu.rs`, `sigmoid.rs`, `tanh.rs`, `softplus.rs`, `gelu.rs`, `silu.rs`, `elu.rs`, `identity.rs` | the activations, one per file |
//! | `softmax.rs`    | `softmax`, `log_softmax` |
//! | `loss.rs`       | `mse_loss`, `l1_loss`, `smooth_l1_loss`, `huber_loss`, `binary_cross_entropy_with_logits`, `cross_entropy`, `nll_loss` |
//!
//! There is no global state: no node ids, no registry, no "no-grad" switch. An op records
//! its inputs only when one of them requires a gradient, so evaluating on
//! [`Tensor::detach`]ed values (or with [`crate::nn::Module::forward_no_grad`]) records
//! nothing.

mod arith;
mod cat;
mod conv;
mod display;
mod elu;
mod gelu;
mod identity;
mod leaky_relu;
mod linalg;
mod loss;
mod pool;
mod reduce;
mod relu;
mod shape;
mod sigmoid;
mod silu;
mod softmax;
mod softplus;
mod tanh;
mod unary;

pub use linalg::{kernel_path, num_threads, set_kernel_path, set_num_threads};
pub(crate) use sigmoid::sigmoid;

/// PyTorch's floor rule for a convolution's or a pooling's output size (`None` when the
/// window does not fit).
pub(crate) fn output_size(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    conv::Window::output_size(size, kernel, stride, padding, dilation)
}

use std::cell::{Ref, RefCell, RefMut};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};

use crate::{Error, Float, Result};

/// A node of the computational graph, seen through a cheap, clonable handle.
///
/// Cloning a `Tensor` clones the handle, not the data: both handles are the same node.
pub struct Tensor<T: Float = f32>(Rc<Node<T>>);

/// What a leaf is, which decides its colour in graph pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// A trainable weight or bias (created with [`Tensor::parameter`]).
    Parameter,
    /// Data fed into the graph (created with [`Tensor::new`] or `From`).
    Input,
    /// A fixed number, such as the `2.0` in `x * 2.0`.
    Constant,
}

/// How a node came to be: a leaf, or the output of an op on parent nodes.
pub(crate) enum Origin<T: Float> {
    Leaf(LeafKind),
    Op {
        function: Box<dyn Function<T>>,
        parents: Vec<Tensor<T>>,
    },
}

pub(crate) struct Node<T: Float> {
    /// The value. Shared (an `Rc`) so that [`Tensor::detach`] is free and sees updates.
    data: Rc<RefCell<ArrayD<T>>>,
    grad: RefCell<Option<ArrayD<T>>>,
    requires_grad: std::cell::Cell<bool>,
    origin: Origin<T>,
    label: RefCell<Option<String>>,
}

/// The local partial derivative of an op's output with respect to one input, for
/// pictures and for learners: a formula and, where it is an array, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial<T: Float> {
    /// The derivative in words, e.g. `"1 - tanh(x)^2"` or `"dY·Bᵀ"`.
    pub formula: String,
    /// Its value, when the derivative is element-wise (same shape as the input) or a
    /// matrix the upstream gradient is multiplied with.
    pub value: Option<ArrayD<T>>,
}

impl<T: Float> Partial<T> {
    pub(crate) fn formula(formula: impl Into<String>) -> Self {
        Partial {
            formula: formula.into(),
            value: None,
        }
    }

    pub(crate) fn with_value(formula: impl Into<String>, value: ArrayD<T>) -> Self {
        Partial {
            formula: formula.into(),
            value: Some(value),
        }
    }
}

/// An op's backward half: how the gradient of the output becomes gradients of the inputs.
///
/// Each op in this module implements it right beside its forward function.
pub(crate) trait Function<T: Float> {
    /// The op's name as drawn in pictures (`"matmul"`, `"tanh"`, `"leaky_relu(0.01)"`).
    fn name(&self) -> String;

    /// The op's forward computation again, from its inputs' values: what
    /// [`crate::graph::explain`] re-runs to check gradients by finite differences.
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T>;

    /// Given the inputs' values, the output's value and `dL/d(output)`, returns
    /// `dL/d(input)` for every input, each with that input's shape.
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        output: &ArrayD<T>,
        grad_output: &ArrayD<T>,
    ) -> Vec<ArrayD<T>>;

    /// [`Function::backward`] when only some inputs need a gradient (`needs[i]`); an op
    /// whose input gradients are expensive (matmul) skips the unneeded ones and returns
    /// an empty array in their place. The default computes them all.
    fn backward_needed(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        output: &ArrayD<T>,
        grad_output: &ArrayD<T>,
        needs: &[bool],
    ) -> Vec<ArrayD<T>> {
        let _ = needs;
        self.backward(inputs, output, grad_output)
    }

    /// The local partial derivative of the output with respect to input `index`.
    fn partial(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        output: &ArrayD<T>,
        index: usize,
    ) -> Partial<T>;
}

impl<T: Float> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Tensor(Rc::clone(&self.0))
    }
}

impl<T: Float> Tensor<T> {
    fn leaf(data: ArrayD<T>, kind: LeafKind, requires_grad: bool) -> Self {
        Tensor(Rc::new(Node {
            data: Rc::new(RefCell::new(data)),
            grad: RefCell::new(None),
            requires_grad: std::cell::Cell::new(requires_grad),
            origin: Origin::Leaf(kind),
            label: RefCell::new(None),
        }))
    }

    /// An input leaf holding `data` (no gradient is kept for it).
    pub fn new(data: ArrayD<T>) -> Self {
        Self::leaf(data, LeafKind::Input, false)
    }

    /// A trainable leaf: it requires a gradient and is drawn as a parameter.
    pub fn parameter(data: ArrayD<T>) -> Self {
        Self::leaf(data, LeafKind::Parameter, true)
    }

    /// A constant leaf, drawn as a constant (scalars in `x * 2.0` become these).
    pub fn constant(data: ArrayD<T>) -> Self {
        Self::leaf(data, LeafKind::Constant, false)
    }

    /// A 0-D input tensor holding one number (no gradient is kept for it; see
    /// [`Tensor::value`] for one that tracks its gradient).
    pub fn scalar(value: T) -> Self {
        Self::new(ArrayD::from_elem(IxDyn(&[]), value))
    }

    /// Turns on gradient tracking for a leaf and returns it, for chaining, as PyTorch's
    /// `requires_grad_()`: `Tensor::from([1.0, 2.0]).requires_grad_()`. An op's output
    /// already tracks gradients when any of its inputs does; it is returned unchanged.
    pub fn requires_grad_(self) -> Self {
        if self.is_leaf() {
            self.0.requires_grad.set(true);
        }
        self
    }

    /// The 1-D tensor `[0, 1, ..., n-1]`, like `torch.arange(n)`.
    pub fn arange(n: usize) -> Self {
        Self::new(ArrayD::from_shape_fn(IxDyn(&[n]), |i| T::of(i[0] as f64)))
    }

    /// A tensor of zeros of the given shape.
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated; use
    /// [`Tensor::try_zeros`] for a shape that comes from user input.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::try_zeros(shape).unwrap_or_else(|error| panic!("Tensor::zeros: {error}"))
    }

    /// A tensor of zeros of the given shape, or an [`Error::TooLarge`]
    /// naming the shape when it overflows or cannot be allocated.
    pub fn try_zeros(shape: &[usize]) -> crate::Result<Self> {
        Ok(Self::new(crate::alloc::try_zeros(
            "Tensor::zeros",
            IxDyn(shape),
        )?))
    }

    /// Builds an op's output node. The op is recorded (its inputs kept for backward)
    /// only when one of the inputs requires a gradient.
    pub(crate) fn from_op(
        data: ArrayD<T>,
        function: impl Function<T> + 'static,
        parents: Vec<Tensor<T>>,
    ) -> Self {
        let requires_grad = parents.iter().any(Tensor::requires_grad);
        if !requires_grad {
            return Self::leaf(data, LeafKind::Input, false);
        }
        Tensor(Rc::new(Node {
            data: Rc::new(RefCell::new(data)),
            grad: RefCell::new(None),
            requires_grad: std::cell::Cell::new(true),
            origin: Origin::Op {
                function: Box::new(function),
                parents,
            },
            label: RefCell::new(None),
        }))
    }

    /// Sets a label, used only in graph pictures (`"x"`, `"0.weight"`).
    pub fn with_label(self, label: impl Into<String>) -> Self {
        *self.0.label.borrow_mut() = Some(label.into());
        self
    }

    /// The label given with [`Tensor::with_label`], if any.
    pub fn label(&self) -> Option<String> {
        self.0.label.borrow().clone()
    }

    /// The shape, e.g. `[batch, features]`.
    pub fn shape(&self) -> Vec<usize> {
        self.0.data.borrow().shape().to_vec()
    }

    /// Number of dimensions: 0, 1 or 2.
    pub fn ndim(&self) -> usize {
        self.0.data.borrow().ndim()
    }

    /// Borrows the value.
    pub fn data(&self) -> Ref<'_, ArrayD<T>> {
        self.0.data.borrow()
    }

    /// Borrows the value mutably, for in-place updates such as an optimizer step.
    ///
    /// Changing a value that an unfinished graph depends on changes what `backward()`
    /// computes, as in PyTorch without its version counter: update after backward.
    pub fn data_mut(&self) -> RefMut<'_, ArrayD<T>> {
        self.0.data.borrow_mut()
    }

    /// A copy of the value.
    pub fn to_array(&self) -> ArrayD<T> {
        self.0.data.borrow().clone()
    }

    /// Replaces the value with `value`, which must have the same shape.
    pub fn assign(&self, value: &ArrayD<T>) -> Result<()> {
        let shape = self.shape();
        if value.shape() != shape.as_slice() {
            return Err(Error::BadShape {
                op: format!("assign to tensor of shape {shape:?}"),
                expected: format!("a value of shape {shape:?}"),
                found: value.shape().to_vec(),
            });
        }
        self.0.data.borrow_mut().assign(value);
        Ok(())
    }

    /// The single number of a tensor with one element.
    pub fn item(&self) -> Result<T> {
        let data = self.0.data.borrow();
        if data.len() != 1 {
            return Err(Error::BadShape {
                op: "item".into(),
                expected: "a tensor with exactly one element".into(),
                found: data.shape().to_vec(),
            });
        }
        Ok(data.iter().copied().next().unwrap_or_else(T::zero))
    }

    /// The gradient of a 0-D tensor (or of a tensor of one element) as a number, once
    /// `backward()` has reached it: micrograd's `x.grad`.
    pub fn grad_value(&self) -> Option<T> {
        let grad = self.grad_ref();
        grad.as_ref()
            .filter(|g| g.len() == 1)
            .and_then(|g| g.iter().next().copied())
    }

    /// Whether gradients flow to (and are kept for) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Turns gradient tracking on or off for a leaf.
    pub fn set_requires_grad(&self, requires_grad: bool) -> Result<()> {
        if !self.is_leaf() {
            return Err(Error::InvalidArgument {
                what: "set_requires_grad".into(),
                expected: "a leaf tensor (one not computed by an op)".into(),
                found: "the output of an op; call .detach() first".into(),
            });
        }
        self.0.requires_grad.set(requires_grad);
        Ok(())
    }

    /// Whether this tensor was created directly rather than computed by a recorded op.
    pub fn is_leaf(&self) -> bool {
        matches!(self.0.origin, Origin::Leaf(_))
    }

    /// For a leaf, what kind of leaf it is.
    pub fn leaf_kind(&self) -> Option<LeafKind> {
        match self.0.origin {
            Origin::Leaf(kind) => Some(kind),
            Origin::Op { .. } => None,
        }
    }

    /// The gradient accumulated by `backward()` calls, if any reached this tensor.
    ///
    /// Kept for every tensor that requires a gradient, intermediate ones included, so a
    /// picture of the graph can show them all.
    pub fn grad(&self) -> Option<ArrayD<T>> {
        self.0.grad.borrow().clone()
    }

    /// Borrows the gradient without copying it.
    pub fn grad_ref(&self) -> Ref<'_, Option<ArrayD<T>>> {
        self.0.grad.borrow()
    }

    /// Borrows the gradient mutably (optimizers and `io` use this).
    pub fn grad_mut(&self) -> RefMut<'_, Option<ArrayD<T>>> {
        self.0.grad.borrow_mut()
    }

    /// Forgets the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        *self.0.grad.borrow_mut() = None;
    }

    /// A new leaf sharing this tensor's value but cut from its graph: nothing computed
    /// from it is recorded, and no gradient flows back through it.
    pub fn detach(&self) -> Self {
        Tensor(Rc::new(Node {
            data: Rc::clone(&self.0.data),
            grad: RefCell::new(None),
            requires_grad: std::cell::Cell::new(false),
            origin: Origin::Leaf(LeafKind::Input),
            label: RefCell::new(self.label()),
        }))
    }

    /// Whether two handles are the same node.
    pub fn same_node(&self, other: &Tensor<T>) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn node_key(&self) -> *const Node<T> {
        Rc::as_ptr(&self.0)
    }

    /// The op's inputs (empty for a leaf).
    pub fn parents(&self) -> &[Tensor<T>] {
        match &self.0.origin {
            Origin::Leaf(_) => &[],
            Origin::Op { parents, .. } => parents,
        }
    }

    /// The op's name, or `None` for a leaf.
    pub fn op_name(&self) -> Option<String> {
        match &self.0.origin {
            Origin::Leaf(_) => None,
            Origin::Op { function, .. } => Some(function.name()),
        }
    }

    /// The local partial derivative `∂self/∂parents()[index]`, or `None` for a leaf or
    /// an index past the inputs.
    pub fn partial(&self, index: usize) -> Option<Partial<T>> {
        match &self.0.origin {
            Origin::Leaf(_) => None,
            Origin::Op { function, parents } => {
                if index >= parents.len() {
                    return None;
                }
                let inputs: Vec<_> = parents.iter().map(|p| p.0.data.borrow()).collect();
                Some(function.partial(&inputs, &self.0.data.borrow(), index))
            }
        }
    }

    /// Every node this tensor depends on, itself last, in topological order (each
    /// node after all its inputs). Iterative, so deep graphs cannot overflow the stack.
    pub fn topological_order(&self) -> Vec<Tensor<T>> {
        let mut order = Vec::new();
        let mut visited: HashSet<*const Node<T>> = HashSet::new();
        // (node, whether its parents were already pushed)
        let mut stack: Vec<(Tensor<T>, bool)> = vec![(self.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                order.push(node);
                continue;
            }
            if !visited.insert(node.node_key()) {
                continue;
            }
            stack.push((node.clone(), true));
            for parent in node.parents().iter().rev() {
                if !visited.contains(&parent.node_key()) {
                    stack.push((parent.clone(), false));
                }
            }
        }
        order
    }

    /// Backpropagation from a scalar: fills `grad()` of every tensor this one depends on
    /// that requires a gradient, with `d(self)/d(that tensor)`. Gradients accumulate
    /// across calls, as in PyTorch; call [`Tensor::zero_grad`] between steps.
    pub fn backward(&self) -> Result<()> {
        let shape = self.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(Error::NonScalarBackward { shape });
        }
        self.backward_with_grad(ArrayD::ones(IxDyn(&shape)))
    }

    /// Backpropagation with an explicit upstream gradient `dL/d(self)` of this tensor's
    /// shape (PyTorch's `tensor.backward(gradient)`), for non-scalar outputs.
    pub fn backward_with_grad(&self, grad: ArrayD<T>) -> Result<()> {
        let shape = self.shape();
        if grad.shape() != shape.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "backward_with_grad",
                lhs: shape,
                rhs: grad.shape().to_vec(),
                expected: "the upstream gradient must have the tensor's shape".into(),
            });
        }
        if !self.requires_grad() {
            return Ok(());
        }
        self.walk_backward(grad, false, |node, grad_output, _| {
            let mut stored = node.0.grad.borrow_mut();
            match stored.as_mut() {
                Some(sum) => *sum += &grad_output,
                None => *stored = Some(grad_output),
            }
        });
        Ok(())
    }
}

impl<T: Float> Tensor<T> {
    /// The backward pass itself, seeded with `grad` at `self`: nodes in reverse
    /// topological order, each sending its complete gradient to its parents (summed
    /// where a value is used more than once). `on_step` sees every step in that order:
    /// the node, its complete gradient, and (when `record`) what it sent to each parent
    /// that needs a gradient (the parent's index, `∂L/∂node · ∂node/∂parent`).
    /// [`Tensor::backward_with_grad`] stores the gradients; `graph::explain` records the
    /// steps, so the page shows exactly the order `backward()` uses.
    pub(crate) fn walk_backward(
        &self,
        grad: ArrayD<T>,
        record: bool,
        mut on_step: impl FnMut(&Tensor<T>, ArrayD<T>, Vec<(usize, ArrayD<T>)>),
    ) {
        // Gradients of this call, by node; handed to `on_step` once a node is finished.
        let mut pending: HashMap<*const Node<T>, ArrayD<T>> = HashMap::new();
        pending.insert(self.node_key(), grad);
        for node in self.topological_order().iter().rev() {
            let Some(grad_output) = pending.remove(&node.node_key()) else {
                continue;
            };
            let mut sent = Vec::new();
            if let Origin::Op { function, parents } = &node.0.origin {
                let input_grads = {
                    let inputs: Vec<_> = parents.iter().map(|p| p.0.data.borrow()).collect();
                    let needs: Vec<bool> = parents.iter().map(Tensor::requires_grad).collect();
                    function.backward_needed(&inputs, &node.0.data.borrow(), &grad_output, &needs)
                };
                for (index, (parent, input_grad)) in parents.iter().zip(input_grads).enumerate() {
                    if !parent.requires_grad() {
                        continue;
                    }
                    if record {
                        sent.push((index, input_grad.clone()));
                    }
                    // `+=`: a value used twice receives the sum of both gradients.
                    match pending.get_mut(&parent.node_key()) {
                        Some(sum) => *sum += &input_grad,
                        None => {
                            pending.insert(parent.node_key(), input_grad);
                        }
                    }
                }
            }
            on_step(node, grad_output, sent);
        }
    }

    /// Runs the recorded ops again, in topological order, from the leaves' current
    /// values, and returns this tensor's value: what it would be if the graph were built
    /// anew. Change a parameter's data with [`Tensor::assign`], and `recompute` shows
    /// its effect without rebuilding the graph.
    pub fn recompute(&self) -> ArrayD<T> {
        self.replay(&HashMap::new())
    }

    /// [`Tensor::recompute`] with some leaves' values replaced (by node).
    pub(crate) fn replay(&self, leaves: &HashMap<*const Node<T>, ArrayD<T>>) -> ArrayD<T> {
        let mut values: HashMap<*const Node<T>, ArrayD<T>> = HashMap::new();
        for node in self.topological_order() {
            let key = node.node_key();
            let value = match &node.0.origin {
                Origin::Leaf(_) => match leaves.get(&key) {
                    Some(value) => value.clone(),
                    None => node.0.data.borrow().clone(),
                },
                Origin::Op { function, parents } => {
                    let inputs: Vec<&ArrayD<T>> =
                        parents.iter().map(|p| &values[&p.node_key()]).collect();
                    function.forward(&inputs)
                }
            };
            values.insert(key, value);
        }
        values
            .remove(&self.node_key())
            .unwrap_or_else(|| unreachable!("the root is in its own topological order"))
    }
}

impl<T: Float> Drop for Node<T> {
    /// Drops a long chain of nodes with a loop instead of recursion, so that freeing a
    /// graph a million ops deep does not overflow the stack.
    fn drop(&mut self) {
        let mut stack = match &mut self.origin {
            Origin::Op { parents, .. } => std::mem::take(parents),
            Origin::Leaf(_) => return,
        };
        while let Some(tensor) = stack.pop() {
            if let Ok(mut node) = Rc::try_unwrap(tensor.0)
                && let Origin::Op { parents, .. } = &mut node.origin
            {
                stack.append(parents);
            }
        }
    }
}

impl Tensor<f64> {
    /// A number that tracks its gradient: micrograd's `Value(-4.0)`, PyTorch's
    /// `torch.tensor(-4.0, requires_grad=True)`. In `f64`, like a Python float, so that
    /// `Tensor::value(-4.0)` needs no type annotation; in `f32`, write
    /// `Tensor::from(-4.0f32).requires_grad_()`.
    ///
    /// ```
    /// use nnscratch::Tensor;
    /// let x = Tensor::value(-4.0);
    /// let y = (2.0 * &x + 2.0 + &x).relu();
    /// y.backward()?;
    /// assert_eq!(x.grad_value(), Some(0.0)); // y = relu(3x + 2) is flat at x = -4
    /// assert_eq!(x.to_string(), "tensor(-4.0, requires_grad=True)");
    /// # Ok::<(), nnscratch::Error>(())
    /// ```
    pub fn value(value: f64) -> Self {
        Self::parameter(ArrayD::from_elem(IxDyn(&[]), value))
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Tensor");
        if let Some(label) = self.label() {
            s.field("label", &label);
        }
        if let Some(op) = self.op_name() {
            s.field("op", &op);
        }
        s.field("data", &*self.data());
        if let Some(grad) = &*self.grad_ref() {
            s.field("grad", grad);
        }
        s.field("requires_grad", &self.requires_grad()).finish()
    }
}

impl<T: Float> From<ArrayD<T>> for Tensor<T> {
    fn from(data: ArrayD<T>) -> Self {
        Tensor::new(data)
    }
}

impl<T: Float> From<ndarray::Array1<T>> for Tensor<T> {
    fn from(data: ndarray::Array1<T>) -> Self {
        Tensor::new(data.into_dyn())
    }
}

impl<T: Float> From<ndarray::Array2<T>> for Tensor<T> {
    fn from(data: ndarray::Array2<T>) -> Self {
        Tensor::new(data.into_dyn())
    }
}

impl<T: Float> From<ndarray::Array0<T>> for Tensor<T> {
    fn from(data: ndarray::Array0<T>) -> Self {
        Tensor::new(data.into_dyn())
    }
}

impl<T: Float> From<T> for Tensor<T> {
    fn from(value: T) -> Self {
        Tensor::scalar(value)
    }
}

impl<T: Float> From<Vec<T>> for Tensor<T> {
    fn from(values: Vec<T>) -> Self {
        Tensor::new(ndarray::Array1::from(values).into_dyn())
    }
}

impl<T: Float, const N: usize> From<[T; N]> for Tensor<T> {
    fn from(values: [T; N]) -> Self {
        Tensor::from(values.to_vec())
    }
}

impl<T: Float, const N: usize, const M: usize> From<[[T; N]; M]> for Tensor<T> {
    fn from(rows: [[T; N]; M]) -> Self {
        Tensor::new(ndarray::Array2::from(rows.to_vec()).into_dyn())
    }
}
