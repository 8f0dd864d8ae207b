//! `GraphModule`: a network as a list of named values, each computed from earlier ones,
//! on the dynamic engine. It is what a compiled model's `to_dynamic()` returns, and it
//! can express everything `model!` can: fan-out, skip connections, `+` and `*`.
//!
//! ```
//! use nnscratch::compiled::{LossKind, Target};
//! use nnscratch::nn::{GraphModule, Module};
//! use nnscratch::Tensor;
//!
//! // y = Linear(x) + x, a skip connection
//! let mut net = GraphModule::<f64>::new("Skip", LossKind::MSELoss);
//! let x = net.input("x", 2);
//! let h = net.linear("h", x, "h", ndarray::Array2::eye(2), ndarray::Array1::zeros(2))?;
//! let y = net.add("y", h, x)?;
//! let net = net.finish(y)?;
//! let out = net.forward(&Tensor::from([[1.0, 2.0]]))?;
//! assert_eq!(out.to_array(), ndarray::arr2(&[[2.0, 4.0]]).into_dyn());
//! let target = ndarray::arr2(&[[2.0, 4.0]]);
//! assert_eq!(net.loss(&Tensor::from([[1.0, 2.0]]), Target::Values(target.view()))?.item()?, 0.0);
//! # Ok::<(), nnscratch::Error>(())
//! ```

use ndarray::{Array1, Array2};

use super::{Layer, Linear, Module};
use crate::compiled::{Loss, LossKind, Target};
use crate::optim::{Buffer, Param, Parameters};
use crate::{Error, Float, Result, Tensor};

/// How one value of a [`GraphModule`] is computed from earlier values (by index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GraphOp<T> {
    /// The network's input, of the given width.
    Input(usize),
    /// `Linear` number `layer` (see [`GraphModule::linears`]) applied to a value.
    Linear {
        /// The value it reads.
        input: usize,
        /// Its index in [`GraphModule::linears`].
        layer: usize,
    },
    /// `max(x, 0)`.
    ReLU(usize),
    /// Leaky ReLU with a slope.
    LeakyReLU(usize, T),
    /// Logistic function.
    Sigmoid(usize),
    /// Hyperbolic tangent.
    Tanh(usize),
    /// Softplus with `beta` and `threshold`.
    Softplus(usize, T, T),
    /// GELU, exact or (`true`) with the tanh approximation.
    GELU(usize, bool),
    /// `x·σ(x)`.
    SiLU(usize),
    /// ELU with `alpha`.
    ELU(usize, T),
    /// `x`.
    Identity(usize),
    /// Softmax over the features.
    Softmax(usize),
    /// LogSoftmax over the features.
    LogSoftmax(usize),
    /// Element-wise sum.
    Add(usize, usize),
    /// Element-wise product.
    Mul(usize, usize),
    /// Element-wise difference.
    Sub(usize, usize),
    /// A value times a constant.
    Scale(usize, T),
    /// Values joined along the features: operand list number `index` of
    /// [`GraphModule::concatenations`].
    Cat {
        /// Its index in [`GraphModule::concatenations`].
        index: usize,
    },
    /// A layer with parameters or state other than `Linear` (BatchNorm1d, LayerNorm,
    /// Dropout) applied to a value.
    Module {
        /// The value it reads.
        input: usize,
        /// Its index in [`GraphModule::modules`].
        index: usize,
    },
}

/// A network of named values on the dynamic engine (see the module docs).
pub struct GraphModule<T: Float = f32> {
    name: String,
    values: Vec<(String, GraphOp<T>, usize)>, // (name, op, width)
    linears: Vec<(String, Linear<T>)>,        // (state_dict prefix, layer)
    modules: Vec<(String, Layer<T>)>,         // (state_dict prefix, layer)
    concatenations: Vec<Vec<usize>>,
    /// Each value's shape per sample (`[width]` for a flat one).
    shapes: Vec<Vec<usize>>,
    output: usize,
    loss: Loss,
}

impl<T: Float> GraphModule<T> {
    /// An empty network named `name` (for messages), trained with `loss` (a
    /// [`LossKind`] with PyTorch's defaults, or a [`Loss`] with its arguments).
    pub fn new(name: &str, loss: impl Into<Loss>) -> Self {
        GraphModule {
            name: name.to_string(),
            values: Vec::new(),
            linears: Vec::new(),
            modules: Vec::new(),
            concatenations: Vec::new(),
            shapes: Vec::new(),
            output: 0,
            loss: loss.into(),
        }
    }

    fn push(&mut self, name: &str, op: GraphOp<T>, width: usize) -> usize {
        self.push_shaped(name, op, vec![width])
    }

    fn push_shaped(&mut self, name: &str, op: GraphOp<T>, shape: Vec<usize>) -> usize {
        let width = shape.iter().product();
        self.values.push((name.to_string(), op, width));
        self.shapes.push(shape);
        self.values.len() - 1
    }

    /// The shape per sample of value `value`.
    pub fn shape(&self, value: usize) -> Option<&[usize]> {
        self.shapes.get(value).map(Vec::as_slice)
    }

    fn width(&self, value: usize) -> Result<usize> {
        self.values
            .get(value)
            .map(|v| v.2)
            .ok_or_else(|| Error::InvalidArgument {
                what: format!("{}: value index", self.name),
                expected: format!("an index below {}", self.values.len()),
                found: value.to_string(),
            })
    }

    /// Declares the input (do this first); returns its index.
    pub fn input(&mut self, name: &str, width: usize) -> usize {
        self.push(name, GraphOp::Input(width), width)
    }

    /// Declares an input of shape `shape` per sample (`[C, H, W]`, `[C, L]`), given to
    /// the network as rows `[batch, C·H·W]` (each sample's values in row-major order, as
    /// a compiled model takes them) and reshaped to `[batch, C, H, W]` when it runs.
    pub fn input_shaped(&mut self, name: &str, shape: &[usize]) -> usize {
        let width = shape.iter().product();
        self.push_shaped(name, GraphOp::Input(width), shape.to_vec())
    }

    /// `name = Linear(input)` with the given weight `[out, in]` and bias (`None`: no
    /// bias), whose parameters are called `{prefix}.weight` and `{prefix}.bias`.
    pub fn linear(
        &mut self,
        name: &str,
        input: usize,
        prefix: &str,
        weight: Array2<T>,
        bias: impl Into<Option<Array1<T>>>,
    ) -> Result<usize> {
        let width = self.width(input)?;
        if weight.ncols() != width {
            return Err(Error::ShapeMismatch {
                op: "GraphModule::linear",
                lhs: vec![weight.nrows(), weight.ncols()],
                rhs: vec![width],
                expected: format!("a weight with {width} columns, the width of its input"),
            });
        }
        let out = weight.nrows();
        let layer = Linear::from_parameters(weight, bias)?.set_prefix(prefix);
        self.linears.push((prefix.to_string(), layer));
        Ok(self.push(
            name,
            GraphOp::Linear {
                input,
                layer: self.linears.len() - 1,
            },
            out,
        ))
    }

    fn unary(&mut self, name: &str, input: usize, op: GraphOp<T>) -> Result<usize> {
        self.width(input)?; // checks the index
        let shape = self.shapes[input].clone();
        Ok(self.push_shaped(name, op, shape))
    }

    /// `name = ReLU(input)`.
    pub fn relu(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::ReLU(input))
    }

    /// `name = LeakyReLU(input, slope)`.
    pub fn leaky_relu(&mut self, name: &str, input: usize, slope: T) -> Result<usize> {
        self.unary(name, input, GraphOp::LeakyReLU(input, slope))
    }

    /// `name = Sigmoid(input)`.
    pub fn sigmoid(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::Sigmoid(input))
    }

    /// `name = Tanh(input)`.
    pub fn tanh(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::Tanh(input))
    }

    /// `name = Softplus(input, beta, threshold)`.
    pub fn softplus(&mut self, name: &str, input: usize, beta: T, threshold: T) -> Result<usize> {
        self.unary(name, input, GraphOp::Softplus(input, beta, threshold))
    }

    /// `name = GELU(input)`, exact or (`tanh`) approximate.
    pub fn gelu(&mut self, name: &str, input: usize, tanh: bool) -> Result<usize> {
        self.unary(name, input, GraphOp::GELU(input, tanh))
    }

    /// `name = SiLU(input)`.
    pub fn silu(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::SiLU(input))
    }

    /// `name = ELU(input, alpha)`.
    pub fn elu(&mut self, name: &str, input: usize, alpha: T) -> Result<usize> {
        self.unary(name, input, GraphOp::ELU(input, alpha))
    }

    /// `name = Softmax(input)` over the features (the last axis).
    pub fn softmax(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::Softmax(input))
    }

    /// `name = LogSoftmax(input)` over the features (the last axis).
    pub fn log_softmax(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::LogSoftmax(input))
    }

    /// `name = Identity(input)`.
    pub fn identity(&mut self, name: &str, input: usize) -> Result<usize> {
        self.unary(name, input, GraphOp::Identity(input))
    }

    fn binary(&mut self, name: &str, a: usize, b: usize, op: GraphOp<T>) -> Result<usize> {
        let (wa, wb) = (self.width(a)?, self.width(b)?);
        if wa != wb {
            return Err(Error::ShapeMismatch {
                op: "GraphModule (+, - or *)",
                lhs: vec![wa],
                rhs: vec![wb],
                expected: "operands of equal width".into(),
            });
        }
        let shape = self.shapes[a].clone();
        Ok(self.push_shaped(name, op, shape))
    }

    /// `name = a + b`.
    pub fn add(&mut self, name: &str, a: usize, b: usize) -> Result<usize> {
        self.binary(name, a, b, GraphOp::Add(a, b))
    }

    /// `name = a * b` (element-wise).
    pub fn mul(&mut self, name: &str, a: usize, b: usize) -> Result<usize> {
        self.binary(name, a, b, GraphOp::Mul(a, b))
    }

    /// `name = a - b`.
    pub fn sub(&mut self, name: &str, a: usize, b: usize) -> Result<usize> {
        self.binary(name, a, b, GraphOp::Sub(a, b))
    }

    /// `name = c * x`, a constant factor.
    pub fn scale(&mut self, name: &str, x: usize, c: T) -> Result<usize> {
        self.width(x)?; // checks the index
        let shape = self.shapes[x].clone();
        Ok(self.push_shaped(name, GraphOp::Scale(x, c), shape))
    }

    /// `name = cat(inputs)`, the values joined along the features (`torch.cat(...,
    /// dim=-1)`); its width is the sum of theirs.
    pub fn cat(&mut self, name: &str, inputs: &[usize]) -> Result<usize> {
        let mut width = 0;
        for &input in inputs {
            width += self.width(input)?;
        }
        if inputs.is_empty() {
            return Err(Error::InvalidArgument {
                what: format!("{}: GraphModule::cat", self.name),
                expected: "at least one value".into(),
                found: "none".into(),
            });
        }
        // Joined along the first axis of each sample (the features, or the channels).
        let mut shape = self.shapes[inputs[0]].clone();
        shape[0] = inputs.iter().map(|&i| self.shapes[i][0]).sum();
        if shape.iter().product::<usize>() != width {
            return Err(Error::InvalidArgument {
                what: format!("{}: GraphModule::cat", self.name),
                expected: "values whose axes after the first agree".into(),
                found: format!(
                    "{:?}",
                    inputs.iter().map(|&i| &self.shapes[i]).collect::<Vec<_>>()
                ),
            });
        }
        self.concatenations.push(inputs.to_vec());
        let index = self.concatenations.len() - 1;
        Ok(self.push_shaped(name, GraphOp::Cat { index }, shape))
    }

    /// The operand lists of the [`GraphOp::Cat`] values.
    pub fn concatenations(&self) -> &[Vec<usize>] {
        &self.concatenations
    }

    /// `name = prefix(input)`: the Linear already added under `prefix` applied once more,
    /// with the same weights (weight sharing: its gradient is the sum over its uses).
    pub fn shared_linear(&mut self, name: &str, input: usize, prefix: &str) -> Result<usize> {
        let width = self.width(input)?;
        let Some(layer) = self.linears.iter().position(|(p, _)| p == prefix) else {
            return Err(Error::InvalidArgument {
                what: format!("{}: GraphModule::shared_linear", self.name),
                expected: format!(
                    "the prefix of a Linear added before, one of {:?}",
                    self.linears.iter().map(|(p, _)| p).collect::<Vec<_>>()
                ),
                found: format!("\"{prefix}\""),
            });
        };
        let linear = &self.linears[layer].1;
        if linear.in_features() != width {
            return Err(Error::ShapeMismatch {
                op: "GraphModule::shared_linear",
                lhs: vec![linear.out_features(), linear.in_features()],
                rhs: vec![width],
                expected: format!("an input of width {}", linear.in_features()),
            });
        }
        let out = linear.out_features();
        Ok(self.push(name, GraphOp::Linear { input, layer }, out))
    }

    /// Marks `output` as the network's output, the value the loss reads.
    pub fn finish(mut self, output: usize) -> Result<Self> {
        self.width(output)?;
        if !matches!(self.values.first(), Some((_, GraphOp::Input(_), _))) {
            return Err(Error::InvalidArgument {
                what: format!("{}: GraphModule::finish", self.name),
                expected: "the input declared first".into(),
                found: "no input".into(),
            });
        }
        self.output = output;
        Ok(self)
    }

    /// The values: name, how each is computed, width.
    pub fn values(&self) -> &[(String, GraphOp<T>, usize)] {
        &self.values
    }

    /// The Linear layers with their `state_dict` prefixes.
    pub fn linears(&self) -> &[(String, Linear<T>)] {
        &self.linears
    }

    /// `name = layer(input)` for a layer that keeps its input's width and is not a
    /// `Linear` (BatchNorm1d, LayerNorm, Dropout); its parameters and buffers are called
    /// `{prefix}.weight`, `{prefix}.running_mean`, ….
    pub fn module(
        &mut self,
        name: &str,
        input: usize,
        prefix: &str,
        layer: Layer<T>,
    ) -> Result<usize> {
        let width = self.width(input)?;
        let shape = layer.output_shape(&self.shapes[input])?;
        if let Some(needed) = layer.input_width()
            && needed != width
        {
            return Err(Error::InvalidArgument {
                what: format!("GraphModule::module: {layer}"),
                expected: format!("a layer for {width} features, the width of its input"),
                found: format!("{needed} features"),
            });
        }
        let layer = match layer {
            Layer::BatchNorm1d(layer) => Layer::BatchNorm1d(layer.set_prefix(prefix)),
            Layer::LayerNorm(layer) => Layer::LayerNorm(layer.set_prefix(prefix)),
            Layer::Conv2d(layer) => Layer::Conv2d(layer.set_prefix(prefix)),
            Layer::Conv1d(layer) => Layer::Conv1d(layer.set_prefix(prefix)),
            other => other,
        };
        self.modules.push((prefix.to_string(), layer));
        Ok(self.push_shaped(
            name,
            GraphOp::Module {
                input,
                index: self.modules.len() - 1,
            },
            shape,
        ))
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The index of the value [`finish`](GraphModule::finish) marked as the output.
    pub fn output(&self) -> usize {
        self.output
    }

    /// The layers added with [`module`](GraphModule::module), with their prefixes.
    pub fn modules(&self) -> &[(String, Layer<T>)] {
        &self.modules
    }

    /// The loss the network is trained with.
    pub fn loss_kind(&self) -> LossKind {
        self.loss.kind
    }

    /// The loss with its arguments (reduction, `beta`/`delta`).
    pub fn loss_function(&self) -> Loss {
        self.loss
    }

    fn run(&self, x: &Tensor<T>, record: bool) -> Result<Tensor<T>> {
        let width = self.values.first().map_or(0, |v| v.2);
        let shape = x.shape();
        if shape.len() != 2 || shape[1] != width {
            return Err(Error::BadShape {
                op: self.name.clone(),
                expected: format!("an input of shape [batch, {width}]"),
                found: shape,
            });
        }
        let mut computed: Vec<Tensor<T>> = Vec::with_capacity(self.values.len());
        for (name, op, _) in &self.values {
            let value = match *op {
                GraphOp::Input(_) => {
                    let x = if record { x.clone() } else { x.detach() };
                    // A shaped input arrives as rows and runs as [batch, C, H, W].
                    match self.shapes.first() {
                        Some(shape) if shape.len() > 1 => {
                            let mut full = vec![x.shape().first().copied().unwrap_or(1) as isize];
                            full.extend(shape.iter().map(|&d| d as isize));
                            x.reshape(&full)?
                        }
                        _ => x,
                    }
                }
                GraphOp::Linear { input, layer } => {
                    let layer = &self.linears[layer].1;
                    if record {
                        layer.forward(&computed[input])?
                    } else {
                        layer.forward_no_grad(&computed[input])?
                    }
                }
                GraphOp::ReLU(input) => computed[input].relu(),
                GraphOp::LeakyReLU(input, slope) => computed[input].leaky_relu(slope),
                GraphOp::Sigmoid(input) => computed[input].sigmoid(),
                GraphOp::Tanh(input) => computed[input].tanh(),
                GraphOp::GELU(input, tanh) => computed[input].gelu(tanh),
                GraphOp::SiLU(input) => computed[input].silu(),
                GraphOp::ELU(input, alpha) => computed[input].elu(alpha),
                // A value of its own (a label of its own in pictures), as the compiled
                // model's buffer is.
                GraphOp::Identity(input) => computed[input].identity(),
                GraphOp::Softmax(input) => computed[input].softmax(),
                GraphOp::LogSoftmax(input) => computed[input].log_softmax(),
                GraphOp::Softplus(input, beta, threshold) => {
                    computed[input].softplus(beta, threshold)
                }
                GraphOp::Module { input, index } => {
                    let layer = &self.modules[index].1;
                    if record {
                        layer.forward(&computed[input])?
                    } else {
                        layer.forward_no_grad(&computed[input])?
                    }
                }
                GraphOp::Add(a, b) => computed[a].try_add(&computed[b])?,
                GraphOp::Sub(a, b) => computed[a].try_sub(&computed[b])?,
                GraphOp::Scale(x, c) => &computed[x] * c,
                GraphOp::Cat { index } => {
                    let parts: Vec<Tensor<T>> = self.concatenations[index]
                        .iter()
                        .map(|&i| computed[i].clone())
                        .collect();
                    Tensor::cat(&parts, 1)?
                }
                GraphOp::Mul(a, b) => computed[a].try_mul(&computed[b])?,
            };
            // Name the value for pictures (the input keeps the caller's label).
            let value = if matches!(op, GraphOp::Input(_)) {
                value
            } else {
                value.with_label(name.clone())
            };
            computed.push(value);
        }
        Ok(computed.swap_remove(self.output))
    }

    /// The loss of a batch: forward, then the network's loss against `target`.
    pub fn loss(&self, x: &Tensor<T>, target: Target<'_, T>) -> Result<Tensor<T>> {
        let output = self.forward(x)?;
        let loss = match (self.loss.value_loss(), target) {
            (Some(value_loss), Target::Values(values)) => output.value_loss(
                &Tensor::new(values.to_owned().into_dyn()).with_label("target"),
                value_loss,
                self.loss.reduction,
            )?,
            (None, Target::Classes(classes)) if self.loss.kind == LossKind::NLLLoss => {
                output.nll_loss_reduced(classes, self.loss.reduction)?
            }
            (None, Target::Classes(classes)) => {
                output.cross_entropy_reduced(classes, self.loss.reduction)?
            }
            (value_loss, _) => {
                let name = self.loss.kind.name();
                return Err(Error::InvalidArgument {
                    what: format!("{} loss target", self.name),
                    expected: if value_loss.is_some() {
                        format!("Target::Values for {name}")
                    } else {
                        format!("Target::Classes for {name}")
                    },
                    found: "the other kind of target".into(),
                });
            }
        };
        Ok(loss.with_label("loss"))
    }
}

impl<T: Float> Module<T> for GraphModule<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, true)
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, false)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = Vec::new();
        for (prefix, layer) in &self.linears {
            for (name, tensor) in layer.named_parameters() {
                params.push((format!("{prefix}.{name}"), tensor));
            }
        }
        for (prefix, layer) in &self.modules {
            for (name, tensor) in layer.named_parameters() {
                params.push((format!("{prefix}.{name}"), tensor));
            }
        }
        params
    }

    fn set_training(&mut self, training: bool) {
        for (_, layer) in &mut self.modules {
            layer.set_training(training);
        }
    }
}

impl<T: Float> Parameters<T> for GraphModule<T> {
    fn visit_parameters(&mut self, visitor: &mut dyn FnMut(Param<'_, T>)) {
        super::visit_module(self, visitor);
    }
    fn visit_buffers(&mut self, visitor: &mut dyn FnMut(Buffer<'_, T>)) {
        for (prefix, layer) in &mut self.modules {
            layer.visit_buffers(&format!("{prefix}."), visitor);
        }
    }
    fn zero_grad(&mut self) {
        Module::zero_grad(self);
    }
}
