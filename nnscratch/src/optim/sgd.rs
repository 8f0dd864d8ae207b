//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay,
//! step for step as `torch.optim.SGD`:
//!
//! ```text
//! g = grad + weight_decay · p
//! if momentum ≠ 0:
//!     b = g                                   on the first step
//!     b = momentum · b + (1 - dampening) · g  afterwards
//!     g = g + momentum · b   if nesterov,  else  g = b
//! p = p - lr · g
//! ```
//!
//! With [`Sgd::clip_grad_norm`], `grad` is first scaled as `torch.nn.utils.clip_grad_norm_`
//! scales it.

use crate::kernels::KernelPath;
use crate::kernels::rows::with_rows;

use super::{Clipping, Optimizer, Parameters, StateList, check_hyper};
use crate::{Float, Result};

/// `torch.optim.SGD`. Build with [`Sgd::new`] and the setters, which mirror PyTorch's
/// keyword arguments.
#[derive(Debug, Clone)]
pub struct Sgd<T: Float = f32> {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    clipping: Clipping,
    /// The momentum buffer of each parameter (`None` until its first update).
    buffers: StateList<Option<Vec<T>>>,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr` (no momentum, no weight decay).
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            clipping: Clipping::default(),
            buffers: StateList::default(),
        }
    }

    /// Scales all gradients together so that their global 2-norm is at most `max_norm`
    /// before each step, as `torch.nn.utils.clip_grad_norm_(params, max_norm)` before
    /// `optimizer.step()` (the gradients themselves are left as they are).
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clipping.max_norm = Some(max_norm);
        self
    }

    /// The global gradient norm measured by the last step, when clipping is on (what
    /// `clip_grad_norm_` returns).
    pub fn last_grad_norm(&self) -> Option<f64> {
        self.clipping.last_norm
    }

    /// Momentum factor (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Dampening of the momentum (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Nesterov momentum (default off; needs momentum > 0 and dampening 0).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// L2 penalty added to the gradient (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Changes the learning rate, keeping the momentum buffers (for schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    fn check(&self) -> Result<()> {
        // The usual case in a few comparisons (every step runs this); the messages only
        // when something is wrong.
        let fine = |v: f64| v.is_finite() && v >= 0.0;
        if fine(self.lr)
            && fine(self.momentum)
            && fine(self.weight_decay)
            && self.dampening.is_finite()
            && !self.nesterov
            && self.clipping.max_norm.is_none()
        {
            return Ok(());
        }
        check_hyper("Sgd lr", self.lr, "a learning rate >= 0", self.lr >= 0.0)?;
        check_hyper(
            "Sgd momentum",
            self.momentum,
            "a momentum >= 0",
            self.momentum >= 0.0,
        )?;
        check_hyper("Sgd dampening", self.dampening, "a finite dampening", true)?;
        check_hyper(
            "Sgd weight_decay",
            self.weight_decay,
            "a weight decay >= 0",
            self.weight_decay >= 0.0,
        )?;
        self.clipping.check()?;
        if self.nesterov {
            let ok = self.momentum > 0.0 && self.dampening == 0.0;
            check_hyper(
                "Sgd nesterov momentum",
                self.momentum,
                "momentum > 0 and dampening 0 with nesterov",
                ok,
            )?;
        }
        Ok(())
    }
}

impl<T: Float> super::LearningRate for Sgd<T> {
    fn lr(&self) -> f64 {
        Sgd::lr(self)
    }
    fn set_lr(&mut self, lr: f64) {
        Sgd::set_lr(self, lr);
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, model: &mut (impl Parameters<T> + ?Sized)) -> Result<()> {
        self.check()?;
        self.buffers.check_step(model)?;
        let clip: T = self.clipping.coefficient(model);
        let (lr, momentum, weight_decay) = (
            T::of(self.lr),
            T::of(self.momentum),
            T::of(self.weight_decay),
        );
        let one_minus_dampening = T::of(1.0 - self.dampening);
        let (nesterov, use_momentum) = (self.nesterov, self.momentum != 0.0);
        let path = KernelPath::default_for_this_cpu();
        let plain = clip == T::one() && !use_momentum && weight_decay == T::zero();
        if plain
            && self.buffers.covers(model)
            && let Some(flat) = model.flat_parameters()
        {
            // The same update for every value, and no state to make: one pass.
            if let Some(grads) = flat.grads {
                descend(path, grads, flat.values, self.lr);
            }
            return Ok(());
        }
        let mut index = 0;
        let buffers = &mut self.buffers;
        model.visit_parameters(&mut |p| {
            let slot = buffers.get(index, p.name, p.shape, || None);
            index += 1;
            let Some(grad) = p.grad else { return };
            // One pass per parameter over plain slices: no temporaries, so a step
            // allocates nothing once the momentum buffers exist.
            if clip != T::one() {
                // Clipped: the same update with `clip·g` (PyTorch scales the gradients
                // in place first, which rounds the same).
                let first_step = slot.is_none();
                let buffer = if use_momentum {
                    slot.get_or_insert_with(|| vec![T::zero(); grad.len()])
                        .as_mut_slice()
                } else {
                    &mut []
                };
                for (k, (p, &g)) in p.value.iter_mut().zip(grad).enumerate() {
                    let g = g * clip;
                    let g = if weight_decay != T::zero() {
                        g + weight_decay * *p
                    } else {
                        g
                    };
                    let g = if use_momentum {
                        let b = &mut buffer[k];
                        *b = if first_step {
                            g
                        } else {
                            *b * momentum + g * one_minus_dampening
                        };
                        if nesterov { g + momentum * *b } else { *b }
                    } else {
                        g
                    };
                    *p -= lr * g;
                }
                return;
            }
            if !use_momentum {
                // The common case gets a loop of its own, with nothing to vectorise around.
                if weight_decay == T::zero() {
                    descend(path, grad, p.value, self.lr);
                } else {
                    for (p, &g) in p.value.iter_mut().zip(grad) {
                        *p -= lr * (g + weight_decay * *p);
                    }
                }
                return;
            }
            let first_step = slot.is_none();
            let buffer = slot.get_or_insert_with(|| vec![T::zero(); grad.len()]);
            for ((p, &g), b) in p.value.iter_mut().zip(grad).zip(buffer.iter_mut()) {
                let g = if weight_decay != T::zero() {
                    g + weight_decay * *p
                } else {
                    g
                };
                *b = if first_step {
                    g
                } else {
                    *b * momentum + g * one_minus_dampening
                };
                let g = if nesterov { g + momentum * *b } else { *b };
                *p -= lr * g;
            }
        });
        Ok(())
    }
}

with_rows! {
    /// `p -= lr · g`, the plain update, as `p += (-lr)·g` (the same bits: negating is
    /// exact).
    fn descend<T>(rows, slices(grad), slices_mut(value), values(lr: f64)) {
        // SAFETY: `with_rows` picks rows the CPU can run.
        unsafe { rows.axpy(-T::of(lr), grad, value) };
    }
}
