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
//! extra: packing reads it in whatever order it is stored. A row-major B is not packed at
//! all for slices of k up to 256: the intrinsics kernels read its rows where they lie,
//! panel by panel where a panel is whole registers wide. When A is a single block, each
//! panel of B is packed just before its pass over A, into the same place. A bias row
//! (a Linear layer's) can be added as each tile is written. The driver is compiled three
//! times with the block sizes of a [`KernelPath`]: for AVX-512 (a 12×32 block of `f32`,
//! 24 of the 32 512-bit registers; 12×16 of `f64`), for AVX2 with FMA (6×16 and 6×8, 12
//! of the 16 256-bit registers) and portable. The first two run micro-kernels written
//! once with intrinsics over the register type (`simd`), which add each block straight
//! into C and give edge tiles only the registers they need; the portable one is plain
//! Rust over fixed-size arrays (LLVM does not keep a whole block in registers there, so
//! the vector paths do not use it). The fastest path the CPU has
//! is chosen at run time; `NNSCRATCH_GEMM=avx512|avx2|portable` or
//! [`GemmWorkspace::set_kernel_path`] picks another, which is how every path is tested
//! against a naive triple loop on any machine that can run it (`tests/kernels.rs`).

use std::sync::OnceLock;

use crate::Float;

/// The micro-kernels, each with its block sizes: `MR` rows of A by `NR` columns of B
/// (for `f32`; `f64` takes half the columns), `KC` deep, `MC` rows of A packed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// AVX-512F: 12×32 (`f32`, KC 1024), 12×16 (`f64`, KC 256), MC 144.
    Avx512,
    /// AVX2 with FMA: 6×16 (`f32`), 6×8 (`f64`), KC 256, MC 96.
    Avx2Fma,
    /// No vector extension assumed: 6×16, KC 256, MC 96, multiply then add.
    Portable,
}

impl KernelPath {
    /// Every path, fastest first.
    pub const ALL: [KernelPath; 3] = [
        KernelPath::Avx512,
        KernelPath::Avx2Fma,
        KernelPath::Portable,
    ];

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            KernelPath::Avx512 | KernelPath::Avx2Fma => false,
            KernelPath::Portable => true,
        }
    }

    /// The micro-kernel's tile of C for element type `T`: (rows, columns).
    fn tile<T>(self) -> (usize, usize) {
        let f32 = std::mem::size_of::<T>() == 4;
        match self {
            KernelPath::Avx512 => (12, if f32 { 32 } else { 16 }),
            KernelPath::Avx2Fma => (6, if f32 { 16 } else { 8 }),
            KernelPath::Portable => (6, 16),
        }
    }

    /// The name `NNSCRATCH_GEMM` takes: `avx512`, `avx2` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Avx512 => "avx512",
            KernelPath::Avx2Fma => "avx2",
            KernelPath::Portable => "portable",
        }
    }

    /// The path new workspaces take: `NNSCRATCH_GEMM` if it names one this CPU can run,
    /// else the fastest available. Read once per process.
    pub fn default_for_this_cpu() -> KernelPath {
        static CHOSEN: OnceLock<KernelPath> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let wanted = std::env::var("NNSCRATCH_GEMM").ok();
            let forced = KernelPath::ALL
                .into_iter()
                .find(|p| wanted.as_deref() == Some(p.name()) && p.is_available());
            forced.unwrap_or_else(|| {
                KernelPath::ALL
                    .into_iter()
                    .find(|p| p.is_available())
                    .unwrap_or(KernelPath::Portable)
            })
        })
    }
}

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

    /// A 2-D ndarray view whose elements fill a slice of memory (row-major, column-major,
    /// or either transposed), read in place; `None` for other views (slices with gaps).
    pub fn of_view(view: &ndarray::ArrayView2<'a, T>) -> Option<Self> {
        let data = view.to_slice_memory_order()?;
        let strides = view.strides();
        let (row_stride, col_stride) = (
            usize::try_from(strides[0]).ok()?,
            usize::try_from(strides[1]).ok()?,
        );
        let matrix = MatRef {
            data,
            rows: view.nrows(),
            cols: view.ncols(),
            row_stride,
            col_stride,
        };
        matrix.fits().then_some(matrix)
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

/// C, or a band of its rows or columns, as the blocked kernel writes it: `rows × cols`
/// values, rows `ldc` apart. A `COut` is the only way to its values (the bands
/// [`COut::split_rows`] and [`COut::split_columns`] make own disjoint values), which is
/// what makes the helper threads' writes into one `&mut [T]` sound without overlapping
/// `&mut` slices.
struct COut<'c, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    ldc: usize,
    /// A row added to every row of the product (`cols` values: the band's columns of
    /// it), or null.
    bias: *const T,
    _c: std::marker::PhantomData<&'c mut [T]>,
}

// SAFETY: a COut is an exclusive borrow of its values (as `&mut [T]` is).
unsafe impl<T: Send> Send for COut<'_, T> {}

impl<'c, T> COut<'c, T> {
    /// A row-major `rows × cols` matrix filling `c`, with `bias` (`cols` values, or
    /// empty for none) added to each row of the product.
    fn whole(c: &'c mut [T], rows: usize, cols: usize, bias: &'c [T]) -> Self {
        assert_eq!(c.len(), rows * cols, "C holds rows × cols values");
        assert!(
            bias.is_empty() || bias.len() == cols,
            "a bias of cols values"
        );
        COut {
            ptr: c.as_mut_ptr(),
            rows,
            cols,
            ldc: cols,
            bias: if bias.is_empty() {
                std::ptr::null()
            } else {
                bias.as_ptr()
            },
            _c: std::marker::PhantomData,
        }
    }

    /// Values `start..start + len` of the bias row, if there is one.
    fn bias(&self, start: usize, len: usize) -> Option<&[T]> {
        assert!(start + len <= self.cols);
        // SAFETY: a non-null bias holds `cols` values (`whole`, `split_columns`).
        (!self.bias.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(self.bias.add(start), len) })
    }

    /// Columns `0..end` of each row (`end ≤ cols`) and the rest (`end..cols`): two bands
    /// owning disjoint values.
    fn split_columns(self, end: usize) -> (Self, Self) {
        assert!(end <= self.cols);
        let left = COut { cols: end, ..self };
        let right = COut {
            // Never read when the band has no columns (wrapping: no UB to compute).
            ptr: self.ptr.wrapping_add(end),
            cols: self.cols - end,
            bias: if self.bias.is_null() {
                self.bias
            } else {
                self.bias.wrapping_add(end)
            },
            ..self
        };
        (left, right)
    }

    /// Rows `0..end` (`end ≤ rows`) and the rest: two bands owning disjoint values.
    fn split_rows(self, end: usize) -> (Self, Self) {
        assert!(end <= self.rows);
        let top = COut { rows: end, ..self };
        let bottom = COut {
            // Never read when the band has no rows (wrapping: no UB to compute).
            ptr: self.ptr.wrapping_add(end * self.ldc),
            rows: self.rows - end,
            ..self
        };
        (top, bottom)
    }

    /// Values `start..start + len` of row `i`.
    fn row(&mut self, i: usize, start: usize, len: usize) -> &mut [T] {
        assert!(i < self.rows && start + len <= self.cols);
        // SAFETY: inside the band (asserted), which this COut borrows exclusively; the
        // `&mut self` keeps the slice unique while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.ldc + start), len) }
    }

    /// The first value of a `rows × cols` tile at `(i, j)`, for a kernel that writes the
    /// tile through the pointer (rows `ldc` apart).
    #[cfg(target_arch = "x86_64")]
    fn tile(&mut self, i: usize, j: usize, rows: usize, cols: usize) -> *mut T {
        assert!(i + rows <= self.rows && j + cols <= self.cols);
        // SAFETY: inside the band (asserted).
        unsafe { self.ptr.add(i * self.ldc + j) }
    }
}

/// The packing buffers, kept between calls (put one in a model's workspace), and the
/// helper threads of a multi-threaded product.
pub struct GemmWorkspace<T: Float> {
    packed_a: Vec<T>,
    packed_b: Vec<T>,
    path: KernelPath,
    helpers: Vec<Helper<T>>,
    /// This thread's buffers for [`GemmWorkspace::parallel`] tasks.
    scratch: TaskScratch<T>,
}

/// The buffers one thread of a [`GemmWorkspace::parallel`] task may use: its own packing
/// buffers (for [`TaskScratch::gemm`]) and two vectors, kept between calls so that a task
/// allocates only the first time it needs more room.
pub struct TaskScratch<T> {
    packed_a: Vec<T>,
    packed_b: Vec<T>,
    path: KernelPath,
    /// Free for the task's own use (resized as it needs; the capacity is kept).
    pub buffers: [Vec<T>; 2],
}

impl<T: Float> TaskScratch<T> {
    /// `C = A·B` (or `C += A·B`) on this thread alone, with this thread's buffers.
    pub fn gemm(&mut self, a: MatRef<'_, T>, b: MatRef<'_, T>, c: &mut [T], accumulate: bool) {
        if let Err(error) = check_gemm(&a, &b, c) {
            panic!("{error}");
        }
        if a.rows == 0 || b.cols == 0 {
            return;
        }
        if a.cols == 0 {
            if !accumulate {
                c.fill(T::zero());
            }
            return;
        }
        let path = self.path;
        let c = COut::whole(c, a.rows, b.cols, &[]);
        gemm_single(
            path,
            a,
            b,
            c,
            accumulate,
            &mut self.packed_a,
            &mut self.packed_b,
        );
    }

    fn new(path: KernelPath) -> Self {
        TaskScratch {
            packed_a: Vec::new(),
            packed_b: Vec::new(),
            path,
            buffers: [Vec::new(), Vec::new()],
        }
    }
}

impl<T: Float> Default for TaskScratch<T> {
    /// Empty buffers, products on this CPU's default path.
    fn default() -> Self {
        TaskScratch::new(KernelPath::default_for_this_cpu())
    }
}

/// A task run on several threads at once: `task(part, parts, scratch)`.
pub type Task<'t, T> = dyn Fn(usize, usize, &mut TaskScratch<T>) + Sync + 't;

impl<T: Float> GemmWorkspace<T> {
    /// Empty buffers, one thread; the buffers grow on first use to at most `MC·KC` and
    /// `KC·n` elements.
    pub fn new() -> Self {
        let path = KernelPath::default_for_this_cpu();
        GemmWorkspace {
            packed_a: Vec::new(),
            packed_b: Vec::new(),
            path,
            helpers: Vec::new(),
            scratch: TaskScratch::new(path),
        }
    }

    /// Runs `task(part, parts, scratch)` for `part` in `0..parts`, `parts` the smaller of
    /// `wanted` and the number of threads: part 0 on this thread, the others on the
    /// helpers, each with its own [`TaskScratch`]. Returns when every part is done. The
    /// parts must touch disjoint data (the caller splits its work so).
    pub fn parallel(&mut self, wanted: usize, task: &Task<'_, T>) {
        let parts = wanted.clamp(1, self.threads());
        let path = self.path;
        let GemmWorkspace {
            helpers, scratch, ..
        } = self;
        if parts == 1 {
            return task(0, 1, scratch);
        }
        // The helpers hold a pointer to `task` only until the guard below has waited for
        // each of them, which it does even if this thread's part panics.
        let guard = WaitForHelpers(&helpers[..parts - 1]);
        // SAFETY: the lifetime is erased only for the helpers, which finish with the
        // task before `guard` (and so this function) returns.
        let erased: &'static Task<'static, T> = unsafe { std::mem::transmute(task) };
        for (i, helper) in guard.0.iter().enumerate() {
            helper.send(Work::Task {
                task: erased as *const Task<'static, T>,
                part: i + 1,
                parts,
                path,
            });
        }
        task(0, parts, scratch);
        drop(guard);
    }

    /// Buffers of this thread for a task's own use, outside [`parallel`](Self::parallel)
    /// (for example to gather the helpers' partial results).
    pub fn scratch(&mut self) -> &mut TaskScratch<T> {
        &mut self.scratch
    }

    /// Uses `threads` threads (at least 1) for large products: this one and
    /// `threads - 1` helpers started now, which wait for work without spinning and stop
    /// when the workspace is dropped. Work is split by rows of the output.
    pub fn set_threads(&mut self, threads: usize) {
        let helpers = threads.max(1) - 1;
        self.helpers.truncate(helpers);
        while self.helpers.len() < helpers {
            self.helpers.push(Helper::start());
        }
    }

    /// The number of threads a large product uses.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// The micro-kernel path this workspace's products take.
    pub fn kernel_path(&self) -> KernelPath {
        self.path
    }

    /// Makes this workspace's products (and its tasks' [`TaskScratch::gemm`]) take
    /// `path`; an `Err`, changing nothing, if this CPU cannot run it.
    pub fn set_kernel_path(&mut self, path: KernelPath) -> crate::Result<()> {
        if !path.is_available() {
            return Err(crate::Error::InvalidArgument {
                what: "GemmWorkspace::set_kernel_path".into(),
                expected: "a kernel path this CPU supports".into(),
                found: format!("{path:?}, which needs instructions this CPU lacks"),
            });
        }
        self.path = path;
        self.scratch.path = path;
        Ok(())
    }
}

impl<T: Float> Default for GemmWorkspace<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Clone for GemmWorkspace<T> {
    /// A workspace with the same number of threads (new helpers, empty buffers).
    fn clone(&self) -> Self {
        let mut copy = GemmWorkspace::new();
        copy.set_threads(self.threads());
        copy.path = self.path;
        copy.scratch.path = self.path;
        copy
    }
}

impl<T: Float> std::fmt::Debug for GemmWorkspace<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GemmWorkspace")
            .field("packed_a", &self.packed_a.len())
            .field("packed_b", &self.packed_b.len())
            .field("threads", &self.threads())
            .field("path", &self.path)
            .finish()
    }
}

/// Products smaller than this (in multiply-adds) are not worth waking a helper for.
const PARALLEL_WORK: usize = 1 << 20;

impl<T> MatRef<'_, T> {
    /// Whether every element `(i, j)` lies inside `data`.
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .zip((self.cols - 1).checked_mul(self.col_stride))
            .and_then(|(r, c)| r.checked_add(c));
        last.is_some_and(|last| last < self.data.len())
    }
}

/// Checks the operands of [`gemm`] agree: `A` is `m × k`, `B` is `k × n`, both inside
/// their slices, and `C` holds `m·n` elements.
pub fn check_gemm<T>(a: &MatRef<'_, T>, b: &MatRef<'_, T>, c: &[T]) -> crate::Result<()> {
    let problem = if a.cols != b.rows {
        Some(format!(
            "inner dimensions must agree: A is {} × {}, B is {} × {}",
            a.rows, a.cols, b.rows, b.cols
        ))
    } else if !a.fits() {
        Some(format!(
            "A ({} × {}, strides {} and {}) reaches past its {} elements",
            a.rows,
            a.cols,
            a.row_stride,
            a.col_stride,
            a.data.len()
        ))
    } else if !b.fits() {
        Some(format!(
            "B ({} × {}, strides {} and {}) reaches past its {} elements",
            b.rows,
            b.cols,
            b.row_stride,
            b.col_stride,
            b.data.len()
        ))
    } else if a.rows.checked_mul(b.cols) != Some(c.len()) {
        Some(format!(
            "C must hold {} × {} elements, found {}",
            a.rows,
            b.cols,
            c.len()
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(found) => Err(crate::Error::InvalidArgument {
            what: "gemm".into(),
            expected: "A: m × k, B: k × n, C: m·n elements".into(),
            found,
        }),
    }
}

/// `C = A·B` (or `C += A·B` with `accumulate`), `C` row-major `m × n` in `c`.
///
/// # Panics
/// If the sizes disagree (see [`check_gemm`]), before any work starts; [`try_gemm`]
/// returns that as an `Err` instead.
pub fn gemm<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
    workspace: &mut GemmWorkspace<T>,
) {
    if let Err(error) = try_gemm(a, b, c, accumulate, workspace) {
        panic!("{error}");
    }
}

/// [`gemm`], with inconsistent sizes an `Err` (checked before any thread is involved).
pub fn try_gemm<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    accumulate: bool,
    workspace: &mut GemmWorkspace<T>,
) -> crate::Result<()> {
    gemm_with_bias(a, b, &[], c, accumulate, workspace)
}

/// [`try_gemm`] with `bias` (`n` values, or empty for none) added to every row of the
/// product as the kernels write it: `C (+)= A·B + 1·biasᵀ`, a Linear layer's forward
/// without a separate pass to lay the bias into C first.
pub(crate) fn gemm_with_bias<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: &[T],
    c: &mut [T],
    accumulate: bool,
    workspace: &mut GemmWorkspace<T>,
) -> crate::Result<()> {
    check_gemm(&a, &b, c)?;
    if !bias.is_empty() && bias.len() != b.cols {
        return Err(crate::Error::InvalidArgument {
            what: "gemm bias".into(),
            expected: format!("{} values, one per column of C", b.cols),
            found: format!("{} values", bias.len()),
        });
    }
    if a.rows == 0 || b.cols == 0 {
        return Ok(());
    }
    if a.cols == 0 {
        if !accumulate {
            c.fill(T::zero());
        }
        if !bias.is_empty() {
            for row in c.chunks_exact_mut(b.cols) {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
        }
        return Ok(());
    }
    let threads = workspace.threads();
    let path = workspace.path;
    let GemmWorkspace {
        packed_a,
        packed_b,
        helpers,
        ..
    } = workspace;
    let (m, n) = (a.rows, b.cols);
    let c = COut::whole(c, m, n, bias);
    let (mr, nr) = path.tile::<T>();
    let (row_panels, col_panels) = (m.div_ceil(mr), n.div_ceil(nr));
    if threads == 1 || m * n * a.cols < PARALLEL_WORK || row_panels.max(col_panels) < 2 * threads {
        gemm_single(path, a, b, c, accumulate, packed_a, packed_b);
        return Ok(());
    }
    // One band of C per thread, of whole tiles: rows of C (and A), or columns of C (and
    // B), whichever leaves the busiest thread fewer tiles (128 rows are 11 tiles of 12, 6
    // and 5 per thread; their 256 columns 8 of 32, 4 and 4).
    let by_rows = row_panels.div_ceil(threads) * col_panels;
    let by_columns = col_panels.div_ceil(threads) * row_panels;
    let split_rows = by_rows <= by_columns;
    let (band, whole) = if split_rows {
        (row_panels.div_ceil(threads) * mr, m)
    } else {
        (col_panels.div_ceil(threads) * nr, n)
    };
    // The helpers' bands borrow `a`, `b` and `c`: this guard waits for all of them when
    // it goes out of scope, even if this thread's own band panics, so no helper can
    // outlive the borrows it was sent.
    let guard = WaitForHelpers(helpers);
    let (mut rest, mut start) = (Some(c), 0);
    let mut mine = None;
    for t in 0..threads {
        let size = band.min(whole - start);
        let Some(c) = rest.take().filter(|_| size > 0) else {
            break;
        };
        let (band_c, tail, band_a, band_b) = if split_rows {
            let (band_c, tail) = c.split_rows(size);
            (band_c, tail, a.rows_from(start, size), b)
        } else {
            let (band_c, tail) = c.split_columns(size);
            (band_c, tail, a, b.columns_from(start, size))
        };
        rest = Some(tail);
        if t == 0 {
            mine = Some((band_a, band_b, band_c));
        } else {
            guard.0[t - 1].send(Work::Band(Job::new(
                band_a, band_b, band_c, accumulate, path,
            )));
        }
        start += size;
    }
    if let Some((band_a, band_b, band_c)) = mine {
        gemm_single(path, band_a, band_b, band_c, accumulate, packed_a, packed_b);
    }
    drop(guard);
    Ok(())
}

/// Waits for every helper when dropped (see [`try_gemm`]).
struct WaitForHelpers<'w, T: Float>(&'w [Helper<T>]);

impl<T: Float> Drop for WaitForHelpers<'_, T> {
    fn drop(&mut self) {
        let mut panicked = false;
        for helper in self.0 {
            panicked |= helper.wait();
        }
        if panicked && !std::thread::panicking() {
            panic!("a GEMM helper thread panicked (an internal bug: sizes were checked)");
        }
    }
}

impl<'a, T: Copy> MatRef<'a, T> {
    /// Rows `start..start + rows` of the matrix, as a view.
    fn rows_from(self, start: usize, rows: usize) -> Self {
        let offset = start * self.row_stride;
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            rows,
            ..self
        }
    }

    /// Columns `start..start + cols` of the matrix, as a view.
    fn columns_from(self, start: usize, cols: usize) -> Self {
        let offset = start * self.col_stride;
        MatRef {
            data: &self.data[offset.min(self.data.len())..],
            cols,
            ..self
        }
    }
}

fn gemm_single<T: Float>(
    path: KernelPath,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: COut<'_, T>,
    accumulate: bool,
    packed_a: &mut Vec<T>,
    packed_b: &mut Vec<T>,
) {
    #[cfg(target_arch = "x86_64")]
    match path {
        // SAFETY (both): a workspace only holds a path its CPU supports
        // (`default_for_this_cpu` and `set_kernel_path` check).
        KernelPath::Avx512 => {
            return unsafe { gemm_avx512(a, b, c, accumulate, packed_a, packed_b) };
        }
        KernelPath::Avx2Fma => {
            return unsafe { gemm_avx2_fma(a, b, c, accumulate, packed_a, packed_b) };
        }
        KernelPath::Portable => {}
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = path; // only the portable path exists here
    gemm_blocked::<T, 6, 16, 256, 96, PORTABLE>(a, b, c, accumulate, packed_a, packed_b);
}

// ---- helper threads: one band of rows each, handed over without allocating ----

/// A band of work, as raw parts: the main thread keeps the borrows alive until the helper
/// reports it done (`Helper::wait`), which is what makes sending these pointers sound.
struct Job<T> {
    a: (*const T, usize, [usize; 4]),
    b: (*const T, usize, [usize; 4]),
    /// C's band: pointer, rows, columns, row stride, and its bias row (or null).
    c: (*mut T, [usize; 3], *const T),
    accumulate: bool,
    path: KernelPath,
}

// SAFETY: a Job only travels to a helper while the main thread, which owns the borrows,
// blocks in `Helper::wait` until the helper has finished with it.
unsafe impl<T: Send> Send for Job<T> {}

impl<T: Float> Job<T> {
    fn new(
        a: MatRef<'_, T>,
        b: MatRef<'_, T>,
        c: COut<'_, T>,
        accumulate: bool,
        path: KernelPath,
    ) -> Self {
        let raw = |m: MatRef<'_, T>| {
            (
                m.data.as_ptr(),
                m.data.len(),
                [m.rows, m.cols, m.row_stride, m.col_stride],
            )
        };
        Job {
            a: raw(a),
            b: raw(b),
            c: (c.ptr, [c.rows, c.cols, c.ldc], c.bias),
            accumulate,
            path,
        }
    }

    /// Runs the band.
    ///
    /// # Safety
    /// The pointers must still be valid: the sender must be blocked until this returns.
    unsafe fn run(&self, packed_a: &mut Vec<T>, packed_b: &mut Vec<T>) {
        let rebuild =
            |(ptr, len, [rows, cols, row_stride, col_stride]): (*const T, usize, [usize; 4])| {
                MatRef {
                    // SAFETY: see the function's contract.
                    data: unsafe { std::slice::from_raw_parts(ptr, len) },
                    rows,
                    cols,
                    row_stride,
                    col_stride,
                }
            };
        // The band of C is exclusively this job's (disjoint rows or columns, made by
        // `COut::split_rows`/`split_columns`), alive while the sender waits.
        let (ptr, [rows, cols, ldc], bias) = self.c;
        let c = COut {
            ptr,
            rows,
            cols,
            ldc,
            bias,
            _c: std::marker::PhantomData,
        };
        gemm_single(
            self.path,
            rebuild(self.a),
            rebuild(self.b),
            c,
            self.accumulate,
            packed_a,
            packed_b,
        );
    }
}

/// What a helper is sent: a band of a matrix product, or a part of a task.
enum Work<T> {
    Band(Job<T>),
    Task {
        task: *const Task<'static, T>,
        part: usize,
        parts: usize,
        path: KernelPath,
    },
}

// SAFETY: as for `Job`: the sender blocks until the helper is done with the pointers
// (the task is `Sync`, so calling it from the helper is sound).
unsafe impl<T: Send> Send for Work<T> {}

struct Mailbox<T> {
    job: Option<Work<T>>,
    busy: bool,
    quit: bool,
    panicked: bool,
}

struct Shared<T> {
    mailbox: std::sync::Mutex<Mailbox<T>>,
    changed: std::sync::Condvar,
    /// Mirrors of `mailbox.job.is_some()` and `mailbox.busy`, read without the lock while
    /// spinning (see [`spin_until`]); the mailbox under its lock stays the truth.
    pending: std::sync::atomic::AtomicBool,
    busy: std::sync::atomic::AtomicBool,
}

/// How long a thread spins, watching for work or for a helper to finish, before it
/// sleeps on the condition variable: waking a sleeping thread costs tens of
/// microseconds, more than a w3 step's gaps between products.
const SPIN: std::time::Duration = std::time::Duration::from_micros(200);

/// Spins until `ready()` or until [`SPIN`] has passed.
fn spin_until(ready: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    let mut spins = 0u32;
    while !ready() {
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && started.elapsed() > SPIN {
            return;
        }
    }
}

/// A thread that multiplies the bands it is sent, with packing buffers of its own.
struct Helper<T: Float> {
    shared: std::sync::Arc<Shared<T>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T: Float> Helper<T> {
    fn start() -> Self {
        let shared = std::sync::Arc::new(Shared {
            mailbox: std::sync::Mutex::new(Mailbox {
                job: None,
                busy: false,
                quit: false,
                panicked: false,
            }),
            changed: std::sync::Condvar::new(),
            pending: std::sync::atomic::AtomicBool::new(false),
            busy: std::sync::atomic::AtomicBool::new(false),
        });
        let theirs = std::sync::Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let mut scratch = TaskScratch::new(KernelPath::default_for_this_cpu());
            loop {
                spin_until(|| theirs.pending.load(std::sync::atomic::Ordering::Acquire));
                let job = {
                    let mut mailbox = lock(&theirs.mailbox);
                    while mailbox.job.is_none() && !mailbox.quit {
                        mailbox = theirs
                            .changed
                            .wait(mailbox)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                    theirs
                        .pending
                        .store(false, std::sync::atomic::Ordering::Release);
                    match mailbox.job.take() {
                        Some(job) => job,
                        None => return, // quit
                    }
                };
                // SAFETY: the sender waits in `Helper::wait` until `busy` is cleared below.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
                    match job {
                        Work::Band(job) => job.run(&mut scratch.packed_a, &mut scratch.packed_b),
                        Work::Task {
                            task,
                            part,
                            parts,
                            path,
                        } => {
                            scratch.path = path;
                            (*task)(part, parts, &mut scratch)
                        }
                    }
                }));
                let mut mailbox = lock(&theirs.mailbox);
                mailbox.busy = false;
                mailbox.panicked |= outcome.is_err();
                theirs
                    .busy
                    .store(false, std::sync::atomic::Ordering::Release);
                theirs.changed.notify_all();
            }
        });
        Helper {
            shared,
            thread: Some(thread),
        }
    }

    fn send(&self, job: Work<T>) {
        let mut mailbox = lock(&self.shared.mailbox);
        mailbox.job = Some(job);
        mailbox.busy = true;
        let release = std::sync::atomic::Ordering::Release;
        self.shared.busy.store(true, release);
        self.shared.pending.store(true, release);
        self.shared.changed.notify_all();
    }

    /// Blocks until the helper has finished its band; returns whether it panicked (and
    /// clears that, so one failure does not poison every later product).
    fn wait(&self) -> bool {
        spin_until(|| !self.shared.busy.load(std::sync::atomic::Ordering::Acquire));
        let mut mailbox = lock(&self.shared.mailbox);
        while mailbox.busy {
            mailbox = self
                .shared
                .changed
                .wait(mailbox)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        std::mem::take(&mut mailbox.panicked)
    }
}

impl<T: Float> Drop for Helper<T> {
    fn drop(&mut self) {
        lock(&self.shared.mailbox).quit = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<M>(mutex: &std::sync::Mutex<M>) -> std::sync::MutexGuard<'_, M> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gemm_avx2_fma<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: COut<'_, T>,
    accumulate: bool,
    packed_a: &mut Vec<T>,
    packed_b: &mut Vec<T>,
) {
    if std::mem::size_of::<T>() == 4 {
        gemm_blocked::<T, 6, 16, 256, 96, AVX2_FMA>(a, b, c, accumulate, packed_a, packed_b);
    } else {
        gemm_blocked::<T, 6, 8, 256, 96, AVX2_FMA>(a, b, c, accumulate, packed_a, packed_b);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn gemm_avx512<T: Float>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: COut<'_, T>,
    accumulate: bool,
    packed_a: &mut Vec<T>,
    packed_b: &mut Vec<T>,
) {
    if std::mem::size_of::<T>() == 4 {
        // KC 1024, not 256: the kernel reads 128 bytes of B every 24 cycles, which L2
        // keeps up with, so the B panel need not fit L1; fewer slices of k mean fewer
        // passes of C through the kernel (w3's X·W1ᵀ, k = 784: one pass instead of four,
        // the step ~1% faster in 3 alternated runs of 60).
        gemm_blocked::<T, 12, 32, 1024, 144, AVX512>(a, b, c, accumulate, packed_a, packed_b);
    } else {
        gemm_blocked::<T, 12, 16, 256, 144, AVX512>(a, b, c, accumulate, packed_a, packed_b);
    }
}

#[inline(always)]
fn gemm_blocked<
    T: Float,
    const MR: usize,
    const NR: usize,
    const KC: usize,
    const MC: usize,
    const SIMD: u8,
>(
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    mut c: COut<'_, T>,
    accumulate: bool,
    packed_a: &mut Vec<T>,
    packed_b: &mut Vec<T>,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    let n_panels = n.div_ceil(NR);
    // One block for every micro-kernel call (each overwrites it).
    let mut acc = [[T::zero(); NR]; MR];
    let lanes = NR / 2;
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        // A row-major B is read where it lies by the intrinsics kernels, panel by panel
        // where the panel is whole registers wide: its kc rows are what packing would
        // copy, and with kc ≤ DIRECT_B_KC they stay in L1 for every row panel of A that
        // passes (w3's dW1 = dY1ᵀ·X, kc 128: no 400 KB copy of X per step).
        let direct = has_kernel::<T>(SIMD, MR, NR) && b.col_stride == 1 && kc <= DIRECT_B_KC;
        // The one rule for which panels are read in place (pack_b leaves them out).
        let in_place = |cols: usize| direct && cols.is_multiple_of(lanes);
        // With one block of A (m ≤ MC), each panel of B is used by one pass over A's
        // panels: packed just before that pass, into the same L2-sized place, rather
        // than all of B first (w3's W1ᵀ, 800 KB of packed panels written out to L3).
        let panel_by_panel = m <= MC;
        if !panel_by_panel {
            pack_b::<T, NR>(b, pc, kc, 0..n_panels, &in_place, packed_b);
        }
        // The first slice of k overwrites C unless accumulating; later ones add.
        let add = accumulate || pc > 0;
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            let m_panels = mc.div_ceil(MR);
            pack_a::<T, MR>(a, ic, mc, pc, kc, packed_a);
            for jp in 0..n_panels {
                let b_panel = if panel_by_panel {
                    pack_b::<T, NR>(b, pc, kc, jp..jp + 1, &in_place, packed_b);
                    &packed_b[..kc * NR]
                } else {
                    &packed_b[jp * kc * NR..(jp + 1) * kc * NR]
                };
                let col0 = jp * NR;
                let cols = NR.min(n - col0);
                let (b_rows, ldb) = if in_place(cols) {
                    let start = pc * b.row_stride + col0;
                    (
                        &b.data[start..start + (kc - 1) * b.row_stride + cols],
                        b.row_stride,
                    )
                } else {
                    (b_panel, NR)
                };
                for ip in 0..m_panels {
                    let a_panel = &packed_a[ip * kc * MR..(ip + 1) * kc * MR];
                    let row0 = ic + ip * MR;
                    let rows = MR.min(m - row0);
                    // The intrinsics kernels add or store their block straight into C
                    // (no block in memory, no copy loop); a tile at the bottom or right
                    // edge computes only the registers its rows and columns need.
                    #[cfg(target_arch = "x86_64")]
                    if let Some(kernel) = simd::kernel::<T>(SIMD, MR, NR) {
                        let bias = match c.bias(col0, cols) {
                            Some(bias) if pc == 0 => bias.as_ptr(),
                            _ => std::ptr::null(),
                        };
                        let tile = c.tile(row0, col0, rows, cols);
                        let ldc = c.ldc;
                        assert!(a_panel.len() >= kc * MR);
                        assert!(b_rows.len() >= (kc - 1) * ldb + cols.next_multiple_of(lanes));
                        let out = simd::TileOut {
                            c: tile.cast(),
                            ldc,
                            rows,
                            cols,
                            add,
                            bias: bias.cast(),
                        };
                        // SAFETY: `kernel` is for T, MR×NR panels and an instruction set
                        // the code runs with (SIMD is only AVX512 or AVX2_FMA in code
                        // compiled for, and called on, CPUs that have it); the tile's
                        // `rows` rows of `cols` values, ldc apart, are inside C's band
                        // (`tile` asserts it), A's panel holds kc·MR values and B's kc
                        // rows of `cols` rounded up to whole registers, ldb apart
                        // (asserted); `bias` is null or `cols` values (`COut::bias`).
                        unsafe {
                            kernel(
                                kc,
                                a_panel.as_ptr().cast(),
                                b_rows.as_ptr().cast(),
                                ldb,
                                &out,
                            );
                        }
                        continue;
                    }
                    micro_kernel::<T, MR, NR, SIMD>(kc, a_panel, b_panel, &mut acc);
                    if let Some(bias) = c.bias(col0, cols).filter(|_| pc == 0) {
                        for acc_row in acc.iter_mut().take(rows) {
                            for (v, &b) in acc_row.iter_mut().zip(bias) {
                                *v += b;
                            }
                        }
                    }
                    for (i, acc_row) in acc.iter().enumerate().take(rows) {
                        let out = c.row(row0 + i, col0, cols);
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

/// The instruction sets `gemm_blocked` is compiled for (its `SIMD` parameter).
const PORTABLE: u8 = 0;
const AVX2_FMA: u8 = 1;
const AVX512: u8 = 2;

/// Whether `gemm_blocked` runs an intrinsics kernel (not `micro_kernel`, which reads only
/// packed panels) for these parameters.
fn has_kernel<T: 'static>(simd: u8, mr: usize, nr: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return simd::kernel::<T>(simd, mr, nr).is_some();
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (simd, mr, nr);
        false
    }
}

/// The deepest slice of k for which a row-major B is read in place (see `gemm_blocked`):
/// 256 rows of a 32-wide `f32` panel are 32 KiB, an L1 data cache.
const DIRECT_B_KC: usize = 256;

/// `acc = A_panel · B_panel`: `kc` rank-1 updates of the MR×NR block (overwritten).
#[inline(always)]
fn micro_kernel<T: Float, const MR: usize, const NR: usize, const SIMD: u8>(
    kc: usize,
    a: &[T],
    b: &[T],
    acc: &mut [[T; NR]; MR],
) {
    *acc = [[T::zero(); NR]; MR];
    for (a_col, b_row) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        let a_col: &[T; MR] = a_col
            .try_into()
            .unwrap_or_else(|_| unreachable!("chunks of MR"));
        let b_row: &[T; NR] = b_row
            .try_into()
            .unwrap_or_else(|_| unreachable!("chunks of NR"));
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = if SIMD == PORTABLE {
                    acc[i][j] + a_col[i] * b_row[j]
                } else {
                    a_col[i].mul_add(b_row[j], acc[i][j])
                };
            }
        }
    }
}

/// The micro-kernels written with intrinsics (LLVM does not keep the generic kernel's
/// block in registers: 40-45 GFLOP/s on w3's products where the FMA units do 114), once
/// over a register type: AVX-512 (12×32 `f32`, 12×16 `f64`) and AVX2+FMA (6×16, 6×8).
/// A block of `R` rows by two registers sums `kc` rank-1 updates in `2·R` registers (24
/// and 12 of the 32 and 16), then is added or stored into C; a tile at an edge of C
/// computes only the rows and registers it needs (a third, two thirds or all of the
/// rows; one or two registers) and writes the last partial register under a lane mask.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// One register of lanes, as the micro-kernels use it.
    pub(super) trait Vector: Copy {
        /// The element.
        type E: Copy;
        /// Elements per register.
        const LANES: usize;
        unsafe fn zero() -> Self;
        unsafe fn splat(value: Self::E) -> Self;
        unsafe fn load(from: *const Self::E) -> Self;
        unsafe fn store(to: *mut Self::E, value: Self);
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
        unsafe fn add(a: Self, b: Self) -> Self;
        /// The first `n < LANES` lanes (the others zero and not read).
        unsafe fn load_first(from: *const Self::E, n: usize) -> Self;
        /// Writes the first `n < LANES` lanes (the others are not written).
        unsafe fn store_first(to: *mut Self::E, n: usize, value: Self);
    }

    /// `-1` for the first `n` lanes of an AVX2 mask (64-bit lanes), read from `MASKS[8 - n..]`.
    const MASKS: [i64; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    /// The same for 32-bit lanes.
    const MASKS_32: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    macro_rules! vector {
        ($ty:ty, $e:ty, $lanes:literal, $zero:ident, $splat:ident, $load:ident, $store:ident,
         $fma:ident, $add:ident, |$from:ident, $to:ident, $n:ident, $value:ident|
         $load_first:expr, $store_first:expr) => {
            impl Vector for $ty {
                type E = $e;
                const LANES: usize = $lanes;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    unsafe { $zero() }
                }
                #[inline(always)]
                unsafe fn splat(value: $e) -> Self {
                    unsafe { $splat(value) }
                }
                #[inline(always)]
                unsafe fn load(from: *const $e) -> Self {
                    unsafe { $load(from) }
                }
                #[inline(always)]
                unsafe fn store(to: *mut $e, value: Self) {
                    unsafe { $store(to, value) }
                }
                #[inline(always)]
                unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
                    unsafe { $fma(a, b, c) }
                }
                #[inline(always)]
                unsafe fn add(a: Self, b: Self) -> Self {
                    unsafe { $add(a, b) }
                }
                #[inline(always)]
                unsafe fn load_first($from: *const $e, $n: usize) -> Self {
                    unsafe { $load_first }
                }
                #[inline(always)]
                unsafe fn store_first($to: *mut $e, $n: usize, $value: Self) {
                    unsafe { $store_first }
                }
            }
        };
    }

    vector!(
        __m512,
        f32,
        16,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        |from, to, n, value| _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, from),
        _mm512_mask_storeu_ps(to, ((1u32 << n) - 1) as u16, value)
    );
    vector!(
        __m512d,
        f64,
        8,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        |from, to, n, value| _mm512_maskz_loadu_pd(((1u32 << n) - 1) as u8, from),
        _mm512_mask_storeu_pd(to, ((1u32 << n) - 1) as u8, value)
    );
    vector!(
        __m256,
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        |from, to, n, value| _mm256_maskload_ps(
            from,
            _mm256_loadu_si256(MASKS_32[8 - n..].as_ptr().cast())
        ),
        _mm256_maskstore_ps(
            to,
            _mm256_loadu_si256(MASKS_32[8 - n..].as_ptr().cast()),
            value
        )
    );
    vector!(
        __m256d,
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        |from, to, n, value| _mm256_maskload_pd(
            from,
            _mm256_loadu_si256(MASKS[8 - n..].as_ptr().cast())
        ),
        _mm256_maskstore_pd(
            to,
            _mm256_loadu_si256(MASKS[8 - n..].as_ptr().cast()),
            value
        )
    );

    /// Rows `0..R` and the first `H` registers of columns of `A·B` for a packed panel of
    /// A (`kc` columns of `MR`) and `kc` rows of B, `ldb` apart (a packed panel's two
    /// registers, or the rows of a row-major B read where it lies).
    ///
    /// # Safety
    /// The CPU has `V`'s instructions; `a` points to `kc·MR` readable values and `b` to
    /// `kc` rows of `H·LANES`, `ldb` apart; `R ≤ MR`, `H ≤ 2`.
    #[inline(always)]
    unsafe fn block<V: Vector, const MR: usize, const R: usize, const H: usize>(
        kc: usize,
        a: *const V::E,
        b: *const V::E,
        ldb: usize,
    ) -> [[V; H]; R] {
        // SAFETY (all): the function's contract; p < kc, i < R ≤ MR, h < H.
        unsafe {
            let mut c: [[V; H]; R] = [[V::zero(); H]; R];
            for p in 0..kc {
                let columns: [V; H] =
                    std::array::from_fn(|h| V::load(b.add(p * ldb + h * V::LANES)));
                for (i, row) in c.iter_mut().enumerate() {
                    let ai = V::splat(*a.add(p * MR + i));
                    for (sum, &column) in row.iter_mut().zip(&columns) {
                        *sum = V::fma(ai, column, *sum);
                    }
                }
            }
            c
        }
    }

    /// Adds or stores the first `rows` rows and `cols` columns of `block` into C, plus
    /// the `bias` row unless it is null: whole registers with plain loads and stores, a
    /// partial one under a lane mask.
    ///
    /// # Safety
    /// The CPU has `V`'s instructions; `out` keeps its contract (see [`TileOut`]);
    /// `block` has at least `rows` rows and `H·LANES ≥ cols`.
    #[inline(always)]
    unsafe fn store<V: Vector, const H: usize>(block: &[[V; H]], out: &TileOut<V::E>) {
        let TileOut {
            c,
            ldc,
            rows,
            cols,
            add,
            bias,
        } = *out;
        // SAFETY: lanes below n (as below) are columns of the bias row (the contract).
        let bias: [Option<V>; H] = std::array::from_fn(|h| {
            let n = cols.saturating_sub(h * V::LANES).min(V::LANES);
            (!bias.is_null() && n > 0).then(|| unsafe {
                if n == V::LANES {
                    V::load(bias.add(h * V::LANES))
                } else {
                    V::load_first(bias.add(h * V::LANES), n)
                }
            })
        });
        for (i, row) in block.iter().enumerate().take(rows) {
            for ((h, &sum), bias) in row.iter().enumerate().zip(bias) {
                let n = cols.saturating_sub(h * V::LANES).min(V::LANES);
                let sum = match bias {
                    // SAFETY: `V`'s instructions are there (the caller's contract).
                    Some(bias) => unsafe { V::add(sum, bias) },
                    None => sum,
                };
                // SAFETY: lanes below n are columns of row i < rows (the contract).
                unsafe {
                    let out = c.add(i * ldc + h * V::LANES);
                    if n == V::LANES {
                        let value = if add { V::add(V::load(out), sum) } else { sum };
                        V::store(out, value);
                    } else if n > 0 {
                        let value = if add {
                            V::add(V::load_first(out, n), sum)
                        } else {
                            sum
                        };
                        V::store_first(out, n, value);
                    }
                }
            }
        }
    }

    /// `f(i)` for every `i < n` of the literal list, each call with a constant argument.
    macro_rules! unroll_rows {
        ($f:ident, $n:expr, [$($i:literal)*]) => {
            $(if $i < $n {
                $f($i);
            })*
        };
    }

    /// [`store`] for a whole tile: all `R` rows of `H` whole registers. Row and register
    /// counts known at compile time keep the block in registers; `store`, which loops
    /// over the rows a tile has, leaves it on the stack and reloads it (a whole tile is
    /// most tiles: 1-2% of w3's training step).
    ///
    /// # Safety
    /// As [`store`], with `out.rows == R` and `out.cols == H·LANES`.
    #[inline(always)]
    unsafe fn store_whole<V: Vector, const H: usize, const R: usize>(
        block: [[V; H]; R],
        out: &TileOut<V::E>,
    ) {
        debug_assert!(out.rows == R && out.cols == H * V::LANES);
        // SAFETY (all): `bias` is null or `cols` values, and C's tile `R` rows of
        // `H·LANES` values `ldc` apart (the contract).
        unsafe {
            let bias: Option<[V; H]> = (!out.bias.is_null())
                .then(|| std::array::from_fn(|h| V::load(out.bias.add(h * V::LANES))));
            // One copy of the row's code per row, each with a constant index: LLVM keeps
            // a loop over the rows otherwise, and with it the block in memory.
            let row = |i: usize| {
                for h in 0..H {
                    let mut sum = block[i][h];
                    if let Some(bias) = bias {
                        sum = V::add(sum, bias[h]);
                    }
                    let c = out.c.add(i * out.ldc + h * V::LANES);
                    let value = if out.add {
                        V::add(V::load(c), sum)
                    } else {
                        sum
                    };
                    V::store(c, value);
                }
            };
            const { assert!(R <= 12, "store_whole unrolls at most 12 rows") };
            unroll_rows!(row, R, [0 1 2 3 4 5 6 7 8 9 10 11]);
        }
    }

    /// Where a kernel writes its tile of C. Its contract: `c` points to `rows` rows of
    /// `cols` writable values, `ldc` apart, that nothing else accesses meanwhile; `bias`
    /// is null or points to `cols` readable values.
    #[derive(Clone, Copy)]
    pub(super) struct TileOut<E> {
        /// The tile's first value; rows `ldc` apart.
        pub c: *mut E,
        pub ldc: usize,
        /// At most MR rows and two registers of columns.
        pub rows: usize,
        pub cols: usize,
        /// Add the product to C's values rather than overwrite them.
        pub add: bool,
        /// Null, or `cols` values added to every row (a Linear layer's bias).
        pub bias: *const E,
    }

    /// `C (+)= A·B (+ bias)`: `(kc, A's packed panel, B's rows, their distance, the tile)`.
    pub(super) type Kernel<E> = unsafe fn(usize, *const E, *const E, usize, &TileOut<E>);

    /// One kernel entry for a register type: the instruction set enabled, the block
    /// chosen by the tile's size.
    macro_rules! kernel {
        ($name:ident, $features:literal, $v:ty, $mr:literal, [$r1:literal, $r2:literal]) => {
            /// `C (+)= A·B (+ bias)` for the tile `out` (at most MR rows, two registers).
            ///
            /// # Safety
            /// The CPU has the instructions; `a` points to `kc·MR` readable values, `b` to
            /// `kc` rows, `ldb` apart, of `out.cols` readable values rounded up to a whole
            /// register; `out` keeps its contract (see [`TileOut`]).
            #[target_feature(enable = $features)]
            unsafe fn $name(
                kc: usize,
                a: *const <$v as Vector>::E,
                b: *const <$v as Vector>::E,
                ldb: usize,
                out: &TileOut<<$v as Vector>::E>,
            ) {
                // A whole tile (every row, whole registers) is written by `store_whole`.
                let whole = out.rows == $mr && out.cols.is_multiple_of(<$v>::LANES);
                // SAFETY (all): the function's contract.
                unsafe {
                    match (out.rows, out.cols > <$v>::LANES) {
                        (..=$r1, false) => {
                            store::<$v, 1>(&block::<$v, $mr, $r1, 1>(kc, a, b, ldb), out)
                        }
                        (..=$r1, true) => {
                            store::<$v, 2>(&block::<$v, $mr, $r1, 2>(kc, a, b, ldb), out)
                        }
                        (..=$r2, false) => {
                            store::<$v, 1>(&block::<$v, $mr, $r2, 1>(kc, a, b, ldb), out)
                        }
                        (..=$r2, true) => {
                            store::<$v, 2>(&block::<$v, $mr, $r2, 2>(kc, a, b, ldb), out)
                        }
                        (_, false) if whole => {
                            store_whole::<$v, 1, $mr>(block::<$v, $mr, $mr, 1>(kc, a, b, ldb), out)
                        }
                        (_, true) if whole => {
                            store_whole::<$v, 2, $mr>(block::<$v, $mr, $mr, 2>(kc, a, b, ldb), out)
                        }
                        (_, false) => store::<$v, 1>(&block::<$v, $mr, $mr, 1>(kc, a, b, ldb), out),
                        (_, true) => store::<$v, 2>(&block::<$v, $mr, $mr, 2>(kc, a, b, ldb), out),
                    }
                }
            }
        };
    }

    kernel!(avx512_f32, "avx512f", __m512, 12, [4, 8]);
    kernel!(avx512_f64, "avx512f", __m512d, 12, [4, 8]);
    kernel!(avx2_f32, "avx2,fma", __m256, 6, [2, 4]);
    kernel!(avx2_f64, "avx2,fma", __m256d, 6, [2, 4]);

    /// The intrinsics kernel for `T` on MR×NR panels with `simd`'s instructions, if there
    /// is one (the portable path has none).
    pub(super) fn kernel<T: 'static>(simd: u8, mr: usize, nr: usize) -> Option<Kernel<T>> {
        use std::any::TypeId;
        let f32 = TypeId::of::<T>() == TypeId::of::<f32>();
        let f64 = TypeId::of::<T>() == TypeId::of::<f64>();
        let kernel: *const () = match (simd, mr, nr) {
            (super::AVX512, 12, 32) if f32 => avx512_f32 as Kernel<f32> as *const (),
            (super::AVX512, 12, 16) if f64 => avx512_f64 as Kernel<f64> as *const (),
            (super::AVX2_FMA, 6, 16) if f32 => avx2_f32 as Kernel<f32> as *const (),
            (super::AVX2_FMA, 6, 8) if f64 => avx2_f64 as Kernel<f64> as *const (),
            _ => return None,
        };
        // SAFETY: the kernel chosen takes `T` (f32 or f64, checked by TypeId above), so
        // this is the function pointer's own type.
        Some(unsafe { std::mem::transmute::<*const (), Kernel<T>>(kernel) })
    }
}

/// Packs `B[pc..pc+kc, ..]` into NR-wide column panels, each `kc × NR` row-major,
/// zero-padded past the last column, except panels of a width `in_place` accepts, which
/// the kernels read from B itself. Contiguous rows or columns
/// are copied as slices.
// Not inlined into the AVX-512 function: with its features LLVM vectorises the strided
// stores of a transposed operand into scatter instructions, which cost more than the
// scalar stores (`perf annotate` on w3: 60% of the time outside the micro-kernel).
#[inline(never)]
fn pack_b<T: Float, const NR: usize>(
    b: MatRef<'_, T>,
    pc: usize,
    kc: usize,
    panels: std::ops::Range<usize>,
    in_place: &dyn Fn(usize) -> bool,
    packed: &mut Vec<T>,
) {
    let size = panels.len() * kc * NR;
    if packed.len() < size {
        packed.resize(size, T::zero());
    }
    let first = panels.start;
    for jp in panels {
        let panel = &mut packed[(jp - first) * kc * NR..(jp - first + 1) * kc * NR];
        let col0 = jp * NR;
        let cols = NR.min(b.cols - col0);
        if in_place(cols) {
            continue;
        }
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
            // Column-major B (a transposed row-major matrix, such as Wᵀ): read columns,
            // 8×8 tiles at a time with AVX where the CPU has it (f32).
            let done = transposed_lines(
                b.data,
                col0 * b.col_stride + pc,
                b.col_stride,
                cols,
                kc,
                panel,
                NR,
            );
            for j in done..cols {
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

/// Packs the first `lines / 4 · 4` of `lines` source lines (each `kc` contiguous values,
/// `stride` apart from `data[start]`) across a panel (`panel[p·panel_stride + line]`)
/// with AVX 8×8 (and 4×8) transposes, where they apply (f32 on a CPU with AVX); returns how many
/// lines it packed (0 where they do not apply), the caller packing the rest.
fn transposed_lines<T: Float>(
    data: &[T],
    start: usize,
    stride: usize,
    lines: usize,
    kc: usize,
    panel: &mut [T],
    panel_stride: usize,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx")
    {
        // Blocks of 8 lines, then one of 4 (the 12-line panels of AVX-512, the 6-line
        // ones of AVX2).
        let full = lines / 8 * 8 + if lines % 8 >= 4 { 4 } else { 0 };
        let needed = (full.max(1) - 1) * stride + kc;
        if full > 0 && data.len() >= start + needed && panel.len() >= kc * panel_stride {
            // SAFETY: T is f32 (checked), so the casts change no layout; the CPU has AVX
            // (checked); the source holds lines 0..full of kc values from `start`
            // (checked just above), the panel kc rows of panel_stride >= full values.
            unsafe {
                let data: &[f32] = &*(data as *const [T] as *const [f32]);
                let panel: &mut [f32] = &mut *(panel as *mut [T] as *mut [f32]);
                transpose::columns_to_rows(&data[start..], stride, full, kc, panel, panel_stride);
            }
            return full;
        }
    }
    let _ = (data, start, stride, lines, kc, panel, panel_stride);
    0
}

/// 8×8 transposes with AVX, for packing a transposed operand.
#[cfg(target_arch = "x86_64")]
mod transpose {
    use std::arch::x86_64::{
        __m128, __m256, _mm_storeu_ps, _mm256_castps256_ps128, _mm256_extractf128_ps,
        _mm256_loadu_ps, _mm256_shuffle_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    /// `out[p·stride_out + j] = src[j·stride_in + p]` for `j < cols` (a multiple of 4)
    /// and `p < kc`: columns of a column-major B become rows of its packed panel, or
    /// rows of a row-major A columns of its panel. Lines go 8 at a time, the last 4
    /// together when `cols` is not a multiple of 8.
    ///
    /// # Safety
    /// The CPU has AVX; `src` holds `(cols - 1)·stride_in + kc` elements and `out`
    /// `kc·stride_out`, with `cols <= stride_out`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn columns_to_rows(
        src: &[f32],
        stride_in: usize,
        cols: usize,
        kc: usize,
        out: &mut [f32],
        stride_out: usize,
    ) {
        let full_p = kc / 8 * 8;
        let eights = cols / 8 * 8;
        for j0 in (0..eights).step_by(8) {
            for p0 in (0..full_p).step_by(8) {
                // SAFETY: rows j0..j0+8 of the tile, 8 values each from p0, lie inside
                // `src`, and rows p0..p0+8 of 8 values from j0 inside `out` (the
                // function's contract).
                unsafe {
                    let row =
                        |q: usize| _mm256_loadu_ps(src.as_ptr().add((j0 + q) * stride_in + p0));
                    let u = transpose8([
                        row(0),
                        row(1),
                        row(2),
                        row(3),
                        row(4),
                        row(5),
                        row(6),
                        row(7),
                    ]);
                    // Output rows r and r + 4 from u[r] and u[r + 4] (see transpose8).
                    for r in 0..4 {
                        let low = out.as_mut_ptr().add((p0 + r) * stride_out + j0);
                        let high = out.as_mut_ptr().add((p0 + 4 + r) * stride_out + j0);
                        _mm_storeu_ps(low, _mm256_castps256_ps128(u[r]));
                        _mm_storeu_ps(low.add(4), _mm256_castps256_ps128(u[r + 4]));
                        _mm_storeu_ps(high, _mm256_extractf128_ps::<1>(u[r]));
                        _mm_storeu_ps(high.add(4), _mm256_extractf128_ps::<1>(u[r + 4]));
                    }
                }
            }
            for p in full_p..kc {
                for j in j0..j0 + 8 {
                    out[p * stride_out + j] = src[j * stride_in + p];
                }
            }
        }
        if cols - eights >= 4 {
            let j0 = eights;
            for p0 in (0..full_p).step_by(8) {
                // SAFETY: lines j0..j0+4, 8 values each from p0, lie inside `src`, and
                // rows p0..p0+8 of 4 values from j0 inside `out` (the contract).
                unsafe {
                    let row =
                        |q: usize| _mm256_loadu_ps(src.as_ptr().add((j0 + q) * stride_in + p0));
                    let t = transpose4x8([row(0), row(1), row(2), row(3)]);
                    for (r, v) in t.into_iter().enumerate() {
                        _mm_storeu_ps(out.as_mut_ptr().add((p0 + r) * stride_out + j0), v);
                    }
                }
            }
            for p in full_p..kc {
                for j in j0..j0 + 4 {
                    out[p * stride_out + j] = src[j * stride_in + p];
                }
            }
        }
    }

    /// The transpose of 4 rows of 8: element `r` of the result holds element `r` of
    /// each row.
    #[inline]
    #[target_feature(enable = "avx")]
    fn transpose4x8(r: [__m256; 4]) -> [__m128; 8] {
        // Per 128-bit half: interleave pairs of rows, then pairs of pairs; the low half
        // holds elements 0-3, the high half 4-7.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let u = [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ];
        [
            _mm256_castps256_ps128(u[0]),
            _mm256_castps256_ps128(u[1]),
            _mm256_castps256_ps128(u[2]),
            _mm256_castps256_ps128(u[3]),
            _mm256_extractf128_ps::<1>(u[0]),
            _mm256_extractf128_ps::<1>(u[1]),
            _mm256_extractf128_ps::<1>(u[2]),
            _mm256_extractf128_ps::<1>(u[3]),
        ]
    }

    /// The transpose of 8 rows of 8, but for the exchange of 128-bit halves, which the
    /// caller's stores do: output row `r` is `[u_r low, u_{r+4} low]` for `r < 4` and
    /// `[u_{r-4} high, u_r high]` for `r ≥ 4`. (Interleave pairs of rows, then pairs of
    /// pairs.) LLVM joins the caller's two half stores of a row back into one 256-bit
    /// store: a `vinsertf128` for rows 0-3 and a `vperm2f128` for rows 4-7, where the
    /// exchange done here would take a lane-crossing `vperm2f128` for every row.
    #[inline]
    #[target_feature(enable = "avx")]
    fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
            _mm256_shuffle_ps::<0x44>(t4, t6),
            _mm256_shuffle_ps::<0xEE>(t4, t6),
            _mm256_shuffle_ps::<0x44>(t5, t7),
            _mm256_shuffle_ps::<0xEE>(t5, t7),
        ]
    }
}

/// Packs `A[ic..ic+mc, pc..pc+kc]` into MR-tall row panels, each stored column by
/// column (`kc × MR`), zero-padded past the last row. Contiguous rows or columns are
/// read as slices.
#[inline(never)]
fn pack_a<T: Float, const MR: usize>(
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
            // Column-major A (such as dYᵀ): each packed column is a slice of a column,
            // copied as one fixed-size block when the panel is full (LLVM otherwise
            // calls memcpy for every 12 values).
            for (p, column) in panel.chunks_exact_mut(MR).enumerate() {
                let start = (pc + p) * a.col_stride + row0;
                let source = &a.data[start..start + rows];
                match (
                    <&mut [T; MR]>::try_from(column),
                    <&[T; MR]>::try_from(source),
                ) {
                    (Ok(column), Ok(source)) => *column = *source,
                    (Ok(column), Err(_)) => {
                        for (slot, &v) in column.iter_mut().zip(source) {
                            *slot = v;
                        }
                    }
                    (Err(_), _) => unreachable!("chunks of MR"),
                }
            }
        } else if a.col_stride == 1 {
            // Row-major A: read each row once, 8 rows at a time with AVX where the CPU
            // has it (f32; the AVX-512 path's 12-row panels).
            let done = transposed_lines(
                a.data,
                row0 * a.row_stride + pc,
                a.row_stride,
                rows,
                kc,
                panel,
                MR,
            );
            for i in done..rows {
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
