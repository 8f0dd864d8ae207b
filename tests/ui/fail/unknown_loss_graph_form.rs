use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        out = Linear(x, 1);
        loss = MSEloss(out);
    }
}

fn main() {}
