//! Operations on short rows, for layers too small to pack for the GEMM: a tiny network's
//! rows are 10 or 30 numbers long, so what costs is not the arithmetic but the loop
//! around it (a vector loop, then a scalar tail, then a horizontal sum, per row).
//!
//! [`Rows`] is the handful of operations the small-layer kernels of `linear.rs` and the
//! optimizers need. [`Portable`] is plain Rust that LLVM vectorises for the baseline
//! instruction set; [`Avx512`] is `f32` on 512-bit registers whose last, partial chunk
//! is a masked load and store, so a row of 30 is two vector operations with no scalar
//! tail; [`Avx2`] the same on 256-bit registers (`vmaskmovps` for the partial chunk).
//! Kernels are written once, generic over `Rows`, and entered through a
//! `#[target_feature]` function per path (see [`with_rows`]), so the operations inline
//! into the loop that calls them. The path is the GEMM's [`KernelPath`] (a workspace's,
//! or the CPU's default), so `NNSCRATCH_GEMM` and `set_kernel_path` choose it too, and
//! the tests below run every operation on every path the CPU has.
//!
//! `axpy`, `scale_add` and `outer` round exactly as the portable loops (a multiply and an
//! add, never fused), so every path gives the same bits for them; the sums (`dot`,
//! `matvec`, `combine`, `product`) fuse and run in another order on each path, as the
//! GEMM's paths do.

use super::KernelPath;
use crate::Float;

/// The row operations a small kernel uses.
///
/// # Safety
/// An implementation's methods may use instructions beyond the baseline; callers promise,
/// by calling them, that the CPU has them (they are only reached through [`with_rows`],
/// which checks).
pub(crate) unsafe trait Rows<T: Float>: Copy {
    /// `Σ a_i b_i` over the common length.
    ///
    /// # Safety
    /// The CPU supports the implementation's instructions.
    unsafe fn dot(self, a: &[T], b: &[T]) -> T;

    /// `y = W·x + b` for a row-major `W` of `y.len()` rows and `x.len()` columns (`b`
    /// empty for none): a dot per output.
    ///
    /// # Safety
    /// As [`Rows::dot`]. Panics if `w` or a nonempty `b` is too short.
    unsafe fn matvec(self, w: &[T], x: &[T], b: &[T], y: &mut [T]);

    /// `out (=|+=) Σ_r c_r · m_r` (`+=` when `add`): a combination of the rows `m_r` of
    /// the row-major `m`, as long as `out`, with `c_r = coefficients[r · stride]`, or 1
    /// for every row when `coefficients` is empty. The sum stays in registers across the
    /// rows and `out` is written once: adding row after row into `out` would read each
    /// partial store back, which a masked store cannot forward.
    ///
    /// # Safety
    /// As [`Rows::dot`].
    unsafe fn combine(self, coefficients: &[T], stride: usize, m: &[T], out: &mut [T], add: bool);

    /// `C (=|+=) A·B` for a small product (`+=` when `add`), nothing packed: `B` is
    /// `k×n` and `C` `m×n`, both row-major with `n` columns, and `A[i, p]` is
    /// `a[i·strides.0 + p·strides.1]` (so `A` may be a transposed view). Tiles of rows
    /// of `C` are summed in registers, each row of `B` read once per tile.
    ///
    /// # Safety
    /// As [`Rows::dot`]. Panics if `a` is too short for `A` (checked once).
    unsafe fn product(
        self,
        a: &[T],
        strides: (usize, usize),
        b: &[T],
        c: &mut [T],
        n: usize,
        add: bool,
    );

    /// `dst = srcᵀ` for a row-major `src` of `rows×cols` (`dst` is `cols×rows`).
    ///
    /// # Safety
    /// As [`Rows::dot`]. Panics unless both hold `rows·cols` values.
    unsafe fn transpose(self, src: &[T], rows: usize, cols: usize, dst: &mut [T]);

    /// `out_o (=|+=) g_o · x` for the rows `out_o` of the row-major `out` (`+=` when
    /// `add`), each as long as `x`: an outer product `g ⊗ x`.
    ///
    /// # Safety
    /// As [`Rows::dot`].
    unsafe fn outer(self, g: &[T], x: &[T], out: &mut [T], add: bool);

    /// `y = b + alpha · x`.
    ///
    /// # Safety
    /// As [`Rows::dot`].
    unsafe fn scale_add(self, alpha: T, x: &[T], b: &[T], y: &mut [T]);

    /// `y += alpha · x` (a multiply and an add, each rounded).
    ///
    /// # Safety
    /// As [`Rows::dot`].
    unsafe fn axpy(self, alpha: T, x: &[T], y: &mut [T]);

    /// Whether every value is finite.
    ///
    /// # Safety
    /// As [`Rows::dot`].
    unsafe fn all_finite(self, values: &[T]) -> bool;
}

/// Plain Rust for any [`Float`], vectorised by LLVM for the instruction set the crate is
/// built for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable;

// SAFETY: baseline instructions only.
unsafe impl<T: Float> Rows<T> for Portable {
    /// Independent partial sums so the loop vectorises without reassociating one running
    /// sum; the tail goes into the same lanes and the lanes are added as a tree (three
    /// dependent adds, not a chain through every lane and tail element).
    #[inline(always)]
    unsafe fn dot(self, a: &[T], b: &[T]) -> T {
        const LANES: usize = 8;
        let mut partial = [T::zero(); LANES];
        let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
        for (x, y) in a_chunks.zip(b_chunks) {
            for lane in 0..LANES {
                partial[lane] += x[lane] * y[lane];
            }
        }
        for ((p, x), y) in partial.iter_mut().zip(a_rest).zip(b_rest) {
            *p += *x * *y;
        }
        let [p0, p1, p2, p3, p4, p5, p6, p7] = partial;
        ((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))
    }

    #[inline(always)]
    unsafe fn matvec(self, w: &[T], x: &[T], b: &[T], y: &mut [T]) {
        let inputs = x.len();
        let w = &w[..inputs * y.len()];
        for (o, y) in y.iter_mut().enumerate() {
            // SAFETY: baseline instructions.
            let dot = unsafe { self.dot(x, &w[o * inputs..(o + 1) * inputs]) };
            *y = if b.is_empty() { dot } else { b[o] + dot };
        }
    }

    #[inline(always)]
    unsafe fn combine(self, coefficients: &[T], stride: usize, m: &[T], out: &mut [T], add: bool) {
        let cols = out.len();
        if cols == 0 {
            return;
        }
        let coefficient = |r: usize| match coefficients.is_empty() {
            true => T::one(),
            false => coefficients[r * stride],
        };
        let mut rows = m.chunks_exact(cols).enumerate();
        if !add {
            // The first row sets, the others add: no pass to clear `out` first.
            match rows.next() {
                Some((r, row)) => {
                    let c = coefficient(r);
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = c * v;
                    }
                }
                None => out.fill(T::zero()),
            }
        }
        for (r, row) in rows {
            let c = coefficient(r);
            for (o, &v) in out.iter_mut().zip(row) {
                *o += c * v;
            }
        }
    }

    #[inline(always)]
    unsafe fn product(
        self,
        a: &[T],
        (rs, cs): (usize, usize),
        b: &[T],
        c: &mut [T],
        n: usize,
        add: bool,
    ) {
        let Some((_, k)) = product_size(a, (rs, cs), b, c, n, add) else {
            return;
        };
        for (i, c_row) in c.chunks_exact_mut(n).enumerate() {
            // SAFETY: baseline instructions; row i of A is `a[i·rs..]` every `cs`.
            unsafe { self.combine(&a[i * rs..], cs, &b[..k * n], c_row, add) };
        }
    }

    #[inline(always)]
    unsafe fn transpose(self, src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
        let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
        for (r, src_row) in src.chunks_exact(cols.max(1)).enumerate() {
            for (c, &v) in src_row.iter().enumerate() {
                dst[c * rows + r] = v;
            }
        }
    }

    #[inline(always)]
    unsafe fn outer(self, g: &[T], x: &[T], out: &mut [T], add: bool) {
        if x.is_empty() {
            return;
        }
        for (&g, row) in g.iter().zip(out.chunks_exact_mut(x.len())) {
            for (o, &x) in row.iter_mut().zip(x) {
                *o = if add { *o + g * x } else { g * x };
            }
        }
    }

    #[inline(always)]
    unsafe fn scale_add(self, alpha: T, x: &[T], b: &[T], y: &mut [T]) {
        for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
            *y = b + alpha * x;
        }
    }

    #[inline(always)]
    unsafe fn axpy(self, alpha: T, x: &[T], y: &mut [T]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += alpha * x;
        }
    }

    /// `g - g` is 0 for a finite `g` and NaN for an infinite or NaN one, and a sum with a
    /// NaN is NaN, so each running sum stays 0 exactly when its values are finite (a sub
    /// and an add per value, branch-free; 32 sums so that the adds are not one chain).
    #[inline(always)]
    #[allow(clippy::eq_op)] // `g - g` is the test itself
    unsafe fn all_finite(self, values: &[T]) -> bool {
        const LANES: usize = 32;
        let mut sums = [T::zero(); LANES];
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (sum, &g) in sums.iter_mut().zip(chunk) {
                *sum += g - g;
            }
        }
        for (sum, &g) in sums.iter_mut().zip(rest) {
            *sum += g - g;
        }
        sums.iter().all(|&sum| sum == T::zero())
    }
}

/// `(m, k)` of a [`Rows::product`], after checking that `a` holds `A` (panics if not);
/// `None`, with `C` cleared unless adding, when there is nothing to multiply.
#[inline(always)]
fn product_size<T: Float>(
    a: &[T],
    (rs, cs): (usize, usize),
    b: &[T],
    c: &mut [T],
    n: usize,
    add: bool,
) -> Option<(usize, usize)> {
    if n == 0 {
        return None;
    }
    let (m, k) = (c.len() / n, b.len() / n);
    if m == 0 || k == 0 {
        if !add {
            c.fill(T::zero());
        }
        return None;
    }
    assert!(
        (m - 1) * rs + (k - 1) * cs < a.len(),
        "A of {m}×{k} with strides ({rs}, {cs}) in {} values",
        a.len()
    );
    Some((m, k))
}

/// `f32` on AVX-512F: 16 lanes, the last partial chunk of a row masked.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512;

/// `f32` on AVX2 with FMA: 8 lanes, the last partial chunk of a row read and written
/// through a lane mask (`vmaskmovps`).
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2;

/// The row operations written once over a register width ([`simd::Lanes`]), and the
/// few that each width does its own way (a dot per row of `W` summed across lanes, the
/// transpose).
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::Rows;

    /// One x86 register width, as the row operations use it: loads and stores of the
    /// lanes under a mask of the first `n` (the others zero, and never read or written),
    /// and the arithmetic.
    ///
    /// # Safety
    /// The methods need the width's instructions; implementations say which.
    pub(super) unsafe trait Lanes: Copy {
        /// A register of `f32`.
        type V: Copy;
        /// The lanes a load or store touches.
        type M: Copy;
        /// Lanes per register.
        const W: usize;
        /// # Safety
        /// The CPU has the width's instructions (all methods).
        unsafe fn zero() -> Self::V;
        unsafe fn splat(v: f32) -> Self::V;
        /// The first `min(n, W)` lanes (computed once per chunk of columns, outside the
        /// loops that load and store under it).
        unsafe fn mask(n: usize) -> Self::M;
        /// `x[start..]` under `mask`; the caller promises those lanes lie within `x`.
        unsafe fn load(x: &[f32], start: usize, mask: Self::M) -> Self::V;
        /// Stores the lanes under `mask` at `y[start..]`; as [`Lanes::load`].
        unsafe fn store(y: &mut [f32], start: usize, mask: Self::M, v: Self::V);
        /// `a·b + c`, rounded once.
        unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
        unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
        /// The sum of the lanes.
        unsafe fn sum(v: Self::V) -> f32;
        /// Whether no lane is NaN.
        unsafe fn ordered(v: Self::V) -> bool;
    }

    /// `Σ a_i b_i` in two sums, the last chunk partial.
    #[inline(always)]
    pub(super) unsafe fn dot<L: Lanes>(a: &[f32], b: &[f32]) -> f32 {
        let (w, n) = (L::W, a.len().min(b.len()));
        // SAFETY (all): the caller has the instructions; every chunk lies within 0..n,
        // the length of both.
        unsafe {
            let (mut even, mut odd) = (L::zero(), L::zero());
            let full = L::mask(w);
            let mut i = 0;
            while i + 2 * w <= n {
                even = L::fma(L::load(a, i, full), L::load(b, i, full), even);
                odd = L::fma(L::load(a, i + w, full), L::load(b, i + w, full), odd);
                i += 2 * w;
            }
            if i < n {
                let m = L::mask(n - i);
                even = L::fma(L::load(a, i, m), L::load(b, i, m), even);
                i += w;
            }
            if i < n {
                let m = L::mask(n - i);
                odd = L::fma(L::load(a, i, m), L::load(b, i, m), odd);
            }
            L::sum(L::add(even, odd))
        }
    }

    /// [`Rows::combine`]: two chunks of columns at a time, rows alternating between two
    /// sets of sums (four independent chains of fused multiply-adds).
    #[inline(always)]
    pub(super) unsafe fn combine<L: Lanes>(
        coefficients: &[f32],
        stride: usize,
        m: &[f32],
        out: &mut [f32],
        add: bool,
    ) {
        let (w, cols) = (L::W, out.len());
        if cols == 0 {
            return;
        }
        let rows = m.len() / cols;
        let coefficient = |r: usize| match coefficients.is_empty() {
            true => 1.0,
            false => coefficients[r * stride],
        };
        let mut j = 0;
        while j < cols {
            let nb = cols.saturating_sub(j + w);
            // SAFETY (all): the caller has the instructions; row r's lanes j.. cut to
            // `cols` lie within `m` (r < rows), and lanes j.. of `out` within it.
            unsafe {
                let (ma, mb) = (L::mask(cols - j), L::mask(nb));
                let (mut a0, mut b0, mut a1, mut b1) = (L::zero(), L::zero(), L::zero(), L::zero());
                let mut r = 0;
                while r + 2 <= rows {
                    let (c0, c1) = (L::splat(coefficient(r)), L::splat(coefficient(r + 1)));
                    let (at0, at1) = (r * cols + j, (r + 1) * cols + j);
                    a0 = L::fma(c0, L::load(m, at0, ma), a0);
                    a1 = L::fma(c1, L::load(m, at1, ma), a1);
                    if nb > 0 {
                        b0 = L::fma(c0, L::load(m, at0 + w, mb), b0);
                        b1 = L::fma(c1, L::load(m, at1 + w, mb), b1);
                    }
                    r += 2;
                }
                if r < rows {
                    let c = L::splat(coefficient(r));
                    a0 = L::fma(c, L::load(m, r * cols + j, ma), a0);
                    if nb > 0 {
                        b0 = L::fma(c, L::load(m, r * cols + j + w, mb), b0);
                    }
                }
                let (mut a, mut b) = (L::add(a0, a1), L::add(b0, b1));
                if add {
                    a = L::add(a, L::load(out, j, ma));
                    if nb > 0 {
                        b = L::add(b, L::load(out, j + w, mb));
                    }
                }
                L::store(out, j, ma, a);
                if nb > 0 {
                    L::store(out, j + w, mb, b);
                }
            }
            j += 2 * w;
        }
    }

    /// [`Rows::product`]: tiles of 4 rows (then single rows) by two chunks of columns.
    #[inline(always)]
    pub(super) unsafe fn product<L: Lanes>(
        a: &[f32],
        strides: (usize, usize),
        b: &[f32],
        c: &mut [f32],
        n: usize,
        add: bool,
    ) {
        let Some((m, k)) = super::product_size(a, strides, b, c, n, add) else {
            return;
        };
        let mut j = 0;
        while j < n {
            let mut i = 0;
            // SAFETY (all): product_size checked that `a` holds A; the tiles stay
            // within m rows, k depth and n columns.
            while i + 4 <= m {
                unsafe { product_tile::<L, 4>(a, strides, b, c, (n, k), (i, j), add) };
                i += 4;
            }
            while i < m {
                unsafe { product_tile::<L, 1>(a, strides, b, c, (n, k), (i, j), add) };
                i += 1;
            }
            j += 2 * L::W;
        }
    }

    /// Rows `i..i + R`, columns `j..j + 2W` (cut to `n`) of `C (=|+=) A·B`, the sums in
    /// `2·R` registers; each step of `p` loads one row of `B` (two chunks) and broadcasts
    /// `R` values of `A`.
    ///
    /// # Safety
    /// The width's instructions; `a` holds `A[i.., p]` for the tile's rows and every
    /// `p < k` (at `a[row·strides.0 + p·strides.1]`), `b` is `k×n` and `c` at least
    /// `(i + R)×n`.
    #[inline(always)]
    unsafe fn product_tile<L: Lanes, const R: usize>(
        a: &[f32],
        (rs, cs): (usize, usize),
        b: &[f32],
        c: &mut [f32],
        (n, k): (usize, usize),
        (i, j): (usize, usize),
        add: bool,
    ) {
        let w = L::W;
        let nb = n.saturating_sub(j + w);
        // SAFETY (all): the function's contract.
        unsafe {
            let (ma, mb) = (L::mask(n - j), L::mask(nb));
            let mut sums = [[L::zero(); 2]; R];
            for p in 0..k {
                let b0 = L::load(b, p * n + j, ma);
                let b1 = if nb > 0 {
                    L::load(b, p * n + j + w, mb)
                } else {
                    b0
                };
                for (r, sum) in sums.iter_mut().enumerate() {
                    let value = L::splat(*a.get_unchecked((i + r) * rs + p * cs));
                    sum[0] = L::fma(value, b0, sum[0]);
                    if nb > 0 {
                        sum[1] = L::fma(value, b1, sum[1]);
                    }
                }
            }
            for (r, [s0, s1]) in sums.into_iter().enumerate() {
                let at = (i + r) * n + j;
                let (mut s0, mut s1) = (s0, s1);
                if add {
                    s0 = L::add(s0, L::load(c, at, ma));
                    if nb > 0 {
                        s1 = L::add(s1, L::load(c, at + w, mb));
                    }
                }
                L::store(c, at, ma, s0);
                if nb > 0 {
                    L::store(c, at + w, mb, s1);
                }
            }
        }
    }

    /// [`Rows::outer`]: a chunk of `x` loaded once for every row of `out`.
    #[inline(always)]
    pub(super) unsafe fn outer<L: Lanes>(g: &[f32], x: &[f32], out: &mut [f32], add: bool) {
        let cols = x.len();
        if cols == 0 {
            return;
        }
        for j in (0..cols).step_by(L::W) {
            // SAFETY (all): the caller has the instructions; lanes j.. cut to `cols` lie
            // within `x` and within each row of `out`, rows visited while within it.
            unsafe {
                let m = L::mask(cols - j);
                let x = L::load(x, j, m);
                for (o, &g) in g.iter().enumerate().take(out.len() / cols) {
                    let mut v = L::mul(L::splat(g), x);
                    if add {
                        v = L::add(L::load(out, o * cols + j, m), v);
                    }
                    L::store(out, o * cols + j, m, v);
                }
            }
        }
    }

    /// `y = b + alpha·x` (`b` = `y` for an axpy), whole chunks in a loop of their own,
    /// then the partial one; a multiply and an add, each rounded, as the portable loop.
    #[inline(always)]
    pub(super) unsafe fn scale_add<L: Lanes>(
        alpha: f32,
        x: &[f32],
        b: Option<&[f32]>,
        y: &mut [f32],
    ) {
        let n = x.len().min(y.len()).min(b.map_or(usize::MAX, <[f32]>::len));
        let w = L::W;
        // SAFETY (all): the caller has the instructions; lanes i.. cut to n lie within
        // all three.
        unsafe {
            let alpha = L::splat(alpha);
            let step = |i: usize, m: L::M, y: &mut [f32]| {
                let base = match b {
                    Some(b) => L::load(b, i, m),
                    None => L::load(y, i, m),
                };
                L::store(y, i, m, L::add(base, L::mul(alpha, L::load(x, i, m))));
            };
            let (whole, full) = (n - n % w, L::mask(w));
            for i in (0..whole).step_by(w) {
                step(i, full, y);
            }
            if whole < n {
                step(whole, L::mask(n - whole), y);
            }
        }
    }

    /// [`Rows::all_finite`]: `g·0` is NaN exactly for a non-finite `g`, added to one of
    /// four running sums by a fused multiply-add (one operation per chunk).
    #[inline(always)]
    pub(super) unsafe fn all_finite<L: Lanes>(values: &[f32]) -> bool {
        let (w, n) = (L::W, values.len());
        // SAFETY (all): the caller has the instructions; every chunk lies within the
        // slice.
        unsafe {
            let zero = L::zero();
            let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
            let (whole, full) = (n - n % (4 * w), L::mask(w));
            for i in (0..whole).step_by(4 * w) {
                s0 = L::fma(L::load(values, i, full), zero, s0);
                s1 = L::fma(L::load(values, i + w, full), zero, s1);
                s2 = L::fma(L::load(values, i + 2 * w, full), zero, s2);
                s3 = L::fma(L::load(values, i + 3 * w, full), zero, s3);
            }
            for i in (whole..n).step_by(w) {
                s0 = L::fma(L::load(values, i, L::mask(n - i)), zero, s0);
            }
            L::ordered(L::add(L::add(s0, s1), L::add(s2, s3)))
        }
    }

    /// `impl Rows<f32>` for a width: the shared operations above, and `matvec` and
    /// `transpose` from the width's own module.
    macro_rules! rows_for {
        ($width:ty, $features:literal, $own:ident) => {
            // SAFETY: every method needs the width's instructions, which callers check
            // (`with_rows`), and runs with them enabled.
            unsafe impl Rows<f32> for $width {
                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn dot(self, a: &[f32], b: &[f32]) -> f32 {
                    // SAFETY: (each) the instructions are enabled here.
                    unsafe { dot::<$width>(a, b) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn matvec(self, w: &[f32], x: &[f32], b: &[f32], y: &mut [f32]) {
                    unsafe { $own::matvec(w, x, b, y) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn combine(
                    self,
                    coefficients: &[f32],
                    stride: usize,
                    m: &[f32],
                    out: &mut [f32],
                    add: bool,
                ) {
                    unsafe { combine::<$width>(coefficients, stride, m, out, add) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn product(
                    self,
                    a: &[f32],
                    strides: (usize, usize),
                    b: &[f32],
                    c: &mut [f32],
                    n: usize,
                    add: bool,
                ) {
                    unsafe { product::<$width>(a, strides, b, c, n, add) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn transpose(self, src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
                    unsafe { $own::transpose(src, rows, cols, dst) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn outer(self, g: &[f32], x: &[f32], out: &mut [f32], add: bool) {
                    unsafe { outer::<$width>(g, x, out, add) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn scale_add(self, alpha: f32, x: &[f32], b: &[f32], y: &mut [f32]) {
                    unsafe { scale_add::<$width>(alpha, x, Some(b), y) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn axpy(self, alpha: f32, x: &[f32], y: &mut [f32]) {
                    unsafe { scale_add::<$width>(alpha, x, None, y) }
                }

                #[inline]
                #[target_feature(enable = $features)]
                unsafe fn all_finite(self, values: &[f32]) -> bool {
                    unsafe { all_finite::<$width>(values) }
                }
            }
        };
    }

    rows_for!(super::Avx512, "avx512f", avx512);
    rows_for!(super::Avx2, "avx2,fma", avx2);

    /// AVX-512: lane masks, and the sixteen-register folds of `matvec` and `transpose`.
    mod avx512 {
        use std::arch::x86_64::{
            __m512, __m512i, __mmask16, _CMP_ORD_Q, _mm512_add_ps, _mm512_cmp_ps_mask,
            _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_storeu_ps,
            _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_permutex2var_ps, _mm512_reduce_add_ps,
            _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
        };

        use super::super::Avx512;
        use super::Lanes;

        /// Lanes per register.
        const W: usize = 16;

        /// The mask of the first `min(n, 16)` lanes.
        #[inline(always)]
        fn lanes(n: usize) -> __mmask16 {
            if n >= W {
                !0
            } else {
                ((1u32 << n) - 1) as __mmask16
            }
        }

        /// The 16 values from `x[start]` under `mask` (zero elsewhere; masked-off lanes are
        /// never read).
        ///
        /// # Safety
        /// AVX-512F; the lanes under `mask` lie within `x`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(x: &[f32], start: usize, mask: __mmask16) -> __m512 {
            // SAFETY: the caller's contract.
            unsafe {
                if mask == !0 {
                    _mm512_loadu_ps(x.as_ptr().add(start))
                } else {
                    _mm512_maskz_loadu_ps(mask, x.as_ptr().add(start))
                }
            }
        }

        /// Stores the lanes of `v` under `mask` at `y[start..]`.
        ///
        /// # Safety
        /// As [`load`].
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(y: &mut [f32], start: usize, mask: __mmask16, v: __m512) {
            // SAFETY: the caller's contract.
            unsafe {
                if mask == !0 {
                    _mm512_storeu_ps(y.as_mut_ptr().add(start), v)
                } else {
                    _mm512_mask_storeu_ps(y.as_mut_ptr().add(start), mask, v)
                }
            }
        }

        // SAFETY: every method needs AVX-512F and enables it.
        unsafe impl Lanes for Avx512 {
            type V = __m512;
            type M = __mmask16;
            const W: usize = W;
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn zero() -> __m512 {
                _mm512_setzero_ps()
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn splat(v: f32) -> __m512 {
                _mm512_set1_ps(v)
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn mask(n: usize) -> __mmask16 {
                lanes(n)
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn load(x: &[f32], start: usize, mask: __mmask16) -> __m512 {
                // SAFETY: the caller's contract.
                unsafe { load(x, start, mask) }
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn store(y: &mut [f32], start: usize, mask: __mmask16, v: __m512) {
                // SAFETY: the caller's contract.
                unsafe { store(y, start, mask, v) }
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
                _mm512_fmadd_ps(a, b, c)
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn add(a: __m512, b: __m512) -> __m512 {
                _mm512_add_ps(a, b)
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn mul(a: __m512, b: __m512) -> __m512 {
                _mm512_mul_ps(a, b)
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn sum(v: __m512) -> f32 {
                _mm512_reduce_add_ps(v)
            }
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn ordered(v: __m512) -> bool {
                _mm512_cmp_ps_mask::<_CMP_ORD_Q>(v, v) == !0
            }
        }

        /// The two permutes of a pair of registers `(a, b)` for step `d` (8, 4, 2 or 1):
        /// `upper` takes `a`'s lanes `c & d == 0` and `b`'s lanes `c - d` into the others,
        /// `lower` `a`'s lanes `c + d` and `b`'s own lanes `c & d != 0` (an index of 16 and up
        /// picks from `b`).
        const fn pair_indices(d: usize) -> ([i32; W], [i32; W]) {
            let (mut upper, mut lower) = ([0; W], [0; W]);
            let mut c = 0;
            while c < W {
                (upper[c], lower[c]) = if c & d == 0 {
                    (c as i32, (c + d) as i32)
                } else {
                    ((W + c - d) as i32, (W + c) as i32)
                };
                c += 1;
            }
            (upper, lower)
        }

        /// [`pair_indices`] as registers.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn pair_permutes<const D: usize>() -> (__m512i, __m512i) {
            const { assert!(D == 1 || D == 2 || D == 4 || D == 8) };
            let (upper, lower) = const { pair_indices(D) };
            // SAFETY: 16 i32 each, read unaligned.
            unsafe {
                (
                    _mm512_loadu_si512(upper.as_ptr().cast()),
                    _mm512_loadu_si512(lower.as_ptr().cast()),
                )
            }
        }

        /// Folds the pairs `(i, i + D)`, `i < D`, of `sums` into `sums[i]`, whose lanes
        /// `c & D == 0` then carry `i`'s partial sums and the others `i + D`'s.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn fold_pairs<const D: usize>(sums: &mut [__m512; W]) {
            let (upper, lower) = pair_permutes::<D>();
            let mut i = 0;
            while i < D {
                let (a, b) = (sums[i], sums[i + D]);
                sums[i] = _mm512_add_ps(
                    _mm512_permutex2var_ps(a, upper, b),
                    _mm512_permutex2var_ps(a, lower, b),
                );
                i += 1;
            }
        }

        /// Swaps the off-diagonal `D×D` blocks of every `2D×2D` block of a 16×16 block of
        /// registers (one row each); doing so for D = 8, 4, 2, 1 transposes it.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn swap_blocks<const D: usize>(block: &mut [__m512; W]) {
            let (upper, lower) = pair_permutes::<D>();
            let mut i = 0;
            while i < W {
                if i & D == 0 {
                    let (a, b) = (block[i], block[i + D]);
                    block[i] = _mm512_permutex2var_ps(a, upper, b);
                    block[i + D] = _mm512_permutex2var_ps(a, lower, b);
                }
                i += 1;
            }
        }

        /// The partial sums of `count` dots (16 when `FULL`) of `x` with the rows from
        /// `rows`, `inputs` apart: register `o` holds row `o`'s, by lanes.
        ///
        /// # Safety
        /// AVX-512F; `rows` points to `count` rows of `x.len() == inputs` readable floats.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn block_sums<const FULL: bool>(
            rows: *const f32,
            inputs: usize,
            x: &[f32],
            count: usize,
        ) -> [__m512; W] {
            let mut sums = [_mm512_setzero_ps(); W];
            for j in (0..inputs).step_by(W) {
                let mask = lanes(inputs - j);
                // SAFETY: columns j.. under the mask lie within `x` and within each row.
                unsafe {
                    let x = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(j));
                    for (o, sum) in sums.iter_mut().enumerate() {
                        if FULL || o < count {
                            let row = _mm512_maskz_loadu_ps(mask, rows.add(o * inputs + j));
                            *sum = _mm512_fmadd_ps(row, x, *sum);
                        }
                    }
                }
            }
            sums
        }

        /// Lane `o` of the result is the sum of the lanes of `sums[o]` (pairs folded for
        /// D = 8, 4, 2, 1: after the last, lane `c` carries register `c`'s sum).
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn add_across(mut sums: [__m512; W]) -> __m512 {
            fold_pairs::<8>(&mut sums);
            fold_pairs::<4>(&mut sums);
            fold_pairs::<2>(&mut sums);
            fold_pairs::<1>(&mut sums);
            sums[0]
        }

        /// Sixteen outputs at a time: sixteen registers of partial sums (one per row of
        /// `W`), then added across lanes together, pairs of registers folded into one
        /// for d = 8, 4, 2, 1 (the permutes of [`swap_blocks`], then an add), leaving
        /// output o's sum in lane o: 45 operations for sixteen outputs, where a
        /// horizontal sum of each register took 7 per output (so fewer than 8 outputs
        /// take a dot each).
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn matvec(w: &[f32], x: &[f32], b: &[f32], y: &mut [f32]) {
            let (inputs, outputs) = (x.len(), y.len());
            let w = &w[..inputs * outputs];
            if !b.is_empty() {
                assert!(
                    b.len() >= outputs,
                    "{} biases for {outputs} outputs",
                    b.len()
                );
            }
            for o0 in (0..outputs).step_by(W) {
                let count = (outputs - o0).min(W);
                if count < W / 2 {
                    // Too few outputs left to pay for the fold: a dot each.
                    for o in o0..outputs {
                        // SAFETY: this function's contract.
                        let dot =
                            unsafe { super::dot::<Avx512>(x, &w[o * inputs..(o + 1) * inputs]) };
                        y[o] = if b.is_empty() { dot } else { b[o] + dot };
                    }
                    return;
                }
                // SAFETY: rows o0..o0 + count of `w` hold `inputs` values each.
                let sums = unsafe {
                    let rows = w.as_ptr().add(o0 * inputs);
                    match count {
                        W => block_sums::<true>(rows, inputs, x, count),
                        _ => block_sums::<false>(rows, inputs, x, count),
                    }
                };
                let mut total = add_across(sums);
                // SAFETY: lanes o0.. under the mask lie within `b` (checked) and `y`.
                unsafe {
                    if !b.is_empty() {
                        total = _mm512_add_ps(total, load(b, o0, lanes(count)));
                    }
                    store(y, o0, lanes(count), total);
                }
            }
        }

        /// In blocks of 16×16 held in registers, transposed by swapping the off-diagonal
        /// halves of every 2d×2d block for d = 8, 4, 2, 1 (two two-register permutes per
        /// pair of rows and step): 64 permutes per block where element by element it
        /// was 256 loads and 256 stores.
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
            let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
            for r0 in (0..rows).step_by(W) {
                for c0 in (0..cols).step_by(W) {
                    let (height, width) = ((rows - r0).min(W), (cols - c0).min(W));
                    let mut block = [_mm512_setzero_ps(); W];
                    for (r, row) in block.iter_mut().enumerate() {
                        if r < height {
                            // SAFETY: row r0 + r, columns c0.. under the mask, lie
                            // within `src`.
                            *row = unsafe { load(src, (r0 + r) * cols + c0, lanes(width)) };
                        }
                    }
                    swap_blocks::<8>(&mut block);
                    swap_blocks::<4>(&mut block);
                    swap_blocks::<2>(&mut block);
                    swap_blocks::<1>(&mut block);
                    for (c, column) in block.iter().enumerate() {
                        if c < width {
                            // SAFETY: row c0 + c of dst, columns r0.. under the mask,
                            // lie within it.
                            unsafe { store(dst, (c0 + c) * rows + r0, lanes(height), *column) };
                        }
                    }
                }
            }
        }
    }

    /// AVX2: lane masks from a sliding table, and the eight-register fold of `matvec`.
    mod avx2 {
        use std::arch::x86_64::{
            __m256, __m256i, _CMP_ORD_Q, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehdup_ps,
            _mm_movehl_ps, _mm256_add_ps, _mm256_castps256_ps128, _mm256_cmp_ps,
            _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_hadd_ps, _mm256_loadu_ps,
            _mm256_loadu_si256, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_movemask_ps,
            _mm256_mul_ps, _mm256_permute2f128_ps, _mm256_set1_ps, _mm256_setzero_ps,
            _mm256_storeu_ps,
        };

        use super::super::{Avx2, Portable, Rows};
        use super::Lanes;

        /// Lanes per register.
        const W: usize = 8;

        /// Eight lanes on, then eight off: the mask of the first `n` lanes starts at `8 - n`.
        static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

        /// The mask of the first `min(n, 8)` lanes.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn lanes(n: usize) -> __m256i {
            let off = W - n.min(W);
            // SAFETY: off <= 8, so eight i32 from MASKS[off] lie within it.
            unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(off).cast()) }
        }

        /// The `n` (at most 8) values from `x[start]`, zero in the other lanes.
        ///
        /// # Safety
        /// AVX2; `x[start..start + min(n, 8)]` lies within `x` (masked-off lanes are never
        /// read).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(x: &[f32], start: usize, n: usize) -> __m256 {
            // SAFETY: the caller's contract.
            unsafe {
                if n >= W {
                    _mm256_loadu_ps(x.as_ptr().add(start))
                } else {
                    _mm256_maskload_ps(x.as_ptr().add(start), lanes(n))
                }
            }
        }

        /// Stores the first `min(n, 8)` lanes of `v` at `y[start..]`.
        ///
        /// # Safety
        /// As [`load`].
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(y: &mut [f32], start: usize, n: usize, v: __m256) {
            // SAFETY: the caller's contract.
            unsafe {
                if n >= W {
                    _mm256_storeu_ps(y.as_mut_ptr().add(start), v)
                } else {
                    _mm256_maskstore_ps(y.as_mut_ptr().add(start), lanes(n), v)
                }
            }
        }

        /// The sum of the lanes.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn sum(v: __m256) -> f32 {
            let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
        }

        // SAFETY: every method needs AVX2 and FMA and enables them.
        unsafe impl Lanes for Avx2 {
            type V = __m256;
            /// The lane count, and its mask when partial.
            type M = (usize, __m256i);
            const W: usize = W;
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn zero() -> __m256 {
                _mm256_setzero_ps()
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn splat(v: f32) -> __m256 {
                _mm256_set1_ps(v)
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn mask(n: usize) -> (usize, __m256i) {
                (n, lanes(n))
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn load(x: &[f32], start: usize, (n, mask): (usize, __m256i)) -> __m256 {
                // SAFETY: the caller's contract.
                unsafe {
                    if n >= W {
                        _mm256_loadu_ps(x.as_ptr().add(start))
                    } else {
                        _mm256_maskload_ps(x.as_ptr().add(start), mask)
                    }
                }
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn store(y: &mut [f32], start: usize, (n, mask): (usize, __m256i), v: __m256) {
                // SAFETY: the caller's contract.
                unsafe {
                    if n >= W {
                        _mm256_storeu_ps(y.as_mut_ptr().add(start), v)
                    } else {
                        _mm256_maskstore_ps(y.as_mut_ptr().add(start), mask, v)
                    }
                }
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
                _mm256_fmadd_ps(a, b, c)
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn add(a: __m256, b: __m256) -> __m256 {
                _mm256_add_ps(a, b)
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn mul(a: __m256, b: __m256) -> __m256 {
                _mm256_mul_ps(a, b)
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn sum(v: __m256) -> f32 {
                sum(v)
            }
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn ordered(v: __m256) -> bool {
                _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_ORD_Q>(v, v)) == 0xff
            }
        }

        /// Lane `o` of the result is the sum of the lanes of `sums[o]` (horizontal adds
        /// pairing the registers, then the two halves).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn add_across(s: [__m256; W]) -> __m256 {
            let (t0, t1) = (_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
            let (t2, t3) = (_mm256_hadd_ps(s[4], s[5]), _mm256_hadd_ps(s[6], s[7]));
            let (u0, u1) = (_mm256_hadd_ps(t0, t1), _mm256_hadd_ps(t2, t3));
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(u0, u1),
                _mm256_permute2f128_ps::<0x31>(u0, u1),
            )
        }

        /// Eight outputs at a time: eight registers of partial sums, added across lanes
        /// together ([`add_across`]); fewer than four outputs left take a dot each.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn matvec(w: &[f32], x: &[f32], b: &[f32], y: &mut [f32]) {
            let (inputs, outputs) = (x.len(), y.len());
            let w = &w[..inputs * outputs];
            if !b.is_empty() {
                assert!(
                    b.len() >= outputs,
                    "{} biases for {outputs} outputs",
                    b.len()
                );
            }
            for o0 in (0..outputs).step_by(W) {
                let count = (outputs - o0).min(W);
                if count < W / 2 {
                    for o in o0..outputs {
                        // SAFETY: this function's contract.
                        let dot =
                            unsafe { super::dot::<Avx2>(x, &w[o * inputs..(o + 1) * inputs]) };
                        y[o] = if b.is_empty() { dot } else { b[o] + dot };
                    }
                    return;
                }
                let mut sums = [_mm256_setzero_ps(); W];
                for j in (0..inputs).step_by(W) {
                    // SAFETY: columns j.. cut to `inputs` lie within `x` and each row.
                    unsafe {
                        let x = load(x, j, inputs - j);
                        for (o, sum) in sums.iter_mut().enumerate().take(count) {
                            let row = load(w, (o0 + o) * inputs + j, inputs - j);
                            *sum = _mm256_fmadd_ps(row, x, *sum);
                        }
                    }
                }
                let mut total = add_across(sums);
                // SAFETY: lanes o0.. cut to `count` lie within `b` (checked) and `y`.
                unsafe {
                    if !b.is_empty() {
                        total = _mm256_add_ps(total, load(b, o0, count));
                    }
                    store(y, o0, count, total);
                }
            }
        }

        /// Element by element, as the portable loop (a small share of the tiled
        /// forward's time: W is transposed once per product).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
            // SAFETY: baseline instructions.
            unsafe { Rows::<f32>::transpose(Portable, src, rows, cols, dst) }
        }
    }
}

/// `slice` as `&[f32]` when `T` is `f32`.
#[inline(always)]
pub(crate) fn as_f32<T: Float>(slice: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked), so the cast changes neither layout nor length.
        unsafe { std::slice::from_raw_parts(slice.as_ptr().cast::<f32>(), slice.len()) }
    })
}

/// `slice` as `&mut [f32]` when `T` is `f32`.
#[inline(always)]
pub(crate) fn as_f32_mut<T: Float>(slice: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked); the borrow moves into the result.
        unsafe { std::slice::from_raw_parts_mut(slice.as_mut_ptr().cast::<f32>(), slice.len()) }
    })
}

/// Whether `path` has its own [`Rows`] for `T` and this CPU runs it (AVX-512 and
/// AVX2+FMA, for `f32`); otherwise kernels use [`Portable`].
#[inline(always)]
pub(crate) fn has_rows<T: Float>(path: KernelPath) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
            && match path {
                KernelPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                KernelPath::Avx2Fma => {
                    std::arch::is_x86_feature_detected!("avx2")
                        && std::arch::is_x86_feature_detected!("fma")
                }
                KernelPath::Portable => false,
            }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = path;
        false
    }
}

/// Defines a kernel over slices of `T` and plain values, written once as a body generic
/// over `R: Rows<T>` (the row operations bound to `$rows`), and run on the path's rows:
/// the AVX-512 and AVX2 versions inside `#[target_feature]` functions, so that the
/// operations inline into the body's loops; the portable version otherwise. The function takes the
/// [`KernelPath`] first, then the slices, the mutable slices and the values in order
/// (values and the result are of types that do not name `T`).
macro_rules! with_rows {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident<$T:ident>(
            $rows:ident,
            slices($($s:ident),* $(,)?),
            slices_mut($($m:ident),* $(,)?),
            values($($v:ident: $vty:ty),* $(,)?) $(,)?
        ) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name<$T: $crate::Float>(
            path: $crate::kernels::KernelPath,
            $($s: &[$T],)* $($m: &mut [$T],)* $($v: $vty,)*
        ) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$T: $crate::Float, R: $crate::kernels::rows::Rows<$T>>(
                $rows: R,
                $($s: &[$T],)* $($m: &mut [$T],)* $($v: $vty,)*
            ) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            fn avx512(
                $($s: &[f32],)* $($m: &mut [f32],)* $($v: $vty,)*
            ) $(-> $ret)? {
                body::<f32, _>($crate::kernels::rows::Avx512, $($s,)* $($m,)* $($v,)*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            fn avx2(
                $($s: &[f32],)* $($m: &mut [f32],)* $($v: $vty,)*
            ) $(-> $ret)? {
                body::<f32, _>($crate::kernels::rows::Avx2, $($s,)* $($m,)* $($v,)*)
            }

            #[cfg(target_arch = "x86_64")]
            if $crate::kernels::rows::has_rows::<$T>(path) {
                if let ($(Some($s),)* $(Some($m),)*) = (
                    $($crate::kernels::rows::as_f32($s),)*
                    $($crate::kernels::rows::as_f32_mut($m),)*
                ) {
                    // SAFETY (both): has_rows checked that this CPU has the path's
                    // instructions.
                    return match path {
                        $crate::kernels::KernelPath::Avx512 => unsafe { avx512($($s,)* $($m,)* $($v,)*) },
                        _ => unsafe { avx2($($s,)* $($m,)* $($v,)*) },
                    };
                }
            }
            body::<$T, _>($crate::kernels::rows::Portable, $($s,)* $($m,)* $($v,)*)
        }
    };
}
pub(crate) use with_rows;

#[cfg(test)]
mod tests {
    use crate::kernels::KernelPath;

    with_rows! {
        fn dot<T>(rows, slices(a, b), slices_mut(), values()) -> f64 {
            // SAFETY: `with_rows` picks rows the CPU can run.
            unsafe { rows.dot(a, b) }.as_f64()
        }
    }
    with_rows! {
        fn combine<T>(rows, slices(c, m), slices_mut(out), values(stride: usize, add: bool)) {
            // SAFETY: as above.
            unsafe { rows.combine(c, stride, m, out, add) }
        }
    }
    with_rows! {
        fn outer<T>(rows, slices(g, x), slices_mut(out), values(add: bool)) {
            // SAFETY: as above.
            unsafe { rows.outer(g, x, out, add) }
        }
    }
    with_rows! {
        fn scale_add<T>(rows, slices(x, b), slices_mut(y), values(alpha: f64)) {
            // SAFETY: as above.
            unsafe { rows.scale_add(T::of(alpha), x, b, y) }
        }
    }
    with_rows! {
        fn axpy<T>(rows, slices(x), slices_mut(y), values(alpha: f64)) {
            // SAFETY: as above.
            unsafe { rows.axpy(T::of(alpha), x, y) }
        }
    }

    with_rows! {
        fn matvec<T>(rows, slices(w, x, b), slices_mut(y), values()) {
            // SAFETY: as above.
            unsafe { rows.matvec(w, x, b, y) }
        }
    }
    with_rows! {
        fn transpose<T>(rows, slices(src), slices_mut(dst), values(r: usize, c: usize)) {
            // SAFETY: as above.
            unsafe { rows.transpose(src, r, c, dst) }
        }
    }
    with_rows! {
        fn product<T>(
            rows,
            slices(a, b),
            slices_mut(c),
            values(strides: (usize, usize), n: usize, add: bool),
        ) {
            // SAFETY: as above.
            unsafe { rows.product(a, strides, b, c, n, add) }
        }
    }

    fn paths() -> Vec<KernelPath> {
        KernelPath::ALL
            .into_iter()
            .filter(|p| p.is_available())
            .collect()
    }

    /// Values that are not round in binary, so that a wrong order or a lost term shows.
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) / 7.3)
            .collect()
    }

    /// Lengths around every chunk and mask boundary of 16 and 32 lanes.
    const LENGTHS: [usize; 16] = [0, 1, 2, 7, 10, 15, 16, 17, 30, 31, 32, 33, 47, 48, 64, 70];

    #[test]
    fn dot_matches_the_exact_sum_on_every_path() {
        for path in paths() {
            for n in LENGTHS {
                let (a, b) = (values(n, 1), values(n, 2));
                let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
                let got = dot(path, &a, &b);
                assert!(
                    (got - exact).abs() <= 1e-5 * (1.0 + exact.abs()),
                    "{path:?} {n}"
                );
                assert_eq!(dot(path, &a[..0], &b[..0]), 0.0);
            }
        }
    }

    #[test]
    fn combine_sets_or_adds_the_weighted_rows_on_every_path() {
        for path in paths() {
            for cols in LENGTHS {
                for rows in [0, 1, 2, 3, 20] {
                    let m = values(rows * cols, 3);
                    for (coefficients, stride) in [(values(rows * 3, 4), 3), (Vec::new(), 0)] {
                        let c = |r: usize| match coefficients.is_empty() {
                            true => 1.0,
                            false => coefficients[r * stride] as f64,
                        };
                        for add in [false, true] {
                            let before = values(cols, 5);
                            let mut out = before.clone();
                            combine(path, &coefficients, &m, &mut out, stride, add);
                            for (j, &got) in out.iter().enumerate() {
                                let sum: f64 =
                                    (0..rows).map(|r| c(r) * m[r * cols + j] as f64).sum();
                                let want = sum + if add { before[j] as f64 } else { 0.0 };
                                let close = (got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs());
                                assert!(close, "{path:?} cols {cols} rows {rows} add {add} at {j}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn matvec_matches_the_dots_on_every_path() {
        for path in paths() {
            for outputs in LENGTHS {
                for inputs in [1, 10, 16, 30, 33, 70] {
                    let (w, x, b) = (
                        values(outputs * inputs, 13),
                        values(inputs, 14),
                        values(outputs, 15),
                    );
                    for bias in [&b[..], &[]] {
                        let mut y = vec![f32::NAN; outputs];
                        matvec(path, &w, &x, bias, &mut y);
                        for (o, &got) in y.iter().enumerate() {
                            let dot: f64 = (0..inputs)
                                .map(|k| w[o * inputs + k] as f64 * x[k] as f64)
                                .sum();
                            let want = dot + bias.get(o).map_or(0.0, |&b| b as f64);
                            let close = (got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs());
                            assert!(
                                close,
                                "{path:?} {outputs}×{inputs} bias {} at {o}",
                                !bias.is_empty()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_moves_every_value_on_every_path() {
        for path in paths() {
            for rows in LENGTHS {
                for cols in LENGTHS {
                    let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
                    let mut dst = vec![-1.0; rows * cols];
                    transpose(path, &src, &mut dst, rows, cols);
                    for (k, &v) in dst.iter().enumerate() {
                        let (c, r) = (k / rows, k % rows);
                        assert_eq!(v, (r * cols + c) as f32, "{path:?} {rows}×{cols} at {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn product_matches_the_sum_for_plain_and_transposed_a_on_every_path() {
        for path in paths() {
            for (m, k, n) in [
                (1, 1, 1),
                (4, 3, 17),
                (5, 20, 30),
                (9, 30, 33),
                (20, 1, 70),
                (3, 0, 5),
                (0, 3, 5),
            ] {
                let (a, b) = (values(m * k, 10), values(k * n, 11));
                let a_t: Vec<f32> = (0..k * m).map(|q| a[(q % m) * k + q / m]).collect();
                for ((a, strides), add) in [(&a, (k, 1)), (&a_t, (1, m))]
                    .into_iter()
                    .flat_map(|operand| [(operand, false), (operand, true)])
                {
                    let before = values(m * n, 12);
                    let mut c = before.clone();
                    product(path, a, &b, &mut c, strides, n, add);
                    for (q, &got) in c.iter().enumerate() {
                        let (i, j) = (q / n, q % n);
                        let sum: f64 = (0..k)
                            .map(|p| a[i * strides.0 + p * strides.1] as f64 * b[p * n + j] as f64)
                            .sum();
                        let want = sum + if add { before[q] as f64 } else { 0.0 };
                        let close = (got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs());
                        assert!(
                            close,
                            "{path:?} {m}×{k}·{k}×{n} {strides:?} add {add} at {q}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn elementwise_operations_give_the_portable_bits_on_every_path() {
        for path in paths() {
            for n in LENGTHS {
                let (x, b) = (values(n, 6), values(n, 7));
                for add in [false, true] {
                    let (g, rows) = (values(3, 8), 3);
                    let mut want = values(rows * n, 9);
                    let mut got = want.clone();
                    outer(KernelPath::Portable, &g, &x, &mut want, add);
                    outer(path, &g, &x, &mut got, add);
                    assert_eq!(got, want, "outer {path:?} {n} {add}");
                    if !add {
                        let exact: Vec<f32> = (0..rows * n).map(|k| g[k / n] * x[k % n]).collect();
                        assert_eq!(got, exact, "outer {path:?} {n}");
                    }
                }
                let mut want = vec![0.0; n];
                let mut got = vec![0.0; n];
                scale_add(KernelPath::Portable, &x, &b, &mut want, 0.37);
                scale_add(path, &x, &b, &mut got, 0.37);
                assert_eq!(got, want, "scale_add {path:?} {n}");
                let (mut want, mut got) = (b.clone(), b.clone());
                axpy(KernelPath::Portable, &x, &mut want, -0.01);
                axpy(path, &x, &mut got, -0.01);
                assert_eq!(got, want, "axpy {path:?} {n}");
                let exact: Vec<f32> = b.iter().zip(&x).map(|(&b, &x)| b + -0.01f32 * x).collect();
                assert_eq!(got, exact, "axpy {path:?} {n}");
            }
        }
    }
}
