//! A page that steps through forward and backward on the learner's own graph.
//!
//! [`explain`] writes one self-contained HTML file (inline SVG, CSS and script; nothing
//! is fetched, so it works offline) for the graph behind a tensor. Its step control
//! (buttons, a slider, ← and → keys, Home and End) walks the forward pass node by node,
//! then the backward pass in exactly the order `backward()` uses: the steps are
//! recorded by the same walk ([`Tensor::backward`] and this page share it). At each
//! backward step the page shows the node, its complete gradient, and for every input
//! the chain-rule product with its numbers, the local partial on the edge, and the
//! gradient accumulated there so far (a value used twice visibly receives two
//! contributions).
//!
//! Beside the graph: a finite-difference check per parameter (a directional derivative
//! along a random ±1 direction, re-running the recorded ops with
//! [`Tensor::recompute`]'s machinery), flags on dead ReLU units and saturated
//! sigmoid/tanh outputs, and large tensors as heatmaps with exact values on hover.
//!
//! Tensors are stored exactly: up to [`INLINE_ELEMENTS`] elements as JSON numbers, larger
//! ones as base64 of their little-endian bytes. A gradient equal to a value already
//! stored (a transpose's, a single use's contribution) is stored once and referred to,
//! which keeps the MNIST MLP's page at batch 1 near 2.5 MB.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use ndarray::ArrayD;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::layered::{Placement, place, xml_escape};
use super::{NodeKind, to_petgraph};
use crate::tensor::LeafKind;
use crate::{Error, Float, Result, Tensor};

/// Tensors of at most this many elements are written as JSON numbers.
pub const INLINE_ELEMENTS: usize = 64;

/// Local partials of at most this many elements are kept for the chain-rule display.
const MAX_LOCAL_ELEMENTS: usize = 4096;

/// What a compiled model adds to a node of its dynamic twin: the equations the compiler
/// derived for that value and the kernel calls the generated code makes.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    /// The value's forward equation and its backward equations.
    pub equations: Vec<String>,
    /// The generated kernel calls that compute them.
    pub code: Vec<String>,
}

/// Writes the step-through page for the graph behind `root` to `path` (atomically: a
/// reader never sees half a page). Gradients are those of `Σ root` (seed 1, as
/// `backward()`), computed again here, so `root` need not have been backpropagated.
///
/// ```
/// use nnscratch::{graph, Tensor};
/// let x = Tensor::from([1.0, -2.0]).with_label("x");
/// let w = Tensor::from([0.5, 0.25]).requires_grad_().with_label("w");
/// let loss = (&x * &w).tanh().sum().with_label("loss");
/// let html = graph::explain_html(&loss, "tiny")?;
/// assert!(html.starts_with("<!DOCTYPE html>") && html.contains("finite differences"));
/// # Ok::<(), nnscratch::Error>(())
/// ```
pub fn explain<T: Float>(root: &Tensor<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let title = path
        .file_stem()
        .map_or_else(|| "graph".to_string(), |s| s.to_string_lossy().into_owned());
    let html = explain_html(root, &title)?;
    crate::io::write_atomic(path, html.as_bytes())
}

/// The page of [`explain`] as a string, titled `title`.
pub fn explain_html<T: Float>(root: &Tensor<T>, title: &str) -> Result<String> {
    explain_annotated(root, title, &HashMap::new())
}

/// [`explain_html`] with annotations by node label (a compiled model's value names).
pub fn explain_annotated<T: Float>(
    root: &Tensor<T>,
    title: &str,
    annotations: &HashMap<String, Annotation>,
) -> Result<String> {
    let data = page_data(root, title, annotations)?;
    let json = serde_json::to_string(&data).map_err(|e| Error::InvalidArgument {
        what: "graph::explain".into(),
        expected: "a page that serialises".into(),
        found: e.to_string(),
    })?;
    // `</` cannot end the script element early when escaped this way.
    let json = json.replace("</", "<\\/");
    // One pass over the template, so that text inserted for one placeholder (a label
    // spelled `{{DATA}}`) is never taken for another.
    let mut html = String::with_capacity(TEMPLATE.len() + json.len() + 4096);
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        html.push_str(&rest[..start]);
        let after = &rest[start..];
        let (text, skip) = if after.starts_with("{{TITLE}}") {
            (xml_escape(title), "{{TITLE}}".len())
        } else if after.starts_with("{{SVG}}") {
            (svg(&data), "{{SVG}}".len())
        } else if after.starts_with("{{DATA}}") {
            (json.clone(), "{{DATA}}".len())
        } else {
            ("{{".to_string(), 2)
        };
        html.push_str(&text);
        rest = &after[skip..];
    }
    html.push_str(rest);
    Ok(html)
}

const TEMPLATE: &str = include_str!("explain.html");

/// One recorded backward step: the node, and what it sent to which of its inputs.
type Step<T> = (usize, Vec<(usize, ArrayD<T>)>);

/// Stores arrays once each; later equal arrays (or transposes) become references.
struct Store<T: Float> {
    kept: Vec<(String, ArrayD<T>)>,
}

impl<T: Float> Store<T> {
    /// The JSON of `array`, known as `name` (`"n3.value"`), or a reference to an equal
    /// array (or to one whose transpose it is) stored before.
    fn encode(&mut self, name: String, array: &ArrayD<T>) -> Value {
        if array.len() > INLINE_ELEMENTS {
            for (earlier, kept) in &self.kept {
                if kept.shape() == array.shape() && kept == array {
                    return json!({ "ref": earlier });
                }
                if kept.ndim() == 2 && array.ndim() == 2 && kept.t() == array.view() {
                    return json!({ "ref": earlier, "transpose": true });
                }
            }
            self.kept.push((name, array.clone()));
        }
        encode_array(array)
    }
}

fn encode_array<T: Float>(array: &ArrayD<T>) -> Value {
    if array.len() <= INLINE_ELEMENTS {
        let data: Vec<f64> = array.iter().map(|v| v.as_f64()).collect();
        return json!({ "shape": array.shape(), "data": data });
    }
    let mut bytes = Vec::with_capacity(array.len() * std::mem::size_of::<T>());
    for v in array.iter() {
        if T::DTYPE == "float32" {
            bytes.extend_from_slice(&(v.as_f64() as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&v.as_f64().to_le_bytes());
        }
    }
    let dtype = if T::DTYPE == "float32" { "f32" } else { "f64" };
    json!({
        "shape": array.shape(),
        "dtype": dtype,
        "b64": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

fn page_data<T: Float>(
    root: &Tensor<T>,
    title: &str,
    annotations: &HashMap<String, Annotation>,
) -> Result<Value> {
    let order = root.topological_order();
    let picture = to_petgraph(root);
    let id: HashMap<_, usize> = order
        .iter()
        .enumerate()
        .map(|(i, t)| (t.node_key(), i))
        .collect();

    // The backward pass, recorded step by step by backward()'s own walk.
    let mut grads: Vec<Option<ArrayD<T>>> = vec![None; order.len()];
    let mut steps: Vec<Step<T>> = Vec::new();
    if root.requires_grad() {
        let seed = ArrayD::from_elem(root.data().raw_dim(), T::one());
        root.walk_backward(seed, true, |node, grad, sent| {
            let n = id[&node.node_key()];
            grads[n] = Some(grad);
            steps.push((n, sent));
        });
    }
    // How many contributions each node receives, to number them on the page.
    let mut uses = vec![0usize; order.len()];
    for (node, sent) in &steps {
        for (input, _) in sent {
            uses[id[&order[*node].parents()[*input].node_key()]] += 1;
        }
    }

    let mut store = Store { kept: Vec::new() };
    let mut nodes = Vec::new();
    for (n, tensor) in order.iter().enumerate() {
        let node = &picture[petgraph::graph::NodeIndex::new(n)];
        let (kind, op) = match &node.kind {
            NodeKind::Op(name) => ("op", Some(name.clone())),
            NodeKind::Leaf(LeafKind::Parameter) => ("parameter", None),
            NodeKind::Leaf(LeafKind::Input) => ("input", None),
            NodeKind::Leaf(LeafKind::Constant) => ("constant", None),
        };
        let value = store.encode(format!("n{n}.value"), &tensor.data());
        let grad = grads[n]
            .as_ref()
            .map(|g| store.encode(format!("n{n}.grad"), g));
        let annotation = tensor.label().and_then(|label| annotations.get(&label));
        nodes.push(json!({
            "title": node.title,
            "label": tensor.label(),
            "kind": kind,
            "op": op,
            "grad_fn": tensor.grad_fn(),
            "shape": tensor.shape(),
            "value": value,
            "grad": grad,
            "uses": uses[n],
            "flags": flags(op.as_deref(), &tensor.data()),
            "equations": annotation.map(|a| a.equations.clone()),
            "code": annotation.map(|a| a.code.clone()),
        }));
    }

    let mut edges = Vec::new();
    let mut edge_id: HashMap<(usize, usize), usize> = HashMap::new();
    for (n, tensor) in order.iter().enumerate() {
        for (input, parent) in tensor.parents().iter().enumerate() {
            let partial = tensor
                .partial(input)
                .unwrap_or_else(|| unreachable!("input index in range"));
            let local = partial
                .value
                .as_ref()
                .filter(|v| v.len() <= MAX_LOCAL_ELEMENTS)
                .map(|v| store.encode(format!("e{}.local", edges.len()), v));
            edge_id.insert((n, input), edges.len());
            edges.push(json!({
                "from": id[&parent.node_key()],
                "to": n,
                "input": input,
                "formula": partial.formula,
                "local": local,
            }));
        }
    }

    let mut backward = Vec::new();
    let mut received = vec![0usize; order.len()];
    for (k, (n, sent)) in steps.iter().enumerate() {
        let sent: Vec<Value> = sent
            .iter()
            .enumerate()
            .map(|(j, (input, contribution))| {
                let parent = id[&order[*n].parents()[*input].node_key()];
                received[parent] += 1;
                // A parent's only contribution is its whole gradient, stored already.
                let stored = if uses[parent] == 1 {
                    json!({ "ref": format!("n{parent}.grad") })
                } else {
                    store.encode(format!("s{k}.{j}"), contribution)
                };
                json!({
                    "edge": edge_id[&(*n, *input)],
                    "parent": parent,
                    "contribution": stored,
                    "nth": received[parent],
                })
            })
            .collect();
        backward.push(json!({ "node": n, "sent": sent }));
    }

    let checks = finite_differences(root, &order, &grads);
    Ok(json!({
        "title": title,
        "dtype": T::DTYPE,
        "nodes": nodes,
        "edges": edges,
        "forward": (0..order.len()).collect::<Vec<_>>(),
        "backward": backward,
        "checks": checks,
    }))
}

/// Flags a learner should see: ReLU units dead for the whole batch, saturated
/// sigmoid/tanh outputs (their local derivative is below 0.02, so little gradient
/// passes).
fn flags<T: Float>(op: Option<&str>, value: &ArrayD<T>) -> Vec<String> {
    let mut flags = Vec::new();
    match op {
        Some("relu") if value.ndim() == 2 && !value.is_empty() => {
            let units = value.shape()[1];
            let dead = (0..units)
                .filter(|&j| {
                    value
                        .index_axis(ndarray::Axis(1), j)
                        .iter()
                        .all(|v| *v <= T::zero())
                })
                .count();
            if dead > 0 {
                flags.push(format!(
                    "dead ReLU: {dead} of {units} units are 0 for every example, so no gradient passes them"
                ));
            }
        }
        Some("relu") if !value.is_empty() => {
            let zero = value.iter().filter(|v| **v <= T::zero()).count();
            if zero > 0 {
                flags.push(format!(
                    "ReLU: {zero} of {} outputs are 0 (no gradient passes them)",
                    value.len()
                ));
            }
        }
        Some(name @ ("tanh" | "sigmoid")) => {
            let saturated = value
                .iter()
                .filter(|v| {
                    let y = v.as_f64();
                    if name == "tanh" {
                        y.abs() > 0.99
                    } else {
                        !(0.02..=0.98).contains(&y)
                    }
                })
                .count();
            if saturated > 0 {
                flags.push(format!(
                    "saturated {name}: {saturated} of {} outputs are near their limits (local derivative < 0.02)",
                    value.len()
                ));
            }
        }
        _ => {}
    }
    flags
}

/// A finite-difference check per parameter: the directional derivative of `Σ root`
/// along a random ±1 direction `d`, `(L(p + h·d) - L(p - h·d)) / 2h`, against `Σ grad ⊙
/// d` from the backward pass, the difference relative to `Σ |grad|`. Re-runs the
/// recorded ops; nothing is rebuilt.
fn finite_differences<T: Float>(
    root: &Tensor<T>,
    order: &[Tensor<T>],
    grads: &[Option<ArrayD<T>>],
) -> Vec<Value> {
    let (h, ok, warn) = if T::DTYPE == "float32" {
        (1e-2, 1e-2, 1e-1)
    } else {
        (1e-6, 1e-6, 1e-4)
    };
    let objective = |leaves: &HashMap<_, ArrayD<T>>| -> f64 {
        root.replay(leaves).iter().map(|v| v.as_f64()).sum()
    };
    let mut checks = Vec::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for (n, tensor) in order.iter().enumerate() {
        if tensor.leaf_kind() != Some(LeafKind::Parameter) || !tensor.requires_grad() {
            continue;
        }
        let Some(grad) = &grads[n] else { continue };
        let value = tensor.to_array();
        let direction = value.mapv(|_| {
            if rng.random_bool(0.5) {
                T::one()
            } else {
                -T::one()
            }
        });
        let analytic: f64 = grad
            .iter()
            .zip(direction.iter())
            .map(|(g, d)| g.as_f64() * d.as_f64())
            .sum();
        let step = T::of(h);
        let plus = &value + &direction.mapv(|d| d * step);
        let minus = &value - &direction.mapv(|d| d * step);
        let numeric = (objective(&HashMap::from([(tensor.node_key(), plus)]))
            - objective(&HashMap::from([(tensor.node_key(), minus)])))
            / (2.0 * h);
        // Relative to the size of the terms summed (Σ |g_i|), not to the sum itself, which
        // may cancel to near 0 (a symmetric input) and make any rounding look like 100%.
        let scale: f64 = grad.iter().map(|g| g.as_f64().abs()).sum();
        let error = (analytic - numeric).abs() / scale.max(analytic.abs()).max(1e-12);
        let status = if error <= ok {
            "ok"
        } else if error <= warn {
            "warn"
        } else {
            "bad"
        };
        checks.push(json!({
            "node": n,
            "name": tensor.label().unwrap_or_else(|| format!("parameter {n}")),
            "analytic": analytic,
            "numeric": numeric,
            "error": error,
            "status": status,
        }));
    }
    checks
}

const CHAR_WIDTH: f64 = 7.2;
const LINE_HEIGHT: f64 = 15.0;
const PADDING: f64 = 8.0;

/// Box text of a node on the page: its title and its shape.
fn box_lines(node: &Value) -> [String; 2] {
    let title = node["title"].as_str().unwrap_or("").to_string();
    let shape = node["shape"]
        .as_array()
        .map(|dims| {
            let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("[{}]", dims.join(", "))
        })
        .unwrap_or_default();
    [title, shape]
}

/// The graph as inline SVG: a group per node (`id="node-N"`) and per edge
/// (`id="edge-E"`), which the script highlights step by step.
fn svg(data: &Value) -> String {
    let nodes = data["nodes"].as_array().cloned().unwrap_or_default();
    let edges = data["edges"].as_array().cloned().unwrap_or_default();
    let mut graph: petgraph::graph::DiGraph<(), ()> = petgraph::graph::DiGraph::new();
    let indices: Vec<_> = nodes.iter().map(|_| graph.add_node(())).collect();
    for edge in &edges {
        let (from, to) = (
            edge["from"].as_u64().unwrap_or(0) as usize,
            edge["to"].as_u64().unwrap_or(0) as usize,
        );
        graph.add_edge(indices[from], indices[to], ());
    }
    let lines: Vec<[String; 2]> = nodes.iter().map(box_lines).collect();
    let Placement {
        boxes,
        width,
        height,
    } = place(&graph, |node| {
        let chars = lines[node.index()]
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(1)
            .max(4);
        (
            chars as f64 * CHAR_WIDTH + 2.0 * PADDING,
            2.0 * LINE_HEIGHT + PADDING,
        )
    });
    let mut svg = format!(
        r#"<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace">"#
    );
    svg.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>"#);
    for (e, edge) in edges.iter().enumerate() {
        let (from, to) = (
            edge["from"].as_u64().unwrap_or(0) as usize,
            edge["to"].as_u64().unwrap_or(0) as usize,
        );
        let (fx, fy, fw, fh) = boxes[from];
        let (tx, ty, tw, _) = boxes[to];
        let (x1, y1, x2, y2) = (fx + fw / 2.0, fy + fh, tx + tw / 2.0, ty);
        let (mx, my) = ((x1 + x2) / 2.0 + 4.0, (y1 + y2) / 2.0);
        svg.push_str(&format!(
            r#"<g class="edge" id="edge-{e}"><line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" marker-end="url(#arrow)"/><text x="{mx:.1}" y="{my:.1}" font-size="10">{}</text></g>"#,
            xml_escape(edge["formula"].as_str().unwrap_or(""))
        ));
    }
    for (n, node) in nodes.iter().enumerate() {
        let (x, y, w, h) = boxes[n];
        let kind = node["kind"].as_str().unwrap_or("op");
        svg.push_str(&format!(
            r#"<g class="node {kind}" id="node-{n}" data-id="{n}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="4"/><text font-size="12"><tspan x="{:.1}" y="{:.1}">{}</tspan><tspan x="{:.1}" y="{:.1}" class="shape">{}</tspan></text></g>"#,
            x + PADDING,
            y + PADDING / 2.0 + LINE_HEIGHT * 0.8,
            xml_escape(&lines[n][0]),
            x + PADDING,
            y + PADDING / 2.0 + LINE_HEIGHT * 1.8,
            xml_escape(&lines[n][1]),
        ));
    }
    svg.push_str("</svg>");
    svg
}
