use nnscratch::model;

model! {
    /// Fits y = sin(x).
    pub struct SineNet {
        input: 1,
        Linear(8), Tanh,
        Linear(8, 8), Tanh,
        Linear(1),
        loss: MSELoss,
    }
}

model! {
    pub struct Skip {
        x = input(4);
        h = Tanh(Linear(x, 16));
        y = Linear(h, 4) + x;
        out = Linear(Sigmoid(y), 1);
        loss = MSELoss(out);
    }
}

#[test]
fn smoke() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut m = SineNet::<f64>::new(&mut rng);
    let x = ndarray::Array2::from_shape_fn((5, 1), |(i, _)| i as f64 * 0.3);
    let t = x.mapv(f64::sin);
    let l = m.loss_backward(x.view(), t.view()).unwrap();
    println!("{l}\n{}", SineNet::<f64>::BACKWARD_EQUATIONS);
    let mut s = Skip::<f64>::new(&mut rng);
    let x = ndarray::Array2::from_shape_fn((5, 4), |(i, j)| (i + j) as f64 * 0.3);
    let t = ndarray::Array2::<f64>::zeros((5, 1));
    let l = s.loss_backward(x.view(), t.view()).unwrap();
    println!("{l}\n{}", Skip::<f64>::BACKWARD_EQUATIONS);
}
