//! MNIST with a convolutional network: two 3x3 convolutions (16 and 32 channels, each
//! followed by ReLU and 2x2 max-pooling), then Linear(1568, 128), ReLU, Dropout(0.2) and
//! Linear(128, 10); CrossEntropyLoss, AdamW with a cosine schedule. Test accuracy and wall
//! time after each epoch. Reads the four IDX files (plain or .gz) from the directory given.
//!
//!     cargo run --release --example mnist_cnn -- DIR [--epochs 5] [--lr 2e-3]
//!         [--batch-size 64] [--seed 0] [--threads 1] [--save PATH] [--load PATH] [--export-onnx PATH]
//!
//! In this repository's development setup: `-- ../shared/data/mnist`.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Args, export_onnx_if_asked, predictions, progress_bar};
use ndarray::Array2;
use nnscratch::data::{self, Dataset, MiniBatches};
use nnscratch::model;
use nnscratch::optim::{Adam, CosineAnnealingLR, Optimizer, Scheduler};
use rand::SeedableRng;

model! {
    /// A small CNN for 28x28 digits; images arrive as rows of 784 pixels.
    pub struct MnistCnn {
        input: [1, 28, 28],
        Conv2d(16, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(32, 3, padding = 1), ReLU, MaxPool2d(2),
        Flatten,
        Linear(128), ReLU, Dropout(0.2),
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

const USAGE: &str = "usage: mnist_cnn DIR [--epochs N] [--lr LR] [--batch-size B] [--seed S] [--threads T] [--save PATH] [--load PATH] [--export-onnx PATH]
DIR holds train-images.idx3-ubyte, train-labels.idx1-ubyte, t10k-images.idx3-ubyte and
t10k-labels.idx1-ubyte, plain or .gz (e.g. ../shared/data/mnist)";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Test accuracy in evaluation mode, in batches of 1000 images.
fn accuracy(net: &mut MnistCnn<f32>, test: &Dataset) -> Result<f64, String> {
    net.eval();
    let mut correct = 0;
    for (start, chunk) in test
        .inputs
        .axis_chunks_iter(ndarray::Axis(0), 1000)
        .enumerate()
    {
        let scores = net.forward(chunk).map_err(|e| e.to_string())?;
        let labels = &test.labels[start * 1000..start * 1000 + chunk.nrows()];
        correct += predictions(scores)
            .iter()
            .zip(labels)
            .filter(|(p, l)| p == l)
            .count();
    }
    net.train();
    Ok(correct as f64 / test.len() as f64)
}

fn run() -> Result<(), String> {
    let args = Args::parse(
        USAGE,
        &[
            "epochs",
            "lr",
            "batch-size",
            "seed",
            "threads",
            "save",
            "load",
            "export-onnx",
        ],
    )?;
    let [dir] = args.positional.as_slice() else {
        return Err(format!("expected one directory argument\n\n{USAGE}"));
    };
    let epochs: usize = args.get("epochs", 5)?;
    let lr: f64 = args.get("lr", 2e-3)?;
    let batch_size: usize = args.get("batch-size", 64)?;
    let seed: u64 = args.get("seed", 0)?;
    let threads: usize = args.get("threads", 1)?;

    let started = Instant::now();
    let (train, test) = data::idx::mnist(dir).map_err(|e| e.to_string())?;
    println!(
        "MNIST: {} training and {} test images ({:.1} s to load)",
        train.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut net = MnistCnn::<f32>::new(&mut rng);
    net.set_threads(threads);
    if let Some(path) = args.optional("load") {
        nnscratch::io::load_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("loaded weights from {path}");
    }
    let mut adam = Adam::adamw(lr);
    let mut scheduler = Scheduler::new(CosineAnnealingLR::new(epochs, 0.0), &mut adam)
        .map_err(|e| e.to_string())?;
    let (mut x_buffer, mut labels) = (Array2::zeros((0, 0)), Vec::new());
    for epoch in 1..=epochs {
        let epoch_started = Instant::now();
        let batches = MiniBatches::shuffled(train.len(), batch_size, &mut rng);
        let bar = progress_bar(batches.len() as u64, "batches");
        let mut total = 0.0;
        for (i, rows) in batches.iter().enumerate() {
            let x = data::gather_rows(train.inputs.view(), rows, &mut x_buffer)
                .map_err(|e| e.to_string())?;
            let y =
                data::gather_labels(&train.labels, rows, &mut labels).map_err(|e| e.to_string())?;
            total += net.loss_backward(x, y).map_err(|e| e.to_string())?;
            adam.step(&mut net).map_err(|e| e.to_string())?;
            if i % 20 == 0 {
                bar.set_position(i as u64);
                bar.set_message(format!("loss {:.4}", total / (i + 1) as f32));
            }
        }
        bar.finish_and_clear();
        let acc = accuracy(&mut net, &test)?;
        println!(
            "epoch {epoch}: training loss {:.4}, test accuracy {:.2}% ({:.1} s)",
            total / batches.len() as f32,
            100.0 * acc,
            epoch_started.elapsed().as_secs_f64()
        );
        scheduler.step(&mut adam);
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = args.optional("save") {
        nnscratch::io::save_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("saved weights to {path}");
    }
    export_onnx_if_asked(&net, &args)?;
    Ok(())
}
