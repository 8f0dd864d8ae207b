use nnscratch::model;

model! {
    pub struct Huber {
        input: 4, Linear(1),
        loss: HuberLoss(delta = 0),
    }
}

model! {
    pub struct PerElement {
        input: 4, Linear(1),
        loss: L1Loss(reduction = "none"),
    }
}

model! {
    pub struct Positional {
        input: 4, Linear(1),
        loss: SmoothL1Loss(0.5),
    }
}

model! {
    pub struct Misspelled {
        x = input(4);
        out = Linear(x, 1);
        loss = SmoothL1Loss(out, bta = 0.5);
    }
}

model! {
    pub struct NotAnArgument {
        input: 4, Linear(2),
        loss: CrossEntropyLoss(beta = 1.0),
    }
}

fn main() {}
