//! What an invalid model expands to: the errors, plus a stand-in struct with the model's
//! name and methods whose bodies are `unreachable!()`, so that code using the model still
//! type-checks and the user sees only the real mistakes (thiserror's `fallback.rs` idea).

use proc_macro2::TokenStream;
use quote::quote;

use crate::parse::ModelInput;

pub fn fallback(input: &ModelInput, errors: syn::Error) -> TokenStream {
    let ModelInput {
        attrs, vis, ident, ..
    } = input;
    let errors = errors.into_compile_error();
    quote! {
        #errors

        #(#attrs)*
        #vis struct #ident<T: ::nnscratch::Float = f32>(::core::marker::PhantomData<T>);

        #[allow(unused_variables, clippy::all)]
        impl<T: ::nnscratch::Float> #ident<T> {
            pub const INPUT_WIDTH: usize = 0;
            pub const OUTPUT_WIDTH: usize = 0;
            pub const BACKWARD_EQUATIONS: &'static str = "";
            pub fn new<R: ?Sized>(rng: &mut R) -> Self {
                unreachable!("model! reported an error for this model")
            }
            pub fn forward(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>) -> ::nnscratch::Result<::nnscratch::ndarray::ArrayView2<'_, T>> {
                unreachable!("model! reported an error for this model")
            }
            pub fn loss<U>(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: U) -> ::nnscratch::Result<T> {
                unreachable!("model! reported an error for this model")
            }
            pub fn loss_backward<U>(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, T>, target: U) -> ::nnscratch::Result<T> {
                unreachable!("model! reported an error for this model")
            }
            pub fn to_dynamic(&self) -> ::nnscratch::nn::GraphModule<T> {
                unreachable!("model! reported an error for this model")
            }
            pub fn graph() -> ::nnscratch::graph::Graph<T> {
                unreachable!("model! reported an error for this model")
            }
            pub fn set_threads(&mut self, threads: usize) {
                unreachable!("model! reported an error for this model")
            }
        }

        #[allow(unused_variables)]
        impl<T: ::nnscratch::Float> ::nnscratch::optim::Parameters<T> for #ident<T> {
            fn visit_parameters(&mut self, visitor: &mut dyn FnMut(::nnscratch::optim::Param<'_, T>)) {
                unreachable!("model! reported an error for this model")
            }
            fn zero_grad(&mut self) {
                unreachable!("model! reported an error for this model")
            }
        }
    }
}
