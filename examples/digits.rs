//! Classifies the real handwritten digits embedded in the crate (1797 images of 8x8
//! pixels, UCI / scikit-learn; no download): a fixed seeded 80/20 train/test split,
//! pixels standardised with the training set's statistics,
//! Linear(64,128) ReLU Linear(128,64) ReLU Linear(64,10) with CrossEntropyLoss and Adam,
//! then the test accuracy and the confusion matrix. `--model cnn` trains a small
//! convolutional network on the same 8x8 images instead.
//!
//!     cargo run --release --example digits -- [--model mlp|cnn] [--epochs 30] [--lr 1e-3]
//!         [--batch-size 32] [--seed 0] [--save PATH] [--load PATH] [--export-onnx PATH]

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{
    Args, confusion_matrix, export_onnx_if_asked, predictions, print_confusion_matrix, progress_bar,
};
use ndarray::Array2;
use nnscratch::compiled::{CompiledModel, Target};
use nnscratch::data::{self, Dataset, MiniBatches};
use nnscratch::model;
use nnscratch::optim::{Adam, Optimizer};
use rand::SeedableRng;

model! {
    /// An MLP for 8x8 digit images.
    pub struct DigitNet {
        input: 64,
        Linear(128), ReLU,
        Linear(64), ReLU,
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// A small CNN for 8x8 digit images: two 3x3 convolutions, one 2x2 max-pooling,
    /// dropout against overfitting 1437 training images.
    pub struct DigitCnn {
        input: [1, 8, 8],
        Conv2d(16, 3, padding = 1), ReLU,
        Conv2d(32, 3, padding = 1), ReLU, MaxPool2d(2), Dropout(0.25),
        Flatten,
        Linear(64), ReLU, Dropout(0.5),
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

const USAGE: &str = "usage: digits [--model mlp|cnn] [--epochs N] [--lr LR] [--batch-size B] [--seed S] [--save PATH] [--load PATH] [--export-onnx PATH]";

/// The train/test split is fixed, so results compare across runs and machines.
const SPLIT_SEED: u64 = 42;

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse(
        USAGE,
        &[
            "model",
            "epochs",
            "lr",
            "batch-size",
            "seed",
            "save",
            "load",
            "export-onnx",
        ],
    )?;
    let epochs: usize = args.get("epochs", 30)?;
    let lr: f64 = args.get("lr", 1e-3)?;
    let batch_size: usize = args.get("batch-size", 32)?;
    let seed: u64 = args.get("seed", 0)?;

    let started = Instant::now();
    let digits = data::digits().map_err(|e| e.to_string())?;
    let (mut train, mut test) = digits.split(0.2, SPLIT_SEED).map_err(|e| e.to_string())?;
    // Standardise each pixel with the training set's mean and spread.
    let standardize = data::Standardize::fit(train.inputs.view());
    train.inputs = standardize
        .transform(train.inputs.view())
        .map_err(|e| e.to_string())?;
    test.inputs = standardize
        .transform(test.inputs.view())
        .map_err(|e| e.to_string())?;
    println!(
        "digits: {} training and {} test images of 8x8 pixels",
        train.len(),
        test.len()
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let model: String = args.get("model", "mlp".to_string())?;
    let (train, test) = (&train, &test);
    match model.as_str() {
        "mlp" => fit(
            DigitNet::<f32>::new(&mut rng),
            &args,
            train,
            test,
            (epochs, lr, batch_size),
            &mut rng,
            started,
        ),
        "cnn" => fit(
            DigitCnn::<f32>::new(&mut rng),
            &args,
            train,
            test,
            (epochs, lr, batch_size),
            &mut rng,
            started,
        ),
        other => Err(format!("--model: expected mlp or cnn, found {other}")),
    }
}

/// Trains `net`, then prints the test accuracy and the confusion matrix.
fn fit<M: CompiledModel<f32>>(
    mut net: M,
    args: &Args,
    train: &Dataset,
    test: &Dataset,
    (epochs, lr, batch_size): (usize, f64, usize),
    rng: &mut rand::rngs::StdRng,
    started: Instant,
) -> Result<(), String> {
    if let Some(path) = args.optional("load") {
        nnscratch::io::load_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("loaded weights from {path}");
    }
    let mut adam = Adam::new(lr);
    let bar = progress_bar(epochs as u64, "epochs");
    let (mut x_buffer, mut labels) = (Array2::zeros((0, 0)), Vec::new());
    for _ in 0..epochs {
        let batches = MiniBatches::shuffled(train.len(), batch_size, rng);
        let mut total = 0.0;
        for rows in batches.iter() {
            let x = data::gather_rows(train.inputs.view(), rows, &mut x_buffer)
                .map_err(|e| e.to_string())?;
            let y =
                data::gather_labels(&train.labels, rows, &mut labels).map_err(|e| e.to_string())?;
            total += net
                .loss_backward(x, Target::Classes(y))
                .map_err(|e| e.to_string())?
                * rows.len() as f32;
            adam.step(&mut net).map_err(|e| e.to_string())?;
        }
        bar.inc(1);
        bar.set_message(format!("loss {:.4}", total / train.len() as f32));
    }
    bar.finish();

    net.set_training(false); // evaluation mode: no dropout
    let scores = net.forward(test.inputs.view()).map_err(|e| e.to_string())?;
    let predicted = predictions(scores);
    let correct = predicted
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| p == l)
        .count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "test accuracy: {:.2}% ({correct}/{}) after {epochs} epochs, {seconds:.2} s in all",
        100.0 * correct as f64 / test.len() as f64,
        test.len()
    );
    println!("confusion matrix (rows: true digit, columns: predicted):");
    print_confusion_matrix(&confusion_matrix(&test.labels, &predicted, 10));
    if let Some(path) = args.optional("save") {
        nnscratch::io::save_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("saved weights to {path}");
    }
    export_onnx_if_asked(&net, args)?;
    Ok(())
}
