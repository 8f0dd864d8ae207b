use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 8, 8],
        Conv2d(4, (3, 3, 3), stride = 0, padding = "same"),
        Conv2d(4, 3, kernal = 3),
        MaxPool2d(3, padding = 2),
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
