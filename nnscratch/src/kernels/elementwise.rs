//! Element-wise `+` and `*` of two values of the same shape:
//!
//! ```text
//! y = a + b     da = dy,       db = dy
//! y = a ⊙ b     da = dy ⊙ b,   db = dy ⊙ a
//! ```

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use super::Write;
use crate::Float;

/// `y = a + b`.
pub fn add_forward<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    Zip::from(y).and(a).and(b).for_each(|y, &a, &b| *y = a + b);
}

/// `d(operand) = dy`, for either operand of `+`.
pub fn add_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    d_operand: ArrayViewMut2<'_, T>,
    write: Write,
) {
    Zip::from(d_operand)
        .and(dy)
        .for_each(|d, &dy| write.store(d, dy));
}

/// `y = a ⊙ b`.
pub fn mul_forward<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    Zip::from(y).and(a).and(b).for_each(|y, &a, &b| *y = a * b);
}

/// `d(operand) = dy ⊙ other`, for either operand of `*` (`other` is the other operand).
pub fn mul_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    other: ArrayView2<'_, T>,
    d_operand: ArrayViewMut2<'_, T>,
    write: Write,
) {
    Zip::from(d_operand)
        .and(dy)
        .and(other)
        .for_each(|d, &dy, &other| write.store(d, dy * other));
}
