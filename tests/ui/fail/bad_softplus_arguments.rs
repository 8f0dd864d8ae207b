use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), Softplus(beta = 0),
        Linear(8), Softplus(bta = 2.0),
        Linear(8), Softplus(threshold = 10, 2.0),
        Linear(8), Softplus(1.0, 20.0, 3.0),
        Linear(8), Softplus(beta = 1.0, beta = 2.0),
        Linear(8), Softplus(limit),
        Linear(1),
        loss: MSELoss,
    }
}

model! {
    pub struct Graph {
        x = input(4);
        h = Softplus(Linear(x, 8), -1.0);
        out = Linear(Tanh(h, threshold = 3), 1);
        loss = MSELoss(out);
    }
}

fn main() {}
