use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 8, 8],
        Conv2d(4, 3), BatchNorm2d(8), ReLU,
        Flatten, BatchNorm2d, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
