//! `Conv2d` and `Conv1d`, as PyTorch's `nn.Conv2d(in_channels, out_channels,
//! kernel_size, stride = 1, padding = 0, dilation = 1, groups = 1, bias = true)` on
//! `[batch, C, H, W]` values (`[batch, C, L]` for `Conv1d`). Written
//! `Conv2d(8, 3)` (output channels and kernel; the input channels inferred) or in full,
//! `Conv2d(1, 8, 3, stride = 1, padding = 1)`; sizes may be pairs, `(3, 5)`.
//!
//! For one sample and one group, with `col(X)` the `[Cg·kh·kw, Ho·Wo]` matrix of the
//! windows each output position reads and `W` the group's `[Og, Cg·kh·kw]` weights:
//!
//! ```text
//! Y = W·col(X) + b      dW = Σ_batch dY·col(X)ᵀ      db = Σ_batch,i,j dY      dX = col2im(Wᵀ·dY)
//! ```
//!
//! with output sizes by PyTorch's floor rule,
//! `Ho = ⌊(H + 2·padding - dilation·(kh - 1) - 1)/stride⌋ + 1`.
//!
//! Runtime: `kernels/conv.rs` (compiled: unfolded patches and the packed GEMM),
//! `tensor/conv.rs` (the dynamic op, written as the definition), `nn::Conv2d`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, ExprLit, Lit};

use super::{Built, Call, Grads, Kind, Layer, ParamSet, Site, args};

pub const CONV2D: Kind = Kind {
    name: "Conv2d",
    has_parameters: true,
    build: build_2d,
};

pub const CONV1D: Kind = Kind {
    name: "Conv1d",
    has_parameters: true,
    build: build_1d,
};

/// A size argument: `3`, or `(3, 5)` for a 2-D layer.
pub(super) fn size(
    call: &mut Call<'_>,
    expr: &Expr,
    what: &str,
    two_d: bool,
    minimum: usize,
) -> Option<(usize, usize)> {
    let one = |call: &mut Call<'_>, e: &Expr| -> Option<usize> {
        match e {
            Expr::Lit(ExprLit {
                lit: Lit::Int(int), ..
            }) => match int.base10_parse::<usize>() {
                Ok(v) if v >= minimum => Some(v),
                _ => {
                    call.error(
                        e,
                        format!(
                            "{what} must be an integer of at least {minimum}, found `{}`",
                            args::tokens_text(e)
                        ),
                    );
                    None
                }
            },
            _ => {
                call.error(
                    e,
                    format!(
                        "{what} must be an integer literal such as `3`, found `{}`",
                        args::tokens_text(e)
                    ),
                );
                None
            }
        }
    };
    match expr {
        Expr::Tuple(tuple) if two_d && tuple.elems.len() == 2 => {
            let a = one(call, &tuple.elems[0]);
            let b = one(call, &tuple.elems[1]);
            Some((a?, b?))
        }
        Expr::Tuple(_) | Expr::Array(_) => {
            let expected = if two_d {
                "an integer or a pair `(3, 5)`"
            } else {
                "an integer"
            };
            call.error(
                expr,
                format!(
                    "{what} must be {expected}, found `{}`",
                    args::tokens_text(expr)
                ),
            );
            None
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            call.error(
                expr,
                format!("{what} must be a number: model! computes every size at compile time (found \"{}\")", s.value()),
            );
            None
        }
        // A 1-D layer is the 2-D one with height 1: its height component is the neutral
        // value, 1 for kernels, strides and dilations and 0 for padding (`minimum`).
        _ => one(call, expr).map(|v| if two_d { (v, v) } else { (minimum, v) }),
    }
}

/// `a×b` (2-D) or `b` (1-D), as messages show sizes.
pub(super) fn shown(two_d: bool, (a, b): (usize, usize)) -> String {
    if two_d {
        format!("{a}×{b}")
    } else {
        b.to_string()
    }
}

/// A size as a model writes it: `3` (square, or 1-D) or `(3, 5)`.
pub(super) fn written(two_d: bool, (a, b): (usize, usize)) -> String {
    if !two_d || a == b {
        b.to_string()
    } else {
        format!("({a}, {b})")
    }
}

/// `H×W per channel` of an input, with its padded size when there is padding.
pub(super) fn input_size(two_d: bool, (h, w): (usize, usize), (ph, pw): (usize, usize)) -> String {
    if (ph, pw) == (0, 0) {
        format!("{} per channel", shown(two_d, (h, w)))
    } else {
        format!(
            "{} per channel, {} with padding {}",
            shown(two_d, (h, w)),
            shown(two_d, (h + 2 * ph, w + 2 * pw)),
            written(two_d, (ph, pw))
        )
    }
}

/// The input's spatial size `(H, W)` (`(1, L)` in 1-D) and channels, or `None`
/// (reported) when the value has the wrong number of dimensions.
pub(super) fn spatial_input(call: &mut Call<'_>, two_d: bool) -> Option<(usize, (usize, usize))> {
    let shape = call.input_shape.clone()?;
    match (two_d, shape.as_slice()) {
        (true, &[c, h, w]) => Some((c, (h, w))),
        (false, &[c, l]) => Some((c, (1, l))),
        (_, dims) => {
            let (expected, example) = if two_d {
                ("[batch, channels, height, width]", "`input: [1, 28, 28]`")
            } else {
                ("[batch, channels, length]", "`input: [2, 100]`")
            };
            let found = dims
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let source = call.source.clone();
            let fix = if source.contains("Flatten") {
                "move it before `Flatten`".to_string()
            } else {
                format!("declare the input's shape per sample, e.g. {example}")
            };
            call.error(
                call.name,
                format!(
                    "`{}` reads values {expected}, but {source} gives [batch, {found}]; {fix}",
                    call.name
                ),
            );
            None
        }
    }
}

fn build_2d(call: &mut Call<'_>) -> Built {
    build(call, true)
}

fn build_1d(call: &mut Call<'_>) -> Built {
    build(call, false)
}

fn build(call: &mut Call<'_>, two_d: bool) -> Built {
    let layer_name = call.name.to_string();
    // Positional arguments: (out, kernel) or (in, out, kernel, stride, padding, dilation, groups).
    let all = call.args.clone();
    let positional: Vec<&Expr> = all
        .iter()
        .copied()
        .filter(|a| !matches!(a, Expr::Assign(_)))
        .collect();
    let names: &[&str] = if positional.len() == 2 {
        &["out_channels", "kernel_size"]
    } else {
        &[
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "groups",
        ]
    };
    let mut slots: std::collections::HashMap<&str, &Expr> = std::collections::HashMap::new();
    if positional.len() > names.len() {
        call.error(
            positional[names.len()],
            format!("`{layer_name}` takes at most 7 positional arguments: in_channels, out_channels, kernel_size, stride, padding, dilation, groups (then `bias = false`)"),
        );
    }
    for (name, arg) in names.iter().zip(&positional) {
        slots.insert(name, arg);
    }
    const KEYWORDS: [&str; 8] = [
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
    ];
    for arg in &all {
        let Expr::Assign(assign) = arg else { continue };
        let key = args::tokens_text(&assign.left);
        match KEYWORDS.iter().find(|k| **k == key) {
            Some(k) if slots.contains_key(k) => call.error(
                &assign.left,
                format!("`{key}` is given twice to `{layer_name}`"),
            ),
            Some(k) => {
                slots.insert(k, &assign.right);
            }
            None => {
                let hint = crate::graph::suggestion(&key, &KEYWORDS)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                call.error(
                    &assign.left,
                    format!(
                        "`{layer_name}` has no argument `{key}`; {hint}its arguments: {}",
                        KEYWORDS.join(", ")
                    ),
                );
            }
        }
    }
    let width = |call: &mut Call<'_>, name: &str| -> Option<usize> {
        slots
            .get(name)
            .and_then(|e| args::parse_width(e, &format!("{layer_name}'s {name}"), call.errors))
    };
    let declared_in = width(call, "in_channels");
    let out = width(call, "out_channels");
    if out.is_none() && !slots.contains_key("out_channels") {
        call.error(
            call.name,
            format!("`{layer_name}` needs its output channels and kernel size: `{layer_name}(8, 3)`, or `{layer_name}(1, 8, 3, padding = 1)`"),
        );
    }
    let kernel = slots
        .get("kernel_size")
        .and_then(|e| size(call, e, &format!("{layer_name}'s kernel_size"), two_d, 1));
    let stride = slots.get("stride").map_or(Some((1, 1)), |e| {
        size(call, e, &format!("{layer_name}'s stride"), two_d, 1)
    });
    let padding = slots.get("padding").map_or(Some((0, 0)), |e| {
        size(call, e, &format!("{layer_name}'s padding"), two_d, 0)
    });
    let dilation = slots.get("dilation").map_or(Some((1, 1)), |e| {
        size(call, e, &format!("{layer_name}'s dilation"), two_d, 1)
    });
    let groups = width(call, "groups").unwrap_or(1);
    let bias = slots.get("bias").is_none_or(|e| {
        args::boolean(e, &format!("{layer_name}'s bias"), call.errors).unwrap_or(true)
    });
    let input = spatial_input(call, two_d);

    // The input channels: inferred, and checked when declared.
    let in_channels = match (input, declared_in) {
        (Some((actual, _)), Some(declared)) if actual != declared => {
            let source = call.source.clone();
            let token = slots["in_channels"];
            call.error(
                token,
                format!(
                    "channel mismatch: `{layer_name}` declares {} in, but {source} has {actual}; write {actual}, or leave in_channels out to infer it",
                    args::count(declared, "channel")
                ),
            );
            Some(actual)
        }
        (Some((actual, _)), _) => Some(actual),
        (None, declared) => declared,
    };
    if let (Some(c), Some(o)) = (in_channels, out)
        && (c % groups != 0 || o % groups != 0)
    {
        let token = slots.get("groups").copied();
        let message = format!(
            "groups = {groups} must divide both the input channels ({c}) and the output channels ({o})"
        );
        match token {
            Some(t) => call.error(t, message),
            None => call.error(call.name, message),
        }
    }
    // The output size, by PyTorch's floor rule; a window that does not fit is an error
    // naming the input's size and where it came from.
    let mut output = None;
    if let (Some((_, (h, w))), Some(k), Some(s), Some(p), Some(d)) =
        (input, kernel, stride, padding, dilation)
    {
        let span = |k: usize, d: usize| d * (k - 1) + 1;
        let fits = |size: usize, k, p, d| size + 2 * p >= span(k, d);
        if fits(h, k.0, p.0, d.0) && fits(w, k.1, p.1, d.1) {
            output = Some((
                (h + 2 * p.0 - span(k.0, d.0)) / s.0 + 1,
                (w + 2 * p.1 - span(k.1, d.1)) / s.1 + 1,
            ));
        } else {
            let source = call.source.clone();
            let token = slots.get("kernel_size").copied();
            let dilated = if d != (1, 1) {
                format!(
                    " (spanning {} with dilation {})",
                    shown(two_d, (span(k.0, d.0), span(k.1, d.1))),
                    written(two_d, d)
                )
            } else {
                String::new()
            };
            let message = format!(
                "`{layer_name}`'s kernel {}{dilated} is larger than its input: {source} gives {}; use a smaller kernel or more padding",
                shown(two_d, k),
                input_size(two_d, (h, w), p),
            );
            match token {
                Some(t) => call.error(t, message),
                None => call.error(call.name, message),
            }
        }
    }
    let (c, o, k) = (
        in_channels.unwrap_or(1),
        out.unwrap_or(1),
        kernel.unwrap_or((1, 1)),
    );
    let geometry = Geometry {
        in_channels: c,
        out_channels: o,
        groups,
        input: input.map_or((1, 1), |(_, size)| size),
        kernel: k,
        stride: stride.unwrap_or((1, 1)),
        padding: padding.unwrap_or((0, 0)),
        dilation: dilation.unwrap_or((1, 1)),
        output: output.unwrap_or((1, 1)),
    };
    let weight_shape: Vec<usize> = if two_d {
        vec![o, c / groups.max(1), k.0, k.1]
    } else {
        vec![o, c / groups.max(1), k.1]
    };
    let fan_in: usize = weight_shape[1..].iter().product();
    let dims = weight_shape.clone();
    let mut tensors = vec![call.parameter(
        "weight",
        weight_shape,
        quote!(::nnscratch::init::conv_weight(&[#(#dims),*], rng)),
        "dW = Σ_batch dY·col(X)ᵀ",
    )];
    if bias {
        tensors.push(call.parameter(
            "bias",
            vec![o],
            quote!(::nnscratch::init::conv_bias(#fan_in, #o, rng)),
            "db = Σ_batch,i,j dY",
        ));
    }
    let optional = |name: &str, value: (usize, usize), default: (usize, usize)| {
        if value == default {
            String::new()
        } else {
            format!(", {name} = {}", written(two_d, value))
        }
    };
    let written = format!(
        "{layer_name}({c}, {o}, {}{}{}{}{})",
        written(two_d, k),
        optional("stride", geometry.stride, (1, 1)),
        optional("padding", geometry.padding, (0, 0)),
        optional("dilation", geometry.dilation, (1, 1)),
        if groups != 1 {
            format!(", groups = {groups}")
        } else {
            String::new()
        },
    );
    let out_shape = output.map(|(ho, wo)| if two_d { vec![o, ho, wo] } else { vec![o, wo] });
    let ok = out_shape.is_some() && out.is_some() && in_channels.is_some();
    Built {
        layer: Box::new(Conv {
            geometry,
            two_d,
            bias,
            written: written.clone(),
        }),
        width: if ok {
            out_shape.as_ref().map(|s| s.iter().product())
        } else {
            None
        },
        shape: if ok { out_shape } else { None },
        params: Some(ParamSet {
            prefix: call.prefix.clone(),
            tensors,
            layer: written.clone(),
            span: call.name.span(),
        }),
        shown: Some(written),
        state: Vec::new(),
        scratch: Vec::new(),
    }
}

/// The geometry, as `kernels::Geometry` (kept here at compile time).
#[derive(Clone, Copy)]
pub(super) struct Geometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub groups: usize,
    pub input: (usize, usize),
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub output: (usize, usize),
}

impl Geometry {
    pub fn taps(&self) -> usize {
        self.in_channels / self.groups.max(1) * self.kernel.0 * self.kernel.1
    }

    pub fn positions(&self) -> usize {
        self.output.0 * self.output.1
    }

    /// The runtime's `kernels::Geometry { .. }` literal.
    pub fn tokens(&self) -> TokenStream {
        let Geometry {
            in_channels,
            out_channels,
            groups,
            input,
            kernel,
            stride,
            padding,
            dilation,
            output,
        } = *self;
        let pair = |(a, b): (usize, usize)| quote!((#a, #b));
        let (input, kernel, stride, padding, dilation, output) = (
            pair(input),
            pair(kernel),
            pair(stride),
            pair(padding),
            pair(dilation),
            pair(output),
        );
        quote!(::nnscratch::kernels::Geometry {
            in_channels: #in_channels, out_channels: #out_channels, groups: #groups,
            input: #input, kernel: #kernel, stride: #stride, padding: #padding, dilation: #dilation, output: #output,
        })
    }
}

struct Conv {
    geometry: Geometry,
    two_d: bool,
    bias: bool,
    written: String,
}

impl Layer for Conv {
    fn describe(&self) -> String {
        self.written.clone()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let prefix = &site.params().prefix;
        let g = &self.geometry;
        let bias = if self.bias {
            format!(" + [{prefix}.bias]")
        } else {
            String::new()
        };
        let out = if self.two_d {
            format!("[{}, {}, {}]", g.out_channels, g.output.0, g.output.1)
        } else {
            format!("[{}, {}]", g.out_channels, g.output.1)
        };
        format!(
            "[{prefix}.weight]·col({}){bias}    → {out} per sample (col: {} taps × {} positions)",
            site.x_name(0),
            g.taps(),
            g.positions()
        )
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, w) = (site.x(0), site.out(), site.param(0));
        let b = if self.bias {
            let b = site.param(1);
            quote!(Some(#b.view()))
        } else {
            quote!(None)
        };
        let geometry = self.geometry.tokens();
        quote!(kernels::conv_forward(#x.view(), #w.view().into_dyn(), #b, #geometry, #y.view_mut(), &mut ws.gemm);)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (x, dy, w) = (site.x(0), site.dy(), site.param(0));
        let grad_w = site.param_grad(0);
        let (prefix, dv) = (site.params().prefix.clone(), site.dy_name());
        let geometry = self.geometry.tokens();
        let (db, db_equation) = if self.bias {
            let grad_b = site.param_grad(1);
            (
                quote!(Some(#grad_b.view_mut())),
                format!("    d[{prefix}.bias] = Σ_batch,i,j {dv}"),
            )
        } else {
            (quote!(None), String::new())
        };
        let (write, op) = grads.parameter_write(site);
        grads.emit(
            quote!(kernels::conv_backward_params(#dy.view(), #x.view(), #geometry, #grad_w.view_mut().into_dyn(), #db, #write, &mut ws.gemm);),
            format!(
                "d[{prefix}.weight] {op} Σ_batch {dv}·col({})ᵀ{}",
                site.x_name(0),
                db_equation.replace(" = ", &format!(" {op} "))
            ),
        );
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            grads.emit(
                quote!(kernels::conv_backward_input(#dy.view(), #w.view().into_dyn(), #geometry, #dx.view_mut(), #write, &mut ws.gemm);),
                format!("{} col2im([{prefix}.weight]ᵀ·{dv})", t.lhs),
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec!["dX = col2im(Wᵀ·dY)".into()]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, w) = (site.label(), site.x_dynamic(0), site.param(0));
        let prefix = &site.params().prefix;
        let b = if self.bias {
            let b = site.param(1);
            quote!(Some(#b.clone().into_dyn()))
        } else {
            quote!(None)
        };
        let g = &self.geometry;
        let (c, groups) = (g.in_channels, g.groups);
        if self.two_d {
            let pair = |(a, b): (usize, usize)| quote!((#a, #b));
            let (stride, padding, dilation) = (pair(g.stride), pair(g.padding), pair(g.dilation));
            quote!(net.module(#label, #x, #prefix, ::nnscratch::nn::Layer::Conv2d(::nnscratch::nn::Conv2d::from_parameters(
                #c, #w.clone().into_dyn(), #b,
                ::nnscratch::nn::ConvOptions { stride: #stride, padding: #padding, dilation: #dilation, groups: #groups, bias: true },
            )?)))
        } else {
            let (stride, padding, dilation) = (g.stride.1, g.padding.1, g.dilation.1);
            quote!(net.module(#label, #x, #prefix, ::nnscratch::nn::Layer::Conv1d(::nnscratch::nn::Conv1d::from_parameters(
                #c, #w.clone().into_dyn(), #b,
                ::nnscratch::nn::ConvOptions { stride: #stride, padding: #padding, dilation: #dilation, groups: #groups, bias: true },
            )?)))
        }
    }
}
