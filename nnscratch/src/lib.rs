//! # nnscratch: backpropagation from scratch, the way a compiler would do it
//!
//! nnscratch has two halves that compute the same gradients independently:
//!
//! * a small **dynamic autograd engine** ([`tensor`]), a Rust micrograd for scalars,
//!   vectors and matrices, with PyTorch-style layers ([`nn`]), optimizers ([`optim`]) and
//!   pictures of the computational graph with every partial derivative ([`graph`]);
//! * the **[`model!`] compiler** (`nnscratch-macros`), which derives the backward pass of
//!   a network at compile time and emits straight-line Rust for it.
//!
//! Weights leave as safetensors with PyTorch's names ([`io`]), whole networks as ONNX
//! for onnxruntime, tract and the other ONNX engines ([`onnx`]).
//!
//! This page is a tutorial; every example on it is compiled and run by `cargo test`.
//!
//! ## 1. One tensor, one derivative
//!
//! A [`Tensor`] remembers how it was computed. `backward()` applies the chain rule from
//! the output back to every tensor that requires a gradient. [`Tensor::value`] is
//! micrograd's `Value`, PyTorch's `torch.tensor(2.0, requires_grad=True)`:
//!
//! ```
//! use nnscratch::Tensor;
//!
//! let x = Tensor::value(2.0);
//! let y = &x * &x + 3.0 * &x; // y = x² + 3x
//! y.backward()?;
//! assert_eq!(y.item()?, 10.0);
//! assert_eq!(x.grad_value(), Some(7.0)); // dy/dx = 2x + 3
//! assert_eq!(y.to_string(), "tensor(10.0, grad_fn=<AddBackward>)");
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! `+ - * /` take a `Tensor`, a `&Tensor` or a number on either side (`2.0 * x`,
//! `x / &y`), and `+=` and friends record the op and rebind the handle, as PyTorch does
//! for a tensor that is not a leaf: micrograd's `c += c + 1` is `c += &c + 1.0`. The
//! element-wise functions are methods: `relu`, `tanh`, `sigmoid`, `powi`, `square`,
//! `abs`, `clamp`, `exp`, `ln`, and `maximum(&other)`. A tensor prints as PyTorch
//! prints it, and [`Tensor::grad_fn`] names the op that made it:
//!
//! ```
//! use nnscratch::Tensor;
//!
//! let a = Tensor::value(-4.0);
//! let mut c = &a + 2.0;
//! c += &c + 1.0; // c = c + (c + 1)
//! let g = c.powi(2) / 2.0;
//! g.backward()?;
//! assert_eq!(g.grad_fn().as_deref(), Some("DivBackward"));
//! assert_eq!(a.grad_value(), Some(-6.0)); // g = (2a + 5)²/2, dg/da = 2(2a + 5)
//! assert_eq!(a.to_string(), "tensor(-4.0, requires_grad=True)");
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! ## 2. A Linear layer, and the picture of its graph
//!
//! [`nn::Linear`](struct@nn::Linear) computes `y = x·Wᵀ + b` with three recorded ops. Summing the output and
//! calling `backward()` gives `dy/dW`, each row equal to `x`, and `dy/db = 1`:
//!
//! ```
//! use nnscratch::nn::{Linear, Module};
//! use nnscratch::{graph, Tensor};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let layer = Linear::<f64>::new(3, 2, &mut rng)?;
//! let y = layer.forward(&Tensor::arange(3))?.sum();
//! y.backward()?;
//! assert_eq!(layer.weight.grad().unwrap(), ndarray::arr2(&[[0., 1., 2.], [0., 1., 2.]]).into_dyn());
//! assert_eq!(layer.bias.as_ref().expect("Linear::new has a bias").grad().unwrap(), ndarray::arr1(&[1., 1.]).into_dyn());
//!
//! // Every node with its value and gradient, every edge with ∂output/∂input:
//! let dot = graph::to_dot(&graph::to_petgraph(&y));
//! let svg = graph::dot_to_svg(&dot)?; // pure Rust, no Graphviz needed
//! assert!(svg.contains("</svg>"));
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! ## 3. A network and a training loop
//!
//! [`nn::Sequential`] reads like PyTorch's and names its parameters as a PyTorch
//! `state_dict` does (`0.weight`, `0.bias`, `2.weight`, …). Optimizers update anything
//! that implements [`optim::Parameters`]:
//!
//! ```
//! use nnscratch::prelude::*;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut model = Sequential::<f64>::new([Linear(1, 16), Tanh, Linear(16, 1)], &mut rng)?;
//! let x = Tensor::from(ndarray::Array2::from_shape_fn((32, 1), |(i, _)| i as f64 / 16.0 - 1.0));
//! let target = Tensor::from(x.data().mapv(|v| (3.0 * v).sin()));
//! let mut adam = Adam::new(0.02);
//! let first = model.forward(&x)?.mse_loss(&target)?.item()?;
//! for _ in 0..300 {
//!     model.zero_grad();
//!     let loss = model.forward(&x)?.mse_loss(&target)?;
//!     loss.backward()?;
//!     adam.step(&mut model)?;
//! }
//! let last = model.forward_no_grad(&x)?.mse_loss(&target)?.item()?;
//! assert!(last < first / 10.0, "{first} -> {last}");
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! ## 4. The same network, compiled
//!
//! [`model!`] declares a network once. At compile time it builds the graph, checks every
//! width, derives the backward pass by the chain rule and emits straight-line Rust: one
//! kernel call per value forward, one per gradient backward, into buffers the model owns.
//! No tape, no `Rc`, no `dyn`, and no allocation in a step once the batch size is known.
//!
//! ```
//! use nnscratch::model;
//! use nnscratch::optim::{Optimizer, Sgd};
//! use rand::SeedableRng;
//!
//! model! {
//!     /// Fits y = sin(x).
//!     pub struct SineNet {
//!         input: 1,
//!         Linear(16), Tanh,          // Linear(out) infers its input width
//!         Linear(16, 16), Tanh,      // Linear(in, out) is checked against the width before it
//!         Linear(1),
//!         loss: MSELoss,
//!     }
//! }
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut net = SineNet::<f32>::new(&mut rng); // PyTorch's nn.Linear initialisation
//! let x = ndarray::Array2::from_shape_fn((32, 1), |(i, _)| i as f32 / 8.0 - 2.0);
//! let y = x.mapv(f32::sin);
//! let mut sgd = Sgd::new(0.1).momentum(0.9);
//! let first = net.loss(x.view(), y.view())?;
//! for _ in 0..300 {
//!     net.loss_backward(x.view(), y.view())?; // forward, loss, derived backward
//!     sgd.step(&mut net)?;
//! }
//! assert!(net.loss(x.view(), y.view())? < first / 20.0);
//!
//! // What the compiler derived, readable (also in SineNet's rustdoc):
//! assert!(SineNet::<f32>::BACKWARD_EQUATIONS.contains("d_h2 = d_h3 ⊙ (1 - h3²)"));
//! // The same weights on the dynamic engine, for checking and pictures:
//! let twin = net.to_dynamic();
//! # let _ = twin;
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! ### The language
//!
//! **Sequential form**: `input: N,` then layers, then `loss: ...,`. Layers are
//! `Linear(out)` or `Linear(in, out)` (add `bias = false` for none), `ReLU`, `LeakyReLU` (slope 0.01) or
//! `LeakyReLU(slope)` (any finite slope, as PyTorch), `Sigmoid`, `Tanh`, `Softplus`
//! (`beta = 1`, `threshold = 20`) or `Softplus(beta, threshold)`, `GELU` (exact) or
//! `GELU(approximate = "tanh")`, `SiLU`, `ELU` (`alpha = 1`) or `ELU(alpha)`,
//! `Identity`, and `Softmax`/`LogSoftmax` (over the features, `dim = 1` or `-1`). Losses
//! against value targets `[batch, out]`: `MSELoss`, `L1Loss`, `SmoothL1Loss(beta = 1.0)`,
//! `HuberLoss(delta = 1.0)` and `BCEWithLogitsLoss` (logits against probabilities); against
//! one class index per row: `CrossEntropyLoss` (softmax folded in) and `NLLLoss` (after
//! `LogSoftmax`). Every loss takes `reduction = "sum"` (the default is the mean), e.g.
//! `loss: HuberLoss(delta = 0.5, reduction = "sum"),`. Parameters are named
//! exactly as `nn.Sequential` names them: layer `i`'s are `i.weight` `[out, in]` and
//! `i.bias`; activations take an index but no parameters. Values are named `x`, `h0`,
//! `h1`, … in the derived equations.
//!
//! **Images and signals**: `input: [1, 28, 28]` (channels, height, width; `[C, L]` for
//! 1-D) declares each sample's shape; the batch stays a run-time size, and a batch is
//! given as rows `[batch, C·H·W]` (each sample's values channel-first in row-major order,
//! as PyTorch's `x.reshape(batch, -1)` of an NCHW batch). Then `Conv2d(8, 3)` (output
//! channels and kernel, the input channels inferred) or in full `Conv2d(1, 8, 3, stride =
//! 1, padding = 1, dilation = 1, groups = 1, bias = true)` with pairs `(3, 5)` allowed,
//! `Conv1d(..)`, `MaxPool2d(2)`, `AvgPool2d(2, stride = 1)`, `BatchNorm2d`, and `Flatten`
//! before the first `Linear`. Every size is computed and checked at compile time (PyTorch's
//! floor rule); a kernel that does not fit, a missing `Flatten` or a channel mismatch is a
//! compile error naming the sizes and the layer that made them.
//!
//! **Graph form**, for skip connections and fan-out: named values, `name = expression;`.
//! Expressions are layer calls (`Linear(value, out)`, `Tanh(value)`,
//! `LeakyReLU(value, slope)`, `Softplus(value, beta = 2.0)`, …), element-wise `a + b`,
//! `a - b` and `a * b` of equal widths, constant factors (`0.5 * a`, `a / 4.0`, `-a`),
//! `cat(a, b)` (or `cat((a, b), dim = 1)`) along the features, and names of other values;
//! a value used several times receives the sum of the gradients. A statement
//! `enc = Linear(4, 16);` declares a layer to apply by name, `enc(x)`, as often as
//! needed: its weights are shared and their gradient is the sum over the uses.
//! Exactly one `x = input(N);` and one `loss = MSELoss(out);` (any loss; its keyword
//! arguments follow the output: `loss = CrossEntropyLoss(out, reduction = "sum");`).
//!
//! ```
//! nnscratch::model! {
//!     pub struct Skip {
//!         x = input(4);
//!         h = Tanh(Linear(x, 16));
//!         y = Linear(h, 4) + x;            // a skip connection: x is used twice
//!         out = Linear(Sigmoid(y), 1);
//!         loss = MSELoss(out);
//!     }
//! }
//! assert_eq!(Skip::<f64>::PARAMETERS[0], ("h.weight", &[16usize, 4][..]));
//! ```
//!
//! A statement's Linear is named after the statement (`h.weight`, `h.bias`); when a
//! statement holds several, they are `name.0`, `name.1`, … innermost first. Values inside
//! a statement's expression are called `name_1`, `name_2`, … in the equations.
//!
//! Each model is a struct generic over the float type (`f32` by default, `f64` works)
//! with `new`, `forward`, `loss`, `loss_backward`, `to_dynamic`, `graph`, the constants
//! `INPUT_WIDTH`, `OUTPUT_WIDTH`, `PARAMETERS`, `BACKWARD_EQUATIONS`, and the
//! [`optim::Parameters`] and [`compiled::CompiledModel`] impls. Its parameters are
//! private, so no assignment can give them a shape the generated code does not expect:
//! read and write them by `state_dict` name with `parameter`, `gradient` and the
//! shape-checked `set_parameter` of [`optim::Parameters`]. Sizes are limited at compile
//! time (at most 2^28 parameters per layer and 2^28 per width), and a struct may not be
//! named `T` (the float type parameter). A mistake is a compile error on the offending
//! token:
//!
//! ```compile_fail
//! nnscratch::model! {
//!     struct Net { input: 4, Linear(8), ReLU, Linear(16, 2), loss: MSELoss, }
//! }
//! // error: width mismatch: expected 8, found 16; `Linear(16, ..)` reads the output of
//! //        `ReLU` (layer 1) after `Linear(8)` (layer 0), which has width 8
//! ```
//!
//! Layer arguments are passed as in PyTorch: positionally, then by keyword
//! (`Softplus(2.0, threshold = 10)`, `LeakyReLU(negative_slope = 0.2)`).
//!
//! Run-time input errors (a wrong input width, a wrong target shape, a class index out of
//! range, a non-finite loss) are `Err`s, never panics.
//!
//! ## 5. Data and weights
//!
//! [`data`] holds a real data set compiled into the crate (1797 handwritten digits), an
//! MNIST IDX reader, seeded splits and mini-batches. [`io`] saves and loads parameters as
//! safetensors under their PyTorch names, so weights move to PyTorch and back:
//!
//! ```
//! # nnscratch::model! { struct SineNet { input: 1, Linear(8), Tanh, Linear(1), loss: MSELoss, } }
//! use rand::SeedableRng;
//! let mut net = SineNet::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(0));
//! let path = std::env::temp_dir().join(format!("sine-{}.safetensors", std::process::id()));
//! nnscratch::io::save_safetensors(&mut net, &path)?; // atomic: never half-written
//! // In Python: net.load_state_dict(safetensors.torch.load_file(path)) gives the same outputs.
//! let mut copy = SineNet::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(1));
//! nnscratch::io::load_safetensors(&mut copy, &path)?; // f32 file into an f64 model
//! use nnscratch::optim::Parameters; // parameters by their state_dict names
//! let (ours, theirs) = (copy.parameter("0.weight").unwrap(), net.parameter("0.weight").unwrap());
//! assert_eq!(ours.mapv(|w| w as f32), theirs);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! The examples put it together: `function_approximation` (the seed project's task, with
//! a progress bar and SVG plots), `digits` and `mnist` (classification).
//!
//! ## Where a layer lives
//!
//! Each layer kind is read in one place per crate. In the `model!` compiler
//! (`nnscratch-macros/src/layers/`), one file holds everything the compiler knows about
//! it: its syntax and argument checks, its shape rule, the kernel calls of its forward
//! and backward passes, its derived equations, its picture labels and its dynamic twin.
//! In this crate, files of the same name in `kernels/` (what compiled code calls,
//! forward and derivative side by side), `tensor/` (the dynamic engine's op) and `nn/`:
//!
//! | layer | `model!` (`nnscratch-macros/src/`) | kernel (`src/kernels/`) | dynamic op (`src/tensor/`) | layer (`src/nn/`) |
//! |---|---|---|---|---|
//! | `Linear` | `layers/linear.rs` | `linear.rs` (+ `gemm.rs`) | `linalg.rs` (`matmul`, `t`) + `arith.rs` | `linear.rs` ([`nn::Linear`](struct@nn::Linear)) |
//! | `ReLU` | `layers/relu.rs` | `relu.rs` | `relu.rs` | `sequential.rs` ([`nn::LayerSpec::ReLU`]) |
//! | `LeakyReLU` | `layers/leaky_relu.rs` | `leaky_relu.rs` | `leaky_relu.rs` | `sequential.rs` ([`nn::LayerSpec::LeakyReLU`]) |
//! | `Sigmoid` | `layers/sigmoid.rs` | `sigmoid.rs` | `sigmoid.rs` | `sequential.rs` ([`nn::LayerSpec::Sigmoid`]) |
//! | `Tanh` | `layers/tanh.rs` | `tanh.rs` (+ `math.rs`) | `tanh.rs` | `sequential.rs` ([`nn::LayerSpec::Tanh`]) |
//! | `Softplus` | `layers/softplus.rs` | `softplus.rs` | `softplus.rs` | `softplus.rs` ([`nn::Softplus`](struct@nn::Softplus)) |
//! | `GELU` | `layers/gelu.rs` | `gelu.rs` | `gelu.rs` | `sequential.rs` ([`nn::LayerSpec::GELU`]) |
//! | `SiLU` | `layers/silu.rs` | `silu.rs` | `silu.rs` | `sequential.rs` ([`nn::LayerSpec::SiLU`]) |
//! | `ELU` | `layers/elu.rs` | `elu.rs` | `elu.rs` | `sequential.rs` ([`nn::LayerSpec::ELU`]) |
//! | `Identity` | `layers/identity.rs` | `identity.rs` | `identity.rs` | `sequential.rs` ([`nn::LayerSpec::Identity`]) |
//! | `Softmax`, `LogSoftmax` | `layers/softmax.rs` | `softmax.rs` | `softmax.rs` | `sequential.rs` ([`nn::LayerSpec::Softmax`], [`nn::LayerSpec::LogSoftmax`]) |
//! | `BatchNorm1d`, `BatchNorm2d` | `layers/batch_norm.rs` | `batch_norm.rs` | composed: `reduce.rs`, `arith.rs`, `unary.rs` | `batch_norm.rs` ([`nn::BatchNorm1d`](struct@nn::BatchNorm1d)) |
//! | `LayerNorm` | `layers/layer_norm.rs` | `layer_norm.rs` | composed: `reduce.rs`, `arith.rs`, `unary.rs`, `linalg.rs` | `layer_norm.rs` ([`nn::LayerNorm`](struct@nn::LayerNorm)) |
//! | `Dropout` | `layers/dropout.rs` | `dropout.rs` (and its mask generator) | `arith.rs` (times a constant mask) | `dropout.rs` ([`nn::Dropout`](struct@nn::Dropout)) |
//! | `+`, `-`, `*`, `2.0 * a` | `layers/elementwise.rs` | `elementwise.rs` | `arith.rs` | [`nn::GraphModule`] |
//! | `cat(a, b)` | `layers/cat.rs` | `elementwise.rs` | `cat.rs` | [`nn::GraphModule`] |
//! | `Conv2d`, `Conv1d` | `layers/conv.rs` | `conv.rs` (+ `gemm.rs`) | `conv.rs` | `conv.rs` ([`nn::Conv2d`](struct@nn::Conv2d), [`nn::Conv1d`](struct@nn::Conv1d)) |
//! | `MaxPool2d`, `AvgPool2d` | `layers/pool.rs` | `conv.rs` | `pool.rs` | `conv.rs` ([`nn::Pool2d`]) |
//! | `Flatten` | `layers/flatten.rs` | `identity.rs` | `shape.rs` (`flatten`) | `sequential.rs` ([`nn::LayerSpec::Flatten`]) |
//! | `MSELoss`, `L1Loss`, `SmoothL1Loss`, `HuberLoss`, `BCEWithLogitsLoss`, `CrossEntropyLoss`, `NLLLoss` | `layers/loss.rs` | `loss.rs` | `loss.rs` | [`compiled::Loss`] |
//!
//! A new layer kind is a file in each of these places plus registration: a row of
//! `KINDS` in `layers/mod.rs`, the `mod`/`pub use` lines, and its variants in
//! [`nn::LayerSpec`], [`nn::Layer`] and [`nn::GraphOp`] (what `Sequential` and
//! `to_dynamic()` build), and its ONNX mapping in [`onnx`] (the exporter's matches have
//! no catch-all arm, so a new variant does not compile without one; add its name to
//! [`onnx::LAYER_KINDS`] and a model using it to `tests/onnx_export.rs`, whose
//! `every_layer_kind_is_exported_and_checked` fails otherwise). A layer with state besides parameters declares it in its
//! `layers/` file too: buffers saved with the weights (BatchNorm's running statistics),
//! a dropout generator, and workspace buffers kept from forward for backward.
//!
//! ## Training and evaluation modes
//!
//! Every model starts in training mode. `model.eval()` (compiled or dynamic) switches
//! Dropout to the identity and BatchNorm to its running statistics; `model.train()`
//! switches back. Dropout's masks come from a generator the model owns (seeded by `new`
//! and by `manual_seed`), counter-based so that a compiled model and its `to_dynamic()`
//! twin draw the same masks; [`check::gradients`] holds them fixed
//! (`fix_dropout_masks`), so finite differences see one function, and restores the
//! running statistics its forward passes moved.
//!
//! ## Correctness
//!
//! Every op, layer, loss and optimizer of the dynamic engine is compared with PyTorch
//! (fixtures written by `tests/fixtures/generate.py`, f64 to 1e-10 and f32 to 1e-5
//! relative) and every op's gradient with central finite differences on random shapes.
//! Compiled models are compared with their dynamic twins, with finite differences
//! ([`check::gradients`]) and with PyTorch.

#![warn(missing_docs)]

pub mod alloc;
pub mod check;
pub mod compiled;
pub mod data;
mod error;
mod float;
pub mod graph;
pub mod init;
pub mod io;
pub mod kernels;
pub mod nn;
pub mod onnx;
pub mod optim;
pub mod tensor;

pub use error::{Error, Result};
pub use float::Float;
pub use kernels::Reduction;
pub use tensor::Tensor;

/// Compiles a network declaration into a struct with a derived backward pass; the
/// language is described in the [crate documentation](crate#the-language).
pub use nnscratch_macros::model;

// Re-exported so that code generated by `model!` (and users) name the same versions.
pub use ndarray;
pub use rand;

/// The names a training script needs, in one import: `use nnscratch::prelude::*;`.
pub mod prelude {
    pub use crate::Reduction;
    pub use crate::compiled::{CompiledModel, Target};
    pub use crate::model;
    pub use crate::nn::{
        BatchNorm1d, Dropout, ELU, GELU, Identity, LayerNorm, LeakyReLU, Linear, LogSoftmax,
        Module, ReLU, Sequential, SiLU, Sigmoid, Softmax, Softplus, Tanh,
    };
    pub use crate::optim::{Adam, Optimizer, Parameters, Sgd};
    pub use crate::{Error, Float, Result, Tensor};
}
