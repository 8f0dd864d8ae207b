//! Element-wise functions `y = f(x)`: exp, ln, powf here, and the machinery every
//! element-wise op shares (the activations, one file each: `relu.rs`, `tanh.rs`, ...).
//!
//! For an element-wise `f`, each output element depends on one input element only, so
//! the chain rule is a product per element: `dL/dx = dL/dy ⊙ f'(x)`. Each op is its `f`
//! and its `f'` next to each other; `f'` is written in terms of `x` or of the already
//! computed `y` when that is cheaper (exp, sigmoid, tanh).

use std::cell::Ref;

use ndarray::{ArrayD, Zip};

use super::{Function, Partial, Tensor};
use crate::Float;

/// The element-wise derivative `f'` of an op, from its input `x`, its output `y` and its
/// parameters (the exponent of powf, the slope of leaky_relu; unused ones are 0).
pub(super) type Derivative<T> = fn(x: T, y: T, parameters: [T; 2]) -> T;

/// Backward of any element-wise op: `dx = dy ⊙ f'(x, y)`.
struct Elementwise<T> {
    /// The op's name: `tanh`, `leaky_relu`.
    name: &'static str,
    /// `f'` in words, for pictures.
    formula: &'static str,
    derivative: Derivative<T>,
    /// The op's parameters (unused ones are 0), of which the first `shown` are part of
    /// its name in pictures: `leaky_relu(0.01)`.
    parameters: [T; 2],
    shown: usize,
}

impl<T: Float> Elementwise<T> {
    fn local_derivative(&self, x: &ArrayD<T>, y: &ArrayD<T>) -> ArrayD<T> {
        Zip::from(x)
            .and(y)
            .map_collect(|&x, &y| (self.derivative)(x, y, self.parameters))
    }
}

impl<T: Float> Function<T> for Elementwise<T> {
    fn name(&self) -> String {
        let shown: Vec<String> = self.parameters[..self.shown]
            .iter()
            .map(|p| p.to_string())
            .collect();
        if shown.is_empty() {
            self.name.to_string()
        } else {
            format!("{}({})", self.name, shown.join(", "))
        }
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        y: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let grad = Zip::from(g)
            .and(&*inputs[0])
            .and(y)
            .map_collect(|&g, &x, &y| g * (self.derivative)(x, y, self.parameters));
        vec![grad]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], y: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::with_value(self.formula, self.local_derivative(&inputs[0], y))
    }
}

impl<T: Float> Tensor<T> {
    /// Records `y = f(x)` element by element, with `f'` for backward (see [`Derivative`]);
    /// `parameters` (at most 2) are passed to `f'` and shown in the op's name.
    pub(super) fn elementwise(
        &self,
        f: impl Fn(T) -> T,
        name: &'static str,
        formula: &'static str,
        derivative: Derivative<T>,
        parameters: &[T],
    ) -> Tensor<T> {
        let data = self.data().mapv(f);
        let mut all = [T::zero(); 2];
        all[..parameters.len()].copy_from_slice(parameters);
        let function = Elementwise {
            name,
            formula,
            derivative,
            parameters: all,
            shown: parameters.len(),
        };
        Tensor::from_op(data, function, vec![self.clone()])
    }

    /// `e^x`; its derivative is itself: `d/dx e^x = e^x = y`.
    pub fn exp(&self) -> Tensor<T> {
        self.elementwise(T::exp, "exp", "exp(x)", |_, y, _| y, &[])
    }

    /// Natural logarithm; `d/dx ln x = 1/x` (NaN for negative `x`, as in PyTorch).
    pub fn ln(&self) -> Tensor<T> {
        self.elementwise(T::ln, "ln", "1/x", |x, _, _| x.recip(), &[])
    }

    /// `x^p` for a constant exponent; `d/dx x^p = p·x^(p-1)`.
    pub fn powf(&self, p: T) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, [p, _]| p * x.powf(p - T::one());
        self.elementwise(|x| x.powf(p), "powf", "p·x^(p-1)", derivative, &[p])
    }
}
