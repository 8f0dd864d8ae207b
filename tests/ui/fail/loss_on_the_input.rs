use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        loss = MSELoss(x);
    }
}

fn main() {}
