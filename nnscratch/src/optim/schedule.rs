//! Learning-rate schedules, as `torch.optim.lr_scheduler`: a [`Schedule`] says what the
//! learning rate is at epoch `t` given the base rate; a [`Scheduler`] applies it to an
//! optimizer, one `step()` per epoch (or per iteration, as the user calls it).
//!
//! ```text
//! StepLR(step_size, gamma)                lr_t = base · gamma^⌊t / step_size⌋
//! CosineAnnealingLR(t_max, eta_min)       lr_t = eta_min + (base - eta_min)(1 + cos(π t / t_max))/2
//! LinearLR(start, end, total_iters)       lr_t = base · (start + (end - start)·min(t, total)/total)
//! ```
//!
//! ```
//! use nnscratch::optim::{LearningRate, LinearLR, Scheduler, Sgd};
//! let mut sgd = Sgd::<f32>::new(0.1);
//! let mut warmup = Scheduler::new(LinearLR::new(0.1, 1.0, 4), &mut sgd)?; // linear warm-up
//! let mut rates = vec![sgd.lr()];
//! for _ in 0..5 {
//!     // ... loss.backward(), sgd.step(&mut model) ...
//!     warmup.step(&mut sgd);
//!     rates.push(sgd.lr());
//! }
//! let expected = [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1];
//! assert!(rates.iter().zip(expected).all(|(r, e)| (r - e).abs() < 1e-12));
//! # Ok::<(), nnscratch::Error>(())
//! ```

use super::{LearningRate, check_hyper};
use crate::Result;

/// A learning rate as a function of the epoch.
pub trait Schedule {
    /// The learning rate at epoch `epoch` (0 before the first `step`), from `base`.
    fn lr(&self, base: f64, epoch: usize) -> f64;
}

/// A schedule chosen at run time (`Box<dyn Schedule>`) is a schedule too.
impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, base: f64, epoch: usize) -> f64 {
        (**self).lr(base, epoch)
    }
}

/// `torch.optim.lr_scheduler.StepLR`: multiplies the rate by `gamma` every `step_size`
/// epochs.
#[derive(Debug, Clone, Copy)]
pub struct StepLR {
    step_size: usize,
    gamma: f64,
}

impl StepLR {
    /// Decays by `gamma` every `step_size` epochs (PyTorch's default `gamma` is 0.1).
    pub fn new(step_size: usize, gamma: f64) -> Self {
        StepLR { step_size, gamma }
    }
}

impl Schedule for StepLR {
    fn lr(&self, base: f64, epoch: usize) -> f64 {
        let decays = i32::try_from(epoch / self.step_size.max(1)).unwrap_or(i32::MAX);
        base * self.gamma.powi(decays)
    }
}

/// `torch.optim.lr_scheduler.CosineAnnealingLR`: from the base rate down to `eta_min`
/// over `t_max` epochs along half a cosine.
#[derive(Debug, Clone, Copy)]
pub struct CosineAnnealingLR {
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLR {
    /// Anneals over `t_max` epochs to `eta_min` (PyTorch's default 0).
    pub fn new(t_max: usize, eta_min: f64) -> Self {
        CosineAnnealingLR { t_max, eta_min }
    }
}

impl Schedule for CosineAnnealingLR {
    fn lr(&self, base: f64, epoch: usize) -> f64 {
        let phase = std::f64::consts::PI * epoch as f64 / self.t_max.max(1) as f64;
        self.eta_min + (base - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}

/// `torch.optim.lr_scheduler.LinearLR`: scales the rate linearly from `start_factor` to
/// `end_factor` over `total_iters` epochs, then holds it (a linear warm-up).
#[derive(Debug, Clone, Copy)]
pub struct LinearLR {
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

impl LinearLR {
    /// PyTorch's defaults are `LinearLR::new(1.0 / 3.0, 1.0, 5)`.
    pub fn new(start_factor: f64, end_factor: f64, total_iters: usize) -> Self {
        LinearLR {
            start_factor,
            end_factor,
            total_iters,
        }
    }
}

impl Schedule for LinearLR {
    fn lr(&self, base: f64, epoch: usize) -> f64 {
        let progress = epoch.min(self.total_iters) as f64 / self.total_iters.max(1) as f64;
        base * (self.start_factor + (self.end_factor - self.start_factor) * progress)
    }
}

/// Applies a [`Schedule`] to an optimizer: created after the optimizer (it sets the
/// rate for epoch 0, as PyTorch's schedulers do at construction), then `step()` after
/// each epoch's optimizer steps.
#[derive(Debug, Clone)]
pub struct Scheduler<S: Schedule> {
    schedule: S,
    base: f64,
    epoch: usize,
}

impl<S: Schedule> Scheduler<S> {
    /// Takes the optimizer's current rate as the base rate and sets the rate of epoch 0.
    pub fn new(schedule: S, optimizer: &mut impl LearningRate) -> Result<Self> {
        let base = optimizer.lr();
        check_hyper(
            "scheduler base lr",
            base,
            "a learning rate >= 0",
            base >= 0.0,
        )?;
        let scheduler = Scheduler {
            schedule,
            base,
            epoch: 0,
        };
        optimizer.set_lr(scheduler.current());
        Ok(scheduler)
    }

    /// Moves to the next epoch and sets its rate on `optimizer`.
    pub fn step(&mut self, optimizer: &mut impl LearningRate) {
        self.epoch += 1;
        optimizer.set_lr(self.current());
    }

    /// The rate of the current epoch.
    pub fn current(&self) -> f64 {
        self.schedule.lr(self.base, self.epoch)
    }

    /// Epochs stepped so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }
}
