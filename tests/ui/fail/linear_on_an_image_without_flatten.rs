use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 28, 28],
        Conv2d(8, 3, padding = 1), ReLU, MaxPool2d(2),
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

fn main() {}
