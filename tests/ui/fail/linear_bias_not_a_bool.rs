use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8, bias = False), ReLU,
        Linear(1, biases = false),
        loss: MSELoss,
    }
}

fn main() {}
