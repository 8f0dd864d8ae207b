//! `MaxPool2d(kernel_size, stride = kernel_size, padding = 0)` and
//! `AvgPool2d(kernel_size, stride = kernel_size, padding = 0)` on `[batch, C, H, W]`,
//! as PyTorch's (sizes may be pairs; output sizes by the floor rule).
//!
//! ```text
//! max:  y = max over each window          dx: each dy goes to its window's (first) argmax
//! avg:  y = mean over each window         dx: each dy spread as dy/(kh·kw) over the window
//! ```
//!
//! (Average pooling divides by the whole window, padding included: PyTorch's
//! `count_include_pad=True`.)
//!
//! Runtime: `kernels/conv.rs` (`pool_forward`, `pool_backward`), `tensor/pool.rs`,
//! `nn::Pool2d`.

use proc_macro2::TokenStream;
use quote::quote;

use super::conv::{Geometry, input_size, shown, size, spatial_input, written};
use super::{Built, Call, Grads, Kind, Layer, Site, args};

pub const MAX_POOL: Kind = Kind {
    name: "MaxPool2d",
    has_parameters: false,
    build: build_max,
};

pub const AVG_POOL: Kind = Kind {
    name: "AvgPool2d",
    has_parameters: false,
    build: build_avg,
};

fn build_max(call: &mut Call<'_>) -> Built {
    build(call, true)
}

fn build_avg(call: &mut Call<'_>) -> Built {
    build(call, false)
}

fn build(call: &mut Call<'_>, max: bool) -> Built {
    let name = call.name.to_string();
    let [kernel, stride, padding] = args::bind(
        call,
        &["kernel_size", "stride", "padding"],
        "`kernel_size`, `stride` (default: the kernel size), `padding`",
    )[..] else {
        unreachable!("one slot per name")
    };
    let kernel = match kernel {
        Some(k) => size(call, k, &format!("{name}'s kernel_size"), true, 1),
        None => {
            call.error(
                call.name,
                format!("`{name}` needs its window size: `{name}(2)`"),
            );
            None
        }
    };
    let stride = match stride {
        Some(s) => size(call, s, &format!("{name}'s stride"), true, 1),
        None => kernel,
    };
    let padding = padding.map_or(Some((0, 0)), |p| {
        size(call, p, &format!("{name}'s padding"), true, 0)
    });
    if let (Some(k), Some(p)) = (kernel, padding)
        && (2 * p.0 > k.0 || 2 * p.1 > k.1)
    {
        call.error(
            call.name,
            format!(
                "`{name}`'s padding {} may be at most half its kernel {}, as in PyTorch",
                written(true, p),
                written(true, k)
            ),
        );
    }
    let input = spatial_input(call, true);
    let mut output = None;
    if let (Some((_, (h, w))), Some(k), Some(s), Some(p)) = (input, kernel, stride, padding) {
        if h + 2 * p.0 >= k.0 && w + 2 * p.1 >= k.1 {
            output = Some(((h + 2 * p.0 - k.0) / s.0 + 1, (w + 2 * p.1 - k.1) / s.1 + 1));
        } else {
            let source = call.source.clone();
            call.error(
                call.name,
                format!(
                    "`{name}`'s window {} is larger than its input: {source} gives {}, which leaves no output",
                    shown(true, k),
                    input_size(true, (h, w), p),
                ),
            );
        }
    }
    let channels = input.map_or(1, |(c, _)| c);
    let k = kernel.unwrap_or((1, 1));
    let geometry = Geometry {
        in_channels: channels,
        out_channels: channels,
        groups: 1,
        input: input.map_or((1, 1), |(_, size)| size),
        kernel: k,
        stride: stride.unwrap_or((1, 1)),
        padding: padding.unwrap_or((0, 0)),
        dilation: (1, 1),
        output: output.unwrap_or((1, 1)),
    };
    let optional = |label: &str, value: (usize, usize), default: (usize, usize)| {
        if value == default {
            String::new()
        } else {
            format!(", {label} = {}", written(true, value))
        }
    };
    let written = format!(
        "{name}({}{}{})",
        written(true, k),
        optional("stride", geometry.stride, geometry.kernel),
        optional("padding", geometry.padding, (0, 0)),
    );
    let shape = output.map(|(ho, wo)| vec![channels, ho, wo]);
    let positions = channels * geometry.output.0 * geometry.output.1;
    let mut argmax = call.scratch(
        "argmax",
        None,
        if max { positions } else { 0 },
        "each max-pooling window's maximum, as a position in its channel (for backward).",
    );
    argmax.indices = true;
    Built {
        layer: Box::new(Pool {
            geometry,
            max,
            written: written.clone(),
        }),
        width: shape.as_ref().map(|s| s.iter().product()),
        shape,
        params: None,
        shown: Some(written),
        state: Vec::new(),
        scratch: vec![argmax],
    }
}

struct Pool {
    geometry: Geometry,
    max: bool,
    written: String,
}

impl Layer for Pool {
    fn describe(&self) -> String {
        self.written.clone()
    }

    fn equation(&self, site: &Site<'_>) -> String {
        let g = &self.geometry;
        let what = if self.max { "max" } else { "mean" };
        format!(
            "{what} of each {} window of {}    → [{}, {}, {}] per sample",
            shown(true, g.kernel),
            site.x_name(0),
            g.out_channels,
            g.output.0,
            g.output.1
        )
    }

    fn forward(&self, site: &Site<'_>) -> TokenStream {
        let (x, y, max) = (site.x(0), site.out(), self.max);
        let geometry = self.geometry.tokens();
        let argmax = site.scratch(0);
        quote!(kernels::pool_forward(#x.view(), #geometry, #max, #y.view_mut(), &mut #argmax, &mut ws.gemm);)
    }

    fn backward(&self, site: &Site<'_>, grads: &mut Grads<'_>) {
        let (dy, max, argmax) = (site.dy(), self.max, site.scratch(0));
        let geometry = self.geometry.tokens();
        if let Some(t) = grads.operand(site, 0) {
            let (dx, write) = (&t.dx, &t.write);
            let dv = site.dy_name();
            let equation = if self.max {
                format!(
                    "{} {dv} sent to each window's argmax in {}",
                    t.lhs,
                    site.x_name(0)
                )
            } else {
                format!(
                    "{} {dv}/{} spread over each window",
                    t.lhs,
                    self.geometry.kernel.0 * self.geometry.kernel.1
                )
            };
            grads.emit(
                quote!(kernels::pool_backward(#dy.view(), #geometry, #max, &#argmax, #dx.view_mut(), #write, &mut ws.gemm);),
                equation,
            );
        }
    }

    fn partials(&self) -> Vec<String> {
        vec![if self.max {
            "dX = dY at each window's argmax".into()
        } else {
            "dX = dY/(kh·kw) over each window".into()
        }]
    }

    fn dynamic(&self, site: &Site<'_>) -> TokenStream {
        let (label, x, max) = (site.label(), site.x_dynamic(0), self.max);
        let g = &self.geometry;
        let pair = |(a, b): (usize, usize)| quote!((#a, #b));
        let (kernel, stride, padding) = (pair(g.kernel), pair(g.stride), pair(g.padding));
        quote!(net.module(#label, #x, #label, ::nnscratch::nn::Layer::Pool2d(::nnscratch::nn::Pool2d {
            max: #max, kernel_size: #kernel, stride: #stride, padding: #padding,
        })))
    }
}
