//! The seed project's task: fit f(x) = sin(x) + 0.3·exp(x) on 100 evenly spaced points in
//! [-6, 4.5] with Linear(1,30) ReLU Linear(30,30) ReLU Linear(30,1) and MSE, mini-batches
//! of 20 shuffled each epoch, SGD with lr 1e-3 for 3000 epochs.
//!
//! Writes `function_approximation.svg` (function vs model) and `loss_curve.svg`.
//!
//!     cargo run --release --example function_approximation -- [--epochs 3000] [--lr 1e-3]
//!         [--optimizer sgd|adam] [--seed 0] [--batch-size 20] [--out-dir .]
//!         [--save PATH] [--load PATH] [--export-onnx PATH]

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{Args, export_onnx_if_asked, progress_bar};
use ndarray::Array2;
use nnscratch::data::{self, MiniBatches};
use nnscratch::model;
use nnscratch::optim::{Adam, Optimizer, Sgd};
use plotters::prelude::*;
use rand::SeedableRng;

model! {
    /// The seed's network for f(x) = sin(x) + 0.3·exp(x).
    pub struct SeedNet {
        input: 1,
        Linear(30), ReLU,
        Linear(30, 30), ReLU,
        Linear(1),
        loss: MSELoss,
    }
}

const USAGE: &str = "usage: function_approximation [--epochs N] [--lr LR] [--optimizer sgd|adam] \
[--seed S] [--batch-size B] [--out-dir DIR] [--save PATH] [--load PATH] [--export-onnx PATH]";

fn f(x: f32) -> f32 {
    x.sin() + 0.3 * x.exp()
}

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
            "epochs",
            "lr",
            "optimizer",
            "seed",
            "batch-size",
            "out-dir",
            "save",
            "load",
            "export-onnx",
        ],
    )?;
    let epochs: usize = args.get("epochs", 3000)?;
    let lr: f64 = args.get("lr", 1e-3)?;
    let optimizer: String = args.get("optimizer", "sgd".to_string())?;
    let seed: u64 = args.get("seed", 0)?;
    let batch_size: usize = args.get("batch-size", 20)?;
    let out_dir = PathBuf::from(args.get("out-dir", ".".to_string())?);
    if !["sgd", "adam"].contains(&optimizer.as_str()) {
        return Err(format!(
            "--optimizer must be sgd or adam, found `{optimizer}`\n\n{USAGE}"
        ));
    }

    // 100 evenly spaced points in [-6, 4.5].
    let x = Array2::from_shape_fn((100, 1), |(i, _)| -6.0 + 10.5 * i as f32 / 99.0);
    let y = x.mapv(f);

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut net = SeedNet::<f32>::new(&mut rng);
    if let Some(path) = args.optional("load") {
        nnscratch::io::load_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("loaded weights from {path}");
    }
    let mut sgd = Sgd::new(lr);
    let mut adam = Adam::new(lr);

    let started = Instant::now();
    let bar = progress_bar(epochs as u64, "epochs");
    let mut curve = Vec::with_capacity(epochs);
    let (mut x_buffer, mut y_buffer) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
    let mut batches = MiniBatches::sequential(x.nrows(), batch_size);
    for epoch in 0..epochs {
        batches.reshuffle(&mut rng);
        let mut total = 0.0;
        for rows in batches.iter() {
            let xb = data::gather_rows(x.view(), rows, &mut x_buffer).map_err(|e| e.to_string())?;
            let yb = data::gather_rows(y.view(), rows, &mut y_buffer).map_err(|e| e.to_string())?;
            total += f64::from(net.loss_backward(xb, yb).map_err(|e| e.to_string())?)
                * rows.len() as f64;
            match optimizer.as_str() {
                "adam" => adam.step(&mut net),
                _ => sgd.step(&mut net),
            }
            .map_err(|e| e.to_string())?;
        }
        let epoch_loss = total / x.nrows() as f64;
        curve.push(epoch_loss);
        if epoch % 25 == 0 || epoch + 1 == epochs {
            bar.set_position(epoch as u64 + 1);
            bar.set_message(format!("loss {epoch_loss:.5}"));
        }
    }
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();

    let mse = net.loss(x.view(), y.view()).map_err(|e| e.to_string())?;
    println!(
        "trained {epochs} epochs ({optimizer}, lr {lr}, batch {batch_size}) in {seconds:.2} s"
    );
    println!("final full-data MSE: {mse:.6}");

    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let plot = out_dir.join("function_approximation.svg");
    let curve_path = out_dir.join("loss_curve.svg");
    plot_function(&mut net, &x, &y, &plot)?;
    plot_loss_curve(&curve, &curve_path, &optimizer)?;
    println!("wrote {}", plot.display());
    println!("wrote {}", curve_path.display());
    if let Some(path) = args.optional("save") {
        nnscratch::io::save_safetensors(&mut net, &path).map_err(|e| e.to_string())?;
        println!("saved weights to {path}");
    }
    export_onnx_if_asked(&net, &args)?;
    Ok(())
}

/// Renders an SVG into a string, then writes it atomically.
fn save_svg(
    path: &std::path::Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), String> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&area)?;
        area.present().map_err(|e| e.to_string())?;
    }
    nnscratch::io::write_atomic(path, svg.as_bytes()).map_err(|e| e.to_string())
}

fn plot_function(
    net: &mut SeedNet<f32>,
    x: &Array2<f32>,
    y: &Array2<f32>,
    path: &std::path::Path,
) -> Result<(), String> {
    let grid = Array2::from_shape_fn((400, 1), |(i, _)| -6.0 + 10.5 * i as f32 / 399.0);
    let predicted = net
        .forward(grid.view())
        .map_err(|e| e.to_string())?
        .to_owned();
    save_svg(path, (800, 500), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(
                "f(x) = sin(x) + 0.3·exp(x) and the trained model",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(-6.2f32..4.7f32, -1.5f32..28.0f32)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("x")
            .y_desc("y")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                grid.iter().map(|&g| (g, f(g))),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("f(x)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                grid.iter().zip(predicted.iter()).map(|(&g, &p)| (g, p)),
                RED.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
        chart
            .draw_series(
                x.iter()
                    .zip(y.iter())
                    .map(|(&a, &b)| Circle::new((a, b), 2, BLACK.filled())),
            )
            .map_err(|e| e.to_string())?
            .label("training points")
            .legend(|(x, y)| Circle::new((x + 10, y), 2, BLACK.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())
    })
}

fn plot_loss_curve(curve: &[f64], path: &std::path::Path, optimizer: &str) -> Result<(), String> {
    let positive = |v: &f64| v.is_finite() && *v > 0.0;
    let low = curve
        .iter()
        .copied()
        .filter(positive)
        .fold(f64::INFINITY, f64::min)
        .min(1.0)
        * 0.8;
    let high = curve
        .iter()
        .copied()
        .filter(positive)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.25;
    save_svg(path, (800, 450), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("training loss per epoch ({optimizer})"),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0usize..curve.len().max(1), (low..high).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("MSE (log scale)")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                curve
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| positive(v))
                    .map(|(i, &v)| (i, v)),
                BLUE,
            ))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}
