use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        hidden = Tanh(Linear(x, 8));
        out = Linear(hiden, 1);
        loss = MSELoss(out);
    }
}

fn main() {}
