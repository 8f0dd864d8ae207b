use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), Relu,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
