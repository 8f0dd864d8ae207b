use nnscratch::model;
use nnscratch::optim::Parameters;
use rand::SeedableRng;

model! {
    pub struct Twice {
        x = input(4);
        enc = Linear(4, 4);
        h = Tanh(enc(enc(x)));
        out = Linear(h, 1);
        loss = MSELoss(out);
    }
}

fn main() {
    let mut net = Twice::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(0));
    // One set of weights for both applications.
    assert_eq!(
        net.parameter_shapes()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["enc.weight", "enc.bias", "out.weight", "out.bias"]
    );
    let x = ndarray::arr2(&[[0.5, -1.0, 2.0, 0.25]]);
    let report = nnscratch::check::gradients(&mut net, x.view(), nnscratch::compiled::Target::Values(ndarray::arr2(&[[1.0]]).view())).unwrap();
    assert!(report.max_dynamic_error() < 1e-12, "{report}");
}
