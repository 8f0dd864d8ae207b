use nnscratch::model;

model! {
    pub struct Net {
        Linear(8), Tanh,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
