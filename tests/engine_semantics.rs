//! What the engine promises beyond single-op numbers: reused values get the sum of their
//! gradients, gradients accumulate across calls, deep graphs do not overflow the stack,
//! detach and no-grad record nothing, and bad shapes are errors that say what is wrong.

use ndarray::{ArrayD, IxDyn, arr1, arr2};
use nnscratch::nn::{LeakyReLU, Linear, Module, ReLU, Sequential, Sigmoid, Tanh};
use nnscratch::optim::Parameters;
use nnscratch::{Error, Tensor};
use rand::SeedableRng;

fn scalar(x: f64) -> Tensor<f64> {
    Tensor::parameter(ArrayD::from_elem(IxDyn(&[]), x))
}

fn grad_of(t: &Tensor<f64>) -> f64 {
    t.grad()
        .expect("a gradient reached this tensor")
        .iter()
        .copied()
        .next()
        .expect("one element")
}

#[test]
fn a_value_used_twice_gets_the_sum_of_both_gradients() {
    // micrograd's early bug: b = a + a must give db/da = 2, not 1.
    let a = scalar(3.0);
    let b = &a + &a;
    b.backward().unwrap();
    assert_eq!(grad_of(&a), 2.0);

    // c = (a + a)^2 = 4a^2  =>  dc/da = 8a = 24.
    let a = scalar(3.0);
    let b = &a + &a;
    let c = &b * &b;
    c.backward().unwrap();
    assert_eq!(c.item().unwrap(), 36.0);
    assert_eq!(grad_of(&b), 12.0);
    assert_eq!(grad_of(&a), 24.0);
}

#[test]
fn a_diamond_is_walked_in_topological_order() {
    // The seed's bug: recursing without a topological order sends a node's gradient
    // to its inputs before all its consumers have contributed.
    // y = (x*2) * (x*3) + x  = 6x^2 + x  =>  dy/dx = 12x + 1 = 25 at x = 2.
    let x = scalar(2.0);
    let p = &x * 2.0;
    let q = &x * 3.0;
    let y = &(&p * &q) + &x;
    y.backward().unwrap();
    assert_eq!(y.item().unwrap(), 26.0);
    assert_eq!(grad_of(&x), 25.0);
    assert_eq!(grad_of(&p), 6.0); // dy/dp = q
    assert_eq!(grad_of(&q), 4.0); // dy/dq = p
}

#[test]
fn a_value_used_three_times_in_a_matrix_expression() {
    // L = sum(W·x + W·x + W·x) = 3·sum(W·x)  =>  dL/dW = 3·[x, x] per row.
    let w = Tensor::parameter(arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn());
    let x = Tensor::new(arr1(&[0.5, -1.0]).into_dyn());
    let wx = w.matmul(&x).unwrap();
    let l = (&(&wx + &wx) + &wx).sum();
    l.backward().unwrap();
    let expected = arr2(&[[1.5, -3.0], [1.5, -3.0]]).into_dyn();
    assert_eq!(w.grad().unwrap(), expected);
}

#[test]
fn gradients_accumulate_across_backward_calls_until_zero_grad() {
    let a = scalar(1.5);
    for calls in 1..=3 {
        (&a * 4.0).backward().unwrap();
        assert_eq!(grad_of(&a), 4.0 * calls as f64);
    }
    a.zero_grad();
    assert!(a.grad().is_none());
    (&a * 4.0).backward().unwrap();
    assert_eq!(grad_of(&a), 4.0);
}

#[test]
fn a_graph_200k_ops_deep_neither_overflows_backward_nor_drop() {
    let x = scalar(1.0);
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = &y * 1.0;
    }
    y.backward().unwrap();
    assert_eq!(grad_of(&x), 1.0);
    drop(y); // a recursive Drop would overflow here
}

#[test]
fn backward_on_a_non_scalar_says_how_to_reduce_it() {
    let x = Tensor::parameter(arr1(&[1.0, 2.0]).into_dyn());
    let y = &x * 2.0;
    let error = y.backward().unwrap_err();
    assert_eq!(error, Error::NonScalarBackward { shape: vec![2] });
    let message = error.to_string();
    assert!(
        message.contains("[2]") && message.contains(".sum()"),
        "{message}"
    );
}

#[test]
fn shape_mismatches_name_the_op_and_both_shapes() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let b = Tensor::<f64>::zeros(&[3, 2]);
    let message = a.try_add(&b).unwrap_err().to_string();
    assert!(
        message.starts_with("add: cannot combine shapes [2, 3] and [3, 2]"),
        "{message}"
    );

    let message = a.matmul(&a).unwrap_err().to_string();
    assert!(
        message.contains("matmul") && message.contains("(3)") && message.contains("(2)"),
        "{message}"
    );

    let message = a.sum_axis(2).unwrap_err().to_string();
    assert_eq!(
        message,
        "sum_axis: axis 2 is out of range for a tensor of shape [2, 3]"
    );

    let message = a.cross_entropy(&[0, 3]).unwrap_err().to_string();
    assert!(
        message.contains("target 3 at row 1") && message.contains("below 3"),
        "{message}"
    );

    let message = a.mse_loss(&b).unwrap_err().to_string();
    assert!(
        message.contains("mse_loss") && message.contains("same shape"),
        "{message}"
    );
}

#[test]
#[should_panic(expected = "mul: cannot combine shapes [2] and [3]")]
fn operators_panic_with_the_same_message_as_try() {
    let _ = Tensor::<f64>::zeros(&[2]) * Tensor::zeros(&[3]);
}

#[test]
fn detach_shares_the_value_but_records_nothing() {
    let w = Tensor::parameter(arr1(&[1.0, 2.0]).into_dyn());
    let d = w.detach();
    assert!(!d.requires_grad());
    let y = (&d * 3.0).sum();
    assert!(y.is_leaf() && !y.requires_grad(), "nothing recorded");
    assert!(
        y.backward().is_ok(),
        "backward on an unrecorded scalar is a no-op"
    );
    assert!(w.grad().is_none());
    w.data_mut()[0] = 10.0;
    assert_eq!(d.data()[0], 10.0, "detach shares storage, as in PyTorch");
}

#[test]
fn forward_no_grad_evaluates_without_recording() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let model = Sequential::<f64>::new([Linear(3, 4), Tanh, Linear(4, 2)], &mut rng).unwrap();
    let x = Tensor::new(arr2(&[[0.1, 0.2, 0.3]]).into_dyn());
    let recorded = model.forward(&x).unwrap();
    let free = model.forward_no_grad(&x).unwrap();
    assert_eq!(recorded.to_array(), free.to_array());
    assert!(recorded.requires_grad() && !recorded.is_leaf());
    assert!(free.is_leaf() && !free.requires_grad());
}

#[test]
fn the_seeds_readme_usage_reads_naturally() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Sequential::<f32>::new(
        [Linear(10, 30), ReLU, Linear(30, 30), ReLU, Linear(30, 1)],
        &mut rng,
    )
    .unwrap();
    let y = model.forward(&Tensor::arange(10)).unwrap();
    assert_eq!(y.shape(), [1]);
    y.backward().unwrap();
    for (name, p) in model.named_parameters() {
        let grad = p.grad().unwrap_or_else(|| panic!("{name} has no gradient"));
        assert_eq!(grad.shape(), p.shape().as_slice(), "{name}");
    }
    // dy/d(4.bias) = 1 for the single output.
    assert_eq!(model.named_parameters()[5].1.grad().unwrap()[[0]], 1.0);
}

#[test]
fn sequential_checks_the_widths_between_layers() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let error = Sequential::<f32>::new([Linear(10, 30), ReLU, Linear(20, 1)], &mut rng)
        .err()
        .expect("30 != 20");
    let message = error.to_string();
    assert!(
        message.contains("layer 2")
            && message.contains("in_features = 30")
            && message.contains("layer 0"),
        "{message}"
    );

    let error = Sequential::<f32>::new([Linear(0, 3)], &mut rng)
        .err()
        .expect("zero width");
    assert!(error.to_string().contains("in_features"), "{error}");
}

#[test]
fn linear_rejects_a_wrong_input_width_with_its_own_name() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let layer = Linear::<f64>::new(4, 2, &mut rng).unwrap();
    let message = layer
        .forward(&Tensor::zeros(&[5, 3]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "Linear(in_features=4, out_features=2, bias=True): expected an input of shape [4], [batch, 4] or [..., 4] (any leading dimensions), found shape [5, 3]"
    );
}

#[test]
fn linear_initialisation_follows_pytorch_bounds() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let layer = Linear::<f64>::new(16, 200, &mut rng).unwrap();
    let bound = 1.0 / 4.0; // 1/sqrt(16)
    for t in [
        &layer.weight,
        layer.bias.as_ref().expect("Linear::new has a bias"),
    ] {
        let data = t.data();
        assert!(data.iter().all(|v| v.abs() <= bound));
        // 3200 + 200 draws from U(-1/4, 1/4) reach close to both ends.
        let max = data.iter().fold(f64::MIN, |m, &v| m.max(v));
        let min = data.iter().fold(f64::MAX, |m, &v| m.min(v));
        assert!(max > 0.9 * bound && min < -0.9 * bound, "{min} {max}");
    }
    let mean = layer.weight.data().mean().unwrap();
    assert!(mean.abs() < 0.02, "mean {mean}");
    // Same seed, same weights.
    let again = Linear::<f64>::new(16, 200, &mut rand::rngs::StdRng::seed_from_u64(42)).unwrap();
    assert_eq!(layer.weight.to_array(), again.weight.to_array());
}

#[test]
fn state_dict_names_follow_nn_sequential() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut model = Sequential::<f32>::new(
        [
            Linear(2, 3),
            LeakyReLU(0.2),
            Linear(3, 3),
            Sigmoid,
            Linear(3, 1),
        ],
        &mut rng,
    )
    .unwrap();
    let shapes = model.parameter_shapes();
    let expected: Vec<(String, Vec<usize>)> = vec![
        ("0.weight".into(), vec![3, 2]),
        ("0.bias".into(), vec![3]),
        ("2.weight".into(), vec![3, 3]),
        ("2.bias".into(), vec![3]),
        ("4.weight".into(), vec![1, 3]),
        ("4.bias".into(), vec![1]),
    ];
    assert_eq!(shapes, expected);
    assert_eq!(model.num_parameters(), 9 + 12 + 4);
    assert_eq!(
        model.to_string(),
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): LeakyReLU(negative_slope=0.2)\n  \
         (2): Linear(in_features=3, out_features=3, bias=True)\n  (3): Sigmoid()\n  \
         (4): Linear(in_features=3, out_features=1, bias=True)\n)"
    );
}

#[test]
fn optimizers_refuse_a_model_they_were_not_built_for() {
    use nnscratch::optim::{Optimizer, Sgd};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut a = Sequential::<f64>::new([Linear(2, 2)], &mut rng).unwrap();
    let mut b = Sequential::<f64>::new([Linear(2, 3)], &mut rng).unwrap();
    let mut sgd = Sgd::new(0.1).momentum(0.9);
    a.forward(&Tensor::zeros(&[1, 2]))
        .unwrap()
        .sum()
        .backward()
        .unwrap();
    sgd.step(&mut a).unwrap();
    let before = b.named_parameters()[0].1.to_array();
    let error = sgd.step(&mut b).unwrap_err();
    assert!(error.to_string().contains("optimizer step"), "{error}");
    assert_eq!(
        b.named_parameters()[0].1.to_array(),
        before,
        "nothing changed"
    );

    let mut bad = Sgd::<f64>::new(-1.0);
    assert!(
        bad.step(&mut a)
            .unwrap_err()
            .to_string()
            .contains("learning rate")
    );
    let mut bad = Sgd::<f64>::new(0.1).nesterov(true);
    assert!(
        bad.step(&mut a).is_err(),
        "nesterov needs momentum, as in PyTorch"
    );
}

#[test]
fn softplus_layers_check_their_arguments_and_print_as_pytorch() {
    use nnscratch::nn::{LayerSpec, Softplus};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Sequential::<f64>::new(
        [
            nnscratch::nn::Linear(2, 3),
            LayerSpec::softplus(),
            Softplus(2.0, 1.0),
        ],
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        model.to_string(),
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  \
         (1): Softplus(beta=1.0, threshold=20.0)\n  (2): Softplus(beta=2.0, threshold=1.0)\n)"
    );
    for (beta, threshold) in [
        (0.0, 20.0),
        (-1.0, 20.0),
        (f64::NAN, 20.0),
        (1.0, f64::INFINITY),
    ] {
        let error = Sequential::<f64>::new([Softplus(beta, threshold)], &mut rng)
            .err()
            .expect("rejected");
        assert!(error.to_string().contains("beta"), "{error}");
    }
    // Standalone, as a Module; forward_no_grad records nothing.
    let layer = Softplus::<f64>::new(1.0, 20.0).unwrap();
    let x = nnscratch::Tensor::parameter(ndarray::arr1(&[-1.0, 0.0, 25.0]).into_dyn());
    let y = layer.forward_no_grad(&x).unwrap();
    assert!(!y.requires_grad());
    assert_eq!(y.to_array()[2], 25.0);
}

/// Every mix of `Tensor`, `&Tensor` and a number on either side of `+ - * /` compiles
/// and records the op, as micrograd's `2 * x` and `x * 2` both work.
#[test]
fn operators_take_owned_borrowed_and_number_operands_on_either_side() {
    let x = || Tensor::value(3.0);
    let y = || Tensor::value(2.0);
    let (a, b) = (x(), y());
    let results = [
        (&a + &b).item().unwrap(),
        (x() + y()).item().unwrap(),
        (x() + &b).item().unwrap(),
        (&a + y()).item().unwrap(),
        (&a + 1.0).item().unwrap(),
        (x() + 1.0).item().unwrap(),
        (1.0 + &a).item().unwrap(),
        (1.0 + x()).item().unwrap(),
    ];
    assert_eq!(results, [5.0, 5.0, 5.0, 5.0, 4.0, 4.0, 4.0, 4.0]);
    assert_eq!((x() - y()).item().unwrap(), 1.0);
    assert_eq!((10.0 - x()).item().unwrap(), 7.0);
    assert_eq!((2.0 * x()).item().unwrap(), 6.0);
    assert_eq!((x() * &b).item().unwrap(), 6.0);
    assert_eq!((6.0 / x()).item().unwrap(), 2.0);
    assert_eq!((&a / y()).item().unwrap(), 1.5);
    let z = 2.0f32 * Tensor::from(1.5f32).requires_grad_();
    assert_eq!(z.item().unwrap(), 3.0);
}

#[test]
fn compound_assignment_records_the_op_and_rebinds_the_handle() {
    let a = Tensor::value(-4.0);
    let mut c = &a * 2.0; // not a leaf
    let before = c.clone();
    c += &c + 1.0; // c = c + (c + 1)
    c -= 1.0;
    c *= &a;
    c /= 2.0;
    c.backward().unwrap();
    // c = ((2a + (2a + 1)) - 1)·a / 2 = 2a²: dc/da = 4a = -16
    assert_eq!(c.item().unwrap(), 32.0);
    assert_eq!(a.grad_value(), Some(-16.0));
    assert!(
        !c.same_node(&before),
        "+= rebinds, it does not write into the old node"
    );
    assert_eq!(before.item().unwrap(), -8.0);
    // On values that track nothing, it is plain arithmetic.
    let mut plain = Tensor::from([1.0, 2.0]);
    plain += 1.0;
    assert_eq!(plain.to_array(), arr1(&[2.0, 3.0]).into_dyn());
}

#[test]
#[should_panic(expected = "leaf tensor that requires grad")]
fn compound_assignment_on_a_parameter_panics_as_pytorch_raises() {
    let mut w = Tensor::value(1.0);
    w += 1.0;
}

#[test]
fn tensors_print_as_pytorch_prints_them() {
    let x = Tensor::from([[1.0, 2.0]]).requires_grad_();
    assert_eq!(x.to_string(), "tensor([[1.0, 2.0]], requires_grad=True)");
    assert_eq!(
        (&x + 1.0).to_string(),
        "tensor([[2.0, 3.0]], grad_fn=<AddBackward>)"
    );
    let m = Tensor::from([[1.0, 2.5], [-3.0, 4.0]]);
    assert_eq!(
        m.to_string(),
        "tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]])"
    );
    assert_eq!(
        Tensor::from([0.1, 2.0]).to_string(),
        "tensor([0.1000, 2.0000])"
    );
    assert_eq!(
        format!("{:.2}", Tensor::from([0.123, 2.0])),
        "tensor([0.12, 2.00])"
    );
    assert_eq!(
        Tensor::from([1e-6, 1.0]).to_string(),
        "tensor([1.0000e-06, 1.0000e+00])"
    );
    assert_eq!(Tensor::<f64>::scalar(f64::NAN).to_string(), "tensor(nan)");
    // Large tensors are summarised, three entries at each end.
    let big = Tensor::from(ndarray::Array1::from_shape_fn(2000, |i| i as f64));
    assert_eq!(
        big.to_string(),
        "tensor([   0.0,    1.0,    2.0, ..., 1997.0, 1998.0, 1999.0])"
    );
    // grad_fn names, as PyTorch spells them (without its trailing 0).
    let v = Tensor::value(0.5);
    let names: Vec<String> = [
        v.tanh(),
        v.leaky_relu(0.1),
        &v - 1.0,
        v.powi(2),
        v.clamp(0.0, 1.0),
    ]
    .iter()
    .map(|t| t.grad_fn().unwrap())
    .collect();
    assert_eq!(
        names,
        [
            "TanhBackward",
            "LeakyReluBackward",
            "SubBackward",
            "PowiBackward",
            "ClampBackward"
        ]
    );
    assert_eq!(v.grad_fn(), None);
}

#[test]
fn the_new_activation_layers_print_as_pytorch_and_check_their_arguments() {
    use nnscratch::nn::{ELU, GELU, Identity, SiLU};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Sequential::<f64>::new(
        [
            Linear(2, 3),
            GELU("none"),
            GELU("tanh"),
            SiLU,
            ELU(0.5),
            Identity,
        ],
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        model.to_string(),
        "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  \
         (1): GELU(approximate='none')\n  (2): GELU(approximate='tanh')\n  (3): SiLU()\n  \
         (4): ELU(alpha=0.5)\n  (5): Identity()\n)"
    );
    let error = Sequential::<f64>::new([GELU("fast")], &mut rng)
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("\"none\" or \"tanh\""),
        "{error}"
    );
    let error = Sequential::<f64>::new([ELU(f64::NAN)], &mut rng)
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("Sequential layer 0: ELU"),
        "{error}"
    );
    // Standalone modules; Identity returns its input itself, as PyTorch's.
    let x = Tensor::from([-1.0f64, 0.0, 2.0]).requires_grad_();
    assert!(Identity.forward(&x).unwrap().same_node(&x));
    let y = GELU("none").forward(&x).unwrap();
    assert_eq!(y.to_array()[1], 0.0);
    assert!((y.to_array()[2] - 2.0 * 0.977_249_868_051_820_8).abs() < 1e-15);
}
