use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), ReLU,
        Linear(1),
        loss: CrossEntropyLoss,
    }
}

fn main() {}
