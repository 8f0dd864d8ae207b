use nnscratch::model;

model! {
    pub struct Net {
        input: [3, 16, 16],
        Conv2d(1, 8, 3),
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
