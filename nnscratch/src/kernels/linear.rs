//! Linear: `Y = X·Wᵀ + b`, with `X: [batch, in]`, `W: [out, in]`, `b: [out]`, `Y: [batch, out]`.
//!
//! Backward, from `Y_io = b_o + Σ_k X_ik W_ok`:
//!
//! ```text
//! ∂L/∂W_ok = Σ_i ∂L/∂Y_io · X_ik     dW = dYᵀ·X
//! ∂L/∂b_o  = Σ_i ∂L/∂Y_io            db = Σ_rows dY
//! ∂L/∂X_ik = Σ_o ∂L/∂Y_io · W_ok     dX = dY·W
//! ```
//!
//! Each product takes one of three routes ([`route`]): tiny ones loops over contiguous
//! rows, small ones register tiles with nothing packed (both the row operations of
//! `rows.rs`, on the workspace's kernel path), large ones the packed GEMM of `gemm.rs`,
//! whose buffers the caller keeps. Every array here is in standard (row-major) layout,
//! which the generated code guarantees.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::KernelPath;
use super::gemm::{GemmWorkspace, MatRef, gemm, gemm_with_bias};
use super::rows::{has_rows, with_rows};
use super::{Write, rows, rows_mut};
use crate::Float;

/// How an `m×k · k×n` product of a Linear kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Loops over rows (dots, weighted sums of rows): tiny products.
    Rows,
    /// [`Rows::product`](super::rows::Rows::product): register tiles, nothing packed.
    Tiles,
    /// The packed GEMM.
    Gemm,
}

/// The route for an `m×k · k×n` product on `path`, as measured with `bench`. Below
/// `m·n·k = 1024` (or with fewer than 4 rows or columns) loops over rows win. Below
/// `2^15`, where the path has register-tiled row operations (AVX-512, AVX2), tiles with
/// nothing packed win: seed-fit's 20×30·30×30 products took 4.52 µs a step with their
/// gradients packed and 3.18 tiled, then 2.63 with the forward tiled too (on a
/// transposed copy of W); on the AVX2 path the step went from 5.9 to 3.1 µs. Larger
/// products are packed: w2's 64×64·64×64 measured 29.0 µs a step packed, 35.7 tiled.
fn route<T: Float>(m: usize, n: usize, k: usize, path: KernelPath) -> Route {
    let size = m * n * k;
    if m < 4 || n < 4 || size < 1024 {
        Route::Rows
    } else if size < 1 << 15 && has_rows::<T>(path) {
        Route::Tiles
    } else {
        Route::Gemm
    }
}

/// `Y = X·Wᵀ + b`, or `Y = X·Wᵀ` for a layer without bias (`b = None`).
pub fn linear_forward<T: Float>(
    x: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    b: Option<ArrayView1<'_, T>>,
    mut y: ArrayViewMut2<'_, T>,
    workspace: &mut GemmWorkspace<T>,
) {
    let (batch, inputs, outputs) = (x.nrows(), w.ncols(), w.nrows());
    let (x, w) = (rows(&x), rows(&w));
    let y = rows_mut(&mut y);
    let b = b.map(|b| {
        b.to_slice()
            .unwrap_or_else(|| unreachable!("contiguous bias"))
    });
    let path = workspace.kernel_path();
    let route = route::<T>(batch, outputs, inputs, path);
    if route == Route::Tiles {
        if let Some(b) = b {
            for y_row in y.chunks_exact_mut(outputs) {
                y_row.copy_from_slice(b);
            }
        }
        let w_t = &mut workspace.scratch().buffers[0];
        w_t.resize(inputs * outputs, T::zero());
        return product(path, x, w, w_t, y, outputs, b.is_some());
    }
    if route == Route::Gemm {
        // The kernels add the bias as they write each tile (no pass laying it into Y).
        let x = MatRef::row_major(x, batch, inputs);
        let w_t = MatRef::row_major(w, outputs, inputs).t();
        if let Err(error) = gemm_with_bias(x, w_t, b.unwrap_or(&[]), y, false, workspace) {
            panic!("{error}");
        }
        return;
    }
    let b = b.unwrap_or(&[]);
    forward_small(path, x, w, b, y, inputs, outputs);
}

with_rows! {
    /// `Y (=|+=) X·Wᵀ`, `Wᵀ` made row-major in `w_t` (as long as `w`) first.
    fn product<T>(rows, slices(x, w), slices_mut(w_t, y), values(outputs: usize, add: bool)) {
        let inputs = w.len() / outputs.max(1);
        // SAFETY: `with_rows` picks rows the CPU can run.
        unsafe {
            rows.transpose(w, outputs, inputs, w_t);
            rows.product(x, (inputs, 1), w_t, y, outputs, add);
        }
    }
}

with_rows! {
    /// The direct loops of [`linear_forward`] (`b` empty for a layer without bias).
    fn forward_small<T>(
        rows,
        slices(x, w, b),
        slices_mut(y),
        values(inputs: usize, outputs: usize),
    ) {
        // SAFETY (every row operation): `with_rows` picks rows the CPU can run.
        unsafe {
            if inputs == 1 {
                // One input (a function of x): each output row is b + x·w.
                for (x, y_row) in x.chunks_exact(1).zip(y.chunks_exact_mut(outputs)) {
                    if b.is_empty() {
                        rows.combine(x, 1, w, y_row, false);
                    } else {
                        rows.scale_add(x[0], w, b, y_row);
                    }
                }
                return;
            }
            for (x_row, y_row) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
                if outputs >= 8 {
                    rows.matvec(w, x_row, b, y_row);
                    continue;
                }
                // A few outputs: a dot each (what `matvec` does for so few, without
                // its set-up).
                let outputs = y_row.iter_mut().zip(w.chunks_exact(inputs));
                for ((y, w_row), o) in outputs.zip(0..) {
                    let dot = rows.dot(x_row, w_row);
                    *y = if b.is_empty() { dot } else { b[o] + dot };
                }
            }
        }
    }
}

/// `dW = dYᵀ·X` and `db = Σ_rows dY` (for a layer with a bias), set or added (see
/// [`Write`]: a layer applied twice, sharing its weights, adds its second use's).
pub fn linear_backward_params<T: Float>(
    dy: ArrayView2<'_, T>,
    x: ArrayView2<'_, T>,
    mut dw: ArrayViewMut2<'_, T>,
    db: Option<ArrayViewMut1<'_, T>>,
    write: Write,
    workspace: &mut GemmWorkspace<T>,
) {
    let (batch, inputs, outputs) = (x.nrows(), dw.ncols(), dw.nrows());
    let (dy, x) = (rows(&dy), rows(&x));
    let dw = rows_mut(&mut dw);
    let path = workspace.kernel_path();
    let add = write == Write::Add;
    if let Some(mut db) = db {
        let db = db
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous bias gradient"));
        bias_gradient(path, dy, db, add);
    }
    if route::<T>(outputs, inputs, batch, path) == Route::Gemm {
        let dy_t = MatRef::row_major(dy, batch, outputs).t();
        return gemm(
            dy_t,
            MatRef::row_major(x, batch, inputs),
            dw,
            add,
            workspace,
        );
    }
    weight_gradient_small(path, dy, x, dw, inputs, outputs, add);
}

with_rows! {
    /// `db (=|+=) Σ_rows dY`.
    fn bias_gradient<T>(rows, slices(dy), slices_mut(db), values(add: bool)) {
        // SAFETY: `with_rows` picks rows the CPU can run.
        unsafe { rows.combine(&[], 0, dy, db, add) };
    }
}

with_rows! {
    /// The direct loops of `dW (=|+=) dYᵀ·X`.
    fn weight_gradient_small<T>(
        rows,
        slices(dy, x),
        slices_mut(dw),
        values(inputs: usize, outputs: usize, add: bool),
    ) {
        // SAFETY (every row operation): `with_rows` picks rows the CPU can run.
        unsafe {
            if inputs == 1 {
                // dW is a column: dW = Σ_i x_i · dY_i, over contiguous rows of dY.
                return rows.combine(x, 1, dy, dw, add);
            }
            if dy.len() == outputs {
                // One sample: dW = dY_0ᵀ·X_0, an outer product.
                return rows.outer(dy, x, dw, add);
            }
            // dW = dYᵀ·X: A[o, i] = dY[i, o].
            rows.product(dy, (1, outputs), x, dw, inputs, add);
        }
    }
}

/// `dX = dY·W` (set or added, see [`Write`]).
pub fn linear_backward_input<T: Float>(
    dy: ArrayView2<'_, T>,
    w: ArrayView2<'_, T>,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
    workspace: &mut GemmWorkspace<T>,
) {
    let (batch, inputs, outputs) = (dy.nrows(), w.ncols(), w.nrows());
    let (dy, w) = (rows(&dy), rows(&w));
    let dx = rows_mut(&mut dx);
    let add = write == Write::Add;
    let path = workspace.kernel_path();
    if route::<T>(batch, inputs, outputs, path) == Route::Gemm {
        let dy = MatRef::row_major(dy, batch, outputs);
        return gemm(
            dy,
            MatRef::row_major(w, outputs, inputs),
            dx,
            add,
            workspace,
        );
    }
    input_gradient_small(path, dy, w, dx, inputs, outputs, add);
}

with_rows! {
    /// The direct loops of `dX (=|+=) dY·W`.
    fn input_gradient_small<T>(
        rows,
        slices(dy, w),
        slices_mut(dx),
        values(inputs: usize, outputs: usize, add: bool),
    ) {
        // SAFETY: `with_rows` picks rows the CPU can run.
        unsafe { rows.product(dy, (outputs, 1), w, dx, inputs, add) };
    }
}
