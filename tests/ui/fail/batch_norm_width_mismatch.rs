use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(16), BatchNorm1d(8), ReLU,
        Linear(16), LayerNorm(32),
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
