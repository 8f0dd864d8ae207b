//! The compiled path's kernels against references: the packed GEMM against the naive
//! triple loop (every transpose combination, edge sizes, accumulation), on each
//! micro-kernel path this CPU can run (AVX-512, AVX2+FMA, portable: the ones it cannot
//! are named in the output), and the fast f32 `tanh` against `f64::tanh` (at most 2 ulp).

use ndarray::{Array1, Array2};
use nnscratch::Float;
use nnscratch::kernels::{
    GemmWorkspace, KernelPath, MatRef, Write, gemm, gemm_naive, linear_backward_input,
    linear_backward_params, linear_forward, tanh_f32, tanh_f32_on,
};
use rand::{RngExt, SeedableRng};

fn random(n: usize, rng: &mut rand::rngs::StdRng) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// The paths this CPU can run (each test runs on all of them), printing the others.
fn paths() -> Vec<KernelPath> {
    let (available, missing): (Vec<_>, Vec<_>) =
        KernelPath::ALL.into_iter().partition(|p| p.is_available());
    if !missing.is_empty() {
        println!("this CPU cannot run the GEMM paths {missing:?}: not tested here");
    }
    available
}

fn workspace_on<T: Float>(path: KernelPath) -> GemmWorkspace<T> {
    let mut workspace = GemmWorkspace::new();
    workspace.set_kernel_path(path).unwrap();
    assert_eq!(workspace.kernel_path(), path);
    workspace
}

#[test]
fn gemm_matches_the_naive_product_for_every_layout_and_edge_size() {
    for path in paths() {
        every_layout_and_edge_size(path);
    }
}

fn every_layout_and_edge_size(path: KernelPath) {
    every_layout_and_edge_size_in::<f64>(path, 1e-12);
    // f32 against the naive product of the same (rounded) numbers in f64.
    every_layout_and_edge_size_in::<f32>(path, 2e-6);
}

/// A `rows × cols` matrix stored row-major, or (`t`) its transpose's storage seen
/// transposed.
fn view<U: Copy>(data: &[U], rows: usize, cols: usize, t: bool) -> MatRef<'_, U> {
    if t {
        MatRef::row_major(data, cols, rows).t()
    } else {
        MatRef::row_major(data, rows, cols)
    }
}

fn every_layout_and_edge_size_in<T: Float>(path: KernelPath, tolerance: f64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut workspace = workspace_on::<T>(path);
    // Sizes straddle the micro-kernels (6×16, 6×8, 12×32, 12×16) and the blocking (MC 96
    // and 144, KC 256 and 1024) boundaries; the last rows and columns leave every size of edge
    // tile the AVX-512 kernels have (1-4, 5-8 and 9-11 rows; up to 16 and 17-31 columns)
    // and the AVX2 ones (1-2, 3-4 and 5 rows; up to 8 and 9-15 columns). A row-major B is
    // read in place for slices of k up to 256 where a panel is whole registers wide:
    // 80 columns are all such panels, 70 end with a packed one.
    for &(m, n, k) in &[
        (1, 1, 1),
        (9, 12, 5),
        (4, 20, 7),
        (11, 48, 40),
        (22, 5, 30),
        (16, 47, 19),
        (5, 17, 3),
        (6, 16, 256),
        (7, 33, 257),
        (12, 32, 256),
        (13, 31, 9),
        (97, 15, 300),
        (128, 10, 128),
        (13, 64, 520),
        (145, 65, 300),
        (13, 33, 1030),
        (25, 40, 2100),
        (40, 80, 100),
        (30, 70, 64),
    ] {
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            for accumulate in [false, true] {
                let rounded = |v: Vec<f64>| -> Vec<T> { v.into_iter().map(T::of).collect() };
                let (a_data, b_data) = (
                    rounded(random(m * k, &mut rng)),
                    rounded(random(k * n, &mut rng)),
                );
                let wide = |v: &[T]| -> Vec<f64> { v.iter().map(|x| x.as_f64()).collect() };
                let (a_wide, b_wide) = (wide(&a_data), wide(&b_data));
                let start = rounded(random(m * n, &mut rng));
                let (mut fast, mut slow) = (start.clone(), wide(&start));
                gemm(
                    view(&a_data, m, k, a_t),
                    view(&b_data, k, n, b_t),
                    &mut fast,
                    accumulate,
                    &mut workspace,
                );
                gemm_naive(
                    view(&a_wide, m, k, a_t),
                    view(&b_wide, k, n, b_t),
                    &mut slow,
                    accumulate,
                );
                let worst = fast
                    .iter()
                    .zip(&slow)
                    .map(|(x, y)| (x.as_f64() - y).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst < tolerance * k as f64,
                    "{path:?} {} {m}x{n}x{k} a_t={a_t} b_t={b_t} acc={accumulate}: {worst:e}",
                    T::DTYPE
                );
            }
        }
    }
}

#[test]
fn gemm_split_across_threads_matches_the_naive_product() {
    for path in paths() {
        split_across_threads(path);
    }
}

fn split_across_threads(path: KernelPath) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for threads in [2, 3] {
        let mut workspace = workspace_on(path);
        workspace.set_threads(threads);
        assert_eq!(workspace.threads(), threads);
        // Large enough to be split (over 2^20 multiply-adds), with ragged bands: split by
        // rows, or by columns where that balances the tiles better (128×256 on 2
        // threads, and the wide 40×1001).
        for &(m, n, k) in &[
            (128, 256, 784),
            (131, 37, 300),
            (256, 784, 128),
            (40, 1001, 64),
        ] {
            for accumulate in [false, true] {
                let (a_data, b_data) = (random(m * k, &mut rng), random(k * n, &mut rng));
                let a = MatRef::row_major(&a_data, m, k);
                let b = MatRef::row_major(&b_data, n, k).t();
                let start = random(m * n, &mut rng);
                let (mut fast, mut slow) = (start.clone(), start);
                gemm(a, b, &mut fast, accumulate, &mut workspace);
                gemm_naive(a, b, &mut slow, accumulate);
                let worst = fast
                    .iter()
                    .zip(&slow)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst < 1e-12 * k as f64,
                    "{path:?} {threads} threads {m}x{n}x{k}: {worst:e}"
                );
            }
        }
    }
}

#[test]
fn gemm_in_f32_agrees_with_f64_to_single_precision() {
    for path in paths() {
        f32_agrees_with_f64(path);
    }
}

#[test]
fn a_path_the_cpu_lacks_is_refused_and_the_default_is_available() {
    assert!(KernelPath::default_for_this_cpu().is_available());
    assert_eq!(
        GemmWorkspace::<f32>::new().kernel_path(),
        KernelPath::default_for_this_cpu()
    );
    for path in KernelPath::ALL {
        let mut workspace = GemmWorkspace::<f64>::new();
        let before = workspace.kernel_path();
        match workspace.set_kernel_path(path) {
            Ok(()) => assert!(path.is_available()),
            Err(e) => {
                assert!(!path.is_available());
                assert!(e.to_string().contains(&format!("{path:?}")), "{e}");
                assert_eq!(workspace.kernel_path(), before);
            }
        }
    }
}

fn f32_agrees_with_f64(path: KernelPath) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (m, n, k) = (64, 48, 200);
    let (a64, b64) = (random(m * k, &mut rng), random(k * n, &mut rng));
    let (a32, b32): (Vec<f32>, Vec<f32>) = (
        a64.iter().map(|&v| v as f32).collect(),
        b64.iter().map(|&v| v as f32).collect(),
    );
    let mut c32 = vec![0.0f32; m * n];
    gemm(
        MatRef::row_major(&a32, m, k),
        MatRef::row_major(&b32, k, n),
        &mut c32,
        false,
        &mut workspace_on(path),
    );
    let a64r: Vec<f64> = a32.iter().map(|&v| f64::from(v)).collect();
    let b64r: Vec<f64> = b32.iter().map(|&v| f64::from(v)).collect();
    let mut c64 = vec![0.0f64; m * n];
    gemm_naive(
        MatRef::row_major(&a64r, m, k),
        MatRef::row_major(&b64r, k, n),
        &mut c64,
        false,
    );
    let worst = c32
        .iter()
        .zip(&c64)
        .map(|(&x, &y)| (f64::from(x) - y).abs())
        .fold(0.0, f64::max);
    assert!(worst < 2e-5, "{path:?}: {worst:e}");
}

/// Distance in units in the last place between an f32 result and the exact value.
fn ulp_error(got: f32, exact: f64) -> f64 {
    let rounded = exact as f32;
    if got == rounded {
        return 0.0;
    }
    let ulp = f64::from(
        (rounded.abs().max(f32::MIN_POSITIVE)).next_up() - rounded.abs().max(f32::MIN_POSITIVE),
    );
    (f64::from(got) - exact).abs() / ulp
}

#[test]
fn fast_tanh_is_within_two_ulp_everywhere() {
    // Every 97th f32 between -12 and 12 (about 22 million values; every 389th in debug
    // builds, to keep `cargo test` quick), plus the boundaries.
    let stride = if cfg!(debug_assertions) { 389 } else { 97 };
    let mut inputs: Vec<f32> = Vec::new();
    let mut x = -12.0f32;
    while x < 12.0 {
        inputs.push(x);
        for _ in 0..stride {
            x = x.next_up();
        }
    }
    inputs.extend([
        0.0,
        -0.0,
        0.625,
        -0.625,
        0.625f32.next_down(),
        9.0,
        1e-30,
        -1e-30,
        100.0,
        -100.0,
        f32::MAX,
        f32::MIN,
    ]);
    let mut outputs = vec![0.0; inputs.len()];
    tanh_f32(&inputs, &mut outputs);
    let mut worst = (0.0, 0.0f32);
    for (&x, &y) in inputs.iter().zip(&outputs) {
        let error = ulp_error(y, f64::from(x).tanh());
        if error > worst.0 {
            worst = (error, x);
        }
    }
    println!("largest error {} ulp at x = {}", worst.0, worst.1);
    assert!(worst.0 <= 2.0, "{} ulp at x = {}", worst.0, worst.1);
    let mut nan = [0.0f32];
    tanh_f32(&[f32::NAN], &mut nan);
    assert!(nan[0].is_nan());
    // Every path this CPU has computes the same bits (no FMA contraction in any).
    for path in paths() {
        let mut on_path = vec![0.0; inputs.len()];
        tanh_f32_on(path, &inputs, &mut on_path).unwrap();
        let same = on_path
            .iter()
            .zip(&outputs)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{path:?} differs from the default path");
    }
}

/// The compiled Softplus kernels against the dynamic op (whose derivative is derived
/// independently, from the output) over the whole range, both sides of the threshold,
/// including inputs where `e^(β·x)` would overflow `f32`.
#[test]
fn softplus_kernels_agree_with_the_dynamic_op() {
    use nnscratch::kernels::{Write, softplus_backward, softplus_forward};
    let x =
        ndarray::Array2::from_shape_fn((6, 50), |(i, j)| -150.0 + 6.0 * (50 * i + j) as f64 / 5.0);
    let dy = x.mapv(|v| 1.0 + 0.01 * v);
    for (beta, threshold) in [(1.0, 20.0), (2.0, 1.0), (0.5, 100.0), (3.0, -2.0)] {
        let t = nnscratch::Tensor::parameter(x.clone().into_dyn());
        let y = t.softplus(beta, threshold);
        y.backward_with_grad(dy.clone().into_dyn()).unwrap();
        let mut y_kernel = ndarray::Array2::zeros(x.dim());
        softplus_forward(x.view(), beta, threshold, y_kernel.view_mut());
        let mut dx_kernel = ndarray::Array2::from_elem(x.dim(), 1.0);
        softplus_backward(
            x.view(),
            beta,
            threshold,
            dy.view(),
            dx_kernel.view_mut(),
            Write::Set,
        );
        let dx = t.grad().unwrap();
        for ((&a, &b), &x) in y_kernel.iter().zip(y.to_array().iter()).zip(x.iter()) {
            assert!(a.is_finite() && a >= 0.0_f64.min(x), "softplus({x}) = {a}");
            assert!(
                (a - b).abs() <= 1e-14 * a.abs().max(1e-300),
                "y at {x}: {a} vs {b}"
            );
        }
        for ((&a, &b), &x) in dx_kernel.iter().zip(dx.iter()).zip(x.iter()) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1e-300),
                "dx at {x} (beta {beta}, threshold {threshold}): {a} vs {b}"
            );
        }
        // Write::Add accumulates onto what is there.
        softplus_backward(
            x.view(),
            beta,
            threshold,
            dy.view(),
            dx_kernel.view_mut(),
            Write::Add,
        );
        for (&a, &b) in dx_kernel.iter().zip(dx.iter()) {
            assert!((a - 2.0 * b).abs() <= 1e-12 * a.abs().max(1e-300));
        }
    }
    // f32: no overflow far beyond `e^88`, with a threshold that does not cut it off.
    let x32 = ndarray::arr2(&[[-200.0f32, -90.0, 0.0, 90.0, 200.0]]);
    let mut y32 = ndarray::Array2::zeros((1, 5));
    softplus_forward(x32.view(), 1.0, 1000.0, y32.view_mut());
    assert_eq!(y32.row(0).to_vec()[3..], [90.0, 200.0]);
    assert!(y32.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!((y32[(0, 2)] - 2f32.ln()).abs() < 1e-7);
}

#[test]
fn a_view_is_read_in_place_when_its_elements_fill_memory() {
    let a = ndarray::Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64);
    let row_major = MatRef::of_view(&a.view()).expect("row-major");
    assert_eq!((row_major.row_stride, row_major.col_stride), (5, 1));
    let transposed = a.t();
    let t = MatRef::of_view(&transposed).expect("a transpose");
    assert_eq!((t.rows, t.cols, t.row_stride, t.col_stride), (5, 3, 1, 5));
    let column_major = a.t().as_standard_layout().into_owned().reversed_axes();
    let f = MatRef::of_view(&column_major.view()).expect("column-major");
    assert_eq!((f.row_stride, f.col_stride), (1, 3));
    for matrix in [row_major, f] {
        for i in 0..3 {
            for j in 0..5 {
                assert_eq!(
                    matrix.data[i * matrix.row_stride + j * matrix.col_stride],
                    a[[i, j]]
                );
            }
        }
    }
    // Gaps (every other column) or reversed axes: not one slice, so not read in place.
    let every_other = a.slice(ndarray::s![.., ..;2]);
    assert!(MatRef::of_view(&every_other).is_none());
    let reversed = a.slice(ndarray::s![..;-1, ..]);
    assert!(MatRef::of_view(&reversed).is_none());
}

/// The dynamic engine's `matmul` runs the same GEMM on its own per-thread workspace: on
/// one and two threads, for operands in every layout (a transposed tensor, a column-major
/// array, a sliced view copied first), it agrees with the naive product.
#[test]
fn dynamic_matmul_uses_the_gemm_on_any_thread_count_and_layout() {
    use nnscratch::Tensor;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (m, k, n) = (70, 300, 45);
    let a = ndarray::Array2::from_shape_vec((m, k), random(m * k, &mut rng)).unwrap();
    let b = ndarray::Array2::from_shape_vec((k, n), random(k * n, &mut rng)).unwrap();
    let mut expected = vec![0.0; m * n];
    gemm_naive(
        MatRef::row_major(a.as_slice().unwrap(), m, k),
        MatRef::row_major(b.as_slice().unwrap(), k, n),
        &mut expected,
        false,
    );
    let b_column_major = b.t().as_standard_layout().reversed_axes().to_owned();
    let b_wide = ndarray::concatenate![ndarray::Axis(1), b, b];
    let b_sliced = b_wide.slice(ndarray::s![.., ..n]).to_owned();
    for threads in [1, 2] {
        nnscratch::tensor::set_num_threads(threads);
        assert_eq!(nnscratch::tensor::num_threads(), threads);
        let a_tensor = Tensor::new(a.clone().into_dyn());
        let operands = [
            Tensor::new(b.clone().into_dyn()),
            Tensor::new(b_column_major.clone().into_dyn()),
            Tensor::new(b.t().to_owned().into_dyn()).t(),
            Tensor::new(b_sliced.clone().into_dyn()),
        ];
        for b_tensor in operands {
            let c = a_tensor.matmul(&b_tensor).unwrap();
            assert_eq!(c.shape(), vec![m, n]);
            for (got, want) in c.data().iter().zip(&expected) {
                assert!((got - want).abs() <= 1e-12 * k as f64, "{got} vs {want}");
            }
        }
    }
    nnscratch::tensor::set_num_threads(1);
}

/// The Linear kernels on every path, small layers (direct loops over rows) and large
/// (GEMM), against sums in f64: `Y = X·Wᵀ + b`, `dW = dYᵀ·X`, `db = Σ dY`, `dX = dY·W`,
/// set and added, with and without bias.
#[test]
fn linear_kernels_match_the_reference_on_every_path() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut matrix = |rows: usize, cols: usize| {
        Array2::from_shape_vec((rows, cols), random(rows * cols, &mut rng))
            .unwrap()
            .mapv(|v| v as f32)
    };
    let close = |got: f32, want: f64| (got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs());
    for path in paths() {
        let mut workspace = workspace_on::<f32>(path);
        for (batch, inputs, outputs) in [
            (1, 10, 30),
            (1, 30, 30),
            (1, 30, 1),
            (20, 1, 30),
            (20, 30, 1),
            (3, 17, 33),
            (2, 1, 1),
            (20, 30, 30),
            (64, 64, 64),
            // The GEMM adds the bias as it writes: a partial last panel (70 columns),
            // two slices of k on the AVX2 and portable paths (300 > KC 256), and bands
            // of C on two threads: rows for the first, columns (each band with its part
            // of the bias) for the second.
            (30, 300, 70),
            (150, 100, 80),
            (30, 120, 300),
        ] {
            workspace.set_threads(if inputs >= 100 { 2 } else { 1 });
            let (x, w, dy) = (
                matrix(batch, inputs),
                matrix(outputs, inputs),
                matrix(batch, outputs),
            );
            let b = Array1::from_iter((0..outputs).map(|o| o as f32 / 7.0 - 1.0));
            let case = format!("{path:?} batch {batch} in {inputs} out {outputs}");
            for bias in [true, false] {
                let mut y = matrix(batch, outputs);
                let b_view = bias.then(|| b.view());
                linear_forward(x.view(), w.view(), b_view, y.view_mut(), &mut workspace);
                for ((i, o), &got) in y.indexed_iter() {
                    let dot: f64 = (0..inputs).map(|k| (x[[i, k]] * w[[o, k]]) as f64).sum();
                    let want = dot + if bias { b[o] as f64 } else { 0.0 };
                    assert!(close(got, want), "forward {case} bias {bias} at {i},{o}");
                }
            }
            for write in [Write::Set, Write::Add] {
                let added = |before: f32| match write {
                    Write::Set => 0.0,
                    Write::Add => before as f64,
                };
                let (dw0, db0, dx0) = (
                    matrix(outputs, inputs),
                    matrix(1, outputs),
                    matrix(batch, inputs),
                );
                let (mut dw, mut db, mut dx) = (dw0.clone(), db0.row(0).to_owned(), dx0.clone());
                let db_view = Some(db.view_mut());
                linear_backward_params(
                    dy.view(),
                    x.view(),
                    dw.view_mut(),
                    db_view,
                    write,
                    &mut workspace,
                );
                linear_backward_input(dy.view(), w.view(), dx.view_mut(), write, &mut workspace);
                for ((o, k), &got) in dw.indexed_iter() {
                    let sum: f64 = (0..batch).map(|i| (dy[[i, o]] * x[[i, k]]) as f64).sum();
                    let want = sum + added(dw0[[o, k]]);
                    assert!(close(got, want), "dW {case} {write:?} at {o},{k}");
                }
                for (o, &got) in db.iter().enumerate() {
                    let sum: f64 = (0..batch).map(|i| dy[[i, o]] as f64).sum();
                    assert!(
                        close(got, sum + added(db0[[0, o]])),
                        "db {case} {write:?} at {o}"
                    );
                }
                for ((i, k), &got) in dx.indexed_iter() {
                    let sum: f64 = (0..outputs).map(|o| (dy[[i, o]] * w[[o, k]]) as f64).sum();
                    let want = sum + added(dx0[[i, k]]);
                    assert!(close(got, want), "dX {case} {write:?} at {i},{k}");
                }
            }
        }
    }
}

/// The value losses read row-major slices directly and anything else through `Zip`: a
/// transposed target (or output gradient) gives the same bits as its row-major copy.
#[test]
fn value_losses_read_any_layout_the_same() {
    use nnscratch::kernels::{Reduction, ValueLoss, value_loss, value_loss_backward};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let y = Array2::from_shape_vec((3, 4), random(12, &mut rng)).unwrap();
    let target_t = Array2::from_shape_vec((4, 3), random(12, &mut rng)).unwrap();
    let target = target_t.t().as_standard_layout().into_owned();
    for loss in [
        ValueLoss::Mse,
        ValueLoss::L1,
        ValueLoss::BceWithLogits,
        ValueLoss::SmoothL1 { beta: 0.5 },
    ] {
        for reduction in [Reduction::Mean, Reduction::Sum] {
            let direct = value_loss(loss, reduction, y.view(), target.view());
            let strided = value_loss(loss, reduction, y.view(), target_t.t());
            assert_eq!(direct.to_bits(), strided.to_bits(), "{loss:?}");
            let mut dy = Array2::zeros((3, 4));
            let mut dy_t = Array2::zeros((4, 3));
            let with_slices =
                value_loss_backward(loss, reduction, y.view(), target.view(), dy.view_mut());
            let with_zip = value_loss_backward(
                loss,
                reduction,
                y.view(),
                target_t.t(),
                dy_t.view_mut().reversed_axes(),
            );
            assert_eq!(with_slices.to_bits(), with_zip.to_bits(), "{loss:?}");
            assert_eq!(dy, dy_t.t(), "{loss:?}");
            assert_eq!(direct.to_bits(), with_slices.to_bits(), "{loss:?}");
        }
    }
}
