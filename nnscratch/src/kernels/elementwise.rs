//! Element-wise `+`, `-` and `*` of two values of the same shape, a value times a
//! constant, and the concatenation of values along the features:
//!
//! ```text
//! y = a + b            da = dy,       db = dy
//! y = a - b            da = dy,       db = -dy
//! y = a ⊙ b            da = dy ⊙ b,   db = dy ⊙ a
//! y = c·x              dx = c·dy
//! y = [a | b | …]      da = dy[:, columns of a], …
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

/// `y = a - b`.
pub fn sub_forward<T: Float>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, y: ArrayViewMut2<'_, T>) {
    map2_into(a, b, y, Write::Set, |a, b| a - b);
}

/// `db = -dy`, for the right operand of `-` (the left one's is [`add_backward`]'s).
pub fn sub_backward_right<T: Float>(
    dy: ArrayView2<'_, T>,
    d_operand: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(dy, dy, d_operand, write, |dy, _| -dy);
}

/// `y = c·x`.
pub fn scale_forward<T: Float>(x: ArrayView2<'_, T>, c: T, y: ArrayViewMut2<'_, T>) {
    map_into(x, y, |x| c * x);
}

/// `dx = c·dy`.
pub fn scale_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    c: T,
    dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    map2_into(dy, dy, dx, write, |dy, _| c * dy);
}

/// Copies `x` into columns `offset..offset + x.ncols()` of `y` (one operand of a
/// concatenation along the features).
pub fn cat_forward<T: Float>(x: ArrayView2<'_, T>, offset: usize, mut y: ArrayViewMut2<'_, T>) {
    let width = x.ncols();
    let mut columns = y.slice_mut(ndarray::s![.., offset..offset + width]);
    columns.assign(&x);
}

/// `dx = dy[:, offset..offset + dx.ncols()]`: the gradient of one operand of a
/// concatenation is its block of columns.
pub fn cat_backward<T: Float>(
    dy: ArrayView2<'_, T>,
    offset: usize,
    mut dx: ArrayViewMut2<'_, T>,
    write: Write,
) {
    let width = dx.ncols();
    let block = dy.slice(ndarray::s![.., offset..offset + width]);
    ndarray::Zip::from(&mut dx)
        .and(&block)
        .for_each(|d, &g| write.store(d, g));
}
