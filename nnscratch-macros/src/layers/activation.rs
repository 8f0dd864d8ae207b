//! What the element-wise activations share: one operand, the same width out, and no
//! parameters. Each activation's own rules are in its file (`relu.rs`, `tanh.rs`, ...).

use super::{Call, args};

/// Reports any argument of an activation that takes none (`Tanh(2)`).
pub fn no_arguments(call: &mut Call<'_>) {
    args::bind(call, &[], "");
}

/// The one operand's partial in a picture is `f'` times the upstream gradient.
pub fn unary_partial(derivative: &str) -> Vec<String> {
    vec![format!("dX = dY ⊙ {derivative}")]
}
