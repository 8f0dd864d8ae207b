//! Adam and AdamW, step for step as `torch.optim.Adam` and `torch.optim.AdamW`:
//!
//! ```text
//! Adam:   g = grad + weight_decay · p          (an L2 penalty in the gradient)
//! AdamW:  p = p · (1 - lr · weight_decay)      (decoupled: the weights shrink directly)
//! m  = m + (1 - β1)(g - m)                     (= β1·m + (1 - β1)·g)
//! v  = β2·v + (1 - β2)·g²
//! v̄  = max(v̄, v) with amsgrad, else v
//! p  = p - lr/(1 - β1^t) · m / (√v̄ / √(1 - β2^t) + eps)
//! ```
//!
//! The last line is the bias-corrected `m̂ / (√v̂ + eps)` arranged as PyTorch computes it,
//! so that `f32` results agree with PyTorch's to the last bits. With
//! [`Adam::clip_grad_norm`], `g` is first scaled as `torch.nn.utils.clip_grad_norm_`
//! scales it.

use super::{Clipping, LearningRate, Optimizer, Parameters, StateList, check_hyper};
use crate::{Float, Result};

/// `torch.optim.Adam`, or `torch.optim.AdamW` when built with [`Adam::adamw`]. Build with
/// [`Adam::new`] and the setters, which mirror PyTorch's keyword arguments (defaults:
/// betas (0.9, 0.999), eps 1e-8, weight_decay 0, or 0.01 for AdamW, amsgrad false).
#[derive(Debug, Clone)]
pub struct Adam<T: Float = f32> {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    amsgrad: bool,
    clipping: Clipping,
    moments: StateList<Option<Moments<T>>>,
}

/// `torch.optim.AdamW`: Adam with decoupled weight decay (default 0.01).
pub type AdamW<T = f32> = Adam<T>;

#[derive(Debug, Clone)]
struct Moments<T> {
    step: i32,
    m: Vec<T>,
    v: Vec<T>,
    /// The running maximum of `v` (amsgrad only).
    v_max: Vec<T>,
}

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            clipping: Clipping::default(),
            moments: StateList::default(),
        }
    }

    /// AdamW (`torch.optim.AdamW`) with learning rate `lr`: weight decay decoupled from
    /// the gradient, PyTorch's default 0.01.
    pub fn adamw(lr: f64) -> Self {
        Adam {
            decoupled: true,
            weight_decay: 0.01,
            ..Adam::new(lr)
        }
    }

    /// The AMSGrad variant: the denominator uses the largest second moment seen so far.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Before each step, scales all gradients together so that their global 2-norm is at
    /// most `max_norm`, as `torch.nn.utils.clip_grad_norm_(params, max_norm)` before
    /// `optimizer.step()`. The model's stored gradients are left as they are.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clipping.max_norm = Some(max_norm);
        self
    }

    /// The global gradient norm measured by the last step, when clipping is on (what
    /// `clip_grad_norm_` returns).
    pub fn last_grad_norm(&self) -> Option<f64> {
        self.clipping.last_norm
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

    /// Weight decay: an L2 penalty added to the gradient for Adam, a decoupled shrinking
    /// of the weights for AdamW.
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
        )?;
        self.clipping.check()
    }
}

impl<T: Float> LearningRate for Adam<T> {
    fn lr(&self) -> f64 {
        Adam::lr(self)
    }
    fn set_lr(&mut self, lr: f64) {
        Adam::set_lr(self, lr);
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, model: &mut (impl Parameters<T> + ?Sized)) -> Result<()> {
        self.check()?;
        self.moments.check_step(model)?;
        let clip: T = self.clipping.coefficient(model);
        let (beta1, beta2) = self.betas;
        let (lr, eps, weight_decay) = (self.lr, T::of(self.eps), T::of(self.weight_decay));
        let (decoupled, amsgrad) = (self.decoupled, self.amsgrad);
        let shrink = T::of(1.0 - self.lr * self.weight_decay);
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
                v_max: if amsgrad {
                    vec![T::zero(); grad.len()]
                } else {
                    Vec::new()
                },
            });
            if amsgrad && state.v_max.len() != grad.len() {
                state.v_max = vec![T::zero(); grad.len()];
            }
            state.step += 1;
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let correction1 = 1.0 - beta1.powi(state.step);
            let correction2_sqrt = (1.0 - beta2.powi(state.step)).sqrt();
            let step_size = T::of(lr / correction1);
            let correction2_sqrt = T::of(correction2_sqrt);
            let (b1, b2) = (T::of(1.0 - beta1), T::of(beta2));
            let one_minus_b2 = T::of(1.0 - beta2);
            let moments = state.m.iter_mut().zip(state.v.iter_mut());
            for (k, ((p, &grad), (m, v))) in p.value.iter_mut().zip(grad).zip(moments).enumerate() {
                let grad = if clip != T::one() { grad * clip } else { grad };
                let g = if decoupled {
                    if weight_decay != T::zero() {
                        *p *= shrink;
                    }
                    grad
                } else if weight_decay != T::zero() {
                    grad + weight_decay * *p
                } else {
                    grad
                };
                *m = *m + b1 * (g - *m);
                // addcmul and addcdiv evaluate `value·t1·t2` and `value·t1/t2` left to
                // right in PyTorch's kernels; the same order rounds the same in f32.
                *v = *v * b2 + one_minus_b2 * g * g;
                let second = if amsgrad {
                    let v_max = &mut state.v_max[k];
                    *v_max = v_max.max(*v);
                    *v_max
                } else {
                    *v
                };
                let denom = second.sqrt() / correction2_sqrt + eps;
                *p += -step_size * *m / denom;
            }
        });
        Ok(())
    }
}
