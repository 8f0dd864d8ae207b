//! Convolutional networks in `model!`: compiled against the dynamic twin and finite
//! differences, against PyTorch fixtures, and the compile-time shape rules.

use ndarray::Array2;
use nnscratch::compiled::{CompiledModel, Target};
use nnscratch::{Float, check, model};
use rand::{RngExt, SeedableRng};

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

fn check_model<T: Float, M: CompiledModel<T>>(
    new: fn(&mut rand::rngs::StdRng) -> M,
    dynamic_tol: f64,
    fd_tol: Option<f64>,
) {
    for seed in 0..2 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut model = new(&mut rng);
        let (x, values, classes) = batch::<T, M>(seed + 10, 3);
        let target = if M::LOSS.takes_classes() {
            Target::Classes(&classes)
        } else {
            Target::Values(values.view())
        };
        let report = check::gradients(&mut model, x.view(), target).unwrap();
        if seed == 0 {
            println!("{report}");
        }
        assert!(
            report.max_dynamic_error() <= dynamic_tol,
            "compiled vs dynamic:\n{report}"
        );
        if let Some(fd_tol) = fd_tol {
            assert!(
                report.max_finite_difference_error() <= fd_tol,
                "compiled vs finite differences:\n{report}"
            );
        }
    }
}

#[test]
fn small_cnn_matches_dynamic_and_finite_differences_f64() {
    check_model::<f64, SmallCnn<f64>>(|rng| SmallCnn::new(rng), 1e-10, Some(1e-5));
}
