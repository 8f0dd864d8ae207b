//! `gelu`, on the dynamic engine: `x·Φ(x)`, exact or with PyTorch's tanh approximation.
//!
//! The derivative is written here from the definition `Φ(x) = ½(1 + erf(x/√2))`,
//! `d erf(z)/dz = 2/√π·e^(-z²)`: `d/dx [x·Φ(x)] = Φ(x) + x·e^(-x²/2)/√(2π)`; and for the
//! approximation, by the chain rule through `tanh` with `tanh' = 1 - tanh²`.
//!
//! The same layer: `kernels/gelu.rs` (compiled), `nn::GELU`, and `model!`'s rules in
//! `nnscratch-macros/src/layers/gelu.rs`.

use super::Tensor;
use super::unary::Derivative;
use crate::Float;
use crate::kernels::gelu;

impl<T: Float> Tensor<T> {
    /// `x·Φ(x)` (PyTorch's `F.gelu(x)`), or with `tanh = true` the approximation
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (`F.gelu(x, approximate="tanh")`).
    pub fn gelu(&self, tanh: bool) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, [tanh, _]| {
            let half = T::of(0.5);
            if tanh > T::zero() {
                let k = T::of((2.0 / std::f64::consts::PI).sqrt());
                let inner = k * (x + T::of(0.044715) * x.powi(3));
                let t = inner.tanh();
                let d_inner = k * (T::one() + T::of(3.0 * 0.044715) * x * x);
                half * (T::one() + t) + half * x * (T::one() - t * t) * d_inner
            } else {
                let phi = half * (T::one() + (x / T::of(2f64.sqrt())).erf());
                let density =
                    (-(x * x) / T::of(2.0)).exp() / T::of((2.0 * std::f64::consts::PI).sqrt());
                phi + x * density
            }
        };
        let f = |x: T, [tanh, _]: [T; 2]| gelu(x, tanh > T::zero());
        let flag = if tanh { T::one() } else { T::zero() };
        let (name, formula) = if tanh {
            ("gelu_tanh", "½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 0.134x²)")
        } else {
            ("gelu", "Φ(x) + x·φ(x)")
        };
        self.elementwise_with(f, name, formula, derivative, [flag, T::zero()], 0)
    }
}
