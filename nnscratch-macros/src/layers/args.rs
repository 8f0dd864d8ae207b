//! Reading a layer's arguments: widths, numbers, and PyTorch's positional-then-keyword
//! calling convention (`LeakyReLU(negative_slope = 0.2)`). Every mistake is reported on
//! the argument's own token.

use quote::ToTokens;
use syn::{Expr, Lit};

use super::Call;
use crate::graph::{Errors, MAX_LAYER_PARAMETERS, suggestion};

/// `"1 argument"`, `"3 arguments"`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Tokens as a user wrote them, for messages: `-0.5`, `a.b`.
pub fn tokens_text(tokens: &impl ToTokens) -> String {
    tokens
        .to_token_stream()
        .to_string()
        .replace(" . ", ".")
        .replace("- ", "-")
}

/// A width argument: a positive integer literal, at most 2^28.
pub fn parse_width(expr: &Expr, what: &str, errors: &mut Errors) -> Option<usize> {
    let found = tokens_text(expr);
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<usize>() {
            Ok(0) => {
                errors.at(
                    expr,
                    format!("{what} must be at least 1, found 0: a layer of width 0 has no values"),
                );
                None
            }
            Ok(width) if width as u128 > MAX_LAYER_PARAMETERS => {
                errors.at(
                    expr,
                    format!(
                        "{what} must be at most {MAX_LAYER_PARAMETERS} (2^28), found {width}: \
                         model! limits sizes so that a model always fits in memory"
                    ),
                );
                None
            }
            Ok(width) => Some(width),
            Err(_) => {
                errors.at(
                    expr,
                    format!("{what} must be a positive integer, found `{found}`"),
                );
                None
            }
        },
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(_), ..
        }) => {
            errors.at(
                expr,
                format!("{what} must be a whole number of units, found `{found}`"),
            );
            None
        }
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            ..
        }) => {
            errors.at(
                expr,
                format!("{what} must be a positive integer, found the negative `{found}`"),
            );
            None
        }
        _ => {
            errors.at(
                expr,
                format!("{what} must be an integer literal such as `64` (widths are fixed at compile time), found `{found}`"),
            );
            None
        }
    }
}

/// A number literal (`0.2`, `20`, `-1.5`), as `f64`; `None` (nothing reported) when
/// the expression is not one or is not finite.
pub fn number(expr: &Expr) -> Option<f64> {
    let value = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => number(expr).map(|v| -v),
        Expr::Paren(inner) => number(&inner.expr),
        Expr::Group(inner) => number(&inner.expr),
        _ => None,
    };
    value.filter(|v| v.is_finite())
}

/// Binds a call's arguments to the layer's parameter names as Python does: positional
/// arguments first, in order, then `name = value` in any order. Returns one slot per
/// name (`None` where the default applies). `usage` completes "takes at most N
/// arguments, ..." when there are too many.
pub fn bind<'e>(call: &mut Call<'e>, names: &[&'static str], usage: &str) -> Vec<Option<&'e Expr>> {
    let mut slots: Vec<Option<&'e Expr>> = vec![None; names.len()];
    let mut keyword_seen = false;
    let mut excess_reported = false;
    let args = call.args.clone();
    for (position, &arg) in args.iter().enumerate() {
        if let Expr::Assign(assign) = arg {
            keyword_seen = true;
            let key = match &*assign.left {
                Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                _ => None,
            };
            let Some(key) = key else {
                call.error(
                    &assign.left,
                    format!(
                        "expected an argument name of `{}`, such as `{}`",
                        call.name,
                        names.join("`, `")
                    ),
                );
                continue;
            };
            match names.iter().position(|n| *n == key) {
                Some(slot) if slots[slot].is_some() => call.error(
                    &assign.left,
                    format!("`{key}` is given twice to `{}`", call.name),
                ),
                Some(slot) => slots[slot] = Some(&assign.right),
                None => {
                    let list = names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let message = match suggestion(&key, names) {
                        Some(close) => format!(
                            "`{}` has no argument `{key}`: did you mean `{close}`? (its arguments: {list})",
                            call.name
                        ),
                        None if names.is_empty() => format!("`{}` takes no arguments", call.name),
                        None => format!(
                            "`{}` has no argument `{key}`; its arguments are {list}",
                            call.name
                        ),
                    };
                    call.error(&assign.left, message);
                }
            }
        } else if keyword_seen {
            call.error(
                arg,
                "a positional argument cannot follow a keyword argument (`name = value`)",
            );
        } else if position >= names.len() {
            if excess_reported {
                continue;
            }
            excess_reported = true;
            let message = if names.is_empty() {
                format!("`{}` takes no arguments", call.name)
            } else {
                format!(
                    "`{}` takes at most {}, {usage}",
                    call.name,
                    count(names.len(), "argument")
                )
            };
            call.error(arg, message);
        } else {
            slots[position] = Some(arg);
        }
    }
    slots
}

/// A `true`/`false` literal; reports anything else (with a hint for Python's `True`).
pub fn boolean(expr: &Expr, what: &str, errors: &mut Errors) -> Option<bool> {
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Bool(value),
        ..
    }) = expr
    {
        return Some(value.value);
    }
    let found = tokens_text(expr);
    let hint = match found.as_str() {
        "False" | "True" => format!(": write Rust's `{}`", found.to_lowercase()),
        _ => String::new(),
    };
    errors.at(
        expr,
        format!("{what} must be `true` or `false`, found `{found}`{hint}"),
    );
    None
}

/// A model's input shape: a width (`784`) or a bracketed shape, `[1, 28, 28]` (channels,
/// height, width) or `[2, 100]` (channels, length).
pub fn parse_shape(expr: &Expr, errors: &mut Errors) -> Option<Vec<usize>> {
    let Expr::Array(array) = expr else {
        return parse_width(expr, "the input width", errors).map(|w| vec![w]);
    };
    if !(1..=3).contains(&array.elems.len()) {
        errors.at(
            expr,
            format!(
                "an input shape has 1 to 3 dimensions per sample: `[features]`, `[channels, length]` or \
                 `[channels, height, width]` (the batch stays a run-time size); found {}",
                count(array.elems.len(), "dimension")
            ),
        );
        return None;
    }
    let dims: Vec<Option<usize>> = array
        .elems
        .iter()
        .map(|d| parse_width(d, "an input dimension", errors))
        .collect();
    let shape: Option<Vec<usize>> = dims.into_iter().collect();
    let shape = shape?;
    if shape.iter().map(|&d| d as u128).product::<u128>() > MAX_LAYER_PARAMETERS {
        errors.at(
            expr,
            format!(
                "the input {shape:?} has more than {MAX_LAYER_PARAMETERS} (2^28) values per sample"
            ),
        );
        return None;
    }
    Some(shape)
}
