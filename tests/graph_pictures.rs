//! Graph pictures: the petgraph export carries the right values, gradients and partial
//! derivatives, the DOT shows them with leaf kinds told apart, and SVG renders without
//! Graphviz.

use ndarray::{arr1, arr2};
use nnscratch::Tensor;
use nnscratch::graph::{self, NodeKind};
use nnscratch::nn::{Linear, Module};
use nnscratch::tensor::LeafKind;
use rand::SeedableRng;

#[test]
fn the_seeds_picture_shows_values_gradients_and_partials() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let layer = Linear::<f64>::new(3, 2, &mut rng).unwrap();
    let x = Tensor::arange(3).with_label("x");
    let y = layer.forward(&x).unwrap().sum().with_label("y");
    y.backward().unwrap();
    let g = graph::to_petgraph(&y);
    // x, weight, transpose, matmul, bias, +, sum
    assert_eq!(g.node_count(), 7);
    assert_eq!(g.edge_count(), 6);
    let weight = g
        .node_indices()
        .find(|&i| g[i].title == "weight")
        .expect("weight node");
    assert_eq!(g[weight].kind, NodeKind::Leaf(LeafKind::Parameter));
    assert_eq!(
        g[weight].grad.clone().unwrap(),
        arr2(&[[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]).into_dyn()
    );
    let input = g
        .node_indices()
        .find(|&i| g[i].title == "x")
        .expect("x node");
    assert_eq!(g[input].kind, NodeKind::Leaf(LeafKind::Input));
    assert!(
        g[input].grad.is_none(),
        "an input does not require a gradient"
    );

    let dot = graph::to_dot(&g);
    assert!(dot.contains("grad [[0, 1, 2], [0, 1, 2]]"), "{dot}");
    assert!(
        dot.contains("palegreen") && dot.contains("lightskyblue"),
        "{dot}"
    );
    assert!(dot.contains("∂matmul/∂x: dA = dC·Bᵀ"), "{dot}");
    let svg = graph::dot_to_svg(&dot).unwrap();
    assert!(svg.contains("<svg") && svg.contains("grad [[0, 1, 2], [0, 1, 2]]"));
}

#[test]
fn edge_partials_are_the_local_derivatives() {
    let x = Tensor::<f64>::parameter(arr1(&[0.5, -1.0]).into_dyn()).with_label("x");
    let t = x.tanh();
    let s = (&t * 3.0).sum();
    s.backward().unwrap();
    let g = graph::to_petgraph(&s);
    let tanh_edge = g
        .edge_indices()
        .find(|&e| matches!(&g[g.edge_endpoints(e).unwrap().1].kind, NodeKind::Op(name) if name == "tanh"))
        .unwrap();
    let partial = g[tanh_edge].partial.value.clone().unwrap();
    let expected = arr1(&[1.0 - 0.5f64.tanh().powi(2), 1.0 - 1.0f64.tanh().powi(2)]).into_dyn();
    assert!((&partial - &expected).iter().all(|d| d.abs() < 1e-15));
    // The chain rule, read off the picture: grad(x) = grad(tanh) ⊙ ∂tanh/∂x.
    let x_node = g.edge_endpoints(tanh_edge).unwrap().0;
    let tanh_node = g.edge_endpoints(tanh_edge).unwrap().1;
    let chained = g[tanh_node].grad.clone().unwrap() * &partial;
    assert_eq!(chained, g[x_node].grad.clone().unwrap());
    // The constant 3.0 is a constant leaf, drawn grey.
    assert!(
        g.node_indices()
            .any(|i| g[i].kind == NodeKind::Leaf(LeafKind::Constant))
    );
    assert!(graph::to_dot(&g).contains("lightgray"));
}

#[test]
fn large_tensors_are_drawn_by_shape() {
    let x = Tensor::<f32>::parameter(ndarray::ArrayD::zeros(ndarray::IxDyn(&[3, 30])))
        .with_label("big");
    let y = x.sum();
    y.backward().unwrap();
    let dot = graph::to_dot(&graph::to_petgraph(&y));
    assert!(
        dot.contains("value shape [3, 30]") && dot.contains("grad shape [3, 30]"),
        "{dot}"
    );
    assert_eq!(
        graph::describe(&arr1(&[1.0f32, -0.123456, 12346.0]).into_dyn()),
        "[1, -0.1235, 1.235e4]"
    );
}

#[test]
fn save_writes_dot_and_svg_atomically() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let x = Tensor::<f64>::parameter(arr1(&[1.0, 2.0]).into_dyn()).with_label("x");
    let y = x.relu().sum();
    y.backward().unwrap();
    let written = graph::save(&y, dir.join("picture")).unwrap();
    assert!(written.len() >= 2);
    let dot = std::fs::read_to_string(dir.join("picture.dot")).unwrap();
    let svg = std::fs::read_to_string(dir.join("picture.svg")).unwrap();
    assert!(dot.starts_with("digraph") && svg.contains("</svg>"));
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left behind");
}

#[test]
fn bad_dot_text_is_an_error_not_a_panic() {
    let error = graph::dot_to_svg("digraph { a -> ; }").unwrap_err();
    assert!(
        error.to_string().contains("the DOT parser rejects"),
        "{error}"
    );
}
