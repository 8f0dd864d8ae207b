use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), Tanh,
        Linear(1),
    }
}

fn main() {}
