use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(0), ReLU,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
