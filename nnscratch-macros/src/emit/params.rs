//! Parameters: fields, initialisation, the optimizer visitor, and the dynamic twin.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::graph::{LinearParams, Model, Op};

/// `weight_0: Array2<T>, bias_0: Array1<T>, ...`, one pair per Linear, each documented
/// by `doc(params, "weight" | "bias")` and preceded by `vis`. Serves the model struct
/// (private fields: a user reads and writes parameters through the checked `Parameters`
/// methods) and its gradient struct (public inside the hidden module), which have the
/// same fields.
fn array_fields(
    model: &Model,
    vis: TokenStream,
    doc: impl Fn(&LinearParams, &str) -> String,
) -> Vec<TokenStream> {
    model
        .linears
        .iter()
        .map(|p| {
            let (w, b) = (&p.weight, &p.bias);
            let (w_doc, b_doc) = (doc(p, "weight"), doc(p, "bias"));
            quote! {
                #[doc = #w_doc]
                #vis #w: ::nnscratch::ndarray::Array2<T>,
                #[doc = #b_doc]
                #vis #b: ::nnscratch::ndarray::Array1<T>,
            }
        })
        .collect()
}

/// The parameters, with their PyTorch names and shapes.
pub fn fields(model: &Model) -> Vec<TokenStream> {
    array_fields(model, quote!(), |p, kind| match kind {
        "weight" => format!(
            "`{}.weight`, `[{}, {}]` (out, in), as in PyTorch.",
            p.prefix, p.out_features, p.in_features
        ),
        _ => format!("`{}.bias`, `[{}]`.", p.prefix, p.out_features),
    })
}

/// The gradient struct's fields: same names and shapes as the parameters.
pub fn grad_fields(model: &Model) -> Vec<TokenStream> {
    array_fields(model, quote!(pub), |p, kind| {
        format!("`d loss / d {}.{kind}`.", p.prefix)
    })
}

/// Zero gradients of the right shapes.
pub fn grad_init(model: &Model) -> Vec<TokenStream> {
    model
        .linears
        .iter()
        .map(|p| {
            let (w, b, i, o) = (&p.weight, &p.bias, p.in_features, p.out_features);
            quote! {
                #w: ::nnscratch::ndarray::Array2::zeros((#o, #i)),
                #b: ::nnscratch::ndarray::Array1::zeros(#o),
            }
        })
        .collect()
}

/// PyTorch's `nn.Linear` initialisation, weight then bias, layer by layer.
pub fn init(model: &Model) -> Vec<TokenStream> {
    model
        .linears
        .iter()
        .map(|p| {
            let (w, b, i, o) = (&p.weight, &p.bias, p.in_features, p.out_features);
            quote! {
                #w: ::nnscratch::init::linear_weight(#i, #o, rng).unwrap_or_else(|e| panic!("{e}")),
                #b: ::nnscratch::init::linear_bias(#i, #o, rng).unwrap_or_else(|e| panic!("{e}")),
            }
        })
        .collect()
}

/// `pub const PARAMETERS: &[(&str, &[usize])]`: names and shapes, in visiting order.
pub fn shapes_const(model: &Model) -> TokenStream {
    let entries = model.linears.iter().map(|p| {
        let (w, b) = (format!("{}.weight", p.prefix), format!("{}.bias", p.prefix));
        let (i, o) = (p.in_features, p.out_features);
        quote!((#w, &[#o, #i]), (#b, &[#o]),)
    });
    quote! {
        /// The parameters' `state_dict` names and shapes, in the order optimizers visit them.
        pub const PARAMETERS: &'static [(&'static str, &'static [usize])] = &[#(#entries)*];
    }
}

/// `let Self { weight_0, bias_0, ..., grad, workspace: ws } = self;`: disjoint borrows of
/// every field, so the kernels can read parameters while writing the workspace.
pub fn destructure(model: &Model) -> TokenStream {
    let names = model.linears.iter().flat_map(|p| [&p.weight, &p.bias]);
    quote!(let Self { #(#names,)* grad, workspace: ws } = self;)
}

/// The `Parameters` impl: what lets `Sgd` and `Adam` train the model.
pub fn visitor(model: &Model) -> TokenStream {
    let visits = model.linears.iter().flat_map(|p| {
        [
            (format!("{}.weight", p.prefix), &p.weight),
            (format!("{}.bias", p.prefix), &p.bias),
        ]
    });
    let visits = visits.map(|(name, field)| {
        quote! {
            ::nnscratch::optim::visit_array(#name, &mut self.#field, filled.then_some(&self.grad.#field), visitor);
        }
    });
    let zeros = model
        .linears
        .iter()
        .flat_map(|p| [&p.weight, &p.bias])
        .map(|field| quote!(self.grad.#field.fill(T::zero());));
    quote! {
        fn visit_parameters(&mut self, visitor: &mut dyn FnMut(::nnscratch::optim::Param<'_, T>)) {
            let filled = self.grad.filled;
            #(#visits)*
        }

        fn zero_grad(&mut self) {
            #(#zeros)*
            self.grad.filled = false;
        }
    }
}

/// `to_dynamic()`: the same graph on the dynamic engine, built value by value.
pub fn to_dynamic(model: &Model, name: &str) -> TokenStream {
    let loss = match model.loss {
        crate::graph::LossKind::Mse => quote!(::nnscratch::compiled::LossKind::MSELoss),
        crate::graph::LossKind::CrossEntropy => {
            quote!(::nnscratch::compiled::LossKind::CrossEntropyLoss)
        }
    };
    let steps = model.order.iter().map(|&node| {
        let value = &model.graph[node];
        let (ident, label) = (format_ident!("v_{}", value.ident), value.name.as_str());
        let operand = |i: usize| format_ident!("v_{}", model.graph[model.operands(node)[i]].ident);
        match &value.op {
            Op::Input => {
                let width = value.width;
                quote!(let #ident = net.input(#label, #width);)
            }
            Op::Linear { param } => {
                let p = &model.linears[*param];
                let (w, b, prefix, x) = (&p.weight, &p.bias, &p.prefix, operand(0));
                quote!(let #ident = net.linear(#label, #x, #prefix, self.#w.clone(), self.#b.clone())?;)
            }
            Op::ReLU => {
                let x = operand(0);
                quote!(let #ident = net.relu(#label, #x)?;)
            }
            Op::LeakyReLU(slope) => {
                let x = operand(0);
                quote!(let #ident = net.leaky_relu(#label, #x, T::of(#slope))?;)
            }
            Op::Sigmoid => {
                let x = operand(0);
                quote!(let #ident = net.sigmoid(#label, #x)?;)
            }
            Op::Tanh => {
                let x = operand(0);
                quote!(let #ident = net.tanh(#label, #x)?;)
            }
            Op::Add => {
                let (a, b) = (operand(0), operand(1));
                quote!(let #ident = net.add(#label, #a, #b)?;)
            }
            Op::Mul => {
                let (a, b) = (operand(0), operand(1));
                quote!(let #ident = net.mul(#label, #a, #b)?;)
            }
        }
    });
    let output = format_ident!("v_{}", model.graph[model.output].ident);
    quote! {
        /// The same network with the same weights on the dynamic engine, whose gradients
        /// come from elementary ops rather than from the compiler's derivation.
        pub fn to_dynamic(&self) -> ::nnscratch::nn::GraphModule<T> {
            let build = || -> ::nnscratch::Result<::nnscratch::nn::GraphModule<T>> {
                let mut net = ::nnscratch::nn::GraphModule::new(#name, #loss);
                #(#steps)*
                net.finish(#output)
            };
            build().unwrap_or_else(|error| unreachable!("model! checked these widths at compile time: {error}"))
        }
    }
}
