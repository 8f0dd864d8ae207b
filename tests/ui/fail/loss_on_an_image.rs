use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 4, 4],
        Conv2d(2, 3, padding = 1),
        loss: MSELoss,
    }
}

fn main() {}
