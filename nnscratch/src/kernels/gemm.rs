//! A packed, cache-blocked matrix product `C (=|+=) A·B` whose packing buffers live in
//! the caller's workspace, so it allocates nothing once they have grown to size.
//!
//! The layout follows the BLIS/GotoBLAS recipe:
//!
//! ```text
//! for each KC-deep slice of k:          pack B[kc, n] into NR-wide column panels
//!   for each MC-tall block of rows:     pack A[mc, kc] into MR-tall row panels
//!     for each (row panel, column panel): the MR×NR micro-kernel, accumulators in
//!                                         registers, one rank-1 update per k
//! ```
//!
//! A and B are read through strides, so a transposed operand (`Wᵀ`, `dYᵀ`) costs nothing
//! extra: packing reads it in whatever order it is stored. The micro-kernel is plain Rust
//! over fixed-size arrays; compiled with AVX2 and FMA (chosen at run time when the CPU
//! has them) LLVM turns it into broadcast + fused multiply-add on 256-bit registers.
//! Tested against a naive triple loop (`tests/kernels.rs`).

use crate::Float;

/// Rows of A per micro-kernel call.
const MR: usize = 6;
/// Columns of B per micro-kernel call (16 `f32` = two 256-bit registers).
const NR: usize = 16;
/// Depth of a packed slice: an MR×KC panel of A and a KC×NR panel of B stay in L1/L2.
const KC: usize = 256;
/// Rows of A packed at once (a multiple of MR), sized for L2.
const MC: usize = 96;

/// A read-only matrix as a slice with strides (in elements).
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a, T> {
    /// The elements; `(i, j)` is at `i * row_stride + j * col_stride`.
    pub data: &'a [T],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl<'a, T: Copy> MatRef<'a, T> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> T {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// The packing buffers, kept between calls (put one in a model's workspace).
#[derive(Debug, Clone, Default)]
pub struct GemmWorkspace<T> {
    packed_a: Vec<T>,
    packed_b: Vec<T>,
}

impl<T: Float> GemmWorkspace<T> {
    /// Empty buffers; they grow on first use to at most `MC·KC` and `KC·n` elements.
    pub fn new() -> Self {
        GemmWorkspace {
            packed_a: Vec::new(),
            packed_b: Vec::new(),
        }
    }
}

/// `C = A·B` (or `C += A·B` with `accumulate`), `C` row-major `m × n` in `c`.
pub fn gemm<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
    workspace: &mut GemmWorkspace<T>,
) {
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions");
    assert_eq!(c.len(), a.rows * b.cols, "gemm: output size");
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { gemm_avx2_fma(a, b, c, accumulate, workspace) };
    }
    gemm_blocked::<T, false>(a, b, c, accumulate, workspace);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gemm_avx2_fma<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
    workspace: &mut GemmWorkspace<T>,
) {
    gemm_blocked::<T, true>(a, b, c, accumulate, workspace);
}

#[inline(always)]
fn gemm_blocked<T: Float, const FMA: bool>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
    workspace: &mut GemmWorkspace<T>,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let n_panels = n.div_ceil(NR);
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        pack_b(b, pc, kc, n_panels, &mut workspace.packed_b);
        // The first slice of k overwrites C unless accumulating; later ones add.
        let add = accumulate || pc > 0;
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            let m_panels = mc.div_ceil(MR);
            pack_a(a, ic, mc, pc, kc, &mut workspace.packed_a);
            for jp in 0..n_panels {
                let b_panel = &workspace.packed_b[jp * kc * NR..(jp + 1) * kc * NR];
                for ip in 0..m_panels {
                    let a_panel = &workspace.packed_a[ip * kc * MR..(ip + 1) * kc * MR];
                    let mut acc = [[T::zero(); NR]; MR];
                    micro_kernel::<T, FMA>(kc, a_panel, b_panel, &mut acc);
                    let (row0, col0) = (ic + ip * MR, jp * NR);
                    let rows = MR.min(m - row0);
                    let cols = NR.min(n - col0);
                    for (i, acc_row) in acc.iter().enumerate().take(rows) {
                        let out = &mut c[(row0 + i) * n + col0..(row0 + i) * n + col0 + cols];
                        // Element loops, not copy_from_slice: a memcpy call per 16 values
                        // costs more than the copy.
                        if add {
                            for (o, &v) in out.iter_mut().zip(acc_row) {
                                *o += v;
                            }
                        } else {
                            for (o, &v) in out.iter_mut().zip(acc_row) {
                                *o = v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `acc += A_panel · B_panel`: `kc` rank-1 updates of the MR×NR block.
#[inline(always)]
fn micro_kernel<T: Float, const FMA: bool>(kc: usize, a: &[T], b: &[T], acc: &mut [[T; NR]; MR]) {
    for (a_col, b_row) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        let a_col: &[T; MR] = a_col
            .try_into()
            .unwrap_or_else(|_| unreachable!("chunks of MR"));
        let b_row: &[T; NR] = b_row
            .try_into()
            .unwrap_or_else(|_| unreachable!("chunks of NR"));
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = if FMA {
                    a_col[i].mul_add(b_row[j], acc[i][j])
                } else {
                    acc[i][j] + a_col[i] * b_row[j]
                };
            }
        }
    }
}

/// Packs `B[pc..pc+kc, ..]` into NR-wide column panels, each `kc × NR` row-major,
/// zero-padded past the last column. Contiguous rows or columns are copied as slices.
fn pack_b<T: Float>(b: MatRef<'_, T>, pc: usize, kc: usize, n_panels: usize, packed: &mut Vec<T>) {
    let size = n_panels * kc * NR;
    if packed.len() < size {
        packed.resize(size, T::zero());
    }
    for jp in 0..n_panels {
        let panel = &mut packed[jp * kc * NR..(jp + 1) * kc * NR];
        let col0 = jp * NR;
        let cols = NR.min(b.cols - col0);
        if cols < NR {
            panel.fill(T::zero());
        }
        if b.col_stride == 1 {
            // Row-major B: each packed row is a slice of a row of B.
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                let start = (pc + p) * b.row_stride + col0;
                for (slot, &v) in row.iter_mut().zip(&b.data[start..start + cols]) {
                    *slot = v;
                }
            }
        } else if b.row_stride == 1 {
            // Column-major B (a transposed row-major matrix, such as Wᵀ): read columns.
            for j in 0..cols {
                let start = (col0 + j) * b.col_stride + pc;
                for (p, &v) in b.data[start..start + kc].iter().enumerate() {
                    panel[p * NR + j] = v;
                }
            }
        } else {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, slot) in row.iter_mut().enumerate().take(cols) {
                    *slot = b.at(pc + p, col0 + j);
                }
            }
        }
    }
}

/// Packs `A[ic..ic+mc, pc..pc+kc]` into MR-tall row panels, each stored column by
/// column (`kc × MR`), zero-padded past the last row. Contiguous rows or columns are
/// read as slices.
fn pack_a<T: Float>(
    a: MatRef<'_, T>,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    packed: &mut Vec<T>,
) {
    let m_panels = mc.div_ceil(MR);
    let size = m_panels * kc * MR;
    if packed.len() < size {
        packed.resize(size, T::zero());
    }
    for ip in 0..m_panels {
        let panel = &mut packed[ip * kc * MR..(ip + 1) * kc * MR];
        let row0 = ic + ip * MR;
        let rows = MR.min(ic + mc - row0);
        if rows < MR {
            panel.fill(T::zero());
        }
        if a.row_stride == 1 {
            // Column-major A (such as dYᵀ): each packed column is a slice of a column.
            for (p, column) in panel.chunks_exact_mut(MR).enumerate() {
                let start = (pc + p) * a.col_stride + row0;
                for (slot, &v) in column.iter_mut().zip(&a.data[start..start + rows]) {
                    *slot = v;
                }
            }
        } else if a.col_stride == 1 {
            // Row-major A: read each row once.
            for i in 0..rows {
                let start = (row0 + i) * a.row_stride + pc;
                for (p, &v) in a.data[start..start + kc].iter().enumerate() {
                    panel[p * MR + i] = v;
                }
            }
        } else {
            for (p, column) in panel.chunks_exact_mut(MR).enumerate() {
                for (i, slot) in column.iter_mut().enumerate().take(rows) {
                    *slot = a.at(row0 + i, pc + p);
                }
            }
        }
    }
}

/// The reference: `C (=|+=) A·B` by the definition, for tests.
pub fn gemm_naive<T: Float>(a: MatRef<'_, T>, b: MatRef<'_, T>, c: &mut [T], accumulate: bool) {
    for i in 0..a.rows {
        for j in 0..b.cols {
            let mut sum = T::zero();
            for p in 0..a.cols {
                sum += a.at(i, p) * b.at(p, j);
            }
            let slot = &mut c[i * b.cols + j];
            *slot = if accumulate { *slot + sum } else { sum };
        }
    }
}
