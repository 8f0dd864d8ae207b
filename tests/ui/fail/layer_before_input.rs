use nnscratch::model;

model! {
    pub struct Net {
        Linear(8),
        input: 4,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
