//! Regression tests for the holes an outside attack found: bad input is an `Err` naming
//! what was wrong, never a panic or an abort; a failed step or a killed save loses
//! nothing. Each test is named for the attack it repels.

use std::path::Path;

use ndarray::{Array2, ArrayView2};
use nnscratch::io::{load_safetensors, save_safetensors, write_atomic};
use nnscratch::kernels::{GemmWorkspace, MatRef, gemm, try_gemm};
use nnscratch::nn::{Linear, Module, Sequential};
use nnscratch::optim::{Adam, Optimizer, Parameters, Sgd};
use nnscratch::{Error, Tensor, data, graph, model};
use rand::SeedableRng;

model! {
    /// A small regressor used throughout.
    struct Small {
        input: 3,
        Linear(4), Tanh,
        Linear(2),
        loss: MSELoss,
    }
}

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

/// A fresh directory under the system's temporary directory, removed when dropped.
fn scratch_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nnscratch-robustness-{name}-"))
        .tempdir()
        .unwrap()
}

/// The names of the files in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn message(error: Error) -> String {
    error.to_string()
}

// ---------------------------------------------------------------- pictures

#[test]
fn an_empty_or_unparsable_dot_graph_is_an_error_not_a_panic() {
    for dot in [
        "digraph {}",
        "graph {}",
        "",
        "digraph { a -> }",
        "digraph { a [label=\"x }",
    ] {
        let error = message(graph::dot_to_svg(dot).unwrap_err());
        assert!(error.contains("dot_to_svg"), "{dot:?}: {error}");
    }
    let error = message(graph::dot_to_svg("digraph {}").unwrap_err());
    assert!(error.contains("no nodes"), "{error}");
}

#[test]
fn a_nul_byte_in_a_label_survives_to_dot_and_svg() {
    let x =
        Tensor::<f64>::parameter(ndarray::arr1(&[1.0]).into_dyn()).with_label("bad\0name\u{7}\"\\");
    let y = x.tanh().sum();
    y.backward().unwrap();
    let dot = graph::to_dot(&graph::to_petgraph(&y));
    assert!(!dot.contains('\0'));
    assert!(dot.contains("\\\\u{0000}"), "{dot}");
    let svg = graph::dot_to_svg(&dot).unwrap();
    assert!(svg.contains("u{0000}"));
    let scratch = scratch_dir("nul");
    let dir = scratch.path();
    graph::save(&y, dir.join("picture")).unwrap();
}

#[test]
fn a_large_graph_is_drawn_by_the_layered_layout_with_every_node() {
    let mut y = Tensor::<f64>::parameter(ndarray::arr1(&[0.5]).into_dyn()).with_label("x");
    for _ in 0..1_000 {
        y = y.tanh();
    }
    let picture = graph::to_petgraph(&y);
    assert!(picture.node_count() > graph::LARGE_GRAPH_NODES);
    let svg = graph::to_svg(&picture).unwrap();
    assert_eq!(svg.matches("<rect").count(), picture.node_count());
    assert_eq!(svg.matches("<line").count(), picture.edge_count());
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}

// ---------------------------------------------------------------- compiled models' parameters

#[test]
fn set_parameter_checks_the_shape_and_accepts_any_layout() {
    let mut model = Small::<f64>::new(&mut rng());
    let wrong = Array2::<f64>::zeros((3, 4));
    let error = message(
        model
            .set_parameter("0.weight", wrong.view().into_dyn())
            .unwrap_err(),
    );
    assert!(
        error.contains("[4, 3]") && error.contains("[3, 4]"),
        "{error}"
    );
    let error = message(
        model
            .set_parameter("9.weight", wrong.view().into_dyn())
            .unwrap_err(),
    );
    assert!(
        error.contains("0.weight") && error.contains("9.weight"),
        "{error}"
    );

    // A column-major value of the right shape: stored row-major, forward still right.
    let value = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64 * 0.1);
    let transposed = value.t(); // [4, 3], not row-major
    model
        .set_parameter("0.weight", transposed.into_dyn())
        .unwrap();
    assert_eq!(
        model.parameter("0.weight").unwrap(),
        transposed.to_owned().into_dyn()
    );
    let x = Array2::from_elem((2, 3), 1.0);
    let compiled = model.forward(x.view()).unwrap().to_owned();
    let twin = model.to_dynamic();
    let dynamic = twin
        .forward(&Tensor::new(x.clone().into_dyn()))
        .unwrap()
        .to_array();
    let dynamic: ArrayView2<'_, f64> = dynamic.view().into_dimensionality().unwrap();
    assert!((&compiled - &dynamic).iter().all(|d| d.abs() < 1e-12));
}

// ---------------------------------------------------------------- sizes

#[test]
fn sizes_too_large_to_allocate_are_errors_with_the_size() {
    let error = message(Linear::<f32>::new(usize::MAX, 2, &mut rng()).err().unwrap());
    assert!(
        error.contains("cannot allocate") && error.contains("overflow"),
        "{error}"
    );

    let error = message(
        Sequential::<f32>::new([Linear(3, 1 << 40)], &mut rng())
            .err()
            .unwrap(),
    );
    assert!(
        error.contains("cannot allocate") && error.contains("GiB"),
        "{error}"
    );

    let error = message(Tensor::<f32>::try_zeros(&[usize::MAX, 3]).unwrap_err());
    assert!(error.contains("Tensor::zeros"), "{error}");

    // A broadcast view of 2^33 rows costs nothing to make; a compiled forward on it
    // would need 2^33 · 4 values of workspace.
    let mut model = Small::<f32>::new(&mut rng());
    let row = ndarray::Array1::<f32>::zeros(3);
    let huge = row.broadcast((1usize << 33, 3)).unwrap();
    let error = message(model.forward(huge).unwrap_err());
    assert!(
        error.contains("Small") && error.contains("cannot allocate"),
        "{error}"
    );
    // The model still works afterwards.
    let x = Array2::<f32>::zeros((2, 3));
    assert_eq!(model.forward(x.view()).unwrap().dim(), (2, 2));
}

#[test]
fn data_helpers_reject_bad_indices_and_widths() {
    let x = Array2::<f32>::zeros((4, 2));
    let mut buffer = Array2::zeros((0, 0));
    let error = message(data::gather_rows(x.view(), &[0, 9], &mut buffer).unwrap_err());
    assert!(
        error.contains("gather_rows") && error.contains('9') && error.contains("below 4"),
        "{error}"
    );
    let mut labels = Vec::new();
    let error = message(data::gather_labels(&[1, 2], &[5], &mut labels).unwrap_err());
    assert!(
        error.contains("gather_labels") && error.contains("below 2"),
        "{error}"
    );
    let set = data::Dataset {
        inputs: x.clone(),
        labels: vec![0, 1, 2, 3],
    };
    assert!(message(set.select(&[4]).unwrap_err()).contains("below 4"));
    let scaler = data::Standardize::fit(x.view());
    let error = message(scaler.transform(Array2::zeros((1, 5)).view()).unwrap_err());
    assert!(
        error.contains("[rows, 2]") && error.contains("[1, 5]"),
        "{error}"
    );
}

#[test]
fn gemm_with_inconsistent_sizes_fails_before_any_thread_and_the_workspace_survives() {
    let mut workspace = GemmWorkspace::<f32>::new();
    workspace.set_threads(2);
    let (m, k, n) = (256, 128, 256);
    let a = vec![1.0f32; m * k];
    let short_b = vec![1.0f32; 10]; // claims k × n
    let mut c = vec![0.0f32; m * n];
    let error = try_gemm(
        MatRef::row_major(&a, m, k),
        MatRef::row_major(&short_b, k, n),
        &mut c,
        false,
        &mut workspace,
    )
    .unwrap_err();
    assert!(message(error).contains("B (128 × 256"));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gemm(
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&short_b, k, n),
            &mut c,
            false,
            &mut workspace,
        )
    }));
    assert!(panicked.is_err(), "gemm's documented precondition panics");
    // The same workspace, two threads, still computes a correct product.
    let b = vec![0.5f32; k * n];
    try_gemm(
        MatRef::row_major(&a, m, k),
        MatRef::row_major(&b, k, n),
        &mut c,
        false,
        &mut workspace,
    )
    .unwrap();
    assert!(c.iter().all(|&v| v == 64.0));
}

// ---------------------------------------------------------------- failed steps

#[test]
fn a_non_finite_loss_leaves_nothing_for_the_optimizer_to_apply() {
    let mut model = Small::<f64>::new(&mut rng());
    let before = model.parameter("0.weight").unwrap();
    let x = Array2::from_elem((2, 3), f64::NAN);
    let target = Array2::zeros((2, 2));
    assert!(message(model.loss_backward(x.view(), target.view()).unwrap_err()).contains("NaN"));
    assert!(
        model.gradient("0.weight").is_none(),
        "no gradients after a failed step"
    );
    Sgd::new(0.1).step(&mut model).unwrap();
    assert_eq!(model.parameter("0.weight").unwrap(), before);
}

#[test]
fn optimizers_refuse_non_finite_gradients_and_change_no_weight() {
    let mut rng = rng();
    let model = Sequential::<f64>::new([Linear(2, 3), Linear(3, 1)], &mut rng).unwrap();
    let x = Tensor::from([[1.0, 2.0]]);
    let loss = Module::forward(&model, &x).unwrap().sum();
    loss.backward().unwrap();
    let mut params = model.named_parameters();
    // Poison one gradient element of the second layer.
    params[2].1.grad_mut().as_mut().unwrap()[[0, 1]] = f64::INFINITY;
    let before: Vec<_> = params.iter().map(|(_, t)| t.to_array()).collect();
    for step in [
        Sgd::new(0.1).step(params.as_mut_slice()),
        Adam::new(0.1).step(params.as_mut_slice()),
    ] {
        let error = message(step.unwrap_err());
        assert!(
            error.contains("`1.weight`") && error.contains("element 1") && error.contains("inf"),
            "{error}"
        );
    }
    let after: Vec<_> = params.iter().map(|(_, t)| t.to_array()).collect();
    assert_eq!(before, after);
}

/// A compiled model's gradients are checked in one pass over its flat slice; a
/// non-finite one is still reported by name and element, and no weight changes, whether
/// the optimizer has seen the model before or not.
#[test]
fn optimizers_refuse_a_compiled_models_non_finite_gradient_by_name() {
    let mut rng = rng();
    for seen_before in [false, true] {
        for adam in [false, true] {
            let mut model = Small::<f32>::new(&mut rng);
            let mut sgd = Sgd::new(0.1);
            let mut adam_optimizer = Adam::new(0.1);
            let mut step = |model: &mut Small<f32>| match adam {
                true => adam_optimizer.step(model),
                false => sgd.step(model),
            };
            if seen_before {
                let x = Array2::from_elem((1, 3), 0.5f32);
                model
                    .loss_backward(x.view(), Array2::zeros((1, 2)).view())
                    .unwrap();
                step(&mut model).unwrap();
            }
            // x[0] = 1e38 times a weight of 1e-38 keeps the forward pass (and the loss)
            // finite, but its weight's gradient, about dH·1e38, overflows.
            let mut weight = model.parameter("0.weight").unwrap();
            weight.index_axis_mut(ndarray::Axis(1), 0).fill(1e-38);
            model.set_parameter("0.weight", weight.view()).unwrap();
            let x = Array2::from_shape_vec((1, 3), vec![1e38f32, 0.5, -0.5]).unwrap();
            let target = Array2::from_elem((1, 2), -1e3f32);
            let loss = model.loss_backward(x.view(), target.view()).unwrap();
            assert!(loss.is_finite());
            let before: Vec<_> = ["0.weight", "0.bias", "2.weight", "2.bias"]
                .map(|name| model.parameter(name).unwrap())
                .into();
            let error = message(step(&mut model).unwrap_err());
            assert!(
                error.contains("`0.weight`") && error.contains("inf"),
                "{error}"
            );
            let after: Vec<_> = ["0.weight", "0.bias", "2.weight", "2.bias"]
                .map(|name| model.parameter(name).unwrap())
                .into();
            assert_eq!(before, after, "seen before: {seen_before}, adam: {adam}");
        }
    }
}

// ---------------------------------------------------------------- saves

fn saved_model(seed: u64) -> Small<f32> {
    Small::new(&mut rand::rngs::StdRng::seed_from_u64(seed))
}

#[test]
fn saving_to_an_empty_path_or_a_directory_says_so() {
    let error = message(save_safetensors(&mut saved_model(0), "").unwrap_err());
    assert!(error.contains("empty path"), "{error}");
    let scratch = scratch_dir("dir-target");
    let dir = scratch.path();
    let error = message(save_safetensors(&mut saved_model(0), dir).unwrap_err());
    assert!(error.contains("is a directory"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_save_keeps_permissions_and_writes_through_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = scratch_dir("perms");
    let dir = scratch.path();
    let real = dir.join("real.safetensors");
    std::fs::write(&real, b"old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink("real.safetensors", &link).unwrap();
    save_safetensors(&mut saved_model(1), &link).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut check = saved_model(2);
    load_safetensors(&mut check, &real).unwrap();
    assert_eq!(
        check.parameter("0.weight"),
        saved_model(1).parameter("0.weight")
    );
    let names = file_names(dir);
    assert_eq!(names.len(), 2, "no temporary left: {names:?}");
}

#[test]
fn concurrent_saves_to_one_path_never_show_a_reader_half_a_file() {
    let scratch = scratch_dir("threads");
    let dir = scratch.path();
    let path = dir.join("shared.safetensors");
    save_safetensors(&mut saved_model(0), &path).unwrap();
    let seeds: Vec<u64> = (0..6).collect();
    let expected: Vec<_> = seeds
        .iter()
        .map(|&s| saved_model(s).parameter("2.bias").unwrap())
        .collect();
    std::thread::scope(|scope| {
        for &seed in &seeds {
            let path = path.clone();
            scope.spawn(move || {
                let mut model = saved_model(seed);
                for _ in 0..25 {
                    save_safetensors(&mut model, &path).unwrap();
                }
            });
        }
        let path = path.clone();
        let expected = expected.clone();
        scope.spawn(move || {
            for _ in 0..100 {
                let mut reader = saved_model(99);
                load_safetensors(&mut reader, &path).unwrap();
                assert!(expected.contains(&reader.parameter("2.bias").unwrap()));
            }
        });
    });
    let names = file_names(dir);
    assert_eq!(names.len(), 1, "only the target remains: {names:?}");
}

/// With `NNSCRATCH_SAVE_LOOP=PATH` (set by the kill test, which runs this binary
/// again), saves to PATH forever, until killed. Otherwise it checks a few plain saves.
#[test]
fn save_loop_child() {
    if let Ok(path) = std::env::var("NNSCRATCH_SAVE_LOOP") {
        let mut model = saved_model(3);
        // A large payload makes a kill during the write likely.
        let big = vec![7u8; 8 << 20];
        loop {
            write_atomic(Path::new(&path).with_extension("bin"), &big).unwrap();
            save_safetensors(&mut model, &path).unwrap();
        }
    }
    let scratch = scratch_dir("child");
    let dir = scratch.path();
    for seed in 0..3 {
        save_safetensors(&mut saved_model(seed), dir.join("m.safetensors")).unwrap();
    }
    let mut check = saved_model(9);
    load_safetensors(&mut check, dir.join("m.safetensors")).unwrap();
    assert_eq!(
        check.parameter("0.bias"),
        saved_model(2).parameter("0.bias")
    );
}

#[test]
fn a_save_killed_midway_leaves_the_old_file_and_no_temporary_for_long() {
    let scratch = scratch_dir("kill");
    let dir = scratch.path();
    let path = dir.join("model.safetensors");
    save_safetensors(&mut saved_model(3), &path).unwrap();
    let big = dir.join("model.bin");
    for round in 0..5 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "save_loop_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NNSCRATCH_SAVE_LOOP", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + 40 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever the moment of the kill, the target is a complete, valid file.
        let mut check = saved_model(0);
        load_safetensors(&mut check, &path).unwrap();
        assert_eq!(
            check.parameter("0.weight"),
            saved_model(3).parameter("0.weight")
        );
        if big.exists() {
            assert_eq!(std::fs::metadata(&big).unwrap().len(), 8 << 20);
        }
    }
    assert!(big.exists(), "the child process did run its save loop");
    // The next save removes what the killed processes left behind.
    save_safetensors(&mut saved_model(3), &path).unwrap();
    write_atomic(&big, b"done").unwrap();
    let names = file_names(dir);
    assert_eq!(names, ["model.bin", "model.safetensors"]);
}

// ---------------------------------------------------------------- readers

#[test]
fn a_gzip_idx_whose_header_is_small_is_not_decompressed_whole() {
    use std::io::Write;
    // Header [1, 1] then 64 MiB of zeros: compresses to about 64 KiB.
    let mut raw = vec![0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1];
    raw.resize(raw.len() + (64 << 20), 0);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&raw).unwrap();
    let gz = encoder.finish().unwrap();
    let start = std::time::Instant::now();
    let error = message(data::idx::parse(&gz, Path::new("bomb.gz")).unwrap_err());
    assert!(
        error.contains("bomb.gz") && error.contains("does not match"),
        "{error}"
    );
    // Stopping after the header's 1 byte takes a moment, not a 64 MiB inflate; the
    // bound is generous for a slow debug build.
    assert!(start.elapsed().as_secs_f64() < 5.0);

    // A header claiming far more than the file can hold fails before reading the data.
    let claim = [0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff];
    let error = message(data::idx::parse(&claim, Path::new("claim")).unwrap_err());
    assert!(error.contains("data length 0 does not match"), "{error}");
}

#[cfg(unix)]
#[test]
fn devices_are_refused_by_every_reader() {
    let error = message(data::idx::read("/dev/zero").unwrap_err());
    assert!(error.contains("not a regular file"), "{error}");
    let error = message(load_safetensors(&mut saved_model(0), "/dev/zero").unwrap_err());
    assert!(error.contains("not a regular file"), "{error}");
}

#[test]
fn the_digits_csv_parser_checks_ranges() {
    let row = |label: &str, pixel: &str| {
        let mut fields = vec!["0"; 63];
        fields.push(pixel);
        fields.push(label);
        fields.join(",")
    };
    assert!(data::parse_digits_csv(&row("3", "16")).is_ok());
    let error = message(data::parse_digits_csv(&row("10", "1")).unwrap_err());
    assert!(
        error.contains("line 1") && error.contains("label `10`"),
        "{error}"
    );
    let error = message(data::parse_digits_csv(&row("1", "NaN")).unwrap_err());
    assert!(error.contains("`NaN` is not a pixel value"), "{error}");
}
