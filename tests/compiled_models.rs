//! Twenty-nine `model!` networks covering every layer, every loss, both reductions, both forms, a skip connection,
//! a value used three times and a value multiplied by itself. For each: the compiled
//! gradients against the dynamic twin (f64 to 1e-12, f32 to 1e-5) and finite differences
//! (f64 to 1e-6), and loss and gradients against PyTorch after loading the fixture's
//! weights (`tests/fixtures/compiled_*.json`, written by `generate.py`).

mod common;

use common::{ModelCase, WorstError, check_gradients, compare_with_pytorch, random_batch};
use ndarray::Array2;
use nnscratch::{Float, check, model};
use rand::SeedableRng;
use serde::Deserialize;

model! {
    /// The smallest model: one Linear and MSE.
    pub struct TinyLinear { input: 3, Linear(2), loss: MSELoss, }
}

model! {
    /// The seed's function fitter, narrower.
    pub struct SineNet {
        input: 1,
        Linear(16), Tanh,
        Linear(16, 16), Tanh,
        Linear(1),
        loss: MSELoss,
    }
}

model! {
    pub struct ReluMlp { input: 3, Linear(8), ReLU, Linear(8, 6), Tanh, Linear(2), loss: MSELoss, }
}

model! {
    pub struct LeakyClassifier {
        input: 4,
        Linear(8), LeakyReLU,
        Linear(6), Sigmoid,
        Linear(5),
        loss: CrossEntropyLoss,
    }
}

model! {
    pub struct SteepLeaky { input: 2, Linear(5), LeakyReLU(0.2), Linear(1), loss: MSELoss, }
}

model! {
    pub struct DeepClassifier {
        input: 2,
        Linear(4), Sigmoid, Linear(4), ReLU, Linear(4), Tanh, Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// A skip connection: `y` adds the input back.
    pub struct Skip {
        x = input(4);
        h = Tanh(Linear(x, 16));
        y = Linear(h, 4) + x;
        out = Linear(Sigmoid(y), 1);
        loss = MSELoss(out);
    }
}

model! {
    /// `h` feeds three consumers: its gradient is the sum of three contributions.
    pub struct UsedThrice {
        x = input(3);
        h = Tanh(Linear(x, 4));
        a = Linear(h, 4) + h;
        b = h * a;
        out = Linear(b, 2);
        loss = MSELoss(out);
    }
}

model! {
    /// The input fans out to two branches that gate each other.
    pub struct Gated {
        x = input(4);
        a = ReLU(Linear(x, 6));
        g = Sigmoid(Linear(x, 6));
        out = Linear(a * g, 3);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    /// `h * h`: both operands of one product are the same value.
    pub struct Squared {
        x = input(2);
        h = LeakyReLU(Linear(x, 3), 0.1);
        sq = h * h;
        out = Linear(sq + h, 2);
        loss = MSELoss(out);
    }
}

model! {
    /// Softplus with PyTorch's defaults, and with both arguments (sequential form).
    pub struct SoftplusNet {
        input: 3,
        Linear(8), Softplus,
        Linear(6), Softplus(beta = 0.5, threshold = 2.0),
        Linear(2),
        loss: MSELoss,
    }
}

model! {
    /// Softplus in the graph form, positional arguments, fanned out into a sum. With
    /// `beta = 2, threshold = 1` many inputs lie beyond the threshold (`y = x` there).
    pub struct SoftplusGraph {
        x = input(3);
        h = Softplus(Linear(x, 6));
        s = Softplus(h, 2.0, 1.0) + h;
        out = Linear(s, 3);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    /// The activations of the training-mode issue, sequential form.
    pub struct ModernMlp {
        input: 3,
        Linear(8), GELU,
        Linear(8), SiLU,
        Linear(6), ELU(alpha = 0.5), Identity,
        Linear(4), LeakyReLU(-0.2),
        Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// The same in the graph form, with fan-out.
    pub struct ModernGraph {
        x = input(4);
        h = GELU(Linear(x, 6), approximate = "tanh");
        s = SiLU(h) + ELU(h, 0.5);
        out = Linear(LeakyReLU(s, -0.2), 2);
        loss = MSELoss(out);
    }
}

model! {
    /// LogSoftmax and NLLLoss: together, the cross-entropy (sequential form).
    pub struct LogSoftmaxNet {
        input: 4,
        Linear(8), ReLU,
        Linear(5), LogSoftmax(dim = 1),
        loss: NLLLoss,
    }
}

model! {
    /// A softmax gate inside the graph (graph form, `dim = -1`).
    pub struct SoftmaxGate {
        x = input(3);
        h = Tanh(Linear(x, 4));
        g = Softmax(Linear(x, 4), dim = -1) * h;
        out = Linear(g, 2);
        loss = MSELoss(out);
    }
}

model! {
    /// `bias = false` on the first Linear (PyTorch's `bias=False`).
    pub struct NoBiasMlp { input: 3, Linear(8, bias = false), Tanh, Linear(2), loss: MSELoss, }
}

model! {
    /// `bias = false` in the graph form, on both Linears.
    pub struct NoBiasGraph {
        x = input(3);
        h = Tanh(Linear(x, 5, bias = false));
        out = Linear(h, 2, bias = false);
        loss = MSELoss(out);
    }
}

model! {
    pub struct L1Net { input: 3, Linear(6), ReLU, Linear(2), loss: L1Loss, }
}

model! {
    pub struct SmoothL1Sum {
        input: 3, Linear(6), Tanh, Linear(2),
        loss: SmoothL1Loss(beta = 0.5, reduction = "sum"),
    }
}

model! {
    pub struct HuberNet { input: 3, Linear(6), SiLU, Linear(3), loss: HuberLoss(delta = 0.3), }
}

model! {
    pub struct BceNet { input: 4, Linear(6), ReLU, Linear(3), loss: BCEWithLogitsLoss, }
}

model! {
    /// One logit per row, the binary cross-entropy summed (graph form).
    pub struct BceSumGraph {
        x = input(4);
        h = ReLU(Linear(x, 5));
        out = Linear(h, 1);
        loss = BCEWithLogitsLoss(out, reduction = "sum");
    }
}

model! {
    pub struct CrossEntropySum {
        input: 4, Linear(6), GELU, Linear(4),
        loss: CrossEntropyLoss(reduction = "sum"),
    }
}

model! {
    pub struct NllSumGraph {
        x = input(3);
        h = Tanh(Linear(x, 6));
        out = LogSoftmax(Linear(h, 4), dim = 1);
        loss = NLLLoss(out, reduction = "sum");
    }
}

model! {
    /// Subtraction and constant factors: `a - b`, `0.5 * b`, `h / 4.0`, `-h`, `h * 2.0`.
    pub struct SubScale {
        x = input(4);
        a = Tanh(Linear(x, 6));
        b = Sigmoid(Linear(x, 6));
        d = a - 0.5 * b;
        e = -d / 4.0;
        out = Linear(d * 2.0 - e, 3);
        loss = MSELoss(out);
    }
}

model! {
    /// Concatenation along the features, in both spellings, the input among the operands.
    pub struct CatNet {
        x = input(3);
        a = ReLU(Linear(x, 4));
        b = Tanh(Linear(x, 5));
        c = cat(a, b);
        d = cat((c, x), dim = 1);
        out = Linear(d, 2);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    /// One Linear applied twice: its gradient is the sum over both uses.
    pub struct Shared {
        x = input(4);
        enc = Linear(4, 4);
        h1 = Tanh(enc(x));
        h2 = Tanh(enc(h1));
        out = Linear(h2 + h1, 2);
        loss = MSELoss(out);
    }
}

model! {
    /// A shared Linear without bias, both uses joined by `cat`.
    pub struct SharedCat {
        x = input(3);
        enc = Linear(3, 3, bias = false);
        a = enc(x);
        b = enc(ReLU(a));
        out = Linear(cat(a, b, a), 2);
        loss = MSELoss(out);
    }
}

model! {
    /// 40 layers: more kernel calls than one segment of `run` holds (32), so the
    /// generated code runs in segments (`nnscratch::compiled::segment`).
    pub struct DeepStack {
        input: 4,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(6), Tanh,
        Linear(2),
        loss: MSELoss,
    }
}

model! {
    /// A deep graph whose skip connection crosses segments of `run`.
    pub struct DeepSkip {
        x = input(3);
        a = Tanh(Linear(x, 5));
        h0 = Tanh(Linear(a, 5));
        h1 = Tanh(Linear(h0, 5));
        h2 = Tanh(Linear(h1, 5));
        h3 = Tanh(Linear(h2, 5));
        h4 = Tanh(Linear(h3, 5));
        h5 = Tanh(Linear(h4, 5));
        h6 = Tanh(Linear(h5, 5));
        h7 = Tanh(Linear(h6, 5));
        h8 = Tanh(Linear(h7, 5));
        h9 = Tanh(Linear(h8, 5));
        h10 = Tanh(Linear(h9, 5));
        h11 = Tanh(Linear(h10, 5));
        h12 = Tanh(Linear(h11, 5));
        h13 = Tanh(Linear(h12, 5));
        h14 = Tanh(Linear(h13, 5));
        h15 = Tanh(Linear(h14, 5));
        h16 = Tanh(Linear(h15, 5));
        h17 = Tanh(Linear(h16, 5));
        out = Linear(h17 + a, 2);
        loss = MSELoss(out);
    }
}

macro_rules! gradient_checks {
    ($($model:ident => $f64_test:ident, $f32_test:ident;)*) => {$(
        #[test]
        fn $f64_test() {
            check_gradients::<f64, $model<f64>>(|rng| $model::new(rng), (3, 5), 1e-12, Some(1e-6));
        }
        #[test]
        fn $f32_test() {
            check_gradients::<f32, $model<f32>>(|rng| $model::new(rng), (3, 5), 1e-5, None);
        }
    )*};
}

gradient_checks! {
    TinyLinear => tiny_linear_matches_dynamic_and_finite_differences_f64, tiny_linear_matches_dynamic_f32;
    SineNet => sine_net_matches_dynamic_and_finite_differences_f64, sine_net_matches_dynamic_f32;
    ReluMlp => relu_mlp_matches_dynamic_and_finite_differences_f64, relu_mlp_matches_dynamic_f32;
    LeakyClassifier => leaky_classifier_matches_dynamic_and_finite_differences_f64, leaky_classifier_matches_dynamic_f32;
    SteepLeaky => steep_leaky_matches_dynamic_and_finite_differences_f64, steep_leaky_matches_dynamic_f32;
    DeepClassifier => deep_classifier_matches_dynamic_and_finite_differences_f64, deep_classifier_matches_dynamic_f32;
    Skip => skip_connection_matches_dynamic_and_finite_differences_f64, skip_connection_matches_dynamic_f32;
    UsedThrice => value_used_three_times_matches_dynamic_and_finite_differences_f64, value_used_three_times_matches_dynamic_f32;
    Gated => gated_fan_out_matches_dynamic_and_finite_differences_f64, gated_fan_out_matches_dynamic_f32;
    Squared => value_times_itself_matches_dynamic_and_finite_differences_f64, value_times_itself_matches_dynamic_f32;
    SoftplusNet => softplus_net_matches_dynamic_and_finite_differences_f64, softplus_net_matches_dynamic_f32;
    SoftplusGraph => softplus_graph_matches_dynamic_and_finite_differences_f64, softplus_graph_matches_dynamic_f32;
    ModernMlp => modern_mlp_matches_dynamic_and_finite_differences_f64, modern_mlp_matches_dynamic_f32;
    ModernGraph => modern_graph_matches_dynamic_and_finite_differences_f64, modern_graph_matches_dynamic_f32;
    LogSoftmaxNet => log_softmax_nll_matches_dynamic_and_finite_differences_f64, log_softmax_nll_matches_dynamic_f32;
    SoftmaxGate => softmax_gate_matches_dynamic_and_finite_differences_f64, softmax_gate_matches_dynamic_f32;
    NoBiasMlp => no_bias_mlp_matches_dynamic_and_finite_differences_f64, no_bias_mlp_matches_dynamic_f32;
    NoBiasGraph => no_bias_graph_matches_dynamic_and_finite_differences_f64, no_bias_graph_matches_dynamic_f32;
    L1Net => l1_loss_matches_dynamic_and_finite_differences_f64, l1_loss_matches_dynamic_f32;
    SmoothL1Sum => smooth_l1_sum_matches_dynamic_and_finite_differences_f64, smooth_l1_sum_matches_dynamic_f32;
    HuberNet => huber_matches_dynamic_and_finite_differences_f64, huber_matches_dynamic_f32;
    BceNet => bce_with_logits_matches_dynamic_and_finite_differences_f64, bce_with_logits_matches_dynamic_f32;
    BceSumGraph => bce_sum_graph_matches_dynamic_and_finite_differences_f64, bce_sum_graph_matches_dynamic_f32;
    CrossEntropySum => cross_entropy_sum_matches_dynamic_and_finite_differences_f64, cross_entropy_sum_matches_dynamic_f32;
    NllSumGraph => nll_sum_graph_matches_dynamic_and_finite_differences_f64, nll_sum_graph_matches_dynamic_f32;
    SubScale => subtraction_and_constant_factors_match_dynamic_and_finite_differences_f64, subtraction_and_constant_factors_match_dynamic_f32;
    CatNet => concatenation_matches_dynamic_and_finite_differences_f64, concatenation_matches_dynamic_f32;
    Shared => a_shared_linear_matches_dynamic_and_finite_differences_f64, a_shared_linear_matches_dynamic_f32;
    SharedCat => a_shared_linear_in_a_concatenation_matches_dynamic_and_finite_differences_f64, a_shared_linear_in_a_concatenation_matches_dynamic_f32;
    DeepStack => a_deep_stack_run_in_segments_matches_dynamic_and_finite_differences_f64, a_deep_stack_run_in_segments_matches_dynamic_f32;
    DeepSkip => a_skip_across_segments_matches_dynamic_and_finite_differences_f64, a_skip_across_segments_matches_dynamic_f32;
}

// ---------------------------------------------------------------- PyTorch fixtures

#[derive(Deserialize)]
struct CompiledFixtures {
    dtype: String,
    models: Vec<ModelCase>,
}

fn fixtures(dtype: &str) -> CompiledFixtures {
    let path = format!(
        "{}/../tests/fixtures/compiled_{dtype}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compare_all<T: Float>() -> WorstError {
    let fixtures = fixtures(T::DTYPE);
    assert_eq!(fixtures.dtype, T::DTYPE);
    assert_eq!(fixtures.models.len(), 29);
    let mut worst = WorstError::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for case in &fixtures.models {
        match case.name.as_str() {
            "TinyLinear" => {
                compare_with_pytorch(TinyLinear::<T>::new(&mut rng), case, false, &mut worst)
            }
            "SineNet" => compare_with_pytorch(SineNet::<T>::new(&mut rng), case, false, &mut worst),
            "ReluMlp" => compare_with_pytorch(ReluMlp::<T>::new(&mut rng), case, false, &mut worst),
            "LeakyClassifier" => {
                compare_with_pytorch(LeakyClassifier::<T>::new(&mut rng), case, false, &mut worst)
            }
            "SteepLeaky" => {
                compare_with_pytorch(SteepLeaky::<T>::new(&mut rng), case, false, &mut worst)
            }
            "DeepClassifier" => {
                compare_with_pytorch(DeepClassifier::<T>::new(&mut rng), case, false, &mut worst)
            }
            "Skip" => compare_with_pytorch(Skip::<T>::new(&mut rng), case, false, &mut worst),
            "UsedThrice" => {
                compare_with_pytorch(UsedThrice::<T>::new(&mut rng), case, false, &mut worst)
            }
            "Gated" => compare_with_pytorch(Gated::<T>::new(&mut rng), case, false, &mut worst),
            "Squared" => compare_with_pytorch(Squared::<T>::new(&mut rng), case, false, &mut worst),
            "SoftplusNet" => {
                compare_with_pytorch(SoftplusNet::<T>::new(&mut rng), case, false, &mut worst)
            }
            "SoftplusGraph" => {
                compare_with_pytorch(SoftplusGraph::<T>::new(&mut rng), case, false, &mut worst)
            }
            "ModernMlp" => {
                compare_with_pytorch(ModernMlp::<T>::new(&mut rng), case, false, &mut worst)
            }
            "ModernGraph" => {
                compare_with_pytorch(ModernGraph::<T>::new(&mut rng), case, false, &mut worst)
            }
            "LogSoftmaxNet" => {
                compare_with_pytorch(LogSoftmaxNet::<T>::new(&mut rng), case, false, &mut worst)
            }
            "SoftmaxGate" => {
                compare_with_pytorch(SoftmaxGate::<T>::new(&mut rng), case, false, &mut worst)
            }
            "NoBiasMlp" => {
                compare_with_pytorch(NoBiasMlp::<T>::new(&mut rng), case, false, &mut worst)
            }
            "NoBiasGraph" => {
                compare_with_pytorch(NoBiasGraph::<T>::new(&mut rng), case, false, &mut worst)
            }
            "L1Net" => compare_with_pytorch(L1Net::<T>::new(&mut rng), case, false, &mut worst),
            "SmoothL1Sum" => {
                compare_with_pytorch(SmoothL1Sum::<T>::new(&mut rng), case, false, &mut worst)
            }
            "HuberNet" => {
                compare_with_pytorch(HuberNet::<T>::new(&mut rng), case, false, &mut worst)
            }
            "BceNet" => compare_with_pytorch(BceNet::<T>::new(&mut rng), case, false, &mut worst),
            "BceSumGraph" => {
                compare_with_pytorch(BceSumGraph::<T>::new(&mut rng), case, false, &mut worst)
            }
            "CrossEntropySum" => {
                compare_with_pytorch(CrossEntropySum::<T>::new(&mut rng), case, false, &mut worst)
            }
            "NllSumGraph" => {
                compare_with_pytorch(NllSumGraph::<T>::new(&mut rng), case, false, &mut worst)
            }
            "SubScale" => {
                compare_with_pytorch(SubScale::<T>::new(&mut rng), case, false, &mut worst)
            }
            "CatNet" => compare_with_pytorch(CatNet::<T>::new(&mut rng), case, false, &mut worst),
            "Shared" => compare_with_pytorch(Shared::<T>::new(&mut rng), case, false, &mut worst),
            "SharedCat" => {
                compare_with_pytorch(SharedCat::<T>::new(&mut rng), case, false, &mut worst)
            }
            other => panic!("fixture model {other} is not declared in this test"),
        }
    }
    worst
}

#[test]
fn compiled_models_match_pytorch_in_f64() {
    let worst = compare_all::<f64>();
    println!(
        "compiled f64: {} comparisons, largest relative error {:e} at {}\n{}",
        worst.compared,
        worst.error,
        worst.at,
        worst.table()
    );
}

#[test]
fn compiled_models_match_pytorch_in_f32() {
    let worst = compare_all::<f32>();
    println!(
        "compiled f32: {} comparisons, largest relative error {:e} at {}\n{}",
        worst.compared,
        worst.error,
        worst.at,
        worst.table()
    );
}

// ---------------------------------------------------------------- the generated API

#[test]
fn parameter_names_follow_pytorch_in_both_forms() {
    let names = |params: &[(&str, &[usize])]| {
        params
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(SineNet::<f32>::PARAMETERS),
        [
            "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"
        ]
    );
    assert_eq!(
        SineNet::<f32>::PARAMETERS[2],
        ("2.weight", &[16usize, 16][..])
    );
    assert_eq!(
        names(Skip::<f32>::PARAMETERS),
        [
            "h.weight",
            "h.bias",
            "y.weight",
            "y.bias",
            "out.weight",
            "out.bias"
        ]
    );
    assert_eq!(
        (Skip::<f32>::INPUT_WIDTH, Skip::<f32>::OUTPUT_WIDTH),
        (4, 1)
    );
}

#[test]
fn runtime_input_errors_are_errors_not_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = SineNet::<f64>::new(&mut rng);
    let wrong = Array2::<f64>::zeros((4, 3));
    let message = net.forward(wrong.view()).unwrap_err().to_string();
    assert_eq!(
        message,
        "SineNet: expected an input of shape [batch, 1] with batch >= 1, found shape [4, 3]"
    );
    let x = Array2::<f64>::zeros((4, 1));
    let bad_target = Array2::<f64>::zeros((3, 1));
    let message = net
        .loss_backward(x.view(), bad_target.view())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[4, 1]") && message.contains("[3, 1]"),
        "{message}"
    );
    let nan = Array2::from_elem((4, 1), f64::NAN);
    let message = net
        .loss_backward(x.view(), nan.view())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("SineNet loss") && message.contains("NaN"),
        "{message}"
    );

    let mut classifier = Gated::<f32>::new(&mut rng);
    let x = Array2::<f32>::zeros((2, 4));
    let message = classifier
        .loss_backward(x.view(), &[0, 3])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("target 3 at row 1") && message.contains("below 3"),
        "{message}"
    );
    let message = classifier
        .loss_backward(x.view(), &[0])
        .unwrap_err()
        .to_string();
    assert!(message.contains("2 class indices"), "{message}");
}

#[test]
fn a_transposed_input_is_read_correctly() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut net = ReluMlp::<f64>::new(&mut rng);
    let x = Array2::from_shape_fn((3, 5), |(i, j)| (i as f64 - j as f64) * 0.3);
    let expected = net
        .forward(x.t().as_standard_layout().view())
        .unwrap()
        .to_owned();
    let from_transposed = net.forward(x.t()).unwrap().to_owned();
    assert_eq!(expected, from_transposed);
}

/// Every kernel path this CPU has gives the same training step as the portable one, to
/// rounding (a model's `set_kernel_path`; `NNSCRATCH_GEMM` picks the default).
#[test]
fn every_kernel_path_computes_the_same_step() {
    use nnscratch::kernels::KernelPath;
    use nnscratch::optim::Parameters;
    let step = |path: KernelPath| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let mut net = SineNet::<f32>::new(&mut rng);
        net.set_kernel_path(path).unwrap();
        let (x, y, _) = random_batch::<f32, SineNet<f32>>(8, 20);
        let loss = net.loss_backward(x.view(), y.view()).unwrap();
        (loss, net.gradient("2.weight").unwrap())
    };
    let (loss, gradient) = step(KernelPath::Portable);
    for path in KernelPath::ALL.into_iter().filter(|p| p.is_available()) {
        let (other_loss, other_gradient) = step(path);
        assert!((other_loss - loss).abs() <= 1e-5 * loss.abs(), "{path:?}");
        assert!(
            check::relative_error(&other_gradient, &gradient) < 1e-4,
            "{path:?}"
        );
    }
}

/// `net`'s outputs for batches of each of `sizes` rows equal its dynamic twin's.
fn forward_matches_twin(
    net: &mut Skip<f64>,
    twin: &nnscratch::nn::GraphModule<f64>,
    sizes: &[usize],
) {
    for &rows in sizes {
        let (x, _, _) = random_batch::<f64, Skip<f64>>(rows as u64, rows);
        let compiled = net.forward(x.view()).unwrap().to_owned().into_dyn();
        let dynamic =
            nnscratch::nn::Module::forward(twin, &nnscratch::Tensor::new(x.into_dyn())).unwrap();
        assert!(
            check::relative_error(&compiled, &dynamic.to_array()) < 1e-14,
            "{rows} rows"
        );
    }
}

#[test]
fn the_batch_size_may_change_between_calls() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut net = Skip::<f64>::new(&mut rng);
    let twin = net.to_dynamic();
    forward_matches_twin(&mut net, &twin, &[1, 7, 3]);
}

/// The workspace remembers the batch size it is sized for and skips the resizing when
/// it repeats: a batch too large to allocate must not leave it believing otherwise.
#[test]
fn a_batch_too_large_to_allocate_fails_and_the_next_batch_is_sized_anew() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut net = Skip::<f64>::new(&mut rng);
    let twin = net.to_dynamic();
    let (small, _, _) = random_batch::<f64, Skip<f64>>(1, 3);
    net.forward(small.view()).unwrap();
    // Rows that cost no memory to view (stride 0), but buffers of 2^50 rows.
    let first = small.row(0);
    let huge = first.broadcast((1 << 50, small.ncols())).unwrap();
    let error = net.forward(huge).unwrap_err();
    assert!(
        matches!(error, nnscratch::Error::TooLarge { .. }),
        "{error}"
    );
    forward_matches_twin(&mut net, &twin, &[3, 5, 3]);
}

/// A compiled model's `parameter_layout` is its `PARAMETERS`, exactly what visiting
/// finds: optimizers trust it instead of comparing names.
#[test]
fn the_parameter_layout_is_what_visiting_finds() {
    use nnscratch::optim::Parameters;
    fn agrees<M: Parameters<f32>>(mut model: M) {
        let layout = model
            .parameter_layout()
            .expect("a compiled model has a layout");
        let listed: Vec<(String, Vec<usize>)> = layout
            .iter()
            .map(|(name, shape)| (name.to_string(), shape.to_vec()))
            .collect();
        assert_eq!(listed, model.parameter_shapes());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    agrees(SineNet::<f32>::new(&mut rng));
    agrees(Skip::<f32>::new(&mut rng));
    agrees(UsedThrice::<f32>::new(&mut rng));
    agrees(DeepSkip::<f32>::new(&mut rng));
}

/// An optimizer's state belongs to one set of parameters: another compiled model is
/// refused (nothing changes), one of the same type or its dynamic twin (the same names
/// and shapes) is not.
#[test]
fn optimizers_refuse_a_compiled_model_of_other_parameters() {
    use nnscratch::optim::{Optimizer, Parameters, Sgd};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut sine = SineNet::<f64>::new(&mut rng);
    let mut other = Skip::<f64>::new(&mut rng);
    // With momentum (state per tensor) and plain (one pass over the flat parameters).
    for mut sgd in [Sgd::new(0.1).momentum(0.9), Sgd::new(0.1)] {
        let (x, y, _) = random_batch::<f64, SineNet<f64>>(1, 4);
        sine.loss_backward(x.view(), y.view()).unwrap();
        sgd.step(&mut sine).unwrap();
        sgd.step(&mut sine).unwrap();
        let (x, y, _) = random_batch::<f64, Skip<f64>>(1, 4);
        other.loss_backward(x.view(), y.view()).unwrap();
        let before = other.parameter("h.weight").unwrap();
        let error = sgd.step(&mut other).unwrap_err();
        assert!(error.to_string().contains("optimizer step"), "{error}");
        assert_eq!(
            other.parameter("h.weight").unwrap(),
            before,
            "nothing changed"
        );

        let mut same_kind = SineNet::<f64>::new(&mut rng);
        let (x, y, _) = random_batch::<f64, SineNet<f64>>(2, 4);
        same_kind.loss_backward(x.view(), y.view()).unwrap();
        sgd.step(&mut same_kind).unwrap();
        let mut twin = sine.to_dynamic();
        sgd.step(&mut twin).unwrap();
    }
}

model! {
    /// Parameters of ranks 4, 1 and 2 (a convolution, then a Linear).
    pub struct ConvHead {
        input: [1, 5, 5],
        Conv2d(1, 2, 3), Tanh,
        Flatten, Linear(3),
        loss: MSELoss,
    }
}

/// A compiled model stores its parameters end to end: `flat_parameters` lends the values
/// (and gradients) that visiting lends tensor by tensor, each tensor one row-major run of
/// the slice, the runs covering it exactly, the gradients at the same places.
#[test]
fn flat_parameters_are_the_visited_tensors_end_to_end() {
    use nnscratch::compiled::CompiledModel;
    fn agrees<M: CompiledModel<f64>>(mut model: M) {
        let (x, y, _) = random_batch::<f64, M>(3, 4);
        model
            .loss_backward(x.view(), nnscratch::compiled::Target::Values(y.view()))
            .unwrap();
        let flat = model.flat_parameters().expect("a compiled model is flat");
        // Number every value by its place in the slice.
        for (k, value) in flat.values.iter_mut().enumerate() {
            *value = k as f64;
        }
        let total = flat.values.len();
        let grads = flat.grads.expect("backward filled them").to_vec();
        let mut runs = Vec::new();
        model.visit_parameters(&mut |p| {
            let (start, len) = (p.value[0] as usize, p.value.len());
            assert_eq!(len, p.shape.iter().product::<usize>(), "{}", p.name);
            let numbers: Vec<f64> = (start..start + len).map(|k| k as f64).collect();
            assert_eq!(p.value, &numbers[..], "{} is one run of the slice", p.name);
            assert_eq!(
                p.grad,
                Some(&grads[start..start + len]),
                "{}'s gradient",
                p.name
            );
            runs.push(start..start + len);
        });
        runs.sort_by_key(|run| run.start);
        let mut next = 0;
        for run in runs {
            assert_eq!(run.start, next, "no gap, no overlap");
            next = run.end;
        }
        assert_eq!(next, total, "the runs cover the slice");
        model.zero_grad();
        assert!(model.flat_parameters().unwrap().grads.is_none());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    agrees(SineNet::<f64>::new(&mut rng));
    agrees(Skip::<f64>::new(&mut rng));
    agrees(NoBiasMlp::<f64>::new(&mut rng));
    agrees(DeepSkip::<f64>::new(&mut rng));
    agrees(ConvHead::<f64>::new(&mut rng));
}

/// Plain SGD updates a compiled model in one pass over its flat parameters (after the
/// first step, which records them), a dynamic model tensor by tensor: the same updates.
#[test]
fn plain_sgd_in_one_pass_updates_as_tensor_by_tensor() {
    use nnscratch::optim::{Optimizer, Parameters, Sgd};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut net = ConvHead::<f64>::new(&mut rng);
    let mut twin = net.to_dynamic();
    let (mut sgd, mut twin_sgd) = (Sgd::new(0.1), Sgd::new(0.1));
    for step in 0..4 {
        let (x, y, _) = random_batch::<f64, ConvHead<f64>>(20 + step, 3);
        net.loss_backward(x.view(), y.view()).unwrap();
        sgd.step(&mut net).unwrap();
        twin.zero_grad();
        let input = nnscratch::Tensor::new(x.into_dyn());
        let loss = nnscratch::nn::Module::forward(&twin, &input)
            .unwrap()
            .mse_loss(&nnscratch::Tensor::new(y.into_dyn()))
            .unwrap();
        loss.backward().unwrap();
        twin_sgd.step(&mut twin).unwrap();
    }
    for (name, _) in ConvHead::<f64>::PARAMETERS {
        let (ours, theirs) = (net.parameter(name).unwrap(), twin.parameter(name).unwrap());
        let worst = (&ours - &theirs).fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(worst < 1e-12, "{name}: {worst:e}");
    }
}

#[test]
fn the_derived_equations_are_in_the_docs_and_the_graph() {
    let equations = UsedThrice::<f32>::BACKWARD_EQUATIONS;
    // h has three consumers: one contribution sets d_h, the others add to it.
    assert_eq!(equations.matches("d_h =").count(), 1, "{equations}");
    assert_eq!(equations.matches("d_h +=").count(), 2, "{equations}");
    assert!(
        equations.contains("d[out.weight] = d_outᵀ·b"),
        "{equations}"
    );
    let graph = UsedThrice::<f32>::graph();
    // x, 3 Linears with 2 parameter leaves each, tanh, +, *, and the loss.
    assert_eq!(graph.node_count(), 1 + 3 * 3 + 3 + 1);
    let dot = nnscratch::graph::to_dot(&graph);
    assert!(
        dot.contains("dW = dYᵀ·X")
            && dot.contains("dX = dY ⊙ (1 - Y²)")
            && dot.contains("[batch, 4]"),
        "{dot}"
    );
}

#[test]
fn softplus_equations_and_picture_labels() {
    let equations = SoftplusNet::<f64>::BACKWARD_EQUATIONS;
    assert!(
        equations.contains("h3 = ln(1 + e^(0.5·h2))/0.5 (h2 where 0.5·h2 > 2)"),
        "{equations}"
    );
    assert!(
        equations.contains("d_h2 = d_h3 ⊙ σ(0.5·h2) (1 where 0.5·h2 > 2)"),
        "{equations}"
    );
    let dot = nnscratch::graph::to_dot(&SoftplusGraph::<f64>::graph());
    assert!(dot.contains("Softplus(2, 1)"), "{dot}");
    assert!(dot.contains("dX = dY ⊙ σ(2·X) (1 if 2·X > 1)"), "{dot}");
    // The dynamic twin names the op with its arguments.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let net = SoftplusGraph::<f64>::new(&mut rng).to_dynamic();
    let x = nnscratch::Tensor::new(ndarray::Array2::<f64>::ones((2, 3)).into_dyn());
    let y = nnscratch::nn::Module::forward(&net, &x).unwrap();
    let dot = nnscratch::graph::to_dot(&nnscratch::graph::to_petgraph(&y));
    assert!(
        dot.contains("softplus(2, 1)") && dot.contains("softplus(1, 20)"),
        "{dot}"
    );
}

#[test]
fn sgd_trains_a_compiled_model() {
    use nnscratch::optim::{Optimizer, Sgd};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut net = SineNet::<f32>::new(&mut rng);
    let x = Array2::from_shape_fn((32, 1), |(i, _)| i as f32 / 8.0 - 2.0);
    let t = x.mapv(f32::sin);
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    let first = net.loss(x.view(), t.view()).unwrap();
    for _ in 0..300 {
        net.loss_backward(x.view(), t.view()).unwrap();
        sgd.step(&mut net).unwrap();
    }
    let last = net.loss(x.view(), t.view()).unwrap();
    assert!(last < first / 20.0, "{first} -> {last}");
}
