//! `Dropout(p)`: PyTorch's `nn.Dropout`, inverted dropout in training, the identity in
//! evaluation.
//!
//! On the dynamic engine the layer multiplies by a constant mask (drawn as a constant
//! leaf named `dropout mask`), so the gradient `dx = dy ⊙ mask` comes from the product's
//! derivative. The mask's random numbers come from the layer's own
//! [`DropoutGenerator`] (see `kernels/dropout.rs`): given the same generator state, the
//! compiled kernel draws the same mask, which is how compiled and dynamic gradients of a
//! model with dropout can be compared.

use std::cell::Cell;
use std::fmt;

use ndarray::ArrayD;

use super::Module;
use crate::kernels::DropoutGenerator;
use crate::{Error, Float, Result, Tensor};

/// PyTorch's default drop probability of `Dropout`.
pub const DROPOUT_P: f64 = 0.5;

/// Inverted dropout with drop probability `p`.
///
/// ```
/// use nnscratch::nn::{Dropout, Module};
/// use nnscratch::Tensor;
///
/// let mut layer = Dropout::new(0.5, 7)?;
/// let x = Tensor::from([[1.0f64; 8]]);
/// let y = layer.forward(&x)?.to_array();
/// // Each element is dropped (0) or kept and scaled by 1/(1 - p) = 2.
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// layer.eval();
/// assert_eq!(layer.forward(&x)?.to_array(), x.to_array());
/// # Ok::<(), nnscratch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f64,
    generator: Cell<DropoutGenerator>,
    training: bool,
}

impl Dropout {
    /// `Dropout(p)`, `0 <= p <= 1`, drawing its masks from a generator seeded with `seed`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        Self::with_generator(p, DropoutGenerator::new(seed))
    }

    /// `Dropout(p)` continuing from a generator's state (what a compiled model's
    /// `to_dynamic()` passes, so that its twin draws the same masks).
    pub fn with_generator(p: f64, generator: DropoutGenerator) -> Result<Self> {
        check_probability(p)?;
        Ok(Dropout {
            p,
            generator: Cell::new(generator),
            training: true,
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The generator's state: its seed and how many masks it has drawn.
    pub fn generator(&self) -> DropoutGenerator {
        self.generator.get()
    }

    /// Restarts the masks from `generator`.
    pub fn set_generator(&mut self, generator: DropoutGenerator) {
        self.generator.set(generator);
    }

    /// Whether the layer drops (training) or passes its input through (evaluation).
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Training mode (the default): drop.
    pub fn train(&mut self) {
        self.training = true;
    }

    /// Evaluation mode: the identity.
    pub fn eval(&mut self) {
        self.training = false;
    }

    fn run<T: Float>(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        if !self.training {
            return Ok(x.clone());
        }
        let mut mask = ArrayD::<T>::zeros(x.shape());
        let mut generator = self.generator.get();
        let slice = mask
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("a new array is contiguous"));
        generator.fill_mask(self.p, slice);
        self.generator.set(generator);
        x.try_mul(&Tensor::constant(mask).with_label("dropout mask"))
    }
}

/// `0 <= p <= 1`, as PyTorch requires.
pub(crate) fn check_probability(p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::InvalidArgument {
            what: "Dropout".into(),
            expected: "a drop probability p with 0 <= p <= 1 (PyTorch's default: 0.5)".into(),
            found: p.to_string(),
        });
    }
    Ok(())
}

impl<T: Float> Module<T> for Dropout {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x)
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(&x.detach())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        Vec::new()
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

impl fmt::Display for Dropout {
    /// PyTorch's repr: `Dropout(p=0.5, inplace=False)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dropout(p={:?}, inplace=False)", self.p)
    }
}
