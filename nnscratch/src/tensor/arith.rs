//! Element-wise arithmetic `+ - * /`, `maximum` and negation, with NumPy/PyTorch
//! broadcasting, and the operators (every mix of `Tensor`, `&Tensor` and a number, and
//! `+=` and friends).
//!
//! Broadcasting lines shapes up from the right; a dimension of size 1 (or a missing
//! leading one) is stretched to match. That is what a bias needs: a scalar, a row `[1, n]`
//! or a vector `[n]` over `[m, n]`, a column `[m, 1]` over `[m, n]`.
//!
//! The derivative of a broadcast operand is the sum of the output gradient over the
//! stretched dimensions ([`unbroadcast`]): each input element was used once per copy.
//!
//! Operators panic on incompatible shapes with the message of the `try_` method, which
//! returns `Err` instead; use `try_add` and friends on user-supplied shapes.

use std::cell::Ref;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use ndarray::{ArrayD, Axis, IxDyn};

use super::{Function, Partial, Tensor};
use crate::{Error, Float, Result};

/// The shape two operands broadcast to, or `None` if they do not fit.
pub fn broadcast_shape(lhs: &[usize], rhs: &[usize]) -> Option<Vec<usize>> {
    let ndim = lhs.len().max(rhs.len());
    let mut shape = vec![0; ndim];
    for (i, size) in shape.iter_mut().enumerate() {
        // Align from the right; a missing dimension counts as 1.
        let l = lhs.len().checked_sub(ndim - i).map_or(1, |j| lhs[j]);
        let r = rhs.len().checked_sub(ndim - i).map_or(1, |j| rhs[j]);
        *size = match (l, r) {
            (l, r) if l == r => l,
            (1, r) => r,
            (l, 1) => l,
            _ => return None,
        };
    }
    Some(shape)
}

/// Sums `grad` (of the broadcast shape) down to `shape`: over the leading dimensions
/// `shape` lacks, and over the dimensions where `shape` has size 1.
pub(crate) fn unbroadcast<T: Float>(grad: ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    if grad.shape() == shape {
        return grad;
    }
    let mut grad = grad;
    while grad.ndim() > shape.len() {
        grad = grad.sum_axis(Axis(0));
    }
    for (axis, &size) in shape.iter().enumerate() {
        if size == 1 && grad.shape()[axis] != 1 {
            grad = grad.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    grad
}

/// Broadcasts `value` to `shape` and copies it into an owned array.
pub(crate) fn broadcast_to<T: Float>(value: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    match value.broadcast(IxDyn(shape)) {
        Some(view) => view.to_owned(),
        None => unreachable!("broadcast_to called with shapes checked by broadcast_shape"),
    }
}

fn check_broadcast<T: Float>(op: &'static str, a: &Tensor<T>, b: &Tensor<T>) -> Result<()> {
    let (lhs, rhs) = (a.shape(), b.shape());
    if broadcast_shape(&lhs, &rhs).is_none() {
        return Err(Error::ShapeMismatch {
            op,
            lhs,
            rhs,
            expected: "equal shapes, or shapes that broadcast (a dimension of 1 or a missing \
                       leading dimension stretches to match)"
                .into(),
        });
    }
    Ok(())
}

// ---- add: y = a + b,  dy/da = 1,  dy/db = 1 ----

struct AddBackward;

impl<T: Float> Function<T> for AddBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0] + inputs[1]
    }
    fn name(&self) -> String {
        "+".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        vec![
            unbroadcast(g.clone(), inputs[0].shape()),
            unbroadcast(g.clone(), inputs[1].shape()),
        ]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::formula("1")
    }
}

// ---- sub: y = a - b,  dy/da = 1,  dy/db = -1 ----

struct SubBackward;

impl<T: Float> Function<T> for SubBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0] - inputs[1]
    }
    fn name(&self) -> String {
        "-".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        vec![
            unbroadcast(g.clone(), inputs[0].shape()),
            unbroadcast(g.mapv(|v| -v), inputs[1].shape()),
        ]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        Partial::formula(if index == 0 { "1" } else { "-1" })
    }
}

// ---- mul: y = a * b,  dy/da = b,  dy/db = a ----

struct MulBackward;

impl<T: Float> Function<T> for MulBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0] * inputs[1]
    }
    fn name(&self) -> String {
        "*".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let (a, b) = (&*inputs[0], &*inputs[1]);
        vec![unbroadcast(g * b, a.shape()), unbroadcast(g * a, b.shape())]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        let other = &*inputs[1 - index];
        Partial::with_value(if index == 0 { "b" } else { "a" }, other.clone())
    }
}

// ---- maximum: y = max(a, b),  dy/da = [a > b],  dy/db = [b > a], ½ each at a tie ----
//
// At a tie the maximum has a kink; PyTorch (derivatives.yaml, `maximum`) sends half the
// gradient to each side, which keeps `maximum(x, x)` = x with gradient 1. So do we.

struct MaximumBackward;

/// `max(a, b)` element-wise, broadcast (shapes checked by the caller).
fn maximum_values<T: Float>(a: &ArrayD<T>, b: &ArrayD<T>) -> ArrayD<T> {
    let shape = broadcast_shape(a.shape(), b.shape()).unwrap_or_default();
    let (a, b) = (broadcast_to(a, &shape), broadcast_to(b, &shape));
    ndarray::Zip::from(&a)
        .and(&b)
        .map_collect(|&a, &b| if b > a { b } else { a })
}

/// The share of the gradient that goes to `mine` in `max(mine, other)`.
fn maximum_share<T: Float>(mine: T, other: T) -> T {
    if mine > other {
        T::one()
    } else if mine == other {
        T::of(0.5)
    } else {
        T::zero()
    }
}

impl MaximumBackward {
    /// `∂y/∂(operand index)`, of the output's shape.
    fn local<T: Float>(inputs: &[Ref<'_, ArrayD<T>>], shape: &[usize], index: usize) -> ArrayD<T> {
        let (mine, other) = (
            broadcast_to(&inputs[index], shape),
            broadcast_to(&inputs[1 - index], shape),
        );
        ndarray::Zip::from(&mine)
            .and(&other)
            .map_collect(|&m, &o| maximum_share(m, o))
    }
}

impl<T: Float> Function<T> for MaximumBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        maximum_values(inputs[0], inputs[1])
    }
    fn name(&self) -> String {
        "maximum".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        (0..2)
            .map(|i| unbroadcast(g * &Self::local(inputs, g.shape(), i), inputs[i].shape()))
            .collect()
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], y: &ArrayD<T>, index: usize) -> Partial<T> {
        let formula = if index == 0 {
            "[a > b] (½ if a = b)"
        } else {
            "[b > a] (½ if a = b)"
        };
        Partial::with_value(formula, Self::local(inputs, y.shape(), index))
    }
}

// ---- div: y = a / b,  dy/da = 1/b,  dy/db = -a/b² ----

struct DivBackward;

impl<T: Float> Function<T> for DivBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0] / inputs[1]
    }
    fn name(&self) -> String {
        "/".into()
    }
    fn backward(
        &self,
        inputs: &[Ref<'_, ArrayD<T>>],
        _: &ArrayD<T>,
        g: &ArrayD<T>,
    ) -> Vec<ArrayD<T>> {
        let (a, b) = (&*inputs[0], &*inputs[1]);
        let grad_a = g / b;
        let grad_b = -(&(g * a) / &(b * b));
        vec![
            unbroadcast(grad_a, a.shape()),
            unbroadcast(grad_b, b.shape()),
        ]
    }
    fn partial(&self, inputs: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, index: usize) -> Partial<T> {
        let (a, b) = (&*inputs[0], &*inputs[1]);
        if index == 0 {
            Partial::with_value("1/b", b.mapv(|v| T::one() / v))
        } else {
            let minus_a_over_b2 = -(a / &(b * b));
            Partial::with_value("-a/b^2", minus_a_over_b2)
        }
    }
}

// ---- neg: y = -a,  dy/da = -1 ----

struct NegBackward;

impl<T: Float> Function<T> for NegBackward {
    fn forward(&self, inputs: &[&ArrayD<T>]) -> ArrayD<T> {
        inputs[0].mapv(|v| -v)
    }
    fn name(&self) -> String {
        "neg".into()
    }
    fn backward(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, g: &ArrayD<T>) -> Vec<ArrayD<T>> {
        vec![g.mapv(|v| -v)]
    }
    fn partial(&self, _: &[Ref<'_, ArrayD<T>>], _: &ArrayD<T>, _: usize) -> Partial<T> {
        Partial::formula("-1")
    }
}

impl<T: Float> Tensor<T> {
    /// `self + other`, broadcasting; `Err` if the shapes do not broadcast.
    pub fn try_add(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        check_broadcast("add", self, other)?;
        let data = &*self.data() + &*other.data();
        Ok(Tensor::from_op(
            data,
            AddBackward,
            vec![self.clone(), other.clone()],
        ))
    }

    /// `self - other`, broadcasting; `Err` if the shapes do not broadcast.
    pub fn try_sub(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        check_broadcast("sub", self, other)?;
        let data = &*self.data() - &*other.data();
        Ok(Tensor::from_op(
            data,
            SubBackward,
            vec![self.clone(), other.clone()],
        ))
    }

    /// `self * other` element-wise, broadcasting; `Err` if the shapes do not broadcast.
    pub fn try_mul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        check_broadcast("mul", self, other)?;
        let data = &*self.data() * &*other.data();
        Ok(Tensor::from_op(
            data,
            MulBackward,
            vec![self.clone(), other.clone()],
        ))
    }

    /// `self / other` element-wise, broadcasting; `Err` if the shapes do not broadcast.
    pub fn try_div(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        check_broadcast("div", self, other)?;
        let data = &*self.data() / &*other.data();
        Ok(Tensor::from_op(
            data,
            DivBackward,
            vec![self.clone(), other.clone()],
        ))
    }

    /// `max(self, other)` element-wise, broadcasting (PyTorch's `torch.maximum`); `Err`
    /// if the shapes do not broadcast. The gradient goes to the larger operand, half to
    /// each at a tie.
    pub fn maximum(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        check_broadcast("maximum", self, other)?;
        let data = maximum_values(&self.data(), &other.data());
        Ok(Tensor::from_op(
            data,
            MaximumBackward,
            vec![self.clone(), other.clone()],
        ))
    }

    /// `-self`.
    pub fn neg(&self) -> Tensor<T> {
        let data = self.data().mapv(|v| -v);
        Tensor::from_op(data, NegBackward, vec![self.clone()])
    }
}

fn expect_ok<T: Float>(result: Result<Tensor<T>>) -> Tensor<T> {
    result.unwrap_or_else(|error| panic!("{error} (use the try_ method to get an Err instead)"))
}

/// Implements `a OP b` for every mix of `Tensor`, `&Tensor` and a scalar `T`.
macro_rules! binary_operator {
    ($trait:ident, $method:ident, $try_method:ident) => {
        impl<T: Float> $trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                expect_ok(self.$try_method(rhs))
            }
        }
        impl<T: Float> $trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                expect_ok(self.$try_method(&rhs))
            }
        }
        impl<T: Float> $trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                expect_ok(self.$try_method(rhs))
            }
        }
        impl<T: Float> $trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                expect_ok(self.$try_method(&rhs))
            }
        }
        impl<T: Float> $trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                expect_ok(self.$try_method(&scalar_constant(rhs)))
            }
        }
        impl<T: Float> $trait<T> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                expect_ok(self.$try_method(&scalar_constant(rhs)))
            }
        }
    };
}

fn scalar_constant<T: Float>(value: T) -> Tensor<T> {
    Tensor::constant(ArrayD::from_elem(IxDyn(&[]), value))
}

binary_operator!(Add, add, try_add);
binary_operator!(Sub, sub, try_sub);
binary_operator!(Mul, mul, try_mul);
binary_operator!(Div, div, try_div);

impl<T: Float> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}

impl<T: Float> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(&self)
    }
}

/// `scalar OP tensor` and `scalar OP &tensor` for the two element types (a blanket impl
/// over `T` is not allowed for a foreign left operand).
macro_rules! scalar_lhs_operators {
    ($($t:ty),*) => {$(
        scalar_lhs_operators!(@op $t, Add, add, try_add);
        scalar_lhs_operators!(@op $t, Sub, sub, try_sub);
        scalar_lhs_operators!(@op $t, Mul, mul, try_mul);
        scalar_lhs_operators!(@op $t, Div, div, try_div);
    )*};
    (@op $t:ty, $trait:ident, $method:ident, $try_method:ident) => {
        impl $trait<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                expect_ok(scalar_constant(self).$try_method(rhs))
            }
        }
        impl $trait<Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: Tensor<$t>) -> Tensor<$t> {
                expect_ok(scalar_constant(self).$try_method(&rhs))
            }
        }
    };
}

scalar_lhs_operators!(f32, f64);

/// `a OP= b`: records `a OP b` and rebinds `a` to the result, as PyTorch does for a
/// tensor that is not a leaf (`c += c + 1` in micrograd). The old node stays in the
/// graph, so gradients still flow through it.
///
/// # Panics
/// On a leaf that requires a gradient (a parameter), as PyTorch raises "a leaf
/// Variable that requires grad is being used in an in-place operation": rebinding it
/// would silently detach the variable from the parameter it named. Write
/// `let y = &x + 1.0;` instead, or change its data with [`Tensor::assign`] (what an
/// optimizer does). Also on shapes that do not broadcast, like `+`.
macro_rules! compound_assignment {
    ($trait:ident, $method:ident, $try_method:ident, $symbol:literal) => {
        impl<T: Float> $trait<&Tensor<T>> for Tensor<T> {
            fn $method(&mut self, rhs: &Tensor<T>) {
                check_rebindable(self, $symbol);
                *self = expect_ok(self.$try_method(rhs));
            }
        }
        impl<T: Float> $trait<Tensor<T>> for Tensor<T> {
            fn $method(&mut self, rhs: Tensor<T>) {
                check_rebindable(self, $symbol);
                *self = expect_ok(self.$try_method(&rhs));
            }
        }
        impl<T: Float> $trait<T> for Tensor<T> {
            fn $method(&mut self, rhs: T) {
                check_rebindable(self, $symbol);
                *self = expect_ok(self.$try_method(&scalar_constant(rhs)));
            }
        }
    };
}

fn check_rebindable<T: Float>(tensor: &Tensor<T>, symbol: &str) {
    if tensor.is_leaf() && tensor.requires_grad() {
        panic!(
            "`{symbol}` on a leaf tensor that requires grad (a parameter, or Tensor::value): \
             PyTorch forbids in-place operations on such leaves; write `let y = &x {op} ...;` \
             instead, or change its data with `assign` as an optimizer does",
            op = symbol.trim_end_matches('=')
        );
    }
}

compound_assignment!(AddAssign, add_assign, try_add, "+=");
compound_assignment!(SubAssign, sub_assign, try_sub, "-=");
compound_assignment!(MulAssign, mul_assign, try_mul, "*=");
compound_assignment!(DivAssign, div_assign, try_div, "/=");
