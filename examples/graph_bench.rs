//! How long a picture of a computational graph takes, by graph size: the benchmark
//! behind the "5,000 nodes in at most 2 s" target (timed here, never in a unit test).
//!
//! Two kinds of graph: a chain `x → tanh → tanh → …` of N nodes, and the graph of a
//! small MLP's loss accumulated over S training steps (every step's ops stay in it).
//! Each is timed from the tensor to the finished SVG (`to_petgraph` + `to_svg`), the
//! median of a few runs.
//!
//!     cargo run --release --example graph_bench

use std::time::Instant;

use nnscratch::nn::{Linear, Module, ReLU, Sequential};
use nnscratch::{Tensor, graph};
use rand::SeedableRng;

/// Median seconds of `runs` calls of `f` (which returns the SVG's length).
fn median_seconds(runs: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        bytes = f();
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], bytes)
}

fn chain(n: usize) -> Tensor<f64> {
    let mut y = Tensor::parameter(ndarray::arr1(&[0.5, -0.25]).into_dyn()).with_label("x");
    for _ in 1..n - 1 {
        y = y.tanh();
    }
    y.sum()
}

fn mlp_steps(steps: usize) -> nnscratch::Result<Tensor<f64>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Sequential::<f64>::new([Linear(2, 4), ReLU, Linear(4, 1)], &mut rng)?;
    let x = Tensor::from([[0.0, 1.0], [1.0, 0.0]]);
    let target = Tensor::from([[1.0], [-1.0]]);
    let mut total = model.forward(&x)?.mse_loss(&target)?;
    for _ in 1..steps {
        total = &total + &model.forward(&x)?.mse_loss(&target)?;
    }
    Ok(total)
}

fn main() -> nnscratch::Result<()> {
    println!(
        "{:<22} {:>7} {:>12} {:>10}",
        "graph", "nodes", "median s", "SVG KiB"
    );
    let report = |name: String, root: &Tensor<f64>| -> nnscratch::Result<()> {
        let nodes = graph::to_petgraph(root).node_count();
        let mut failure = None;
        let (seconds, bytes) =
            median_seconds(3, || match graph::to_svg(&graph::to_petgraph(root)) {
                Ok(svg) => svg.len(),
                Err(e) => {
                    failure = Some(e);
                    0
                }
            });
        if let Some(e) = failure {
            return Err(e);
        }
        println!(
            "{name:<22} {nodes:>7} {seconds:>12.4} {:>10.1}",
            bytes as f64 / 1024.0
        );
        Ok(())
    };
    for n in [100, 300, 800, 5_000, 20_000] {
        report(format!("chain {n}"), &chain(n))?;
    }
    for steps in [10, 60, 600] {
        report(format!("MLP, {steps} steps"), &mlp_steps(steps)?)?;
    }
    Ok(())
}
