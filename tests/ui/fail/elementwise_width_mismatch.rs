use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        h = Tanh(Linear(x, 8));
        y = h + x;
        z = h * Linear(x, 6);
        loss = MSELoss(Linear(y + z, 1));
    }
}

fn main() {}
