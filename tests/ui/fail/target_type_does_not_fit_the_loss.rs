use nnscratch::model;
use rand::SeedableRng;

model! {
    /// Trained with MSELoss: its targets are values `[batch, 2]`, not class indices.
    pub struct Regressor { input: 3, Linear(2), loss: MSELoss, }
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = Regressor::<f32>::new(&mut rng);
    let x = ndarray::Array2::<f32>::zeros((2, 3));
    let classes = [0usize, 1];
    let _ = net.loss_backward(x.view(), &classes);
}
