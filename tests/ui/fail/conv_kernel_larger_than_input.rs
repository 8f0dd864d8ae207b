use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 8, 8],
        Conv2d(4, 3), ReLU, MaxPool2d(2),
        Conv2d(8, 5),
        Flatten, Linear(10),
        loss: CrossEntropyLoss,
    }
}

fn main() {}
