//! Allocation that fails with an `Err` instead of aborting the process.
//!
//! Rust's `Vec` aborts when the allocator refuses, and panics when a size overflows. A
//! width that comes from a user (a layer spec, a batch size, a file header) goes through
//! [`try_zeros`] instead, so asking for 160 GiB is an [`Error::TooLarge`] naming the
//! shape, not a dead process.

use ndarray::{Array, Dimension, IntoDimension};

use crate::{Error, Result};

/// The error for `shape` of `T`s (`len` of them, when the count did not overflow).
fn too_large<T>(what: &str, shape: &[usize], len: Option<usize>, reason: String) -> Error {
    Error::TooLarge {
        what: what.to_string(),
        shape: shape.to_vec(),
        bytes: len.map(|len| len as u128 * std::mem::size_of::<T>() as u128),
        reason,
    }
}

/// The number of elements of `shape`, or an [`Error::TooLarge`] if it overflows `usize`
/// or its bytes overflow `isize` (the most any allocation can hold).
pub fn checked_len<T>(what: &str, shape: &[usize]) -> Result<usize> {
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| too_large::<T>(what, shape, None, "the element count overflows".into()))?;
    if len as u128 * std::mem::size_of::<T>() as u128 > isize::MAX as u128 {
        return Err(too_large::<T>(
            what,
            shape,
            Some(len),
            "more than the largest possible allocation".into(),
        ));
    }
    Ok(len)
}

/// An empty vector with room for `len` elements, or an [`Error::TooLarge`] if the
/// allocator refuses. `shape` is only used in the message.
pub fn try_with_capacity<T>(what: &str, shape: &[usize], len: usize) -> Result<Vec<T>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|e| {
        too_large::<T>(
            what,
            shape,
            Some(len),
            format!("the allocator refused ({e})"),
        )
    })?;
    Ok(data)
}

/// An array of zeros of `shape`, or an [`Error::TooLarge`] naming `what` and the shape.
pub fn try_zeros<T, Sh>(what: &str, shape: Sh) -> Result<Array<T, Sh::Dim>>
where
    T: Clone + num_traits::Zero,
    Sh: IntoDimension,
{
    try_from_fn(what, shape, T::zero)
}

/// An array of `shape` filled by `f` in row-major order, with the same checks as
/// [`try_zeros`] (the memory is reserved before `f` is first called).
pub fn try_from_fn<T, Sh>(what: &str, shape: Sh, f: impl FnMut() -> T) -> Result<Array<T, Sh::Dim>>
where
    Sh: IntoDimension,
{
    let dim = shape.into_dimension();
    let len = checked_len::<T>(what, dim.slice())?;
    let mut data = try_with_capacity(what, dim.slice(), len)?;
    data.extend(std::iter::repeat_with(f).take(len));
    Ok(Array::from_shape_vec(dim, data)
        .unwrap_or_else(|_| unreachable!("length computed from the shape")))
}
