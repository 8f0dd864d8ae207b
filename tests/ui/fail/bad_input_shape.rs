use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 28, 28, 3],
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

model! {
    pub struct Zero {
        input: [0, 28],
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
