//! Dropout: in training, each element is kept with probability `1 - p` and scaled by
//! `1/(1 - p)` (inverted dropout, so evaluation needs no rescaling); in evaluation it is
//! the identity.
//!
//! ```text
//! y = x ⊙ m      m_i = 1/(1 - p) with probability 1 - p, else 0      dx = dy ⊙ m
//! ```
//!
//! The mask `m` is kept from forward for backward. Its random numbers come from a
//! [`DropoutGenerator`] owned by the model: counter-based, like JAX's keys, so the mask
//! of draw `n` is a pure function of `(seed, n)`. That is what makes dropout checkable:
//! a compiled model and its dynamic twin with the same generator state draw the same
//! mask, and in fixed-mask mode every forward pass reuses one mask, so finite
//! differences see a fixed function.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into};
use crate::Float;

/// The random generator of one dropout layer's masks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutGenerator {
    seed: u64,
    draws: u64,
    fixed: bool,
}

/// SplitMix64's output function: a bijective mix of 64 bits (Steele, Lea and Flood,
/// 2014), the finaliser `rand` and Java use to turn a counter into random bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl DropoutGenerator {
    /// A generator at its first draw.
    pub fn new(seed: u64) -> Self {
        DropoutGenerator {
            seed,
            draws: 0,
            fixed: false,
        }
    }

    /// The generator of layer `index` of a model seeded with `seed`: independent streams
    /// for the layers of one model.
    pub fn for_layer(seed: u64, index: u64) -> Self {
        Self::new(mix(seed ^ mix(index.wrapping_add(0x9E37_79B9_7F4A_7C15))))
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How many masks have been drawn (the number of the next one).
    pub fn draws(&self) -> u64 {
        self.draws
    }

    /// Fixed-mask mode: every mask is draw number [`draws`](Self::draws), over and over,
    /// until this is turned off (for gradient checks).
    pub fn fix_mask(&mut self, fixed: bool) {
        self.fixed = fixed;
    }

    /// Whether the generator is in fixed-mask mode.
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// Fills `mask` with the next mask for drop probability `p`: `1/(1 - p)` where an
    /// element is kept, `0` where it is dropped. Allocates nothing.
    pub fn fill_mask<T: Float>(&mut self, p: f64, mask: &mut [T]) {
        let key = mix(self.seed ^ mix(self.draws));
        let scale = if p < 1.0 {
            T::of(1.0 / (1.0 - p))
        } else {
            T::zero()
        };
        for (i, m) in mask.iter_mut().enumerate() {
            // 53 random bits as a uniform number in [0, 1).
            let u = (mix(key.wrapping_add(i as u64)) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            *m = if u >= p { scale } else { T::zero() };
        }
        if !self.fixed {
            self.draws += 1;
        }
    }
}

/// `y = x ⊙ m` with a fresh mask `m` (written to `mask`) in training; `y = x` otherwise.
pub fn dropout_forward<T: Float>(
    x: ArrayView2<'_, T>,
    mut y: ArrayViewMut2<'_, T>,
    mut mask: ArrayViewMut2<'_, T>,
    p: f64,
    training: bool,
    generator: &mut DropoutGenerator,
) {
    if !training {
        return map_into(x, y, |v| v);
    }
    let mask = mask
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("workspace buffers are contiguous"));
    generator.fill_mask(p, mask);
    let (x, y) = (
        x.to_slice()
            .unwrap_or_else(|| unreachable!("standard layout")),
        y.as_slice_mut()
            .unwrap_or_else(|| unreachable!("standard layout")),
    );
    for ((y, &x), &m) in y.iter_mut().zip(x).zip(mask.iter()) {
        *y = x * m;
    }
}

/// `dx = dy ⊙ m` in training (the mask of the forward pass), `dx = dy` otherwise.
pub fn dropout_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    mask: ArrayView2<'_, T>,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
    training: bool,
) {
    let dx = dx
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("workspace buffers are contiguous"));
    let dy = dy
        .to_slice()
        .unwrap_or_else(|| unreachable!("standard layout"));
    if !training {
        for (dx, &g) in dx.iter_mut().zip(dy) {
            write.store(dx, g);
        }
        return;
    }
    let mask = mask
        .to_slice()
        .unwrap_or_else(|| unreachable!("standard layout"));
    for ((dx, &g), &m) in dx.iter_mut().zip(dy).zip(mask) {
        write.store(dx, g * m);
    }
}
