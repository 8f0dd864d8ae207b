//! Matrix product and transpose.
//!
//! `matmul` follows `torch.matmul`. Up to two dimensions: matrix·matrix, matrix·vector
//! `[m,k]·[k] -> [m]`, vector·matrix `[k]·[k,n] -> [n]` and vector·vector (a dot product,
//! 0-D). A vector on the left is treated as a row `[1,k]`, on the right as a column `[k,1]`,
//! which reduces every case to one derivation for `C = A·B` with `A: [m,k]`, `B: [k,n]`:
//!
//! ```text
//! C_ij = Σ_p A_ip B_pj   ⇒   ∂L/∂A_ip = Σ_j ∂L/∂C_ij · B_pj    i.e.  dA = dC·Bᵀ
//!                            ∂L/∂B_pj = Σ_i A_ip · ∂L/∂C_ij    i.e.  dB = Aᵀ·dC
//! ```

use std::cell::Ref;

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array2, ArrayD, ArrayView2, Ix2, IxDyn};

use super::arith::{broadcast_shape, unbroadcast};
use super::{Function, Partial, Tensor};
use crate::kernels::{KernelPath, MatRef, gemm};
use crate::{Error, Float, Result};

/// `op(A)·op(B)` into a new row-major `[rows, cols]` array, reading both operands in
/// place through strides (transposes are free views), with the packed GEMM the compiled
/// models use ([`crate::kernels::gemm`]) on this thread's workspace and
/// [`set_num_threads`] threads.
fn product<T: Float>(
    a: &ArrayD<T>,
    a_left: bool,
    a_t: bool,
    b: &ArrayD<T>,
    b_left: bool,
    b_t: bool,
) -> Array2<T> {
    fn view<T: Float>(x: &ArrayD<T>, left: bool, t: bool) -> ndarray::ArrayView2<'_, T> {
        let m = match x.ndim() {
            2 => x
                .view()
                .into_dimensionality::<Ix2>()
                .unwrap_or_else(|_| unreachable!("2-D")),
            _ if left => x
                .view()
                .into_shape_with_order((1, x.len()))
                .unwrap_or_else(|_| unreachable!("1-D")),
            _ => x
                .view()
                .into_shape_with_order((x.len(), 1))
                .unwrap_or_else(|_| unreachable!("1-D")),
        };
        if t { m.reversed_axes() } else { m }
    }
    matrix_product(view(a, a_left, a_t), view(b, b_left, b_t))
}

/// `A·B` for two matrix views, as a new row-major array.
fn matrix_product<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Array2<T> {
    // Operands in memory order (either layout, the usual case) are read in place; any
    // other view (a slice with gaps) is copied once into row-major order.
    fn read<'a, T: Float>(
        view: &ArrayView2<'a, T>,
        copy: &'a mut Option<Array2<T>>,
    ) -> MatRef<'a, T> {
        if let Some(matrix) = MatRef::of_view(view) {
            return matrix;
        }
        let copy = copy.insert(view.as_standard_layout().into_owned());
        MatRef::row_major(
            copy.as_slice()
                .unwrap_or_else(|| unreachable!("standard layout")),
            copy.nrows(),
            copy.ncols(),
        )
    }
    let (mut a_copy, mut b_copy) = (None, None);
    let (a, b) = (read(&a, &mut a_copy), read(&b, &mut b_copy));
    let mut c = Array2::zeros((a.rows, b.cols));
    let out = c
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("a new array is row-major"));
    T::with_gemm_workspace(|workspace| {
        let threads = num_threads();
        if workspace.threads() != threads {
            workspace.set_threads(threads);
        }
        let path = kernel_path();
        if workspace.kernel_path() != path {
            // Available: `set_kernel_path` below only stores paths this CPU runs.
            let _ = workspace.set_kernel_path(path);
        }
        gemm(a, b, out, false, workspace);
    });
    c
}

/// Threads of the dynamic engine's matrix products (1 until set).
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of threads the dynamic engine's matrix products use (at least 1; 1 by
/// default), as `torch.set_num_threads`. Each thread that computes keeps its own helper
/// threads, started on its first product after a change. Compiled models have their own
/// setting (`set_threads` on the model).
pub fn set_num_threads(threads: usize) {
    THREADS.store(threads.max(1), Ordering::Relaxed);
}

/// The kernel path of the dynamic engine's matrix products, if set
/// ([`KernelPath::ALL`] index + 1; 0 for the CPU's default).
static PATH: AtomicUsize = AtomicUsize::new(0);

/// Runs the dynamic engine's matrix products on `path` (default: the fastest this CPU
/// has), as a compiled model's `set_kernel_path`: the paths round differently, and
/// `Portable` gives the same bits on every machine. An `Err`, changing nothing, if this
/// CPU cannot run it.
pub fn set_kernel_path(path: KernelPath) -> crate::Result<()> {
    if !path.is_available() {
        return Err(crate::Error::InvalidArgument {
            what: "tensor::set_kernel_path".into(),
            expected: "a kernel path this CPU supports".into(),
            found: format!("{path:?}"),
        });
    }
    let index = KernelPath::ALL.iter().position(|&p| p == path).unwrap_or(0);
    PATH.store(index + 1, Ordering::Relaxed);
    Ok(())
}

/// The kernel path of the dynamic engine's matrix products.
pub fn kernel_path() -> KernelPath {
    match PATH.load(Ordering::Relaxed) {
        0 => KernelPath::default_for_this_cpu(),
        index => KernelPath::ALL[index - 1],
    }
}

/// The number of threads the dynamic engine's matrix products use.
pub fn num_threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// Views a 0/1/2-D array as a matrix: a vector on the left of a product as a row,
/// on the right as a column.
fn as_matrix<T: Float>(a: &ArrayD<T>, left: bool) -> Array2<T> {
    match a.ndim() {
        2 => a.view().into_dimensionality::<Ix2>().map(|v| v.to_owned()),
        1 => {
            let n = a.len();
            let shape = if left { (1, n) } else { (n, 1) };
            a.view().into_shape_with_order(shape).map(|v| v.to_owned())
        }
        _ => unreachable!("matmul operands are checked to be 1-D or 2-D"),
    }
    .unwrap_or_else(|_| unreachable!("reshaping a standard-layout vector cannot fail"))
}

/// `a·b` for operands already checked, with `torch.matmul`'s output shape.
fn matmul_values<T: Float>(a: &ArrayD<T>, b: &ArrayD<T>) -> ArrayD<T> {
    let mut shape = Vec::new();
    if a.ndim() == 2 {
        shape.push(a.shape()[0]);
    }
    if b.ndim() == 2 {
        shape.push(b.shape()[1]);
    }
    reshaped(product(a, true, false, b, false, false), &shape)
}

/// Reshapes `value` to `shape` (same number of elements).
fn reshaped<T: Float>(value: Array2<T>, shape: &[usize]) -> ArrayD<T> {
    let value = value.as_standard_layout().into_owned();
    value
        .into_shape_with_order(IxDyn(shape))
        .unwrap_or_else(|_| unreachable!("element counts agree by construction"))
}

struct MatmulBackward;

impl<T: Float> Function<T> for MatmulBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        matmul_values(inputs[0], inputs[1])
    }
    fn name(&self) -> String {
        "matmul".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        output: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        self.backward_needed(inputs, output, g, &[true, true])
    }
    fn backward_needed(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
        needs: &[bool],
    ) -> Vec<ArrayD<T>> {
        let (a, b) = (&*inputs[0], &*inputs[1]);
        // The output gradient as a matrix [m, n], a vector operand's side being 1.
        let rows = if a.ndim() == 2 { a.shape()[0] } else { 1 };
        let cols = if b.ndim() == 2 { b.shape()[1] } else { 1 };
        let g = reshaped_grad(g, rows, cols).into_dyn();
        let skipped = || ArrayD::zeros(IxDyn(&[0]));
        // dA = dC·Bᵀ, dB = Aᵀ·dC, each only if that input wants a gradient.
        let grad_a = if needs[0] {
            reshaped(product(&g, true, false, b, false, true), a.shape())
        } else {
            skipped()
        };
        let grad_b = match needs[1] {
            false => skipped(),
            // A column-major B (the `w.t()` of a Linear layer) gets a column-major
            // gradient, computed as (dB)ᵀ = dCᵀ·A, so that the transpose's backward
            // hands the weight a row-major gradient without reordering it.
            true if b.ndim() == 2 && a.ndim() == 2 && b.t().is_standard_layout() => {
                product(&g, true, true, a, false, false)
                    .reversed_axes()
                    .into_dyn()
            }
            true => reshaped(product(a, true, true, &g, false, false), b.shape()),
        };
        vec![grad_a, grad_b]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        if index == 0 {
            Partial::with_value(
                "dA = dC·Bᵀ",
                as_matrix(&inputs[1], false).t().to_owned().into_dyn(),
            )
        } else {
            Partial::with_value(
                "dB = Aᵀ·dC",
                as_matrix(&inputs[0], true).t().to_owned().into_dyn(),
            )
        }
    }
}

fn reshaped_grad<T: Float>(g: &ArrayD<T>, rows: usize, cols: usize) -> Array2<T> {
    g.as_standard_layout()
        .into_owned()
        .into_shape_with_order((rows, cols))
        .unwrap_or_else(|_| unreachable!("the output gradient has the output's element count"))
}

/// `C[i] = A[i]·B[i]` over broadcast batch dimensions (see `Tensor::batched_matmul`).
struct BatchedMatmulBackward {
    /// The operands as matrices with batch dimensions (a 1-D operand gets its side 1).
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
    /// The broadcast batch dimensions.
    batch: Vec<usize>,
    /// The output's shape (a 1-D operand's side removed, as torch.matmul does).
    output_shape: Vec<usize>,
}

impl BatchedMatmulBackward {
    /// `op(X[i])·op(Y[i])` for every batch index, `X` and `Y` broadcast to the batch.
    fn products<T: Float>(
        &self,
        x: &ArrayD<T>,
        x_shape: &[usize],
        x_t: bool,
        y: &ArrayD<T>,
        y_shape: &[usize],
        y_t: bool,
    ) -> ArrayD<T> {
        let stack = |v: &ArrayD<T>, shape: &[usize]| -> ndarray::Array3<T> {
            let matrix = &shape[shape.len() - 2..];
            let mut full = self.batch.clone();
            full.extend_from_slice(matrix);
            let v = v
                .view()
                .into_shape_with_order(IxDyn(shape))
                .unwrap_or_else(|_| unreachable!("element counts agree"));
            let broadcast = v
                .broadcast(IxDyn(&full))
                .unwrap_or_else(|| unreachable!("batch shapes checked"))
                .as_standard_layout()
                .into_owned();
            broadcast
                .into_shape_with_order((self.batch.iter().product::<usize>(), matrix[0], matrix[1]))
                .unwrap_or_else(|_| unreachable!("element counts agree"))
        };
        let (xs, ys) = (stack(x, x_shape), stack(y, y_shape));
        let mut out = Vec::new();
        let mut rows_cols = (0, 0);
        for (xm, ym) in xs.outer_iter().zip(ys.outer_iter()) {
            let xm = if x_t { xm.reversed_axes() } else { xm };
            let ym = if y_t { ym.reversed_axes() } else { ym };
            let c = matrix_product(xm, ym);
            rows_cols = c.dim();
            out.extend(c.iter().copied());
        }
        let mut shape = self.batch.clone();
        shape.extend_from_slice(&[rows_cols.0, rows_cols.1]);
        ArrayD::from_shape_vec(IxDyn(&shape), out)
            .unwrap_or_else(|_| unreachable!("one product per batch index"))
    }
}

impl<T: Float> Function<T> for BatchedMatmulBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        let c = self.products(
            inputs[0],
            &self.a_shape,
            false,
            inputs[1],
            &self.b_shape,
            false,
        );
        reshape_to(c, &self.output_shape)
    }
    fn name(&self) -> String {
        "matmul".into()
    }
    // dA[i] = dC[i]·B[i]ᵀ and dB[i] = A[i]ᵀ·dC[i], then summed over the batch dimensions
    // each operand was broadcast along.
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let (m, n) = (
            self.a_shape[self.a_shape.len() - 2],
            self.b_shape[self.b_shape.len() - 1],
        );
        let mut g_shape = self.batch.clone();
        g_shape.extend_from_slice(&[m, n]);
        let g = reshape_to(g.clone(), &g_shape);
        let grad_a = self.products(&g, &g_shape, false, &inputs[1], &self.b_shape, true);
        let grad_b = self.products(&inputs[0], &self.a_shape, true, &g, &g_shape, false);
        vec![
            reshape_to(unbroadcast(grad_a, &self.a_shape), inputs[0].shape()),
            reshape_to(unbroadcast(grad_b, &self.b_shape), inputs[1].shape()),
        ]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        Partial::formula(if index == 0 {
            "dA = dC·Bᵀ (per batch, summed over broadcast)"
        } else {
            "dB = Aᵀ·dC (per batch, summed over broadcast)"
        })
    }
}

/// `value` (any layout) as row-major data of `shape`.
fn reshape_to<T: Float>(value: ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    value
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .unwrap_or_else(|_| unreachable!("element counts agree"))
}

struct TransposeBackward;

impl<T: Float> Function<T> for TransposeBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0].t().to_owned()
    }
    fn name(&self) -> String {
        "transpose".into()
    }
    // Y = Xᵀ  ⇒  dX = dYᵀ (a memory copy of the transposed view; see `t`)
    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        vec![g.t().to_owned()]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::formula("dX = dYᵀ")
    }
}

impl<T: Float> Tensor<T> {
    /// Matrix product, as `torch.matmul`: 1-D and 2-D operands as above, and batches of
    /// matrices `[..., m, k]·[..., k, n] -> [..., m, n]` whose batch dimensions broadcast
    /// (`[30, 10]·[batch, 10, 1] -> [batch, 30, 1]`).
    pub fn matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (lhs, rhs) = (self.shape(), other.shape());
        let mismatch = |expected: &str| Error::ShapeMismatch {
            op: "matmul",
            lhs: lhs.clone(),
            rhs: rhs.clone(),
            expected: expected.to_string(),
        };
        if lhs.is_empty() || rhs.is_empty() {
            return Err(mismatch(
                "operands of at least one dimension (use * to scale by a scalar)",
            ));
        }
        if lhs.len() > 2 || rhs.len() > 2 {
            return self.batched_matmul(other);
        }
        let inner_lhs = lhs[lhs.len() - 1];
        let inner_rhs = rhs[0];
        if inner_lhs != inner_rhs {
            return Err(mismatch(&format!(
                "the left operand's last dimension ({inner_lhs}) to equal the right operand's first ({inner_rhs})"
            )));
        }
        let data = matmul_values(&self.data(), &other.data());
        Ok(Tensor::from_op(
            data,
            MatmulBackward,
            vec![self.clone(), other.clone()],
        ))
    }

    /// `torch.matmul` when an operand has more than two dimensions.
    fn batched_matmul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        let (lhs, rhs) = (self.shape(), other.shape());
        // A vector on the left is a row [1, k], on the right a column [k, 1].
        let a_shape = if lhs.len() == 1 {
            vec![1, lhs[0]]
        } else {
            lhs.clone()
        };
        let b_shape = if rhs.len() == 1 {
            vec![rhs[0], 1]
        } else {
            rhs.clone()
        };
        let (k_a, k_b) = (a_shape[a_shape.len() - 1], b_shape[b_shape.len() - 2]);
        let batch = broadcast_shape(&a_shape[..a_shape.len() - 2], &b_shape[..b_shape.len() - 2]);
        let (Some(batch), true) = (batch, k_a == k_b) else {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs,
                rhs,
                expected: format!(
                    "[..., m, k]·[..., k, n] with batch dimensions that broadcast; the inner sizes are {k_a} and {k_b}"
                ),
            });
        };
        let mut output_shape = batch.clone();
        if lhs.len() > 1 {
            output_shape.push(a_shape[a_shape.len() - 2]);
        }
        if rhs.len() > 1 {
            output_shape.push(b_shape[b_shape.len() - 1]);
        }
        let function = BatchedMatmulBackward {
            a_shape,
            b_shape,
            batch,
            output_shape,
        };
        let data = function.forward(&[&self.data(), &other.data()]);
        Ok(Tensor::from_op(
            data,
            function,
            vec![self.clone(), other.clone()],
        ))
    }

    /// Transpose of a matrix (`x.T` in PyTorch); a scalar or a vector is returned as is.
    ///
    /// The result keeps the transposed strides (a straight memory copy, column-major),
    /// which `matmul` reads in place, so `x.matmul(&w.t())` never reorders `w`.
    pub fn t(&self) -> Tensor<T> {
        if self.ndim() < 2 {
            return self.clone();
        }
        let data = self.data().t().to_owned();
        Tensor::from_op(data, TransposeBackward, vec![self.clone()])
    }
}
