use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(1),
        loss: MSE,
    }
}

fn main() {}
