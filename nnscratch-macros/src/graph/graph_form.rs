//! The graph form: named values, `name = expression;`, in any order (a value may be used
//! before the statement that defines it). Statements are lowered depth-first, so each
//! node is created after its operands and a name met while its own statement is still
//! being lowered is a cycle. Parameters are named after the statement (`h.weight`).

use std::collections::{HashMap, HashSet};

use petgraph::Direction;
use petgraph::graph::NodeIndex;
use quote::format_ident;
use syn::{Expr, Ident};

use super::{
    Builder, Errors, Form, Loss, LossKind, Model, Op, check_output_width, edit_distance,
    unknown_name_message,
};
use crate::layers::{self, Call, parse_shape, tokens_text};
use crate::parse::{ModelInput, Statement};

/// The state of one statement while nodes are being created.
#[derive(Clone, Copy, PartialEq)]
enum Visit {
    NotStarted,
    InProgress,
    Done(Option<NodeIndex>),
}

pub(super) struct GraphForm<'a> {
    input: &'a ModelInput,
    statements: &'a [Statement],
    errors: &'a mut Errors,
    builder: Builder,
    by_name: HashMap<String, usize>,
    visits: Vec<Visit>,
    /// Statement indices currently being built, for naming a cycle.
    stack: Vec<usize>,
    input_node: Option<(NodeIndex, usize)>,
    loss: Option<(Loss, usize)>,
    used_names: HashSet<String>,
    /// Whether an `input(..)` or a loss was written where it cannot stand (reported
    /// there), so that "has no input" / "has no loss" would only echo that error.
    input_misplaced: bool,
    loss_attempted: bool,
    /// Linears created so far per statement, for `h.0.weight`-style names.
    parameterised_count: Vec<usize>,
    /// Declared layers (`shared = Linear(4, 16);`) by statement: `None` until first
    /// applied, then their parameter set and widths.
    declarations: HashMap<usize, Option<Declared>>,
    /// How many times each declared layer has been applied.
    applications: HashMap<usize, usize>,
}

/// A declared layer once built: its parameters (an index into the builder's) and shape.
#[derive(Clone, Copy)]
struct Declared {
    params: usize,
    in_features: usize,
    out_features: usize,
    bias: bool,
}

/// Whether a statement declares a layer to apply by name: `Linear(4, 16)`, its first
/// argument a width rather than a value.
fn is_declaration(expr: &Expr) -> bool {
    let Expr::Call(call) = expr else { return false };
    call_name(call).as_deref() == Some("Linear")
        && matches!(
            call.args.first(),
            Some(Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(_),
                ..
            }))
        )
}

impl<'a> GraphForm<'a> {
    pub(super) fn new(
        input: &'a ModelInput,
        statements: &'a [Statement],
        errors: &'a mut Errors,
    ) -> Self {
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
            input_misplaced: false,
            loss_attempted: false,
            parameterised_count: vec![0; statements.len()],
            declarations: statements
                .iter()
                .enumerate()
                .filter(|(_, s)| is_declaration(&s.expr))
                .map(|(i, _)| (i, None))
                .collect(),
            applications: HashMap::new(),
        }
    }

    pub(super) fn build(mut self) -> Option<Model> {
        for (i, statement) in self.statements.iter().enumerate() {
            let name = statement.name.to_string();
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.by_name.entry(name.clone())
            {
                slot.insert(i);
            } else {
                self.errors.at(
                    &statement.name,
                    format!("`{name}` is defined twice: each value is defined once"),
                );
            }
        }
        for i in 0..self.statements.len() {
            if !self.declarations.contains_key(&i) {
                self.statement(i);
            }
        }
        for &i in self.declarations.keys() {
            if !self.applications.contains_key(&i) && !self.errors.any() {
                let name = &self.statements[i].name;
                self.errors.at(
                    name,
                    format!(
                        "`{name}` is declared but never applied: call it, `{name}(x)`, or remove it"
                    ),
                );
            }
        }
        // Every value must be used: an unused one is almost always a wiring mistake.
        let loss_input = self.loss.and_then(|(_, at)| match self.visits[at] {
            Visit::Done(node) => node,
            _ => None,
        });
        // After another error a value may be unused only because the expression that
        // used it failed; skip the check then, so the user sees the real mistake alone.
        // Without a loss nothing is used yet; "has no loss" below says what to add.
        let check_unused = !self.errors.any() && self.loss.is_some();
        for (i, statement) in self.statements.iter().enumerate() {
            if !check_unused || self.loss.is_some_and(|(_, at)| at == i) {
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
        if self.input_node.is_none() && !self.input_misplaced {
            self.errors.at(
                &self.input.ident,
                format!(
                    "model `{}` has no input: add a statement `x = input(WIDTH);`",
                    self.input.ident
                ),
            );
        }
        let Some((loss, loss_at)) = self.loss else {
            if self.loss_attempted {
                return None;
            }
            self.errors.at(
                &self.input.ident,
                format!(
                    "model `{}` has no loss: add a statement such as `loss = MSELoss(out);`",
                    self.input.ident
                ),
            );
            return None;
        };
        let Visit::Done(Some(output)) = self.visits[loss_at] else {
            return None;
        };
        Some(Model {
            input: self.input_node?.0,
            output,
            loss,
            order: self.builder.order,
            graph: self.builder.graph,
            params: self.builder.params,
            name: self.input.ident.to_string(),
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
            if value.name.starts_with(&own) && !value.is_input() {
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
                    [width] => parse_shape(width, self.errors),
                    _ => {
                        self.errors.at(
                            &call.func,
                            "`input` takes one argument, the width or the shape per sample: \
                             `x = input(4);`, `x = input([1, 28, 28]);`",
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
                    None,
                );
                self.input_node = Some((node, i));
                return Some(node);
            }
            if let Some(kind) = LossKind::find(&name) {
                if self.loss.is_some() {
                    self.errors
                        .at(&call.func, "duplicate loss: a model has exactly one loss");
                    return None;
                }
                let Some((value, options)) = args
                    .split_first()
                    .filter(|(value, _)| !matches!(value, Expr::Assign(_)))
                else {
                    self.errors.at(
                        &call.func,
                        format!("`{name}` takes the model's output first: `loss = {name}(out);`"),
                    );
                    return None;
                };
                let loss = kind.with_options(options, self.errors);
                self.loss = Some((loss, i));
                let output = self.value(i, value)?;
                let source = format!("`{}`", tokens_text(*value));
                check_output_width(
                    &loss,
                    expr,
                    self.builder.shape(output),
                    &source,
                    self.errors,
                );
                return Some(output);
            }
        }
        // `loss = MSEloss(out);`: a name that is neither a layer nor a loss, written
        // where a loss goes, is most likely a misspelled loss.
        if let Expr::Call(call) = expr
            && let Some(name) = call_name(call)
            && layers::find(&name).is_none()
            && name != "input"
            && (self.statements[i].name == "loss"
                || super::suggestion(&name, &LossKind::names()).is_some())
        {
            self.loss_attempted = true;
            self.errors.at(
                &call.func,
                unknown_name_message("loss", &name, &LossKind::names()),
            );
            return None;
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
                if let Some((c, value_on_left)) = layers::scale(binary, self.errors) {
                    let operand = if value_on_left {
                        &binary.left
                    } else {
                        &binary.right
                    };
                    let operand = self.value(i, operand)?;
                    let built = layers::scaled(c, self.builder.shape(operand));
                    let (ident, name) = self.fresh(i);
                    return Some(self.builder.add_layer(built, &[operand], ident, name));
                }
                if !layers::check_operator(&binary.op, self.errors) {
                    return None;
                }
                let left = self.value(i, &binary.left);
                let right = self.value(i, &binary.right);
                let (left, right) = (left?, right?);
                let shapes = (self.builder.shape(left), self.builder.shape(right));
                let built = layers::binary(binary, shapes, self.errors)?;
                let (ident, name) = self.fresh(i);
                Some(self.builder.add_layer(built, &[left, right], ident, name))
            }
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr: operand,
                ..
            }) => {
                let operand = self.value(i, operand)?;
                let built = layers::scaled(-1.0, self.builder.shape(operand));
                let (ident, name) = self.fresh(i);
                Some(self.builder.add_layer(built, &[operand], ident, name))
            }
            Expr::Call(call) => self.call(i, call),
            _ => {
                self.errors.at(expr, format!(
                    "expected a value: a name, a layer call such as `Tanh(h)` or `Linear(h, 16)`, `a + b`, `a - b`, `a * b`, `2.0 * a` or `cat(a, b)`; found `{}`",
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
        if let Some(&declared) = self.by_name.get(&name)
            && self.declarations.contains_key(&declared)
        {
            return self.apply_declared(i, declared, call, &args);
        }
        if name == "cat" {
            let operands = layers::cat_operands(call, self.errors)?;
            let nodes: Vec<Option<NodeIndex>> = operands.iter().map(|o| self.value(i, o)).collect();
            let nodes: Vec<NodeIndex> = nodes.into_iter().collect::<Option<_>>()?;
            let shapes: Vec<Option<Vec<usize>>> =
                nodes.iter().map(|&n| self.builder.shape(n)).collect();
            let built = layers::concatenation(call, &shapes, self.errors);
            let (ident, value_name) = self.fresh(i);
            return Some(self.builder.add_layer(built, &nodes, ident, value_name));
        }
        if name == "input" || LossKind::find(&name).is_some() {
            let what = if name == "input" {
                self.input_misplaced = true;
                "`input(..)`"
            } else {
                self.loss_attempted = true;
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
        let fn_ident = match &*call.func {
            Expr::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
            _ => None,
        }?;
        let Some(kind) = layers::find(&name) else {
            self.errors.at(
                &call.func,
                unknown_name_message("layer", &name, &layers::names()),
            );
            return None;
        };
        let prefix = if kind.has_parameters {
            self.parameter_prefix(i)
        } else {
            self.statements[i].name.to_string()
        };
        let mut layer_call = Call {
            name: &fn_ident,
            args: args[1..].to_vec(),
            form: Form::Graph,
            input: operand.and_then(|o| self.builder.width(o)),
            input_shape: operand.and_then(|o| self.builder.shape(o)),
            source: format!("`{}`", tokens_text(*first)),
            errors: self.errors,
            prefix,
            index: 0,
        };
        let built = (kind.build)(&mut layer_call);
        let operand = operand?;
        let (ident, value_name) = self.fresh(i);
        Some(self.builder.add_layer(built, &[operand], ident, value_name))
    }

    /// `name(x)` for a declared layer `name = Linear(in, out);`: the layer's parameters
    /// are created at its first application and shared by the later ones.
    fn apply_declared(
        &mut self,
        i: usize,
        declared: usize,
        call: &'a syn::ExprCall,
        args: &[&'a Expr],
    ) -> Option<NodeIndex> {
        let layer_name = &self.statements[declared].name;
        let [operand] = args else {
            self.errors.at(
                &call.func,
                format!(
                    "`{layer_name}` is a declared layer: apply it to one value, `{layer_name}(h)`"
                ),
            );
            return None;
        };
        let operand_node = self.value(i, operand);
        let built = match self.declarations[&declared] {
            Some(built) => built,
            None => {
                let Expr::Call(declaration) = &self.statements[declared].expr else {
                    unreachable!("declarations are calls")
                };
                let fn_ident = match &*declaration.func {
                    Expr::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
                    _ => None,
                }?;
                let mut layer_call = Call {
                    name: &fn_ident,
                    args: declaration.args.iter().collect(),
                    form: Form::Graph,
                    input: None,
                    input_shape: None,
                    source: String::new(),
                    errors: self.errors,
                    prefix: layer_name.to_string(),
                    index: 0,
                };
                let kind = layers::find("Linear").expect("Linear is a layer kind");
                let built = (kind.build)(&mut layer_call);
                let params = built.params?;
                let shape = &params.tensors[0].shape;
                let (out_features, in_features) = (shape[0], shape[1]);
                let bias = params.tensors.len() == 2;
                self.builder.params.push(params);
                let declared_layer = Declared {
                    params: self.builder.params.len() - 1,
                    in_features,
                    out_features,
                    bias,
                };
                self.declarations.insert(declared, Some(declared_layer));
                declared_layer
            }
        };
        *self.applications.entry(declared).or_default() += 1;
        let operand_node = operand_node?;
        if let Some(width) = self.builder.width(operand_node)
            && width != built.in_features
        {
            self.errors.at(
                operand,
                format!(
                    "width mismatch: `{layer_name}` is Linear({}, {}) and reads width {}, but `{}` has width {width}",
                    built.in_features,
                    built.out_features,
                    built.in_features,
                    tokens_text(*operand)
                ),
            );
            return None;
        }
        let layer = layers::applied_linear(built.in_features, built.out_features, built.bias);
        let (ident, value_name) = self.fresh(i);
        Some(self.builder.add_shared(
            layer,
            operand_node,
            Some(built.out_features),
            ident,
            value_name,
            built.params,
        ))
    }

    /// A use of a named value: defined (anywhere), not the loss, not part of a cycle.
    fn reference(&mut self, ident: &Ident) -> Option<NodeIndex> {
        let name = ident.to_string();
        if let Some(&target) = self.by_name.get(&name)
            && self.declarations.contains_key(&target)
        {
            self.errors.at(
                ident,
                format!("`{name}` is a layer, not a value: apply it to one, `{name}(h)`"),
            );
            return None;
        }
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

    /// The `state_dict` prefix of the next layer with parameters in statement `i`: the
    /// statement's name, or `name.k` when the statement holds several such layers.
    fn parameter_prefix(&mut self, i: usize) -> String {
        let name = &self.statements[i].name;
        let count = self.parameterised_count[i];
        self.parameterised_count[i] += 1;
        let total = count_parameterised(&self.statements[i].expr);
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

/// How many calls of layers with parameters (`Linear(..)`) an expression contains.
fn count_parameterised(expr: &Expr) -> usize {
    match expr {
        Expr::Call(call) => {
            let own = call_name(call)
                .and_then(|name| layers::find(&name))
                .is_some_and(|kind| kind.has_parameters);
            usize::from(own) + call.args.iter().map(count_parameterised).sum::<usize>()
        }
        Expr::Binary(b) => count_parameterised(&b.left) + count_parameterised(&b.right),
        Expr::Unary(u) => count_parameterised(&u.expr),
        Expr::Tuple(t) => t.elems.iter().map(count_parameterised).sum(),
        Expr::Array(a) => a.elems.iter().map(count_parameterised).sum(),
        Expr::Paren(p) => count_parameterised(&p.expr),
        Expr::Group(g) => count_parameterised(&g.expr),
        _ => 0,
    }
}
