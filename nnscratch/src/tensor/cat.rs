//! `cat`: tensors joined along one axis, as `torch.cat`. Each input's gradient is its
//! own block of the output's:
//!
//! ```text
//! y = [a | b | …] along `axis`      da = dy[…, block of a, …],  db = dy[…, block of b, …]
//! ```

use std::cell::Ref;

use ndarray::{ArrayD, Axis, Slice};

use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

struct CatBackward {
    axis: usize,
    /// Each input's size along `axis`.
    sizes: Vec<usize>,
}

impl CatBackward {
    /// Input `index`'s block of `grad`.
    fn block<T: Float>(&self, grad: &ArrayD<T>, index: usize) -> ArrayD<T> {
        let start: usize = self.sizes[..index].iter().sum();
        grad.slice_axis(
            Axis(self.axis),
            Slice::from(start..start + self.sizes[index]),
        )
        .to_owned()
    }
}

impl<T: Float> Function<T> for CatBackward {
    fn name(&self) -> String {
        "cat".into()
    }

    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
        ndarray::concatenate(Axis(self.axis), &views)
            .unwrap_or_else(|_| unreachable!("shapes checked by Tensor::cat"))
    }

    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        (0..self.sizes.len()).map(|i| self.block(g, i)).collect()
    }

    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        let start: usize = self.sizes[..index].iter().sum();
        Partial::formula(format!(
            "dY[{}..{}] along axis {}",
            start,
            start + self.sizes[index],
            self.axis
        ))
    }
}

impl<T: Float> Tensor<T> {
    /// Joins `tensors` along `axis` (`torch.cat(tensors, dim=axis)`; `-1` is the last
    /// axis). They must have the same rank and agree on every other axis.
    pub fn cat(tensors: &[Tensor<T>], axis: isize) -> Result<Tensor<T>> {
        let Some(first) = tensors.first() else {
            return Err(Error::InvalidArgument {
                what: "cat".into(),
                expected: "at least one tensor".into(),
                found: "none".into(),
            });
        };
        let rank = first.ndim();
        let axis_index = if axis < 0 { rank as isize + axis } else { axis };
        if rank == 0 || axis_index < 0 || axis_index >= rank as isize {
            return Err(Error::InvalidArgument {
                what: "cat".into(),
                expected: format!("an axis of a tensor of rank {rank}"),
                found: axis.to_string(),
            });
        }
        let axis_index = axis_index as usize;
        let shape = first.shape();
        let mut sizes = Vec::with_capacity(tensors.len());
        for t in tensors {
            let other = t.shape();
            let agrees = other.len() == rank
                && other
                    .iter()
                    .zip(&shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis_index || a == b);
            if !agrees {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: shape,
                    rhs: other,
                    expected: format!("the same shape except along axis {axis_index}"),
                });
            }
            sizes.push(other[axis_index]);
        }
        let function = CatBackward {
            axis: axis_index,
            sizes,
        };
        let data = {
            let values: Vec<_> = tensors.iter().map(|t| t.data()).collect();
            let refs: Vec<&ArrayD<T>> = values.iter().map(|v| &**v).collect();
            function.forward(&refs)
        };
        Ok(Tensor::from_op(data, function, tensors.to_vec()))
    }
}
