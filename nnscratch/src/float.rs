//! The element types nnscratch computes with: `f32` (the default, as in PyTorch) and `f64`.

use std::cell::RefCell;
use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use crate::kernels::GemmWorkspace;

/// A floating-point element type: implemented for `f32` and `f64`.
///
/// Everything generic in nnscratch (tensors, layers, optimizers, compiled models) is
/// generic over this trait, so one code path serves both precisions.
pub trait Float:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The type's name as PyTorch spells its dtype: `"float32"` or `"float64"`.
    const DTYPE: &'static str;

    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn of(x: f64) -> Self;

    /// Widens to `f64` (exact for both types).
    fn as_f64(self) -> f64;

    /// The error function `erf(x) = 2/√π ∫₀ˣ e^(-t²) dt` (for the exact GELU), from `libm`.
    fn erf(self) -> Self;

    /// `y = tanh(x)` over slices of equal length. `f32` uses a vectorised approximation
    /// within 2 ulp ([`crate::kernels::tanh_f32`]); `f64` the standard library's.
    fn tanh_slice(x: &[Self], y: &mut [Self]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x.tanh();
        }
    }

    /// Runs `f` with this thread's GEMM workspace for the type (the dynamic engine's
    /// matrix products; `f32` and `f64` keep one per thread, other types a new one).
    #[doc(hidden)]
    fn with_gemm_workspace<R>(f: impl FnOnce(&mut GemmWorkspace<Self>) -> R) -> R {
        f(&mut GemmWorkspace::new())
    }
}

thread_local! {
    static GEMM_F32: RefCell<GemmWorkspace<f32>> = RefCell::new(dynamic_workspace());
    static GEMM_F64: RefCell<GemmWorkspace<f64>> = RefCell::new(dynamic_workspace());
}

/// A thread's workspace for the dynamic engine's products.
///
/// The dynamic engine allocates each step's values anew and frees them after the
/// update, several MiB for a layer of a few hundred units. glibc's `malloc` returns the
/// top of its heap to the system whenever more than twice the largest block it has
/// handed back through `munmap` lies free there (its "dynamic mmap threshold"), so from
/// the second step on every step's values came from fresh pages: measured on w3,
/// 650,000 page faults in 100 steps and half the time spent in the kernel zeroing pages.
/// Freeing one 8 MiB block here (once per thread) raises that limit to 16 MiB and the
/// heap is kept: 2,000 page faults, as with `ndarray`'s products, whose per-call packing
/// buffers had the same effect by accident. Other allocators ignore it.
fn dynamic_workspace<T: Float>() -> GemmWorkspace<T> {
    drop(std::hint::black_box(vec![0u8; 8 << 20]));
    GemmWorkspace::new()
}

impl Float for f32 {
    const DTYPE: &'static str = "float32";
    fn of(x: f64) -> Self {
        x as f32
    }
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn tanh_slice(x: &[Self], y: &mut [Self]) {
        crate::kernels::tanh_f32(x, y);
    }
    fn with_gemm_workspace<R>(f: impl FnOnce(&mut GemmWorkspace<Self>) -> R) -> R {
        GEMM_F32.with(|workspace| f(&mut workspace.borrow_mut()))
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "float64";
    fn of(x: f64) -> Self {
        x
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn with_gemm_workspace<R>(f: impl FnOnce(&mut GemmWorkspace<Self>) -> R) -> R {
        GEMM_F64.with(|workspace| f(&mut workspace.borrow_mut()))
    }
}
