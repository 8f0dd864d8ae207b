//! Data: the embedded handwritten-digits set, MNIST's IDX files, train/test splits,
//! normalisation and seeded mini-batches.
//!
//! ```
//! use nnscratch::data::{self, MiniBatches};
//! use rand::SeedableRng;
//!
//! let digits = data::digits()?; // 1797 images of 8x8 pixels, embedded in the crate
//! assert_eq!(digits.inputs.dim(), (1797, 64));
//! let (train, test) = digits.split(0.2, 42)?;
//! assert_eq!(train.len() + test.len(), 1797);
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let batches = MiniBatches::shuffled(train.len(), 64, &mut rng);
//! let mut buffer = ndarray::Array2::zeros((0, 0));
//! for rows in batches.iter() {
//!     let x = data::gather_rows(train.inputs.view(), rows, &mut buffer)?;
//!     assert_eq!(x.ncols(), 64);
//! }
//! # Ok::<(), nnscratch::Error>(())
//! ```

mod batches;
mod digits;
pub mod idx;

pub use batches::{MiniBatches, gather_labels, gather_rows};
pub use digits::{digits, parse_digits_csv};

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::{Error, Result};

/// Inputs `[samples, features]` with one class label per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// One sample per row.
    pub inputs: Array2<f32>,
    /// The class of each row.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The rows `indices`, in that order. An index past the last sample, or inputs and
    /// labels of different lengths, is an `Err`.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        if self.inputs.nrows() != self.labels.len() {
            return Err(Error::ShapeMismatch {
                op: "Dataset::select",
                lhs: self.inputs.shape().to_vec(),
                rhs: vec![self.labels.len()],
                expected: "one label per input row".into(),
            });
        }
        let mut labels = Vec::new();
        gather_labels(&self.labels, indices, &mut labels)?;
        Ok(Dataset {
            inputs: self.inputs.select(Axis(0), indices),
            labels,
        })
    }

    /// A seeded shuffle split into (train, test), `test_fraction` of the samples (rounded)
    /// going to test. The same seed gives the same split on every machine.
    /// Inputs and labels of different lengths are an `Err`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let (train, test) = split_indices(self.len(), test_fraction, seed);
        Ok((self.select(&train)?, self.select(&test)?))
    }
}

/// Seeded (train, test) index lists; `test_fraction` is clamped to `[0, 1]`.
pub fn split_indices(n: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let test = ((n as f64) * test_fraction.clamp(0.0, 1.0)).round() as usize;
    let train = order.split_off(test);
    (train, order)
}

/// Per-feature standardisation `(x - mean) / std`, fitted on training data and applied
/// to any data (features with zero spread are only centred).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardize {
    /// Mean of each feature.
    pub mean: Array1<f32>,
    /// Standard deviation of each feature (population).
    pub std: Array1<f32>,
}

impl Standardize {
    /// Fits mean and standard deviation per column.
    pub fn fit(x: ArrayView2<'_, f32>) -> Self {
        let n = x.nrows().max(1) as f32;
        let mean = x.sum_axis(Axis(0)) / n;
        let var = x
            .rows()
            .into_iter()
            .fold(Array1::zeros(x.ncols()), |acc, row| {
                acc + (&row - &mean).mapv(|d| d * d)
            })
            / n;
        Standardize {
            mean,
            std: var.mapv(f32::sqrt),
        }
    }

    /// `(x - mean) / std`, column by column; `x` must have as many columns as the data
    /// this was fitted on.
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if x.ncols() != self.mean.len() || self.std.len() != self.mean.len() {
            return Err(Error::BadShape {
                op: "Standardize::transform".into(),
                expected: format!("[rows, {}], the width it was fitted on", self.mean.len()),
                found: x.shape().to_vec(),
            });
        }
        let std = self.std.mapv(|s| if s > 0.0 { s } else { 1.0 });
        Ok((&x - &self.mean) / &std)
    }
}
