//! Convolutional networks in `model!`: compiled against the dynamic twin and finite
//! differences, against PyTorch fixtures, and the compile-time shape rules.

use nnscratch::compiled::CompiledModel;
use nnscratch::{Float, model};
use rand::SeedableRng;

mod common;

use common::{
    ModelCase, WorstError, check_gradients, compare_with_pytorch, random_batch, target_for,
};
use nnscratch::Tensor;
use nnscratch::nn::Module;
use nnscratch::optim::Parameters;
use serde::Deserialize;

model! {
    /// The benchmark's CNN, smaller: conv, ReLU, max-pool twice, then a Linear.
    pub struct SmallCnn {
        input: [1, 8, 8],
        Conv2d(4, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(4, 6, 3, padding = 1), ReLU, MaxPool2d(2),
        Flatten,
        Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// 1-D convolutions: stride, padding, dilation.
    pub struct Conv1dNet {
        input: [2, 12],
        Conv1d(4, 3, stride = 2, padding = 1), Tanh,
        Conv1d(4, 3, 3, dilation = 2),
        Flatten,
        Linear(2),
        loss: MSELoss,
    }
}

model! {
    /// Groups, a rectangular kernel, per-axis stride and padding, average pooling.
    pub struct GroupedCnn {
        input: [4, 7, 6],
        Conv2d(4, 8, (3, 2), stride = (2, 1), padding = (1, 0), groups = 2), GELU,
        AvgPool2d(2, stride = 1),
        Flatten,
        Linear(3),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// A residual conv block in the graph form: `r = conv(h) + x`.
    pub struct ResidualCnn {
        x = input([3, 6, 6]);
        h = ReLU(Conv2d(x, 3, 3, padding = 1));
        r = Conv2d(h, 3, 3, padding = 1) + x;
        p = MaxPool2d(ReLU(r), 2);
        out = Linear(Flatten(p), 4);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    /// Dilation without bias, max-pooling with stride and padding, a 1×1 convolution.
    pub struct DilatedCnn {
        input: [2, 9, 9],
        Conv2d(3, 3, dilation = 2, bias = false), SiLU,
        MaxPool2d(3, stride = 2, padding = 1),
        Conv2d(2, 1),
        Flatten,
        Linear(2),
        loss: HuberLoss(delta = 0.5),
    }
}

model! {
    /// Two branches joined along the channels by `cat`.
    pub struct CatCnn {
        x = input([1, 6, 6]);
        a = Conv2d(x, 2, 3, padding = 1);
        b = Conv2d(x, 3, 1);
        c = cat(a, b);
        out = Linear(Flatten(Tanh(c)), 3);
        loss = MSELoss(out);
    }
}

macro_rules! gradient_checks {
    ($($model:ident => $f64_test:ident, $f32_test:ident;)*) => {$(
        #[test]
        fn $f64_test() {
            check_gradients::<f64, $model<f64>>(|rng| $model::new(rng), (2, 3), 1e-10, Some(1e-5));
        }
        #[test]
        fn $f32_test() {
            check_gradients::<f32, $model<f32>>(|rng| $model::new(rng), (2, 3), 1e-4, None);
        }
    )*};
}

gradient_checks! {
    SmallCnn => small_cnn_matches_dynamic_and_finite_differences_f64, small_cnn_matches_dynamic_f32;
    Conv1dNet => conv1d_net_matches_dynamic_and_finite_differences_f64, conv1d_net_matches_dynamic_f32;
    GroupedCnn => grouped_cnn_matches_dynamic_and_finite_differences_f64, grouped_cnn_matches_dynamic_f32;
    ResidualCnn => residual_cnn_matches_dynamic_and_finite_differences_f64, residual_cnn_matches_dynamic_f32;
    DilatedCnn => dilated_cnn_matches_dynamic_and_finite_differences_f64, dilated_cnn_matches_dynamic_f32;
    CatCnn => cat_cnn_matches_dynamic_and_finite_differences_f64, cat_cnn_matches_dynamic_f32;
}

// ---------------------------------------------------------------- PyTorch fixtures

#[derive(Deserialize)]
struct Fixtures {
    cnns: Vec<ModelCase>,
}

fn fixtures(dtype: &str) -> Fixtures {
    let path = format!(
        "{}/../tests/fixtures/compiled_{dtype}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compare_all<T: Float>() -> WorstError {
    let fixtures = fixtures(T::DTYPE);
    assert_eq!(fixtures.cnns.len(), 6);
    let mut worst = WorstError::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for case in &fixtures.cnns {
        match case.name.as_str() {
            "SmallCnn" => {
                compare_with_pytorch(SmallCnn::<T>::new(&mut rng), case, true, &mut worst)
            }
            "Conv1dNet" => {
                compare_with_pytorch(Conv1dNet::<T>::new(&mut rng), case, true, &mut worst)
            }
            "GroupedCnn" => {
                compare_with_pytorch(GroupedCnn::<T>::new(&mut rng), case, true, &mut worst)
            }
            "ResidualCnn" => {
                compare_with_pytorch(ResidualCnn::<T>::new(&mut rng), case, true, &mut worst)
            }
            "DilatedCnn" => {
                compare_with_pytorch(DilatedCnn::<T>::new(&mut rng), case, true, &mut worst)
            }
            "CatCnn" => compare_with_pytorch(CatCnn::<T>::new(&mut rng), case, true, &mut worst),
            other => panic!("fixture model {other} is not declared in this test"),
        }
    }
    worst
}

#[test]
fn cnns_match_pytorch_compiled_and_dynamic_f64() {
    let worst = compare_all::<f64>();
    println!(
        "cnns f64: {} comparisons, largest relative error {:e} at {}\n{}",
        worst.compared,
        worst.error,
        worst.at,
        worst.table()
    );
}

#[test]
fn cnns_match_pytorch_compiled_and_dynamic_f32() {
    let worst = compare_all::<f32>();
    println!(
        "cnns f32: {} comparisons, largest relative error {:e} at {}\n{}",
        worst.compared,
        worst.error,
        worst.at,
        worst.table()
    );
}

// ---------------------------------------------------------------- threads

/// The samples of a batch are shared out among the workspace's threads: the results
/// must be those of one thread (the weight gradient's per-thread shares are summed in
/// another order, so to rounding).
fn threads_agree<M: CompiledModel<f64>>(
    new: fn(&mut rand::rngs::StdRng) -> M,
    set_threads: fn(&mut M, usize),
) {
    let (x, values, classes) = random_batch::<f64, M>(3, 7);
    let target = target_for::<f64, M>(&values, &classes);
    let run = |threads: usize| {
        let mut model = new(&mut rand::rngs::StdRng::seed_from_u64(1));
        set_threads(&mut model, threads);
        let output = model.forward(x.view()).unwrap().to_owned();
        let loss = model.loss_backward(x.view(), target).unwrap();
        let mut grads = Vec::new();
        model.visit_parameters(&mut |p| grads.push(p.grad_view().unwrap().to_owned()));
        (output, loss, grads)
    };
    let (one, two, three) = (run(1), run(2), run(3));
    for other in [&two, &three] {
        assert_eq!(one.0, other.0, "outputs");
        assert!((one.1 - other.1).abs() < 1e-12);
        for (a, b) in one.2.iter().zip(&other.2) {
            assert!(nnscratch::check::relative_error(a, b) < 1e-12);
        }
    }
}

#[test]
fn two_and_three_threads_compute_what_one_does() {
    threads_agree(SmallCnn::<f64>::new, SmallCnn::set_threads);
    threads_agree(GroupedCnn::<f64>::new, GroupedCnn::set_threads);
    threads_agree(ResidualCnn::<f64>::new, ResidualCnn::set_threads);
    threads_agree(Conv1dNet::<f64>::new, Conv1dNet::set_threads);
}

// ---------------------------------------------------------------- weights, pictures

#[test]
fn cnn_weights_move_between_sequential_and_compiled_through_safetensors() {
    use nnscratch::nn::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnn.safetensors");
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let mut sequential = Sequential::<f32>::new(
        [
            Conv2d(1, 4, 3).padding(1),
            ReLU,
            MaxPool2d(2),
            Conv2d(4, 6, 3).padding(1),
            ReLU,
            MaxPool2d(2),
            Flatten,
            Linear(24, 3),
        ],
        &mut rng,
    )
    .unwrap();
    nnscratch::io::save_safetensors(&mut sequential, &path).unwrap();
    let mut compiled = SmallCnn::<f32>::new(&mut rng);
    nnscratch::io::load_safetensors(&mut compiled, &path).unwrap();
    assert_eq!(
        compiled.parameter_shapes()[0],
        ("0.weight".to_string(), vec![4, 1, 3, 3])
    );
    let (x, _, _) = random_batch::<f32, SmallCnn<f32>>(22, 4);
    let images = Tensor::new(x.clone().into_dyn())
        .reshape(&[4, 1, 8, 8])
        .unwrap();
    let dynamic = sequential.forward_no_grad(&images).unwrap().to_array();
    let ours = compiled.forward(x.view()).unwrap().to_owned().into_dyn();
    let error = nnscratch::check::relative_error(&ours, &dynamic);
    assert!(error < 1e-5, "{error}");
}

#[test]
fn a_cnn_draws_its_graph_and_explains_its_derivation() {
    let graph = SmallCnn::<f32>::graph();
    let dot = nnscratch::graph::to_dot(&graph);
    assert!(dot.contains("Conv2d(1, 4, 3, padding = 1)"), "{dot}");
    assert!(dot.contains("MaxPool2d(2)"), "{dot}");
    assert!(dot.contains("col2im"), "the partials are drawn: {dot}");
    nnscratch::graph::to_svg(&graph).unwrap();
    let equations = SmallCnn::<f32>::BACKWARD_EQUATIONS;
    assert!(equations.contains("→ [4, 8, 8] per sample"), "{equations}");
    assert!(
        equations.contains("sent to each window's argmax"),
        "{equations}"
    );
    assert!(
        equations.contains("col2im([3.weight]ᵀ·d_h3)"),
        "{equations}"
    );
}
