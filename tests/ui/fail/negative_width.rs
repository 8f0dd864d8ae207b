use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(-3),
        loss: MSELoss,
    }
}

fn main() {}
