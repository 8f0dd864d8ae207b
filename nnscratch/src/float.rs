//! The element types nnscratch computes with: `f32` (the default, as in PyTorch) and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A floating-point element type: implemented for `f32` and `f64`.
///
/// Everything generic in nnscratch (tensors, layers, optimizers, compiled models) is
/// generic over this trait, so one code path serves both precisions.
pub trait Float:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The type's name as PyTorch spells its dtype: `"float32"` or `"float64"`.
    const DTYPE: &'static str;

    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn of(x: f64) -> Self;

    /// Widens to `f64` (exact for both types).
    fn as_f64(self) -> f64;

    /// The error function `erf(x) = 2/√π ∫₀ˣ e^(-t²) dt` (for the exact GELU), from `libm`.
    fn erf(self) -> Self;

    /// `y = tanh(x)` over slices of equal length. `f32` uses a vectorised approximation
    /// within 2 ulp ([`crate::kernels::tanh_f32`]); `f64` the standard library's.
    fn tanh_slice(x: &[Self], y: &mut [Self]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x.tanh();
        }
    }
}

impl Float for f32 {
    const DTYPE: &'static str = "float32";
    fn of(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn tanh_slice(x: &[Self], y: &mut [Self]) {
        crate::kernels::tanh_f32(x, y);
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "float64";
    fn of(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
}
