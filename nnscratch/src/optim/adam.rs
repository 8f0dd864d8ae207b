//! Adam, step for step as `torch.optim.Adam` (without amsgrad):
//!
//! ```text
//! g  = grad + weight_decay · p
//! m  = m + (1 - β1)(g - m)                 (= β1·m + (1 - β1)·g)
//! v  = β2·v + (1 - β2)·g²
//! p  = p - lr/(1 - β1^t) · m / (√v / √(1 - β2^t) + eps)
//! ```
//!
//! The last line is the bias-corrected `m̂ / (√v̂ + eps)` arranged as PyTorch computes it,
//! so that `f32` results agree with PyTorch's to the last bits.

use super::{Optimizer, Parameters, StateList, check_finite_gradients, check_hyper};
use crate::{Float, Result};

/// `torch.optim.Adam`. Build with [`Adam::new`] and the setters, which mirror PyTorch's
/// keyword arguments (defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0).
#[derive(Debug, Clone)]
pub struct Adam<T: Float = f32> {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    moments: StateList<Option<Moments<T>>>,
}

#[derive(Debug, Clone)]
struct Moments<T> {
    step: i32,
    m: Vec<T>,
    v: Vec<T>,
}

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            moments: StateList::default(),
        }
    }

    /// Decay rates of the first and second moment estimates.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Term added to the denominator for numerical stability.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// L2 penalty added to the gradient (not decoupled: that would be AdamW).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Changes the learning rate, keeping the moment estimates.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    fn check(&self) -> Result<()> {
        let (b1, b2) = self.betas;
        check_hyper("Adam lr", self.lr, "a learning rate >= 0", self.lr >= 0.0)?;
        check_hyper(
            "Adam beta1",
            b1,
            "a beta in [0, 1)",
            (0.0..1.0).contains(&b1),
        )?;
        check_hyper(
            "Adam beta2",
            b2,
            "a beta in [0, 1)",
            (0.0..1.0).contains(&b2),
        )?;
        check_hyper("Adam eps", self.eps, "eps >= 0", self.eps >= 0.0)?;
        check_hyper(
            "Adam weight_decay",
            self.weight_decay,
            "a weight decay >= 0",
            self.weight_decay >= 0.0,
        )
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, model: &mut (impl Parameters<T> + ?Sized)) -> Result<()> {
        self.check()?;
        self.moments.check(model)?;
        check_finite_gradients(model)?;
        let (beta1, beta2) = self.betas;
        let (lr, eps, weight_decay) = (self.lr, T::of(self.eps), T::of(self.weight_decay));
        let mut index = 0;
        let moments = &mut self.moments;
        model.visit_parameters(&mut |p| {
            let slot = moments.get(index, p.name, p.shape, || None);
            index += 1;
            let Some(grad) = p.grad else { return };
            let state = slot.get_or_insert_with(|| Moments {
                step: 0,
                m: vec![T::zero(); grad.len()],
                v: vec![T::zero(); grad.len()],
            });
            state.step += 1;
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let correction1 = 1.0 - beta1.powi(state.step);
            let correction2_sqrt = (1.0 - beta2.powi(state.step)).sqrt();
            let step_size = T::of(lr / correction1);
            let correction2_sqrt = T::of(correction2_sqrt);
            let (b1, b2) = (T::of(1.0 - beta1), T::of(beta2));
            let one_minus_b2 = T::of(1.0 - beta2);
            let moments = state.m.iter_mut().zip(state.v.iter_mut());
            for ((p, &grad), (m, v)) in p.value.iter_mut().zip(grad).zip(moments) {
                let g = if weight_decay != T::zero() {
                    grad + weight_decay * *p
                } else {
                    grad
                };
                *m = *m + b1 * (g - *m);
                *v = *v * b2 + one_minus_b2 * g * g;
                let denom = v.sqrt() / correction2_sqrt + eps;
                *p -= step_size * (*m / denom);
            }
        });
        Ok(())
    }
}
