//! Convolutions, as `torch.nn.functional.conv1d` and `conv2d`: stride, zero padding,
//! dilation and groups. Written as the definition, one loop per index, so that this file
//! reads as the math; the compiled path (`kernels/conv.rs`) computes the same sums as
//! matrix products over unfolded patches.
//!
//! With `G` groups, `Cg = C_in/G` input channels and `Og = C_out/G` output channels per
//! group, output channel `o` in group `g = o / Og`, stride `s`, padding `p`, dilation `d`:
//!
//! ```text
//! y[n,o,i,j] = b[o] + Σ_c<Cg Σ_u<kh Σ_v<kw  w[o,c,u,v] · x[n, g·Cg + c, i·s_h - p_h + u·d_h, j·s_w - p_w + v·d_w]
//! ```
//!
//! (`x` is 0 outside the input: zero padding). Each product term sends the upstream
//! gradient back to both its factors:
//!
//! ```text
//! dw[o,c,u,v] += dy[n,o,i,j] · x[n, g·Cg + c, i·s_h - p_h + u·d_h, …]
//! dx[n, g·Cg + c, i·s_h - p_h + u·d_h, …] += dy[n,o,i,j] · w[o,c,u,v]
//! db[o] = Σ_n,i,j dy[n,o,i,j]
//! ```
//!
//! The output size along each axis is PyTorch's floor rule:
//! `⌊(size + 2·padding - dilation·(kernel - 1) - 1)/stride⌋ + 1`.

use std::cell::Ref;

use ndarray::{ArrayD, IxDyn};

use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

/// The geometry of a convolution or a pooling along the two spatial axes (height, width);
/// a 1-D operation has height 1, kernel height 1, no padding there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// `(ph, pw)`.
    pub padding: (usize, usize),
    /// `(dh, dw)`.
    pub dilation: (usize, usize),
}

impl Window {
    /// The output size along one axis, or `None` when the window does not fit.
    pub fn output_size(
        size: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
    ) -> Option<usize> {
        let span = dilation * (kernel - 1) + 1;
        let padded = size + 2 * padding;
        (stride > 0 && padded >= span).then(|| (padded - span) / stride + 1)
    }

    /// `(Ho, Wo)` for an input `(H, W)`.
    pub fn output(&self, (h, w): (usize, usize)) -> Option<(usize, usize)> {
        Some((
            Self::output_size(
                h,
                self.kernel.0,
                self.stride.0,
                self.padding.0,
                self.dilation.0,
            )?,
            Self::output_size(
                w,
                self.kernel.1,
                self.stride.1,
                self.padding.1,
                self.dilation.1,
            )?,
        ))
    }

    /// The input position (row, column) read by output `(i, j)` at kernel offset
    /// `(u, v)`, or `None` in the zero padding.
    fn source(
        &self,
        (i, j): (usize, usize),
        (u, v): (usize, usize),
        (h, w): (usize, usize),
    ) -> Option<(usize, usize)> {
        let r = (i * self.stride.0 + u * self.dilation.0).checked_sub(self.padding.0)?;
        let c = (j * self.stride.1 + v * self.dilation.1).checked_sub(self.padding.1)?;
        (r < h && c < w).then_some((r, c))
    }
}

/// `y = conv(x, w) + b`, inputs `[x, w]` or `[x, w, b]`, on 4-D arrays (a 1-D
/// convolution is lifted to height 1 around this).
struct ConvBackward {
    window: Window,
    groups: usize,
    /// `"conv1d"` or `"conv2d"`: the op's name, and whether to lift 3-D arrays.
    name: &'static str,
}

/// A 3-D `[N, C, L]` array as `[N, C, 1, L]` (and back).
fn lift<T: Float>(a: &ArrayD<T>) -> ArrayD<T> {
    let mut shape = a.shape().to_vec();
    shape.insert(2, 1);
    a.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&shape))
        .unwrap_or_else(|_| unreachable!("same size"))
}

fn lower<T: Float>(a: ArrayD<T>) -> ArrayD<T> {
    let mut shape = a.shape().to_vec();
    shape.remove(2);
    a.into_shape_with_order(IxDyn(&shape))
        .unwrap_or_else(|_| unreachable!("same size"))
}

impl ConvBackward {
    fn one_d(&self) -> bool {
        self.name == "conv1d"
    }

    /// The 4-D views of the inputs (lifted for conv1d).
    fn four_d<T: Float>(&self, a: &ArrayD<T>) -> ArrayD<T> {
        if self.one_d() {
            lift(a)
        } else {
            a.as_standard_layout().into_owned()
        }
    }

    fn forward4<T: Float>(&self, x: &ArrayD<T>, w: &ArrayD<T>, b: Option<&ArrayD<T>>) -> ArrayD<T> {
        let (n, c_in, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let (c_out, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        let og = c_out / self.groups;
        let (ho, wo) = self
            .window
            .output((h, wd))
            .unwrap_or_else(|| unreachable!("checked"));
        let mut y = ArrayD::zeros(IxDyn(&[n, c_out, ho, wo]));
        let _ = c_in;
        for s in 0..n {
            for o in 0..c_out {
                let g = o / og;
                for i in 0..ho {
                    for j in 0..wo {
                        let mut sum = b.map_or(T::zero(), |b| b[[o]]);
                        for c in 0..cg {
                            for u in 0..kh {
                                for v in 0..kw {
                                    if let Some((r, q)) =
                                        self.window.source((i, j), (u, v), (h, wd))
                                    {
                                        sum += w[[o, c, u, v]] * x[[s, g * cg + c, r, q]];
                                    }
                                }
                            }
                        }
                        y[[s, o, i, j]] = sum;
                    }
                }
            }
        }
        y
    }
}

impl<T: Float> Function<T> for ConvBackward {
    fn name(&self) -> String {
        self.name.into()
    }

    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let (x, w) = (self.four_d(inputs[0]), self.four_d(inputs[1]));
        let y = self.forward4(&x, &w, inputs.get(2).copied());
        if self.one_d() { lower(y) } else { y }
    }

    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let (x, w, dy) = (
            self.four_d(&inputs[0]),
            self.four_d(&inputs[1]),
            self.four_d(g),
        );
        let (n, h, wd) = (x.shape()[0], x.shape()[2], x.shape()[3]);
        let (c_out, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        let og = c_out / self.groups;
        let (ho, wo) = (dy.shape()[2], dy.shape()[3]);
        let mut dx = ArrayD::<T>::zeros(x.raw_dim());
        let mut dw = ArrayD::<T>::zeros(w.raw_dim());
        let mut db = ArrayD::<T>::zeros(IxDyn(&[c_out]));
        for s in 0..n {
            for o in 0..c_out {
                let g = o / og;
                for i in 0..ho {
                    for j in 0..wo {
                        let up = dy[[s, o, i, j]];
                        db[[o]] += up;
                        for c in 0..cg {
                            for u in 0..kh {
                                for v in 0..kw {
                                    if let Some((r, q)) =
                                        self.window.source((i, j), (u, v), (h, wd))
                                    {
                                        dw[[o, c, u, v]] += up * x[[s, g * cg + c, r, q]];
                                        dx[[s, g * cg + c, r, q]] += up * w[[o, c, u, v]];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (dx, dw) = if self.one_d() {
            (lower(dx), lower(dw))
        } else {
            (dx, dw)
        };
        let mut grads = vec![dx, dw];
        if inputs.len() == 3 {
            grads.push(db);
        }
        grads
    }

    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        Partial::formula(match index {
            0 => "dX = Σ dY·W over the windows reading X (a transposed convolution)",
            1 => "dW = Σ dY·X over the windows (a correlation of X with dY)",
            _ => "db = Σ_n,i,j dY",
        })
    }
}

/// An `(h, w)` pair's 1-D form for messages: `(3, 3)` or `3`.
fn pair(one_d: bool, (a, b): (usize, usize)) -> String {
    if one_d {
        b.to_string()
    } else {
        format!("({a}, {b})")
    }
}

impl<T: Float> Tensor<T> {
    /// `conv2d(x, weight, bias, stride, padding, dilation, groups)` as PyTorch's, on
    /// `x: [N, C_in, H, W]` and `weight: [C_out, C_in/groups, kh, kw]`, `bias: [C_out]`
    /// → `[N, C_out, Ho, Wo]` (see the module docs).
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
    ) -> Result<Tensor<T>> {
        self.convolve("conv2d", weight, bias, stride, padding, dilation, groups)
    }

    /// `conv1d` as PyTorch's, on `x: [N, C_in, L]` and `weight: [C_out, C_in/groups, k]`.
    pub fn conv1d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        stride: usize,
        padding: usize,
        dilation: usize,
        groups: usize,
    ) -> Result<Tensor<T>> {
        self.convolve(
            "conv1d",
            weight,
            bias,
            (1, stride),
            (0, padding),
            (1, dilation),
            groups,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn convolve(
        &self,
        name: &'static str,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
    ) -> Result<Tensor<T>> {
        let one_d = name == "conv1d";
        let rank = if one_d { 3 } else { 4 };
        let (xs, ws) = (self.shape(), weight.shape());
        let bad = |expected: String| Error::ShapeMismatch {
            op: name,
            lhs: xs.clone(),
            rhs: ws.clone(),
            expected,
        };
        if xs.len() != rank || ws.len() != rank {
            return Err(bad(format!("an input and a weight of {rank} dimensions")));
        }
        let (c_in, c_out, cg) = (xs[1], ws[0], ws[1]);
        if groups == 0 || c_in % groups != 0 || c_out % groups != 0 || cg * groups != c_in {
            return Err(bad(format!(
                "{c_in} input channels in {groups} groups of weight.shape[1] = {cg}, and output channels divisible by the groups"
            )));
        }
        if stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 {
            return Err(Error::InvalidArgument {
                what: name.into(),
                expected: "stride and dilation of at least 1".into(),
                found: format!(
                    "stride {}, dilation {}",
                    pair(one_d, stride),
                    pair(one_d, dilation)
                ),
            });
        }
        let (h, w) = if one_d { (1, xs[2]) } else { (xs[2], xs[3]) };
        let (kh, kw) = if one_d { (1, ws[2]) } else { (ws[2], ws[3]) };
        let window = Window {
            kernel: (kh, kw),
            stride,
            padding,
            dilation,
        };
        if window.output((h, w)).is_none() {
            return Err(bad(format!(
                "a kernel {} (dilation {}) that fits in the padded input {}",
                pair(one_d, (kh, kw)),
                pair(one_d, dilation),
                pair(one_d, (h + 2 * padding.0, w + 2 * padding.1))
            )));
        }
        if let Some(b) = bias
            && b.shape() != [c_out]
        {
            return Err(Error::ShapeMismatch {
                op: name,
                lhs: ws.clone(),
                rhs: b.shape(),
                expected: format!("a bias of shape [{c_out}]"),
            });
        }
        let function = ConvBackward {
            window,
            groups,
            name,
        };
        let mut parents = vec![self.clone(), weight.clone()];
        parents.extend(bias.cloned());
        let data = {
            let values: Vec<_> = parents.iter().map(|t| t.data()).collect();
            let refs: Vec<&ArrayD<T>> = values.iter().map(|v| &**v).collect();
            function.forward(&refs)
        };
        Ok(Tensor::from_op(data, function, parents))
    }
}
