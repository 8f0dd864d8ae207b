//! Helpers shared by the integration tests: reading the PyTorch fixtures and comparing
//! arrays with a relative error.

#![allow(dead_code)]

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};
use nnscratch::Float;
use serde::Deserialize;

/// An array as the fixture script writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Encoded {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Encoded {
    /// The array in the element type under test (exact: f32 fixtures hold f32 values).
    pub fn array<T: Float>(&self) -> ArrayD<T> {
        let values = self.data.iter().map(|&v| T::of(v)).collect();
        ArrayD::from_shape_vec(IxDyn(&self.shape), values).expect("fixture shape and data agree")
    }
}

#[derive(Debug, Deserialize)]
pub struct Fixtures {
    pub torch: String,
    pub dtype: String,
    pub ops: Vec<OpCase>,
    pub layers: Vec<LayerCase>,
    pub optim: Vec<OptimCase>,
    pub training: Vec<TrainingCase>,
}

/// 25 steps of an optimizer with a schedule and/or gradient clipping.
#[derive(Debug, Deserialize)]
pub struct TrainingCase {
    pub name: String,
    pub optimizer: String,
    pub hyper: serde_json::Value,
    pub schedule: Option<serde_json::Value>,
    pub clip: Option<f64>,
    pub layers: Vec<LayerDesc>,
    pub initial: BTreeMap<String, Encoded>,
    pub x: Encoded,
    pub target: Encoded,
    pub steps: Vec<TrainingStep>,
}

#[derive(Debug, Deserialize)]
pub struct TrainingStep {
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub state: BTreeMap<String, Encoded>,
}

#[derive(Debug, Deserialize)]
pub struct OpCase {
    pub name: String,
    pub op: String,
    pub args: serde_json::Value,
    pub inputs: Vec<Encoded>,
    pub upstream: Encoded,
    pub output: Encoded,
    pub grads: Vec<Encoded>,
}

#[derive(Debug, Deserialize)]
pub struct LayerDesc {
    pub kind: String,
    #[serde(rename = "in")]
    pub in_features: Option<usize>,
    #[serde(rename = "out")]
    pub out_features: Option<usize>,
    pub slope: Option<f64>,
    pub beta: Option<f64>,
    pub threshold: Option<f64>,
    pub approximate: Option<String>,
    pub alpha: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct LayerCase {
    pub name: String,
    pub layers: Vec<LayerDesc>,
    pub state: BTreeMap<String, Encoded>,
    pub x: Encoded,
    pub upstream: Option<Encoded>,
    pub output: Encoded,
    pub loss: Option<String>,
    pub target: Option<serde_json::Value>,
    pub loss_value: Option<f64>,
    pub x_grad: Encoded,
    pub grads: BTreeMap<String, Encoded>,
}

#[derive(Debug, Deserialize)]
pub struct OptimStep {
    pub loss: f64,
    pub state: BTreeMap<String, Encoded>,
}

#[derive(Debug, Deserialize)]
pub struct OptimCase {
    pub name: String,
    pub optimizer: String,
    pub hyper: serde_json::Value,
    pub layers: Vec<LayerDesc>,
    pub initial: BTreeMap<String, Encoded>,
    pub x: Encoded,
    pub target: Encoded,
    pub steps: Vec<OptimStep>,
}

/// Reads `tests/fixtures/engine_{dtype}.json`.
pub fn load(dtype: &str) -> Fixtures {
    let path = format!(
        "{}/../tests/fixtures/engine_{dtype}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Norm-wise relative error `max|a - b| / max|b|`, the library's definition.
pub use nnscratch::check::relative_error;

/// The tolerance a dtype is held to against PyTorch.
pub fn tolerance<T: Float>() -> f64 {
    if T::DTYPE == "float64" { 1e-10 } else { 1e-5 }
}

/// Tracks the largest relative error seen, and where.
#[derive(Debug, Default)]
pub struct WorstError {
    pub error: f64,
    pub at: String,
    pub compared: usize,
    /// The largest error per case (the first word of each comparison's description:
    /// an op, a layer case, a model, an optimizer run).
    pub by_case: std::collections::BTreeMap<String, f64>,
}

impl WorstError {
    pub fn check<T: Float>(&mut self, what: &str, actual: &ArrayD<T>, expected: &ArrayD<T>) {
        self.check_above(what, actual, expected, 0.0);
    }

    /// [`check`](Self::check) with the scale `max|expected|` raised to at least `floor`:
    /// for gradients that are zero in exact arithmetic (a bias before a BatchNorm that
    /// uses batch statistics), compared on the scale of the model's largest gradient.
    pub fn check_above<T: Float>(
        &mut self,
        what: &str,
        actual: &ArrayD<T>,
        expected: &ArrayD<T>,
        floor: f64,
    ) {
        self.check_within(what, actual, expected, floor, tolerance::<T>());
    }

    /// [`check_above`](Self::check_above) against `allowed` instead of the dtype's
    /// tolerance.
    pub fn check_within<T: Float>(
        &mut self,
        what: &str,
        actual: &ArrayD<T>,
        expected: &ArrayD<T>,
        floor: f64,
        allowed: f64,
    ) {
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.as_f64().abs()));
        let error = if scale < floor {
            let diff = actual
                .iter()
                .zip(expected)
                .fold(0.0f64, |m, (a, b)| m.max((a.as_f64() - b.as_f64()).abs()));
            if actual.shape() == expected.shape() {
                diff / floor
            } else {
                f64::INFINITY
            }
        } else {
            relative_error(actual, expected)
        };
        assert!(
            error <= allowed,
            "{what} ({}): relative error {error:e} over {allowed:e}\n actual:   {actual}\n expected: {expected}",
            T::DTYPE,
        );
        self.compared += 1;
        let case = what.split_whitespace().next().unwrap_or(what).to_string();
        let worst = self.by_case.entry(case).or_insert(0.0);
        *worst = worst.max(error);
        if error >= self.error {
            self.error = error;
            self.at = what.to_string();
        }
    }

    /// The largest error of each case, one per line (shown with `--nocapture`).
    pub fn table(&self) -> String {
        self.by_case
            .iter()
            .map(|(case, error)| format!("    {case:<48} {error:.1e}\n"))
            .collect()
    }
}

/// A random batch `[rows, INPUT_WIDTH]` in `[-2, 2)`, value targets in `[-1, 1)` and class
/// targets, for a compiled model.
pub fn random_batch<T: Float, M: nnscratch::compiled::CompiledModel<T>>(
    seed: u64,
    rows: usize,
) -> (ndarray::Array2<T>, ndarray::Array2<T>, Vec<usize>) {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x = ndarray::Array2::from_shape_simple_fn((rows, M::INPUT_WIDTH), || {
        T::of(rng.random_range(-2.0..2.0))
    });
    let values = ndarray::Array2::from_shape_simple_fn((rows, M::OUTPUT_WIDTH), || {
        T::of(rng.random_range(-1.0..1.0))
    });
    let classes = (0..rows)
        .map(|_| rng.random_range(0..M::OUTPUT_WIDTH))
        .collect();
    (x, values, classes)
}

/// The target a model's loss takes, from [`random_batch`]'s two kinds.
pub fn target_for<'a, T: Float, M: nnscratch::compiled::CompiledModel<T>>(
    values: &'a ndarray::Array2<T>,
    classes: &'a [usize],
) -> nnscratch::compiled::Target<'a, T> {
    if M::LOSS.takes_classes() {
        nnscratch::compiled::Target::Classes(classes)
    } else {
        nnscratch::compiled::Target::Values(values.view())
    }
}

/// A compiled model's PyTorch fixture: its weights, a batch, the output, the loss and
/// every gradient (`compiled_*.json`, written by `generate.py`).
#[derive(Debug, Deserialize)]
pub struct ModelCase {
    pub name: String,
    pub state: BTreeMap<String, Encoded>,
    pub x: Encoded,
    pub output: Encoded,
    pub target: serde_json::Value,
    pub loss_value: f64,
    pub grads: BTreeMap<String, Encoded>,
}

/// Loads the fixture's weights by `state_dict` name, runs one `loss_backward`, and
/// compares output, loss and every gradient with PyTorch's; with `twin`, the dynamic twin's
/// loss and gradients too.
pub fn compare_with_pytorch<T: Float, M: nnscratch::compiled::CompiledModel<T>>(
    mut model: M,
    case: &ModelCase,
    twin: bool,
    worst: &mut WorstError,
) {
    use nnscratch::compiled::Target;
    use nnscratch::nn::Module;
    let mut loaded = 0;
    model.visit_parameters(&mut |p| {
        let value: ArrayD<T> = case.state[p.name].array();
        assert_eq!(p.shape, value.shape(), "{} {}", case.name, p.name);
        p.value
            .copy_from_slice(value.as_slice().expect("standard layout"));
        loaded += 1;
    });
    assert_eq!(
        loaded,
        case.state.len(),
        "{}: every PyTorch parameter has a compiled twin",
        case.name
    );
    let x: ndarray::Array2<T> = case.x.array().into_dimensionality().unwrap();
    let output = model.forward(x.view()).unwrap().to_owned().into_dyn();
    worst.check(
        &format!("{} output", case.name),
        &output,
        &case.output.array(),
    );
    let values: Option<ndarray::Array2<T>> = case.target.get("values").map(|v| {
        let encoded: Encoded = serde_json::from_value(v.clone()).unwrap();
        encoded.array().into_dimensionality().unwrap()
    });
    let classes: Option<Vec<usize>> = case
        .target
        .get("classes")
        .map(|v| serde_json::from_value(v.clone()).unwrap());
    let target = match (&values, &classes) {
        (Some(v), _) => Target::Values(v.view()),
        (None, Some(c)) => Target::Classes(c),
        _ => panic!("{}: fixture without target", case.name),
    };
    let expected_loss = ndarray::arr0(T::of(case.loss_value)).into_dyn();
    let loss = model.loss_backward(x.view(), target).unwrap();
    worst.check(
        &format!("{} loss", case.name),
        &ndarray::arr0(loss).into_dyn(),
        &expected_loss,
    );
    model.visit_parameters(&mut |p| {
        let grad = p
            .grad_view()
            .expect("loss_backward filled the gradients")
            .to_owned();
        worst.check(
            &format!("{} grad {}", case.name, p.name),
            &grad,
            &case.grads[p.name].array(),
        );
    });
    if twin {
        let twin = model.to_dynamic();
        let twin_loss = twin
            .loss(&nnscratch::Tensor::new(x.into_dyn()), target)
            .unwrap();
        twin_loss.backward().unwrap();
        worst.check(
            &format!("{} dynamic loss", case.name),
            &twin_loss.to_array(),
            &expected_loss,
        );
        for (name, tensor) in twin.named_parameters() {
            worst.check(
                &format!("{} dynamic grad {name}", case.name),
                &tensor.grad().unwrap(),
                &case.grads[&name].array(),
            );
        }
    }
}

/// Compiled vs dynamic (to `dynamic_tol`) vs finite differences (to `fd_tol`) on `seeds`
/// random batches of `rows` rows, each model freshly initialised.
pub fn check_gradients<T: Float, M: nnscratch::compiled::CompiledModel<T>>(
    new: fn(&mut rand::rngs::StdRng) -> M,
    (seeds, rows): (u64, usize),
    dynamic_tol: f64,
    fd_tol: Option<f64>,
) {
    use rand::SeedableRng;
    for seed in 0..seeds {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut model = new(&mut rng);
        let (x, values, classes) = random_batch::<T, M>(seed + 10, rows);
        let report = nnscratch::check::gradients(
            &mut model,
            x.view(),
            target_for::<T, M>(&values, &classes),
        )
        .unwrap();
        if seed == 0 {
            println!("{report}"); // shown with --nocapture
        }
        assert!(
            report.max_dynamic_error() <= dynamic_tol,
            "compiled vs dynamic over {dynamic_tol:e}:\n{report}"
        );
        if let Some(fd_tol) = fd_tol {
            assert!(
                report.max_finite_difference_error() <= fd_tol,
                "compiled vs finite differences over {fd_tol:e}:\n{report}"
            );
        }
    }
}
