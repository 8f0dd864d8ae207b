//! # nnscratch: backpropagation from scratch, the way a compiler would do it
//!
//! nnscratch has two halves that compute the same gradients independently:
//!
//! * a small **dynamic autograd engine** ([`tensor`]), a Rust micrograd for scalars,
//!   vectors and matrices, with PyTorch-style layers ([`nn`]), optimizers ([`optim`]) and
//!   pictures of the computational graph with every partial derivative ([`graph`]);
//! * the **`model!` compiler** (`nnscratch-macros`), which derives the backward pass of a
//!   network at compile time and emits straight-line Rust for it.
//!
//! This page is a tutorial; every example on it is compiled and run by `cargo test`.
//!
//! ## 1. One tensor, one derivative
//!
//! A [`Tensor`] remembers how it was computed. `backward()` applies the chain rule from
//! the output back to every tensor that requires a gradient:
//!
//! ```
//! use nnscratch::Tensor;
//!
//! let x = Tensor::<f64>::parameter(ndarray::arr0(2.0).into_dyn());
//! let y = &(&x * &x) + &(&x * 3.0); // y = x² + 3x
//! y.backward()?;
//! assert_eq!(y.item()?, 10.0);
//! assert_eq!(x.grad().unwrap()[[]], 7.0); // dy/dx = 2x + 3
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
//! assert_eq!(layer.bias.grad().unwrap(), ndarray::arr1(&[1., 1.]).into_dyn());
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
//! ## Correctness
//!
//! Every op, layer, loss and optimizer is compared with PyTorch (fixtures written by
//! `tests/fixtures/generate.py`, f64 to 1e-10 and f32 to 1e-5 relative) and every op's
//! gradient with central finite differences on random shapes.

#![warn(missing_docs)]

mod error;
mod float;
pub mod graph;
pub mod init;
pub mod io;
pub mod nn;
pub mod optim;
pub mod tensor;

pub use error::{Error, Result};
pub use float::Float;
pub use tensor::Tensor;

/// The names a training script needs, in one import: `use nnscratch::prelude::*;`.
pub mod prelude {
    pub use crate::nn::{LeakyReLU, Linear, Module, ReLU, Sequential, Sigmoid, Tanh};
    pub use crate::optim::{Adam, Optimizer, Parameters, Sgd};
    pub use crate::{Error, Float, Result, Tensor};
}
