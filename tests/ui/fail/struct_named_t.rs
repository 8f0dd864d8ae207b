use nnscratch::model;

model! {
    pub struct T {
        input: 4,
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
