//! RMSprop, step for step as `torch.optim.RMSprop`:
//!
//! ```text
//! g  = grad + weight_decay · p
//! s  = α·s + (1 - α)·g²                       (the running mean of g²)
//! centered:  ḡ = ḡ + (1 - α)(g - ḡ),  d = √(s - ḡ²) + eps
//! else:      d = √s + eps
//! momentum:  b = μ·b + g/d,  p = p - lr·b
//! else:      p = p - lr·g/d
//! ```
//!
//! Defaults as PyTorch's: lr 0.01, alpha 0.99, eps 1e-8, no weight decay, no momentum,
//! not centered. With [`RMSprop::clip_grad_norm`], `grad` is first scaled as
//! `torch.nn.utils.clip_grad_norm_` scales it.

use super::{Clipping, LearningRate, Optimizer, Parameters, StateList, check_hyper};
use crate::{Float, Result};

/// `torch.optim.RMSprop`. Build with [`RMSprop::new`] and the setters, which mirror
/// PyTorch's keyword arguments.
#[derive(Debug, Clone)]
pub struct RMSprop<T: Float = f32> {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    clipping: Clipping,
    state: StateList<Option<State<T>>>,
}

#[derive(Debug, Clone)]
struct State<T> {
    square_avg: Vec<T>,
    grad_avg: Vec<T>,
    buffer: Vec<T>,
}

impl<T: Float> RMSprop<T> {
    /// RMSprop with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(lr: f64) -> Self {
        RMSprop {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            clipping: Clipping::default(),
            state: StateList::default(),
        }
    }

    /// Scales all gradients together so that their global 2-norm is at most `max_norm`
    /// before each step, as `torch.nn.utils.clip_grad_norm_(params, max_norm)` before
    /// `optimizer.step()` (the gradients themselves are left as they are).
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clipping.max_norm = Some(max_norm);
        self
    }

    /// The global gradient norm measured by the last step, when clipping is on.
    pub fn last_grad_norm(&self) -> Option<f64> {
        self.clipping.last_norm
    }

    /// Smoothing constant of the running mean of squared gradients.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Term added to the denominator for numerical stability.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// L2 penalty added to the gradient.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Momentum of the update.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Normalises by an estimate of the gradient's variance rather than its second moment.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    fn check(&self) -> Result<()> {
        check_hyper(
            "RMSprop lr",
            self.lr,
            "a learning rate >= 0",
            self.lr >= 0.0,
        )?;
        check_hyper(
            "RMSprop alpha",
            self.alpha,
            "an alpha in [0, 1]",
            (0.0..=1.0).contains(&self.alpha),
        )?;
        check_hyper("RMSprop eps", self.eps, "eps >= 0", self.eps >= 0.0)?;
        check_hyper(
            "RMSprop weight_decay",
            self.weight_decay,
            "a weight decay >= 0",
            self.weight_decay >= 0.0,
        )?;
        check_hyper(
            "RMSprop momentum",
            self.momentum,
            "a momentum >= 0",
            self.momentum >= 0.0,
        )?;
        self.clipping.check()
    }
}

impl<T: Float> LearningRate for RMSprop<T> {
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

impl<T: Float> Optimizer<T> for RMSprop<T> {
    fn step(&mut self, model: &mut (impl Parameters<T> + ?Sized)) -> Result<()> {
        self.check()?;
        self.state.check_step(model)?;
        let clip: T = self.clipping.coefficient(model);
        let (lr, alpha, eps) = (T::of(self.lr), T::of(self.alpha), T::of(self.eps));
        let one_minus_alpha = T::of(1.0 - self.alpha);
        let (weight_decay, momentum) = (T::of(self.weight_decay), T::of(self.momentum));
        let (centered, with_momentum) = (self.centered, self.momentum > 0.0);
        let mut index = 0;
        let states = &mut self.state;
        model.visit_parameters(&mut |p| {
            let slot = states.get(index, p.name, p.shape, || None);
            index += 1;
            let Some(grad) = p.grad else { return };
            let n = grad.len();
            let state = slot.get_or_insert_with(|| State {
                square_avg: vec![T::zero(); n],
                grad_avg: if centered {
                    vec![T::zero(); n]
                } else {
                    Vec::new()
                },
                buffer: if with_momentum {
                    vec![T::zero(); n]
                } else {
                    Vec::new()
                },
            });
            if centered && state.grad_avg.len() != n {
                state.grad_avg = vec![T::zero(); n];
            }
            if with_momentum && state.buffer.len() != n {
                state.buffer = vec![T::zero(); n];
            }
            for (k, (p, &grad)) in p.value.iter_mut().zip(grad).enumerate() {
                let grad = if clip != T::one() { grad * clip } else { grad };
                let g = if weight_decay != T::zero() {
                    grad + weight_decay * *p
                } else {
                    grad
                };
                let s = &mut state.square_avg[k];
                // addcmul and addcdiv evaluate `value·t1·t2` and `value·t1/t2` left to
                // right in PyTorch's kernels; the same order rounds the same in f32.
                *s = *s * alpha + one_minus_alpha * g * g;
                let denom = if centered {
                    let mean = &mut state.grad_avg[k];
                    *mean = *mean + one_minus_alpha * (g - *mean);
                    (*s - *mean * *mean).sqrt() + eps
                } else {
                    s.sqrt() + eps
                };
                if with_momentum {
                    let b = &mut state.buffer[k];
                    *b = *b * momentum + g / denom;
                    *p += -lr * *b;
                } else {
                    *p += -lr * g / denom;
                }
            }
        });
        Ok(())
    }
}
