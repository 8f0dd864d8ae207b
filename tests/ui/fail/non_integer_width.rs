use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(2.5),
        loss: MSELoss,
    }
}

fn main() {}
