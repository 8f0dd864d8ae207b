//! Dropout, BatchNorm1d and LayerNorm: compiled against dynamic and finite differences in
//! both modes, PyTorch fixtures over several training steps (running statistics
//! included), and the mode switches themselves.

use ndarray::Array2;
use nnscratch::compiled::{CompiledModel, Target};
use nnscratch::optim::{Optimizer, Sgd};
use nnscratch::{Float, check, model};
use rand::SeedableRng;

mod common;

use std::collections::BTreeMap;

use common::{Encoded, WorstError, random_batch, target_for};
use ndarray::ArrayD;
use nnscratch::nn::{
    BatchNorm1d as BatchNorm1dSpec, Dropout as DropoutSpec, GELU, LayerNorm as LayerNormSpec,
    LayerSpec, Linear as LinearSpec, Module, ReLU, Sequential, SiLU, Tanh,
};
use nnscratch::optim::{BufferValue, Parameters};
use nnscratch::{Reduction, Tensor};
use serde::Deserialize;

model! {
    /// BatchNorm after a Linear without bias, the usual pairing.
    pub struct BnMlp {
        input: 4,
        Linear(8, bias = false), BatchNorm1d(8), ReLU,
        Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    pub struct LnMlp {
        input: 3,
        Linear(6), LayerNorm(6), GELU,
        Linear(2),
        loss: MSELoss,
    }
}

model! {
    pub struct DropoutMlp {
        input: 4,
        Linear(8), ReLU, Dropout(0.3),
        Linear(8), Tanh, Dropout,
        Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// Every training-mode layer with non-default arguments.
    pub struct AllOptions {
        input: 5,
        Linear(6), BatchNorm1d(6, eps = 1e-3, momentum = 0.3), Tanh,
        Dropout(p = 0.25),
        Linear(6), LayerNorm(6, elementwise_affine = false), SiLU,
        Linear(4), BatchNorm1d(affine = false, track_running_stats = false),
        Linear(2),
        loss: MSELoss,
    }
}

model! {
    /// The three layers in the graph form, with a skip connection around them.
    pub struct NormGraph {
        x = input(4);
        h = ReLU(BatchNorm1d(Linear(x, 6), momentum = 0.2));
        d = Dropout(h, 0.2);
        n = LayerNorm(Linear(d, 6) + h);
        out = Linear(n, 3);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    /// A regression MLP as a practitioner writes it: BatchNorm, GELU, dropout, LayerNorm.
    pub struct PractitionerMlp {
        input: 6,
        Linear(16), BatchNorm1d, GELU, Dropout(0.1),
        Linear(16), LayerNorm, SiLU, Dropout(0.1),
        Linear(2),
        loss: HuberLoss(delta = 0.5),
    }
}

model! {
    /// BatchNorm2d and dropout in a CNN.
    pub struct BnCnn {
        input: [2, 6, 6],
        Conv2d(4, 3, padding = 1, bias = false), BatchNorm2d(4, momentum = 0.2), ReLU,
        Dropout(0.2), MaxPool2d(2),
        Flatten, Linear(3),
        loss: CrossEntropyLoss,
    }
}

/// Compiled vs dynamic vs finite differences, in training mode (after a few steps, so
/// the running statistics are not their initial values) and in evaluation mode.
///
/// The bias of a Linear before a training-mode BatchNorm has a gradient of exactly zero
/// (normalisation removes constants): both engines compute rounding noise there, so
/// per-parameter errors are measured against `√ε` of the model's largest gradient
/// (`check::gradients` does this), and `f32` is held to the model-wide error.
fn check_model<T: Float, M: CompiledModel<T>>(
    new: fn(&mut rand::rngs::StdRng) -> M,
    dynamic_tol: f64,
    fd_tol: Option<f64>,
) {
    for seed in 0..3 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut model = new(&mut rng);
        let mut sgd = Sgd::new(0.05);
        for step in 0..3 {
            let (x, values, classes) = random_batch::<T, M>(100 + step, 6);
            model.zero_grad();
            model
                .loss_backward(x.view(), target_for::<T, M>(&values, &classes))
                .unwrap();
            sgd.step(&mut model).unwrap();
        }
        for training in [true, false] {
            model.set_training(training);
            let (x, values, classes) = random_batch::<T, M>(seed + 10, 5);
            let before = model.buffer_shapes();
            let report =
                check::gradients(&mut model, x.view(), target_for::<T, M>(&values, &classes))
                    .unwrap();
            assert_eq!(model.buffer_shapes(), before);
            if seed == 0 {
                println!("training = {training}\n{report}");
            }
            let error = if T::DTYPE == "float64" {
                report.max_dynamic_error()
            } else {
                report.max_dynamic_error_model_wide()
            };
            assert!(
                error <= dynamic_tol,
                "compiled vs dynamic over {dynamic_tol:e} (training = {training}):\n{report}"
            );
            if let Some(fd_tol) = fd_tol {
                assert!(
                    report.max_finite_difference_error() <= fd_tol,
                    "compiled vs finite differences over {fd_tol:e} (training = {training}):\n{report}"
                );
            }
        }
    }
}

/// f64 against the dynamic engine to 1e-6: a gradient that is zero in exact arithmetic
/// (a bias before a BatchNorm on batch statistics) is rounding noise of order
/// `batch·ε·Σ|dY|`, which the report measures against `√ε` of the model's largest gradient:
/// about 1e-7 for a batch of 5 (AllOptions' `7.bias` on the portable path, 1.1e-7), where
/// every other gradient agrees to 1e-14 and a wrong derivative is off by order 1.
macro_rules! gradient_checks {
    ($($model:ident => $f64_test:ident, $f32_test:ident;)*) => {$(
        #[test]
        fn $f64_test() {
            check_model::<f64, $model<f64>>(|rng| $model::new(rng), 1e-6, Some(1e-6));
        }
        #[test]
        fn $f32_test() {
            check_model::<f32, $model<f32>>(|rng| $model::new(rng), 1e-5, None);
        }
    )*};
}

gradient_checks! {
    BnMlp => batch_norm_mlp_matches_dynamic_and_finite_differences_in_both_modes_f64, batch_norm_mlp_matches_dynamic_f32;
    LnMlp => layer_norm_mlp_matches_dynamic_and_finite_differences_in_both_modes_f64, layer_norm_mlp_matches_dynamic_f32;
    DropoutMlp => dropout_mlp_matches_dynamic_and_finite_differences_in_both_modes_f64, dropout_mlp_matches_dynamic_f32;
    AllOptions => every_option_matches_dynamic_and_finite_differences_in_both_modes_f64, every_option_matches_dynamic_f32;
    NormGraph => graph_form_matches_dynamic_and_finite_differences_in_both_modes_f64, graph_form_matches_dynamic_f32;
    PractitionerMlp => practitioner_mlp_matches_dynamic_and_finite_differences_in_both_modes_f64, practitioner_mlp_matches_dynamic_f32;
    BnCnn => batch_norm_2d_cnn_matches_dynamic_and_finite_differences_in_both_modes_f64, batch_norm_2d_cnn_matches_dynamic_f32;
}

// ---------------------------------------------------------------- PyTorch fixtures

#[derive(Deserialize)]
struct Fixtures {
    modes: Vec<ModeCase>,
}

/// A `state_dict` entry: a tensor, or `num_batches_tracked`.
#[derive(Deserialize)]
#[serde(untagged)]
enum StateEntry {
    Count { count: u64 },
    Tensor(Encoded),
}

#[derive(Deserialize)]
struct Step {
    x: Encoded,
    target: serde_json::Value,
    loss: f64,
}

#[derive(Deserialize)]
struct EvalCase {
    x: Encoded,
    target: serde_json::Value,
    output: Encoded,
    loss: f64,
    grads: BTreeMap<String, Encoded>,
}

#[derive(Deserialize)]
struct ModeCase {
    name: String,
    seed: u64,
    lr: f64,
    state: BTreeMap<String, StateEntry>,
    steps: Vec<Step>,
    trained: BTreeMap<String, StateEntry>,
    eval: EvalCase,
}

fn fixtures(dtype: &str) -> Fixtures {
    let path = format!(
        "{}/../tests/fixtures/compiled_{dtype}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture target: values or class indices.
struct OwnedTarget<T> {
    values: Option<Array2<T>>,
    classes: Option<Vec<usize>>,
}

impl<T: Float> OwnedTarget<T> {
    fn new(json: &serde_json::Value) -> Self {
        let values: Option<Encoded> = json
            .get("values")
            .map(|v| serde_json::from_value(v.clone()).unwrap());
        OwnedTarget {
            values: values.map(|v| v.array().into_dimensionality().unwrap()),
            classes: json
                .get("classes")
                .map(|v| serde_json::from_value(v.clone()).unwrap()),
        }
    }

    fn target(&self) -> Target<'_, T> {
        match (&self.values, &self.classes) {
            (Some(v), _) => Target::Values(v.view()),
            (None, Some(c)) => Target::Classes(c),
            _ => panic!("fixture without target"),
        }
    }
}

/// Writes a fixture's parameters and buffers into a model, checking every name exists.
fn load_state<T: Float>(
    model: &mut (impl Parameters<T> + ?Sized),
    state: &BTreeMap<String, StateEntry>,
    case: &str,
) {
    let mut loaded = 0;
    model.visit_parameters(&mut |p| {
        let Some(StateEntry::Tensor(value)) = state.get(p.name) else {
            panic!("{case}: no fixture tensor for parameter {}", p.name)
        };
        p.value
            .copy_from_slice(value.array::<T>().as_slice().unwrap());
        loaded += 1;
    });
    model.visit_buffers(&mut |b| {
        match (b.value, state.get(b.name)) {
            (BufferValue::Float { value, .. }, Some(StateEntry::Tensor(v))) => {
                value.copy_from_slice(v.array::<T>().as_slice().unwrap())
            }
            (BufferValue::Count(c), Some(StateEntry::Count { count })) => *c = *count,
            _ => panic!(
                "{case}: no fixture entry of the right kind for buffer {}",
                b.name
            ),
        }
        loaded += 1;
    });
    assert_eq!(
        loaded,
        state.len(),
        "{case}: every PyTorch state_dict entry has a twin"
    );
}

/// Compares parameters and buffers with the fixture's.
fn compare_state<T: Float>(
    model: &mut (impl Parameters<T> + ?Sized),
    state: &BTreeMap<String, StateEntry>,
    what: &str,
    worst: &mut WorstError,
) {
    model.visit_parameters(&mut |p| {
        let Some(StateEntry::Tensor(expected)) = state.get(p.name) else {
            panic!("{what}: {} missing", p.name)
        };
        worst.check(
            &format!("{what} {}", p.name),
            &p.value_view().to_owned(),
            &expected.array(),
        );
    });
    model.visit_buffers(&mut |b| match (b.value, state.get(b.name)) {
        (BufferValue::Float { shape, value }, Some(StateEntry::Tensor(expected))) => {
            let actual = ArrayD::from_shape_vec(shape.to_vec(), value.to_vec()).unwrap();
            worst.check(&format!("{what} {}", b.name), &actual, &expected.array());
        }
        (BufferValue::Count(c), Some(StateEntry::Count { count })) => {
            assert_eq!(*c, *count, "{what} {}", b.name)
        }
        _ => panic!("{what}: buffer {} has no twin", b.name),
    });
}

/// Three SGD steps in training mode, then a forward and backward pass in evaluation
/// mode, against PyTorch: losses, parameters, running statistics, outputs, gradients.
fn compare_compiled<T: Float, M: CompiledModel<T>>(
    mut model: M,
    case: &ModeCase,
    manual_seed: fn(&mut M, u64),
    worst: &mut WorstError,
) {
    load_state(&mut model, &case.state, &case.name);
    manual_seed(&mut model, case.seed);
    let mut sgd = Sgd::new(case.lr);
    for (i, step) in case.steps.iter().enumerate() {
        let x: Array2<T> = step.x.array().into_dimensionality().unwrap();
        let target = OwnedTarget::<T>::new(&step.target);
        model.zero_grad();
        let loss = model.loss_backward(x.view(), target.target()).unwrap();
        worst.check(
            &format!("{} step {i} loss", case.name),
            &ndarray::arr0(loss).into_dyn(),
            &ndarray::arr0(T::of(step.loss)).into_dyn(),
        );
        sgd.step(&mut model).unwrap();
    }
    compare_state(
        &mut model,
        &case.trained,
        &format!("{} trained", case.name),
        worst,
    );
    let mut twin = model.to_dynamic();
    model.set_training(false);
    twin.eval();
    let x: Array2<T> = case.eval.x.array().into_dimensionality().unwrap();
    let target = OwnedTarget::<T>::new(&case.eval.target);
    let output = model.forward(x.view()).unwrap().to_owned().into_dyn();
    worst.check(
        &format!("{} eval output", case.name),
        &output,
        &case.eval.output.array(),
    );
    model.zero_grad();
    let loss = model.loss_backward(x.view(), target.target()).unwrap();
    worst.check(
        &format!("{} eval loss", case.name),
        &ndarray::arr0(loss).into_dyn(),
        &ndarray::arr0(T::of(case.eval.loss)).into_dyn(),
    );
    let floor = zero_gradient_floor::<T>(&case.eval.grads);
    model.visit_parameters(&mut |p| {
        let grad = p.grad_view().expect("loss_backward filled it").to_owned();
        worst.check_above(
            &format!("{} eval grad {}", case.name, p.name),
            &grad,
            &case.eval.grads[p.name].array(),
            floor,
        );
    });
    // The dynamic twin, built after training (weights, running statistics): the same in
    // evaluation mode.
    let twin_loss = twin
        .loss(&Tensor::new(x.into_dyn()), target.target())
        .unwrap();
    worst.check(
        &format!("{} dynamic twin eval loss", case.name),
        &twin_loss.to_array(),
        &ndarray::arr0(T::of(case.eval.loss)).into_dyn(),
    );
    twin_loss.backward().unwrap();
    for (name, tensor) in twin.named_parameters() {
        worst.check_above(
            &format!("{} dynamic twin eval grad {name}", case.name),
            &tensor.grad().unwrap(),
            &case.eval.grads[&name].array(),
            floor,
        );
    }
}

/// The scale below which a PyTorch gradient counts as zero: a gradient that vanishes
/// in exact arithmetic is rounding noise of a few `ε` times the model's largest
/// gradient on both sides, so it passes when the two agree to `100·ε` of that.
fn zero_gradient_floor<T: Float>(grads: &BTreeMap<String, Encoded>) -> f64 {
    let largest = grads
        .values()
        .flat_map(|g| g.data.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    100.0 * T::epsilon().as_f64() * largest / common::tolerance::<T>()
}

/// The sequential networks of the fixture as `nn::Sequential` layer lists.
fn sequential_specs(name: &str) -> Option<Vec<LayerSpec>> {
    Some(match name {
        "BnMlp" => vec![
            LinearSpec(4, 8).without_bias(),
            BatchNorm1dSpec(8),
            ReLU,
            LinearSpec(8, 3),
        ],
        "LnMlp" => vec![
            LinearSpec(3, 6),
            LayerNormSpec(6),
            GELU("none"),
            LinearSpec(6, 2),
        ],
        "DropoutMlp" => vec![
            LinearSpec(4, 8),
            ReLU,
            DropoutSpec(0.3),
            LinearSpec(8, 8),
            Tanh,
            DropoutSpec(0.5),
            LinearSpec(8, 3),
        ],
        "AllOptions" => vec![
            LinearSpec(5, 6),
            LayerSpec::BatchNorm1d {
                num_features: 6,
                eps: 1e-3,
                momentum: 0.3,
                affine: true,
                track_running_stats: true,
            },
            Tanh,
            DropoutSpec(0.25),
            LinearSpec(6, 6),
            LayerSpec::LayerNorm {
                normalized_shape: 6,
                eps: 1e-5,
                elementwise_affine: false,
            },
            SiLU,
            LinearSpec(6, 4),
            LayerSpec::BatchNorm1d {
                num_features: 4,
                eps: 1e-5,
                momentum: 0.1,
                affine: false,
                track_running_stats: false,
            },
            LinearSpec(4, 2),
        ],
        "PractitionerMlp" => vec![
            LinearSpec(6, 16),
            BatchNorm1dSpec(16),
            GELU("none"),
            DropoutSpec(0.1),
            LinearSpec(16, 16),
            LayerNormSpec(16),
            SiLU,
            DropoutSpec(0.1),
            LinearSpec(16, 2),
        ],
        _ => return None,
    })
}

/// The same three steps and evaluation pass on an `nn::Sequential`.
fn compare_sequential<T: Float>(
    specs: Vec<LayerSpec>,
    case: &ModeCase,
    loss: &str,
    worst: &mut WorstError,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut model = Sequential::<T>::new(specs, &mut rng).unwrap();
    load_state(&mut model, &case.state, &case.name);
    model.manual_seed(case.seed);
    let loss_of = |y: &Tensor<T>, target: &OwnedTarget<T>| match (loss, target.target()) {
        ("ce", Target::Classes(c)) => y.cross_entropy(c).unwrap(),
        ("huber", Target::Values(v)) => y
            .huber_loss(&Tensor::new(v.to_owned().into_dyn()), 0.5)
            .unwrap(),
        ("mse", Target::Values(v)) => y
            .value_loss(
                &Tensor::new(v.to_owned().into_dyn()),
                nnscratch::kernels::ValueLoss::Mse,
                Reduction::Mean,
            )
            .unwrap(),
        _ => panic!("{}: unexpected loss", case.name),
    };
    let mut sgd = Sgd::new(case.lr);
    for (i, step) in case.steps.iter().enumerate() {
        let x = Tensor::new(step.x.array::<T>());
        let target = OwnedTarget::<T>::new(&step.target);
        Module::zero_grad(&model);
        let l = loss_of(&model.forward(&x).unwrap(), &target);
        l.backward().unwrap();
        worst.check(
            &format!("{} Sequential step {i} loss", case.name),
            &l.to_array(),
            &ndarray::arr0(T::of(step.loss)).into_dyn(),
        );
        sgd.step(&mut model).unwrap();
    }
    compare_state(
        &mut model,
        &case.trained,
        &format!("{} Sequential trained", case.name),
        worst,
    );
    model.eval();
    let x = Tensor::new(case.eval.x.array::<T>());
    let target = OwnedTarget::<T>::new(&case.eval.target);
    Module::zero_grad(&model);
    let y = model.forward(&x).unwrap();
    worst.check(
        &format!("{} Sequential eval output", case.name),
        &y.to_array(),
        &case.eval.output.array(),
    );
    let l = loss_of(&y, &target);
    l.backward().unwrap();
    let floor = zero_gradient_floor::<T>(&case.eval.grads);
    for (name, tensor) in model.named_parameters() {
        worst.check_above(
            &format!("{} Sequential eval grad {name}", case.name),
            &tensor.grad().unwrap(),
            &case.eval.grads[&name].array(),
            floor,
        );
    }
}

fn compare_all<T: Float>() -> WorstError {
    let fixtures = fixtures(T::DTYPE);
    assert_eq!(fixtures.modes.len(), 7);
    let mut worst = WorstError::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for case in &fixtures.modes {
        match case.name.as_str() {
            "BnMlp" => compare_compiled(
                BnMlp::<T>::new(&mut rng),
                case,
                BnMlp::manual_seed,
                &mut worst,
            ),
            "LnMlp" => compare_compiled(
                LnMlp::<T>::new(&mut rng),
                case,
                LnMlp::manual_seed,
                &mut worst,
            ),
            "DropoutMlp" => compare_compiled(
                DropoutMlp::<T>::new(&mut rng),
                case,
                DropoutMlp::manual_seed,
                &mut worst,
            ),
            "AllOptions" => compare_compiled(
                AllOptions::<T>::new(&mut rng),
                case,
                AllOptions::manual_seed,
                &mut worst,
            ),
            "NormGraph" => compare_compiled(
                NormGraph::<T>::new(&mut rng),
                case,
                NormGraph::manual_seed,
                &mut worst,
            ),
            "BnCnn" => compare_compiled(
                BnCnn::<T>::new(&mut rng),
                case,
                BnCnn::manual_seed,
                &mut worst,
            ),
            "PractitionerMlp" => compare_compiled(
                PractitionerMlp::<T>::new(&mut rng),
                case,
                PractitionerMlp::manual_seed,
                &mut worst,
            ),
            other => panic!("fixture model {other} is not declared in this test"),
        }
        if let Some(specs) = sequential_specs(&case.name) {
            let loss = match case.name.as_str() {
                "BnMlp" | "DropoutMlp" => "ce",
                "PractitionerMlp" => "huber",
                _ => "mse",
            };
            compare_sequential::<T>(specs, case, loss, &mut worst);
        }
    }
    worst
}

#[test]
fn training_mode_layers_match_pytorch_over_three_steps_and_in_evaluation_f64() {
    let worst = compare_all::<f64>();
    println!(
        "training modes f64: {} comparisons, largest relative error {:e} at {}\n{}",
        worst.compared,
        worst.error,
        worst.at,
        worst.table()
    );
}

#[test]
fn training_mode_layers_match_pytorch_over_three_steps_and_in_evaluation_f32() {
    let worst = compare_all::<f32>();
    println!(
        "training modes f32: {} comparisons, largest relative error {:e} at {}\n{}",
        worst.compared,
        worst.error,
        worst.at,
        worst.table()
    );
}

// ---------------------------------------------------------------- modes, buffers, masks

#[test]
fn batch_norm_in_training_rejects_a_single_row_and_evaluation_accepts_it() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut net = BnMlp::<f64>::new(&mut rng);
    let row = Array2::<f64>::ones((1, 4));
    let error = net.forward(row.view()).unwrap_err().to_string();
    assert!(
        error.contains("BatchNorm1d(8)") && error.contains("eval()"),
        "{error}"
    );
    net.eval();
    assert!(net.forward(row.view()).is_ok());

    let mut dynamic =
        Sequential::<f64>::new([LinearSpec(4, 8), BatchNorm1dSpec(8)], &mut rng).unwrap();
    let one = Tensor::new(row.into_dyn());
    assert!(dynamic.forward(&one).is_err());
    dynamic.eval();
    assert!(dynamic.forward(&one).is_ok());
}

#[test]
fn evaluation_leaves_running_statistics_alone_and_training_updates_them() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut net = BnMlp::<f64>::new(&mut rng);
    let (x, _, classes) = random_batch::<f64, BnMlp<f64>>(6, 8);
    let before = net.buffer_shapes();
    let snapshot = |net: &mut BnMlp<f64>| {
        let mut out = Vec::new();
        net.visit_buffers(&mut |b| match b.value {
            BufferValue::Float { value, .. } => out.extend(value.iter().copied()),
            BufferValue::Count(c) => out.push(*c as f64),
        });
        out
    };
    let initial = snapshot(&mut net);
    assert_eq!(
        initial[initial.len() - 1],
        0.0,
        "num_batches_tracked starts at 0"
    );
    net.eval();
    net.loss_backward(x.view(), &classes).unwrap();
    assert_eq!(snapshot(&mut net), initial, "evaluation changes no buffer");
    net.train();
    net.loss_backward(x.view(), &classes).unwrap();
    let after = snapshot(&mut net);
    assert_ne!(after, initial);
    assert_eq!(after[after.len() - 1], 1.0, "one batch tracked");
    assert_eq!(net.buffer_shapes(), before);
    assert_eq!(
        before,
        [
            ("1.running_mean".to_string(), vec![8]),
            ("1.running_var".to_string(), vec![8]),
            ("1.num_batches_tracked".to_string(), vec![])
        ]
    );
}

#[test]
fn dropout_masks_follow_the_seed_and_the_mode() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut net = DropoutMlp::<f64>::new(&mut rng);
    let (x, _, _) = random_batch::<f64, DropoutMlp<f64>>(7, 16);
    net.manual_seed(11);
    let first = net.forward(x.view()).unwrap().to_owned();
    let second = net.forward(x.view()).unwrap().to_owned();
    assert_ne!(first, second, "a new mask each training step");
    net.manual_seed(11);
    assert_eq!(
        net.forward(x.view()).unwrap().to_owned(),
        first,
        "the same seed, the same masks"
    );
    net.fix_dropout_masks(true);
    let fixed = net.forward(x.view()).unwrap().to_owned();
    assert_eq!(
        net.forward(x.view()).unwrap().to_owned(),
        fixed,
        "fixed-mask mode repeats"
    );
    net.fix_dropout_masks(false);
    net.eval();
    let eval = net.forward(x.view()).unwrap().to_owned();
    assert_eq!(
        net.forward(x.view()).unwrap().to_owned(),
        eval,
        "evaluation is deterministic"
    );
    // The twin carries the mode and the generators: the same outputs.
    let twin = net.to_dynamic();
    let twin_eval = twin
        .forward_no_grad(&Tensor::new(x.clone().into_dyn()))
        .unwrap();
    let error = nnscratch::check::relative_error(&twin_eval.to_array(), &eval.into_dyn());
    assert!(error < 1e-12, "{error}");
    net.train();
    let twin = net.to_dynamic();
    let compiled = net.forward(x.view()).unwrap().to_owned().into_dyn();
    let dynamic = twin
        .forward_no_grad(&Tensor::new(x.into_dyn()))
        .unwrap()
        .to_array();
    assert!(
        nnscratch::check::relative_error(&dynamic, &compiled) < 1e-12,
        "same mask, same output"
    );
}

#[test]
fn a_dropout_layer_drops_about_p_of_its_inputs_and_keeps_the_mean() {
    let mut layer = nnscratch::nn::Dropout::new(0.3, 1).unwrap();
    let x = Tensor::new(ArrayD::<f64>::ones(vec![200, 50]));
    let y = Module::<f64>::forward(&layer, &x).unwrap().to_array();
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((dropped - 0.3).abs() < 0.02, "dropped {dropped}");
    let mean = y.mean().unwrap();
    assert!(
        (mean - 1.0).abs() < 0.03,
        "inverted dropout keeps the mean: {mean}"
    );
    assert!(nnscratch::nn::Dropout::new(1.5, 0).is_err());
    layer.eval();
    assert_eq!(
        Module::<f64>::forward(&layer, &x).unwrap().to_array(),
        x.to_array()
    );
}

#[test]
fn buffers_round_trip_through_safetensors_under_pytorch_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let mut net = BnMlp::<f32>::new(&mut rng);
    let (x, _, classes) = random_batch::<f32, BnMlp<f32>>(9, 8);
    for _ in 0..2 {
        net.loss_backward(x.view(), &classes).unwrap();
    }
    nnscratch::io::save_safetensors(&mut net, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "0.weight",
            "1.bias",
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "1.weight",
            "3.bias",
            "3.weight"
        ]
    );
    let count = file.tensor("1.num_batches_tracked").unwrap();
    assert_eq!(count.dtype(), safetensors::Dtype::I64);
    assert_eq!(count.shape(), &[] as &[usize]);
    assert_eq!(count.data(), 2i64.to_le_bytes());

    // Into a fresh compiled model and into the dynamic Sequential of the same layers.
    net.eval();
    let expected = net.forward(x.view()).unwrap().to_owned().into_dyn();
    let mut fresh = BnMlp::<f32>::new(&mut rng);
    nnscratch::io::load_safetensors(&mut fresh, &path).unwrap();
    fresh.eval();
    assert_eq!(
        fresh.forward(x.view()).unwrap().to_owned().into_dyn(),
        expected
    );
    let mut sequential =
        Sequential::<f32>::new(sequential_specs("BnMlp").unwrap(), &mut rng).unwrap();
    nnscratch::io::load_safetensors(&mut sequential, &path).unwrap();
    sequential.eval();
    let y = sequential
        .forward_no_grad(&Tensor::new(x.into_dyn()))
        .unwrap()
        .to_array();
    assert!(nnscratch::check::relative_error(&y, &expected) < 1e-6);
}

#[test]
fn a_pytorch_batch_norm_state_dict_loads_and_evaluates_as_in_pytorch() {
    #[derive(Deserialize)]
    struct Interop {
        x: Encoded,
        eval_outputs: Encoded,
        num_batches_tracked: u64,
    }
    let dir = format!("{}/../tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let interop: Interop = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/batch_norm_interop.json")).unwrap(),
    )
    .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let mut net = BnMlp::<f32>::new(&mut rng);
    nnscratch::io::load_safetensors(
        &mut net,
        format!("{dir}/from_pytorch_batch_norm_f32.safetensors"),
    )
    .unwrap();
    let mut count = None;
    net.visit_buffers(&mut |b| {
        if let BufferValue::Count(c) = b.value {
            count = Some(*c);
        }
    });
    assert_eq!(count, Some(interop.num_batches_tracked));
    net.eval();
    let x: Array2<f32> = interop.x.array().into_dimensionality().unwrap();
    let y = net.forward(x.view()).unwrap().to_owned().into_dyn();
    let error = nnscratch::check::relative_error(&y, &interop.eval_outputs.array());
    assert!(error < 1e-6, "{error}");
}

#[test]
fn a_count_of_the_wrong_dtype_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut net = BnMlp::<f32>::new(&mut rng);
    nnscratch::io::save_safetensors(&mut net, &path).unwrap();
    // Rewrite the file with the count as F32.
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let one = 1.0f32.to_le_bytes();
    let mut views = Vec::new();
    for name in file.names() {
        let t = file.tensor(name).unwrap();
        let view = if name.ends_with("num_batches_tracked") {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![], &one).unwrap()
        } else {
            safetensors::tensor::TensorView::new(t.dtype(), t.shape().to_vec(), t.data()).unwrap()
        };
        views.push((name.to_string(), view));
    }
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    let error = nnscratch::io::load_safetensors(&mut net, &path)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("1.num_batches_tracked") && error.contains("I64"),
        "{error}"
    );
}
