use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        h = Tanh(Linear(x, 8));
        h = ReLU(Linear(x, 8));
        loss = MSELoss(Linear(h, 1));
    }
}

fn main() {}
