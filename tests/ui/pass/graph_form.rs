use nnscratch::model;
use nnscratch::optim::Parameters;
use rand::SeedableRng;

model! {
    /// Skip connection, fan-out, `+` and `*`, every activation.
    pub struct Wiring {
        x = input(4);
        h = Tanh(Linear(x, 16));
        g = Sigmoid(Linear(h, 16)) * h;
        r = ReLU(Linear(g + h, 4)) + x;
        l = LeakyReLU(r, 0.3) + LeakyReLU(r) + Softplus(r, 2, threshold = 5.0);
        out = Linear(l, 3);
        loss = CrossEntropyLoss(out);
    }
}

model! {
    pub(crate) struct Fitter {
        input = input(1);
        hidden = Tanh(Linear(input, 8));
        prediction = Linear(hidden, 1);
        loss = MSELoss(prediction);
    }
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut wiring = Wiring::<f32>::new(&mut rng);
    let x = ndarray::Array2::<f32>::ones((3, 4));
    wiring.loss_backward(x.view(), &[0, 1, 2]).unwrap();
    assert_eq!(wiring.gradient("h.weight").unwrap().shape(), &[16, 4]);

    let mut fitter = Fitter::<f64>::new(&mut rng);
    let x = ndarray::Array2::<f64>::ones((5, 1));
    let y = fitter.forward(x.view()).unwrap();
    assert_eq!(y.dim(), (5, 1));
}
