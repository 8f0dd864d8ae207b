//! Meaning: the AST becomes a petgraph graph with every width inferred, and every mistake
//! becomes a `syn::Error` on the token that caused it.
//!
//! Errors are collected, not returned at the first one, so a user sees every bad layer
//! of a model in one compile. Nothing here emits code; `emit/` never validates.

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use proc_macro2::Span;
use quote::ToTokens;
use syn::{Expr, Ident};

use crate::layers::{Built, Layer, ParamSet, Scratch, StateField, tokens_text};
use crate::parse::{Body, ModelInput};

/// What a node computes: the model's input, or a layer (its rules in `layers/`).
pub enum Op {
    /// The model's input `[batch, width]`.
    Input,
    Layer(Box<dyn Layer>),
}

pub use crate::layers::{Loss, LossKind};

/// A value of the compiled graph: `[batch, ...shape]`, stored as `[batch, width]` rows
/// (each sample's values in row-major order, `width` = the product of `shape`).
pub struct Node {
    pub op: Op,
    pub width: usize,
    /// The shape of one sample: `[width]`, or `[C, H, W]` / `[C, L]` for images and
    /// signals.
    pub shape: Vec<usize>,
    /// The Rust identifier of the value's workspace buffer.
    pub ident: Ident,
    /// The Rust identifier of its gradient's buffer (`d_` + `ident`, made unique).
    pub grad_ident: Ident,
    /// The name a learner reads: the value's name in the graph form, `h{i}` in sequential.
    pub name: String,
    /// Whether any parameter lies upstream, i.e. whether backward must reach this value.
    pub requires_grad: bool,
    /// The layer's parameters: an index into [`Model::params`].
    pub params: Option<usize>,
    /// The layer's other state in the model struct (running statistics, generators).
    pub state: Vec<StateField>,
    /// The layer's workspace buffers besides its output.
    pub scratch: Vec<Scratch>,
}

impl Node {
    pub fn is_input(&self) -> bool {
        matches!(self.op, Op::Input)
    }
}

/// Which syntax the model was written in (for its documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Sequential,
    Graph,
}

/// The validated model: a DAG whose edges go from operand to consumer, weighted by the
/// operand's position (0 = left).
pub struct Model {
    pub graph: DiGraph<Node, usize>,
    /// Every node, operands before consumers; the input is first.
    pub order: Vec<NodeIndex>,
    pub input: NodeIndex,
    /// The value fed to the loss: what `forward` returns.
    pub output: NodeIndex,
    pub loss: Loss,
    /// The parameters of every layer that has some, in visiting order.
    pub params: Vec<ParamSet>,
    pub form: Form,
    /// The struct's name, for run-time messages.
    pub name: String,
}

impl Model {
    /// The operands of `node`, in position order.
    pub fn operands(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut edges: Vec<_> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, source)| source).collect()
    }

    /// How a node is written for a learner: `Linear(16, 4)`, `Tanh`, `+`.
    pub fn describe(&self, node: NodeIndex) -> String {
        match &self.graph[node].op {
            Op::Input => format!("input({})", self.graph[node].width),
            Op::Layer(layer) => layer.describe(),
        }
    }
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn at_span(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Whether any error was reported (later checks that would only echo it are skipped).
    pub fn any(&self) -> bool {
        self.0.is_some()
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

mod graph_form;
mod sequential;

use graph_form::GraphForm;
use sequential::Sequential;

/// Builds and checks the model; `Err` carries every error found.
pub fn build(input: &ModelInput) -> syn::Result<Model> {
    let mut errors = Errors::default();
    let model = match &input.body {
        Body::Empty => {
            errors.at_span(
                input.brace.span.join(),
                format!(
                    "empty model `{}`: declare an input, layers and a loss, e.g. \
                     `input: 4, Linear(16), ReLU, Linear(1), loss: MSELoss,`",
                    input.ident
                ),
            );
            None
        }
        Body::Sequential(items) => Sequential::new(input, &mut errors).build(items),
        Body::Graph(statements) => GraphForm::new(input, statements, &mut errors).build(),
    };
    if input.ident == "T" {
        errors.at(
            &input.ident,
            "a model cannot be named `T`: `T` is the float type parameter model! adds \
             (`struct Name<T: Float = f32>`); choose another name",
        );
    }
    if let Some(model) = &model {
        check_sizes(model, &mut errors);
        // Only when nothing else is wrong: a model without parameters is most often the
        // echo of another mistake (no layers, a layer that failed to parse).
        if model.params.is_empty() && !errors.any() {
            errors.at(
                &input.ident,
                format!(
                    "model `{}` has no parameters to train: put at least one `Linear` layer \
                     between the input and the loss",
                    input.ident
                ),
            );
        }
    }
    errors.finish()?;
    let mut model = model.ok_or_else(|| syn::Error::new(input.ident.span(), "invalid model"))?;
    assign_rust_names(&mut model);
    Ok(model)
}

/// The most parameters one layer may have (2^28, 1 GiB of `f32`), and the widest value
/// (2^28). Beyond these a model would not fit in memory, and sizes near `usize::MAX`
/// would overflow; `model!` rejects them at compile time, on the layer's token.
pub const MAX_LAYER_PARAMETERS: u128 = 1 << 28;

fn check_sizes(model: &Model, errors: &mut Errors) {
    for p in &model.params {
        let count: u128 = p
            .tensors
            .iter()
            .map(|t| t.shape.iter().map(|&d| d as u128).product::<u128>())
            .sum();
        if count > MAX_LAYER_PARAMETERS {
            errors.at_span(
                p.span,
                format!(
                    "{} would have {count} parameters; model! allows at most \
                     {MAX_LAYER_PARAMETERS} (2^28) per layer, so that a model always fits in memory",
                    p.layer
                ),
            );
        }
    }
}

/// Gives every generated Rust name a spelling no other generated or user name has:
/// workspace buffers (values, their gradients, scratch), parameter and state fields, and
/// the fixed names beside them (`input`, `gemm`, `grad`, the locals of `run`). A user's
/// own names are kept where they are free; a clash gets a numeric suffix (`d_h_2`).
fn assign_rust_names(model: &mut Model) {
    use syn::ext::IdentExt;
    fn unique(taken: &mut std::collections::HashSet<String>, base: String, span: Span) -> Ident {
        let mut candidate = base.clone();
        let mut k = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        Ident::new(&candidate, span)
    }
    // One namespace for everything that becomes a local of the generated `run` (the
    // workspace's buffers are bound by name there, beside the parameters and state)
    // and for the fields of the structs around them.
    let mut taken: std::collections::HashSet<String> = [
        "input",
        "gemm",
        "buffers",
        "prepared_for",
        "params",
        "part_1",
        "part_2",
        "part_3",
        "part_4",
        "views_1",
        "views_2",
        "views_3",
        "views_4",
        "grad",
        "workspace",
        "filled",
        "training",
        "x",
        "target",
        "backward",
        "loss",
        "ws",
        "kernels",
        "Write",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for &node in &model.order {
        let value = &mut model.graph[node];
        if !value.is_input() {
            let base = value.ident.unraw().to_string();
            value.ident = unique(&mut taken, base, value.ident.span());
        }
    }
    for &node in &model.order {
        let value = &mut model.graph[node];
        if !value.is_input() && value.requires_grad {
            let base = format!("d_{}", value.ident);
            value.grad_ident = unique(&mut taken, base, value.ident.span());
        }
    }
    for tensor in model.params.iter_mut().flat_map(|p| &mut p.tensors) {
        let base = tensor.field.unraw().to_string();
        tensor.field = unique(&mut taken, base, tensor.field.span());
    }
    for tensor in model.params.iter_mut().flat_map(|p| &mut p.tensors) {
        let base = format!("grad_{}", tensor.field);
        tensor.grad_local = unique(&mut taken, base, tensor.field.span());
    }
    for &node in &model.order {
        let value = &mut model.graph[node];
        for state in &mut value.state {
            let base = state.field.unraw().to_string();
            state.field = unique(&mut taken, base, state.field.span());
        }
        // Scratch buffers are named after their value: `h1_x_hat`.
        for scratch in &mut value.scratch {
            let base = format!("{}_{}", value.ident, scratch.suffix);
            scratch.field = unique(&mut taken, base, value.ident.span());
        }
    }
}

// ---------------------------------------------------------------- shared pieces

/// The closest known name, for "did you mean".
pub(crate) fn suggestion(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

fn unknown_name_message(kind: &str, name: &str, known: &[&'static str]) -> String {
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match suggestion(name, known) {
        Some(close) => format!("unknown {kind} `{name}`: did you mean `{close}`? (known: {list})"),
        None => format!("unknown {kind} `{name}`: expected one of {list}"),
    }
}

/// The sequential form's `loss: MSELoss` or `loss: HuberLoss(delta = 0.5)`.
fn loss_kind(expr: &Expr, errors: &mut Errors) -> Option<Loss> {
    let (path, options): (&syn::ExprPath, Vec<&Expr>) = match expr {
        Expr::Path(path) => (path, Vec::new()),
        Expr::Call(syn::ExprCall { func, args, .. }) if matches!(**func, Expr::Path(_)) => {
            let Expr::Path(path) = &**func else {
                unreachable!("matched above")
            };
            (path, args.iter().collect())
        }
        _ => {
            errors.at(
                expr,
                format!(
                    "expected a loss such as `MSELoss` or `HuberLoss(delta = 0.5)`, found `{}`",
                    tokens_text(expr)
                ),
            );
            return None;
        }
    };
    let name = path
        .path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let Some(kind) = LossKind::find(&name) else {
        errors.at(
            path,
            unknown_name_message("loss", &name, &LossKind::names()),
        );
        return None;
    };
    Some(kind.with_options(&options, errors))
}

/// Nodes and parameters under construction, shared by both forms.
struct Builder {
    graph: DiGraph<Node, usize>,
    order: Vec<NodeIndex>,
    params: Vec<ParamSet>,
    shapes: HashMap<NodeIndex, Option<Vec<usize>>>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            graph: DiGraph::new(),
            order: Vec::new(),
            params: Vec::new(),
            shapes: HashMap::new(),
        }
    }

    /// Adds a node after its operands; `shape` is `None` when an error made it unknown.
    fn add(
        &mut self,
        op: Op,
        operands: &[NodeIndex],
        shape: Option<Vec<usize>>,
        ident: Ident,
        name: String,
        params: Option<ParamSet>,
    ) -> NodeIndex {
        let width = shape.as_ref().map(|s| s.iter().product::<usize>());
        let requires_grad =
            params.is_some() || operands.iter().any(|&o| self.graph[o].requires_grad);
        let params = params.map(|p| {
            self.params.push(p);
            self.params.len() - 1
        });
        let node = self.graph.add_node(Node {
            op,
            width: width.unwrap_or(0),
            shape: shape.clone().unwrap_or_default(),
            grad_ident: ident.clone(),
            ident,
            name,
            requires_grad,
            params,
            state: Vec::new(),
            scratch: Vec::new(),
        });
        for (position, &operand) in operands.iter().enumerate() {
            self.graph.add_edge(operand, node, position);
        }
        self.order.push(node);
        self.shapes.insert(node, shape);
        node
    }

    /// Adds a value computed by a layer whose parameters (`params`, an index into
    /// `self.params`) another node already uses: weight sharing.
    fn add_shared(
        &mut self,
        layer: Box<dyn Layer>,
        operand: NodeIndex,
        width: Option<usize>,
        ident: Ident,
        name: String,
        params: usize,
    ) -> NodeIndex {
        let node = self.add(
            Op::Layer(layer),
            &[operand],
            width.map(|w| vec![w]),
            ident,
            name,
            None,
        );
        self.graph[node].params = Some(params);
        self.graph[node].requires_grad = true;
        node
    }

    /// Adds the value a built layer computes.
    fn add_layer(
        &mut self,
        built: Built,
        operands: &[NodeIndex],
        ident: Ident,
        name: String,
    ) -> NodeIndex {
        let shape = built.shape.or(built.width.map(|w| vec![w]));
        let node = self.add(
            Op::Layer(built.layer),
            operands,
            shape,
            ident,
            name,
            built.params,
        );
        self.graph[node].state = built.state;
        self.graph[node].scratch = built.scratch;
        node
    }

    fn width(&self, node: NodeIndex) -> Option<usize> {
        self.shape(node).map(|s| s.iter().product())
    }

    /// A value's shape per sample (`None` when a mistake made it unknown).
    fn shape(&self, node: NodeIndex) -> Option<Vec<usize>> {
        self.shapes.get(&node).cloned().flatten()
    }
}

fn check_output_width(
    loss: &Loss,
    loss_expr: &Expr,
    shape: Option<Vec<usize>>,
    source: &str,
    errors: &mut Errors,
) {
    if let Some(shape) = &shape
        && shape.len() > 1
    {
        let dims = shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        errors.at(
            loss_expr,
            format!(
                "{} reads flat outputs `[batch, outputs]`, but {source} gives `[batch, {dims}]`; end the \
                 model with `Flatten` and a `Linear` to the number of outputs",
                loss.name()
            ),
        );
        return;
    }
    let width = shape.map(|s| s.iter().product());
    if let Some(message) = loss.check_output_width(width, source) {
        errors.at(loss_expr, message);
    }
}
