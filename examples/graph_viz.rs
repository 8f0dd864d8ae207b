//! Draws computational graphs with their partial derivatives.
//!
//! Picture 1 is the seed project's: `Linear(3, 2)` applied to `[0, 1, 2]`, summed, and
//! `backward()`. Picture 2 is a tiny MLP with a loss. Picture 3 is a `model!` network with
//! a skip connection as the compiler sees it: values, parameters, and on each edge the
//! partial derivative it derived. Each is written as DOT and as SVG (rendered in pure
//! Rust), plus PNG when Graphviz's `dot` is installed. Pictures 1 and 2 are also written
//! as step-through pages (`graph_viz.html`, `graph_viz_mlp.html`): open one in a
//! browser and walk forward and backward with the arrow keys. Picture 3's page
//! (`graph_viz_compiled.html`) adds, beside each value, what `model!` derived for it.
//!
//!     cargo run --release --example graph_viz [OUTPUT_DIR]

use std::path::PathBuf;

use nnscratch::nn::{Linear, Module, Sequential, Tanh};
use nnscratch::{Tensor, graph, model};
use rand::SeedableRng;

model! {
    /// A skip connection: the input is added back after two layers.
    struct Skip {
        x = input(2);
        h = Tanh(Linear(x, 3));
        y = Linear(h, 2) + x;
        out = Linear(y, 1);
        loss = MSELoss(out);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&out_dir)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);

    // 1. The seed's picture: y = sum(Linear(3, 2)([0, 1, 2])).
    let layer = Linear::<f64>::new(3, 2, &mut rng)?;
    let x = Tensor::arange(3).with_label("x");
    let y = layer.forward(&x)?.sum().with_label("y");
    y.backward()?;
    println!("y = {:.4}", y.item()?);
    println!(
        "dy/dW = {}",
        layer.weight.grad().expect("backward reached the weight")
    );
    println!(
        "dy/db = {}",
        layer
            .bias
            .as_ref()
            .expect("Linear::new has a bias")
            .grad()
            .expect("backward reached the bias")
    );
    for path in graph::save(&y, out_dir.join("graph_viz"))? {
        println!("wrote {}", path.display());
    }
    let page = out_dir.join("graph_viz.html");
    graph::explain(&y, &page)?;
    println!("wrote {}", page.display());

    // 2. A tiny MLP with a loss: Linear(2, 2) -> Tanh -> Linear(2, 1), MSE against 0.5.
    let mlp = Sequential::<f64>::new([Linear(2, 2), Tanh, Linear(2, 1)], &mut rng)?;
    let x = Tensor::from([[1.0, -1.0]]).with_label("x");
    let target = Tensor::from([[0.5]]).with_label("target");
    let loss = mlp.forward(&x)?.mse_loss(&target)?.with_label("loss");
    loss.backward()?;
    println!("loss = {:.4}", loss.item()?);
    for path in graph::save(&loss, out_dir.join("graph_viz_mlp"))? {
        println!("wrote {}", path.display());
    }
    let page = out_dir.join("graph_viz_mlp.html");
    graph::explain(&loss, &page)?;
    println!("wrote {}", page.display());

    // 3. A compiled model's graph, with the derivatives the compiler derived.
    println!("{}", Skip::<f64>::BACKWARD_EQUATIONS);
    for path in graph::save_graph(&Skip::<f64>::graph(), out_dir.join("graph_viz_compiled"))? {
        println!("wrote {}", path.display());
    }
    // Its step-through page on one example: the dynamic twin's steps, and beside each
    // value the equations model! derived and the kernel calls it generated.
    let skip = Skip::<f64>::new(&mut rng);
    let (x, target) = (ndarray::arr2(&[[0.5, -1.0]]), ndarray::arr2(&[[0.25]]));
    let page = out_dir.join("graph_viz_compiled.html");
    nnscratch::compiled::explain(
        &skip,
        x.view(),
        nnscratch::compiled::Target::Values(target.view()),
        &page,
    )?;
    println!("wrote {}", page.display());
    Ok(())
}
