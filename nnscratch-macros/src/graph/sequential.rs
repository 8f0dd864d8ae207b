//! The sequential form: `input: N,` then layers, each reading the one before, then
//! `loss: ...`. Parameters are named by list index, as `nn.Sequential` names them.

use petgraph::graph::NodeIndex;
use quote::format_ident;
use syn::Expr;

use super::{
    Builder, Errors, Form, LAYERS, LossKind, Model, Op, activation, check_cross_entropy_width,
    loss_kind, parse_width, unknown_name_message,
};
use crate::parse::{LayerCall, ModelInput, SeqItem};

pub(super) struct Sequential<'a> {
    input: &'a ModelInput,
    errors: &'a mut Errors,
    builder: Builder,
}

impl<'a> Sequential<'a> {
    pub(super) fn new(input: &'a ModelInput, errors: &'a mut Errors) -> Self {
        Sequential {
            input,
            errors,
            builder: Builder::new(),
        }
    }

    pub(super) fn build(mut self, items: &[SeqItem]) -> Option<Model> {
        let mut input_node: Option<NodeIndex> = None;
        // The value the next layer reads, and how it was produced (for error messages).
        let mut current: Option<(NodeIndex, String)> = None;
        let mut loss: Option<(LossKind, &Expr)> = None;
        let mut loss_seen = false;
        let mut layers = 0usize;
        // An `input:` placed after a layer is reported there, once, not also as missing.
        let mut reported_missing_input = items
            .iter()
            .any(|item| matches!(item, SeqItem::Input { .. }));
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
        if input_node.is_none() && !reported_missing_input && layers == 0 {
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
                    self.errors.at(
                        &call.name,
                        format!(
                            "`Linear` takes `(out_features)` or `(in_features, out_features)`, found {}",
                            super::count(call.args.len(), "argument")
                        ),
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
            let op = self.builder.linear(
                index.to_string(),
                fields,
                in_features,
                out,
                call.name.span(),
            );
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
