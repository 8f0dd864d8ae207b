use nnscratch::model;

model! {
    pub struct Net {
        x = input(4);
        h = BatchNorm1d(Linear(x, 8), momentum = 2.0, affine = True);
        n = LayerNorm(h, eps = 0, elementwise_affin = false);
        out = Linear(n, 1);
        loss = MSELoss(out);
    }
}

fn main() {}
