use nnscratch::model;

model! {
    pub struct Net {
        x = input([3, 8, 8]);
        h = Conv2d(x, 4, 3, padding = 1);
        r = h + x;
        out = Linear(Flatten(r), 2);
        loss = MSELoss(out);
    }
}

fn main() {}
