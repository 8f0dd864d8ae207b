use nnscratch::model;

model! {
    pub struct Net {
        h = Tanh(input(4));
        out = Linear(h, 1);
        loss = MSELoss(out);
    }
}

fn main() {}
