//! How a tensor prints: as PyTorch prints it, so that a learner reading a REPL-style
//! example sees what they would see in Python.
//!
//! ```text
//! tensor(-4.0, requires_grad=True)                 a leaf that tracks its gradient
//! tensor([[1.0, 2.0],
//!         [3.0, 4.0]], grad_fn=<AddBackward>)      the output of an op
//! tensor([0.1000, 2.0000])                         a common format for all elements
//! tensor([1.0000e-06, 1.0000e+00])                  scientific when magnitudes differ a lot
//! ```
//!
//! All elements share one format, chosen as PyTorch chooses it: whole numbers as `1.0`,
//! others with four decimals, and scientific notation when the magnitudes span too
//! much. A precision (`{:.2}`) overrides the decimals. Tensors of more than 1000
//! elements are summarised, three entries at each end of every dimension.

use std::fmt;

use ndarray::{ArrayViewD, Axis};

use super::Tensor;
use crate::Float;

/// Above this many elements, a tensor prints summarised (PyTorch's `threshold`).
const SUMMARY_THRESHOLD: usize = 1000;
/// How many entries a summarised dimension keeps at each end (PyTorch's `edgeitems`).
const EDGE_ITEMS: usize = 3;

impl<T: Float> Tensor<T> {
    /// The name of the backward function of the op that made this tensor, as PyTorch
    /// spells `grad_fn` (`AddBackward`, `TanhBackward`, `LeakyReluBackward`), or `None`
    /// for a leaf.
    pub fn grad_fn(&self) -> Option<String> {
        let name = self.op_name()?;
        let base = name.split('(').next().unwrap_or(&name);
        let camel: String = match base {
            "+" => "Add".into(),
            "-" => "Sub".into(),
            "*" => "Mul".into(),
            "/" => "Div".into(),
            other => other
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_uppercase().chain(chars).collect()
                    })
                })
                .collect(),
        };
        Some(format!("{camel}Backward"))
    }
}

/// How every element is written.
#[derive(Clone, Copy)]
enum Style {
    /// `1.0`: all elements are whole numbers.
    Whole,
    /// `0.1000`.
    Fixed(usize),
    /// `1.2346e8`.
    Scientific(usize),
}

impl Style {
    fn choose<T: Float>(values: &ArrayViewD<'_, T>, precision: Option<usize>) -> Style {
        let finite: Vec<f64> = values
            .iter()
            .map(|v| v.as_f64())
            .filter(|v| v.is_finite())
            .collect();
        let whole = finite.iter().all(|v| v.fract() == 0.0);
        let largest = finite.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let smallest = finite
            .iter()
            .filter(|v| **v != 0.0)
            .fold(f64::INFINITY, |m, v| m.min(v.abs()));
        if let Some(digits) = precision {
            return if largest >= 1e8 {
                Style::Scientific(digits)
            } else {
                Style::Fixed(digits)
            };
        }
        if whole && largest < 1e8 {
            Style::Whole
        } else if largest >= 1e8 || smallest < 1e-4 || largest / smallest > 1e3 && smallest < 1e-2 {
            Style::Scientific(4)
        } else {
            Style::Fixed(4)
        }
    }

    fn write(self, value: f64) -> String {
        if !value.is_finite() {
            return if value.is_nan() {
                "nan".into()
            } else if value > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            };
        }
        match self {
            Style::Whole => format!("{value:.1}"),
            Style::Fixed(digits) => format!("{value:.digits$}"),
            Style::Scientific(digits) => {
                // Rust writes `1.0000e-6`; PyTorch (and C's printf) `1.0000e-06`.
                let text = format!("{value:.digits$e}");
                match text.split_once('e') {
                    Some((mantissa, exponent)) => {
                        let exponent: i32 = exponent.parse().unwrap_or(0);
                        format!("{mantissa}e{exponent:+03}")
                    }
                    None => text,
                }
            }
        }
    }
}

/// How elements are laid out: their format, and the width every one is padded to so
/// that columns line up (as PyTorch pads them).
#[derive(Clone, Copy)]
struct Layout {
    style: Style,
    width: usize,
}

/// Writes `values` as nested brackets; `indent` is the column the outermost `[` is at.
fn write_nested<T: Float>(
    out: &mut String,
    values: ArrayViewD<'_, T>,
    layout: Layout,
    indent: usize,
    summarise: bool,
) {
    if values.ndim() == 0 {
        let text = layout
            .style
            .write(values.iter().next().map_or(0.0, |v| v.as_f64()));
        out.push_str(&format!("{text:>width$}", width = layout.width));
        return;
    }
    let n = values.len_of(Axis(0));
    let shown: Vec<Option<usize>> = if summarise && n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE_ITEMS..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    out.push('[');
    // Rows of a matrix (and deeper) go one per line, aligned under the first.
    let separator = match values.ndim() {
        1 => ", ".to_string(),
        rank => format!(",{}{}", "\n".repeat(rank - 1), " ".repeat(indent + 1)),
    };
    for (k, index) in shown.iter().enumerate() {
        if k > 0 {
            out.push_str(&separator);
        }
        match index {
            Some(i) => write_nested(
                out,
                values.index_axis(Axis(0), *i),
                layout,
                indent + 1,
                summarise,
            ),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

impl<T: Float> fmt::Display for Tensor<T> {
    /// PyTorch's repr: `tensor([[1.0, 2.0]], grad_fn=<AddBackward>)`, and
    /// `requires_grad=True` on a leaf that tracks its gradient.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.data();
        let view = data.view();
        let style = Style::choose(&view, f.precision());
        let width = if view.ndim() == 0 {
            0
        } else {
            view.iter()
                .map(|v| style.write(v.as_f64()).len())
                .max()
                .unwrap_or(0)
        };
        let mut text = String::from("tensor(");
        let prefix = text.len();
        write_nested(
            &mut text,
            view,
            Layout { style, width },
            prefix,
            data.len() > SUMMARY_THRESHOLD,
        );
        if let Some(grad_fn) = self.grad_fn() {
            text.push_str(&format!(", grad_fn=<{grad_fn}>"));
        } else if self.requires_grad() {
            text.push_str(", requires_grad=True");
        }
        text.push(')');
        f.write_str(&text)
    }
}
