//! The numeric kernels that `model!`-generated code calls, one file per layer family.
//!
//! Each kernel reads views and writes into buffers the caller owns (the model's
//! workspace), so a training step allocates nothing. The derivation of every backward
//! kernel is written above it. The dynamic engine does not use these to differentiate:
//! it derives the same gradients from elementary ops, which is what makes comparing the
//! two meaningful. It shares the `f32` `tanh` approximation and dropout's mask generator
//! (functions, not derivatives), and the pointwise formulas of the value-target losses
//! (`ValueLoss`: one fused node per loss in both engines, each checked against PyTorch).
//!
//! | file | what |
//! |---|---|
//! | `linear.rs` | `Y = X·Wᵀ + b` and its three gradients; small layers direct, large ones GEMM |
//! | `gemm.rs` | packed, cache-blocked `C = A·B`, AVX2/FMA micro-kernel, helper threads |
//! | `rows.rs` | operations on short rows for small layers and optimizers, portable and AVX-512 with masked tails |
//! | `relu.rs`, `leaky_relu.rs`, `sigmoid.rs`, `tanh.rs`, `softplus.rs`, `gelu.rs`, `silu.rs`, `elu.rs`, `identity.rs` | each activation's forward and backward |
//! | `softmax.rs` | Softmax and LogSoftmax over each row, forward and backward |
//! | `elementwise.rs` | `+`, `-` and `*` of two values, constant factors, concatenation |
//! | `conv.rs` | Conv1d/Conv2d as GEMMs over unfolded patches, max and average pooling |
//! | `batch_norm.rs` | BatchNorm1d with batch or running statistics; the `γ`, `β` gradients LayerNorm shares |
//! | `layer_norm.rs` | LayerNorm over each row |
//! | `dropout.rs` | inverted dropout and its counter-based mask generator |
//! | `loss.rs` | MSE, L1, smooth L1, Huber, BCE with logits, softmax cross-entropy and NLL, with their gradients and reductions |
//! | `math.rs` | the vectorised `f32` `tanh` (within 2 ulp) |
//!
//! Backward kernels take a [`Write`]: a value used by several layers receives the sum of
//! their gradients, so the first consumer (in backward order) sets the gradient buffer
//! and the others add to it.

mod batch_norm;
mod conv;
mod dropout;
mod elementwise;
mod elu;
mod gelu;
mod gemm;
mod identity;
mod layer_norm;
mod leaky_relu;
mod linear;
mod loss;
mod math;
mod relu;
pub(crate) mod rows;
mod sigmoid;
mod silu;
mod softmax;
mod softplus;
mod tanh;

pub use batch_norm::{
    RunningStats, batch_norm_backward_input, batch_norm_backward_params, batch_norm_forward,
    norm_backward_params,
};
pub use conv::{
    Geometry, conv_backward_input, conv_backward_params, conv_forward, pool_backward, pool_forward,
};
pub use dropout::{DropoutGenerator, dropout_backward, dropout_forward};
pub use elementwise::{
    add_backward, add_forward, cat_backward, cat_forward, mul_backward, mul_forward,
    scale_backward, scale_forward, sub_backward_right, sub_forward,
};
pub use elu::{elu_backward, elu_forward};
pub(crate) use gelu::gelu;
pub use gelu::{gelu_backward, gelu_forward};
pub use gemm::{
    GemmWorkspace, KernelPath, MatRef, Task, TaskScratch, check_gemm, gemm, gemm_naive, try_gemm,
};
pub use identity::{identity_backward, identity_forward};
pub use layer_norm::{layer_norm_backward_input, layer_norm_forward};
pub use leaky_relu::{leaky_relu_backward, leaky_relu_forward};
pub use linear::{linear_backward_input, linear_backward_params, linear_forward};
pub use loss::{
    Reduction, ValueLoss, cross_entropy, cross_entropy_backward, mse_loss, mse_loss_backward,
    nll_loss, nll_loss_backward, value_loss, value_loss_backward,
};
pub use math::{tanh_f32, tanh_f32_on};
pub use relu::{relu_backward, relu_forward};
pub use sigmoid::{sigmoid_backward, sigmoid_forward};
pub use silu::{silu_backward, silu_forward};
pub use softmax::{log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward};
pub(crate) use softplus::softplus;
pub use softplus::{softplus_backward, softplus_forward};
pub use tanh::{tanh_backward, tanh_forward};

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::Float;

/// A standard-layout array's values, row after row (what generated code always passes).
pub(crate) fn rows<'a, T>(a: &ArrayView2<'a, T>) -> &'a [T] {
    a.to_slice()
        .unwrap_or_else(|| unreachable!("kernels get standard-layout arrays"))
}

/// [`rows`], to write.
pub(crate) fn rows_mut<'a, T>(a: &'a mut ArrayViewMut2<'_, T>) -> &'a mut [T] {
    a.as_slice_mut()
        .unwrap_or_else(|| unreachable!("kernels get standard-layout arrays"))
}

/// An optional parameter vector's values (`γ`, `β` of a normalisation layer).
pub(crate) fn vector<'a, T>(a: &'a Option<ndarray::ArrayView1<'_, T>>) -> Option<&'a [T]> {
    a.as_ref().map(|a| {
        a.as_slice()
            .unwrap_or_else(|| unreachable!("contiguous parameters"))
    })
}

/// How a backward kernel stores a gradient into its output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Overwrite: the first (or only) contribution to this gradient.
    Set,
    /// Accumulate: a further contribution to a value used more than once.
    Add,
}

impl Write {
    /// Stores `value` into `slot` according to the mode.
    #[inline(always)]
    pub fn store<T: Float>(self, slot: &mut T, value: T) {
        match self {
            Write::Set => *slot = value,
            Write::Add => *slot += value,
        }
    }
}

/// `out = f(a)` element by element: a plain slice loop when both are contiguous (always,
/// in generated code), a `Zip` otherwise. The slice loop is compiled for AVX-512 too and
/// run so where the CPU has it (LLVM vectorises `f` on 512-bit registers).
#[inline]
pub(crate) fn map_into<T: Float>(
    a: ArrayView2<'_, T>,
    mut out: ArrayViewMut2<'_, T>,
    f: impl Fn(T) -> T,
) {
    #[inline(always)]
    fn slices<T: Float>(a: &[T], out: &mut [T], f: &impl Fn(T) -> T) {
        for (o, &a) in out.iter_mut().zip(a) {
            *o = f(a);
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn slices_avx512<T: Float>(a: &[T], out: &mut [T], f: &impl Fn(T) -> T) {
        slices(a, out, f);
    }
    if let (Some(a), Some(out)) = (a.to_slice(), out.as_slice_mut()) {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: the CPU has AVX-512F (checked).
            return unsafe { slices_avx512(a, out, &f) };
        }
        slices(a, out, &f);
    } else {
        Zip::from(out).and(a).for_each(|o, &a| *o = f(a));
    }
}

/// Whether this CPU runs AVX-512F (the kernels' element-wise loops use it then).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// `out (=|+=) f(a, b)` element by element (see [`Write`]), slices when contiguous (and
/// on AVX-512 where the CPU has it, as [`map_into`]).
#[inline]
pub(crate) fn map2_into<T: Float>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    mut out: ArrayViewMut2<'_, T>,
    write: Write,
    f: impl Fn(T, T) -> T,
) {
    #[inline(always)]
    fn slices<T: Float>(a: &[T], b: &[T], out: &mut [T], write: Write, f: &impl Fn(T, T) -> T) {
        match write {
            Write::Set => {
                for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                    *o = f(a, b);
                }
            }
            Write::Add => {
                for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                    *o += f(a, b);
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn slices_avx512<T: Float>(
        a: &[T],
        b: &[T],
        out: &mut [T],
        write: Write,
        f: &impl Fn(T, T) -> T,
    ) {
        slices(a, b, out, write, f);
    }
    if let (Some(a), Some(b), Some(out)) = (a.to_slice(), b.to_slice(), out.as_slice_mut()) {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: the CPU has AVX-512F (checked).
            return unsafe { slices_avx512(a, b, out, write, &f) };
        }
        slices(a, b, out, write, &f);
    } else {
        Zip::from(out)
            .and(a)
            .and(b)
            .for_each(|o, &a, &b| write.store(o, f(a, b)));
    }
}
