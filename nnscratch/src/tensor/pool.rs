//! Pooling over windows of `[N, C, H, W]`, as `torch.nn.functional.max_pool2d` and
//! `avg_pool2d` (stride defaulting to the kernel, padding, the floor rule for sizes).
//!
//! ```text
//! max:  y[n,c,i,j] = max over the window of x       dx: each dy goes to its window's argmax
//! avg:  y[n,c,i,j] = (1/(kh·kw)) Σ over the window    dx: each dy spread as dy/(kh·kw)
//! ```
//!
//! Max pooling pads with −∞ (a padded position is never the maximum); average pooling
//! pads with zeros and divides by the whole window (PyTorch's `count_include_pad=True`).
//! Ties go to the first maximum in scan order, as PyTorch's CPU kernel.

use std::cell::Ref;

use ndarray::{ArrayD, IxDyn};

use super::conv::Window;
use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

struct PoolBackward {
    window: Window,
    max: bool,
}

impl PoolBackward {
    /// For every output element, its window's positions in the input (row, column), in
    /// scan order (padding skipped).
    fn positions(
        &self,
        (h, w): (usize, usize),
        (i, j): (usize, usize),
    ) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (kh, kw) = self.window.kernel;
        (0..kh)
            .flat_map(move |u| (0..kw).map(move |v| (u, v)))
            .filter_map(move |(u, v)| {
                let r = (i * self.window.stride.0 + u).checked_sub(self.window.padding.0)?;
                let c = (j * self.window.stride.1 + v).checked_sub(self.window.padding.1)?;
                (r < h && c < w).then_some((r, c))
            })
    }

    /// The output and, for max pooling, each output's argmax (as a flat input index).
    fn run<T: Float>(&self, x: &ArrayD<T>) -> (ArrayD<T>, Vec<usize>) {
        let (n, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let (ho, wo) = self
            .window
            .output((h, w))
            .unwrap_or_else(|| unreachable!("checked"));
        let area = T::of((self.window.kernel.0 * self.window.kernel.1) as f64);
        let mut y = ArrayD::zeros(IxDyn(&[n, c, ho, wo]));
        let mut argmax = Vec::new();
        for s in 0..n {
            for ch in 0..c {
                for i in 0..ho {
                    for j in 0..wo {
                        if self.max {
                            let mut best = (T::neg_infinity(), 0);
                            for (r, q) in self.positions((h, w), (i, j)) {
                                let v = x[[s, ch, r, q]];
                                if v > best.0 || v.is_nan() {
                                    best = (v, ((s * c + ch) * h + r) * w + q);
                                }
                            }
                            y[[s, ch, i, j]] = best.0;
                            argmax.push(best.1);
                        } else {
                            let sum = self
                                .positions((h, w), (i, j))
                                .map(|(r, q)| x[[s, ch, r, q]])
                                .sum::<T>();
                            y[[s, ch, i, j]] = sum / area;
                        }
                    }
                }
            }
        }
        (y, argmax)
    }
}

impl<T: Float> Function<T> for PoolBackward {
    fn name(&self) -> String {
        if self.max { "max_pool2d" } else { "avg_pool2d" }.into()
    }

    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        self.run(inputs[0]).0
    }

    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let x = &*inputs[0];
        let (h, w) = (x.shape()[2], x.shape()[3]);
        let mut dx = ArrayD::<T>::zeros(x.raw_dim());
        if self.max {
            let (_, argmax) = self.run(x);
            let flat = dx
                .as_slice_mut()
                .unwrap_or_else(|| unreachable!("a new array is contiguous"));
            for (&index, &up) in argmax.iter().zip(g.iter()) {
                flat[index] += up;
            }
        } else {
            let area = T::of((self.window.kernel.0 * self.window.kernel.1) as f64);
            let (n, c, ho, wo) = (g.shape()[0], g.shape()[1], g.shape()[2], g.shape()[3]);
            for s in 0..n {
                for ch in 0..c {
                    for i in 0..ho {
                        for j in 0..wo {
                            let share = g[[s, ch, i, j]] / area;
                            for (r, q) in self.positions((h, w), (i, j)) {
                                dx[[s, ch, r, q]] += share;
                            }
                        }
                    }
                }
            }
        }
        vec![dx]
    }

    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::formula(if self.max {
            "dX = dY at each window's argmax, 0 elsewhere"
        } else {
            "dX = dY/(kh·kw) over each window"
        })
    }
}

impl<T: Float> Tensor<T> {
    /// `max_pool2d(x, kernel, stride, padding)` on `[N, C, H, W]` (PyTorch's default
    /// stride is the kernel size).
    pub fn max_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor<T>> {
        self.pool(true, kernel, stride, padding)
    }

    /// `avg_pool2d(x, kernel, stride, padding)` on `[N, C, H, W]`, dividing by the whole
    /// window (`count_include_pad=True`, PyTorch's default).
    pub fn avg_pool2d(
        &self,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor<T>> {
        self.pool(false, kernel, stride, padding)
    }

    fn pool(
        &self,
        max: bool,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    ) -> Result<Tensor<T>> {
        let name = if max { "max_pool2d" } else { "avg_pool2d" };
        let shape = self.shape();
        let window = Window {
            kernel,
            stride,
            padding,
            dilation: (1, 1),
        };
        let fits = shape.len() == 4
            && kernel.0 > 0
            && kernel.1 > 0
            && padding.0 * 2 <= kernel.0
            && padding.1 * 2 <= kernel.1
            && window.output((shape[2], shape[3])).is_some();
        if !fits {
            return Err(Error::InvalidArgument {
                what: format!("{name}(kernel {kernel:?}, stride {stride:?}, padding {padding:?})"),
                expected: "an input [N, C, H, W] the window fits in, stride >= 1 and padding at most half the kernel (as PyTorch)".into(),
                found: format!("{shape:?}"),
            });
        }
        let function = PoolBackward { window, max };
        let data = function.run(&self.data()).0;
        Ok(Tensor::from_op(data, function, vec![self.clone()]))
    }
}
