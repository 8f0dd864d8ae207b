use nnscratch::model;

model! {
    pub struct Net {
        input: 784,
        Conv2d(8, 3),
        Flatten, Linear(10),
        loss: CrossEntropyLoss,
    }
}

fn main() {}
