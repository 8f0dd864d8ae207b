use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(16), ReLU, Dropout(1.5),
        Linear(16), Tanh, Dropout(p = half),
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
