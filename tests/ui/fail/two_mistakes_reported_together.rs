use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), Relu,
        Linear(16, 2), Sigmod,
        loss: MSELoss,
    }
}

fn main() {}
