use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), LeakyReLU(-0.1),
        Linear(8), LeakyReLU(negative_slope = "steep"),
        Linear(8), LeakyReLU(slope),
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
