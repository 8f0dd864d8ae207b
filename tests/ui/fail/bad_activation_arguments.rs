use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), GELU(approximate = "fast"),
        Linear(8), GELU(tanh),
        Linear(8), ELU(alpha = big),
        Linear(8), SiLU(1.0),
        Linear(8), Identity(8),
        Linear(1),
        loss: MSELoss,
    }
}

fn main() {}
