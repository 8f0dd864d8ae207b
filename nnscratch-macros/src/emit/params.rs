//! Parameters: fields, initialisation, the optimizer visitor, and the dynamic twin.
//!
//! All of it walks `Model::params`, the tensors each layer declared (`layers/`), so a
//! new layer with parameters needs nothing here.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::graph::{Model, Op};
use crate::layers::{ParamSet, Parameter, Site, StateField, StateKind};
use syn::Ident;

/// Every parameter tensor with the layer that owns it, in visiting order.
fn tensors(model: &Model) -> impl Iterator<Item = (&ParamSet, &Parameter)> {
    model
        .params
        .iter()
        .flat_map(|p| p.tensors.iter().map(move |t| (p, t)))
}

/// `[16, 4]` as a learner reads a shape.
fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// One array field per rank of parameter tensor (`params_2: [Array2<T>; N]`), preceded by
/// `vis` and documented by `doc(rank, entries)`, each tensor's entry written by `entry`.
/// Serves the model struct and its gradient struct, which have the same arrays.
fn rank_arrays(
    model: &Model,
    vis: TokenStream,
    doc: impl Fn(usize, &str) -> String,
    entry: impl Fn(&ParamSet, &Parameter) -> String,
) -> Vec<TokenStream> {
    by_rank(model)
        .into_iter()
        .map(|(rank, tensors)| {
            let (field, ty, count) = (
                rank_field(rank),
                format_ident!("Array{}", rank),
                tensors.len(),
            );
            let entries: Vec<String> = tensors.iter().map(|(p, t)| entry(p, t)).collect();
            let doc = doc(rank, &entries.join(", "));
            quote! {
                #[doc = #doc]
                #vis #field: [::nnscratch::ndarray::#ty<T>; #count],
            }
        })
        .collect()
}

/// The parameters: one private array per rank (a user reads and writes them through the
/// checked `Parameters` methods, by PyTorch name), so that dropping a deep model is a
/// loop rather than code per tensor.
pub fn fields(model: &Model) -> Vec<TokenStream> {
    rank_arrays(
        model,
        quote!(),
        |rank, entries| {
            format!(
                "The rank-{rank} parameters, in order (weights `(out, in, ...)` as in PyTorch): {entries}."
            )
        },
        |p, t| format!("`{}` {}", p.name(t), shape_text(&t.shape)),
    )
}

/// The parameter tensors of each rank, in visiting order: the model and its gradient
/// struct hold one array per rank (`params_2: [Array2<T>; N]`), so that creating,
/// zeroing and dropping them are loops (code per tensor cost LLVM seconds on deep models).
fn by_rank(model: &Model) -> std::collections::BTreeMap<usize, Vec<(&ParamSet, &Parameter)>> {
    let mut ranks = std::collections::BTreeMap::<usize, Vec<_>>::new();
    for (p, t) in tensors(model) {
        ranks.entry(t.shape.len()).or_default().push((p, t));
    }
    ranks
}

/// The field (of the model and of its gradient struct) holding the tensors of rank
/// `rank`: `params_2`.
fn rank_field(rank: usize) -> Ident {
    format_ident!("params_{}", rank)
}

/// Where each tensor (and its gradient) is in the per-rank arrays, in visiting order:
/// `params_2[1]`.
fn array_places(model: &Model) -> Vec<TokenStream> {
    let mut next = std::collections::BTreeMap::<usize, usize>::new();
    tensors(model)
        .map(|(_, t)| {
            let rank = t.shape.len();
            let index = next.entry(rank).or_default();
            let (field, i) = (rank_field(rank), *index);
            *index += 1;
            quote!(#field[#i])
        })
        .collect()
}

/// The gradient struct's fields: one array per rank of parameter tensor.
pub fn grad_fields(model: &Model) -> Vec<TokenStream> {
    rank_arrays(
        model,
        quote!(pub),
        |rank, entries| format!("Gradients of the rank-{rank} parameters, in order: {entries}."),
        |p, t| format!("`d loss / d {}` {}", p.name(t), shape_text(&t.shape)),
    )
}

/// Zero gradients of the right shapes, from a table per rank.
pub fn grad_init(model: &Model) -> Vec<TokenStream> {
    by_rank(model)
        .into_iter()
        .map(|(rank, tensors)| {
            let (field, count) = (rank_field(rank), tensors.len());
            let shapes = tensors.iter().map(|(_, t)| {
                let dims = &t.shape;
                quote!([#(#dims),*])
            });
            quote! {
                #field: {
                    const SHAPES: [[usize; #rank]; #count] = [#(#shapes),*];
                    ::std::array::from_fn(|i| ::nnscratch::compiled::zeros(SHAPES[i]))
                },
            }
        })
        .collect()
}

/// `run`'s binding of each gradient array's elements to their tensors' names.
pub fn grad_bindings(model: &Model) -> TokenStream {
    let binds = by_rank(model).into_iter().map(|(rank, tensors)| {
        let field = rank_field(rank);
        let locals = tensors.iter().map(|(_, t)| &t.grad_local);
        quote!(let [#(#locals),*] = &mut grad.#field;)
    });
    quote! {
        // Uses `grad` even in a model without parameters (no bindings below).
        #[allow(unused_variables)]
        let grad = &mut *grad;
        #(#binds)*
    }
}

/// PyTorch's initialisation, tensor by tensor, layer by layer (the order matters: it is
/// the order in which PyTorch draws from its generator): empty per-rank arrays, then one
/// assignment per tensor, in order. (`let` per tensor, then the arrays, made LLVM spend
/// 13 s on a 1000-layer model's `new`: each local needs its own cleanup on unwinding.)
pub fn init(model: &Model) -> Vec<TokenStream> {
    // Typed: indexing an array of known type is built in (an inferred one made the type
    // checker resolve `IndexMut` for every assignment: seconds on deep models).
    let empty = by_rank(model).into_iter().map(|(rank, tensors)| {
        let (field, ty, count) = (rank_field(rank), format_ident!("Array{}", rank), tensors.len());
        quote! {
            let mut #field: [::nnscratch::ndarray::#ty<T>; #count] =
                ::std::array::from_fn(|_| <::nnscratch::ndarray::#ty<T> as ::core::default::Default>::default());
        }
    });
    let assign = tensors(model)
        .zip(array_places(model))
        .map(|((_, t), place)| {
            let init = &t.init;
            // One shared function rather than a closure per tensor: a closure is a type of
            // its own, so 1000 tensors made 1000 instances for LLVM to compile.
            quote!(#place = ::nnscratch::compiled::initialised(#init);)
        });
    empty.chain(assign).collect()
}

/// The struct's parameter arrays, which [`init`] filled.
pub fn init_fields(model: &Model) -> Vec<TokenStream> {
    by_rank(model)
        .into_keys()
        .map(|rank| {
            let field = rank_field(rank);
            quote!(#field,)
        })
        .collect()
}

/// Binds each parameter array's elements to their tensors' names (`weight_0`) as shared
/// borrows; `array(params_2)` is the borrowed array (`&self.params_2`, or `&*params_2`
/// of the destructured struct).
fn param_bindings(model: &Model, array: impl Fn(&Ident) -> TokenStream) -> TokenStream {
    let binds = by_rank(model).into_iter().map(|(rank, tensors)| {
        let array = array(&rank_field(rank));
        let locals = tensors.iter().map(|(_, t)| &t.field);
        quote!(let [#(#locals),*] = #array;)
    });
    quote!(#(#binds)*)
}

/// `pub const PARAMETERS: &[(&str, &[usize])]`: names and shapes, in visiting order.
pub fn shapes_const(model: &Model) -> TokenStream {
    let entries = tensors(model).map(|(p, t)| {
        let (name, dims) = (p.name(t), &t.shape);
        quote!((#name, &[#(#dims),*]),)
    });
    quote! {
        /// The parameters' `state_dict` names and shapes, in the order optimizers visit them.
        pub const PARAMETERS: &'static [(&'static str, &'static [usize])] = &[#(#entries)*];
    }
}

/// Every state field (running statistics, dropout generators), in node order.
fn state_fields(model: &Model) -> impl Iterator<Item = &StateField> {
    model
        .order
        .iter()
        .flat_map(move |&node| model.graph[node].state.iter())
}

/// The state fields of the model struct, and `training`.
pub fn state_declarations(model: &Model) -> Vec<TokenStream> {
    let mut out: Vec<TokenStream> = state_fields(model)
        .map(|s| {
            let (field, ty) = (&s.field, &s.ty);
            let doc = match s.kind {
                StateKind::Buffer | StateKind::Count => {
                    format!(
                        "`{}`, a buffer: saved with the parameters, never trained.",
                        s.name
                    )
                }
                StateKind::DropoutGenerator => {
                    format!("The mask generator of dropout `{}`.", s.name)
                }
            };
            quote! {
                #[doc = #doc]
                #field: #ty,
            }
        })
        .collect();
    out.push(quote! {
        /// Training mode (the default) or evaluation mode: see `train` and `eval`.
        training: bool,
    });
    out
}

/// The state fields' initial values, and `training: true`.
pub fn state_init(model: &Model) -> Vec<TokenStream> {
    let mut out: Vec<TokenStream> = state_fields(model)
        .map(|s| {
            let (field, init) = (&s.field, &s.init);
            quote!(#field: #init,)
        })
        .collect();
    out.push(quote!(training: true,));
    out
}

/// The dropout generators' fields, in order.
fn generators(model: &Model) -> Vec<&Ident> {
    state_fields(model)
        .filter(|s| s.kind == StateKind::DropoutGenerator)
        .map(|s| &s.field)
        .collect()
}

/// The methods about modes and dropout masks: `train`, `eval`, `is_training`,
/// `manual_seed`, `fix_dropout_masks`.
pub fn mode_methods(model: &Model) -> TokenStream {
    let generators = generators(model);
    let indices = (0..generators.len() as u64).collect::<Vec<_>>();
    quote! {
        /// Training mode, the mode a model starts in (PyTorch's `model.train()`):
        /// Dropout drops, BatchNorm normalises with the batch's statistics and updates
        /// its running ones.
        pub fn train(&mut self) {
            self.training = true;
        }

        /// Evaluation mode (PyTorch's `model.eval()`): Dropout is the identity and
        /// BatchNorm uses its running statistics.
        pub fn eval(&mut self) {
            self.training = false;
        }

        /// Whether the model is in training mode.
        pub fn is_training(&self) -> bool {
            self.training
        }

        /// Reseeds every dropout layer's mask generator (the `k`-th dropout layer gets
        /// stream `k` of `seed`), as `torch.manual_seed` does for PyTorch's dropout.
        pub fn manual_seed(&mut self, seed: u64) {
            #(self.#generators = ::nnscratch::kernels::DropoutGenerator::for_layer(seed, #indices);)*
            let _ = seed;
        }

        /// Fixed-mask mode for every dropout layer: each forward pass reuses the current
        /// mask, so the loss is a fixed function of the parameters (for gradient checks).
        pub fn fix_dropout_masks(&mut self, fixed: bool) {
            #(self.#generators.fix_mask(fixed);)*
            let _ = fixed;
        }
    }
}

/// `new`'s last step: seeding the dropout generators from `rng`, after every parameter
/// was drawn (so a network's weights do not depend on whether it has dropout layers).
pub fn seed_dropout(model: &Model) -> TokenStream {
    if generators(model).is_empty() {
        quote!()
    } else {
        quote!(model.manual_seed(::nnscratch::compiled::draw_seed(rng));)
    }
}

/// The `Parameters::visit_buffers` body.
fn buffer_visits(model: &Model) -> Vec<TokenStream> {
    state_fields(model)
        .filter_map(|s| {
            let (name, field) = (&s.name, &s.field);
            match s.kind {
                StateKind::Buffer => Some(quote! {
                    ::nnscratch::optim::visit_buffer_array(#name, &mut self.#field, visitor);
                }),
                StateKind::Count => Some(quote! {
                    visitor(::nnscratch::optim::Buffer {
                        name: #name,
                        value: ::nnscratch::optim::BufferValue::Count(&mut self.#field),
                    });
                }),
                StateKind::DropoutGenerator => None,
            }
        })
        .collect()
}

/// `let Self { weight_0, bias_0, ..., grad, workspace: ws, training } = self;`: disjoint
/// borrows of every field, so the kernels can read parameters and update state while
/// writing the workspace.
pub fn destructure(model: &Model) -> TokenStream {
    let ranks = by_rank(model).into_keys().map(rank_field);
    let state = state_fields(model).map(|s| &s.field);
    let params = param_bindings(model, |field| quote!(&*#field));
    quote! {
        let Self { #(#ranks,)* #(#state,)* grad, workspace: ws, training } = self;
        #params
        #[allow(unused_variables)] // read only by Dropout and BatchNorm
        let training = *training;
    }
}

/// The `Parameters` impl: what lets `Sgd` and `Adam` train the model.
pub fn visitor(model: &Model) -> TokenStream {
    let visits = tensors(model).zip(array_places(model)).map(|((p, t), place)| {
        let name = p.name(t);
        quote! {
            ::nnscratch::optim::visit_array(#name, &mut self.#place, filled.then_some(&self.grad.#place), visitor);
        }
    });
    let zeros = by_rank(model).into_keys().map(|rank| {
        let field = rank_field(rank);
        quote! {
            for gradient in &mut self.grad.#field {
                ::nnscratch::compiled::fill_zero(gradient);
            }
        }
    });
    let buffers = buffer_visits(model);
    let buffers = if buffers.is_empty() {
        quote!()
    } else {
        quote! {
            fn visit_buffers(&mut self, visitor: &mut dyn FnMut(::nnscratch::optim::Buffer<'_, T>)) {
                #(#buffers)*
            }
        }
    };
    quote! {
        fn visit_parameters(&mut self, visitor: &mut dyn FnMut(::nnscratch::optim::Param<'_, T>)) {
            let filled = self.grad.filled;
            #(#visits)*
        }

        #buffers

        fn zero_grad(&mut self) {
            #(#zeros)*
            self.grad.filled = false;
        }

        fn parameter_layout(&self) -> Option<::nnscratch::optim::ParameterLayout> {
            Some(Self::PARAMETERS)
        }
    }
}

/// `to_dynamic()`: the same graph on the dynamic engine, built value by value.
pub fn to_dynamic(model: &Model, name: &str) -> TokenStream {
    let loss = model.loss.runtime_loss();
    let steps = model.order.iter().map(|&node| {
        let value = &model.graph[node];
        let (ident, label) = (format_ident!("v_{}", value.ident), value.name.as_str());
        match &value.op {
            Op::Input if value.shape.len() > 1 => {
                let shape = &value.shape;
                quote!(let #ident = net.input_shaped(#label, &[#(#shape),*]);)
            }
            Op::Input => {
                let width = value.width;
                quote!(let #ident = net.input(#label, #width);)
            }
            Op::Layer(layer) => {
                let add = layer.dynamic(&Site::new(model, node));
                quote!(let #ident = #add?;)
            }
        }
    });
    let output = format_ident!("v_{}", model.graph[model.output].ident);
    let params = param_bindings(model, |field| quote!(&self.#field));
    quote! {
        /// The same network with the same weights on the dynamic engine, whose gradients
        /// come from elementary ops rather than from the compiler's derivation.
        pub fn to_dynamic(&self) -> ::nnscratch::nn::GraphModule<T> {
            let build = || -> ::nnscratch::Result<::nnscratch::nn::GraphModule<T>> {
                #params
                let mut net = ::nnscratch::nn::GraphModule::new(#name, #loss);
                #(#steps)*
                ::nnscratch::nn::Module::set_training(&mut net, self.training);
                net.finish(#output)
            };
            build().unwrap_or_else(|error| unreachable!("model! checked these widths at compile time: {error}"))
        }
    }
}
