//! Weights in and out: safetensors with PyTorch `state_dict` names, both directions
//! checked against PyTorch through committed fixtures, and every bad file an error that
//! leaves the model unchanged.

mod common;

use std::path::PathBuf;

use ndarray::Array2;
use nnscratch::Tensor;
use nnscratch::io::{load_safetensors, save_safetensors};
use nnscratch::model;
use nnscratch::nn::{Linear, Module, ReLU, Sequential};
use nnscratch::optim::Parameters;
use rand::SeedableRng;
use serde::Deserialize;

model! {
    /// The function-approximation network, as in the example.
    pub struct SeedNet { input: 1, Linear(30), ReLU, Linear(30, 30), ReLU, Linear(1), loss: MSELoss, }
}

model! {
    pub struct SkipNet {
        x = input(3);
        h = Tanh(Linear(x, 5));
        out = Linear(h + Linear(x, 5), 2);
        loss = MSELoss(out);
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/../tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nnscratch-io-{}-{name}", std::process::id()))
}

/// The model saved as `tests/fixtures/from_nnscratch.safetensors`: seed 7.
fn nnscratch_model() -> SeedNet<f32> {
    SeedNet::new(&mut rand::rngs::StdRng::seed_from_u64(7))
}

#[derive(Deserialize)]
struct Interop {
    x: common::Encoded,
    pytorch_outputs: common::Encoded,
    nnscratch_outputs_in_pytorch: common::Encoded,
}

fn interop() -> Interop {
    let text =
        std::fs::read_to_string(fixture("interop.json")).expect("tests/fixtures/interop.json");
    serde_json::from_str(&text).expect("valid interop fixture")
}

/// Writes the Rust-side fixture; run once, then `generate.py` reads it in PyTorch:
/// `cargo test --test io -- --ignored write_nnscratch_fixture`.
#[test]
#[ignore = "rewrites a committed fixture; run by hand, then tests/fixtures/generate.py"]
fn write_nnscratch_fixture() {
    let path = fixture("from_nnscratch.safetensors");
    save_safetensors(&mut nnscratch_model(), &path).unwrap();
    // What was written reads back as the same model.
    let mut check = SeedNet::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(99));
    load_safetensors(&mut check, &path).unwrap();
    let mut original = nnscratch_model();
    for name in ["0.weight", "4.bias"] {
        assert_eq!(check.parameter(name), original.parameter(name));
    }
}

#[test]
fn saving_is_deterministic_and_matches_the_committed_fixture() {
    let path = temp_path("again.safetensors");
    save_safetensors(&mut nnscratch_model(), &path).unwrap();
    let committed = std::fs::read(fixture("from_nnscratch.safetensors")).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), committed);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_model_saved_here_gives_the_same_outputs_in_pytorch() {
    let expected = interop();
    let x: Array2<f32> = expected.x.array().into_dimensionality().unwrap();
    let mut net = nnscratch_model();
    let ours = net.forward(x.view()).unwrap().to_owned().into_dyn();
    let theirs = expected.nnscratch_outputs_in_pytorch.array::<f32>();
    assert!(
        common::relative_error(&ours, &theirs) < 1e-6,
        "{ours} vs {theirs}"
    );
}

#[test]
fn a_pytorch_checkpoint_loads_into_compiled_and_dynamic_models_in_f32_and_f64() {
    let expected = interop();
    for file in [
        "from_pytorch_f32.safetensors",
        "from_pytorch_f64.safetensors",
    ] {
        // Compiled, f32.
        let mut net = SeedNet::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(0));
        load_safetensors(&mut net, fixture(file)).unwrap();
        let x: Array2<f32> = expected.x.array().into_dimensionality().unwrap();
        let out = net.forward(x.view()).unwrap().to_owned().into_dyn();
        assert!(
            common::relative_error(&out, &expected.pytorch_outputs.array()) < 1e-6,
            "{file} f32"
        );
        // Compiled, f64.
        let mut net = SeedNet::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(0));
        load_safetensors(&mut net, fixture(file)).unwrap();
        let x: Array2<f64> = expected.x.array().into_dimensionality().unwrap();
        let out = net.forward(x.view()).unwrap().to_owned().into_dyn();
        assert!(
            common::relative_error(&out, &expected.pytorch_outputs.array()) < 1e-6,
            "{file} f64"
        );
        // Dynamic Sequential with the same state_dict names.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut seq = Sequential::<f64>::new(
            [Linear(1, 30), ReLU, Linear(30, 30), ReLU, Linear(30, 1)],
            &mut rng,
        )
        .unwrap();
        load_safetensors(&mut seq, fixture(file)).unwrap();
        let out = seq
            .forward_no_grad(&Tensor::new(x.into_dyn()))
            .unwrap()
            .to_array();
        assert!(
            common::relative_error(&out, &expected.pytorch_outputs.array()) < 1e-6,
            "{file} dynamic"
        );
    }
}

#[test]
fn compiled_and_dynamic_models_round_trip_through_a_file() {
    let path = temp_path("roundtrip.safetensors");
    let mut a = SkipNet::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(1));
    save_safetensors(&mut a, &path).unwrap();
    let mut b = SkipNet::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(2));
    load_safetensors(&mut b, &path).unwrap();
    let names: Vec<String> = a.parameter_shapes().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"h.weight".to_string()) && names.contains(&"out.1.bias".to_string()));
    for name in &names {
        assert_eq!(a.parameter(name), b.parameter(name), "{name}");
    }
    // The compiled model's dynamic twin saves the same names and values.
    let mut twin = a.to_dynamic();
    let twin_path = temp_path("twin.safetensors");
    save_safetensors(&mut twin, &twin_path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&twin_path).unwrap()
    );
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(twin_path).unwrap();
}

/// Loads `bytes` into a fresh SeedNet and checks the error and that nothing changed.
fn load_fails(bytes: &[u8], expected: &[&str]) {
    let path = temp_path("bad.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let mut net = nnscratch_model();
    let before = net.parameter("0.weight");
    let message = load_safetensors(&mut net, &path).unwrap_err().to_string();
    for part in expected {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
    assert_eq!(net.parameter("0.weight"), before, "the model is unchanged");
    std::fs::remove_file(path).unwrap();
}

/// A safetensors file with the given (name, dtype, shape, bytes) tensors.
fn file_with(tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                *n,
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn good_tensors() -> Vec<(&'static str, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    let f32s = |n: usize| vec![0u8; 4 * n];
    vec![
        ("0.weight", safetensors::Dtype::F32, vec![30, 1], f32s(30)),
        ("0.bias", safetensors::Dtype::F32, vec![30], f32s(30)),
        ("2.weight", safetensors::Dtype::F32, vec![30, 30], f32s(900)),
        ("2.bias", safetensors::Dtype::F32, vec![30], f32s(30)),
        ("4.weight", safetensors::Dtype::F32, vec![1, 30], f32s(30)),
        ("4.bias", safetensors::Dtype::F32, vec![1], f32s(1)),
    ]
}

#[test]
fn bad_files_are_errors_naming_the_key_and_leave_the_model_unchanged() {
    // The well-formed file loads (so the failures below are about what they change).
    let path = temp_path("good.safetensors");
    std::fs::write(&path, file_with(&good_tensors())).unwrap();
    load_safetensors(&mut nnscratch_model(), &path).unwrap();
    std::fs::remove_file(path).unwrap();

    let mut missing = good_tensors();
    missing.remove(3);
    load_fails(&file_with(&missing), &["missing key `2.bias`", "[30]"]);

    let mut extra = good_tensors();
    extra.push(("6.weight", safetensors::Dtype::F32, vec![1], vec![0; 4]));
    load_fails(&file_with(&extra), &["unexpected key `6.weight`"]);

    let mut shape = good_tensors();
    shape[2] = (
        "2.weight",
        safetensors::Dtype::F32,
        vec![30, 29],
        vec![0; 4 * 870],
    );
    load_fails(
        &file_with(&shape),
        &[
            "key `2.weight`",
            "expected shape [30, 30]",
            "found [30, 29]",
        ],
    );

    let mut dtype = good_tensors();
    dtype[5] = ("4.bias", safetensors::Dtype::I64, vec![1], vec![0; 8]);
    load_fails(&file_with(&dtype), &["key `4.bias`", "I64", "F32 or F64"]);

    load_fails(
        b"definitely not a safetensors file",
        &["not a valid safetensors file"],
    );
    let good = file_with(&good_tensors());
    load_fails(&good[..good.len() / 2], &["not a valid safetensors file"]);

    let message = load_safetensors(&mut nnscratch_model(), temp_path("nope.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("nope.safetensors"), "{message}");
}

#[test]
fn saving_over_a_file_replaces_it_whole_and_leaves_no_temporary() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, b"old").unwrap();
    save_safetensors(&mut nnscratch_model(), &path).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names, ["model.safetensors"]);
    let mut check = SeedNet::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(9));
    load_safetensors(&mut check, &path).unwrap();
    assert_eq!(
        check.parameter("2.weight"),
        nnscratch_model().parameter("2.weight")
    );
    // A save into a directory that does not exist fails cleanly.
    let error = save_safetensors(
        &mut nnscratch_model(),
        dir.join("missing/model.safetensors"),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("missing/model.safetensors"),
        "{error}"
    );
}
