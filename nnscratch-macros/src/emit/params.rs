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

/// The parameters: one private slice holding every tensor, rank by rank (a user reads
/// and writes them through the checked `Parameters` methods, by PyTorch name), so that
/// an optimizer can update them all in one pass and dropping a deep model frees one
/// allocation.
pub fn fields(model: &Model) -> TokenStream {
    let entries: Vec<String> = tensors(model)
        .map(|(p, t)| format!("`{}` {}", p.name(t), shape_text(&t.shape)))
        .collect();
    let doc = format!(
        "Every parameter, row-major, one tensor after another: the rank-1 tensors first, \
         then rank 2 and up (weights `(out, in, ...)` as in PyTorch). In visiting order: {}.",
        entries.join(", ")
    );
    quote! {
        #[doc = #doc]
        params: ::std::vec::Vec<T>,
    }
}

/// The parameter tensors of each rank, in visiting order: the parameters (and the
/// gradients) are stored rank by rank, so that `run` binds each rank's views with one
/// statement (code per tensor cost LLVM seconds on deep models).
fn by_rank(model: &Model) -> std::collections::BTreeMap<usize, Vec<(&ParamSet, &Parameter)>> {
    let mut ranks = std::collections::BTreeMap::<usize, Vec<_>>::new();
    for (p, t) in tensors(model) {
        ranks.entry(t.shape.len()).or_default().push((p, t));
    }
    ranks
}

/// Where each tensor starts in the parameter slice (and the gradient slice), in visiting
/// order, and the length of the whole slice: the rank-1 tensors first, then rank 2, ...,
/// each rank's in visiting order.
fn offsets(model: &Model) -> (Vec<usize>, usize) {
    let mut start = std::collections::BTreeMap::<usize, usize>::new();
    let mut total = 0;
    for (rank, tensors) in by_rank(model) {
        start.insert(rank, total);
        total += tensors
            .iter()
            .map(|(_, t)| t.shape.iter().product::<usize>())
            .sum::<usize>();
    }
    let offsets = tensors(model)
        .map(|(_, t)| {
            let next = start
                .get_mut(&t.shape.len())
                .unwrap_or_else(|| unreachable!("every rank has a start"));
            let offset = *next;
            *next += t.shape.iter().product::<usize>();
            offset
        })
        .collect();
    (offsets, total)
}

/// The layout tables, in the model's hidden module: `SHAPES_2` (the rank-2 tensors'
/// shapes, in order), `RANK_LENGTHS` (values per rank), `OFFSETS` (each tensor's start,
/// in visiting order) and `TOTAL`.
pub fn layout_consts(model: &Model) -> TokenStream {
    let ranks = by_rank(model);
    let shapes = ranks.iter().map(|(&rank, tensors)| {
        let (name, count) = (shapes_table(rank), tensors.len());
        let shapes = tensors.iter().map(|(_, t)| {
            let dims = &t.shape;
            quote!([#(#dims),*])
        });
        quote! {
            pub const #name: [[usize; #rank]; #count] = [#(#shapes),*];
        }
    });
    let lengths = ranks.values().map(|tensors| {
        tensors
            .iter()
            .map(|(_, t)| t.shape.iter().product::<usize>())
            .sum::<usize>()
    });
    let count = ranks.len();
    let (offsets, total) = offsets(model);
    let tensors = offsets.len();
    quote! {
        #(#shapes)*
        /// Values per rank of parameter tensor, in the order the slices hold them.
        pub const RANK_LENGTHS: [usize; #count] = [#(#lengths),*];
        /// Where each parameter starts in the parameter and gradient slices, in
        /// visiting order.
        pub const OFFSETS: [usize; #tensors] = [#(#offsets),*];
        /// The number of trainable values.
        pub const TOTAL: usize = #total;
    }
}

/// `SHAPES_2`: the table of rank-2 shapes.
fn shapes_table(rank: usize) -> Ident {
    format_ident!("SHAPES_{}", rank)
}

/// The local holding rank `rank`'s part of a parameter or gradient slice: `part_2`.
fn part_local(rank: usize) -> Ident {
    format_ident!("part_{}", rank)
}

/// The gradient struct's field: every gradient in one slice, laid out as the
/// parameters.
pub fn grad_fields() -> TokenStream {
    quote! {
        /// Every parameter's gradient, laid out as the parameters (rank by rank, each
        /// tensor row-major).
        pub values: ::std::vec::Vec<T>,
    }
}

/// Zero gradients, as many as parameters (in the hidden module, beside `TOTAL`).
pub fn grad_init() -> TokenStream {
    quote!(values: ::nnscratch::compiled::flat_zeros(TOTAL),)
}

/// `run`'s binding of each gradient tensor's name to a view of its place in the
/// gradient slice (`&mut ArrayViewMut2`), rank by rank.
pub fn grad_bindings(model: &Model, internals: &Ident) -> TokenStream {
    let ranks = by_rank(model);
    if ranks.is_empty() {
        return quote! {
            // Uses `grad` even in a model without parameters.
            let _ = grad;
        };
    }
    let parts: Vec<Ident> = ranks.keys().map(|&rank| part_local(rank)).collect();
    let binds = ranks.iter().map(|(&rank, tensors)| {
        let (part, shapes) = (part_local(rank), shapes_table(rank));
        let views = format_ident!("views_{}", rank);
        let locals = tensors.iter().map(|(_, t)| &t.grad_local);
        quote! {
            let mut #views = ::nnscratch::compiled::views_mut(#part, &#internals::#shapes);
            let [#(#locals),*] = &mut #views;
        }
    });
    quote! {
        let [#(#parts),*] = ::nnscratch::compiled::split_ranks_mut(&mut grad.values, #internals::RANK_LENGTHS);
        #(#binds)*
    }
}

/// PyTorch's initialisation, tensor by tensor, layer by layer (the order matters: it is
/// the order in which PyTorch draws from its generator): a zero slice, then each
/// tensor's initial value copied into its place.
pub fn init(model: &Model, internals: &Ident) -> Vec<TokenStream> {
    let (offsets, _) = offsets(model);
    let assign = tensors(model).zip(offsets).map(|((_, t), offset)| {
        let init = &t.init;
        // One shared function per rank rather than a closure per tensor: a closure is a
        // type of its own, so 1000 tensors made 1000 instances for LLVM to compile.
        quote!(::nnscratch::compiled::place(&mut params, #offset, #init);)
    });
    std::iter::once(quote! {
        #[allow(unused_mut)]
        let mut params = ::nnscratch::compiled::flat_zeros::<T>(#internals::TOTAL);
    })
    .chain(assign)
    .collect()
}

/// The struct's parameter slice, which [`init`] filled.
pub fn init_fields() -> TokenStream {
    quote!(params,)
}

/// Binds each parameter tensor's name (`weight_0`) to a view of its place in `params`
/// (an expression of type `&[T]` or `&Vec<T>`), rank by rank; with `owned`, to a copy
/// (what `to_dynamic` hands the dynamic engine).
fn param_bindings(
    model: &Model,
    params: TokenStream,
    internals: &Ident,
    owned: bool,
) -> TokenStream {
    let ranks = by_rank(model);
    if ranks.is_empty() {
        return quote!(let _ = #params;);
    }
    let parts: Vec<Ident> = ranks.keys().map(|&rank| part_local(rank)).collect();
    let copy = if owned {
        quote!(.map(|view| view.to_owned()))
    } else {
        quote!()
    };
    let binds = ranks.iter().map(|(&rank, tensors)| {
        let (part, shapes) = (part_local(rank), shapes_table(rank));
        let locals = tensors.iter().map(|(_, t)| &t.field);
        quote!(let [#(#locals),*] = ::nnscratch::compiled::views(#part, &#internals::#shapes)#copy;)
    });
    quote! {
        let [#(#parts),*] = ::nnscratch::compiled::split_ranks(#params, #internals::RANK_LENGTHS);
        #(#binds)*
    }
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

/// `let Self { params, ..., grad, workspace: ws, training } = self;`: disjoint borrows
/// of every field, so the kernels can read parameters and update state while writing the
/// workspace; then each parameter tensor's name bound to a view of it.
pub fn destructure(model: &Model, internals: &Ident) -> TokenStream {
    let state = state_fields(model).map(|s| &s.field);
    let params = param_bindings(model, quote!(&params[..]), internals, false);
    quote! {
        let Self { params, #(#state,)* grad, workspace: ws, training } = self;
        #params
        #[allow(unused_variables)] // read only by Dropout and BatchNorm
        let training = *training;
    }
}

/// The `Parameters` impl: what lets `Sgd` and `Adam` train the model.
pub fn visitor(model: &Model, internals: &Ident) -> TokenStream {
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
            let grads = self.grad.filled.then_some(&self.grad.values[..]);
            ::nnscratch::compiled::visit_flat(Self::PARAMETERS, &#internals::OFFSETS, &mut self.params, grads, visitor);
        }

        #buffers

        fn zero_grad(&mut self) {
            self.grad.values.fill(T::zero());
            self.grad.filled = false;
        }

        fn parameter_layout(&self) -> Option<::nnscratch::optim::ParameterLayout> {
            Some(Self::PARAMETERS)
        }

        fn flat_parameters(&mut self) -> Option<::nnscratch::optim::FlatParameters<'_, T>> {
            Some(::nnscratch::optim::FlatParameters {
                values: &mut self.params,
                grads: self.grad.filled.then_some(&self.grad.values[..]),
            })
        }
    }
}

/// `to_dynamic()`: the same graph on the dynamic engine, built value by value.
pub fn to_dynamic(model: &Model, name: &str, internals: &Ident) -> TokenStream {
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
    let params = param_bindings(model, quote!(&self.params[..]), internals, true);
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
