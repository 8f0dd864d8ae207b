//! Code generation: the validated IR becomes the model struct and its impls.
//!
//! For `struct M` the output is:
//!
//! * `struct M<T = f32>`: the parameters in one private slice, rank by rank (read and
//!   written through the checked `Parameters` methods; `run` binds each tensor's name to
//!   a view of its place), `grad: __nnscratch_M::Grad<T>` with their gradients laid out
//!   alike, and `__nnscratch_M::Workspace<T>` holding one buffer per value
//!   and per value's gradient, sized to the last batch (so a step allocates nothing).
//!   The two helper types live in a hidden module named after the model, so they never
//!   clash with a user's items; every buffer and field name is unique by construction
//!   (`graph::assign_rust_names`);
//! * `impl M`: constants, `new` (PyTorch initialisation), `forward`, `loss`,
//!   `loss_backward`, `to_dynamic`, `graph`, and the private `run` that holds the
//!   straight-line forward (`forward.rs`) and backward (`backward.rs`) code;
//! * the `Parameters` and `CompiledModel` impls (`params.rs`).
//!
//! Every path is absolute (`::nnscratch::...`) so the expansion works wherever it lands.

pub mod backward;
mod docs;
mod fallback;
mod forward;
mod params;

pub use fallback::fallback;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::graph::Model;
use crate::parse::ModelInput;

/// How generated code names a value: `x` for the input (a view argument), `NAME` for a
/// workspace buffer (`run` binds each buffer of the workspace's array by name).
pub fn value_expr(model: &Model, node: petgraph::graph::NodeIndex) -> TokenStream {
    let value = &model.graph[node];
    if value.is_input() {
        quote!(x)
    } else {
        let ident = &value.ident;
        quote!(#ident)
    }
}

/// The gradient buffer of a value: `d_NAME`.
pub fn grad_expr(model: &Model, node: petgraph::graph::NodeIndex) -> TokenStream {
    let ident = &model.graph[node].grad_ident;
    quote!(#ident)
}

/// The `#[cfg]`-like attributes of the model, which every generated item must carry.
fn cfg_attrs(attrs: &[syn::Attribute]) -> Vec<&syn::Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
        .collect()
}

pub fn model(input: &ModelInput, model: &Model) -> TokenStream {
    let ModelInput {
        attrs, vis, ident, ..
    } = input;
    let name = ident.to_string();
    // Only `#[cfg]`-like attributes apply to every generated item; the rest (docs,
    // derives, lints) belong to the struct alone.
    let cfgs = cfg_attrs(attrs);
    // The gradient and workspace types live in a hidden module named after the model,
    // so no generated name can clash with a user's item (a user's own `NetGrad`, say).
    let internals = format_ident!("__nnscratch_{}", ident);
    let grad_ident = quote!(#internals::Grad);
    let workspace_ident = quote!(#internals::Workspace);
    let output = &model.graph[model.output];
    let (input_width, output_width) = (model.graph[model.input].width, output.width);
    let input_shape = &model.graph[model.input].shape;
    // The backward pass, derived once: its code goes into `run`, its equations into
    // the docs and `DERIVATION`.
    let backward = backward::derive(model);
    let equations = docs::equations(model, &backward);
    let struct_docs = docs::struct_docs(model, &name, &equations);

    let param_fields = params::fields(model);
    let state_fields = params::state_declarations(model);
    let state_init = params::state_init(model);
    let mode_methods = params::mode_methods(model);
    let seed_dropout = params::seed_dropout(model);
    let grad_fields = params::grad_fields();
    let grad_init = params::grad_init();
    let grad_bind = params::grad_bindings(model, &internals);
    let param_init = params::init(model, &internals);
    let param_init_fields = params::init_fields();
    let param_consts = params::shapes_const(model);
    let layout_consts = params::layout_consts(model);
    let visitor = params::visitor(model, &internals);
    let to_dynamic = params::to_dynamic(model, &name, &internals);
    let picture = docs::picture(model);

    let Buffers {
        fields: buffer_fields,
        init: buffer_init,
        resize: buffer_resize,
        bind: buffer_bind,
        output: output_index,
    } = workspace(model, &name);
    let forward_code = forward::statements(model);
    let derivation = docs::derivation(model, &forward_code, &backward);
    let (forward_code, backward_code) = (segments(&forward_code), segments(&backward.code));
    let destructure = params::destructure(model, &internals);
    let output_ident = &output.ident;
    let d_output = &output.grad_ident;

    let loss = &model.loss;
    let (output_buffer, d_output_buffer) = (quote!(#output_ident), quote!(#d_output));
    let target_type = loss.target_type();
    let target_check = loss.target_check(&name, output_width);
    let loss_kind = loss.runtime_kind();
    let loss_forward = loss.forward(&output_buffer);
    let loss_backward = loss.backward(&output_buffer, &d_output_buffer);
    let target_variant = loss.target_variant();
    let wrong_target = loss.expected_target();

    quote! {
        #(#attrs)*
        #struct_docs
        #vis struct #ident<T: ::nnscratch::Float = f32> {
            #param_fields
            #(#state_fields)*
            /// Gradients of the parameters, filled by `loss_backward`.
            grad: #grad_ident<T>,
            workspace: #workspace_ident<T>,
        }

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod #internals {
            #layout_consts

            #[doc = concat!("Gradients of [`", #name, "`]'s parameters, laid out as the parameters.")]
            #[derive(Clone, Debug)]
            pub struct Grad<T: ::nnscratch::Float> {
                #grad_fields
                /// Whether `loss_backward` has filled these since the last `zero_grad`
                /// (a failed step clears it, so an optimizer finds nothing to apply).
                pub filled: bool,
            }

            /// One buffer per value and per value's gradient, `[batch, width]`, reused
            /// across steps and reallocated only when the batch size changes.
            #[derive(Clone, Debug)]
            pub struct Workspace<T: ::nnscratch::Float> {
                /// A row-major copy of the input, used only when the caller's is not.
                pub input: ::nnscratch::ndarray::Array2<T>,
                /// Packing buffers of the matrix products of large layers.
                pub gemm: ::nnscratch::kernels::GemmWorkspace<T>,
                /// The batch size the buffers have (`None` before the first step and
                /// after a failed resize), so that a step of the same size checks none.
                pub prepared_for: Option<usize>,
                #buffer_fields
            }

            impl<T: ::nnscratch::Float> Grad<T> {
                /// Zero gradients of the parameters' shapes. (Its own function, not
                /// inlined into `new`: one huge initialiser is slow for LLVM to compile.)
                #[inline(never)]
                pub fn zeros() -> Self {
                    Grad { #grad_init filled: false }
                }
            }

            impl<T: ::nnscratch::Float> Workspace<T> {
                /// Empty buffers, sized by the first batch. (Not inlined, as above.)
                #[inline(never)]
                pub fn empty() -> Self {
                    Workspace {
                        input: ::nnscratch::ndarray::Array2::zeros((0, 0)),
                        gemm: ::nnscratch::kernels::GemmWorkspace::new(),
                        prepared_for: None,
                        #buffer_init
                    }
                }
            }
        }

        #(#cfgs)*
        impl<T: ::nnscratch::Float> #ident<T> {
            /// Width of the input, `[batch, INPUT_WIDTH]`.
            pub const INPUT_WIDTH: usize = #input_width;
            /// The shape of one input sample (`[INPUT_WIDTH]`, or `[C, H, W]` for images:
            /// each row of the input then holds one sample's values channel-first, in
            /// row-major order, as PyTorch's `x.reshape(batch, -1)` of an NCHW batch).
            pub const INPUT_SHAPE: &'static [usize] = &[#(#input_shape),*];
            /// Width of the output, `[batch, OUTPUT_WIDTH]`.
            pub const OUTPUT_WIDTH: usize = #output_width;
            #param_consts
            /// The forward and backward equations derived by `model!`.
            pub const BACKWARD_EQUATIONS: &'static str = #equations;
            #derivation

            /// A model initialised as PyTorch initialises `nn.Linear`:
            /// weight and bias from `U(-1/√in, 1/√in)`, layer by layer.
            ///
            /// # Panics
            /// If the memory for the parameters cannot be allocated (`model!` has
            /// already limited every layer's size at compile time).
            pub fn new<R: ::nnscratch::rand::Rng + ?Sized>(rng: &mut R) -> Self {
                #(#param_init)*
                #[allow(unused_mut)]
                let mut model = Self {
                    #param_init_fields
                    #(#state_init)*
                    grad: #grad_ident::zeros(),
                    workspace: #workspace_ident::empty(),
                };
                #seed_dropout
                model
            }

            #mode_methods

            /// The output for a batch `[batch, INPUT_WIDTH]`, as a view into the
            /// model's workspace (valid until the next call).
            pub fn forward(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>) -> ::nnscratch::Result<::nnscratch::ndarray::ArrayView2<'_, T>> {
                ::nnscratch::compiled::check_input(#name, #input_width, &x)?;
                self.prepare(x.nrows())?;
                self.run(x, None, false)?;
                Ok(self.workspace.buffers[#output_index].view())
            }

            /// The loss of a batch, without gradients.
            pub fn loss(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: #target_type) -> ::nnscratch::Result<T> {
                ::nnscratch::compiled::check_input(#name, #input_width, &x)?;
                #target_check
                self.prepare(x.nrows())?;
                let loss = self.run(x, Some(target), false)?;
                ::nnscratch::compiled::check_loss(#name, loss)
            }

            /// One training step's calculus: forward, the loss, and the derived backward
            /// pass, which fills the gradients. Returns the loss. Allocates nothing once
            /// the batch size has been seen. A non-finite loss is an `Err` and leaves no
            /// gradients behind, so an optimizer step after it changes nothing.
            pub fn loss_backward(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: #target_type) -> ::nnscratch::Result<T> {
                ::nnscratch::compiled::check_input(#name, #input_width, &x)?;
                #target_check
                self.grad.filled = false;
                self.prepare(x.nrows())?;
                let loss = ::nnscratch::compiled::check_loss(#name, self.run(x, Some(target), true)?)?;
                self.grad.filled = true;
                Ok(loss)
            }

            #to_dynamic

            /// The compiled graph: values, parameters, and on each edge the partial
            /// derivative the compiler derived.
            pub fn graph() -> ::nnscratch::graph::Graph<T> {
                #picture
            }

            /// Uses `threads` threads (default 1) for the matrix products of large
            /// layers; the helper threads live as long as the model.
            pub fn set_threads(&mut self, threads: usize) {
                self.workspace.gemm.set_threads(threads);
            }

            /// Runs this model's products and row operations on `path` (default: the
            /// fastest this CPU has). The paths round differently (AVX-512 and AVX2 fuse
            /// multiply-adds, sums run in other orders), so `Portable` gives the same bits
            /// on every machine. An `Err`, changing nothing, if this CPU cannot run it.
            pub fn set_kernel_path(&mut self, path: ::nnscratch::kernels::KernelPath) -> ::nnscratch::Result<()> {
                self.workspace.gemm.set_kernel_path(path)
            }

            /// Sizes every buffer for `batch` rows (allocates only when it changes).
            fn prepare(&mut self, batch: usize) -> ::nnscratch::Result<()> {
                let ws = &mut self.workspace;
                if ws.prepared_for == Some(batch) {
                    return Ok(());
                }
                ws.prepared_for = None;
                #buffer_resize
                ws.prepared_for = Some(batch);
                Ok(())
            }

            /// The straight-line program: forward, then (with a target) the loss, then
            /// (with `backward`) the gradients in reverse topological order.
            fn run(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: Option<#target_type>, backward: bool) -> ::nnscratch::Result<T> {
                use ::nnscratch::kernels::{self, Write};
                #destructure
                #buffer_bind
                #grad_bind
                let x = ::nnscratch::compiled::standard_layout(#name, x, &mut ws.input)?;
                // ---- forward ----
                #(#forward_code)*
                let Some(target) = target else { return Ok(T::zero()) };
                if !backward {
                    return Ok(#loss_forward);
                }
                // ---- loss and backward ----
                let loss = #loss_backward;
                #(#backward_code)*
                Ok(loss)
            }
        }

        #(#cfgs)*
        impl<T: ::nnscratch::Float> ::nnscratch::optim::Parameters<T> for #ident<T> {
            #visitor
        }

        #(#cfgs)*
        impl<T: ::nnscratch::Float> ::nnscratch::compiled::CompiledModel<T> for #ident<T> {
            const NAME: &'static str = #name;
            const INPUT_WIDTH: usize = #input_width;
            const OUTPUT_WIDTH: usize = #output_width;
            const LOSS: ::nnscratch::compiled::LossKind = #loss_kind;
            const BACKWARD_EQUATIONS: &'static str = #equations;
            const DERIVATION: &'static [::nnscratch::compiled::ValueDerivation] = #ident::<T>::DERIVATION;

            fn forward(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>) -> ::nnscratch::Result<::nnscratch::ndarray::ArrayView2<'_, T>> {
                #ident::forward(self, x)
            }

            fn set_kernel_path(&mut self, path: ::nnscratch::kernels::KernelPath) -> ::nnscratch::Result<()> {
                #ident::set_kernel_path(self, path)
            }

            fn loss(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: ::nnscratch::compiled::Target<'_, T>) -> ::nnscratch::Result<T> {
                match target {
                    #target_variant => #ident::loss(self, x, target),
                    _ => Err(::nnscratch::Error::InvalidArgument {
                        what: concat!(#name, " loss target").into(),
                        expected: #wrong_target.into(),
                        found: "the other kind of target".into(),
                    }),
                }
            }

            fn loss_backward(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: ::nnscratch::compiled::Target<'_, T>) -> ::nnscratch::Result<T> {
                match target {
                    #target_variant => #ident::loss_backward(self, x, target),
                    _ => Err(::nnscratch::Error::InvalidArgument {
                        what: concat!(#name, " loss target").into(),
                        expected: #wrong_target.into(),
                        found: "the other kind of target".into(),
                    }),
                }
            }

            fn to_dynamic(&self) -> ::nnscratch::nn::GraphModule<T> {
                #ident::to_dynamic(self)
            }

            fn set_training(&mut self, training: bool) {
                self.training = training;
            }

            fn is_training(&self) -> bool {
                self.training
            }

            fn fix_dropout_masks(&mut self, fixed: bool) {
                #ident::fix_dropout_masks(self, fixed);
            }

            fn graph() -> ::nnscratch::graph::Graph<T> {
                #ident::graph()
            }
        }
    }
}

/// Kernel calls per segment of a deep model's `run`.
const SEGMENT: usize = 32;

/// The statements as they go into `run`: unchanged for a model of up to [`SEGMENT`]
/// calls; for a deeper one, groups of `SEGMENT` in closures that
/// `nnscratch::compiled::segment` runs as functions of their own (LLVM took 12 s over
/// the 1000-layer benchmark's `run` as one function, 4.6 s over its segments).
fn segments(statements: &[TokenStream]) -> Vec<TokenStream> {
    if statements.len() <= SEGMENT {
        return statements.to_vec();
    }
    statements
        .chunks(SEGMENT)
        .map(|part| {
            quote! {
                ::nnscratch::compiled::segment(|| -> ::nnscratch::Result<()> {
                    #(#part)*
                    Ok(())
                })?;
            }
        })
        .collect()
}

/// The workspace's buffers as generated code sees them.
struct Buffers {
    /// The array of every `Array2` buffer and the named index buffers.
    fields: TokenStream,
    /// Their empty initial values.
    init: TokenStream,
    /// `prepare`'s resizing for a batch.
    resize: TokenStream,
    /// `run`'s binding of each array element to its buffer's name.
    bind: TokenStream,
    /// The output value's index in the array.
    output: usize,
}

/// The workspace: one array of every `Array2` buffer (each value, each value's gradient,
/// each scratch array), so that creating, resizing and dropping them are loops over
/// tables rather than code per buffer (2000 named fields cost LLVM 11 s on a
/// 1000-layer model), and the `Vec<u32>` index buffers as named fields.
fn workspace(model: &Model, name: &str) -> Buffers {
    // (name, initial shape, columns when sized by the batch) of each array buffer.
    let mut arrays: Vec<(syn::Ident, (usize, usize), Option<usize>)> = Vec::new();
    let (mut index_fields, mut index_init, mut indices_of) = (Vec::new(), Vec::new(), Vec::new());
    let mut output = 0;
    for &node in &model.order {
        let value = &model.graph[node];
        if value.is_input() {
            continue;
        }
        let width = value.width;
        if node == model.output {
            output = arrays.len();
        }
        arrays.push((value.ident.clone(), (0, width), Some(width)));
        if value.requires_grad {
            arrays.push((value.grad_ident.clone(), (0, width), Some(width)));
        }
        for scratch in &value.scratch {
            let (ident, cols) = (&scratch.field, scratch.cols);
            if scratch.indices {
                let doc = format!("`{}`: {}", value.name, scratch.doc);
                index_fields.push(quote! { #[doc = #doc] pub #ident: ::std::vec::Vec<u32>, });
                index_init.push(quote! { #ident: ::std::vec::Vec::new(), });
                // Grows once per new batch size, like the arrays.
                indices_of.push(quote! { (&mut ws.#ident, #cols) });
                continue;
            }
            match scratch.rows {
                None => arrays.push((ident.clone(), (0, cols), Some(cols))),
                Some(rows) => arrays.push((ident.clone(), (rows, cols), None)),
            }
        }
    }
    let count = arrays.len();
    let doc = format!(
        "Every array buffer, `[batch, width]` unless fixed: {}.",
        arrays
            .iter()
            .enumerate()
            .map(|(i, (ident, ..))| format!("{i} `{ident}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let fields = quote! {
        #[doc = #doc]
        pub buffers: [::nnscratch::ndarray::Array2<T>; #count],
        #(#index_fields)*
    };
    let shapes = arrays
        .iter()
        .map(|(_, (rows, cols), _)| quote!((#rows, #cols)));
    let init = quote! {
        buffers: {
            const SHAPES: [(usize, usize); #count] = [#(#shapes),*];
            ::std::array::from_fn(|i| ::nnscratch::compiled::zeros(SHAPES[i]))
        },
        #(#index_init)*
    };
    let sized: Vec<_> = arrays
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, cols))| cols.map(|cols| quote!((#i, #cols))))
        .collect();
    let sized_count = sized.len();
    let mut resize = TokenStream::new();
    if !sized.is_empty() {
        resize.extend(quote! {
            const SIZED: [(usize, usize); #sized_count] = [#(#sized),*];
            for &(i, cols) in &SIZED {
                ::nnscratch::compiled::resize(#name, &mut ws.buffers[i], batch, cols)?;
            }
        });
    }
    if !indices_of.is_empty() {
        resize.extend(quote! {
            for (buffer, cols) in [#(#indices_of),*] {
                ::nnscratch::compiled::resize_indices(#name, buffer, batch * cols)?;
            }
        });
    }
    let idents = arrays.iter().map(|(ident, ..)| ident);
    let bind = quote! {
        let [#(#idents),*] = &mut ws.buffers;
    };
    Buffers {
        fields,
        init,
        resize,
        bind,
        output,
    }
}
