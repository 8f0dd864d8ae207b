use nnscratch::model;

model! {
    pub struct Net {
        input: [1, 8, 8],
        Conv1d(4, 3),
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

model! {
    pub struct Dilated {
        input: [2, 10],
        Conv1d(4, 4, dilation = 4),
        Flatten, Linear(2),
        loss: MSELoss,
    }
}

fn main() {}
