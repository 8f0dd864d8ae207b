use nnscratch::model;
use nnscratch::optim::{Adam, Optimizer, Parameters};
use rand::SeedableRng;

model! {
    /// Every layer of the sequential form, with the MSE loss.
    #[derive(Clone)]
    pub struct Regressor {
        input: 3,
        Linear(8), ReLU,
        Linear(8, 8), LeakyReLU,
        Linear(6), LeakyReLU(0.2),
        Linear(6, 4), Sigmoid,
        Linear(4), Tanh,
        Linear(4), Softplus,
        Linear(4), Softplus(beta = 2.0, threshold = 10),
        Linear(4), GELU, Linear(4), GELU(approximate = "tanh"), Linear(4), GELU("none"),
        Linear(4), SiLU, Linear(4), ELU, Linear(4), ELU(0.5), Identity,
        Linear(4), LeakyReLU(-0.2),
        Linear(2),
        loss: MSELoss,
    }
}

model! {
    struct Classifier { input: 5, Linear(7), Tanh, Linear(3), loss: CrossEntropyLoss, }
}

model! {
    /// Softmax inside, LogSoftmax and NLLLoss at the end.
    struct NllClassifier {
        input: 5,
        Linear(7), Softmax, Linear(7), Softmax(dim = -1),
        Linear(3), LogSoftmax(1),
        loss: NLLLoss,
    }
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut regressor = Regressor::<f64>::new(&mut rng);
    let mut copy = regressor.clone();
    let x = ndarray::Array2::<f64>::zeros((2, 3));
    let t = ndarray::Array2::<f64>::zeros((2, 2));
    let loss: f64 = regressor.loss_backward(x.view(), t.view()).unwrap();
    Adam::new(1e-3).step(&mut regressor).unwrap();
    assert!(loss.is_finite());
    assert_eq!(copy.parameter("0.weight").unwrap().shape(), &[8, 3]);

    let mut classifier: Classifier = Classifier::new(&mut rng);
    let x = ndarray::Array2::<f32>::zeros((2, 5));
    let loss: f32 = classifier.loss_backward(x.view(), &[0, 2]).unwrap();
    assert!(loss > 0.0);
    let _ = classifier.to_dynamic();
    let _ = Classifier::<f32>::graph();

    let mut nll = NllClassifier::<f64>::new(&mut rng);
    let x = ndarray::Array2::<f64>::zeros((2, 5));
    let loss: f64 = nll.loss_backward(x.view(), &[0, 2]).unwrap();
    assert!((loss - 3f64.ln()).abs() < 0.5);
}
