use nnscratch::model;

// Each width is allowed, but the layer's 2^32 · 2^16 weights are not.
model! {
    pub struct Huge {
        input: 65536,
        Linear(65536),
        loss: MSELoss,
    }
}

// A width past the limit (here 2^32) is reported on the width itself.
model! {
    pub struct Wider {
        input: 4294967296,
        Linear(4294967296),
        loss: MSELoss,
    }
}

fn main() {}
