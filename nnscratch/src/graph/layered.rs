//! A fast layered layout for large graphs (the pictures of whole training graphs).
//!
//! The classic Sugiyama steps, each kept to near-linear time:
//!
//! 1. **layers**: a node's layer is the length of the longest path reaching it
//!    (one pass in topological order), so every edge points downwards;
//! 2. **order within a layer**: one downward sweep sorting each layer by the mean
//!    position of a node's operands (the barycentre heuristic), which keeps chains
//!    straight and reduces crossings;
//! 3. **coordinates**: boxes sized to their text, packed left to right per layer and
//!    centred on the widest layer; edges are straight lines with their partial's label
//!    at the middle.
//!
//! It draws what `layout-rs` draws (the same lines of text and colours) without edge
//! routing around boxes; for a few hundred nodes `layout-rs` is used instead.

use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use super::{Graph, edge_lines, fill_colour, node_lines};
use crate::Float;

/// Approximate width of one character of 12 px text, and the height of a text line.
const CHAR_WIDTH: f64 = 7.0;
const LINE_HEIGHT: f64 = 15.0;
/// Space around text inside a box, between boxes, and between layers.
const PADDING: f64 = 8.0;
const GAP_X: f64 = 24.0;
const GAP_Y: f64 = 56.0;

/// Where each node's box goes: `(x, y, width, height)` by node index, given each box's
/// size; and the width and height of the whole picture.
pub(super) struct Placement {
    pub boxes: Vec<(f64, f64, f64, f64)>,
    pub width: f64,
    pub height: f64,
}

/// Places boxes of the given sizes in layers (see the module docs).
pub(super) fn place<N, E>(
    graph: &petgraph::graph::DiGraph<N, E>,
    size: impl Fn(NodeIndex) -> (f64, f64),
) -> Placement {
    let order = topological_order(graph);
    let n = graph.node_count();

    // 1. Layers: longest path from a source.
    let mut layer = vec![0usize; n];
    for &node in &order {
        for operand in graph.neighbors_directed(node, Direction::Incoming) {
            layer[node.index()] = layer[node.index()].max(layer[operand.index()] + 1);
        }
    }
    let depth = layer.iter().max().map_or(0, |&d| d + 1);
    let mut layers: Vec<Vec<NodeIndex>> = vec![Vec::new(); depth];
    for &node in &order {
        layers[layer[node.index()]].push(node);
    }

    // 2. Order within each layer by the barycentre of the operands' positions.
    let mut position = vec![0.0f64; n];
    for nodes in &mut layers {
        let key = |node: &NodeIndex| {
            let (sum, count) = graph
                .neighbors_directed(*node, Direction::Incoming)
                .fold((0.0, 0usize), |(s, c), o| (s + position[o.index()], c + 1));
            if count == 0 {
                f64::from(u32::try_from(node.index()).unwrap_or(u32::MAX))
            } else {
                sum / count as f64
            }
        };
        let mut keyed: Vec<(f64, NodeIndex)> = nodes.iter().map(|n| (key(n), *n)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (rank, (_, node)) in keyed.iter().enumerate() {
            position[node.index()] = rank as f64;
        }
        *nodes = keyed.into_iter().map(|(_, n)| n).collect();
    }

    // 3. Coordinates.
    let row_widths: Vec<f64> = layers
        .iter()
        .map(|nodes| nodes.iter().map(|&v| size(v).0 + GAP_X).sum::<f64>())
        .collect();
    let width = row_widths.iter().copied().fold(0.0, f64::max) + GAP_X;
    let mut boxes = vec![(0.0, 0.0, 0.0, 0.0); n]; // x, y, w, h
    let mut y = GAP_X;
    for (nodes, row_width) in layers.iter().zip(&row_widths) {
        let mut x = (width - row_width) / 2.0 + GAP_X / 2.0;
        let mut tallest: f64 = 0.0;
        for &node in nodes {
            let (w, h) = size(node);
            boxes[node.index()] = (x, y, w, h);
            x += w + GAP_X;
            tallest = tallest.max(h);
        }
        y += tallest + GAP_Y;
    }
    Placement {
        boxes,
        width,
        height: y,
    }
}

/// The SVG picture of `graph`.
pub(super) fn svg<T: Float>(graph: &Graph<T>) -> String {
    let labels: Vec<Vec<String>> = graph
        .node_indices()
        .map(|i| node_lines(&graph[i]))
        .collect();
    let Placement {
        boxes,
        width,
        height,
    } = place(graph, |node| {
        let lines = &labels[node.index()];
        let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1);
        (
            chars as f64 * CHAR_WIDTH + 2.0 * PADDING,
            lines.len() as f64 * LINE_HEIGHT + PADDING,
        )
    });

    // Drawing: edges first, so boxes cover their ends.
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace">"#
    );
    svg.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="black"/></marker></defs>"#,
    );
    svg.push('\n');
    for edge in graph.edge_indices() {
        let Some((from, to)) = graph.edge_endpoints(edge) else {
            continue;
        };
        let (fx, fy, fw, fh) = boxes[from.index()];
        let (tx, ty, tw, _) = boxes[to.index()];
        let (x1, y1, x2, y2) = (fx + fw / 2.0, fy + fh, tx + tw / 2.0, ty);
        let _ = writeln!(
            svg,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="black" marker-end="url(#arrow)"/>"#
        );
        let (mx, my) = ((x1 + x2) / 2.0 + 4.0, (y1 + y2) / 2.0);
        let _ = write!(svg, r#"<text x="{mx:.1}" y="{my:.1}" font-size="10">"#);
        for (i, line) in edge_lines(graph, edge).iter().enumerate() {
            let dy = if i == 0 { 0.0 } else { 12.0 };
            let _ = write!(
                svg,
                r#"<tspan x="{mx:.1}" dy="{dy}">{}</tspan>"#,
                xml_escape(line)
            );
        }
        svg.push_str("</text>\n");
    }
    for node in graph.node_indices() {
        let (x, y, w, h) = boxes[node.index()];
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}" stroke="black"/>"#,
            fill_colour(&graph[node].kind)
        );
        let _ = write!(svg, r#"<text font-size="12">"#);
        for (i, line) in labels[node.index()].iter().enumerate() {
            let ty = y + PADDING / 2.0 + LINE_HEIGHT * (i as f64 + 0.8);
            let _ = write!(
                svg,
                r#"<tspan x="{:.1}" y="{ty:.1}">{}</tspan>"#,
                x + PADDING,
                xml_escape(line)
            );
        }
        svg.push_str("</text>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// The nodes, operands before the ops that use them. Pictures of tensors are acyclic;
/// a hand-built graph with a cycle still gets every node, in index order after the
/// acyclic part.
fn topological_order<N, E>(graph: &petgraph::graph::DiGraph<N, E>) -> Vec<NodeIndex> {
    petgraph::algo::toposort(graph, None).unwrap_or_else(|_| graph.node_indices().collect())
}

/// Text safe inside an SVG element: markup characters escaped, control characters
/// (which XML forbids) shown as `\u{..}`.
pub(super) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}
