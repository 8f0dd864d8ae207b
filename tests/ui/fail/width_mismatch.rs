use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), ReLU,
        Linear(16, 2),
        loss: MSELoss,
    }
}

fn main() {}
