use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        a = Tanh(Linear(b, 4)) + x;
        b = ReLU(a);
        loss = MSELoss(Linear(b, 1));
    }
}

fn main() {}
