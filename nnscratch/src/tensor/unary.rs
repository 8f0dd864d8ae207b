//! Element-wise functions `y = f(x)`: exp, ln, powf and the activations.
//!
//! For an element-wise `f`, each output element depends on one input element only, so
//! the chain rule is a product per element: `dL/dx = dL/dy ⊙ f'(x)`. Each op below is
//! its `f` and its `f'` next to each other; `f'` is written in terms of `x` or of the
//! already computed `y` when that is cheaper (exp, sigmoid, tanh).

use std::cell::Ref;

use ndarray::{ArrayD, Zip};

use super::{Function, Partial, Tensor};
use crate::Float;

/// The element-wise derivative `f'` of an op, from its input `x` and output `y`.
type Derivative<T> = fn(x: T, y: T, parameter: T) -> T;

/// Backward of any element-wise op: `dx = dy ⊙ f'(x, y)`.
struct Elementwise<T> {
    name: &'static str,
    /// `f'` in words, for pictures.
    formula: &'static str,
    derivative: Derivative<T>,
    /// The op's parameter (the exponent of powf, the slope of leaky_relu), else 0.
    parameter: T,
}

impl<T: Float> Elementwise<T> {
    fn local_derivative(&self, x: &ArrayD<T>, y: &ArrayD<T>) -> ArrayD<T> {
        Zip::from(x)
            .and(y)
            .map_collect(|&x, &y| (self.derivative)(x, y, self.parameter))
    }
}

impl<T: Float> Function<T> for Elementwise<T> {
    fn name(&self) -> String {
        match self.name {
            "powf" | "leaky_relu" => format!("{}({})", self.name, self.parameter),
            name => name.to_string(),
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
            .map_collect(|&g, &x, &y| g * (self.derivative)(x, y, self.parameter));
        vec![grad]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], y: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::with_value(self.formula, self.local_derivative(&inputs[0], y))
    }
}

impl<T: Float> Tensor<T> {
    fn elementwise(
        &self,
        f: impl Fn(T) -> T,
        name: &'static str,
        formula: &'static str,
        derivative: Derivative<T>,
        parameter: T,
    ) -> Tensor<T> {
        let data = self.data().mapv(f);
        let function = Elementwise {
            name,
            formula,
            derivative,
            parameter,
        };
        Tensor::from_op(data, function, vec![self.clone()])
    }

    /// `e^x`; its derivative is itself: `d/dx e^x = e^x = y`.
    pub fn exp(&self) -> Tensor<T> {
        self.elementwise(T::exp, "exp", "exp(x)", |_, y, _| y, T::zero())
    }

    /// Natural logarithm; `d/dx ln x = 1/x` (NaN for negative `x`, as in PyTorch).
    pub fn ln(&self) -> Tensor<T> {
        self.elementwise(T::ln, "ln", "1/x", |x, _, _| x.recip(), T::zero())
    }

    /// `x^p` for a constant exponent; `d/dx x^p = p·x^(p-1)`.
    pub fn powf(&self, p: T) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, p| p * x.powf(p - T::one());
        self.elementwise(|x| x.powf(p), "powf", "p·x^(p-1)", derivative, p)
    }

    /// `max(x, 0)`; derivative `1` where `x > 0`, else `0` (0 at `x = 0`, as PyTorch).
    pub fn relu(&self) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, _| if x > T::zero() { T::one() } else { T::zero() };
        let f = |x: T| if x > T::zero() { x } else { T::zero() };
        self.elementwise(f, "relu", "[x > 0]", derivative, T::zero())
    }

    /// `x` where `x > 0`, else `slope·x`; derivative `1` or `slope` (PyTorch's default
    /// slope is 0.01, see [`crate::nn::LEAKY_RELU_SLOPE`]).
    pub fn leaky_relu(&self, slope: T) -> Tensor<T> {
        let derivative: Derivative<T> = |x, _, slope| if x > T::zero() { T::one() } else { slope };
        let f = move |x: T| if x > T::zero() { x } else { slope * x };
        self.elementwise(f, "leaky_relu", "1 if x > 0 else slope", derivative, slope)
    }

    /// `σ(x) = 1 / (1 + e^-x)`; `σ'(x) = σ(x)(1 - σ(x)) = y(1 - y)`.
    pub fn sigmoid(&self) -> Tensor<T> {
        self.elementwise(
            sigmoid,
            "sigmoid",
            "y·(1 - y)",
            |_, y, _| y * (T::one() - y),
            T::zero(),
        )
    }

    /// `tanh(x)`; `tanh'(x) = 1 - tanh²(x) = 1 - y²`.
    pub fn tanh(&self) -> Tensor<T> {
        self.elementwise(
            T::tanh,
            "tanh",
            "1 - y^2",
            |_, y, _| T::one() - y * y,
            T::zero(),
        )
    }
}

/// The logistic function, written to avoid overflow of `e^-x` for large negative `x`.
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}
