use nnscratch::model;

model! {
    pub struct Net {
        input: [2, 6, 6],
        MaxPool2d(4), AvgPool2d(2),
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
