use nnscratch::model;

model! {
    pub struct Net {
        input: [4, 8, 8],
        Conv2d(6, 3, groups = 4),
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
