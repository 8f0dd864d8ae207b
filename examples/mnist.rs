//! MNIST: 784-256-128-10 with ReLU, CrossEntropyLoss and Adam (learning rate halved after
//! each epoch), test accuracy after each epoch. Reads the four IDX files (plain or .gz) from the directory given.
//! `--optimizer adamw` uses AdamW (decoupled weight decay 0.01) and `--schedule cosine`
//! anneals the rate along a cosine over the epochs instead of halving it. `--model bn`
//! trains the same widths with BatchNorm1d and Dropout(0.2) after each hidden layer
//! (evaluated in `eval()` mode, with the running statistics).
//!
//!     cargo run --release --example mnist -- DIR [--epochs 3] [--lr 1e-3] [--batch-size 32]
//!         [--seed 0] [--model mlp|bn] [--optimizer adam|adamw] [--schedule halving|cosine]
//!         [--save PATH] [--load PATH] [--export-onnx PATH]
//!
//! In this repository's development setup: `-- ../shared/data/mnist`.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Args, export_onnx_if_asked, predictions, progress_bar};
use ndarray::Array2;
use nnscratch::compiled::{CompiledModel, Target};
use nnscratch::data::{self, Dataset, MiniBatches};
use nnscratch::model;
use nnscratch::optim::{Adam, CosineAnnealingLR, Optimizer, Schedule, Scheduler, StepLR};
use rand::SeedableRng;

model! {
    /// The classic MLP for 28x28 digits.
    pub struct MnistNet {
        input: 784,
        Linear(256), ReLU,
        Linear(128), ReLU,
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

model! {
    /// The same widths with batch normalisation and dropout: the Linears before a
    /// BatchNorm need no bias (the normalisation removes it).
    pub struct MnistBnNet {
        input: 784,
        Linear(256, bias = false), BatchNorm1d, ReLU, Dropout(0.2),
        Linear(128, bias = false), BatchNorm1d, ReLU, Dropout(0.2),
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

const USAGE: &str = "usage: mnist DIR [--epochs N] [--lr LR] [--batch-size B] [--seed S] [--model mlp|bn] [--optimizer adam|adamw] [--schedule halving|cosine] [--save PATH] [--load PATH] [--export-onnx PATH]
DIR holds train-images.idx3-ubyte, train-labels.idx1-ubyte, t10k-images.idx3-ubyte and
t10k-labels.idx1-ubyte, plain or .gz (e.g. ../shared/data/mnist)";

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Test accuracy, evaluated in batches of 1000 rows in evaluation mode.
fn accuracy<M: CompiledModel<f32>>(net: &mut M, test: &Dataset) -> Result<f64, String> {
    net.set_training(false);
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
    net.set_training(true);
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
            "model",
            "optimizer",
            "schedule",
            "save",
            "load",
            "export-onnx",
        ],
    )?;
    let [dir] = args.positional.as_slice() else {
        return Err(format!("expected one directory argument\n\n{USAGE}"));
    };
    let epochs: usize = args.get("epochs", 3)?;
    let lr: f64 = args.get("lr", 1e-3)?;
    let batch_size: usize = args.get("batch-size", 32)?;
    let seed: u64 = args.get("seed", 0)?;
    let optimizer: String = args.get("optimizer", "adam".to_string())?;
    let schedule: String = args.get("schedule", "halving".to_string())?;
    let mut adam = match optimizer.as_str() {
        "adam" => Adam::new(lr),
        "adamw" => Adam::adamw(lr),
        other => {
            return Err(format!(
                "--optimizer: expected adam or adamw, found {other}"
            ));
        }
    };
    let schedule: Box<dyn Schedule> = match schedule.as_str() {
        // Halve the learning rate after each epoch: big steps first, fine ones last.
        "halving" => Box::new(StepLR::new(1, 0.5)),
        "cosine" => Box::new(CosineAnnealingLR::new(epochs, 0.0)),
        other => {
            return Err(format!(
                "--schedule: expected halving or cosine, found {other}"
            ));
        }
    };
    let mut scheduler = Scheduler::new(schedule, &mut adam).map_err(|e| e.to_string())?;

    let started = Instant::now();
    let (train, test) = data::idx::mnist(dir).map_err(|e| e.to_string())?;
    println!(
        "MNIST: {} training and {} test images ({:.1} s to load)",
        train.len(),
        test.len(),
        started.elapsed().as_secs_f64()
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let model: String = args.get("model", "mlp".to_string())?;
    match model.as_str() {
        "mlp" => {
            let net = MnistNet::<f32>::new(&mut rng);
            fit(
                net,
                &args,
                &train,
                &test,
                (epochs, batch_size),
                &mut adam,
                &mut scheduler,
                &mut rng,
            )?
        }
        "bn" => {
            let net = MnistBnNet::<f32>::new(&mut rng);
            fit(
                net,
                &args,
                &train,
                &test,
                (epochs, batch_size),
                &mut adam,
                &mut scheduler,
                &mut rng,
            )?
        }
        other => return Err(format!("--model: expected mlp or bn, found {other}")),
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Trains `net` for the given epochs, printing the test accuracy after each.
#[allow(clippy::too_many_arguments)]
fn fit<M: CompiledModel<f32>>(
    mut net: M,
    args: &Args,
    train: &Dataset,
    test: &Dataset,
    (epochs, batch_size): (usize, usize),
    adam: &mut Adam<f32>,
    scheduler: &mut Scheduler<Box<dyn Schedule>>,
    rng: &mut rand::rngs::StdRng,
) -> Result<(), String> {
    if let Some(path) = args.optional("load") {
        nnscratch::io::load_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("loaded weights from {path}");
    }
    let (mut x_buffer, mut labels) = (Array2::zeros((0, 0)), Vec::new());
    for epoch in 1..=epochs {
        let epoch_started = Instant::now();
        let batches = MiniBatches::shuffled(train.len(), batch_size, rng);
        let bar = progress_bar(batches.len() as u64, "batches");
        let mut total = 0.0;
        for (i, rows) in batches.iter().enumerate() {
            let x = data::gather_rows(train.inputs.view(), rows, &mut x_buffer)
                .map_err(|e| e.to_string())?;
            let y =
                data::gather_labels(&train.labels, rows, &mut labels).map_err(|e| e.to_string())?;
            if rows.len() < 2 {
                continue; // BatchNorm needs two rows in training; a last lone row is skipped
            }
            total += net
                .loss_backward(x, Target::Classes(y))
                .map_err(|e| e.to_string())?;
            adam.step(&mut net).map_err(|e| e.to_string())?;
            if i % 50 == 0 {
                bar.set_position(i as u64);
                bar.set_message(format!("loss {:.4}", total / (i + 1) as f32));
            }
        }
        bar.finish_and_clear();
        let acc = accuracy(&mut net, test)?;
        println!(
            "epoch {epoch}: training loss {:.4}, test accuracy {:.2}% ({:.1} s)",
            total / batches.len() as f32,
            100.0 * acc,
            epoch_started.elapsed().as_secs_f64()
        );
        scheduler.step(adam);
    }
    if let Some(path) = args.optional("save") {
        nnscratch::io::save_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("saved weights to {path}");
    }
    export_onnx_if_asked(&net, args)?;
    Ok(())
}
