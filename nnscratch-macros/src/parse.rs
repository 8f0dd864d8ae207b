//! Syntax: the `model!` input as an AST that keeps every token's span.
//!
//! Two forms share one entry point:
//!
//! ```text
//! pub struct SineNet {                 pub struct Skip {
//!     input: 1,                            x = input(4);
//!     Linear(64), Tanh,                    h = Tanh(Linear(x, 16));
//!     Linear(1),                           y = Linear(h, 4) + x;
//!     loss: MSELoss,                       loss = MSELoss(Linear(y, 1));
//! }                                    }
//! ```
//!
//! A body whose first item is `name = ...` is the graph form; anything else is the
//! sequential form. This module only reads syntax; what it means (widths, names, the
//! graph) is decided in `graph.rs`, where every error is reported with these spans.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, Ident, Token, Visibility, braced, parenthesized, token};

/// The whole macro input: `#[attrs] vis struct Name { body }`.
pub struct ModelInput {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    pub brace: token::Brace,
    pub body: Body,
}

/// The two ways of writing a model, or nothing at all.
pub enum Body {
    Empty,
    Sequential(Vec<SeqItem>),
    Graph(Vec<Statement>),
}

/// One comma-separated item of the sequential form.
pub enum SeqItem {
    /// `input: 64`
    Input { key: Ident, width: Expr },
    /// `loss: MSELoss`
    Loss { key: Ident, kind: Expr },
    /// A key other than `input`/`loss`, kept to report it.
    UnknownKey { key: Ident },
    /// `Linear(64)`, `ReLU`, `LeakyReLU(0.2)`, ...
    Layer(LayerCall),
}

/// A layer name with optional arguments: `Tanh`, `Linear(64, 32)`.
pub struct LayerCall {
    pub name: Ident,
    pub args: Vec<Expr>,
}

/// One statement of the graph form: `name = expression;`.
pub struct Statement {
    pub name: Ident,
    pub expr: Expr,
}

impl Parse for ModelInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let _: Token![struct] = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `struct Name { ... }`: model! declares one struct",
            )
        })?;
        let ident: Ident = input.parse()?;
        if input.peek(Token![<]) {
            return Err(input.error(
                "model! structs take no generic parameters: the float type parameter `T` (default f32) is added for you",
            ));
        }
        let content;
        let brace = braced!(content in input);
        let body = parse_body(&content)?;
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the model's closing brace: model! declares one struct",
            ));
        }
        Ok(ModelInput {
            attrs,
            vis,
            ident,
            brace,
            body,
        })
    }
}

fn parse_body(content: ParseStream) -> syn::Result<Body> {
    if content.is_empty() {
        return Ok(Body::Empty);
    }
    let graph_form = content.peek(Ident) && content.peek2(Token![=]) && !content.peek2(Token![==]);
    if graph_form {
        let mut statements = Vec::new();
        while !content.is_empty() {
            let name: Ident = content.parse()?;
            let _: Token![=] = content.parse()?;
            let expr: Expr = content.parse()?;
            let _: Token![;] = content.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `;` after the statement (graph form: `name = expression;`)",
                )
            })?;
            statements.push(Statement { name, expr });
        }
        return Ok(Body::Graph(statements));
    }
    let mut items = Vec::new();
    while !content.is_empty() {
        items.push(parse_seq_item(content)?);
        if content.is_empty() {
            break;
        }
        let _: Token![,] = content.parse().map_err(|e| {
            syn::Error::new(e.span(), "expected `,` between layers (sequential form: `input: N, Layer, ..., loss: Loss,`)")
        })?;
    }
    Ok(Body::Sequential(items))
}

fn parse_seq_item(content: ParseStream) -> syn::Result<SeqItem> {
    if content.peek(Ident) && content.peek2(Token![:]) && !content.peek2(Token![::]) {
        let key: Ident = content.parse()?;
        let _: Token![:] = content.parse()?;
        return Ok(match key.to_string().as_str() {
            "input" => SeqItem::Input {
                key,
                width: content.parse()?,
            },
            "loss" => SeqItem::Loss {
                key,
                kind: content.parse()?,
            },
            _ => {
                let _: Expr = content.parse()?;
                SeqItem::UnknownKey { key }
            }
        });
    }
    let name: Ident = content.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a layer such as `Linear(64)` or `ReLU`, or `input:`/`loss:`",
        )
    })?;
    let args = if content.peek(token::Paren) {
        let inner;
        parenthesized!(inner in content);
        let args: Punctuated<Expr, Token![,]> = Punctuated::parse_terminated(&inner)?;
        args.into_iter().collect()
    } else {
        Vec::new()
    };
    Ok(SeqItem::Layer(LayerCall { name, args }))
}
