//! Convolution and pooling for compiled models, on `[batch, C·H·W]` rows (each sample's
//! values channel-first, row-major: PyTorch's NCHW memory order). A 1-D convolution is
//! the 2-D one with height 1.
//!
//! A convolution is a matrix product over unfolded patches. For one sample and one group
//! of `Cg` input and `Og` output channels, `col(X)` ("im2col") is the `[Cg·kh·kw, Ho·Wo]`
//! matrix whose column `(i, j)` holds the window output `(i, j)` reads (zeros where the
//! window hangs over the padding); the group's weights are a `[Og, Cg·kh·kw]` matrix `W`:
//!
//! ```text
//! Y = W·col(X) + b                forward
//! dW = Σ_batch dY·col(X)ᵀ         each window's contribution to each tap, summed
//! db = Σ_batch,i,j dY
//! dX = col2im(Wᵀ·dY)              each column's gradient sent back to the window it came
//!                                 from, overlapping windows adding up
//! ```
//!
//! The products run on the packed GEMM of `gemm.rs`; the unfolded patches live in a
//! workspace buffer `cols` of `Cg·kh·kw × Ho·Wo`, reused for every sample, so nothing
//! allocates. Pooling runs direct loops: max pooling sends each gradient to its window's
//! first maximum (as PyTorch's CPU kernel, recomputed from the input in backward), average
//! pooling spreads it over the window (dividing by the whole window, padding included).

use ndarray::{ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2};

use super::gemm::{GemmWorkspace, MatRef, TaskScratch};
use super::{Write, rows, rows_mut};
use crate::Float;

/// The geometry of a convolution or a pooling on one sample, fixed at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (for a pooling, the same as the input's).
    pub out_channels: usize,
    /// Channel groups (1 for a pooling).
    pub groups: usize,
    /// `(H, W)` of the input (`(1, L)` in 1-D).
    pub input: (usize, usize),
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// `(ph, pw)`.
    pub padding: (usize, usize),
    /// `(dh, dw)`.
    pub dilation: (usize, usize),
    /// `(Ho, Wo)`, by PyTorch's floor rule.
    pub output: (usize, usize),
}

impl Geometry {
    /// Taps per output value of one group: `Cg·kh·kw`, the rows of `col(X)`.
    pub fn taps(&self) -> usize {
        self.in_channels / self.groups * self.kernel.0 * self.kernel.1
    }

    /// Output positions per channel: `Ho·Wo`, the columns of `col(X)`.
    pub fn positions(&self) -> usize {
        self.output.0 * self.output.1
    }

    /// The output columns `j` whose input column `j·sw + v·dw - pw` lies inside the
    /// input, for tap column `v`: `j0..j1` (empty when none).
    #[inline]
    fn valid_columns(&self, v: usize) -> (usize, usize) {
        let (sw, pw, dw, w) = (self.stride.1, self.padding.1, self.dilation.1, self.input.1);
        let offset = v * dw; // input column = j·sw + offset - pw
        let j0 = pw.saturating_sub(offset).div_ceil(sw);
        let j1 = (w + pw)
            .saturating_sub(offset)
            .div_ceil(sw)
            .min(self.output.1);
        (j0.min(j1), j1)
    }

    /// The input row output row `i` reads at tap row `u`, if not in the padding.
    #[inline]
    fn source_row(&self, i: usize, u: usize) -> Option<usize> {
        let r = (i * self.stride.0 + u * self.dilation.0).checked_sub(self.padding.0)?;
        (r < self.input.0).then_some(r)
    }

    /// `col(X)` of group `g` of one sample `x` (`[C·H·W]`) into `cols`: for each tap
    /// `(c, u, v)` one row of `Ho·Wo` values, copied a run of columns at a time (a plain
    /// copy at stride 1), zeros where the window hangs over the padding.
    fn im2col<T: Float>(&self, x: &[T], g: usize, cols: &mut [T]) {
        let (h, w) = self.input;
        let (kh, kw) = self.kernel;
        let (ho, wo) = self.output;
        let (sw, pw, dw) = (self.stride.1, self.padding.1, self.dilation.1);
        let cg = self.in_channels / self.groups;
        let mut row = 0;
        for c in 0..cg {
            let channel = &x[(g * cg + c) * h * w..][..h * w];
            for u in 0..kh {
                for v in 0..kw {
                    let out = &mut cols[row * ho * wo..][..ho * wo];
                    let (j0, j1) = self.valid_columns(v);
                    for i in 0..ho {
                        let line = &mut out[i * wo..][..wo];
                        let Some(r) = self.source_row(i, u) else {
                            line.fill(T::zero());
                            continue;
                        };
                        line[..j0].fill(T::zero());
                        line[j1..].fill(T::zero());
                        if j0 < j1 {
                            let start = j0 * sw + v * dw - pw;
                            let input = &channel[r * w..][..w];
                            if sw == 1 {
                                line[j0..j1].copy_from_slice(&input[start..start + (j1 - j0)]);
                            } else {
                                for (slot, &value) in line[j0..j1]
                                    .iter_mut()
                                    .zip(input[start..].iter().step_by(sw))
                                {
                                    *slot = value;
                                }
                            }
                        }
                    }
                    row += 1;
                }
            }
        }
    }

    /// Adds `cols` (a `col(X)`-shaped gradient) back into group `g` of one sample's `dx`.
    fn col2im<T: Float>(&self, cols: &[T], g: usize, dx: &mut [T]) {
        let (h, w) = self.input;
        let (kh, kw) = self.kernel;
        let (ho, wo) = self.output;
        let (sw, pw, dw) = (self.stride.1, self.padding.1, self.dilation.1);
        let cg = self.in_channels / self.groups;
        let mut row = 0;
        for c in 0..cg {
            let channel = &mut dx[(g * cg + c) * h * w..][..h * w];
            for u in 0..kh {
                for v in 0..kw {
                    let col = &cols[row * ho * wo..][..ho * wo];
                    let (j0, j1) = self.valid_columns(v);
                    if j0 < j1 {
                        for i in 0..ho {
                            let Some(r) = self.source_row(i, u) else {
                                continue;
                            };
                            let start = j0 * sw + v * dw - pw;
                            let line = &col[i * wo + j0..i * wo + j1];
                            let input = &mut channel[r * w..][..w];
                            if sw == 1 {
                                for (slot, &g) in
                                    input[start..start + (j1 - j0)].iter_mut().zip(line)
                                {
                                    *slot += g;
                                }
                            } else {
                                for (slot, &g) in input[start..].iter_mut().step_by(sw).zip(line) {
                                    *slot += g;
                                }
                            }
                        }
                    }
                    row += 1;
                }
            }
        }
    }

    /// The input rows `r0..r1` of pooling window row `i` (the padding cut off).
    #[inline]
    fn window_rows(&self, i: usize) -> (usize, usize) {
        let top = i * self.stride.0;
        let r0 = top.saturating_sub(self.padding.0);
        let r1 = (top + self.kernel.0)
            .saturating_sub(self.padding.0)
            .min(self.input.0);
        (r0, r1.max(r0))
    }

    /// The input columns `c0..c1` of pooling window column `j`.
    #[inline]
    fn window_columns(&self, j: usize) -> (usize, usize) {
        let left = j * self.stride.1;
        let c0 = left.saturating_sub(self.padding.1);
        let c1 = (left + self.kernel.1)
            .saturating_sub(self.padding.1)
            .min(self.input.1);
        (c0, c1.max(c0))
    }
}

/// A buffer of `batch` rows that the parts of a parallel task write, each its own
/// samples (see [`GemmWorkspace::parallel`]).
struct SharedRows<T> {
    ptr: *mut T,
    width: usize,
    batch: usize,
}

// SAFETY: the parts of a task take disjoint ranges of rows (`rows_of`), and the buffer
// outlives the task (the caller holds its borrow until `parallel` returns).
unsafe impl<T: Send> Sync for SharedRows<T> {}
unsafe impl<T: Send> Send for SharedRows<T> {}

impl<T> SharedRows<T> {
    fn new(data: &mut [T], width: usize) -> Self {
        SharedRows {
            ptr: data.as_mut_ptr(),
            width,
            batch: data.len() / width.max(1),
        }
    }

    /// The rows of part `part` of `parts`.
    ///
    /// # Safety
    /// Each part may be taken once at a time, and only while the buffer is borrowed.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, part: usize, parts: usize) -> &mut [T] {
        let samples = samples_of(self.batch, part, parts);
        // SAFETY: in bounds (a range of whole rows), disjoint from the other parts'.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.add(samples.start * self.width),
                samples.len() * self.width,
            )
        }
    }
}

/// The samples part `part` of `parts` works on: contiguous, as even as possible.
fn samples_of(batch: usize, part: usize, parts: usize) -> std::ops::Range<usize> {
    let per = batch.div_ceil(parts.max(1));
    (part * per).min(batch)..((part + 1) * per).min(batch)
}

/// Room for `len` values in a task's buffer (it grows only the first time).
fn room<T: Float>(buffer: &mut Vec<T>, len: usize) -> &mut [T] {
    if buffer.len() < len {
        buffer.resize(len, T::zero());
    }
    &mut buffer[..len]
}

/// `Y = W·col(X) + b` per sample and group (see the module docs). The samples are shared
/// out among the workspace's threads.
pub fn conv_forward<T: Float>(
    x: ArrayView2<'_, T>,
    weight: ArrayViewD<'_, T>,
    bias: Option<ArrayView1<'_, T>>,
    geometry: Geometry,
    mut y: ArrayViewMut2<'_, T>,
    workspace: &mut GemmWorkspace<T>,
) {
    let batch = x.nrows();
    let (x, y) = (rows(&x), rows_mut(&mut y));
    let weight = weight
        .to_slice()
        .unwrap_or_else(|| unreachable!("parameters are standard-layout"));
    let bias = bias.map(|b| {
        b.to_slice()
            .unwrap_or_else(|| unreachable!("contiguous bias"))
    });
    let (taps, positions) = (geometry.taps(), geometry.positions());
    let og = geometry.out_channels / geometry.groups;
    let x_width = geometry.in_channels * geometry.input.0 * geometry.input.1;
    let y_width = geometry.out_channels * positions;
    let out = SharedRows::new(y, y_width);
    workspace.parallel(batch, &|part, parts, scratch: &mut TaskScratch<T>| {
        let samples = samples_of(batch, part, parts);
        // SAFETY: each part takes its own samples' rows, once.
        let y = unsafe { out.part(part, parts) };
        let mut cols = std::mem::take(&mut scratch.buffers[0]);
        let cols_part = room(&mut cols, taps * positions);
        for (x, y) in x[samples.start * x_width..samples.end * x_width]
            .chunks_exact(x_width)
            .zip(y.chunks_exact_mut(y_width))
        {
            for g in 0..geometry.groups {
                geometry.im2col(x, g, cols_part);
                let out = &mut y[g * og * positions..][..og * positions];
                if let Some(bias) = bias {
                    for (o, channel) in out.chunks_exact_mut(positions).enumerate() {
                        channel.fill(bias[g * og + o]);
                    }
                }
                let w = MatRef::row_major(&weight[g * og * taps..][..og * taps], og, taps);
                scratch.gemm(
                    w,
                    MatRef::row_major(cols_part, taps, positions),
                    out,
                    bias.is_some(),
                );
            }
        }
        scratch.buffers[0] = cols;
    });
}

/// `dW = Σ_batch dY·col(X)ᵀ` and `db = Σ dY`, set or added (see [`Write`]). Each thread
/// sums its samples' share of `dW`; the shares are added up at the end.
pub fn conv_backward_params<T: Float>(
    dy: ArrayView2<'_, T>,
    x: ArrayView2<'_, T>,
    geometry: Geometry,
    mut dweight: ndarray::ArrayViewMutD<'_, T>,
    dbias: Option<ArrayViewMut1<'_, T>>,
    write: Write,
    workspace: &mut GemmWorkspace<T>,
) {
    let batch = x.nrows();
    let (dy, x) = (rows(&dy), rows(&x));
    let dweight = dweight
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("gradients are standard-layout"));
    let (taps, positions) = (geometry.taps(), geometry.positions());
    let og = geometry.out_channels / geometry.groups;
    let x_width = geometry.in_channels * geometry.input.0 * geometry.input.1;
    let y_width = geometry.out_channels * positions;
    if let Some(mut db) = dbias {
        let db = db
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("contiguous bias gradient"));
        if write == Write::Set {
            db.fill(T::zero());
        }
        for dy in dy.chunks_exact(y_width) {
            for (db, channel) in db.iter_mut().zip(dy.chunks_exact(positions)) {
                *db += channel.iter().copied().sum::<T>();
            }
        }
    }
    // Part 0 sums into the gradient itself; the others into their slice of `shares`,
    // which this thread's scratch holds, added in after.
    let len = dweight.len();
    let parts = workspace.threads().min(batch).max(1);
    let mut shares = std::mem::take(&mut workspace.scratch().buffers[1]);
    let shares_part = room(&mut shares, (parts - 1) * len);
    if write == Write::Set {
        dweight.fill(T::zero());
    }
    let (mine, others) = (
        SharedRows::new(dweight, len),
        SharedRows::new(shares_part, len),
    );
    workspace.parallel(parts, &|part, parts, scratch: &mut TaskScratch<T>| {
        let samples = samples_of(batch, part, parts);
        // SAFETY: part 0 alone takes the gradient; part p > 0 takes row p - 1 of `shares`.
        let dw = unsafe {
            if part == 0 {
                mine.part(0, 1)
            } else {
                let share = others.part(part - 1, others.batch);
                share.fill(T::zero());
                share
            }
        };
        let mut cols = std::mem::take(&mut scratch.buffers[0]);
        let cols_part = room(&mut cols, taps * positions);
        for (x, dy) in x[samples.start * x_width..samples.end * x_width]
            .chunks_exact(x_width)
            .zip(dy[samples.start * y_width..samples.end * y_width].chunks_exact(y_width))
        {
            for g in 0..geometry.groups {
                geometry.im2col(x, g, cols_part);
                let dy_g =
                    MatRef::row_major(&dy[g * og * positions..][..og * positions], og, positions);
                let cols_t = MatRef::row_major(cols_part, taps, positions).t();
                scratch.gemm(dy_g, cols_t, &mut dw[g * og * taps..][..og * taps], true);
            }
        }
        scratch.buffers[0] = cols;
    });
    for share in shares_part.chunks_exact(len) {
        for (d, &s) in dweight.iter_mut().zip(share) {
            *d += s;
        }
    }
    workspace.scratch().buffers[1] = shares;
}

/// `dX = col2im(Wᵀ·dY)`, set or added (see [`Write`]), the samples shared out among the
/// workspace's threads.
pub fn conv_backward_input<T: Float>(
    dy: ArrayView2<'_, T>,
    weight: ArrayViewD<'_, T>,
    geometry: Geometry,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
    workspace: &mut GemmWorkspace<T>,
) {
    let batch = dy.nrows();
    let (dy, dx) = (rows(&dy), rows_mut(&mut dx));
    let weight = weight
        .to_slice()
        .unwrap_or_else(|| unreachable!("parameters are standard-layout"));
    let (taps, positions) = (geometry.taps(), geometry.positions());
    let og = geometry.out_channels / geometry.groups;
    let x_width = geometry.in_channels * geometry.input.0 * geometry.input.1;
    let y_width = geometry.out_channels * positions;
    let out = SharedRows::new(dx, x_width);
    workspace.parallel(batch, &|part, parts, scratch: &mut TaskScratch<T>| {
        let samples = samples_of(batch, part, parts);
        // SAFETY: each part takes its own samples' rows, once.
        let dx = unsafe { out.part(part, parts) };
        if write == Write::Set {
            dx.fill(T::zero());
        }
        let mut cols = std::mem::take(&mut scratch.buffers[0]);
        let cols_part = room(&mut cols, taps * positions);
        for (dx, dy) in dx
            .chunks_exact_mut(x_width)
            .zip(dy[samples.start * y_width..samples.end * y_width].chunks_exact(y_width))
        {
            for g in 0..geometry.groups {
                let w_t = MatRef::row_major(&weight[g * og * taps..][..og * taps], og, taps).t();
                let dy_g =
                    MatRef::row_major(&dy[g * og * positions..][..og * positions], og, positions);
                scratch.gemm(w_t, dy_g, cols_part, false);
                geometry.col2im(cols_part, g, dx);
            }
        }
        scratch.buffers[0] = cols;
    });
}
/// Max (`max = true`) or average pooling of each channel. Max pooling records each
/// window's (first) maximum's position within its channel in `argmax` (one per output
/// value), for backward; average pooling leaves it alone.
pub fn pool_forward<T: Float>(
    x: ArrayView2<'_, T>,
    geometry: Geometry,
    max: bool,
    mut y: ArrayViewMut2<'_, T>,
    argmax: &mut [u32],
    workspace: &mut GemmWorkspace<T>,
) {
    let batch = x.nrows();
    let (x, y) = (rows(&x), rows_mut(&mut y));
    let (x_width, y_width) = (x.len() / batch.max(1), y.len() / batch.max(1));
    let (out, positions) = (
        SharedRows::new(y, y_width),
        SharedIndices::new(argmax, y_width),
    );
    workspace.parallel(batch, &|part, parts, _: &mut TaskScratch<T>| {
        let samples = samples_of(batch, part, parts);
        // SAFETY: each part takes its own samples' rows, once.
        let (y, argmax) = unsafe { (out.part(part, parts), positions.part(part, parts, max)) };
        pool_forward_rows(
            &x[samples.start * x_width..samples.end * x_width],
            geometry,
            max,
            y,
            argmax,
        );
    });
}

fn pool_forward_rows<T: Float>(
    x: &[T],
    geometry: Geometry,
    max: bool,
    y: &mut [T],
    argmax: &mut [u32],
) {
    let (h, w) = geometry.input;
    let (ho, wo) = geometry.output;
    let area = T::of((geometry.kernel.0 * geometry.kernel.1) as f64);
    if !max {
        for (x, y) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(ho * wo)) {
            for (i, y_row) in y.chunks_exact_mut(wo).enumerate() {
                let (r0, r1) = geometry.window_rows(i);
                for (j, out) in y_row.iter_mut().enumerate() {
                    let (c0, c1) = geometry.window_columns(j);
                    let sum = (r0..r1)
                        .flat_map(|r| &x[r * w + c0..r * w + c1])
                        .fold(T::zero(), |s, &v| s + v);
                    *out = sum / area;
                }
            }
        }
        return;
    }
    for ((x, y), positions) in x
        .chunks_exact(h * w)
        .zip(y.chunks_exact_mut(ho * wo))
        .zip(argmax.chunks_exact_mut(ho * wo))
    {
        for (i, (y_row, position_row)) in y
            .chunks_exact_mut(wo)
            .zip(positions.chunks_exact_mut(wo))
            .enumerate()
        {
            let (r0, r1) = geometry.window_rows(i);
            for (j, (out, position)) in y_row.iter_mut().zip(position_row.iter_mut()).enumerate() {
                let (c0, c1) = geometry.window_columns(j);
                // The first maximum in scan order (a NaN wins), as PyTorch's CPU kernel;
                // written as selects, not branches: which value wins is data, and
                // mispredicted branches were most of this kernel's time.
                let (mut best, mut at, mut nan) = (T::neg_infinity(), (r0 * w + c0) as u32, false);
                for r in r0..r1 {
                    let start = r * w + c0;
                    for (c, &value) in x[start..r * w + c1].iter().enumerate() {
                        let take = (value > best) | value.is_nan();
                        // The position through a mask and the value through `max`, so
                        // that both updates stay branch-free.
                        let mask = (take as u32).wrapping_neg();
                        at = (at & !mask) | ((start + c) as u32 & mask);
                        best = best.max(value);
                        nan |= value.is_nan();
                    }
                }
                *out = if nan { T::nan() } else { best };
                *position = at;
            }
        }
    }
}

/// Max pooling sends each gradient to its window's maximum (the position `pool_forward`
/// recorded); average pooling spreads it as `dy/(kh·kw)` over the window. Set or added
/// (see [`Write`]).
pub fn pool_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    geometry: Geometry,
    max: bool,
    argmax: &[u32],
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
    workspace: &mut GemmWorkspace<T>,
) {
    let batch = dy.nrows();
    let (dy, dx) = (rows(&dy), rows_mut(&mut dx));
    let (x_width, y_width) = (dx.len() / batch.max(1), dy.len() / batch.max(1));
    let out = SharedRows::new(dx, x_width);
    workspace.parallel(batch, &|part, parts, _: &mut TaskScratch<T>| {
        let samples = samples_of(batch, part, parts);
        // SAFETY: each part takes its own samples' rows, once.
        let dx = unsafe { out.part(part, parts) };
        if write == Write::Set {
            dx.fill(T::zero());
        }
        let rows = samples.start * y_width..samples.end * y_width;
        let argmax = if max { &argmax[rows.clone()] } else { &[][..] };
        pool_backward_rows(&dy[rows], geometry, max, argmax, dx);
    });
}

fn pool_backward_rows<T: Float>(
    dy: &[T],
    geometry: Geometry,
    max: bool,
    argmax: &[u32],
    dx: &mut [T],
) {
    let (h, w) = geometry.input;
    let (ho, wo) = geometry.output;
    if max {
        for ((dy, dx), positions) in dy
            .chunks_exact(ho * wo)
            .zip(dx.chunks_exact_mut(h * w))
            .zip(argmax.chunks_exact(ho * wo))
        {
            for (&g, &at) in dy.iter().zip(positions) {
                dx[at as usize] += g;
            }
        }
        return;
    }
    let area = T::of((geometry.kernel.0 * geometry.kernel.1) as f64);
    for (dy, dx) in dy.chunks_exact(ho * wo).zip(dx.chunks_exact_mut(h * w)) {
        for (i, dy_row) in dy.chunks_exact(wo).enumerate() {
            let (r0, r1) = geometry.window_rows(i);
            for (j, &g) in dy_row.iter().enumerate() {
                let (c0, c1) = geometry.window_columns(j);
                let share = g / area;
                for r in r0..r1 {
                    for slot in &mut dx[r * w + c0..r * w + c1] {
                        *slot += share;
                    }
                }
            }
        }
    }
}

/// Max pooling's argmax buffer, shared out by sample like [`SharedRows`].
struct SharedIndices {
    ptr: *mut u32,
    width: usize,
    batch: usize,
}

// SAFETY: as for `SharedRows`.
unsafe impl Sync for SharedIndices {}
unsafe impl Send for SharedIndices {}

impl SharedIndices {
    fn new(data: &mut [u32], width: usize) -> Self {
        SharedIndices {
            ptr: data.as_mut_ptr(),
            width,
            batch: data.len() / width.max(1),
        }
    }

    /// The positions of part `part`'s samples (none for average pooling).
    ///
    /// # Safety
    /// As for [`SharedRows::part`].
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, part: usize, parts: usize, max: bool) -> &mut [u32] {
        if !max || self.width == 0 {
            return &mut [];
        }
        let samples = samples_of(self.batch, part, parts);
        // SAFETY: a range of whole rows, disjoint from the other parts'.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.add(samples.start * self.width),
                samples.len() * self.width,
            )
        }
    }
}
