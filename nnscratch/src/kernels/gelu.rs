//! GELU, compiled: `y = x·Φ(x)`, `Φ` the standard normal CDF, exactly or with PyTorch's
//! `approximate="tanh"`:
//!
//! ```text
//! exact   y = x·Φ(x),  Φ(x) = ½(1 + erf(x/√2))
//!         dy/dx = Φ(x) + x·φ(x),  φ(x) = e^(-x²/2)/√(2π)           (product rule)
//! tanh    y = ½x(1 + t),  t = tanh(u),  u = √(2/π)·(x + 0.044715x³)
//!         dy/dx = ½(1 + t) + ½x·(1 - t²)·√(2/π)·(1 + 3·0.044715x²)  (product and chain rules)
//! ```
//!
//! The same layer: `model!`'s rules in `nnscratch-macros/src/layers/gelu.rs`, the dynamic
//! op in `tensor/gelu.rs`, the layer `nn::GELU`.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

/// `√(2/π)` and the cubic coefficient of the tanh approximation.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;

/// `gelu(x)`, exact or with the tanh approximation.
#[inline]
pub(crate) fn gelu<T: Float>(x: T, tanh: bool) -> T {
    let half = T::of(0.5);
    if tanh {
        let u = T::of(SQRT_2_OVER_PI) * (x + T::of(CUBIC) * x * x * x);
        half * x * (T::one() + u.tanh())
    } else {
        half * x * (T::one() + (x * T::of(std::f64::consts::FRAC_1_SQRT_2)).erf())
    }
}

/// `d gelu/dx`, exact or with the tanh approximation.
#[inline]
fn gelu_derivative<T: Float>(x: T, tanh: bool) -> T {
    let half = T::of(0.5);
    if tanh {
        let k = T::of(SQRT_2_OVER_PI);
        let t = (k * (x + T::of(CUBIC) * x * x * x)).tanh();
        half * (T::one() + t)
            + half * x * (T::one() - t * t) * k * (T::one() + T::of(3.0 * CUBIC) * x * x)
    } else {
        let cdf = half * (T::one() + (x * T::of(std::f64::consts::FRAC_1_SQRT_2)).erf());
        let pdf = (-half * x * x).exp() * T::of(0.398_942_280_401_432_7); // 1/√(2π)
        cdf + x * pdf
    }
}

/// `y = gelu(x)`.
pub fn gelu_forward<T: Float>(x: ArrayView2<'_, T>, tanh: bool, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| gelu(x, tanh));
}

/// `dx = dy ⊙ gelu'(x)`.
pub fn gelu_backward<T: Float>(
    x: ArrayView2<'_, T>,
    tanh: bool,
    dy: ArrayView2<'_, T>,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(x, dy, dx, write, |x, dy| dy * gelu_derivative(x, tanh));
}
