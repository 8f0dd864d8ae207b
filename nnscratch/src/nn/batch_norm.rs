//! `BatchNorm1d`: PyTorch's `nn.BatchNorm1d(num_features, eps=1e-5, momentum=0.1,
//! affine=True, track_running_stats=True)` on `[batch, num_features]`.
//!
//! On the dynamic engine the layer is composed of elementary ops, so its backward pass
//! emerges from theirs: `μ = x.mean_axis(0)`, `xc = x - μ`, `σ² = xc².mean_axis(0)`,
//! `x̂ = xc · (σ² + ε)^(-1/2)`, `y = x̂ · weight + bias`. The compiled kernel
//! (`kernels/batch_norm.rs`) uses the closed form the chain rule gives for the same
//! graph; comparing the two checks the derivation. In evaluation, or without running
//! statistics, `μ` and `σ²` are the buffers, constants of the graph.

use std::cell::Cell;
use std::fmt;

use ndarray::{Array1, ArrayD};

use super::Module;
use crate::optim::{Buffer, BufferValue, visit_buffer_array};
use crate::{Error, Float, Result, Tensor};

/// PyTorch's default `eps` of BatchNorm and LayerNorm.
pub const NORM_EPS: f64 = 1e-5;
/// PyTorch's default `momentum` of BatchNorm.
pub const BATCH_NORM_MOMENTUM: f64 = 0.1;

/// The running statistics: PyTorch's buffers of the same names.
#[derive(Debug, Clone)]
struct Running<T: Float> {
    mean: Tensor<T>,
    var: Tensor<T>,
    num_batches_tracked: Cell<u64>,
}

/// Batch normalisation over the batch dimension of `[batch, num_features]` (see the
/// module docs).
///
/// ```
/// use nnscratch::nn::{BatchNorm1d, Module};
/// use nnscratch::Tensor;
///
/// let mut bn = BatchNorm1d::<f64>::new(2)?;
/// let x = Tensor::from([[1.0, 10.0], [3.0, 30.0]]);
/// let y = bn.forward(&x)?.to_array();
/// // Each column normalised with its batch mean and biased variance.
/// assert!((y[[0, 0]] + 1.0).abs() < 1e-4 && (y[[1, 1]] - 1.0).abs() < 1e-4);
/// // The running mean moved 10% towards the batch mean; the variance is unbiased.
/// assert_eq!(bn.running_mean().unwrap().into_raw_vec_and_offset().0, [0.2, 2.0]);
/// assert_eq!(bn.num_batches_tracked(), Some(1));
/// bn.eval(); // now uses the running statistics
/// # Ok::<(), nnscratch::Error>(())
/// ```
#[derive(Debug)]
pub struct BatchNorm1d<T: Float = f32> {
    num_features: usize,
    eps: f64,
    momentum: f64,
    /// `γ`, `[num_features]` (initialised to ones), or `None` with `affine = false`.
    pub weight: Option<Tensor<T>>,
    /// `β`, `[num_features]` (initialised to zeros), or `None` with `affine = false`.
    pub bias: Option<Tensor<T>>,
    running: Option<Running<T>>,
    training: bool,
    /// BatchNorm2d: inputs `[batch, C, H, W]`, statistics over the batch and positions.
    images: bool,
}

impl<T: Float> BatchNorm1d<T> {
    /// `BatchNorm1d(num_features)` with PyTorch's defaults.
    pub fn new(num_features: usize) -> Result<Self> {
        Self::with_options(num_features, NORM_EPS, BATCH_NORM_MOMENTUM, true, true)
    }

    /// Every argument of PyTorch's constructor: `eps > 0`, `0 <= momentum <= 1`.
    pub fn with_options(
        num_features: usize,
        eps: f64,
        momentum: f64,
        affine: bool,
        track_running_stats: bool,
    ) -> Result<Self> {
        check_norm_arguments("BatchNorm1d", num_features, eps)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::InvalidArgument {
                what: "BatchNorm1d momentum".into(),
                expected: "0 <= momentum <= 1 (PyTorch's default: 0.1)".into(),
                found: momentum.to_string(),
            });
        }
        let (weight, bias) = affine_parameters(num_features, affine);
        let running = track_running_stats.then(|| Running {
            mean: Tensor::constant(ArrayD::zeros(vec![num_features])).with_label("running_mean"),
            var: Tensor::constant(ArrayD::ones(vec![num_features])).with_label("running_var"),
            num_batches_tracked: Cell::new(0),
        });
        Ok(BatchNorm1d {
            num_features,
            eps,
            momentum,
            weight,
            bias,
            running,
            training: true,
            images: false,
        })
    }

    /// `BatchNorm2d(num_features)` with PyTorch's defaults: inputs `[batch, C, H, W]`,
    /// each channel normalised over the batch and its `H·W` positions.
    pub fn new_2d(num_features: usize) -> Result<Self> {
        Ok(Self::new(num_features)?.for_images())
    }

    /// The same layer as a BatchNorm2d (see [`new_2d`](Self::new_2d)).
    pub fn for_images(self) -> Self {
        BatchNorm1d {
            images: true,
            ..self
        }
    }

    /// Whether this is a BatchNorm2d.
    pub fn is_2d(&self) -> bool {
        self.images
    }

    /// A layer with the given parameters and running statistics (what a compiled
    /// model's `to_dynamic()` passes).
    pub fn from_parts(
        num_features: usize,
        eps: f64,
        momentum: f64,
        affine: Option<(Array1<T>, Array1<T>)>,
        running: Option<(Array1<T>, Array1<T>, u64)>,
    ) -> Result<Self> {
        let mut layer = Self::with_options(
            num_features,
            eps,
            momentum,
            affine.is_some(),
            running.is_some(),
        )?;
        if let Some((weight, bias)) = affine {
            check_length("BatchNorm1d weight", num_features, weight.len())?;
            check_length("BatchNorm1d bias", num_features, bias.len())?;
            layer.weight = Some(Tensor::parameter(weight.into_dyn()).with_label("weight"));
            layer.bias = Some(Tensor::parameter(bias.into_dyn()).with_label("bias"));
        }
        if let (Some((mean, var, count)), Some(buffers)) = (running, &layer.running) {
            check_length("BatchNorm1d running_mean", num_features, mean.len())?;
            check_length("BatchNorm1d running_var", num_features, var.len())?;
            buffers.mean.assign(&mean.into_dyn())?;
            buffers.var.assign(&var.into_dyn())?;
            buffers.num_batches_tracked.set(count);
        }
        Ok(layer)
    }

    /// The value added to the variance (`eps`).
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The number of features (channels for BatchNorm2d).
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// `running_mean`, if the layer tracks running statistics.
    pub fn running_mean(&self) -> Option<ArrayD<T>> {
        self.running.as_ref().map(|r| r.mean.to_array())
    }

    /// `running_var` (unbiased), if the layer tracks running statistics.
    pub fn running_var(&self) -> Option<ArrayD<T>> {
        self.running.as_ref().map(|r| r.var.to_array())
    }

    /// `num_batches_tracked`, if the layer tracks running statistics.
    pub fn num_batches_tracked(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.num_batches_tracked.get())
    }

    /// Training mode (the default): batch statistics, running statistics updated.
    pub fn train(&mut self) {
        self.training = true;
    }

    /// Evaluation mode: the running statistics.
    pub fn eval(&mut self) {
        self.training = false;
    }

    /// Labels the parameters and buffers `"{prefix}.weight"`, … for pictures.
    pub(crate) fn set_prefix(self, prefix: &str) -> Self {
        BatchNorm1d {
            weight: self
                .weight
                .map(|w| w.with_label(format!("{prefix}.weight"))),
            bias: self.bias.map(|b| b.with_label(format!("{prefix}.bias"))),
            running: self.running.map(|r| Running {
                mean: r.mean.with_label(format!("{prefix}.running_mean")),
                var: r.var.with_label(format!("{prefix}.running_var")),
                num_batches_tracked: r.num_batches_tracked,
            }),
            ..self
        }
    }

    /// Visits `running_mean`, `running_var` and `num_batches_tracked` under `prefix`.
    pub(crate) fn visit_buffers(&mut self, prefix: &str, visitor: &mut dyn FnMut(Buffer<'_, T>)) {
        if let Some(running) = &mut self.running {
            visit_buffer_array(
                &format!("{prefix}running_mean"),
                &mut *running.mean.data_mut(),
                visitor,
            );
            visit_buffer_array(
                &format!("{prefix}running_var"),
                &mut *running.var.data_mut(),
                visitor,
            );
            visitor(Buffer {
                name: &format!("{prefix}num_batches_tracked"),
                value: BufferValue::Count(running.num_batches_tracked.get_mut()),
            });
        }
    }

    fn run(
        &self,
        x: &Tensor<T>,
        weight: Option<Tensor<T>>,
        bias: Option<Tensor<T>>,
    ) -> Result<Tensor<T>> {
        let shape = x.shape();
        let rank = if self.images { 4 } else { 2 };
        if shape.len() != rank || shape[1] != self.num_features || shape[0] == 0 {
            return Err(Error::BadShape {
                op: self.to_string(),
                expected: if self.images {
                    format!("an input of shape [batch, {}, H, W]", self.num_features)
                } else {
                    format!("an input of shape [batch, {}]", self.num_features)
                },
                found: shape,
            });
        }
        if self.images {
            return self.run_2d(x, weight, bias);
        }
        let x_hat = match &self.running {
            Some(running) if !self.training => {
                // Constants: y is affine in x.
                let eps = T::of(self.eps);
                let inv_std = running.var.data().mapv(|v| T::one() / (v + eps).sqrt());
                let centered = x.try_sub(&running.mean)?;
                centered.try_mul(&Tensor::constant(inv_std).with_label("1/√(running_var + ε)"))?
            }
            running => {
                if shape[0] < 2 && self.training {
                    return Err(Error::InvalidArgument {
                        what: self.to_string(),
                        expected: "more than one row per batch in training (the variance of one \
                                   value is 0); use eval() for single rows"
                            .into(),
                        found: format!("a batch of shape {shape:?}"),
                    });
                }
                let mean = x.mean_axis(0)?;
                let centered = x.try_sub(&mean)?;
                let var = centered.square().mean_axis(0)?;
                let inv_std = var
                    .try_add(&Tensor::scalar(T::of(self.eps)))?
                    .powf(T::of(-0.5));
                if let Some(running) = running
                    && self.training
                {
                    self.update(running, &mean.data(), &var.data(), shape[0]);
                }
                centered.try_mul(&inv_std)?
            }
        };
        let scaled = match weight {
            Some(w) => x_hat.try_mul(&w)?,
            None => x_hat,
        };
        match bias {
            Some(b) => scaled.try_add(&b),
            None => Ok(scaled),
        }
    }

    /// BatchNorm2d on `[N, C, H, W]`: the same composition, the statistics over axes 0, 2
    /// and 3, the per-channel tensors seen as `[C, 1, 1]` so that they broadcast.
    fn run_2d(
        &self,
        x: &Tensor<T>,
        weight: Option<Tensor<T>>,
        bias: Option<Tensor<T>>,
    ) -> Result<Tensor<T>> {
        let shape = x.shape();
        let c = self.num_features as isize;
        let per_channel = |t: &Tensor<T>| t.reshape(&[c, 1, 1]);
        let x_hat = match &self.running {
            Some(running) if !self.training => {
                let eps = T::of(self.eps);
                let inv_std = running.var.data().mapv(|v| T::one() / (v + eps).sqrt());
                let centered = x.try_sub(&per_channel(&running.mean)?)?;
                let inv_std = Tensor::constant(inv_std).with_label("1/√(running_var + ε)");
                centered.try_mul(&per_channel(&inv_std)?)?
            }
            running => {
                let count = shape[0] * shape[2] * shape[3];
                if count < 2 && self.training {
                    return Err(Error::InvalidArgument {
                        what: self.to_string(),
                        expected:
                            "more than one value per channel in training; use eval() otherwise"
                                .into(),
                        found: format!("a batch of shape {shape:?}"),
                    });
                }
                let mean = x.mean_dims(&[0, 2, 3], true)?;
                let centered = x.try_sub(&mean)?;
                let var = centered.square().mean_dims(&[0, 2, 3], true)?;
                let inv_std = var
                    .try_add(&Tensor::scalar(T::of(self.eps)))?
                    .powf(T::of(-0.5));
                if let Some(running) = running
                    && self.training
                {
                    let flat = |t: &Tensor<T>| {
                        t.data()
                            .iter()
                            .copied()
                            .collect::<ndarray::Array1<T>>()
                            .into_dyn()
                    };
                    self.update(running, &flat(&mean), &flat(&var), count);
                }
                centered.try_mul(&inv_std)?
            }
        };
        let scaled = match weight {
            Some(w) => x_hat.try_mul(&per_channel(&w)?)?,
            None => x_hat,
        };
        match bias {
            Some(b) => scaled.try_add(&per_channel(&b)?),
            None => Ok(scaled),
        }
    }

    /// The running statistics move `momentum` of the way to the batch's (the variance
    /// unbiased, `σ²·n/(n - 1)` over the `n` values each channel had), as PyTorch's do.
    fn update(&self, running: &Running<T>, mean: &ArrayD<T>, var: &ArrayD<T>, batch: usize) {
        let m = T::of(self.momentum);
        let unbias = T::of(batch as f64 / (batch - 1) as f64);
        running
            .mean
            .data_mut()
            .zip_mut_with(mean, |r, &b| *r = (T::one() - m) * *r + m * b);
        running
            .var
            .data_mut()
            .zip_mut_with(var, |r, &b| *r = (T::one() - m) * *r + m * b * unbias);
        running
            .num_batches_tracked
            .set(running.num_batches_tracked.get() + 1);
    }
}

/// `num_features >= 1` and `eps > 0`.
pub(crate) fn check_norm_arguments(layer: &str, features: usize, eps: f64) -> Result<()> {
    if features == 0 || !(eps.is_finite() && eps > 0.0) {
        return Err(Error::InvalidArgument {
            what: layer.into(),
            expected: "at least one feature and a finite eps > 0 (PyTorch's default: 1e-5)".into(),
            found: format!("{features} features, eps = {eps}"),
        });
    }
    Ok(())
}

fn check_length(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected != found {
        return Err(Error::BadShape {
            op: what.into(),
            expected: format!("[{expected}]"),
            found: vec![found],
        });
    }
    Ok(())
}

/// `weight = 1`, `bias = 0`, as PyTorch initialises normalisation layers.
pub(crate) fn affine_parameters<T: Float>(
    features: usize,
    affine: bool,
) -> (Option<Tensor<T>>, Option<Tensor<T>>) {
    if !affine {
        return (None, None);
    }
    (
        Some(Tensor::parameter(ArrayD::ones(vec![features])).with_label("weight")),
        Some(Tensor::parameter(ArrayD::zeros(vec![features])).with_label("bias")),
    )
}

impl<T: Float> Module<T> for BatchNorm1d<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        self.run(x, self.weight.clone(), self.bias.clone())
    }

    fn forward_no_grad(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let detach = |t: &Option<Tensor<T>>| t.as_ref().map(Tensor::detach);
        self.run(&x.detach(), detach(&self.weight), detach(&self.bias))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor<T>)> {
        let mut params = Vec::new();
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            params.push(("weight".to_string(), w.clone()));
            params.push(("bias".to_string(), b.clone()));
        }
        params
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

impl<T: Float> fmt::Display for BatchNorm1d<T> {
    /// PyTorch's repr: `BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=True,
    /// track_running_stats=True)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let py = |b: bool| if b { "True" } else { "False" };
        write!(
            f,
            "BatchNorm{}d({}, eps={:e}, momentum={}, affine={}, track_running_stats={})",
            if self.images { 2 } else { 1 },
            self.num_features,
            self.eps,
            self.momentum,
            py(self.weight.is_some()),
            py(self.running.is_some())
        )
    }
}
