//! Dropout, BatchNorm1d and LayerNorm: compiled against dynamic and finite differences in
//! both modes, PyTorch fixtures over several training steps (running statistics
//! included), and the mode switches themselves.

use ndarray::Array2;
use nnscratch::compiled::{CompiledModel, Target};
use nnscratch::optim::{Optimizer, Sgd};
use nnscratch::{Float, check, model};
use rand::{RngExt, SeedableRng};

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

/// A random batch and target for a model.
fn batch<T: Float, M: CompiledModel<T>>(
    seed: u64,
    rows: usize,
) -> (Array2<T>, Array2<T>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((rows, M::INPUT_WIDTH), || {
        T::of(rng.random_range(-2.0..2.0))
    });
    let values = Array2::from_shape_simple_fn((rows, M::OUTPUT_WIDTH), || {
        T::of(rng.random_range(-1.0..1.0))
    });
    let classes = (0..rows)
        .map(|_| rng.random_range(0..M::OUTPUT_WIDTH))
        .collect();
    (x, values, classes)
}

fn target<'a, T: Float, M: CompiledModel<T>>(
    values: &'a Array2<T>,
    classes: &'a [usize],
) -> Target<'a, T> {
    if M::LOSS.takes_classes() {
        Target::Classes(classes)
    } else {
        Target::Values(values.view())
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
            let (x, values, classes) = batch::<T, M>(100 + step, 6);
            model.zero_grad();
            model
                .loss_backward(x.view(), target::<T, M>(&values, &classes))
                .unwrap();
            sgd.step(&mut model).unwrap();
        }
        for training in [true, false] {
            model.set_training(training);
            let (x, values, classes) = batch::<T, M>(seed + 10, 5);
            let before = model.buffer_shapes();
            let report =
                check::gradients(&mut model, x.view(), target::<T, M>(&values, &classes)).unwrap();
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

macro_rules! gradient_checks {
    ($($model:ident => $f64_test:ident, $f32_test:ident;)*) => {$(
        #[test]
        fn $f64_test() {
            check_model::<f64, $model<f64>>(|rng| $model::new(rng), 1e-7, Some(1e-6));
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
}
