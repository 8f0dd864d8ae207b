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
//! Small layers run direct loops over contiguous rows (`dot` and `axpy` on slices); large
//! ones the packed GEMM of `gemm.rs`, whose buffers the caller keeps. Every array here is
//! in standard (row-major) layout, which the generated code guarantees.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::gemm::{GemmWorkspace, MatRef, gemm};
use super::{Write, axpy, dot, rows, rows_mut};
use crate::Float;

/// Whether an `m×k · k×n` product is worth packing for (measured with `bench`: below
/// this the direct loops win, above it the blocked kernel does).
fn use_gemm(m: usize, n: usize, k: usize) -> bool {
    m >= 4 && n >= 4 && m * n * k >= 1024
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
    let Some(b) = b else {
        if use_gemm(batch, outputs, inputs) {
            let x = MatRef::row_major(x, batch, inputs);
            let w_t = MatRef::row_major(w, outputs, inputs).t();
            return gemm(x, w_t, y, false, workspace);
        }
        for (x_row, y_row) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
            for (y, w_row) in y_row.iter_mut().zip(w.chunks_exact(inputs)) {
                *y = dot(x_row, w_row);
            }
        }
        return;
    };
    let b = b
        .to_slice()
        .unwrap_or_else(|| unreachable!("contiguous bias"));
    if use_gemm(batch, outputs, inputs) {
        for y_row in y.chunks_exact_mut(outputs) {
            y_row.copy_from_slice(b);
        }
        let x = MatRef::row_major(x, batch, inputs);
        let w_t = MatRef::row_major(w, outputs, inputs).t();
        return gemm(x, w_t, y, true, workspace);
    }
    if inputs == 1 {
        // One input (a function of x): each output row is b + x·w, a vectorised axpy.
        for (&x, y_row) in x.iter().zip(y.chunks_exact_mut(outputs)) {
            for ((y, &w), &bias) in y_row.iter_mut().zip(w).zip(b) {
                *y = bias + x * w;
            }
        }
        return;
    }
    for (x_row, y_row) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
        for ((y, w_row), &bias) in y_row.iter_mut().zip(w.chunks_exact(inputs)).zip(b) {
            *y = bias + dot(x_row, w_row);
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
    if let Some(mut db) = db {
        let db = db
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous bias gradient"));
        let mut dy_rows = dy.chunks_exact(outputs);
        if write == Write::Set {
            // The first row sets, the others add: no pass to clear the buffer first.
            match dy_rows.next() {
                Some(first) => db.copy_from_slice(first),
                None => db.fill(T::zero()),
            }
        }
        for dy_row in dy_rows {
            for (db, &g) in db.iter_mut().zip(dy_row) {
                *db += g;
            }
        }
    }
    if use_gemm(outputs, inputs, batch) {
        let dy_t = MatRef::row_major(dy, batch, outputs).t();
        return gemm(
            dy_t,
            MatRef::row_major(x, batch, inputs),
            dw,
            write == Write::Add,
            workspace,
        );
    }
    let mut rows = dy.chunks_exact(outputs).zip(x.chunks_exact(inputs));
    if write == Write::Set {
        // The first sample sets dW (dW = dY_0ᵀ·X_0), the others add to it.
        let Some((dy_row, x_row)) = rows.next() else {
            return dw.fill(T::zero());
        };
        for (&g, dw_row) in dy_row.iter().zip(dw.chunks_exact_mut(inputs)) {
            for (dw, &x) in dw_row.iter_mut().zip(x_row) {
                *dw = g * x;
            }
        }
    }
    if inputs == 1 {
        // dW is a column: dW += x_i · dY_i, over contiguous rows.
        for (dy_row, x_row) in rows {
            for (dw, &g) in dw.iter_mut().zip(dy_row) {
                *dw += g * x_row[0];
            }
        }
        return;
    }
    for (dy_row, x_row) in rows {
        for (&g, dw_row) in dy_row.iter().zip(dw.chunks_exact_mut(inputs)) {
            axpy(g, x_row, dw_row); // row o of dW += dY_io · X_i
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
    if use_gemm(batch, inputs, outputs) {
        let dy = MatRef::row_major(dy, batch, outputs);
        return gemm(
            dy,
            MatRef::row_major(w, outputs, inputs),
            dx,
            write == Write::Add,
            workspace,
        );
    }
    for (dy_row, dx_row) in dy.chunks_exact(outputs).zip(dx.chunks_exact_mut(inputs)) {
        let mut terms = dy_row.iter().zip(w.chunks_exact(inputs));
        if write == Write::Set {
            // The first output's term sets the row, the others add to it.
            match terms.next() {
                Some((&g, w_row)) => {
                    for (dx, &w) in dx_row.iter_mut().zip(w_row) {
                        *dx = g * w;
                    }
                }
                None => dx_row.fill(T::zero()),
            }
        }
        for (&g, w_row) in terms {
            axpy(g, w_row, dx_row); // dX_i += dY_io · W_o
        }
    }
}
