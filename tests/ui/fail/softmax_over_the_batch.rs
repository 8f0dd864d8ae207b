use nnscratch::model;

model! {
    pub struct Net {
        input: 4,
        Linear(8), Softmax(dim = 0),
        Linear(3), LogSoftmax(dim = 2),
        loss: NLLLoss,
    }
}

model! {
    pub struct OneClass {
        x = input(4);
        out = LogSoftmax(Linear(x, 1));
        loss = NLLLoss(out);
    }
}

fn main() {}
