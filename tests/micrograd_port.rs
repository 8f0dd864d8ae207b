//! micrograd's engine tests (`test/test_engine.py`), ported line by line, and the seed
//! project's ReLU and network tests, in the engine's most natural spelling.
//!
//! micrograd's tests run the same lines on micrograd and on PyTorch and compare. Here
//! the PyTorch side is its printed result (torch 2.15, float64): the expected numbers
//! below are what the Python lines on the right give in PyTorch.

use ndarray::{arr1, arr2};
use nnscratch::Tensor;
use nnscratch::nn::{Linear, Module, ReLU};

#[test]
fn test_sanity_check() -> nnscratch::Result<()> {
    let x = Tensor::value(-4.0); //          x = Value(-4.0)
    let z = 2.0 * &x + 2.0 + &x; //           z = 2 * x + 2 + x
    let q = z.relu() + &z * &x; //            q = z.relu() + z * x
    let h = (&z * &z).relu(); //              h = (z * z).relu()
    let y = h + &q + &q * &x; //              y = h + q + q * x
    y.backward()?; //                         y.backward()

    // PyTorch: y = -20.0, x.grad = 46.0; micrograd asserts exact equality.
    assert_eq!(y.item()?, -20.0);
    assert_eq!(x.grad_value(), Some(46.0));
    Ok(())
}

#[test]
fn test_more_ops() -> nnscratch::Result<()> {
    let a = Tensor::value(-4.0); //          a = Value(-4.0)
    let b = Tensor::value(2.0); //           b = Value(2.0)
    let mut c = &a + &b; //                   c = a + b
    let mut d = &a * &b + b.powi(3); //       d = a * b + b**3
    c += &c + 1.0; //                         c += c + 1
    c += 1.0 + &c + (-&a); //                 c += 1 + c + (-a)
    d += &d * 2.0 + (&b + &a).relu(); //      d += d * 2 + (b + a).relu()
    d += 3.0 * &d + (&b - &a).relu(); //      d += 3 * d + (b - a).relu()
    let e = &c - &d; //                       e = c - d
    let f = e.powi(2); //                     f = e**2
    let mut g = &f / 2.0; //                  g = f / 2.0
    g += 10.0 / &f; //                        g += 10.0 / f
    g.backward()?; //                         g.backward()

    let tol = 1e-6;
    assert!((g.item()? - 24.70408163265306).abs() < tol);
    assert!((a.grad_value().unwrap() - 138.83381924198252).abs() < tol);
    assert!((b.grad_value().unwrap() - 645.5772594752186).abs() < tol);
    // What a learner sees when printing along the way:
    assert_eq!(a.to_string(), "tensor(-4.0, requires_grad=True)");
    assert_eq!(g.grad_fn().as_deref(), Some("AddBackward"));
    assert_eq!(f.grad_fn().as_deref(), Some("PowiBackward"));
    Ok(())
}

/// The seed project's ReLU test: `ReLU().forward(x)`, then the gradient of the sum.
#[test]
fn relu_test() -> nnscratch::Result<()> {
    let x = Tensor::from([[-1.0, 0.5, 0.0, 2.0]]).requires_grad_();
    let y = ReLU.forward(&x)?;
    y.sum().backward()?;
    assert_eq!(y.to_array(), arr2(&[[0.0, 0.5, 0.0, 2.0]]).into_dyn());
    // PyTorch: the derivative is 0 at x = 0.
    assert_eq!(x.grad().unwrap(), arr2(&[[0.0, 1.0, 0.0, 1.0]]).into_dyn());
    assert_eq!(
        y.to_string(),
        "tensor([[0.0000, 0.5000, 0.0000, 2.0000]], grad_fn=<ReluBackward>)"
    );
    Ok(())
}

/// The seed project's network test: `Linear(3, 2)` on `[0, 1, 2]`, a ReLU, the sum;
/// the numbers are PyTorch's for the same weights.
#[test]
fn nn_test() -> nnscratch::Result<()> {
    let layer = Linear::<f64>::from_parameters(
        arr2(&[[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]]),
        arr1(&[0.01, -0.02]),
    )?;
    let y = ReLU.forward(&layer.forward(&Tensor::arange(3))?)?.sum();
    y.backward()?;
    assert!((y.item()? - 0.81).abs() < 1e-15);
    assert_eq!(
        layer.weight.grad().unwrap(),
        arr2(&[[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]).into_dyn()
    );
    assert_eq!(
        layer
            .bias
            .as_ref()
            .expect("Linear::new has a bias")
            .grad()
            .unwrap(),
        arr1(&[1.0, 0.0]).into_dyn()
    );
    Ok(())
}
