use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        enc = Linear(8, 4);
        h = Tanh(enc(x));
        g = enc + h;
        out = Linear(h, 1);
        loss = MSELoss(out);
    }
}

model! {
    pub struct Unused {
        x = input(4);
        enc = Linear(4, 4);
        out = Linear(x, 1);
        loss = MSELoss(out);
    }
}

fn main() {}
