//! Every public loader and parser, fed 10,000 random and mutated inputs each per run:
//! whatever the bytes, the answer is `Ok` or an `Err`, never a panic (proptest reports a
//! panic as a failure, with the smallest input that causes it). Mutations start from a
//! valid file, so the inputs reach deep into each parser, not only its first check.

use std::path::Path;

use nnscratch::nn::{Linear, Module, ReLU, Sequential};
use nnscratch::optim::Parameters;
use nnscratch::{data, graph, io, model};
use proptest::prelude::*;
use rand::SeedableRng;

model! {
    struct Fuzzed {
        input: 3,
        Linear(4), ReLU,
        Linear(2),
        loss: MSELoss,
    }
}

const CASES: u32 = 10_000;

/// A valid input, mutated: some bytes overwritten, then maybe cut or extended.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    (
        prop::collection::vec((0..len, any::<u8>()), 0..6),
        prop_oneof![Just(None), (0..len + 8).prop_map(Some)],
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(move |(writes, cut, tail)| {
            let mut bytes = seed.clone();
            for (at, value) in writes {
                if let Some(b) = bytes.get_mut(at) {
                    *b = value;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            bytes.extend(tail);
            bytes
        })
}

/// Random bytes or a mutation of `seed`, half and half.
fn inputs(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..256), mutated(seed)]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn valid_safetensors() -> Vec<u8> {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("seed.safetensors");
    let mut model = Fuzzed::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(0));
    io::save_safetensors(&mut model, &path).unwrap();
    std::fs::read(&path).unwrap()
}

fn valid_idx(gzip: bool) -> Vec<u8> {
    let mut raw = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    raw.extend((0..18).map(|i| i * 13));
    if !gzip {
        return raw;
    }
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw).unwrap();
    encoder.finish().unwrap()
}

fn valid_csv() -> Vec<u8> {
    let row = |label: usize| {
        let mut fields: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
        fields.push(label.to_string());
        fields.join(",")
    };
    format!("{}\n{}\n", row(3), row(7)).into_bytes()
}

fn valid_dot() -> Vec<u8> {
    b"digraph g {\n  node [shape=box];\n  a [label=\"x\\nvalue 1\"];\n  b [label=\"tanh\"];\n  a -> b [label=\"d/dx\"];\n  b -> c;\n}\n"
        .to_vec()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn safetensors_into_a_compiled_model_never_panics(bytes in inputs(valid_safetensors())) {
        let mut model = Fuzzed::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(1));
        let before = model.parameter("0.weight");
        if io::load_safetensors_bytes(&mut model, &bytes, "fuzz.safetensors").is_err() {
            prop_assert_eq!(model.parameter("0.weight"), before, "a failed load changes nothing");
        }
    }

    #[test]
    fn safetensors_into_a_dynamic_model_never_panics(bytes in inputs(valid_safetensors())) {
        let model = Sequential::<f64>::new(
            [Linear(3, 4), ReLU, Linear(4, 2)],
            &mut rand::rngs::StdRng::seed_from_u64(1),
        ).unwrap();
        let mut params = model.named_parameters();
        let _ = io::load_safetensors_bytes(params.as_mut_slice(), &bytes, "fuzz.safetensors");
    }

    #[test]
    fn plain_idx_never_panics(bytes in inputs(valid_idx(false))) {
        if let Ok(idx) = data::idx::parse(&bytes, Path::new("fuzz.idx")) {
            prop_assert_eq!(idx.dims.iter().product::<usize>(), idx.data.len());
        }
    }

    #[test]
    fn gzip_idx_never_panics(bytes in inputs(valid_idx(true))) {
        if let Ok(idx) = data::idx::parse(&bytes, Path::new("fuzz.idx.gz")) {
            prop_assert_eq!(idx.dims.iter().product::<usize>(), idx.data.len());
        }
    }

    #[test]
    fn digits_csv_never_panics(bytes in inputs(valid_csv())) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(set) = data::parse_digits_csv(&text) {
            prop_assert_eq!(set.inputs.nrows(), set.labels.len());
            prop_assert!(set.labels.iter().all(|&l| l < 10));
        }
    }

    #[test]
    fn dot_to_svg_never_panics(bytes in inputs(valid_dot())) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(svg) = graph::dot_to_svg(&text) {
            prop_assert!(svg.contains("<svg"));
        }
    }
}

#[test]
fn the_seed_inputs_are_valid() {
    // The mutations start from files the loaders accept, so they test deep paths.
    let mut model = Fuzzed::<f32>::new(&mut rand::rngs::StdRng::seed_from_u64(1));
    io::load_safetensors_bytes(&mut model, &valid_safetensors(), "seed").unwrap();
    assert_eq!(
        data::idx::parse(&valid_idx(false), Path::new("seed"))
            .unwrap()
            .dims,
        [2, 3, 3]
    );
    assert_eq!(
        data::idx::parse(&valid_idx(true), Path::new("seed"))
            .unwrap()
            .data
            .len(),
        18
    );
    assert_eq!(
        data::parse_digits_csv(std::str::from_utf8(&valid_csv()).unwrap())
            .unwrap()
            .len(),
        2
    );
    assert!(graph::dot_to_svg(std::str::from_utf8(&valid_dot()).unwrap()).is_ok());
}
