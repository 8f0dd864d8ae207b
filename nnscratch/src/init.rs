//! Initialisation exactly as PyTorch's `nn.Linear.reset_parameters`.
//!
//! PyTorch initialises a Linear layer's weight with `kaiming_uniform_(a=√5)`, whose bound
//! works out to `gain·√(3/fan_in)` with `gain = √(2/(1+a²)) = √(1/3)`, that is `1/√fan_in`;
//! the bias is drawn from the same `U(-1/√fan_in, 1/√fan_in)`. The distribution is the
//! same as PyTorch's; the random stream is this crate's (any seedable `rand` RNG).

use ndarray::{Array1, Array2};
use rand::{Rng, RngExt};

use crate::{Error, Float, Result};

/// `[n]` ones: a normalisation layer's initial `weight` (`γ`), as PyTorch's.
pub fn ones<T: Float>(n: usize) -> Result<Array1<T>> {
    Ok(Array1::ones(n))
}

/// `[n]` zeros: a normalisation layer's initial `bias` (`β`), as PyTorch's.
pub fn zeros<T: Float>(n: usize) -> Result<Array1<T>> {
    Ok(Array1::zeros(n))
}

/// `1/√in_features`, the bound of both uniform distributions.
pub fn linear_bound(in_features: usize) -> f64 {
    1.0 / (in_features as f64).sqrt()
}

/// A `[out_features, in_features]` weight drawn from `U(-1/√in, 1/√in)`; an
/// [`Error::TooLarge`] if it cannot be allocated.
pub fn linear_weight<T: Float, R: Rng + ?Sized>(
    in_features: usize,
    out_features: usize,
    rng: &mut R,
) -> Result<Array2<T>> {
    let bound = linear_bound(in_features);
    crate::alloc::try_from_fn(
        &format!("Linear({in_features}, {out_features}) weight"),
        (out_features, in_features),
        || uniform(bound, rng),
    )
}

/// A `[out_features]` bias drawn from `U(-1/√in, 1/√in)`; an [`Error::TooLarge`] if it
/// cannot be allocated.
pub fn linear_bias<T: Float, R: Rng + ?Sized>(
    in_features: usize,
    out_features: usize,
    rng: &mut R,
) -> Result<Array1<T>> {
    let bound = linear_bound(in_features);
    crate::alloc::try_from_fn(
        &format!("Linear({in_features}, {out_features}) bias"),
        out_features,
        || uniform(bound, rng),
    )
}

/// A convolution's weight `[out_channels, in_channels/groups, kernel...]` drawn from
/// `U(-1/√fan_in, 1/√fan_in)`, `fan_in = in_channels/groups · kernel area`, as PyTorch's
/// `_ConvNd.reset_parameters` (the same `kaiming_uniform_(a=√5)` as Linear's).
pub fn conv_weight<T: Float, R: Rng + ?Sized>(
    shape: &[usize],
    rng: &mut R,
) -> Result<ndarray::ArrayD<T>> {
    let fan_in: usize = shape[1..].iter().product();
    let bound = linear_bound(fan_in.max(1));
    let values: Vec<T> = (0..shape.iter().product::<usize>())
        .map(|_| uniform(bound, rng))
        .collect();
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).map_err(|_| {
        Error::InvalidArgument {
            what: "conv_weight".into(),
            expected: "a shape".into(),
            found: format!("{shape:?}"),
        }
    })
}

/// A convolution's bias `[out_channels]` from `U(-1/√fan_in, 1/√fan_in)`.
pub fn conv_bias<T: Float, R: Rng + ?Sized>(
    fan_in: usize,
    out_channels: usize,
    rng: &mut R,
) -> Result<Array1<T>> {
    let bound = linear_bound(fan_in.max(1));
    Ok(Array1::from_shape_simple_fn(out_channels, || {
        uniform(bound, rng)
    }))
}

/// One draw from `U(-bound, bound)`.
pub fn uniform<T: Float, R: Rng + ?Sized>(bound: f64, rng: &mut R) -> T {
    let u: f64 = rng.random(); // [0, 1)
    T::of((2.0 * u - 1.0) * bound)
}

/// Checks the two widths of a Linear layer: both must be at least 1.
pub fn check_linear_widths(in_features: usize, out_features: usize) -> Result<()> {
    for (what, width) in [("in_features", in_features), ("out_features", out_features)] {
        if width == 0 {
            return Err(Error::InvalidArgument {
                what: format!("Linear({in_features}, {out_features}): {what}"),
                expected: "a width of at least 1".into(),
                found: "0".into(),
            });
        }
    }
    Ok(())
}
