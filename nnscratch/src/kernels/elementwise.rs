//! Element-wise `+` and `*` of two values of the same shape:
//!
//! ```text
//! y = a + b     da = dy,       db = dy
//! y = a ⊙ b     da = dy ⊙ b,   db = dy ⊙ a
//! ```

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{Write, map_into, map2_into};
use crate::Float;

/// `y = a + b`.
pub fn add_forward<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map2_into(a, b, y, Write::Set, |a, b| a + b);
}

/// `d(operand) = dy`, for either operand of `+`.
pub fn add_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    d_operand: ArrayViewMut2<'_, T>,
    write: Write,
) {
    match write {
        Write::Set => map_into(dy, d_operand, |dy| dy),
        Write::Add => map2_into(dy, dy, d_operand, Write::Add, |dy, _| dy),
    }
}

/// `y = a ⊙ b`.
pub fn mul_forward<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map2_into(a, b, y, Write::Set, |a, b| a * b);
}

/// `d(operand) = dy ⊙ other`, for either operand of `*` (`other` is the other operand).
pub fn mul_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    other: ArrayView2<'_, T>,
    d_operand: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(dy, other, d_operand, write, |dy, other| dy * other);
}
