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
use quote::{ToTokens, format_ident};
use syn::{Expr, Ident, Lit};

use crate::parse::{Body, LayerCall, ModelInput, SeqItem, Statement};

/// What a node computes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The model's input `[batch, width]`.
    Input,
    /// `Y = X·Wᵀ + b` with the parameters `linears[param]`.
    Linear {
        param: usize,
    },
    ReLU,
    LeakyReLU(f64),
    Sigmoid,
    Tanh,
    /// Element-wise sum of two values of equal width.
    Add,
    /// Element-wise product of two values of equal width.
    Mul,
}

/// The loss at the end of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    Mse,
    CrossEntropy,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "MSELoss",
            LossKind::CrossEntropy => "CrossEntropyLoss",
        }
    }
}

/// A value of the compiled graph: `[batch, width]`.
pub struct Node {
    pub op: Op,
    pub width: usize,
    /// The Rust identifier of the value (and `d_` + it for its gradient).
    pub ident: Ident,
    /// The name a learner reads: the value's name in the graph form, `h{i}` in sequential.
    pub name: String,
    /// Whether any parameter lies upstream, i.e. whether backward must reach this value.
    pub requires_grad: bool,
}

/// The parameters of one Linear layer.
pub struct LinearParams {
    /// The `state_dict` prefix: `"0"` in `0.weight`, `"h"` in `h.weight`.
    pub prefix: String,
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Ident,
    pub bias: Ident,
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
    pub loss: LossKind,
    pub linears: Vec<LinearParams>,
    pub form: Form,
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
            Op::Linear { param } => {
                let p = &self.linears[*param];
                format!("Linear({}, {})", p.in_features, p.out_features)
            }
            Op::ReLU => "ReLU".into(),
            Op::LeakyReLU(slope) => format!("LeakyReLU({slope})"),
            Op::Sigmoid => "Sigmoid".into(),
            Op::Tanh => "Tanh".into(),
            Op::Add => "+".into(),
            Op::Mul => "*".into(),
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

    fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    fn at_span(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

const LAYERS: [&str; 5] = ["Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh"];
const LOSSES: [&str; 2] = ["MSELoss", "CrossEntropyLoss"];

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
    errors.finish()?;
    model.ok_or_else(|| syn::Error::new(input.ident.span(), "invalid model"))
}

// ---------------------------------------------------------------- shared pieces

/// The closest known name, for "did you mean".
fn suggestion(name: &str, known: &[&'static str]) -> Option<&'static str> {
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

fn tokens_text(tokens: &impl ToTokens) -> String {
    tokens
        .to_token_stream()
        .to_string()
        .replace(" . ", ".")
        .replace("- ", "-")
}

/// A width argument: a positive integer literal.
fn parse_width(expr: &Expr, what: &str, errors: &mut Errors) -> Option<usize> {
    let found = tokens_text(expr);
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<usize>() {
            Ok(0) => {
                errors.at(
                    expr,
                    format!("{what} must be at least 1, found 0: a layer of width 0 has no values"),
                );
                None
            }
            Ok(width) => Some(width),
            Err(_) => {
                errors.at(
                    expr,
                    format!("{what} must be a positive integer, found `{found}`"),
                );
                None
            }
        },
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(_), ..
        }) => {
            errors.at(
                expr,
                format!("{what} must be a whole number of units, found `{found}`"),
            );
            None
        }
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            ..
        }) => {
            errors.at(
                expr,
                format!("{what} must be a positive integer, found the negative `{found}`"),
            );
            None
        }
        _ => {
            errors.at(
                expr,
                format!("{what} must be an integer literal such as `64` (widths are fixed at compile time), found `{found}`"),
            );
            None
        }
    }
}

/// A LeakyReLU slope: a non-negative number literal.
fn parse_slope(expr: &Expr, errors: &mut Errors) -> Option<f64> {
    let found = tokens_text(expr);
    let value = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            ..
        }) => {
            errors.at(
                expr,
                format!("LeakyReLU's negative slope must be >= 0 (PyTorch's default is 0.01), found `{found}`"),
            );
            return None;
        }
        _ => None,
    };
    match value {
        Some(slope) if slope.is_finite() => Some(slope),
        _ => {
            errors.at(
                expr,
                format!(
                    "LeakyReLU's slope must be a number literal such as `0.01`, found `{found}`"
                ),
            );
            None
        }
    }
}

fn loss_kind(expr: &Expr, errors: &mut Errors) -> Option<LossKind> {
    let Expr::Path(path) = expr else {
        errors.at(
            expr,
            format!(
                "expected a loss, `MSELoss` or `CrossEntropyLoss`, found `{}`",
                tokens_text(expr)
            ),
        );
        return None;
    };
    let name = path
        .path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    match name.as_str() {
        "MSELoss" => Some(LossKind::Mse),
        "CrossEntropyLoss" => Some(LossKind::CrossEntropy),
        _ => {
            errors.at(expr, unknown_name_message("loss", &name, &LOSSES));
            None
        }
    }
}

/// Nodes and parameters under construction, shared by both forms.
struct Builder {
    graph: DiGraph<Node, usize>,
    order: Vec<NodeIndex>,
    linears: Vec<LinearParams>,
    widths: HashMap<NodeIndex, Option<usize>>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            graph: DiGraph::new(),
            order: Vec::new(),
            linears: Vec::new(),
            widths: HashMap::new(),
        }
    }

    /// Adds a node after its operands; `width` is `None` when an error made it unknown.
    fn add(
        &mut self,
        op: Op,
        operands: &[NodeIndex],
        width: Option<usize>,
        ident: Ident,
        name: String,
    ) -> NodeIndex {
        let requires_grad = matches!(op, Op::Linear { .. })
            || operands.iter().any(|&o| self.graph[o].requires_grad);
        let node = self.graph.add_node(Node {
            op,
            width: width.unwrap_or(0),
            ident,
            name,
            requires_grad,
        });
        for (position, &operand) in operands.iter().enumerate() {
            self.graph.add_edge(operand, node, position);
        }
        self.order.push(node);
        self.widths.insert(node, width);
        node
    }

    fn width(&self, node: NodeIndex) -> Option<usize> {
        self.widths.get(&node).copied().flatten()
    }

    /// Registers a Linear's parameters; `fields` are the Rust names of weight and bias.
    fn linear(
        &mut self,
        prefix: String,
        fields: (Ident, Ident),
        in_features: Option<usize>,
        out_features: Option<usize>,
    ) -> Op {
        let (weight, bias) = fields;
        self.linears.push(LinearParams {
            prefix,
            in_features: in_features.unwrap_or(0),
            out_features: out_features.unwrap_or(0),
            weight,
            bias,
        });
        Op::Linear {
            param: self.linears.len() - 1,
        }
    }
}

/// The activation a name denotes, if it is one (with its argument checks).
fn activation(call_name: &Ident, args: &[Expr], errors: &mut Errors) -> Option<Option<Op>> {
    let name = call_name.to_string();
    let op = match name.as_str() {
        "ReLU" => Op::ReLU,
        "Sigmoid" => Op::Sigmoid,
        "Tanh" => Op::Tanh,
        "LeakyReLU" => {
            if args.len() > 1 {
                errors.at(
                    &args[1],
                    "LeakyReLU takes at most one argument, its negative slope (default 0.01)",
                );
            }
            return Some(match args.first() {
                None => Some(Op::LeakyReLU(0.01)),
                Some(slope) => parse_slope(slope, errors).map(Op::LeakyReLU),
            });
        }
        _ => return None,
    };
    if let Some(extra) = args.first() {
        errors.at(extra, format!("`{name}` takes no arguments"));
    }
    Some(Some(op))
}

// ---------------------------------------------------------------- sequential form

struct Sequential<'a> {
    input: &'a ModelInput,
    errors: &'a mut Errors,
    builder: Builder,
}

impl<'a> Sequential<'a> {
    fn new(input: &'a ModelInput, errors: &'a mut Errors) -> Self {
        Sequential {
            input,
            errors,
            builder: Builder::new(),
        }
    }

    fn build(mut self, items: &[SeqItem]) -> Option<Model> {
        let mut input_node: Option<NodeIndex> = None;
        // The value the next layer reads, and how it was produced (for error messages).
        let mut current: Option<(NodeIndex, String)> = None;
        let mut loss: Option<(LossKind, &Expr)> = None;
        let mut loss_seen = false;
        let mut layers = 0usize;
        let mut reported_missing_input = false;
        for item in items {
            match item {
                SeqItem::Input { key, width } => {
                    if input_node.is_some() {
                        self.errors
                            .at(key, "duplicate `input:`: a model has exactly one input");
                        continue;
                    }
                    if layers > 0 {
                        self.errors
                            .at(key, "`input:` must come before the first layer");
                    }
                    let width = parse_width(width, "the input width", self.errors);
                    let node =
                        self.builder
                            .add(Op::Input, &[], width, format_ident!("x"), "x".into());
                    input_node = Some(node);
                    current = Some((
                        node,
                        format!("`input: {}`", width.map_or("?".into(), |w| w.to_string())),
                    ));
                }
                SeqItem::Loss { key, kind } => {
                    if loss_seen {
                        self.errors
                            .at(key, "duplicate `loss:`: a model has exactly one loss");
                        continue;
                    }
                    loss_seen = true;
                    loss = loss_kind(kind, self.errors).map(|k| (k, kind));
                }
                SeqItem::UnknownKey { key } => {
                    self.errors.at(
                        key,
                        format!(
                            "unknown key `{key}:`: the sequential form has `input:` and `loss:`"
                        ),
                    );
                }
                SeqItem::Layer(call) => {
                    let index = layers;
                    layers += 1;
                    if loss_seen {
                        self.errors
                            .at(&call.name, "layer after the loss: `loss:` comes last");
                    }
                    if input_node.is_none() && !reported_missing_input {
                        reported_missing_input = true;
                        self.errors.at(&call.name, "missing input: start the model with `input: WIDTH,` before the first layer");
                    }
                    current = self.layer(call, index, current);
                }
            }
        }
        if input_node.is_none() && !reported_missing_input {
            self.errors.at(
                &self.input.ident,
                format!(
                    "model `{}` has no input: add `input: WIDTH,` as its first item",
                    self.input.ident
                ),
            );
        }
        if layers == 0 && input_node.is_some() {
            self.errors.at(
                &self.input.ident,
                format!(
                    "model `{}` has no layers: add at least one, e.g. `Linear(1),`",
                    self.input.ident
                ),
            );
        }
        if !loss_seen {
            self.errors.at(&self.input.ident, format!(
                "model `{}` has no loss: end it with `loss: MSELoss,` or `loss: CrossEntropyLoss,`", self.input.ident));
        }
        let (output, output_source) = current?;
        let (loss, loss_expr) = loss?;
        check_cross_entropy_width(
            loss,
            loss_expr,
            self.builder.width(output),
            &output_source,
            self.errors,
        );
        Some(Model {
            input: input_node?,
            output,
            loss,
            order: self.builder.order,
            graph: self.builder.graph,
            linears: self.builder.linears,
            form: Form::Sequential,
        })
    }

    /// Adds layer `index`; returns the new current value.
    fn layer(
        &mut self,
        call: &LayerCall,
        index: usize,
        current: Option<(NodeIndex, String)>,
    ) -> Option<(NodeIndex, String)> {
        let name = call.name.to_string();
        let ident = format_ident!("h{}", index);
        let operand = current.as_ref().map(|(node, _)| *node);
        let width_in = operand.and_then(|n| self.builder.width(n));
        let operands: Vec<NodeIndex> = operand.into_iter().collect();
        if name == "Linear" {
            let (in_checked, out) = match call.args.as_slice() {
                [out] => (None, parse_width(out, "Linear's output width", self.errors)),
                [inp, out] => {
                    let in_checked = parse_width(inp, "Linear's input width", self.errors);
                    (
                        in_checked.map(|w| (w, inp)),
                        parse_width(out, "Linear's output width", self.errors),
                    )
                }
                _ => {
                    let at: &dyn ToTokens = match &call.paren {
                        Some(_) => &call
                            .args
                            .first()
                            .map(|a| a.to_token_stream())
                            .unwrap_or_else(|| call.name.to_token_stream()),
                        None => &call.name,
                    };
                    self.errors.at(
                        at,
                        format!("`Linear` takes `(out_features)` or `(in_features, out_features)`, found {} arguments", call.args.len()),
                    );
                    (None, None)
                }
            };
            if let (Some((declared, token)), Some(actual), Some((_, source))) =
                (in_checked, width_in, current.as_ref())
                && declared != actual
            {
                self.errors.at(
                    token,
                    format!(
                        "width mismatch: expected {actual}, found {declared}; `Linear({declared}, ..)` reads \
                         the output of {source}, which has width {actual}"
                    ),
                );
            }
            let in_features = width_in.or(in_checked.map(|(w, _)| w));
            let fields = (
                format_ident!("weight_{}", index),
                format_ident!("bias_{}", index),
            );
            let op = self
                .builder
                .linear(index.to_string(), fields, in_features, out);
            let node = self
                .builder
                .add(op, &operands, out, ident, format!("h{index}"));
            let shown = match call.args.len() {
                2 => format!(
                    "`Linear({}, {})` (layer {index})",
                    in_features.unwrap_or(0),
                    out.unwrap_or(0)
                ),
                _ => format!("`Linear({})` (layer {index})", out.unwrap_or(0)),
            };
            return Some((node, shown));
        }
        match activation(&call.name, &call.args, self.errors) {
            Some(op) => {
                let op = op.unwrap_or(Op::ReLU); // an error was reported; keep going for more
                let source = match &current {
                    Some((_, s)) => format!("`{name}` (layer {index}) after {s}"),
                    None => format!("`{name}`"),
                };
                let node = self
                    .builder
                    .add(op, &operands, width_in, ident, format!("h{index}"));
                Some((node, source))
            }
            None => {
                self.errors
                    .at(&call.name, unknown_name_message("layer", &name, &LAYERS));
                current
            }
        }
    }
}

fn check_cross_entropy_width(
    loss: LossKind,
    loss_expr: &Expr,
    width: Option<usize>,
    source: &str,
    errors: &mut Errors,
) {
    if loss == LossKind::CrossEntropy && width == Some(1) {
        errors.at(
            loss_expr,
            format!(
                "CrossEntropyLoss needs at least 2 classes, but the model's output has width 1 (from {source}); \
                 widen the last Linear to the number of classes, or use MSELoss for a single output"
            ),
        );
    }
}

// ---------------------------------------------------------------- graph form

/// The state of one statement while nodes are being created.
#[derive(Clone, Copy, PartialEq)]
enum Visit {
    NotStarted,
    InProgress,
    Done(Option<NodeIndex>),
}

struct GraphForm<'a> {
    input: &'a ModelInput,
    statements: &'a [Statement],
    errors: &'a mut Errors,
    builder: Builder,
    by_name: HashMap<String, usize>,
    visits: Vec<Visit>,
    /// Statement indices currently being built, for naming a cycle.
    stack: Vec<usize>,
    input_node: Option<(NodeIndex, usize)>,
    loss: Option<(LossKind, usize)>,
    used_names: std::collections::HashSet<String>,
    /// Linears created so far per statement, for `h.0.weight`-style names.
    linear_count: Vec<usize>,
}

impl<'a> GraphForm<'a> {
    fn new(input: &'a ModelInput, statements: &'a [Statement], errors: &'a mut Errors) -> Self {
        GraphForm {
            input,
            statements,
            errors,
            builder: Builder::new(),
            by_name: HashMap::new(),
            visits: vec![Visit::NotStarted; statements.len()],
            stack: Vec::new(),
            input_node: None,
            loss: None,
            used_names: statements.iter().map(|s| s.name.to_string()).collect(),
            linear_count: vec![0; statements.len()],
        }
    }

    fn build(mut self) -> Option<Model> {
        for (i, statement) in self.statements.iter().enumerate() {
            let name = statement.name.to_string();
            if self.by_name.contains_key(&name) {
                self.errors.at(
                    &statement.name,
                    format!("`{name}` is defined twice: each value is defined once"),
                );
            } else {
                self.by_name.insert(name, i);
            }
        }
        for i in 0..self.statements.len() {
            self.statement(i);
        }
        // Every value must be used: an unused one is almost always a wiring mistake.
        let loss_input = self.loss.and_then(|(_, at)| match self.visits[at] {
            Visit::Done(node) => node,
            _ => None,
        });
        for (i, statement) in self.statements.iter().enumerate() {
            if self.loss.is_some_and(|(_, at)| at == i) {
                continue;
            }
            if let Visit::Done(Some(node)) = self.visits[i]
                && Some(node) != loss_input
                && self
                    .builder
                    .graph
                    .edges_directed(node, Direction::Outgoing)
                    .next()
                    .is_none()
            {
                self.errors.at(
                    &statement.name,
                    format!("`{}` is computed but never used: feed it to a layer or the loss, or remove it", statement.name),
                );
            }
        }
        if self.input_node.is_none() {
            self.errors.at(
                &self.input.ident,
                format!(
                    "model `{}` has no input: add a statement `x = input(WIDTH);`",
                    self.input.ident
                ),
            );
        }
        let Some((loss, loss_at)) = self.loss else {
            self.errors.at(
                &self.input.ident,
                format!(
                    "model `{}` has no loss: add a statement such as `loss = MSELoss(out);`",
                    self.input.ident
                ),
            );
            return None;
        };
        let output = match self.visits[loss_at] {
            Visit::Done(Some(node)) => node,
            _ => return None,
        };
        Some(Model {
            input: self.input_node?.0,
            output,
            loss,
            order: self.builder.order,
            graph: self.builder.graph,
            linears: self.builder.linears,
            form: Form::Graph,
        })
    }

    /// Creates the nodes of statement `i` (after those it refers to); returns its value.
    fn statement(&mut self, i: usize) -> Option<NodeIndex> {
        match self.visits[i] {
            Visit::Done(node) => return node,
            Visit::InProgress => return None, // reported by `reference`
            Visit::NotStarted => {}
        }
        self.visits[i] = Visit::InProgress;
        self.stack.push(i);
        let statement = &self.statements[i];
        let node = self.top_level(i, &statement.expr);
        // The statement's final value takes the statement's name (values inside its
        // expression keep `{name}_{k}`), so generated code reads `ws.h` for `h = ...;`.
        if let Some(node) = node {
            let own = format!("{}_", statement.name);
            let value = &mut self.builder.graph[node];
            if value.name.starts_with(&own) && value.op != Op::Input {
                self.used_names.remove(&value.name);
                value.name = statement.name.to_string();
                value.ident = value_ident(&statement.name);
            }
        }
        self.stack.pop();
        self.visits[i] = Visit::Done(node);
        node
    }

    /// A statement's whole expression: where `input(..)` and losses may appear.
    fn top_level(&mut self, i: usize, expr: &'a Expr) -> Option<NodeIndex> {
        if let Expr::Path(path) = expr
            && let Some(other) = path.path.get_ident()
        {
            self.errors.at(
                expr,
                format!(
                    "`{} = {other};` only renames `{other}`: use `{other}` directly",
                    self.statements[i].name
                ),
            );
            return None;
        }
        if let Expr::Call(call) = expr
            && let Some(name) = call_name(call)
        {
            let args: Vec<&Expr> = call.args.iter().collect();
            if name == "input" {
                if let Some((_, first)) = self.input_node {
                    self.errors.at(
                        &call.func,
                        format!(
                            "a second input: `{}` is already the input; a model has exactly one",
                            self.statements[first].name
                        ),
                    );
                    return None;
                }
                let width = match args.as_slice() {
                    [width] => parse_width(width, "the input width", self.errors),
                    _ => {
                        self.errors.at(
                            &call.func,
                            "`input` takes one argument, the width: `x = input(4);`",
                        );
                        None
                    }
                };
                let statement = &self.statements[i];
                let node = self.builder.add(
                    Op::Input,
                    &[],
                    width,
                    value_ident(&statement.name),
                    statement.name.to_string(),
                );
                self.input_node = Some((node, i));
                return Some(node);
            }
            if LOSSES.contains(&name.as_str()) {
                let kind = if name == "MSELoss" {
                    LossKind::Mse
                } else {
                    LossKind::CrossEntropy
                };
                if self.loss.is_some() {
                    self.errors
                        .at(&call.func, "duplicate loss: a model has exactly one loss");
                    return None;
                }
                let [value] = args.as_slice() else {
                    self.errors.at(
                        &call.func,
                        format!(
                            "`{name}` takes one argument, the model's output: `loss = {name}(out);`"
                        ),
                    );
                    return None;
                };
                let output = self.value(i, value)?;
                self.loss = Some((kind, i));
                let source = format!("`{}`", tokens_text(*value));
                check_cross_entropy_width(
                    kind,
                    expr,
                    self.builder.width(output),
                    &source,
                    self.errors,
                );
                return Some(output);
            }
        }
        self.value(i, expr)
    }

    /// Lowers a value expression of statement `i`; `None` after an error.
    fn value(&mut self, i: usize, expr: &'a Expr) -> Option<NodeIndex> {
        match expr {
            Expr::Paren(inner) => self.value(i, &inner.expr),
            Expr::Group(inner) => self.value(i, &inner.expr),
            Expr::Path(path) if path.path.get_ident().is_some() => {
                let ident = path.path.get_ident()?;
                self.reference(ident)
            }
            Expr::Binary(binary) => {
                let op = match binary.op {
                    syn::BinOp::Add(_) => Op::Add,
                    syn::BinOp::Mul(_) => Op::Mul,
                    _ => {
                        self.errors
                            .at(binary.op, "only `+` and `*` (element-wise) combine values");
                        return None;
                    }
                };
                let left = self.value(i, &binary.left);
                let right = self.value(i, &binary.right);
                let (left, right) = (left?, right?);
                let (lw, rw) = (self.builder.width(left), self.builder.width(right));
                if let (Some(lw), Some(rw)) = (lw, rw)
                    && lw != rw
                {
                    let symbol = if op == Op::Add { "+" } else { "*" };
                    self.errors.at(
                        binary.op,
                        format!(
                            "`{symbol}` needs operands of equal width: `{}` has width {lw}, `{}` has width {rw}",
                            tokens_text(&*binary.left),
                            tokens_text(&*binary.right)
                        ),
                    );
                }
                let (ident, name) = self.fresh(i);
                Some(self.builder.add(op, &[left, right], lw.or(rw), ident, name))
            }
            Expr::Call(call) => self.call(i, call),
            _ => {
                self.errors.at(expr, format!(
                    "expected a value: a name, a layer call such as `Tanh(h)` or `Linear(h, 16)`, or `a + b` / `a * b`; found `{}`",
                    tokens_text(expr)));
                None
            }
        }
    }

    fn call(&mut self, i: usize, call: &'a syn::ExprCall) -> Option<NodeIndex> {
        let Some(name) = call_name(call) else {
            self.errors.at(
                &call.func,
                "expected a layer name such as `Linear` or `Tanh`",
            );
            return None;
        };
        let args: Vec<&'a Expr> = call.args.iter().collect();
        if name == "input" || LOSSES.contains(&name.as_str()) {
            let what = if name == "input" {
                "`input(..)`"
            } else {
                "a loss"
            };
            self.errors.at(&call.func, format!("{what} must be a statement of its own, e.g. `x = input(4);` or `loss = MSELoss(out);`"));
            return None;
        }
        let Some(first) = args.first() else {
            self.errors.at(
                &call.func,
                format!("`{name}` needs the value it applies to, e.g. `{name}(h)`"),
            );
            return None;
        };
        let operand = self.value(i, first);
        let width_in = operand.and_then(|o| self.builder.width(o));
        if name == "Linear" {
            let out = match args.as_slice() {
                [_, out] => parse_width(out, "Linear's output width", self.errors),
                _ => {
                    self.errors.at(
                        &call.func,
                        "`Linear` takes the value and the output width: `Linear(h, 16)`",
                    );
                    None
                }
            };
            let operand = operand?;
            let statement = &self.statements[i];
            let prefix = self.linear_prefix(i, &statement.name);
            let field = prefix.replace('.', "_");
            let fields = (
                format_ident!("{}_weight", field),
                format_ident!("{}_bias", field),
            );
            let op = self.builder.linear(prefix, fields, width_in, out);
            let (ident, value_name) = self.fresh(i);
            return Some(self.builder.add(op, &[operand], out, ident, value_name));
        }
        let rest: Vec<Expr> = args[1..].iter().map(|e| (*e).clone()).collect();
        let fn_ident = match &*call.func {
            Expr::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
            _ => None,
        }?;
        match activation(&fn_ident, &rest, self.errors) {
            Some(op) => {
                let operand = operand?;
                let (ident, value_name) = self.fresh(i);
                Some(self.builder.add(
                    op.unwrap_or(Op::ReLU),
                    &[operand],
                    width_in,
                    ident,
                    value_name,
                ))
            }
            None => {
                self.errors
                    .at(&call.func, unknown_name_message("layer", &name, &LAYERS));
                None
            }
        }
    }

    /// A use of a named value: defined (anywhere), not the loss, not part of a cycle.
    fn reference(&mut self, ident: &Ident) -> Option<NodeIndex> {
        let name = ident.to_string();
        let Some(&target) = self.by_name.get(&name) else {
            let known: Vec<String> = self.statements.iter().map(|s| s.name.to_string()).collect();
            let hint = suggest_among(&name, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            self.errors.at(
                ident,
                format!("cannot find value `{name}` in this model{hint}"),
            );
            return None;
        };
        if self.visits[target] == Visit::InProgress {
            let start = self.stack.iter().position(|&s| s == target).unwrap_or(0);
            let mut path: Vec<String> = self.stack[start..]
                .iter()
                .map(|&s| self.statements[s].name.to_string())
                .collect();
            path.push(name.clone());
            self.errors.at(
                ident,
                format!(
                    "cycle: `{name}` depends on itself ({}); a model is a graph without loops",
                    path.join(" -> ")
                ),
            );
            return None;
        }
        let node = self.statement(target);
        if self.loss.is_some_and(|(_, at)| at == target) && self.visits[target] != Visit::InProgress
        {
            self.errors.at(
                ident,
                format!("`{name}` is the loss: it ends the model and cannot feed other values"),
            );
            return None;
        }
        node
    }

    /// A fresh identifier `{name}_{k}` for a new node of statement `i` (the statement's
    /// final node is renamed to `{name}` when the statement is finished).
    fn fresh(&mut self, i: usize) -> (Ident, String) {
        let base = self.statements[i].name.to_string();
        let mut k = 1;
        loop {
            let candidate = format!("{base}_{k}");
            if self.used_names.insert(candidate.clone()) {
                return (format_ident!("{}", candidate), candidate);
            }
            k += 1;
        }
    }

    fn linear_prefix(&mut self, i: usize, name: &Ident) -> String {
        let count = self.linear_count[i];
        self.linear_count[i] += 1;
        let total = count_linears(&self.statements[i].expr);
        if total == 1 {
            name.to_string()
        } else {
            format!("{name}.{count}")
        }
    }
}

fn suggest_among<'k>(name: &str, known: &'k [String]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k.as_str()))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

fn call_name(call: &syn::ExprCall) -> Option<String> {
    match &*call.func {
        Expr::Path(p) => p.path.get_ident().map(Ident::to_string),
        _ => None,
    }
}

fn value_ident(name: &Ident) -> Ident {
    format_ident!("{}", name.to_string())
}

/// How many `Linear(..)` calls an expression contains (for parameter names).
fn count_linears(expr: &Expr) -> usize {
    match expr {
        Expr::Call(call) => {
            let own = usize::from(call_name(call).as_deref() == Some("Linear"));
            own + call.args.iter().map(count_linears).sum::<usize>()
        }
        Expr::Binary(b) => count_linears(&b.left) + count_linears(&b.right),
        Expr::Paren(p) => count_linears(&p.expr),
        Expr::Group(g) => count_linears(&g.expr),
        _ => 0,
    }
}
