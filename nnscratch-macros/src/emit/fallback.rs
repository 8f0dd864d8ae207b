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
    // A struct named `T` (an error reported above) must not also clash with the stand-in's
    // type parameter.
    let t = if ident == "T" {
        quote::format_ident!("F")
    } else {
        quote::format_ident!("T")
    };
    let cfgs = super::cfg_attrs(attrs);
    quote! {
        #errors

        #(#attrs)*
        #vis struct #ident<#t: ::nnscratch::Float = f32>(::core::marker::PhantomData<#t>);

        #(#cfgs)*
        #[allow(unused_variables, clippy::all)]
        impl<#t: ::nnscratch::Float> #ident<#t> {
            pub const INPUT_WIDTH: usize = 0;
            pub const OUTPUT_WIDTH: usize = 0;
            pub const BACKWARD_EQUATIONS: &'static str = "";
            pub fn new<R: ?Sized>(rng: &mut R) -> Self {
                unreachable!("model! reported an error for this model")
            }
            pub fn forward(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, #t>) -> ::nnscratch::Result<::nnscratch::ndarray::ArrayView2<'_, #t>> {
                unreachable!("model! reported an error for this model")
            }
            pub fn loss<U>(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, #t>, target: U) -> ::nnscratch::Result<#t> {
                unreachable!("model! reported an error for this model")
            }
            pub fn loss_backward<U>(&mut self, x: ::nnscratch::ndarray::ArrayView2<'_, #t>, target: U) -> ::nnscratch::Result<#t> {
                unreachable!("model! reported an error for this model")
            }
            pub fn to_dynamic(&self) -> ::nnscratch::nn::GraphModule<#t> {
                unreachable!("model! reported an error for this model")
            }
            pub fn graph() -> ::nnscratch::graph::Graph<#t> {
                unreachable!("model! reported an error for this model")
            }
            pub fn set_threads(&mut self, threads: usize) {
                unreachable!("model! reported an error for this model")
            }
        }

        #(#cfgs)*
        #[allow(unused_variables)]
        impl<#t: ::nnscratch::Float> ::nnscratch::optim::Parameters<#t> for #ident<#t> {
            fn visit_parameters(&mut self, visitor: &mut dyn FnMut(::nnscratch::optim::Param<'_, #t>)) {
                unreachable!("model! reported an error for this model")
            }
            fn zero_grad(&mut self) {
                unreachable!("model! reported an error for this model")
            }
        }
    }
}
