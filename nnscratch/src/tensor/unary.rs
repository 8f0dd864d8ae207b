//! Element-wise functions `y = f(x)`: exp, ln, powf, powi, square, abs, clamp here, and the machinery every
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
    /// `f` itself, kept to run the op again (`Tensor::recompute`); a closure without
    /// captures, so boxing it allocates nothing.
    function: Box<dyn Fn(T, [T; 2]) -> T>,
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
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0].mapv(|x| (self.function)(x, self.parameters))
    }
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
    /// `parameters` (at most 2) are passed to `f` and `f'` and shown in the op's name.
    pub(super) fn elementwise(
        &self,
        function: impl Fn(T, [T; 2]) -> T + 'static,
        name: &'static str,
        formula: &'static str,
        derivative: Derivative<T>,
        parameters: &[T],
    ) -> Tensor<T> {
        let mut all = [T::zero(); 2];
        all[..parameters.len()].copy_from_slice(parameters);
        self.elementwise_with(function, name, formula, derivative, all, parameters.len())
    }

    /// [`Tensor::elementwise`] with the first `shown` of `parameters` in the op's name
    /// (a flag such as GELU's `tanh` is passed but not shown: its name says it).
    pub(super) fn elementwise_with(
        &self,
        function: impl Fn(T, [T; 2]) -> T + 'static,
        name: &'static str,
        formula: &'static str,
        derivative: Derivative<T>,
        parameters: [T; 2],
        shown: usize,
    ) -> Tensor<T> {
        let data = self.data().mapv(|x| function(x, parameters));
        let function = Elementwise {
            name,
            formula,
            function: Box::new(function),
            derivative,
            parameters,
            shown,
        };
        Tensor::from_op(data, function, vec![self.clone()])
    }

    /// `e^x`; its derivative is itself: `d/dx e^x = e^x = y`.
    pub fn exp(&self) -> Tensor<T> {
        self.elementwise(|x, _| x.exp(), "exp", "exp(x)", |_, y, _| y, &[])
    }

    /// Natural logarithm; `d/dx ln x = 1/x` (NaN for negative `x`, as in PyTorch).
    pub fn ln(&self) -> Tensor<T> {
        self.elementwise(|x, _| x.ln(), "ln", "1/x", |x, _, _| x.recip(), &[])
    }

    /// `x^p` for a constant exponent; `d/dx x^p = p·x^(p-1)`.
    pub fn powf(&self, p: T) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, [p, _]| p * x.powf(p - T::one());
        self.elementwise(|x, [p, _]| x.powf(p), "powf", "p·x^(p-1)", derivative, &[p])
    }

    /// `x²`; `d/dx x² = 2x` (PyTorch's `square`).
    pub fn square(&self) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, _| x + x;
        self.elementwise(|x, _| x * x, "square", "2x", derivative, &[])
    }

    /// `x^n` for a whole exponent (micrograd's `x**3`, PyTorch's `x.pow(3)`); `d/dx x^n =
    /// n·x^(n-1)`, exact at `x = 0` and for negative `x`, where [`Tensor::powf`]'s real
    /// power is not defined.
    pub fn powi(&self, n: i32) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, [n, _]| {
            if n == T::zero() {
                T::zero()
            } else {
                n * x.powi(n.to_i32().unwrap_or(0) - 1)
            }
        };
        self.elementwise(
            |x, [n, _]| x.powi(n.to_i32().unwrap_or(0)),
            "powi",
            "n·x^(n-1)",
            derivative,
            &[T::of(f64::from(n))],
        )
    }

    /// `|x|`; `d/dx |x| = sign(x)`, 0 at `x = 0` (as PyTorch).
    pub fn abs(&self) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, _| {
            if x > T::zero() {
                T::one()
            } else if x < T::zero() {
                -T::one()
            } else {
                T::zero()
            }
        };
        self.elementwise(|x, _| x.abs(), "abs", "sign(x)", derivative, &[])
    }

    /// `x` limited to `[min, max]` (PyTorch's `clamp`); derivative 1 where
    /// `min <= x <= max`, else 0 (the ends count as inside, as PyTorch). Use
    /// `T::neg_infinity()` or `T::infinity()` for an open side, or
    /// [`Tensor::clamp_min`], [`Tensor::clamp_max`].
    pub fn clamp(&self, min: T, max: T) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, [min, max]| {
            if x >= min && x <= max {
                T::one()
            } else {
                T::zero()
            }
        };
        let f = |x: T, [min, max]: [T; 2]| {
            if x < min {
                min
            } else if x > max {
                max
            } else {
                x
            }
        };
        self.elementwise(f, "clamp", "[min <= x <= max]", derivative, &[min, max])
    }

    /// `max(x, min)` element-wise against a number (PyTorch's `clamp_min`, ReLU at 0).
    pub fn clamp_min(&self, min: T) -> Tensor<T> {
        self.clamp(min, T::infinity())
    }

    /// `min(x, max)` element-wise against a number (PyTorch's `clamp_max`).
    pub fn clamp_max(&self, max: T) -> Tensor<T> {
        self.clamp(T::neg_infinity(), max)
    }
}
