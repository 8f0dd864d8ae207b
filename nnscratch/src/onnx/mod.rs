//! ONNX export: a trained network as a `.onnx` file that onnxruntime, tract, TensorRT
//! and the other ONNX engines run.
//!
//! ```
//! use nnscratch::nn::{Linear, ReLU, Sequential};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let net = Sequential::<f32>::new([Linear(4, 8), ReLU, Linear(8, 2)], &mut rng)?;
//! let model = nnscratch::onnx::from_sequential(&net, "TwoLayers", &[4])?;
//! assert_eq!(model.graph.as_ref().unwrap().node.len(), 3); // Gemm, Relu, Gemm
//! let dir = tempfile::tempdir().unwrap();
//! nnscratch::onnx::save(&model, dir.path().join("two_layers.onnx"))?;
//! # Ok::<(), nnscratch::Error>(())
//! ```
//!
//! A compiled model exports itself: `model.export_onnx("model.onnx")?` (see
//! [`CompiledModel::export_onnx`]).
//!
//! What the file holds:
//! - **the forward pass in evaluation mode**: BatchNorm normalises with its running
//!   statistics (with batch statistics when it keeps none, as PyTorch's does), Dropout is
//!   left out; the graph's output is the network's output (the logits), not the loss;
//! - **one input with a symbolic batch dimension** `batch`: `[batch, features]`, or
//!   `[batch, C, H, W]` / `[batch, C, L]` for a shaped input;
//! - **initializers named as in the PyTorch `state_dict`** (`0.weight`,
//!   `3.running_mean`), so the file's weights line up with a checkpoint's; constants
//!   that are not parameters get names no `state_dict` uses (`1.onnx_scale_ones`);
//! - opset [`OPSET`] (ONNX 1.12 and later, IR version [`IR_VERSION`]); elements `float`
//!   for `f32` models and `double` for `f64` ones;
//! - the model's name as the graph's name and in the metadata (`model`), with
//!   nnscratch's version (`nnscratch_version`, also the producer version).
//!
//! Each layer maps onto standard operators (no custom domain):
//!
//! | layer | ONNX |
//! |---|---|
//! | `Linear` | `Gemm` (`transB = 1`); on inputs of rank > 2 `Transpose` + `MatMul` + `Add` |
//! | `Conv1d`, `Conv2d` | `Conv` (strides, pads, dilations, group) |
//! | `MaxPool2d`, `AvgPool2d` | `MaxPool`, `AveragePool` (`count_include_pad = 1`, PyTorch's default) |
//! | `Flatten` | `Flatten` (`axis = 1`) |
//! | `BatchNorm1d/2d` | `BatchNormalization` with the running statistics; without them `ReduceMean`, `Sub`, `Mul`, `Add`, `Sqrt`, `Div` over the batch |
//! | `LayerNorm` | `LayerNormalization` (`axis = -1`) |
//! | `Dropout` | nothing (the identity) |
//! | `ReLU`, `LeakyReLU`, `Sigmoid`, `Tanh`, `ELU`, `Identity` | `Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Elu`, `Identity` |
//! | `Softplus(beta, threshold)` | `Softplus` of `beta·x` divided by `beta`, `Where` `beta·x > threshold` gives `x` |
//! | `GELU` | `0.5·x·(1 + Erf(x/√2))`; `GELU("tanh")` with `Tanh` |
//! | `SiLU` | `x·Sigmoid(x)` |
//! | `Softmax`, `LogSoftmax` | `Softmax`, `LogSoftmax` (`axis = -1`) |
//! | `a + b`, `a - b`, `a * b` | `Add`, `Sub`, `Mul` |
//! | `c * h`, `h / c`, `-h` | `Mul` by a constant, `Neg` |
//! | `cat(a, b)` | `Concat` (`axis = 1`) |
//! | a shared layer used twice | two nodes reading one set of initializers |
//!
//! The message types are generated from ONNX's `onnx.proto` by prost (see [`proto`]).

#[allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]
#[rustfmt::skip]
pub mod proto;

use std::collections::HashSet;
use std::marker::PhantomData;
use std::path::Path;

use prost::Message;

use crate::compiled::CompiledModel;
use crate::nn::{BatchNorm1d, GraphModule, GraphOp, Layer, LayerNorm, Linear, Sequential};
use crate::{Error, Float, Result};
use proto::attribute_proto::AttributeType;
use proto::tensor_proto::DataType;
use proto::tensor_shape_proto::{Dimension, dimension};
use proto::type_proto;
use proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The operator set the exported graphs use: 17, the first with `LayerNormalization`.
pub const OPSET: i64 = 17;

/// The ONNX IR version of the exported files: 8, the one that goes with opset 17.
pub const IR_VERSION: i64 = 8;

/// The name of the symbolic batch dimension of the input and output.
pub const BATCH_DIM: &str = "batch";

/// A compiled model (either form of `model!`) as an ONNX model, through its dynamic
/// twin ([`CompiledModel::to_dynamic`]): the same weights, buffers and graph.
pub fn from_compiled<T: Float, M: CompiledModel<T>>(model: &M) -> Result<ModelProto> {
    from_graph(&model.to_dynamic())
}

/// A [`GraphModule`] as an ONNX model named as the module.
pub fn from_graph<T: Float>(module: &GraphModule<T>) -> Result<ModelProto> {
    let mut b = Builder::<T>::new();
    let values = module.values();
    let mut names: Vec<String> = Vec::with_capacity(values.len());
    let shape_of = |i: usize| module.shape(i).map(<[usize]>::to_vec).unwrap_or_default();
    let mut input = None;
    for (i, (name, op, _)) in values.iter().enumerate() {
        let out = b.fresh(name);
        let result = match *op {
            GraphOp::Input(_) => {
                input = Some(b.value_info(&out, &shape_of(i)));
                out
            }
            GraphOp::Linear { input, layer } => {
                let (prefix, linear) = &module.linears()[layer];
                let rank = shape_of(input).len() + 1;
                b.linear(linear, prefix, &names[input], rank, &out);
                out
            }
            GraphOp::ReLU(x) => b.activation(Activation::Relu, &names[x], &out),
            GraphOp::LeakyReLU(x, slope) => {
                b.activation(Activation::LeakyRelu(slope), &names[x], &out)
            }
            GraphOp::Sigmoid(x) => b.activation(Activation::Sigmoid, &names[x], &out),
            GraphOp::Tanh(x) => b.activation(Activation::Tanh, &names[x], &out),
            GraphOp::Softplus(x, beta, threshold) => {
                b.activation(Activation::Softplus(beta, threshold), &names[x], &out)
            }
            GraphOp::GELU(x, tanh) => b.activation(Activation::Gelu(tanh), &names[x], &out),
            GraphOp::SiLU(x) => b.activation(Activation::Silu, &names[x], &out),
            GraphOp::ELU(x, alpha) => b.activation(Activation::Elu(alpha), &names[x], &out),
            GraphOp::Identity(x) => b.activation(Activation::Identity, &names[x], &out),
            GraphOp::Softmax(x) => b.activation(Activation::Softmax, &names[x], &out),
            GraphOp::LogSoftmax(x) => b.activation(Activation::LogSoftmax, &names[x], &out),
            GraphOp::Add(x, y) => b.node("Add", &[&names[x], &names[y]], &out, vec![]),
            GraphOp::Sub(x, y) => b.node("Sub", &[&names[x], &names[y]], &out, vec![]),
            GraphOp::Mul(x, y) => b.node("Mul", &[&names[x], &names[y]], &out, vec![]),
            GraphOp::Scale(x, c) if c == T::of(-1.0) => b.node("Neg", &[&names[x]], &out, vec![]),
            GraphOp::Scale(x, c) => {
                let c = b.scalar(&format!("{out}.onnx_factor"), c);
                b.node("Mul", &[&names[x], &c], &out, vec![])
            }
            GraphOp::Cat { index } => {
                let parts: Vec<&str> = module.concatenations()[index]
                    .iter()
                    .map(|&v| names[v].as_str())
                    .collect();
                b.node("Concat", &parts, &out, vec![int("axis", 1)])
            }
            GraphOp::Module { input, index } => {
                let (prefix, layer) = &module.modules()[index];
                b.layer(layer, prefix, &names[input], &shape_of(input), &out)
            }
        };
        names.push(result);
    }
    let input = input.ok_or_else(|| Error::InvalidArgument {
        what: format!("ONNX export of {}", module.name()),
        expected: "a network with an input".into(),
        found: "none".into(),
    })?;
    let output = module.output();
    let output_name = b.graph_output(&names[output], &values[output].0);
    let output = b.value_info(&output_name, &shape_of(output));
    Ok(b.finish(module.name(), input, output))
}

/// A [`Sequential`] as an ONNX model called `name`, for inputs of shape `input_shape`
/// per sample (`[features]`, or `[C, H, W]` for a network that starts with `Conv2d`).
/// The graph's input is called `input` and its output `output`.
pub fn from_sequential<T: Float>(
    model: &Sequential<T>,
    name: &str,
    input_shape: &[usize],
) -> Result<ModelProto> {
    if input_shape.is_empty() || input_shape.contains(&0) {
        return Err(Error::InvalidArgument {
            what: format!("ONNX export of {name}: the input shape per sample"),
            expected: "one or more sizes, none 0 (`[features]`, `[C, L]` or `[C, H, W]`)".into(),
            found: format!("{input_shape:?}"),
        });
    }
    let mut b = Builder::<T>::new();
    let input = b.value_info("input", input_shape);
    let mut current = "input".to_string();
    let mut shape = input_shape.to_vec();
    for (i, layer) in model.layers().iter().enumerate() {
        check_input(name, i, layer, &shape)?;
        let out = b.fresh(&format!("{i}.{}", kind(layer)));
        current = b.layer(layer, &i.to_string(), &current, &shape, &out);
        shape = match layer {
            // Linear maps the last axis, whatever the rank.
            Layer::Linear(linear) => {
                let mut s = shape.clone();
                s.pop();
                s.push(linear.out_features());
                s
            }
            other => other
                .output_shape(&shape)
                .map_err(|e| Error::InvalidArgument {
                    what: format!("ONNX export of {name}, layer {i} ({other})"),
                    expected: format!("a layer that accepts inputs of shape {shape:?} per sample"),
                    found: e.to_string(),
                })?,
        };
    }
    let output_name = b.graph_output(&current, "output");
    let output = b.value_info(&output_name, &shape);
    Ok(b.finish(name, input, output))
}

/// Whether layer `index` of a `Sequential` reads values of shape `shape` per sample
/// (widths and channels; `Layer::output_shape` checks ranks and window sizes).
fn check_input<T: Float>(
    name: &str,
    index: usize,
    layer: &Layer<T>,
    shape: &[usize],
) -> Result<()> {
    let needed = match layer {
        Layer::Conv2d(conv) => Some((conv.in_channels(), shape.len() == 3, "[C, H, W]")),
        Layer::Conv1d(conv) => Some((conv.in_channels(), shape.len() == 2, "[C, L]")),
        Layer::BatchNorm1d(bn) if bn.is_2d() => {
            Some((bn.num_features(), shape.len() == 3, "[C, H, W]"))
        }
        _ => None,
    };
    let problem = match (needed, layer.input_width()) {
        (Some((channels, rank_ok, form)), _) if !rank_ok || shape[0] != channels => {
            Some(format!("values {form} with C = {channels}"))
        }
        (_, Some(width)) if shape.last() != Some(&width) => {
            Some(format!("values whose last axis has {width} features"))
        }
        _ => None,
    };
    match problem {
        Some(expected) => Err(Error::InvalidArgument {
            what: format!("ONNX export of {name}, layer {index} ({layer})"),
            expected: format!("{expected} per sample"),
            found: format!("shape {shape:?}"),
        }),
        None => Ok(()),
    }
}

/// The ONNX model as protobuf bytes, what a `.onnx` file holds.
pub fn to_bytes(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Writes the model to `path` atomically (a temporary file beside it, renamed over it,
/// as checkpoints are): a crash leaves the old file or the new one, never half of one.
/// A path that cannot be written is an `Err` naming it.
pub fn save(model: &ModelProto, path: impl AsRef<Path>) -> Result<()> {
    crate::io::write_atomic(path, &to_bytes(model))
}

/// The name of a layer kind, as [`LAYER_KINDS`] lists it.
pub fn kind<T: Float>(layer: &Layer<T>) -> &'static str {
    match layer {
        Layer::Linear(_) => "Linear",
        Layer::ReLU => "ReLU",
        Layer::LeakyReLU(_) => "LeakyReLU",
        Layer::Sigmoid => "Sigmoid",
        Layer::Tanh => "Tanh",
        Layer::Softplus(_) => "Softplus",
        Layer::GELU(_) => "GELU",
        Layer::SiLU => "SiLU",
        Layer::ELU(_) => "ELU",
        Layer::Identity => "Identity",
        Layer::Softmax(_) => "Softmax",
        Layer::LogSoftmax(_) => "LogSoftmax",
        Layer::BatchNorm1d(bn) if bn.is_2d() => "BatchNorm2d",
        Layer::BatchNorm1d(_) => "BatchNorm1d",
        Layer::LayerNorm(_) => "LayerNorm",
        Layer::Dropout(_) => "Dropout",
        Layer::Conv2d(_) => "Conv2d",
        Layer::Conv1d(_) => "Conv1d",
        Layer::Pool2d(pool) if pool.max => "MaxPool2d",
        Layer::Pool2d(_) => "AvgPool2d",
        Layer::Flatten => "Flatten",
    }
}

/// The name of a [`GraphOp`] kind: a layer's name for layers, and `Input`, `Add`, `Sub`,
/// `Mul`, `Scale`, `Cat` for the rest (a `Linear` used twice is two `Linear` ops).
pub fn op_kind<T: Float>(module: &GraphModule<T>, op: &GraphOp<T>) -> &'static str {
    match op {
        GraphOp::Input(_) => "Input",
        GraphOp::Linear { .. } => "Linear",
        GraphOp::ReLU(_) => "ReLU",
        GraphOp::LeakyReLU(..) => "LeakyReLU",
        GraphOp::Sigmoid(_) => "Sigmoid",
        GraphOp::Tanh(_) => "Tanh",
        GraphOp::Softplus(..) => "Softplus",
        GraphOp::GELU(..) => "GELU",
        GraphOp::SiLU(_) => "SiLU",
        GraphOp::ELU(..) => "ELU",
        GraphOp::Identity(_) => "Identity",
        GraphOp::Softmax(_) => "Softmax",
        GraphOp::LogSoftmax(_) => "LogSoftmax",
        GraphOp::Add(..) => "Add",
        GraphOp::Sub(..) => "Sub",
        GraphOp::Mul(..) => "Mul",
        GraphOp::Scale(..) => "Scale",
        GraphOp::Cat { .. } => "Cat",
        GraphOp::Module { index, .. } => module
            .modules()
            .get(*index)
            .map_or("Module", |(_, layer)| kind(layer)),
    }
}

/// Every layer kind and graph operation the exporter maps (the names [`kind`] and
/// [`op_kind`] give); the tests export a model with each one.
pub const LAYER_KINDS: &[&str] = &[
    "Linear",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softplus",
    "GELU",
    "SiLU",
    "ELU",
    "Identity",
    "Softmax",
    "LogSoftmax",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "Dropout",
    "Conv2d",
    "Conv1d",
    "MaxPool2d",
    "AvgPool2d",
    "Flatten",
    "Add",
    "Sub",
    "Mul",
    "Scale",
    "Cat",
];

/// A convolution's geometry, one entry per spatial axis.
struct Geometry<'a> {
    kernel: &'a [usize],
    stride: &'a [usize],
    padding: &'a [usize],
    dilation: &'a [usize],
    groups: usize,
}

/// An element-wise layer, whichever container it came from.
#[derive(Clone, Copy)]
enum Activation<T> {
    Relu,
    LeakyRelu(T),
    Sigmoid,
    Tanh,
    Softplus(T, T),
    Gelu(bool),
    Silu,
    Elu(T),
    Identity,
    Softmax,
    LogSoftmax,
}

/// The graph under construction: nodes in order, initializers, the names in use.
struct Builder<T> {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    initializer_names: HashSet<String>,
    value_names: HashSet<String>,
    _element: PhantomData<T>,
}

impl<T: Float> Builder<T> {
    fn new() -> Self {
        Builder {
            nodes: Vec::new(),
            initializers: Vec::new(),
            initializer_names: HashSet::new(),
            value_names: HashSet::new(),
            _element: PhantomData,
        }
    }

    /// `name`, or `name_2`, `name_3`, … if a value is already called that.
    fn fresh(&mut self, name: &str) -> String {
        let mut candidate = name.to_string();
        let mut n = 2;
        while self.value_names.contains(&candidate) || self.initializer_names.contains(&candidate) {
            candidate = format!("{name}_{n}");
            n += 1;
        }
        self.value_names.insert(candidate.clone());
        candidate
    }

    fn element_type() -> i32 {
        if T::DTYPE == "float64" {
            DataType::Double as i32
        } else {
            DataType::Float as i32
        }
    }

    /// Appends `output = op(inputs…)`; returns `output`.
    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(format!("{output}/{op}")),
            op_type: Some(op.to_string()),
            attribute,
            ..Default::default()
        });
        output.to_string()
    }

    /// An intermediate value of a decomposed layer, named after the layer's output.
    fn step(&mut self, output: &str, what: &str) -> String {
        self.fresh(&format!("{output}/{what}"))
    }

    /// An initializer of elements `T` (once: a shared layer's second use reuses it).
    fn initializer(&mut self, name: &str, dims: &[usize], values: impl Iterator<Item = T>) {
        if !self.initializer_names.insert(name.to_string()) {
            return;
        }
        let mut raw = Vec::new();
        for v in values {
            if T::DTYPE == "float64" {
                raw.extend_from_slice(&v.as_f64().to_le_bytes());
            } else {
                raw.extend_from_slice(&(v.as_f64() as f32).to_le_bytes());
            }
        }
        self.initializers.push(TensorProto {
            name: Some(name.to_string()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(Self::element_type()),
            raw_data: Some(raw),
            ..Default::default()
        });
    }

    /// A parameter or buffer, under its `state_dict` name.
    fn tensor(&mut self, name: &str, tensor: &crate::Tensor<T>) -> String {
        let array = tensor.to_array();
        self.initializer(name, array.shape(), array.iter().copied());
        name.to_string()
    }

    /// A scalar constant.
    fn scalar(&mut self, name: &str, value: T) -> String {
        let name = self.fresh(name);
        self.initializer(&name, &[], std::iter::once(value));
        name
    }

    /// `n` copies of `value`, `[n]`.
    fn filled(&mut self, name: &str, n: usize, value: f64) -> String {
        self.initializer(name, &[n], std::iter::repeat_n(T::of(value), n));
        name.to_string()
    }

    /// An `int64` constant, `[values.len()]` (shapes for `Reshape`).
    fn int64s(&mut self, name: &str, values: &[i64]) -> String {
        let name = self.fresh(name);
        self.initializer_names.insert(name.clone());
        self.initializers.push(TensorProto {
            name: Some(name.clone()),
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name
    }

    /// `[batch, shape…]` of the model's element type.
    fn value_info(&self, name: &str, shape: &[usize]) -> ValueInfoProto {
        let mut dim = vec![Dimension {
            value: Some(dimension::Value::DimParam(BATCH_DIM.to_string())),
            denotation: None,
        }];
        dim.extend(shape.iter().map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d as i64)),
            denotation: None,
        }));
        ValueInfoProto {
            name: Some(name.to_string()),
            r#type: Some(TypeProto {
                denotation: None,
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(Self::element_type()),
                    shape: Some(TensorShapeProto { dim }),
                })),
            }),
            ..Default::default()
        }
    }

    /// The graph's output is a node's output of its own (not the input, not a value
    /// Dropout passed through under another name): `Identity` if needed.
    fn graph_output(&mut self, value: &str, wanted: &str) -> String {
        let produced = self
            .nodes
            .iter()
            .any(|n| n.output.iter().any(|o| o == value));
        if produced {
            return value.to_string();
        }
        let out = self.fresh(wanted);
        self.node("Identity", &[value], &out, vec![])
    }

    /// `output = Linear(input)`, the input of rank `rank` (batch included).
    fn linear(&mut self, linear: &Linear<T>, prefix: &str, input: &str, rank: usize, out: &str) {
        let weight = self.tensor(&format!("{prefix}.weight"), &linear.weight);
        let bias = linear
            .bias
            .as_ref()
            .map(|b| self.tensor(&format!("{prefix}.bias"), b));
        if rank == 2 {
            let mut inputs = vec![input, weight.as_str()];
            inputs.extend(bias.as_deref());
            self.node("Gemm", &inputs, out, vec![int("transB", 1)]);
            return;
        }
        let transposed = self.step(out, "weight_t");
        self.node(
            "Transpose",
            &[&weight],
            &transposed,
            vec![ints("perm", &[1, 0])],
        );
        match bias {
            Some(bias) => {
                let product = self.step(out, "matmul");
                self.node("MatMul", &[input, &transposed], &product, vec![]);
                self.node("Add", &[&product, &bias], out, vec![]);
            }
            None => {
                self.node("MatMul", &[input, &transposed], out, vec![]);
            }
        }
    }

    /// An element-wise layer; returns the name of its result.
    fn activation(&mut self, act: Activation<T>, x: &str, out: &str) -> String {
        match act {
            Activation::Relu => self.node("Relu", &[x], out, vec![]),
            Activation::LeakyRelu(slope) => {
                self.node("LeakyRelu", &[x], out, vec![float("alpha", slope.as_f64())])
            }
            Activation::Sigmoid => self.node("Sigmoid", &[x], out, vec![]),
            Activation::Tanh => self.node("Tanh", &[x], out, vec![]),
            Activation::Elu(alpha) => {
                self.node("Elu", &[x], out, vec![float("alpha", alpha.as_f64())])
            }
            Activation::Identity => self.node("Identity", &[x], out, vec![]),
            Activation::Softmax => self.node("Softmax", &[x], out, vec![int("axis", -1)]),
            Activation::LogSoftmax => self.node("LogSoftmax", &[x], out, vec![int("axis", -1)]),
            Activation::Silu => {
                let s = self.step(out, "sigmoid");
                self.node("Sigmoid", &[x], &s, vec![]);
                self.node("Mul", &[x, &s], out, vec![])
            }
            Activation::Softplus(beta, threshold) => {
                // PyTorch's: ln(1 + e^(βx))/β, or x where βx > threshold.
                let beta =
                    (beta != T::one()).then(|| self.scalar(&format!("{out}.onnx_beta"), beta));
                let scaled = match &beta {
                    None => x.to_string(),
                    Some(b) => {
                        let s = self.step(out, "beta_x");
                        self.node("Mul", &[x, b], &s, vec![])
                    }
                };
                let soft = self.step(out, "softplus");
                self.node("Softplus", &[&scaled], &soft, vec![]);
                let soft = match &beta {
                    None => soft,
                    Some(b) => {
                        let s = self.step(out, "softplus_over_beta");
                        self.node("Div", &[&soft, b], &s, vec![])
                    }
                };
                let t = self.scalar(&format!("{out}.onnx_threshold"), threshold);
                let linear = self.step(out, "above_threshold");
                self.node("Greater", &[&scaled, &t], &linear, vec![]);
                self.node("Where", &[&linear, x, &soft], out, vec![])
            }
            Activation::Gelu(tanh) => {
                // 0.5·x·(1 + Erf(x/√2)), or with tanh(√(2/π)·(x + 0.044715·x³)).
                let inner = if tanh {
                    let sq = self.step(out, "x2");
                    self.node("Mul", &[x, x], &sq, vec![]);
                    let cube = self.step(out, "x3");
                    self.node("Mul", &[&sq, x], &cube, vec![]);
                    let c = self.scalar(&format!("{out}.onnx_0.044715"), T::of(0.044715));
                    let cubic = self.step(out, "cubic");
                    self.node("Mul", &[&cube, &c], &cubic, vec![]);
                    let sum = self.step(out, "x_plus_cubic");
                    self.node("Add", &[x, &cubic], &sum, vec![]);
                    let k = (2.0 / std::f64::consts::PI).sqrt();
                    let k = self.scalar(&format!("{out}.onnx_sqrt_2_over_pi"), T::of(k));
                    let arg = self.step(out, "tanh_arg");
                    self.node("Mul", &[&sum, &k], &arg, vec![]);
                    let t = self.step(out, "tanh");
                    self.node("Tanh", &[&arg], &t, vec![])
                } else {
                    let k = self.scalar(
                        &format!("{out}.onnx_1_over_sqrt_2"),
                        T::of(std::f64::consts::FRAC_1_SQRT_2),
                    );
                    let arg = self.step(out, "erf_arg");
                    self.node("Mul", &[x, &k], &arg, vec![]);
                    let e = self.step(out, "erf");
                    self.node("Erf", &[&arg], &e, vec![])
                };
                let one = self.scalar(&format!("{out}.onnx_one"), T::one());
                let plus = self.step(out, "one_plus");
                self.node("Add", &[&inner, &one], &plus, vec![]);
                let half = self.scalar(&format!("{out}.onnx_half"), T::of(0.5));
                let half_x = self.step(out, "half_x");
                self.node("Mul", &[x, &half], &half_x, vec![]);
                self.node("Mul", &[&half_x, &plus], out, vec![])
            }
        }
    }

    /// `out = layer(x)` for an input of shape `shape` per sample; returns the name of the
    /// result (`x` itself for Dropout, which exports as nothing).
    fn layer(
        &mut self,
        layer: &Layer<T>,
        prefix: &str,
        x: &str,
        shape: &[usize],
        out: &str,
    ) -> String {
        let act = |b: &mut Self, a| b.activation(a, x, out);
        match layer {
            Layer::Linear(linear) => {
                self.linear(linear, prefix, x, shape.len() + 1, out);
                out.to_string()
            }
            Layer::ReLU => act(self, Activation::Relu),
            Layer::LeakyReLU(slope) => act(self, Activation::LeakyRelu(*slope)),
            Layer::Sigmoid => act(self, Activation::Sigmoid),
            Layer::Tanh => act(self, Activation::Tanh),
            Layer::Softplus(s) => act(self, Activation::Softplus(s.beta(), s.threshold())),
            Layer::GELU(tanh) => act(self, Activation::Gelu(*tanh)),
            Layer::SiLU => act(self, Activation::Silu),
            Layer::ELU(alpha) => act(self, Activation::Elu(*alpha)),
            Layer::Identity => act(self, Activation::Identity),
            Layer::Softmax(_) => act(self, Activation::Softmax),
            Layer::LogSoftmax(_) => act(self, Activation::LogSoftmax),
            Layer::BatchNorm1d(bn) => self.batch_norm(bn, prefix, x, out),
            Layer::LayerNorm(ln) => self.layer_norm(ln, prefix, x, out),
            Layer::Dropout(_) => x.to_string(),
            Layer::Conv2d(conv) => {
                let (k, o) = (conv.kernel_size, &conv.options);
                let geometry = Geometry {
                    kernel: &[k.0, k.1],
                    stride: &[o.stride.0, o.stride.1],
                    padding: &[o.padding.0, o.padding.1],
                    dilation: &[o.dilation.0, o.dilation.1],
                    groups: o.groups,
                };
                self.conv(x, out, prefix, (&conv.weight, conv.bias.as_ref()), geometry)
            }
            Layer::Conv1d(conv) => {
                let o = &conv.options;
                let geometry = Geometry {
                    kernel: &[conv.kernel_size],
                    stride: &[o.stride],
                    padding: &[o.padding],
                    dilation: &[o.dilation],
                    groups: o.groups,
                };
                self.conv(x, out, prefix, (&conv.weight, conv.bias.as_ref()), geometry)
            }
            Layer::Pool2d(pool) => {
                let (k, s, p) = (pool.kernel_size, pool.stride, pool.padding);
                let mut attributes = vec![
                    ints("kernel_shape", &[k.0, k.1]),
                    ints("strides", &[s.0, s.1]),
                    ints("pads", &[p.0, p.1, p.0, p.1]),
                ];
                if pool.max {
                    self.node("MaxPool", &[x], out, attributes)
                } else {
                    // PyTorch's default: the padding counts in each window's divisor.
                    attributes.push(int("count_include_pad", 1));
                    self.node("AveragePool", &[x], out, attributes)
                }
            }
            Layer::Flatten => self.node("Flatten", &[x], out, vec![int("axis", 1)]),
        }
    }

    /// `out = Conv(x)` with the layer's weight and optional bias (under their
    /// `state_dict` names) and its geometry, one entry per spatial axis.
    fn conv(
        &mut self,
        x: &str,
        out: &str,
        prefix: &str,
        (weight, bias): (&crate::Tensor<T>, Option<&crate::Tensor<T>>),
        g: Geometry<'_>,
    ) -> String {
        let w = self.tensor(&format!("{prefix}.weight"), weight);
        let b = bias.map(|b| self.tensor(&format!("{prefix}.bias"), b));
        let mut inputs = vec![x, w.as_str()];
        inputs.extend(b.as_deref());
        // ONNX pads every axis's start, then every axis's end.
        let pads: Vec<usize> = g.padding.iter().chain(g.padding).copied().collect();
        let attributes = vec![
            ints("kernel_shape", g.kernel),
            ints("strides", g.stride),
            ints("pads", &pads),
            ints("dilations", g.dilation),
            int("group", g.groups as i64),
        ];
        self.node("Conv", &inputs, out, attributes)
    }

    /// `weight` and `bias`, or ones and zeros for a layer without them.
    fn affine(
        &mut self,
        weight: Option<&crate::Tensor<T>>,
        bias: Option<&crate::Tensor<T>>,
        prefix: &str,
        features: usize,
    ) -> (String, String) {
        let w = match weight {
            Some(w) => self.tensor(&format!("{prefix}.weight"), w),
            None => self.filled(&format!("{prefix}.onnx_scale_ones"), features, 1.0),
        };
        let b = match bias {
            Some(b) => self.tensor(&format!("{prefix}.bias"), b),
            None => self.filled(&format!("{prefix}.onnx_bias_zeros"), features, 0.0),
        };
        (w, b)
    }

    fn batch_norm(&mut self, bn: &BatchNorm1d<T>, prefix: &str, x: &str, out: &str) -> String {
        let c = bn.num_features();
        let (w, b) = self.affine(bn.weight.as_ref(), bn.bias.as_ref(), prefix, c);
        if let (Some(mean), Some(var)) = (bn.running_mean(), bn.running_var()) {
            let mean_name = format!("{prefix}.running_mean");
            self.initializer(&mean_name, &[c], mean.iter().copied());
            let var_name = format!("{prefix}.running_var");
            self.initializer(&var_name, &[c], var.iter().copied());
            let attributes = vec![float("epsilon", bn.eps())];
            return self.node(
                "BatchNormalization",
                &[x, &w, &b, &mean_name, &var_name],
                out,
                attributes,
            );
        }
        // No running statistics: the batch's, in evaluation too (biased variance).
        let axes: &[usize] = if bn.is_2d() { &[0, 2, 3] } else { &[0] };
        let mean = self.step(out, "batch_mean");
        let reduce = |b: &mut Self, input: &str, output: &str| {
            b.node(
                "ReduceMean",
                &[input],
                output,
                vec![ints("axes", axes), int("keepdims", 1)],
            )
        };
        reduce(self, x, &mean);
        let centred = self.step(out, "centred");
        self.node("Sub", &[x, &mean], &centred, vec![]);
        let squares = self.step(out, "squares");
        self.node("Mul", &[&centred, &centred], &squares, vec![]);
        let var = self.step(out, "batch_var");
        reduce(self, &squares, &var);
        let eps = self.scalar(&format!("{out}.onnx_eps"), T::of(bn.eps()));
        let var_eps = self.step(out, "var_plus_eps");
        self.node("Add", &[&var, &eps], &var_eps, vec![]);
        let std = self.step(out, "std");
        self.node("Sqrt", &[&var_eps], &std, vec![]);
        let normalised = self.step(out, "normalised");
        self.node("Div", &[&centred, &std], &normalised, vec![]);
        let (w, b) = if bn.is_2d() {
            // [C] -> [C, 1, 1], to broadcast over [batch, C, H, W].
            let shape = self.int64s(&format!("{out}.onnx_channel_shape"), &[c as i64, 1, 1]);
            let w3 = self.step(out, "weight_c11");
            self.node("Reshape", &[&w, &shape], &w3, vec![]);
            let b3 = self.step(out, "bias_c11");
            self.node("Reshape", &[&b, &shape], &b3, vec![]);
            (w3, b3)
        } else {
            (w, b)
        };
        let scaled = self.step(out, "scaled");
        self.node("Mul", &[&normalised, &w], &scaled, vec![]);
        self.node("Add", &[&scaled, &b], out, vec![])
    }

    fn layer_norm(&mut self, ln: &LayerNorm<T>, prefix: &str, x: &str, out: &str) -> String {
        let n = ln.normalized_shape();
        let w = match ln.weight.as_ref() {
            Some(w) => self.tensor(&format!("{prefix}.weight"), w),
            None => self.filled(&format!("{prefix}.onnx_scale_ones"), n, 1.0),
        };
        let mut inputs = vec![x.to_string(), w];
        if let Some(b) = ln.bias.as_ref() {
            inputs.push(self.tensor(&format!("{prefix}.bias"), b));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let attributes = vec![int("axis", -1), float("epsilon", ln.eps())];
        self.node("LayerNormalization", &inputs, out, attributes)
    }

    fn finish(self, name: &str, input: ValueInfoProto, output: ValueInfoProto) -> ModelProto {
        let version = env!("CARGO_PKG_VERSION");
        let entry = |key: &str, value: &str| StringStringEntryProto {
            key: Some(key.to_string()),
            value: Some(value.to_string()),
        };
        ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            }],
            producer_name: Some("nnscratch".into()),
            producer_version: Some(version.into()),
            doc_string: Some(format!(
                "{name}, exported by nnscratch {version} in evaluation mode (BatchNorm with its \
                 running statistics, Dropout left out)"
            )),
            metadata_props: vec![entry("model", name), entry("nnscratch_version", version)],
            graph: Some(GraphProto {
                name: Some(name.to_string()),
                node: self.nodes,
                initializer: self.initializers,
                input: vec![input],
                output: vec![output],
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

/// ONNX float attributes are `float` whatever the model's element type.
fn float(name: &str, value: f64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value as f32),
        ..Default::default()
    }
}
