//! Names a user may pick that once collided with names the macro generated.
use nnscratch::model;
use nnscratch::optim::Parameters;

// Values named like generated buffers: `d_h` (the gradient buffer of `h`), `input` and
// `gemm` (fixed workspace fields); statements `a` (two Linears: `a.0`, `a.1`) and `a_0`.
model! {
    pub struct Clashes {
        x = input(4);
        h = Tanh(Linear(x, 8));
        d_h = Linear(h, 8) + h;
        input = Tanh(d_h);
        gemm = input * h;
        a = Linear(Tanh(Linear(gemm, 6)), 6);
        a_0 = Linear(a, 2);
        loss = MSELoss(a_0);
    }
}

// Values named like the locals of the generated `run` (which binds every buffer by
// name beside the parameters): `target`, `backward`, `ws`, `kernels`, `training`,
// `buffers`, `grad`, `Write`; and a value named like a parameter field (`weight_0`).
model! {
    pub struct Locals {
        inp = input(3);
        target = Tanh(Linear(inp, 4));
        backward = ReLU(target);
        ws = target + backward;
        kernels = Linear(ws, 4);
        training = Sigmoid(kernels);
        buffers = training * ws;
        grad = Linear(buffers, 4);
        weight_0 = Tanh(grad);
        Write = Linear(weight_0, 2);
        loss = MSELoss(Write);
    }
}

// A user's own `NetGrad` and `NetWorkspace` beside a model `Net`.
#[derive(Debug)]
pub struct NetGrad;
#[allow(dead_code)]
pub struct NetWorkspace(u8);

model! {
    pub struct Net {
        input: 3,
        Linear(2),
        loss: MSELoss,
    }
}

// Attributes: `#[cfg]` applies to everything the model generates.
model! {
    #[cfg(all())]
    /// Compiled in.
    #[derive(Clone)]
    pub struct Enabled {
        input: 2,
        Linear(1),
        loss: MSELoss,
    }
}

model! {
    #[cfg(any())]
    pub struct Disabled {
        input: 2,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {
    let mut rng = <nnscratch::rand::rngs::StdRng as nnscratch::rand::SeedableRng>::seed_from_u64(0);
    let mut model = Clashes::<f64>::new(&mut rng);
    let names: Vec<String> = model.parameter_shapes().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["h.weight", "h.bias", "d_h.weight", "d_h.bias", "a.0.weight", "a.0.bias", "a.1.weight", "a.1.bias", "a_0.weight", "a_0.bias"]
    );
    let x = nnscratch::ndarray::Array2::from_elem((5, 4), 0.5);
    let target = nnscratch::ndarray::Array2::zeros((5, 2));
    let loss = model.loss_backward(x.view(), target.view()).unwrap();
    assert!(loss.is_finite());
    let report = nnscratch::check::gradients(&mut model, x.view(), nnscratch::compiled::Target::Values(target.view())).unwrap();
    assert!(report.max_dynamic_error() < 1e-12, "{report}");
    assert!(report.max_finite_difference_error() < 1e-6, "{report}");

    let mut locals = Locals::<f64>::new(&mut rng);
    let x = nnscratch::ndarray::Array2::from_elem((3, 3), 0.25);
    let target = nnscratch::ndarray::Array2::zeros((3, 2));
    let report = nnscratch::check::gradients(&mut locals, x.view(), nnscratch::compiled::Target::Values(target.view())).unwrap();
    assert!(report.max_dynamic_error() < 1e-12, "{report}");

    let _: NetGrad = NetGrad;
    let mut net = Net::<f32>::new(&mut rng);
    assert_eq!(net.parameter("0.weight").unwrap().shape(), &[2, 3]);
    let enabled = Enabled::<f32>::new(&mut rng);
    let _copy = enabled.clone();
}
