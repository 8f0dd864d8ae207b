use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        out = Linear(x, 3);
        loss = CrossEntropyLoss(out);
        again = MSELoss(out);
    }
}

fn main() {}
