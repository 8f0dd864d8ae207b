//! Mini-batches: index lists in a seeded random order, and rows gathered without copying
//! where possible.

use ndarray::{Array2, ArrayView2, s};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::{Error, Result};

/// The samples `0..n` cut into batches of `batch_size` (the last may be smaller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniBatches {
    order: Vec<usize>,
    batch_size: usize,
}

impl MiniBatches {
    /// Batches in order: `[0..b], [b..2b], ...` (no shuffling).
    pub fn sequential(n: usize, batch_size: usize) -> Self {
        MiniBatches {
            order: (0..n).collect(),
            batch_size: batch_size.max(1),
        }
    }

    /// Batches of a random permutation drawn from `rng` (seed it for repeatable epochs).
    pub fn shuffled<R: Rng + ?Sized>(n: usize, batch_size: usize, rng: &mut R) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        MiniBatches {
            order,
            batch_size: batch_size.max(1),
        }
    }

    /// A new random order for the next epoch, reusing the index buffer (no allocation).
    pub fn reshuffle<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.order.shuffle(rng);
    }

    /// The batches, each a list of row indices.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch_size)
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The first index in `indices` that is not below `len`, as an error naming `what`.
fn check_indices(what: &str, indices: &[usize], len: usize) -> Result<()> {
    match indices.iter().enumerate().find(|&(_, &i)| i >= len) {
        None => Ok(()),
        Some((position, &index)) => Err(Error::InvalidArgument {
            what: format!("{what}: index {position} of the list"),
            expected: format!("a row index below {len}"),
            found: index.to_string(),
        }),
    }
}

/// The rows `rows` of `source`: a view of `source` itself when they are consecutive and
/// ascending (no copy), else a copy in `buffer`, which is resized only when the batch
/// shape changes, so an epoch of equal batches allocates once. An index past the last
/// row is an `Err` naming it.
pub fn gather_rows<'a, T: Copy + num_traits::Zero>(
    source: ArrayView2<'a, T>,
    rows: &[usize],
    buffer: &'a mut Array2<T>,
) -> Result<ArrayView2<'a, T>> {
    check_indices("gather_rows", rows, source.nrows())?;
    let consecutive = rows.windows(2).all(|w| w[1] == w[0] + 1);
    if let (true, Some(&first)) = (consecutive, rows.first()) {
        return Ok(source.slice_move(s![first..first + rows.len(), ..]));
    }
    if buffer.dim() != (rows.len(), source.ncols()) {
        *buffer = crate::alloc::try_zeros("gather_rows", (rows.len(), source.ncols()))?;
    }
    for (mut out, &row) in buffer.rows_mut().into_iter().zip(rows) {
        // An element loop: for narrow rows a memcpy call per row costs more than the copy.
        for (o, &v) in out.iter_mut().zip(source.row(row).iter()) {
            *o = v;
        }
    }
    Ok(buffer.view())
}

/// The labels of `rows`, written into `buffer` (reused across batches). An index past
/// the last label is an `Err` naming it.
pub fn gather_labels<'a>(
    labels: &[usize],
    rows: &[usize],
    buffer: &'a mut Vec<usize>,
) -> Result<&'a [usize]> {
    check_indices("gather_labels", rows, labels.len())?;
    buffer.clear();
    buffer.extend(rows.iter().map(|&r| labels[r]));
    Ok(buffer)
}
