//! Every op's gradient against central finite differences, in f64, on random shapes and
//! values (proptest). The objective is `L = Σ y ⊙ u` for a random upstream `u`, so the
//! whole vector-Jacobian product is checked, not only its sum.

use ndarray::{ArrayD, IxDyn};
use nnscratch::kernels::ValueLoss;
use nnscratch::nn::{BatchNorm1d, LayerNorm, Module};
use nnscratch::{Reduction, Tensor};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};

/// Step of the central difference; its truncation error is O(h²) ≈ 1e-12 and its rounding
/// error O(ε/h) ≈ 1e-10, far below the tolerance.
const H: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

/// Compares `backward()` with `(L(x + h) - L(x - h)) / 2h` for every element of every input.
fn check(name: &str, inputs: &[ArrayD<f64>], seed: u64, f: impl Fn(&[Tensor<f64>]) -> Tensor<f64>) {
    let xs: Vec<Tensor<f64>> = inputs
        .iter()
        .map(|a| Tensor::parameter(a.clone()))
        .collect();
    let y = f(&xs);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let upstream = ArrayD::from_shape_simple_fn(y.data().raw_dim(), || rng.random_range(-1.0..1.0));
    y.backward_with_grad(upstream.clone())
        .expect("upstream has the output's shape");

    let objective = |values: &[ArrayD<f64>]| -> f64 {
        let leaves: Vec<Tensor<f64>> = values.iter().map(|a| Tensor::new(a.clone())).collect();
        let out = f(&leaves).to_array();
        out.iter().zip(&upstream).map(|(y, u)| y * u).sum()
    };
    for (i, x) in xs.iter().enumerate() {
        let analytic = x
            .grad()
            .unwrap_or_else(|| ArrayD::zeros(x.data().raw_dim()));
        for (j, &g) in analytic.iter().enumerate() {
            let mut plus = inputs.to_vec();
            let mut minus = inputs.to_vec();
            plus[i].as_slice_mut().expect("standard layout")[j] += H;
            minus[i].as_slice_mut().expect("standard layout")[j] -= H;
            let numeric = (objective(&plus) - objective(&minus)) / (2.0 * H);
            let error = (g - numeric).abs() / numeric.abs().max(1.0);
            assert!(
                error <= TOLERANCE,
                "{name}: d/d input {i}[{j}]: backward {g}, finite differences {numeric} (error {error:e})"
            );
        }
    }
}

/// A matrix shape of 1 to 4 rows and columns.
fn shape() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=4, 1usize..=4)
}

/// An array of the given shape with values in `range`, at least `gap` away from 0.
fn values(dims: Vec<usize>, low: f64, high: f64, gap: f64) -> impl Strategy<Value = ArrayD<f64>> {
    let n = dims.iter().product::<usize>();
    prop::collection::vec(low..high, n).prop_map(move |v| {
        let v = v.into_iter().map(|x| {
            if x.abs() < gap {
                x.signum() * gap + x
            } else {
                x
            }
        });
        ArrayD::from_shape_vec(IxDyn(&dims), v.collect()).expect("length is the product")
    })
}

/// Two operands of a binary op, in one of the broadcasting layouts a bias needs:
/// same shape, scalar, row `[1,n]`, column `[m,1]`, vector `[n]` (either side).
fn broadcast_pair(
    low: f64,
    high: f64,
    gap: f64,
) -> impl Strategy<Value = (ArrayD<f64>, ArrayD<f64>)> {
    (shape(), 0usize..6).prop_flat_map(move |((m, n), layout)| {
        let (a, b) = match layout {
            0 => (vec![m, n], vec![m, n]),
            1 => (vec![m, n], vec![]),
            2 => (vec![m, n], vec![1, n]),
            3 => (vec![m, n], vec![m, 1]),
            4 => (vec![m, n], vec![n]),
            _ => (vec![n], vec![m, n]),
        };
        (values(a, -2.0, 2.0, 0.0), values(b, low, high, gap))
    })
}

fn matrix(low: f64, high: f64, gap: f64) -> impl Strategy<Value = ArrayD<f64>> {
    shape().prop_flat_map(move |(m, n)| values(vec![m, n], low, high, gap))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn add_with_broadcasting((a, b) in broadcast_pair(-2.0, 2.0, 0.0), seed: u64) {
        check("add", &[a, b], seed, |x| &x[0] + &x[1]);
    }

    #[test]
    fn sub_with_broadcasting((a, b) in broadcast_pair(-2.0, 2.0, 0.0), seed: u64) {
        check("sub", &[a, b], seed, |x| &x[0] - &x[1]);
    }

    #[test]
    fn mul_with_broadcasting((a, b) in broadcast_pair(-2.0, 2.0, 0.0), seed: u64) {
        check("mul", &[a, b], seed, |x| &x[0] * &x[1]);
    }

    #[test]
    fn div_with_broadcasting((a, b) in broadcast_pair(0.5, 2.0, 0.5), seed: u64) {
        check("div", &[a, b], seed, |x| &x[0] / &x[1]);
    }

    #[test]
    fn neg(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        check("neg", &[a], seed, |x| -&x[0]);
    }

    #[test]
    fn matmul_every_rank_combination(
        (m, k, n) in (1usize..=4, 1usize..=4, 1usize..=4),
        ranks in (1usize..=2, 1usize..=2),
        seed: u64,
    ) {
        let left = if ranks.0 == 2 { vec![m, k] } else { vec![k] };
        let right = if ranks.1 == 2 { vec![k, n] } else { vec![k] };
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
        let mut draw = |dims: Vec<usize>| ArrayD::from_shape_simple_fn(IxDyn(&dims), || rng.random_range(-2.0..2.0));
        let (a, b) = (draw(left), draw(right));
        check("matmul", &[a, b], seed, |x| x[0].matmul(&x[1]).expect("inner dimensions agree"));
    }

    #[test]
    fn transpose(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        check("transpose", &[a], seed, |x| x[0].t());
    }

    #[test]
    fn sum_and_mean(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        check("sum", std::slice::from_ref(&a), seed, |x| x[0].sum());
        check("mean", &[a], seed, |x| x[0].mean());
    }

    #[test]
    fn sum_and_mean_along_an_axis(a in matrix(-2.0, 2.0, 0.0), axis in 0usize..2, seed: u64) {
        check("sum_axis", std::slice::from_ref(&a), seed, |x| x[0].sum_axis(axis).expect("axis < 2"));
        check("mean_axis", &[a], seed, |x| x[0].mean_axis(axis).expect("axis < 2"));
    }

    #[test]
    fn exp(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        check("exp", &[a], seed, |x| x[0].exp());
    }

    #[test]
    fn ln(a in matrix(0.3, 3.0, 0.0), seed: u64) {
        check("ln", &[a], seed, |x| x[0].ln());
    }

    #[test]
    fn powf(a in matrix(0.3, 3.0, 0.0), p in -2.0f64..3.0, seed: u64) {
        check("powf", &[a], seed, |x| x[0].powf(p));
    }

    #[test]
    fn relu(a in matrix(-2.0, 2.0, 0.01), seed: u64) {
        check("relu", &[a], seed, |x| x[0].relu());
    }

    #[test]
    fn leaky_relu(a in matrix(-2.0, 2.0, 0.01), slope in 0.0f64..0.5, seed: u64) {
        check("leaky_relu", &[a], seed, |x| x[0].leaky_relu(slope));
    }

    #[test]
    fn sigmoid(a in matrix(-4.0, 4.0, 0.0), seed: u64) {
        check("sigmoid", &[a], seed, |x| x[0].sigmoid());
    }

    #[test]
    fn tanh(a in matrix(-3.0, 3.0, 0.0), seed: u64) {
        check("tanh", &[a], seed, |x| x[0].tanh());
    }

    #[test]
    fn maximum_with_broadcasting((a, b) in broadcast_pair(-2.0, 2.0, 0.0), seed: u64) {
        // Random values never tie (a tie, where the maximum has a kink, is in the
        // PyTorch fixtures: half the gradient to each side).
        check("maximum", &[a, b], seed, |x| x[0].maximum(&x[1]).expect("shapes broadcast"));
    }

    #[test]
    fn square(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        check("square", &[a], seed, |x| x[0].square());
    }

    #[test]
    fn powi(a in matrix(-2.0, 2.0, 0.3), n in -3i32..5, seed: u64) {
        check("powi", &[a], seed, |x| x[0].powi(n));
    }

    #[test]
    fn abs(a in matrix(-2.0, 2.0, 0.01), seed: u64) {
        check("abs", &[a], seed, |x| x[0].abs());
    }

    #[test]
    fn clamp(a in matrix(-2.0, 2.0, 0.0), low in -1.5f64..0.0, width in 0.1f64..2.0, seed: u64) {
        check("clamp", &[a], seed, |x| x[0].clamp(low, low + width));
    }

    #[test]
    fn gelu_exact_and_tanh(a in matrix(-4.0, 4.0, 0.0), tanh: bool, seed: u64) {
        check("gelu", &[a], seed, |x| x[0].gelu(tanh));
    }

    #[test]
    fn silu(a in matrix(-4.0, 4.0, 0.0), seed: u64) {
        check("silu", &[a], seed, |x| x[0].silu());
    }

    #[test]
    fn elu(a in matrix(-3.0, 3.0, 0.01), alpha in 0.1f64..2.0, seed: u64) {
        check("elu", &[a], seed, |x| x[0].elu(alpha));
    }

    #[test]
    fn leaky_relu_with_a_negative_slope(a in matrix(-2.0, 2.0, 0.01), slope in -1.0f64..0.0, seed: u64) {
        check("leaky_relu", &[a], seed, |x| x[0].leaky_relu(slope));
    }

    #[test]
    fn softplus(a in matrix(-4.0, 4.0, 0.0), beta in 0.5f64..3.0, seed: u64) {
        // PyTorch's threshold 20 lies beyond these inputs: the curve is smooth here.
        check("softplus", &[a], seed, |x| x[0].softplus(beta, 20.0));
    }

    #[test]
    fn softmax_and_log_softmax(a in matrix(-3.0, 3.0, 0.0), seed: u64) {
        check("softmax", std::slice::from_ref(&a), seed, |x| x[0].softmax());
        check("log_softmax", &[a], seed, |x| x[0].log_softmax());
    }

    #[test]
    fn mse_loss(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        let target = a.mapv(|v| (v * 1.7).sin());
        check("mse_loss", &[a, target], seed, |x| x[0].mse_loss(&x[1]).expect("same shapes"));
    }

    #[test]
    fn l1_smooth_l1_and_huber_losses(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        // Differences y - t kept away from the kinks (0, and ±beta, ±delta = ±1): each
        // element sits in the quadratic or the linear part, by a margin.
        let offsets = [0.3, -1.6, 0.7, -0.4, 2.1, -0.55, 1.35, -2.4];
        let target = ArrayD::from_shape_vec(
            a.raw_dim(),
            a.iter().zip(offsets.iter().cycle()).map(|(v, o)| v - o).collect(),
        )
        .expect("same size");
        let pair = [a, target];
        check("l1_loss", &pair, seed, |x| x[0].l1_loss(&x[1]).expect("same shapes"));
        check("smooth_l1_loss", &pair, seed, |x| x[0].smooth_l1_loss(&x[1], 1.0).expect("same shapes"));
        check("huber_loss", &pair, seed, |x| x[0].huber_loss(&x[1], 1.0).expect("same shapes"));
        check("l1_loss sum", &pair, seed, |x| {
            x[0].value_loss(&x[1], ValueLoss::L1, Reduction::Sum).expect("same shapes")
        });
    }

    #[test]
    fn bce_with_logits(a in matrix(-4.0, 4.0, 0.0), seed: u64) {
        let target = a.mapv(|v| 0.5 + 0.45 * (v * 2.3).sin());
        check("binary_cross_entropy_with_logits", &[a, target], seed, |x| {
            x[0].binary_cross_entropy_with_logits(&x[1]).expect("same shapes")
        });
    }

    #[test]
    fn batch_norm_and_layer_norm_in_training_mode(a in matrix(-2.0, 2.0, 0.0), seed: u64) {
        // The layers are composed of elementary ops; their input gradient goes through
        // the batch's (or the row's) mean and variance.
        let rows = a.shape()[0];
        let features = a.shape()[1];
        let bn = BatchNorm1d::<f64>::new(features).expect("features >= 1");
        let ln = LayerNorm::<f64>::new(features).expect("features >= 1");
        if rows >= 2 {
            check("batch_norm", std::slice::from_ref(&a), seed, |x| bn.forward(&x[0]).expect("shape"));
        }
        check("layer_norm", &[a], seed, |x| ln.forward(&x[0]).expect("shape"));
    }

    #[test]
    fn conv2d_on_random_geometries(
        (n, groups, cg, og) in (1usize..3, 1usize..3, 1usize..3, 1usize..3),
        (h, w, kh, kw) in (3usize..7, 3usize..7, 1usize..4, 1usize..4),
        (stride, padding, dilation) in ((1usize..3, 1usize..3), (0usize..2, 0usize..2), (1usize..3, 1usize..3)),
        seed: u64,
    ) {
        let (c_in, c_out) = (groups * cg, groups * og);
        let fits = |size: usize, k: usize, p: usize, d: usize| size + 2 * p > d * (k - 1);
        prop_assume!(fits(h, kh, padding.0, dilation.0) && fits(w, kw, padding.1, dilation.1));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut random = |shape: &[usize]| {
            ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0..1.0))
        };
        let inputs = [random(&[n, c_in, h, w]), random(&[c_out, cg, kh, kw]), random(&[c_out])];
        check("conv2d", &inputs, seed, |x| {
            x[0].conv2d(&x[1], Some(&x[2]), stride, padding, dilation, groups).expect("geometry fits")
        });
    }

    #[test]
    fn conv1d_pooling_and_shape_ops(
        (n, c, l) in (1usize..3, 1usize..4, 4usize..9),
        (k, stride) in (1usize..4, 1usize..3),
        seed: u64,
    ) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut random = |shape: &[usize]| {
            ArrayD::from_shape_simple_fn(IxDyn(shape), || rng.random_range(-1.0..1.0))
        };
        let conv = [random(&[n, c, l]), random(&[2, c, k])];
        check("conv1d", &conv, seed, |x| x[0].conv1d(&x[1], None, stride, 1, 1, 1).expect("fits"));
        // Distinct values, so that no window has a tie for its maximum.
        let image = ArrayD::from_shape_fn(IxDyn(&[n, c, l, l]), |i| {
            let flat = ((i[0] * c + i[1]) * l + i[2]) * l + i[3];
            ((flat * 37 % 101) as f64) / 50.0 - 1.0
        });
        check("max_pool2d", std::slice::from_ref(&image), seed, |x| {
            x[0].max_pool2d((2, 2), (stride, stride), (1, 1)).expect("fits")
        });
        check("avg_pool2d", std::slice::from_ref(&image), seed, |x| {
            x[0].avg_pool2d((3, 2), (stride, 1), (1, 0)).expect("fits")
        });
        check("reshape, permute, flatten", std::slice::from_ref(&image), seed, |x| {
            x[0].permute(&[0, 2, 3, 1])
                .and_then(|y| y.flatten(1, 2))
                .and_then(|y| y.reshape(&[-1, c as isize]))
                .and_then(|y| y.sum_dims(&[0], true))
                .expect("shapes")
        });
        let batch = [random(&[n, 3, 4]), random(&[4, 2])];
        check("batched matmul", &batch, seed, |x| x[0].matmul(&x[1]).expect("shapes"));
    }

    #[test]
    fn cross_entropy(a in matrix(-3.0, 3.0, 0.0), seed: u64) {
        let (rows, classes) = (a.shape()[0], a.shape()[1]);
        let targets: Vec<usize> = (0..rows).map(|r| (r * 7 + seed as usize) % classes).collect();
        check("cross_entropy", &[a], seed, |x| x[0].cross_entropy(&targets).expect("valid targets"));
    }

    #[test]
    fn a_small_mlp_end_to_end(
        x in values(vec![3, 2], -1.0, 1.0, 0.0),
        w1 in values(vec![4, 2], -1.0, 1.0, 0.0),
        w2 in values(vec![1, 4], -1.0, 1.0, 0.0),
        seed: u64,
    ) {
        let target = ArrayD::from_shape_vec(IxDyn(&[3, 1]), vec![0.5, -0.5, 0.25]).expect("3 values");
        check("mlp", &[x, w1, w2], seed, |p| {
            let h = p[0].matmul(&p[1].t()).expect("widths").tanh();
            let y = h.matmul(&p[2].t()).expect("widths").sigmoid();
            y.mse_loss(&Tensor::new(target.clone())).expect("shapes")
        });
    }
}
