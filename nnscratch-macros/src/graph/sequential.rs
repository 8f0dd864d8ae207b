//! The sequential form: `input: N,` then layers, each reading the one before, then
//! `loss: ...`. Parameters are named by list index, as `nn.Sequential` names them.

use petgraph::graph::NodeIndex;
use quote::format_ident;
use syn::Expr;

use super::{
    Builder, Errors, Form, Loss, Model, Op, check_output_width, loss_kind, unknown_name_message,
};
use crate::layers::{self, Call, parse_shape};
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
        let mut loss: Option<(Loss, &Expr)> = None;
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
                    let width = parse_shape(width, self.errors);
                    let shown = width.as_ref().map_or("?".into(), |w| match w.as_slice() {
                        [w] => w.to_string(),
                        shape => format!("{shape:?}"),
                    });
                    let node = self.builder.add(
                        Op::Input,
                        &[],
                        width,
                        format_ident!("x"),
                        "x".into(),
                        None,
                    );
                    input_node = Some(node);
                    current = Some((node, format!("`input: {shown}`")));
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
        check_output_width(
            &loss,
            loss_expr,
            self.builder.shape(output),
            &output_source,
            self.errors,
        );
        Some(Model {
            input: input_node?,
            output,
            loss,
            order: self.builder.order,
            graph: self.builder.graph,
            params: self.builder.params,
            name: self.input.ident.to_string(),
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
        let Some(kind) = layers::find(&name) else {
            self.errors.at(
                &call.name,
                unknown_name_message("layer", &name, &layers::names()),
            );
            return current;
        };
        let operand = current.as_ref().map(|(node, _)| *node);
        let mut layer_call = Call {
            name: &call.name,
            args: call.args.iter().collect(),
            form: Form::Sequential,
            input: operand.and_then(|n| self.builder.width(n)),
            input_shape: operand.and_then(|n| self.builder.shape(n)),
            source: current.as_ref().map(|(_, s)| s.clone()).unwrap_or_default(),
            errors: self.errors,
            prefix: index.to_string(),
            index,
        };
        let built = (kind.build)(&mut layer_call);
        // How later messages name this value: by the call that set its width, or by
        // this layer and the value it kept the width of.
        let source = match (&built.shown, &current) {
            (Some(shown), _) => format!("`{shown}` (layer {index})"),
            (None, Some((_, s))) => format!("`{name}` (layer {index}) after {s}"),
            (None, None) => format!("`{name}`"),
        };
        let operands: Vec<NodeIndex> = operand.into_iter().collect();
        let node = self.builder.add_layer(
            built,
            &operands,
            format_ident!("h{}", index),
            format!("h{index}"),
        );
        Some((node, source))
    }
}
