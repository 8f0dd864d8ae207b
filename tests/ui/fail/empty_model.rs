use nnscratch::model;

model! {
    pub struct Net {}
}

fn main() {}
