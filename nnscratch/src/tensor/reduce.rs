//! Reductions: `sum` and `mean`, of everything or along one axis.
//!
//! Every input element contributes once to its sum, so the derivative of a sum is 1 for
//! each element: the output gradient is copied (broadcast) back over the reduced
//! elements. A mean divides by the count `n`, and so does its derivative.

use std::cell::Ref;

use ndarray::{ArrayD, Axis, IxDyn};

use super::arith::broadcast_to;
use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

/// `y = scale · Σ x` over all elements (scale 1 for sum, 1/n for mean).
struct SumAllBackward<T> {
    scale: T,
    name: &'static str,
}

impl<T: Float> Function<T> for SumAllBackward<T> {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        ArrayD::from_elem(IxDyn(&[]), inputs[0].sum() * self.scale)
    }
    fn name(&self) -> String {
        self.name.into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let g = g.iter().copied().next().unwrap_or_else(T::zero) * self.scale;
        vec![ArrayD::from_elem(inputs[0].raw_dim(), g)]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        let formula = if self.name == "sum" { "1" } else { "1/n" };
        Partial::with_value(formula, ArrayD::from_elem(inputs[0].raw_dim(), self.scale))
    }
}

/// `y = scale · Σ_axis x` (the axis removed, as PyTorch's default `keepdim=False`).
struct SumAxisBackward<T> {
    axis: usize,
    scale: T,
    name: &'static str,
}

impl<T: Float> Function<T> for SumAxisBackward<T> {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0].sum_axis(Axis(self.axis)).mapv(|v| v * self.scale)
    }
    fn name(&self) -> String {
        format!("{}(axis={})", self.name, self.axis)
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        // Put the reduced axis back with size 1, then copy along it.
        let g = g
            .view()
            .insert_axis(Axis(self.axis))
            .mapv(|v| v * self.scale);
        vec![broadcast_to(&g, inputs[0].shape())]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        let formula = if self.name == "sum" { "1" } else { "1/n" };
        Partial::with_value(formula, ArrayD::from_elem(inputs[0].raw_dim(), self.scale))
    }
}

impl<T: Float> Tensor<T> {
    /// Sum of all elements, a 0-D tensor.
    pub fn sum(&self) -> Tensor<T> {
        let data = ArrayD::from_elem(IxDyn(&[]), self.data().sum());
        let function = SumAllBackward {
            scale: T::one(),
            name: "sum",
        };
        Tensor::from_op(data, function, vec![self.clone()])
    }

    /// Mean of all elements, a 0-D tensor (NaN for an empty tensor, as in PyTorch).
    pub fn mean(&self) -> Tensor<T> {
        let n = T::of(self.data().len() as f64);
        let data = ArrayD::from_elem(IxDyn(&[]), self.data().sum() / n);
        let function = SumAllBackward {
            scale: T::one() / n,
            name: "mean",
        };
        Tensor::from_op(data, function, vec![self.clone()])
    }

    /// Sum along `axis`, which is removed (`x.sum(dim=axis)` in PyTorch).
    pub fn sum_axis(&self, axis: usize) -> Result<Tensor<T>> {
        self.reduce_axis(axis, "sum")
    }

    /// Mean along `axis`, which is removed (`x.mean(dim=axis)` in PyTorch).
    pub fn mean_axis(&self, axis: usize) -> Result<Tensor<T>> {
        self.reduce_axis(axis, "mean")
    }

    fn reduce_axis(&self, axis: usize, name: &'static str) -> Result<Tensor<T>> {
        let shape = self.shape();
        if axis >= shape.len() {
            let op = if name == "sum" {
                "sum_axis"
            } else {
                "mean_axis"
            };
            return Err(Error::AxisOutOfRange { op, axis, shape });
        }
        let scale = if name == "sum" {
            T::one()
        } else {
            T::one() / T::of(shape[axis] as f64)
        };
        let data = self.data().sum_axis(Axis(axis)).mapv(|v| v * scale);
        let function = SumAxisBackward { axis, scale, name };
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }
}
