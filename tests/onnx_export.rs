//! ONNX export, checked by a real engine: every exported model is loaded by tract
//! (`tract-onnx`, pure Rust) and run on random batches of several sizes, and its outputs
//! must match the model's own forward pass in evaluation mode.
//!
//! Between them the models below use every layer kind and graph operation the exporter
//! knows ([`onnx::LAYER_KINDS`]); `every_layer_kind_is_exported_and_checked` fails when a
//! kind is added without a model here that exports it.
//!
//! onnxruntime and `onnx.checker` check the same files in the fixture script
//! (`tests/fixtures/generate.py`); `onnxruntime_outputs_match` reads what they found.

use std::collections::BTreeSet;
use std::sync::Arc;

use ndarray::{Array2, ArrayD, IxDyn};
use nnscratch::compiled::{CompiledModel, Target};
use nnscratch::nn::{
    AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout, ELU, Flatten, GELU, Identity,
    LayerNorm, LayerSpec, LeakyReLU, Linear, LogSoftmax, MaxPool2d, Module, ReLU, Sequential, SiLU,
    Sigmoid, Softmax, Softplus, Tanh,
};
use nnscratch::onnx::{self, proto::ModelProto};
use nnscratch::{Float, Tensor, model};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tract_onnx::prelude::{
    Framework, InferenceModelExt, IntoRunnable, IntoTValue, Tensor as TractTensor,
    TypedRunnableModel, tvec,
};

model! {
    /// The graph form with every operator: `+ - *`, constant factors, `cat`, a shared
    /// Linear used twice, BatchNorm1d, LayerNorm and Dropout on the way.
    pub struct EveryOperator {
        x = input(5);
        a = Tanh(Linear(x, 6));
        b = Sigmoid(Linear(x, 6, bias = false));
        d = a - 0.5 * b;
        e = -d / 4.0;
        m = (a + b) * e;
        enc = Linear(6, 6);
        s = enc(ReLU(enc(m)));
        n = LayerNorm(BatchNorm1d(cat(s, d), momentum = 0.3));
        out = Linear(Dropout(n, 0.25), 3);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    /// The sequence form of an MLP with normalisation, dropout and smooth activations.
    pub struct NormMlp {
        input: 6,
        Linear(16), BatchNorm1d, GELU, Dropout(0.1),
        Linear(16), LayerNorm, SiLU, Dropout(0.1),
        Linear(8), BatchNorm1d(affine = false, track_running_stats = false), Softplus,
        Linear(8), LayerNorm(elementwise_affine = false), ELU(alpha = 0.5),
        Linear(2),
        loss: HuberLoss(delta = 0.5),
    }
}

model! {
    /// A CNN in the sequence form: convolutions with stride, padding, groups and
    /// dilation, BatchNorm2d, Dropout, both poolings.
    pub struct ExportCnn {
        input: [2, 9, 9],
        Conv2d(4, 3, stride = 2, padding = 1, bias = false), BatchNorm2d, ReLU, Dropout(0.2),
        MaxPool2d(2, padding = 1),
        AvgPool2d(2, stride = 1, padding = 1),
        Conv2d(4, 3, padding = 1, dilation = 2, groups = 2), LeakyReLU(0.1),
        Flatten,
        Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// The graph form of a CNN: a residual block and two branches joined by `cat`.
    pub struct BranchCnn {
        x = input([2, 6, 6]);
        h = ReLU(Conv2d(x, 2, 3, padding = 1));
        r = Conv2d(h, 2, 3, padding = 1) + x;
        a = Conv2d(r, 2, 3, padding = 1);
        b = Conv2d(r, 3, 1);
        c = MaxPool2d(Tanh(cat(a, b)), 2);
        out = Linear(Flatten(c), 4);
        loss = MSELoss(out);
    }
}

model! {
    /// Conv1d with stride, padding and dilation, ending in LogSoftmax.
    pub struct ExportConv1d {
        input: [2, 12],
        Conv1d(4, 3, stride = 2, padding = 1), Sigmoid,
        Conv1d(3, 3, dilation = 2),
        Flatten,
        Linear(4), LogSoftmax,
        loss: NLLLoss,
    }
}

/// A dynamic `Sequential` with its name and input shape per sample.
struct SequentialCase {
    name: &'static str,
    specs: Vec<LayerSpec>,
    input_shape: Vec<usize>,
}

fn sequential_cases() -> Vec<SequentialCase> {
    vec![
        SequentialCase {
            name: "EveryActivation",
            specs: vec![
                Linear(5, 8),
                ReLU,
                Linear(8, 8),
                LeakyReLU(0.2),
                Sigmoid,
                Linear(8, 8).without_bias(),
                Tanh,
                Linear(8, 8),
                Softplus(1.0, 20.0),
                Linear(8, 8),
                Softplus(2.0, 1.0),
                GELU("none"),
                Linear(8, 8),
                GELU("tanh"),
                SiLU,
                ELU(0.7),
                Identity,
                Linear(8, 4),
                Softmax(-1),
            ],
            input_shape: vec![5],
        },
        SequentialCase {
            name: "Norms",
            specs: vec![
                Linear(5, 8),
                BatchNorm1d(8),
                Tanh,
                Dropout(0.3),
                Linear(8, 8),
                LayerNorm(8),
                LayerSpec::BatchNorm1d {
                    num_features: 8,
                    eps: 1e-3,
                    momentum: 0.1,
                    affine: false,
                    track_running_stats: false,
                },
                LayerSpec::LayerNorm {
                    normalized_shape: 8,
                    eps: 1e-4,
                    elementwise_affine: false,
                },
                Linear(8, 3),
                LogSoftmax(1),
            ],
            input_shape: vec![5],
        },
        SequentialCase {
            name: "SequentialCnn",
            specs: vec![
                Conv2d(2, 4, 3).padding(1).stride(2),
                BatchNorm2d(4),
                ReLU,
                MaxPool2d(2).padding(1),
                AvgPool2d(2).stride(1).padding(1),
                Conv2d(4, 4, 3).groups(2).dilation(2).padding(1),
                LayerSpec::BatchNorm2d {
                    num_features: 4,
                    eps: 1e-5,
                    momentum: 0.1,
                    affine: true,
                    track_running_stats: false,
                },
                Flatten,
                Linear(16, 3),
            ],
            input_shape: vec![2, 9, 9],
        },
        SequentialCase {
            name: "SequentialConv1d",
            specs: vec![
                Conv1d(2, 4, 3).stride(2).padding(1),
                ReLU,
                Conv1d(4, 3, 3).dilation(2),
                Flatten,
                Linear(6, 2),
            ],
            input_shape: vec![2, 12],
        },
    ]
}

/// The batch sizes each model runs with through the symbolic batch dimension.
const BATCHES: [usize; 3] = [1, 3, 8];

fn random_rows<T: Float>(rng: &mut StdRng, rows: usize, width: usize) -> Array2<T> {
    Array2::from_shape_fn((rows, width), |_| T::of(rng.random_range(-3.0..3.0)))
}

/// A model's forward pass in evaluation mode, rows `[batch, width]` in.
type Forward<T> = Box<dyn FnMut(&Array2<T>) -> ArrayD<T>>;

/// One test model, exported: the ONNX model and the model's own forward pass in
/// evaluation mode, for rows `[batch, width]`.
struct Exported<T: Float> {
    name: String,
    proto: ModelProto,
    sample_shape: Vec<usize>,
    kinds: BTreeSet<&'static str>,
    forward: Forward<T>,
}

impl<T: Float> Exported<T> {
    fn width(&self) -> usize {
        self.sample_shape.iter().product()
    }
}

/// A compiled model after three training-mode passes (which move BatchNorm's running
/// statistics off their start), in evaluation mode, exported.
fn compiled<T, M>(mut model: M, classes: bool) -> Exported<T>
where
    T: Float,
    M: CompiledModel<T> + 'static,
{
    // The steps leave running statistics in the exported file: on the portable path
    // they (and so the file's bytes) are the same on every CPU.
    model
        .set_kernel_path(nnscratch::kernels::KernelPath::Portable)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..3 {
        let x = random_rows::<T>(&mut rng, 6, M::INPUT_WIDTH);
        let labels: Vec<usize> = (0..6).map(|i| i % M::OUTPUT_WIDTH).collect();
        let values = random_rows::<T>(&mut rng, 6, M::OUTPUT_WIDTH);
        let target = if classes {
            Target::Classes(&labels)
        } else {
            Target::Values(values.view())
        };
        model.loss_backward(x.view(), target).unwrap();
    }
    model.set_training(false);
    let twin = model.to_dynamic();
    Exported {
        name: M::NAME.to_string(),
        proto: onnx::from_compiled(&model).unwrap(),
        sample_shape: twin.shape(0).unwrap().to_vec(),
        kinds: twin
            .values()
            .iter()
            .map(|(_, op, _)| onnx::op_kind(&twin, op))
            .collect(),
        forward: Box::new(move |x| model.forward(x.view()).unwrap().to_owned().into_dyn()),
    }
}

/// A `Sequential` after three training-mode passes, in evaluation mode, exported.
fn sequential<T: Float>(case: SequentialCase) -> Exported<T> {
    // As for compiled models: running statistics the same on every CPU.
    nnscratch::tensor::set_kernel_path(nnscratch::kernels::KernelPath::Portable).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut net = Sequential::<T>::new(case.specs.iter().copied(), &mut rng).unwrap();
    let shape = case.input_shape.clone();
    let as_input = move |rows: &Array2<T>| {
        let mut full = vec![rows.nrows()];
        full.extend_from_slice(&shape);
        Tensor::new(rows.clone().into_shape_with_order(IxDyn(&full)).unwrap())
    };
    let width: usize = case.input_shape.iter().product();
    for _ in 0..3 {
        net.forward(&as_input(&random_rows(&mut rng, 6, width)))
            .unwrap();
    }
    net.eval();
    Exported {
        name: case.name.to_string(),
        proto: onnx::from_sequential(&net, case.name, &case.input_shape).unwrap(),
        sample_shape: case.input_shape,
        kinds: net.layers().iter().map(onnx::kind).collect(),
        forward: Box::new(move |x| net.forward_no_grad(&as_input(x)).unwrap().to_array()),
    }
}

/// Every test model, both forms of `model!` and `Sequential`, exported.
fn exported_models<T: Float>() -> Vec<Exported<T>> {
    let mut rng = StdRng::seed_from_u64(1);
    let mut models = vec![
        compiled(EveryOperator::<T>::new(&mut rng), true),
        compiled(NormMlp::<T>::new(&mut rng), false),
        compiled(ExportCnn::<T>::new(&mut rng), true),
        compiled(BranchCnn::<T>::new(&mut rng), false),
        compiled(ExportConv1d::<T>::new(&mut rng), true),
    ];
    models.extend(sequential_cases().into_iter().map(sequential));
    models
}

/// The ONNX file's bytes, run by tract (optimised, with the batch left symbolic).
fn tract_model(bytes: &[u8]) -> Arc<TypedRunnableModel> {
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the exported file")
        .into_optimized()
        .expect("tract optimises the exported graph")
        .into_runnable()
        .expect("tract plans the exported graph")
}

fn run_tract(model: &Arc<TypedRunnableModel>, rows: &Array2<f32>, sample: &[usize]) -> ArrayD<f32> {
    let mut shape = vec![rows.nrows()];
    shape.extend_from_slice(sample);
    let data: Vec<f32> = rows.iter().copied().collect();
    let input = TractTensor::from_shape(&shape, &data).expect("an input tensor");
    let outputs = model
        .run(tvec!(input.into_tvalue()))
        .expect("tract runs the graph");
    let out = outputs[0]
        .to_plain_array_view::<f32>()
        .expect("a float output");
    ArrayD::from_shape_vec(IxDyn(out.shape()), out.iter().copied().collect()).unwrap()
}

/// Largest `|a - b| / max(1, |b|)` (`b` the model's own output).
fn relative_error<T: Float>(a: &ArrayD<T>, b: &ArrayD<T>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "output shapes");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x.as_f64() - y.as_f64()).abs() / y.as_f64().abs().max(1.0))
        .fold(0.0, f64::max)
}

#[test]
fn tract_runs_every_export_like_forward() {
    let mut rng = StdRng::seed_from_u64(11);
    for mut model in exported_models::<f32>() {
        let runnable = tract_model(&onnx::to_bytes(&model.proto));
        let mut worst: f64 = 0.0;
        for batch in BATCHES {
            let x = random_rows::<f32>(&mut rng, batch, model.width());
            let theirs = run_tract(&runnable, &x, &model.sample_shape);
            worst = worst.max(relative_error(&theirs, &(model.forward)(&x)));
        }
        println!(
            "{:<16} tract: largest relative error {worst:.1e}",
            model.name
        );
        assert!(
            worst <= 1e-5,
            "{}: tract differs from forward by {worst:e}",
            model.name
        );
    }
}

/// tract runs `float` graphs only (its `Sigmoid`, `Gemm` and others have no `double`
/// kernels), so an `f64` export is checked here to be the `f32` export's graph with
/// `double` elements, and numerically by onnxruntime (`onnxruntime_outputs_match`).
#[test]
fn f64_exports_are_the_f32_graphs_in_double() {
    use onnx::proto::tensor_proto::DataType;
    for (single, double) in exported_models::<f32>()
        .iter()
        .zip(exported_models::<f64>())
    {
        let g32 = single.proto.graph.as_ref().unwrap();
        let g64 = double.proto.graph.as_ref().unwrap();
        assert_eq!(g32.node, g64.node, "{}: the same nodes", single.name);
        assert_eq!(g32.initializer.len(), g64.initializer.len());
        for (a, b) in g32.initializer.iter().zip(&g64.initializer) {
            assert_eq!((&a.name, &a.dims), (&b.name, &b.dims));
            if a.data_type == Some(DataType::Float as i32) {
                assert_eq!(b.data_type, Some(DataType::Double as i32), "{:?}", b.name);
                let bytes = |t: &onnx::proto::TensorProto| t.raw_data.as_ref().unwrap().len();
                assert_eq!(bytes(b), 2 * bytes(a), "{:?}", b.name);
            } else {
                assert_eq!(a.data_type, b.data_type, "{:?}", b.name);
            }
        }
    }
}

#[test]
fn the_message_types_were_generated_from_the_committed_proto() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let proto = std::fs::read(format!("{root}/tools/onnx-proto/onnx.proto")).unwrap();
    let generated = std::fs::read_to_string(format!("{root}/nnscratch/src/onnx/proto.rs")).unwrap();
    let hash = proto.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    assert!(
        generated.starts_with(&format!(
            "// @generated by tools/onnx-proto from onnx.proto (fnv1a64 {hash:016x})"
        )),
        "onnx.proto changed: run `cargo run --manifest-path tools/onnx-proto/Cargo.toml`"
    );
}

#[test]
fn every_layer_kind_is_exported_and_checked() {
    let seen: BTreeSet<&str> = exported_models::<f32>()
        .iter()
        .flat_map(|m| m.kinds.iter().copied())
        .collect();
    let missing: Vec<&str> = onnx::LAYER_KINDS
        .iter()
        .copied()
        .filter(|k| !seen.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "no exported test model uses {missing:?}"
    );
    let unknown: Vec<&str> = seen
        .iter()
        .copied()
        .filter(|k| *k != "Input" && !onnx::LAYER_KINDS.contains(k))
        .collect();
    assert!(unknown.is_empty(), "LAYER_KINDS does not list {unknown:?}");
}

// ------------------------------------------------------------- onnxruntime fixtures

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/onnx");

/// The batch each model's file is run on by onnxruntime (5 rows).
fn fixture_input<T: Float>(index: usize, width: usize) -> Array2<T> {
    random_rows(&mut StdRng::seed_from_u64(100 + index as u64), 5, width)
}

/// Writes `tests/fixtures/onnx/{name}_{dtype}.onnx` and `cases_{dtype}.json` (the input
/// batches) for `tests/fixtures/generate.py onnx`, which runs onnx.checker and
/// onnxruntime on them. Ignored: it rewrites committed fixtures; run it by hand after
/// changing the exporter or the models, then the script:
///
/// ```text
/// cargo test -p nnscratch --test onnx_export -- --ignored write_onnx_fixtures
/// /path/to/venv/bin/python tests/fixtures/generate.py onnx
/// ```
#[test]
#[ignore = "rewrites committed fixtures; run by hand, then tests/fixtures/generate.py onnx"]
fn write_onnx_fixtures() {
    fn write<T: Float>() {
        let mut cases = Vec::new();
        for (i, model) in exported_models::<T>().iter().enumerate() {
            let file = format!("{}_{}.onnx", model.name, T::DTYPE);
            onnx::save(&model.proto, format!("{FIXTURES}/{file}")).unwrap();
            let input = fixture_input::<T>(i, model.width());
            let rows: Vec<Vec<f64>> = input
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|v| v.as_f64()).collect())
                .collect();
            cases.push(serde_json::json!({
                "name": model.name,
                "file": file,
                "sample_shape": model.sample_shape,
                "input": rows,
            }));
        }
        let doc = serde_json::json!({ "dtype": T::DTYPE, "cases": cases });
        let text = serde_json::to_string(&doc).unwrap() + "\n";
        nnscratch::io::write_atomic(
            format!("{FIXTURES}/cases_{}.json", T::DTYPE),
            text.as_bytes(),
        )
        .unwrap();
    }
    std::fs::create_dir_all(FIXTURES).unwrap();
    write::<f32>();
    write::<f64>();
}

#[derive(serde::Deserialize)]
struct OrtFixtures {
    onnxruntime: String,
    onnx: String,
    results: Vec<OrtResult>,
}

#[derive(serde::Deserialize)]
struct OrtResult {
    name: String,
    file: String,
    /// `onnx.checker.check_model(..., full_check=True)` passed (the script stops if not).
    checker: bool,
    /// onnxruntime's output on the case's input, or `None` where it has no kernel.
    output: Option<Vec<Vec<f64>>>,
    error: Option<String>,
}

/// The committed files are what the exporter writes today, the checker accepted every
/// one, and onnxruntime's outputs on them match the models' own forward passes (f32:
/// relative error <= 1e-5; f64 <= 1e-9, BatchNorm's `epsilon` being a float attribute).
#[test]
fn onnxruntime_outputs_match() {
    fn check<T: Float>(tolerance: f64) {
        let path = format!("{FIXTURES}/onnxruntime_{}.json", T::DTYPE);
        let text = std::fs::read_to_string(&path).expect("the onnxruntime fixture");
        let fixtures: OrtFixtures = serde_json::from_str(&text).unwrap();
        let models = exported_models::<T>();
        assert_eq!(fixtures.results.len(), models.len(), "one result per model");
        for (i, (mut model, result)) in models.into_iter().zip(&fixtures.results).enumerate() {
            assert_eq!(model.name, result.name);
            let committed = std::fs::read(format!("{FIXTURES}/{}", result.file)).unwrap();
            assert!(
                committed == onnx::to_bytes(&model.proto),
                "{} differs from today's export: rerun write_onnx_fixtures and generate.py onnx",
                result.file
            );
            assert!(result.checker, "{}: onnx.checker", result.file);
            let Some(output) = &result.output else {
                assert_eq!(
                    T::DTYPE,
                    "float64",
                    "{}: every f32 model must run",
                    result.file
                );
                println!(
                    "{:<16} {} onnxruntime has no kernel: {}",
                    model.name,
                    T::DTYPE,
                    result.error.as_deref().unwrap_or("?")
                );
                continue;
            };
            let input = fixture_input::<T>(i, model.width());
            let ours = (model.forward)(&input);
            let flat: Vec<T> = output.iter().flatten().map(|&v| T::of(v)).collect();
            let theirs = ArrayD::from_shape_vec(IxDyn(ours.shape()), flat).unwrap();
            let worst = relative_error(&theirs, &ours);
            println!(
                "{:<16} {} onnxruntime {}: largest relative error {worst:.1e}",
                model.name,
                T::DTYPE,
                fixtures.onnxruntime
            );
            assert!(worst <= tolerance, "{}: {worst:e}", result.file);
        }
        assert!(!fixtures.onnx.is_empty());
    }
    check::<f32>(1e-5);
    check::<f64>(1e-9);
}

#[test]
fn the_file_describes_the_model() {
    let mut rng = StdRng::seed_from_u64(1);
    let model = ExportCnn::<f64>::new(&mut rng);
    let exported: ModelProto = onnx::from_compiled(&model).unwrap();
    assert_eq!(exported.opset_import[0].version, Some(onnx::OPSET));
    assert_eq!(exported.producer_name.as_deref(), Some("nnscratch"));
    assert_eq!(
        exported.producer_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let meta: Vec<(String, String)> = exported
        .metadata_props
        .iter()
        .map(|e| (e.key.clone().unwrap(), e.value.clone().unwrap()))
        .collect();
    assert!(meta.contains(&("model".into(), "ExportCnn".into())));
    assert!(meta.contains(&("nnscratch_version".into(), env!("CARGO_PKG_VERSION").into())));
    let graph = exported.graph.as_ref().unwrap();
    assert_eq!(graph.name.as_deref(), Some("ExportCnn"));
    // Initializers carry the state_dict's names (no num_batches_tracked: eval needs none).
    let mut names: Vec<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    names.sort_unstable();
    let mut state_dict: Vec<String> = model
        .to_dynamic()
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .chain(["1.running_mean".into(), "1.running_var".into()])
        .collect();
    state_dict.sort_unstable();
    assert_eq!(names, state_dict);
    // Elements are doubles for an f64 model; the batch is symbolic.
    let input = graph.input[0].r#type.as_ref().unwrap();
    let Some(onnx::proto::type_proto::Value::TensorType(tensor)) = &input.value else {
        panic!("a tensor input")
    };
    assert_eq!(
        tensor.elem_type,
        Some(onnx::proto::tensor_proto::DataType::Double as i32)
    );
    let dims = &tensor.shape.as_ref().unwrap().dim;
    assert_eq!(
        dims[0].value,
        Some(onnx::proto::tensor_shape_proto::dimension::Value::DimParam(
            "batch".into()
        ))
    );
    assert_eq!(dims.len(), 4);
    // Dropout exports as nothing; the output is the logits, not the loss.
    let ops: Vec<&str> = graph
        .node
        .iter()
        .filter_map(|n| n.op_type.as_deref())
        .collect();
    assert_eq!(
        ops,
        [
            "Conv",
            "BatchNormalization",
            "Relu",
            "MaxPool",
            "AveragePool",
            "Conv",
            "LeakyRelu",
            "Flatten",
            "Gemm"
        ]
    );
}

#[test]
fn a_bad_path_is_an_error_naming_it_and_leaves_nothing() {
    let mut rng = StdRng::seed_from_u64(1);
    let model = NormMlp::<f32>::new(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no such dir").join("model.onnx");
    let err = model.export_onnx(&missing).unwrap_err().to_string();
    assert!(err.contains("no such dir"), "{err}");
    let path = dir.path().join("model.onnx");
    model.export_onnx(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, onnx::to_bytes(&onnx::from_compiled(&model).unwrap()));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only model.onnx, no temporary file");
}

// ------------------------------------------------------------- the README's commands

model! {
    /// The digits example's MLP (examples/digits.rs), for the README's tract program.
    pub struct DigitNet {
        input: 64,
        Linear(128), ReLU,
        Linear(64), ReLU,
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

/// The README's tract program, its body copied verbatim (the test below checks that):
/// it reads `digits.onnx` from the working directory.
fn readme_tract_program() -> tract_onnx::prelude::TractResult<()> {
    use tract_onnx::prelude::*;
    // README tract program: begin
    let model = tract_onnx::onnx()
        .model_for_path("digits.onnx")?
        .into_optimized()?
        .into_runnable()?;
    let images = Tensor::from_shape(&[3, 64], &[0.5f32; 3 * 64])?;
    let logits = model.run(tvec!(images.into_tvalue()))?;
    println!("{:?}", logits[0].to_plain_array_view::<f32>()?);
    Ok(())
    // README tract program: end
}

/// The lines between `// {marker}: begin` and `// {marker}: end` of this file.
fn marked_lines(source: &str, marker: &str) -> String {
    let begin = format!("// {marker}: begin");
    let end = format!("// {marker}: end");
    let lines: Vec<&str> = source
        .lines()
        .skip_while(|l| l.trim() != begin)
        .skip(1)
        .take_while(|l| l.trim() != end)
        .collect();
    lines.join("\n") + "\n"
}

#[test]
fn the_readme_tract_program_runs_as_written() {
    let readme = include_str!("../README.md");
    let body = marked_lines(include_str!("onnx_export.rs"), "README tract program");
    assert!(
        readme.contains(&format!("fn main() -> TractResult<()> {{\n{body}}}\n")),
        "the README's tract program is not the one tested here:\n{body}"
    );
    // Under `cargo test` the working directory is the package's (nnscratch/).
    let net = DigitNet::<f32>::new(&mut StdRng::seed_from_u64(0));
    net.export_onnx("digits.onnx").unwrap();
    let ran = readme_tract_program();
    std::fs::remove_file("digits.onnx").unwrap();
    ran.unwrap();
}

/// The README's shell and Python commands are the ones `generate.py onnx` ran.
#[test]
fn the_readme_commands_are_the_ones_the_fixture_script_ran() {
    let readme = include_str!("../README.md");
    let text = std::fs::read_to_string(format!("{FIXTURES}/readme_snippets.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let blocks = doc["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3, "one shell and two Python blocks");
    for block in blocks {
        let fenced = format!(
            "```{}\n{}```",
            block["language"].as_str().unwrap(),
            block["code"].as_str().unwrap()
        );
        assert!(
            readme.contains(&fenced),
            "the README no longer has this block; rerun tests/fixtures/generate.py onnx:\n{fenced}"
        );
    }
    let difference = doc["torch_vs_onnxruntime_max_abs_difference"]
        .as_f64()
        .unwrap();
    assert!(difference < 1e-4, "{difference}");
}

#[test]
fn a_sequential_with_the_wrong_input_shape_is_an_error_saying_what_fits() {
    let mut rng = StdRng::seed_from_u64(1);
    let mlp = Sequential::<f32>::new([Linear(5, 8), ReLU, Linear(8, 2)], &mut rng).unwrap();
    let err = onnx::from_sequential(&mlp, "Mlp", &[7])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer 0") && err.contains("5 features") && err.contains("[7]"),
        "{err}"
    );
    let err = onnx::from_sequential(&mlp, "Mlp", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("input shape"), "{err}");

    let cnn = Sequential::<f32>::new([Conv2d(3, 4, 3), Flatten, Linear(16, 2)], &mut rng).unwrap();
    let err = onnx::from_sequential(&cnn, "Cnn", &[1, 4, 4])
        .unwrap_err()
        .to_string();
    assert!(err.contains("C = 3") && err.contains("[1, 4, 4]"), "{err}");
    let err = onnx::from_sequential(&cnn, "Cnn", &[3, 2, 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 0"), "{err}");
    let err = onnx::from_sequential(&cnn, "Cnn", &[3, 5, 5])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer 2") && err.contains("16 features"),
        "{err}"
    );
    assert!(onnx::from_sequential(&cnn, "Cnn", &[3, 4, 4]).is_ok());
}
