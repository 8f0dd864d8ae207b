use nnscratch::model;
use nnscratch::optim::{Optimizer, Sgd};
use rand::SeedableRng;

model! {
    pub struct Net {
        input: 2,
        Linear(4), Tanhh,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {
    // Only the misspelled layer is reported, not errors here.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = Net::<f32>::new(&mut rng);
    let x = ndarray::Array2::<f32>::zeros((3, Net::<f32>::INPUT_WIDTH));
    let t = ndarray::Array2::<f32>::zeros((3, 1));
    let _ = net.loss_backward(x.view(), t.view());
    let _ = Sgd::new(0.1).step(&mut net);
}
