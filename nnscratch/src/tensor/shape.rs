//! Shape ops: `reshape`, `flatten`, `unsqueeze`, `squeeze`, `permute`, `transpose`, and
//! sums and means over any set of axes.
//!
//! A reshape moves no value, it renames positions: its derivative sends each gradient
//! element back to the position it came from, which is the output gradient reshaped to
//! the input's shape. A permutation's derivative is the inverse permutation.
//!
//! ```text
//! y = reshape(x)         dx = reshape(dy, shape of x)
//! y = permute(x, p)      dx = permute(dy, p⁻¹)
//! y = Σ_axes x           dx = dy, copied back along the summed axes (1/n for a mean)
//! ```

use std::cell::Ref;

use ndarray::{ArrayD, Axis, IxDyn};

use super::arith::broadcast_to;
use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

/// `y = reshape(x)` for any of the reshaping ops (their backward is the same).
struct ReshapeBackward {
    name: String,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
}

/// `a` as row-major data of `shape` (same element count).
fn reshape_values<T: Float>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    a.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .unwrap_or_else(|_| unreachable!("element counts checked"))
}

impl<T: Float> Function<T> for ReshapeBackward {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        reshape_values(inputs[0], &self.output_shape)
    }
    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        vec![reshape_values(g, &self.input_shape)]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::formula(format!("dX = reshape(dY, {:?})", self.input_shape))
    }
}

/// `y = permute(x, axes)`.
struct PermuteBackward {
    name: String,
    axes: Vec<usize>,
}

impl PermuteBackward {
    fn inverse(&self) -> Vec<usize> {
        let mut inverse = vec![0; self.axes.len()];
        for (i, &a) in self.axes.iter().enumerate() {
            inverse[a] = i;
        }
        inverse
    }
}

impl<T: Float> Function<T> for PermuteBackward {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0]
            .view()
            .permuted_axes(IxDyn(&self.axes))
            .as_standard_layout()
            .into_owned()
    }
    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        vec![
            g.view()
                .permuted_axes(IxDyn(&self.inverse()))
                .as_standard_layout()
                .into_owned(),
        ]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::formula(format!("dX = permute(dY, {:?})", self.inverse()))
    }
}

/// `y = scale · Σ over axes` (kept with size 1 when `keepdim`).
struct SumAxesBackward<T> {
    axes: Vec<usize>,
    keepdim: bool,
    scale: T,
    name: &'static str,
}

impl<T: Float> Function<T> for SumAxesBackward<T> {
    fn name(&self) -> String {
        format!("{}(axes={:?})", self.name, self.axes)
    }
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let mut out = inputs[0].clone();
        // From the last axis down, so earlier indices stay valid.
        for &axis in self.axes.iter().rev() {
            out = out.sum_axis(Axis(axis));
            if self.keepdim {
                out = out.insert_axis(Axis(axis));
            }
        }
        out.mapv(|v| v * self.scale)
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let mut g = g.mapv(|v| v * self.scale);
        if !self.keepdim {
            for &axis in &self.axes {
                g = g.insert_axis(Axis(axis));
            }
        }
        vec![broadcast_to(&g, inputs[0].shape())]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        let formula = if self.name == "sum" { "1" } else { "1/n" };
        Partial::with_value(formula, ArrayD::from_elem(inputs[0].raw_dim(), self.scale))
    }
}

/// `axis` of a tensor of rank `rank` (`-1` the last), or an error naming `op`.
fn axis_index(op: &str, axis: isize, rank: usize) -> Result<usize> {
    let index = if axis < 0 { rank as isize + axis } else { axis };
    if index < 0 || index >= rank as isize {
        return Err(Error::InvalidArgument {
            what: op.into(),
            expected: format!(
                "an axis of a tensor of rank {rank} (from {} to {})",
                -(rank as isize),
                rank as isize - 1
            ),
            found: axis.to_string(),
        });
    }
    Ok(index as usize)
}

impl<T: Float> Tensor<T> {
    fn reshaped(&self, name: String, shape: Vec<usize>) -> Tensor<T> {
        let function = ReshapeBackward {
            name,
            input_shape: self.shape(),
            output_shape: shape,
        };
        let data = function.forward(&[&self.data()]);
        Tensor::from_op(data, function, vec![self.clone()])
    }

    /// The same values in another shape of the same size, as `x.reshape(shape)`; one
    /// dimension may be `-1`, inferred.
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor<T>> {
        let len = self.data().len();
        let known: usize = shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let inferred = shape.iter().filter(|&&d| d == -1).count();
        let bad = shape.iter().any(|&d| d < -1)
            || inferred > 1
            || (inferred == 1 && (known == 0 || !len.is_multiple_of(known)))
            || (inferred == 0 && known != len);
        if bad {
            return Err(Error::InvalidArgument {
                what: "reshape".into(),
                expected: format!("a shape of {len} elements (at most one -1)"),
                found: format!("{shape:?} for a tensor of shape {:?}", self.shape()),
            });
        }
        let shape: Vec<usize> = shape
            .iter()
            .map(|&d| if d == -1 { len / known } else { d as usize })
            .collect();
        Ok(self.reshaped(format!("reshape{shape:?}"), shape))
    }

    /// Axes `start..=end` merged into one, as `torch.flatten(x, start, end)` (`-1` the
    /// last axis): `x.flatten(1, -1)` turns `[batch, C, H, W]` into `[batch, C·H·W]`.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor<T>> {
        let shape = self.shape();
        if shape.is_empty() {
            return Ok(self.reshaped("flatten".into(), vec![1]));
        }
        let (s, e) = (
            axis_index("flatten", start, shape.len())?,
            axis_index("flatten", end, shape.len())?,
        );
        if s > e {
            return Err(Error::InvalidArgument {
                what: "flatten".into(),
                expected: "start <= end".into(),
                found: format!("start {start}, end {end}"),
            });
        }
        let mut out: Vec<usize> = shape[..s].to_vec();
        out.push(shape[s..=e].iter().product());
        out.extend_from_slice(&shape[e + 1..]);
        Ok(self.reshaped(format!("flatten({start}, {end})"), out))
    }

    /// A new axis of size 1 at `axis`, as `x.unsqueeze(axis)`.
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor<T>> {
        let mut shape = self.shape();
        let index = axis_index("unsqueeze", axis, shape.len() + 1)?;
        shape.insert(index, 1);
        Ok(self.reshaped(format!("unsqueeze({axis})"), shape))
    }

    /// Axis `axis` removed if its size is 1 (otherwise the tensor as it is), as
    /// `x.squeeze(axis)`.
    pub fn squeeze(&self, axis: isize) -> Result<Tensor<T>> {
        let mut shape = self.shape();
        let index = axis_index("squeeze", axis, shape.len())?;
        if shape[index] != 1 {
            return Ok(self.clone());
        }
        shape.remove(index);
        Ok(self.reshaped(format!("squeeze({axis})"), shape))
    }

    /// The axes reordered, as `x.permute(axes)`: output axis `i` is input axis `axes[i]`.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor<T>> {
        let rank = self.ndim();
        let mut seen = vec![false; rank];
        let valid = axes.len() == rank
            && axes
                .iter()
                .all(|&a| a < rank && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(Error::InvalidArgument {
                what: "permute".into(),
                expected: format!("a permutation of 0..{rank}"),
                found: format!("{axes:?}"),
            });
        }
        let function = PermuteBackward {
            name: format!("permute{axes:?}"),
            axes: axes.to_vec(),
        };
        let data = function.forward(&[&self.data()]);
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }

    /// Axes `a` and `b` exchanged, as `x.transpose(a, b)`.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor<T>> {
        let rank = self.ndim();
        let (a, b) = (
            axis_index("transpose", a, rank)?,
            axis_index("transpose", b, rank)?,
        );
        let mut axes: Vec<usize> = (0..rank).collect();
        axes.swap(a, b);
        let function = PermuteBackward {
            name: format!("transpose({a}, {b})"),
            axes,
        };
        let data = function.forward(&[&self.data()]);
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }

    fn reduce_axes(&self, axes: &[isize], keepdim: bool, name: &'static str) -> Result<Tensor<T>> {
        let rank = self.ndim();
        let mut indices = Vec::with_capacity(axes.len());
        for &axis in axes {
            let index = axis_index(name, axis, rank)?;
            if indices.contains(&index) {
                return Err(Error::InvalidArgument {
                    what: name.into(),
                    expected: "distinct axes".into(),
                    found: format!("{axes:?}"),
                });
            }
            indices.push(index);
        }
        indices.sort_unstable();
        let count: usize = indices.iter().map(|&a| self.shape()[a]).product();
        let scale = if name == "sum" {
            T::one()
        } else {
            T::one() / T::of(count as f64)
        };
        let function = SumAxesBackward {
            axes: indices,
            keepdim,
            scale,
            name,
        };
        let data = function.forward(&[&self.data()]);
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }

    /// Sum over `axes` (`-1` the last), as `x.sum(dim=axes, keepdim=keepdim)`.
    pub fn sum_dims(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<T>> {
        self.reduce_axes(axes, keepdim, "sum")
    }

    /// Mean over `axes`, as `x.mean(dim=axes, keepdim=keepdim)`.
    pub fn mean_dims(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<T>> {
        self.reduce_axes(axes, keepdim, "mean")
    }
}
