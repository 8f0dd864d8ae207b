//! Pictures of computational graphs with their partial derivatives.
//!
//! [`to_petgraph`] turns the graph behind a tensor into a `petgraph` graph: one node per
//! tensor (the op, or the leaf's label, with value and gradient), one edge per op input,
//! from input to output, carrying the local partial derivative `∂output/∂input`.
//! [`to_dot`] writes it as Graphviz DOT; [`dot_to_svg`] lays the DOT out and renders SVG
//! in pure Rust (the `layout-rs` crate), so no system Graphviz is needed; when a `dot`
//! program is on `PATH`, [`dot_to_png`] also renders PNG through it.
//!
//! Colours tell the leaves apart: parameters are green, inputs blue, constants grey,
//! ops white. Small tensors (up to [`MAX_SHOWN_ELEMENTS`] elements) are shown with their
//! numbers, larger ones by their shape.
//!
//! ```
//! use nnscratch::{graph, Tensor};
//! let x = Tensor::<f64>::parameter(ndarray::arr1(&[1.0, -2.0]).into_dyn()).with_label("x");
//! let y = x.tanh().sum();
//! y.backward()?;
//! let picture = graph::to_petgraph(&y);
//! assert_eq!(picture.node_count(), 3); // x, tanh, sum
//! let dot = graph::to_dot(&picture);
//! assert!(dot.contains("1 - y^2"));
//! let svg = graph::dot_to_svg(&dot)?;
//! assert!(svg.contains("<svg") && svg.contains("tanh"));
//! # Ok::<(), nnscratch::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use ndarray::ArrayD;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::tensor::{LeafKind, Partial};
use crate::{Error, Float, Result, Tensor};

mod explain;
mod layered;

pub use explain::{Annotation, INLINE_ELEMENTS, explain, explain_annotated, explain_html};

/// Tensors with at most this many elements are drawn with their values.
pub const MAX_SHOWN_ELEMENTS: usize = 6;

/// What a node of a picture is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// The output of an op, named (`"matmul"`, `"tanh"`).
    Op(String),
    /// A leaf of the given kind.
    Leaf(LeafKind),
}

/// A node of a computational-graph picture.
#[derive(Debug, Clone)]
pub struct GraphNode<T: Float> {
    /// The op's name, or the leaf's label (`"x"`, `"0.weight"`; `"leaf"` if unlabelled).
    pub title: String,
    /// Op or leaf kind, which decides the colour.
    pub kind: NodeKind,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// The value, where known (a compiled model's graph knows only shapes).
    pub value: Option<ArrayD<T>>,
    /// The gradient `dL/d(this)` after `backward()`, if one was computed.
    pub grad: Option<ArrayD<T>>,
    /// Shown instead of the value when there is none (a compiled graph: `"[batch, 16]"`).
    pub note: Option<String>,
}

/// An edge from an op's input to the op's output.
#[derive(Debug, Clone)]
pub struct GraphEdge<T: Float> {
    /// Which input of the op this is (0 for the left operand).
    pub input: usize,
    /// `∂output/∂input`, the local partial derivative.
    pub partial: Partial<T>,
}

/// A computational graph ready to be drawn.
pub type Graph<T> = DiGraph<GraphNode<T>, GraphEdge<T>>;

/// The graph behind `root`: every tensor it depends on, edges from inputs to outputs.
pub fn to_petgraph<T: Float>(root: &Tensor<T>) -> Graph<T> {
    let mut graph = Graph::new();
    let mut index: HashMap<_, NodeIndex> = HashMap::new();
    for tensor in root.topological_order() {
        let kind = match tensor.leaf_kind() {
            Some(kind) => NodeKind::Leaf(kind),
            None => NodeKind::Op(tensor.op_name().unwrap_or_default()),
        };
        let title = match (&kind, tensor.label()) {
            (NodeKind::Leaf(_), Some(label)) => label,
            (NodeKind::Op(name), Some(label)) => format!("{label} = {name}"),
            (NodeKind::Op(name), None) => name.clone(),
            (NodeKind::Leaf(LeafKind::Constant), None) => "const".into(),
            (NodeKind::Leaf(_), None) => "leaf".into(),
        };
        let node = graph.add_node(GraphNode {
            title,
            kind,
            shape: tensor.shape(),
            value: Some(tensor.to_array()),
            grad: tensor.grad(),
            note: None,
        });
        for (input, parent) in tensor.parents().iter().enumerate() {
            let from = index[&parent.node_key()];
            let partial = tensor
                .partial(input)
                .unwrap_or_else(|| unreachable!("input index in range"));
            graph.add_edge(from, node, GraphEdge { input, partial });
        }
        index.insert(tensor.node_key(), node);
    }
    graph
}

/// Short text for an array: its numbers when small, else its shape.
pub fn describe<T: Float>(value: &ArrayD<T>) -> String {
    if value.len() > MAX_SHOWN_ELEMENTS {
        return format!("shape {:?}", value.shape());
    }
    let number = |v: &T| format_number(v.as_f64());
    match value.ndim() {
        0 => value.iter().map(number).collect(),
        1 => format!(
            "[{}]",
            value.iter().map(number).collect::<Vec<_>>().join(", ")
        ),
        _ => {
            let rows: Vec<String> = value
                .outer_iter()
                .map(|row| {
                    format!(
                        "[{}]",
                        row.iter().map(number).collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            format!("[{}]", rows.join(", "))
        }
    }
}

/// Four significant digits, without trailing zeros.
fn format_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() >= 1e4 || v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    let decimals = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Fill colour of a node kind.
fn fill_colour(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Op(_) => "white",
        NodeKind::Leaf(LeafKind::Parameter) => "palegreen",
        NodeKind::Leaf(LeafKind::Input) => "lightskyblue",
        NodeKind::Leaf(LeafKind::Constant) => "lightgray",
    }
}

/// A node's name in an edge label: the label of a labelled op (`"y"` of `"y = sum"`).
fn short_name<T: Float>(node: &GraphNode<T>) -> &str {
    node.title.split(" = ").next().unwrap_or(&node.title)
}

/// Lines of a DOT label: each escaped, joined by DOT's `\n`.
fn dot_label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("\\n")
}

/// Escapes text for a double-quoted DOT string. Control characters (a NUL byte in a
/// label, say), which DOT cannot hold, are written as visible `\u{..}` escapes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => {
                let _ = write!(out, "\\\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// The lines a node is drawn with: its title, its value (or shape), its gradient.
fn node_lines<T: Float>(node: &GraphNode<T>) -> Vec<String> {
    let mut lines = vec![node.title.clone()];
    match (&node.value, &node.note) {
        (Some(value), _) => lines.push(format!("value {}", describe(value))),
        (None, Some(note)) => lines.push(note.clone()),
        (None, None) => lines.push(format!("shape {:?}", node.shape)),
    }
    if let Some(grad) = &node.grad {
        lines.push(format!("grad {}", describe(grad)));
    }
    lines
}

/// The lines an edge is labelled with: `∂out/∂in: formula` and the partial's value.
fn edge_lines<T: Float>(graph: &Graph<T>, edge: petgraph::graph::EdgeIndex) -> Vec<String> {
    let Some((from, to)) = graph.edge_endpoints(edge) else {
        return Vec::new();
    };
    let partial = &graph[edge].partial;
    let (output, input) = (short_name(&graph[to]), short_name(&graph[from]));
    let mut lines = vec![format!("∂{output}/∂{input}: {}", partial.formula)];
    if let Some(value) = &partial.value {
        lines.push(describe(value));
    }
    lines
}

/// The graph as Graphviz DOT: nodes with value and gradient, edges labelled
/// `∂/∂ = formula` and the partial's value (or shape).
pub fn to_dot<T: Float>(graph: &Graph<T>) -> String {
    let mut dot = String::from("digraph computational_graph {\n");
    dot.push_str("  node [shape=box, style=filled, fontsize=12];\n  edge [fontsize=10];\n");
    for index in graph.node_indices() {
        let node = &graph[index];
        let _ = writeln!(
            dot,
            "  n{} [label=\"{}\", fillcolor=\"{}\"];",
            index.index(),
            dot_label(&node_lines(node)),
            fill_colour(&node.kind)
        );
    }
    for edge in graph.edge_indices() {
        let Some((from, to)) = graph.edge_endpoints(edge) else {
            continue;
        };
        let _ = writeln!(
            dot,
            "  n{} -> n{} [label=\"{}\"];",
            from.index(),
            to.index(),
            dot_label(&edge_lines(graph, edge))
        );
    }
    dot.push_str("}\n");
    dot
}

/// Graphs with more nodes than this are drawn by the fast layered layout of
/// [`to_svg`]; smaller ones by `layout-rs`, whose layout is nicer but whose time grows
/// much faster than the graph (0.4 s at 800 nodes, minutes at 5,000).
pub const LARGE_GRAPH_NODES: usize = 300;

/// The picture of `graph` as SVG: `layout-rs` (through [`to_dot`] and [`dot_to_svg`])
/// up to [`LARGE_GRAPH_NODES`] nodes, and above that a layered layout computed here in
/// time near-linear in the graph, with the same labels and colours.
pub fn to_svg<T: Float>(graph: &Graph<T>) -> Result<String> {
    if graph.node_count() > LARGE_GRAPH_NODES {
        return Ok(layered::svg(graph));
    }
    dot_to_svg(&to_dot(graph))
}

/// Lays out DOT text and renders it to SVG in pure Rust (no Graphviz needed), with
/// `layout-rs`. Fine for pictures of up to a few hundred nodes; [`to_svg`] draws larger
/// graphs quickly. Text that is not DOT, an empty graph, or any other input the layout
/// library cannot handle is an `Err`, never a panic.
pub fn dot_to_svg(dot: &str) -> Result<String> {
    let fail = |found: String| Error::InvalidArgument {
        what: "dot_to_svg".into(),
        expected: "Graphviz DOT text with at least one node, such as `digraph g { a -> b; }`"
            .into(),
        found,
    };
    let mut parser = layout::gv::DotParser::new(dot);
    let ast = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.process())) {
        Ok(Ok(ast)) => ast,
        Ok(Err(message)) => {
            return Err(fail(format!(
                "text the DOT parser rejects (its message: \"{message}\"; {} bytes of input)",
                dot.len()
            )));
        }
        Err(_) => return Err(fail("text the DOT parser cannot read".into())),
    };
    // The layout library panics on some inputs (an empty graph, for one): contain it.
    let svg = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut builder = layout::gv::GraphBuilder::new();
        builder.visit_graph(&ast);
        let mut visual = builder.get();
        if visual.num_nodes() == 0 {
            return None;
        }
        let mut svg = layout::backends::svg::SVGWriter::new();
        visual.do_it(false, false, false, &mut svg);
        Some(svg.finalize())
    }));
    match svg {
        Ok(Some(svg)) => Ok(fit_height(&svg)),
        Ok(None) => Err(fail("a graph with no nodes".into())),
        Err(_) => Err(fail(
            "a graph the layout library cannot lay out (it panicked)".into(),
        )),
    }
}

/// Shrinks the SVG canvas to its content: layout-rs reserves height in proportion to the
/// length of every text it draws, which leaves a large blank band under the picture.
fn fit_height(svg: &str) -> String {
    let number_after = |tag: &str, key: &str| -> Option<f64> {
        let start = tag.find(key)? + key.len();
        let end = tag[start..].find('"')? + start;
        tag[start..end].trim().parse().ok()
    };
    let mut bottom: f64 = 0.0;
    for (position, _) in svg.match_indices("<rect") {
        let tag = &svg[position
            ..svg[position..]
                .find("/>")
                .map_or(svg.len(), |e| position + e)];
        if let (Some(y), Some(height)) =
            (number_after(tag, " y=\""), number_after(tag, " height=\""))
        {
            bottom = bottom.max(y + height);
        }
    }
    for (position, _) in svg.match_indices("<text") {
        let end = svg[position..]
            .find("</text>")
            .map_or(svg.len(), |e| position + e);
        let tag = &svg[position..end];
        if let Some(y) = number_after(tag, " y=\"") {
            let lines = tag.matches("<tspan").count().max(1) as f64;
            bottom = bottom.max(y + 14.0 * (lines + 1.0));
        }
    }
    let Some(svg_start) = svg.find("<svg") else {
        return svg.to_string();
    };
    let (Some(header_end), true) = (
        svg[svg_start..].find('>').map(|e| svg_start + e),
        bottom > 0.0,
    ) else {
        return svg.to_string();
    };
    let header = &svg[..header_end];
    let (Some(width), Some(old_height)) = (
        number_after(header, " width=\""),
        number_after(header, " height=\""),
    ) else {
        return svg.to_string();
    };
    let height = (bottom + 10.0).min(old_height).ceil();
    let new_header = header
        .replacen(
            &format!(" height=\"{old_height}\""),
            &format!(" height=\"{height}\""),
            1,
        )
        .replacen(
            &format!("viewBox=\"0 0 {width} {old_height}\""),
            &format!("viewBox=\"0 0 {width} {height}\""),
            1,
        );
    format!("{new_header}{}", &svg[header_end..])
}

/// Renders DOT to a PNG file with the system's Graphviz `dot`, if one is on `PATH`.
/// Returns `Ok(false)`, writing nothing, when there is no `dot` program.
pub fn dot_to_png(dot: &str, path: impl AsRef<Path>) -> Result<bool> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let path = path.as_ref();
    let target = crate::io::resolve_target(path)?;
    let temporary = crate::io::temporary_beside(&target, path)?;
    let child = Command::new("dot")
        .arg("-Tpng")
        .arg("-o")
        .arg(temporary.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(crate::io::io_error(path, &error)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| crate::io::io_error(path, &e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| crate::io::io_error(path, &e))?;
    if !output.status.success() {
        return Err(Error::Io {
            path: path.display().to_string(),
            message: format!(
                "dot -Tpng failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    crate::io::persist(temporary, &target, path)?;
    Ok(true)
}

/// Writes the graph behind `root` as `{stem}.dot` and `{stem}.svg` (and `{stem}.png` when
/// Graphviz is installed), each atomically; returns the paths written.
pub fn save<T: Float>(root: &Tensor<T>, stem: impl AsRef<Path>) -> Result<Vec<std::path::PathBuf>> {
    save_graph(&to_petgraph(root), stem)
}

/// [`save`] for an already built graph (a compiled model's, for example).
pub fn save_graph<T: Float>(
    graph: &Graph<T>,
    stem: impl AsRef<Path>,
) -> Result<Vec<std::path::PathBuf>> {
    let stem = stem.as_ref();
    let dot = to_dot(graph);
    let dot_path = stem.with_extension("dot");
    let svg_path = stem.with_extension("svg");
    let png_path = stem.with_extension("png");
    crate::io::write_atomic(&dot_path, dot.as_bytes())?;
    crate::io::write_atomic(&svg_path, to_svg(graph)?.as_bytes())?;
    let mut written = vec![dot_path, svg_path];
    if dot_to_png(&dot, &png_path)? {
        written.push(png_path);
    }
    Ok(written)
}
