//! One module per layer kind: everything the compiler knows about it, in one file.
//!
//! | file | kinds | shape rule |
//! |---|---|---|
//! | `linear.rs` | `Linear` | `[batch, in] -> [batch, out]`, parameters `weight`, `bias` |
//! | `relu.rs`, `leaky_relu.rs`, `sigmoid.rs`, `tanh.rs`, `softplus.rs`, `gelu.rs`, `silu.rs`, `elu.rs`, `identity.rs` | the activations | element-wise: width kept (`activation.rs` holds what they share) |
//! | `softmax.rs` | `Softmax`, `LogSoftmax` | width kept; normalised over each row |
//! | `batch_norm.rs` | `BatchNorm1d`, `BatchNorm2d` | width kept; parameters `weight`, `bias`; buffers `running_mean`, `running_var`, `num_batches_tracked` |
//! | `layer_norm.rs` | `LayerNorm` | width kept; parameters `weight`, `bias` |
//! | `dropout.rs` | `Dropout` | width kept; a mask generator in the model |
//! | `conv.rs` | `Conv2d`, `Conv1d` | `[C, H, W] -> [O, Ho, Wo]` (`[C, L] -> [O, Lo]`), parameters `weight`, `bias` |
//! | `pool.rs` | `MaxPool2d`, `AvgPool2d` | `[C, H, W] -> [C, Ho, Wo]` |
//! | `flatten.rs` | `Flatten` | `[C, H, W] -> [C·H·W]` |
//! | `elementwise.rs` | `+`, `-`, `*` of two values, `2.0 * a` (graph form) | both operands of one width |
//! | `cat.rs` | `cat(a, b, …)` (graph form) | the widths add up |
//! | `loss.rs` | `MSELoss`, `L1Loss`, `SmoothL1Loss`, `HuberLoss`, `BCEWithLogitsLoss`, `CrossEntropyLoss`, `NLLLoss` | the model's output and its target |
//! | `args.rs` | argument parsing shared by all kinds (widths, numbers, keywords) | |
//!
//! A kind's file holds its name and argument parsing with spanned errors, its shape rule
//! (the `build` function of its [`Kind`]), and an implementation of [`Layer`]: its
//! forward and backward kernel calls, its derived equations, its picture labels and its
//! dynamic twin. The stages ask through these two; none of them matches on a kind. It
//! is JAX's idea of a primitive (implementation, shape rule and differentiation rules
//! registered together) and PyTorch's `derivatives.yaml` entry, as a Rust trait.
//!
//! Adding a layer kind: a file here, a `mod` line and a row of [`KINDS`]; in the runtime,
//! its kernels (`kernels/`), its dynamic op (`tensor/`) and its `nn` layer.

mod activation;
mod args;
mod batch_norm;
mod cat;
mod conv;
mod dropout;
mod elementwise;
mod elu;
mod flatten;
mod gelu;
mod identity;
mod layer_norm;
mod leaky_relu;
mod linear;
mod loss;
mod pool;
mod relu;
mod sigmoid;
mod silu;
mod softmax;
mod softplus;
mod tanh;

pub use args::{parse_shape, tokens_text};
pub use cat::{concatenation, operands as cat_operands};
pub use elementwise::{binary, check_operator, scale, scaled};
pub use linear::applied as applied_linear;
pub use loss::{Loss, LossKind};

use petgraph::graph::NodeIndex;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Expr, Ident};

use crate::emit::backward::Contributions;
use crate::graph::{Errors, Form, Model};

/// The layer kinds a model may call by name, in the order messages list them.
pub const KINDS: &[Kind] = &[
    linear::KIND,
    relu::KIND,
    leaky_relu::KIND,
    sigmoid::KIND,
    tanh::KIND,
    softplus::KIND,
    gelu::KIND,
    silu::KIND,
    elu::KIND,
    identity::KIND,
    softmax::SOFTMAX,
    softmax::LOG_SOFTMAX,
    batch_norm::KIND,
    batch_norm::KIND_2D,
    layer_norm::KIND,
    dropout::KIND,
    conv::CONV2D,
    conv::CONV1D,
    pool::MAX_POOL,
    pool::AVG_POOL,
    flatten::KIND,
];

/// A layer kind as the parser meets it: its name and how a call of it is built.
pub struct Kind {
    /// The name a model writes, as in PyTorch: `Linear`, `Tanh`.
    pub name: &'static str,
    /// Whether the layer owns parameters (the graph form numbers their `state_dict`
    /// prefixes when one statement holds several such layers: `h.0`, `h.1`).
    pub has_parameters: bool,
    /// Checks a call's arguments (reporting each mistake on its token) and applies the
    /// shape rule. Always returns a layer, so that checking goes on after a mistake;
    /// a model with errors is never emitted.
    pub build: fn(&mut Call<'_>) -> Built,
}

/// The kind called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|kind| kind.name == name)
}

/// Every known layer name, for "did you mean".
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|kind| kind.name).collect()
}

/// A layer call being built: its name token, its arguments (the operand excluded, in
/// the graph form), and what the layer reads.
pub struct Call<'a> {
    /// The layer's name token, for errors about the call as a whole.
    pub name: &'a Ident,
    /// The arguments after the value the layer applies to.
    pub args: Vec<&'a Expr>,
    pub form: Form,
    /// The width of the value the layer reads; `None` when a mistake made it unknown
    /// (or, for a layer of flat values, when the value has more than one dimension).
    pub input: Option<usize>,
    /// The shape of one sample of that value: `[width]`, `[C, H, W]`, `[C, L]`.
    pub input_shape: Option<Vec<usize>>,
    /// How that value was produced, for messages: "`Linear(16)` (layer 0)".
    pub source: String,
    pub errors: &'a mut Errors,
    /// The `state_dict` prefix of the layer's parameters (`0`, `h`, `h.1`).
    pub prefix: String,
    /// The layer's index in the sequential form (its parameters' field suffix).
    pub index: usize,
}

impl Call<'_> {
    /// For a layer of flat values (`Linear`, `BatchNorm1d`, `LayerNorm`, `Softmax`): a
    /// value of more dimensions is reported (with the `Flatten` that would fix it) and
    /// its width treated as unknown, so that nothing else about it is reported.
    pub fn require_flat(&mut self) {
        if let Some(shape) = &self.input_shape
            && shape.len() > 1
        {
            let width: usize = shape.iter().product();
            let message = format!(
                "`{}` reads flat values `[batch, features]`, but {} gives `[batch, {}]`; \
                 add `Flatten` before it (giving width {width})",
                self.name,
                self.source,
                shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.errors.at(self.name, message);
            self.input = None;
            self.input_shape = None;
        }
    }

    /// Reports `message` on `tokens`.
    pub fn error(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.errors.at(tokens, message);
    }

    /// The Rust field that holds parameter `suffix` (`weight_0` in the sequential form,
    /// `h_weight` in the graph form; made unique later by `assign_rust_names`).
    fn field(&self, suffix: &str) -> Ident {
        match self.form {
            Form::Sequential => format_ident!("{}_{}", suffix, self.index),
            Form::Graph => format_ident!("{}_{}", self.prefix.replace('.', "_"), suffix),
        }
    }

    /// A state field of this layer, named `{prefix}.{suffix}` in the `state_dict`.
    pub fn state(
        &self,
        suffix: &'static str,
        ty: TokenStream,
        init: TokenStream,
        kind: StateKind,
    ) -> StateField {
        StateField {
            name: format!("{}.{}", self.prefix, suffix),
            field: self.field(suffix),
            ty,
            init,
            kind,
        }
    }

    /// A scratch buffer of this layer (`rows: None` for one row per batch row).
    pub fn scratch(
        &self,
        suffix: &'static str,
        rows: Option<usize>,
        cols: usize,
        doc: &'static str,
    ) -> Scratch {
        Scratch {
            suffix,
            rows,
            cols,
            doc,
            field: format_ident!("{}", suffix),
            indices: false,
        }
    }

    /// A parameter tensor of this layer: `suffix` (`weight`), its shape, how `new`
    /// initialises it (an expression using `rng`) and its partial for pictures.
    pub fn parameter(
        &self,
        suffix: &'static str,
        shape: Vec<usize>,
        init: TokenStream,
        partial: &'static str,
    ) -> Parameter {
        let field = self.field(suffix);
        Parameter {
            suffix,
            shape,
            grad_local: quote::format_ident!("grad_{}", field),
            field,
            init,
            partial,
        }
    }
}

/// What building a call produced.
pub struct Built {
    pub layer: Box<dyn Layer>,
    /// The output width; `None` when a mistake made it unknown.
    pub width: Option<usize>,
    /// The output shape per sample, for a layer whose output is not flat (`None`: the
    /// shape is `[width]`).
    pub shape: Option<Vec<usize>>,
    /// The layer's parameters, if it has any.
    pub params: Option<ParamSet>,
    /// How the call reads in messages about the value it makes, when that differs from
    /// its name (`Linear(16)`); messages about a width-keeping layer name it and the
    /// value it read instead.
    pub shown: Option<String>,
    /// State the layer keeps in the model struct besides its parameters (running
    /// statistics, a dropout mask generator).
    pub state: Vec<StateField>,
    /// Workspace buffers the layer keeps from forward for backward (besides its output).
    pub scratch: Vec<Scratch>,
}

impl Built {
    /// A layer that keeps its input's width and owns no parameters.
    pub fn elementwise(layer: impl Layer + 'static, call: &Call<'_>) -> Built {
        Built {
            layer: Box::new(layer),
            width: call.input_shape.as_ref().map(|s| s.iter().product()),
            shape: call.input_shape.clone(),
            params: None,
            shown: None,
            state: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// A field of the model struct that is not a trained parameter.
pub struct StateField {
    /// Its `state_dict` name (`1.running_mean`), or a name for messages when not saved.
    pub name: String,
    /// The struct field (made unique later by `assign_rust_names`).
    pub field: Ident,
    /// Its type (`Array1<T>`, `u64`, `DropoutGenerator`).
    pub ty: TokenStream,
    /// Its initial value (an expression; it may not use `rng`).
    pub init: TokenStream,
    pub kind: StateKind,
}

/// What a state field is to the rest of the model.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// A float buffer, saved and loaded with the parameters (PyTorch's buffers).
    Buffer,
    /// A count saved as PyTorch's `int64` scalar (`num_batches_tracked`).
    Count,
    /// A dropout layer's mask generator: not saved; reseeded by `manual_seed`.
    DropoutGenerator,
}

/// A workspace buffer a layer keeps for its backward pass: `[batch, cols]` (resized with
/// the batch) or `[rows, cols]` (fixed).
pub struct Scratch {
    /// Appended to the value's buffer name: `h1_x_hat`.
    pub suffix: &'static str,
    /// `None` for one row per batch row.
    pub rows: Option<usize>,
    pub cols: usize,
    /// What it holds, for its doc comment.
    pub doc: &'static str,
    /// The workspace field (made unique later by `assign_rust_names`).
    pub field: Ident,
    /// Whether it holds positions (`Vec<u32>`, one per batch row and column) rather
    /// than values.
    pub indices: bool,
}

/// The parameters of one layer, named `{prefix}.{suffix}` in the `state_dict`.
pub struct ParamSet {
    pub prefix: String,
    pub tensors: Vec<Parameter>,
    /// The layer as written, for messages about its size: `Linear(4, 16)`.
    pub layer: String,
    /// The layer's name token.
    pub span: Span,
}

/// One parameter tensor.
pub struct Parameter {
    /// `weight`, `bias`.
    pub suffix: &'static str,
    pub shape: Vec<usize>,
    /// The field of the model struct that holds it.
    pub field: Ident,
    /// The name `run` binds its gradient to (an element of the gradient struct's array of
    /// tensors of its rank): `grad_weight_0`.
    pub grad_local: Ident,
    /// How `new` initialises it: an expression of `rng` giving `Result<ArrayN<T>>`.
    pub init: TokenStream,
    /// Its gradient in words, drawn on its edge: `dW = dYᵀ·X`.
    pub partial: &'static str,
}

impl ParamSet {
    /// Its `state_dict` name: `0.weight`.
    pub fn name(&self, tensor: &Parameter) -> String {
        format!("{}.{}", self.prefix, tensor.suffix)
    }
}

/// Everything the compiler knows about one built layer, asked by the emit stage.
pub trait Layer {
    /// How the layer reads in the equations and the picture: `Linear(4, 16)`, `Tanh`.
    fn describe(&self) -> String;

    /// The right-hand side of its forward equation, e.g. `tanh(h)`.
    fn equation(&self, site: &Site<'_>) -> String;

    /// The forward kernel call that writes `site.out()`.
    fn forward(&self, site: &Site<'_>) -> TokenStream;

    /// The backward kernel calls (and their equations), through `grads`.
    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>);

    /// The partial derivative drawn on each edge: one per operand, then one per
    /// parameter tensor (those come from [`Parameter::partial`]).
    fn partials(&self) -> Vec<String>;

    /// The dynamic twin: an expression adding this value to the `GraphModule` `net`
    /// (labelled `site.label()`), of type `Result<usize>`.
    fn dynamic(&self, site: &Site<'_>) -> TokenStream;
}

/// One node of the validated model, seen by its layer while code is emitted.
pub struct Site<'a> {
    pub model: &'a Model,
    pub node: NodeIndex,
    operands: Vec<NodeIndex>,
}

impl<'a> Site<'a> {
    pub fn new(model: &'a Model, node: NodeIndex) -> Self {
        Site {
            model,
            node,
            operands: model.operands(node),
        }
    }

    /// The value's learner name: `h1`, `h`.
    pub fn name(&self) -> &str {
        &self.model.graph[self.node].name
    }

    /// Its label in the dynamic twin.
    pub fn label(&self) -> &str {
        self.name()
    }

    /// Its workspace buffer: `ws.h1`.
    pub fn out(&self) -> TokenStream {
        crate::emit::value_expr(self.model, self.node)
    }

    /// Its gradient buffer: `ws.d_h1`.
    pub fn dy(&self) -> TokenStream {
        crate::emit::grad_expr(self.model, self.node)
    }

    /// Its gradient's name in equations: `d_h1`.
    pub fn dy_name(&self) -> String {
        format!("d_{}", self.name())
    }

    /// Operand `i`'s buffer (`x` for the input, else `ws.NAME`).
    pub fn x(&self, i: usize) -> TokenStream {
        crate::emit::value_expr(self.model, self.operands[i])
    }

    /// Operand `i`'s learner name.
    pub fn x_name(&self, i: usize) -> &str {
        &self.model.graph[self.operands[i]].name
    }

    /// Operand `i`'s local in the dynamic twin.
    pub fn x_dynamic(&self, i: usize) -> Ident {
        format_ident!("v_{}", self.model.graph[self.operands[i]].ident)
    }

    /// The layer's parameters.
    pub fn params(&self) -> &'a ParamSet {
        let index = self.model.graph[self.node]
            .params
            .expect("only layers with parameters ask for them");
        &self.model.params[index]
    }

    /// Whether this node is the first (in forward order) to use its parameters; later
    /// nodes apply a shared layer again.
    pub fn first_use_of_params(&self) -> bool {
        let params = self.model.graph[self.node].params;
        let first = self
            .model
            .order
            .iter()
            .find(|&&n| self.model.graph[n].params == params);
        first == Some(&self.node)
    }

    /// The field of parameter tensor `k` (in the order the layer declared them).
    pub fn param(&self, k: usize) -> &'a Ident {
        &self.params().tensors[k].field
    }

    /// The gradient of parameter tensor `k`, as `run` binds it: `grad_weight_0`.
    pub fn param_grad(&self, k: usize) -> &'a Ident {
        &self.params().tensors[k].grad_local
    }

    /// The field of state field `k` (in the order the layer declared them).
    pub fn state(&self, k: usize) -> &'a Ident {
        &self.model.graph[self.node].state[k].field
    }

    /// Scratch buffer `k`: an array bound by name in `run` (`h1_x_hat`), or an index
    /// buffer, a field of the workspace (`ws.h3_argmax`).
    pub fn scratch(&self, k: usize) -> TokenStream {
        let scratch = &self.model.graph[self.node].scratch[k];
        let field = &scratch.field;
        if scratch.indices {
            quote!(ws.#field)
        } else {
            quote!(#field)
        }
    }
}

/// Where a layer's backward pass writes: the code and the equations, in order.
pub struct Grads<'a> {
    pub(crate) model: &'a Model,
    pub(crate) contributions: &'a mut Contributions,
    pub(crate) code: &'a mut Vec<TokenStream>,
    pub(crate) equations: &'a mut Vec<String>,
}

/// The gradient buffer of one operand, and how to write it.
pub struct Target {
    /// `ws.d_h`.
    pub dx: TokenStream,
    /// `Write::Set` for the first contribution, `Write::Add` for later ones.
    pub write: TokenStream,
    /// The equation's left side: `d_h =` or `d_h +=`.
    pub lhs: String,
}

impl Grads<'_> {
    /// Operand `i` of `site`'s gradient buffer, if backward must reach it at all.
    pub fn operand(&mut self, site: &Site<'_>, i: usize) -> Option<Target> {
        let operand = site.operands[i];
        let value = &self.model.graph[operand];
        if !value.requires_grad {
            return None;
        }
        let first = self.contributions.first(operand);
        Some(Target {
            dx: crate::emit::grad_expr(self.model, operand),
            write: if first {
                quote!(Write::Set)
            } else {
                quote!(Write::Add)
            },
            lhs: format!("d_{} {}", value.name, if first { "=" } else { "+=" }),
        })
    }

    /// How the layer at `site` writes its parameters' gradients: `Write::Set` and `=` for
    /// the first use of its parameters in backward order, `Write::Add` and `+=` for a
    /// further use of shared weights.
    pub fn parameter_write(&mut self, site: &Site<'_>) -> (TokenStream, &'static str) {
        let index = self.model.graph[site.node]
            .params
            .expect("only layers with parameters write their gradients");
        if self.contributions.first_parameter(index) {
            (quote!(Write::Set), "=")
        } else {
            (quote!(Write::Add), "+=")
        }
    }

    /// Appends one kernel call and the equation it computes.
    pub fn emit(&mut self, code: TokenStream, equation: String) {
        self.code.push(code);
        self.equations.push(equation);
    }
}
