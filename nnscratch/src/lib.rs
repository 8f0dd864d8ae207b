//! # nnscratch: backpropagation from scratch, the way a compiler would do it
//!
//! (The tutorial grows here as the crate does.)

#![warn(missing_docs)]

mod error;
mod float;
pub mod tensor;

pub use error::{Error, Result};
pub use float::Float;
pub use tensor::Tensor;
pub mod graph;
pub mod init;
pub mod io;
pub mod nn;
pub mod optim;
