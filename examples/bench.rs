//! Training-step benchmark, with the same workloads as `bench/peers.py` (PyTorch).
//!
//!     cargo run --release --example bench -- --workload w1|w2|w3|w4|seed-fit
//!         [--engine compiled|dynamic] [--threads N] [--steps S] [--json]
//!
//! A step is forward + loss + backward + SGD update (lr 0.01; seed-fit: lr 1e-3), in f32,
//! on fixed random inputs, weights from U(±1/√in). After a warm-up, several timed
//! repetitions of `S` steps each; printed: the median microseconds per step, heap
//! allocations per step (a counting global allocator), and for w3 GFLOP/s counting the
//! real matmul work (forward, weight gradients, input gradients except the first layer's).
//!
//! Workloads:
//! * `w1`: Linear(10,30) ReLU Linear(30,30) ReLU Linear(30,1), MSE, batch 1;
//! * `w2`: Linear(1,64) Tanh Linear(64,64) Tanh Linear(64,1), MSE, batch 64;
//! * `w3`: Linear(784,256) ReLU Linear(256,128) ReLU Linear(128,10), CrossEntropy, batch 128;
//! * `w4`: input `[64, 1, 28, 28]`, Conv2d(1,8,3,padding=1) ReLU MaxPool2d(2)
//!   Conv2d(8,16,3,padding=1) ReLU MaxPool2d(2) Flatten Linear(784,10), CrossEntropy;
//! * `seed-fit`: the function-approximation run, 3000 epochs × 5 shuffled batches of 20
//!   (`--steps` sets the epochs), reported as total seconds and per step.
//!
//! `bench --fma-peak [--threads N]` measures the machine's FMA throughput instead (the
//! roofline for w3's GFLOP/s): twelve chains of fused multiply-adds in registers per
//! thread.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ndarray::Array2;
use nnscratch::Tensor;
use nnscratch::data::{self, MiniBatches};
use nnscratch::model;
use nnscratch::nn::{LayerSpec, Linear, Module, ReLU, Sequential, Tanh};
use nnscratch::optim::{Optimizer, Parameters, Sgd};
use rand::{RngExt, SeedableRng};

/// Counts every allocation of the process.
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

model! { pub struct W1 { input: 10, Linear(30), ReLU, Linear(30, 30), ReLU, Linear(1), loss: MSELoss, } }
model! { pub struct W2 { input: 1, Linear(64), Tanh, Linear(64, 64), Tanh, Linear(1), loss: MSELoss, } }
model! { pub struct W3 { input: 784, Linear(256), ReLU, Linear(256, 128), ReLU, Linear(10), loss: CrossEntropyLoss, } }
model! {
    pub struct W4 {
        input: [1, 28, 28],
        Conv2d(1, 8, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(8, 16, 3, padding = 1), ReLU, MaxPool2d(2),
        Flatten, Linear(784, 10),
        loss: CrossEntropyLoss,
    }
}
model! { pub struct SeedFit { input: 1, Linear(30), ReLU, Linear(30, 30), ReLU, Linear(1), loss: MSELoss, } }

const USAGE: &str = "usage: bench --workload w1|w2|w3|w4|seed-fit [--engine compiled|dynamic] [--threads N] [--steps S] [--json]";

/// One measurement, as printed with `--json`.
#[derive(Debug, Clone)]
pub struct Record {
    pub workload: String,
    pub engine: String,
    pub threads: usize,
    pub us_per_step: f64,
    pub allocs_per_step: f64,
    pub gflops: Option<f64>,
    pub total_seconds: Option<f64>,
}

impl Record {
    pub fn json(&self) -> String {
        let number = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
        let mut line = format!(
            "{{\"workload\":\"{}\",\"engine\":\"{}\",\"threads\":{},\"us_per_step\":{:.3},\"allocs_per_step\":{:.3},\"gflops\":{}",
            self.workload,
            self.engine,
            self.threads,
            self.us_per_step,
            self.allocs_per_step,
            number(self.gflops)
        );
        if let Some(total) = self.total_seconds {
            line.push_str(&format!(",\"total_seconds\":{total:.4}"));
        }
        line.push('}');
        line
    }
}

/// Matmul FLOPs of one w3 step: forward and weight gradients of every layer, input
/// gradients of all but the first.
pub const W3_FLOPS: f64 = {
    let b = 128.0;
    let forward = 2.0 * b * (784.0 * 256.0 + 256.0 * 128.0 + 128.0 * 10.0);
    let input_grads = 2.0 * b * (256.0 * 128.0 + 128.0 * 10.0);
    2.0 * forward + input_grads
};

/// Parsed flags.
pub struct Options {
    pub workload: String,
    pub engine: String,
    pub threads: usize,
    pub steps: Option<usize>,
    pub json: bool,
}

pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workload: String::new(),
        engine: "compiled".into(),
        threads: 1,
        steps: None,
        json: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--workload" => options.workload = value("--workload")?,
            "--engine" => options.engine = value("--engine")?,
            "--threads" => {
                options.threads = value("--threads")?
                    .parse()
                    .map_err(|_| format!("--threads: a number\n{USAGE}"))?
            }
            "--steps" => {
                options.steps = Some(
                    value("--steps")?
                        .parse()
                        .map_err(|_| format!("--steps: a number\n{USAGE}"))?,
                )
            }
            "--json" => options.json = true,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if !["w1", "w2", "w3", "w4", "seed-fit"].contains(&options.workload.as_str()) {
        return Err(format!(
            "--workload must be w1, w2, w3, w4 or seed-fit\n{USAGE}"
        ));
    }
    if !["compiled", "dynamic"].contains(&options.engine.as_str()) {
        return Err(format!("--engine must be compiled or dynamic\n{USAGE}"));
    }
    if options.threads == 0 {
        return Err(format!("--threads must be at least 1\n{USAGE}"));
    }
    Ok(options)
}

/// Times `reps` repetitions of `steps` calls of `step` after a warm-up; returns the
/// median microseconds per step and the allocations per step.
fn time_steps(
    steps: usize,
    reps: usize,
    mut step: impl FnMut() -> Result<(), String>,
) -> Result<(f64, f64), String> {
    for _ in 0..(steps / 5).max(2) {
        step()?;
    }
    let mut per_step = Vec::with_capacity(reps);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..reps {
        let started = Instant::now();
        for _ in 0..steps {
            step()?;
        }
        per_step.push(started.elapsed().as_secs_f64() * 1e6 / steps as f64);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    per_step.sort_by(f64::total_cmp);
    Ok((
        per_step[reps / 2],
        allocations as f64 / (steps * reps) as f64,
    ))
}

fn random(rows: usize, cols: usize, rng: &mut rand::rngs::StdRng) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0..1.0))
}

fn specs(workload: &str) -> Vec<LayerSpec> {
    match workload {
        "w1" => vec![Linear(10, 30), ReLU, Linear(30, 30), ReLU, Linear(30, 1)],
        "w2" => vec![Linear(1, 64), Tanh, Linear(64, 64), Tanh, Linear(64, 1)],
        "w3" => vec![
            Linear(784, 256),
            ReLU,
            Linear(256, 128),
            ReLU,
            Linear(128, 10),
        ],
        "w4" => vec![
            nnscratch::nn::Conv2d(1, 8, 3).padding(1),
            ReLU,
            nnscratch::nn::MaxPool2d(2),
            nnscratch::nn::Conv2d(8, 16, 3).padding(1),
            ReLU,
            nnscratch::nn::MaxPool2d(2),
            nnscratch::nn::Flatten,
            Linear(784, 10),
        ],
        _ => vec![Linear(1, 30), ReLU, Linear(30, 30), ReLU, Linear(30, 1)],
    }
}

/// Runs one benchmark as the flags say.
pub fn run(options: &Options) -> Result<Record, String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (batch, inputs, outputs, default_steps) = match options.workload.as_str() {
        "w1" => (1, 10, 1, 20_000),
        "w2" => (64, 1, 1, 5_000),
        "w3" => (128, 784, 10, 100),
        "w4" => (64, 784, 10, 20),
        _ => return seed_fit(options),
    };
    // A compiled w1 step takes well under a microsecond: ten times the steps, so that a
    // timed repetition lasts about 0.1 s and a moment of noise on a shared machine does
    // not decide it.
    let default_steps = match (options.engine.as_str(), options.workload.as_str()) {
        ("compiled", "w1") => 10 * default_steps,
        _ => default_steps,
    };
    let steps = options.steps.unwrap_or(default_steps);
    let reps = if options.steps.is_some() && steps < 10 {
        1
    } else {
        7
    };
    let x = random(batch, inputs, &mut rng);
    let values = random(batch, outputs, &mut rng);
    let classes: Vec<usize> = (0..batch).map(|_| rng.random_range(0..outputs)).collect();
    let mut sgd = Sgd::new(0.01);
    let err = |e: nnscratch::Error| e.to_string();
    let (us, allocs) = match (options.engine.as_str(), options.workload.as_str()) {
        ("compiled", "w1") => {
            let mut net = W1::<f32>::new(&mut rng);
            net.set_threads(options.threads);
            time_steps(steps, reps, || {
                net.loss_backward(x.view(), values.view()).map_err(err)?;
                sgd.step(&mut net).map_err(err)
            })?
        }
        ("compiled", "w2") => {
            let mut net = W2::<f32>::new(&mut rng);
            net.set_threads(options.threads);
            time_steps(steps, reps, || {
                net.loss_backward(x.view(), values.view()).map_err(err)?;
                sgd.step(&mut net).map_err(err)
            })?
        }
        ("compiled", "w4") => {
            let mut net = W4::<f32>::new(&mut rng);
            net.set_threads(options.threads);
            time_steps(steps, reps, || {
                net.loss_backward(x.view(), &classes).map_err(err)?;
                sgd.step(&mut net).map_err(err)
            })?
        }
        ("compiled", _) => {
            let mut net = W3::<f32>::new(&mut rng);
            net.set_threads(options.threads);
            time_steps(steps, reps, || {
                net.loss_backward(x.view(), &classes).map_err(err)?;
                sgd.step(&mut net).map_err(err)
            })?
        }
        (_, workload) => {
            let mut net = Sequential::<f32>::new(specs(workload), &mut rng).map_err(err)?;
            let x = Tensor::new(x.clone().into_dyn());
            // The CNN reads images [batch, 1, 28, 28].
            let x = if workload == "w4" {
                x.reshape(&[-1, 1, 28, 28]).map_err(err)?
            } else {
                x
            };
            let values = Tensor::new(values.clone().into_dyn());
            time_steps(steps, reps, || {
                Parameters::zero_grad(&mut net);
                let out = net.forward(&x).map_err(err)?;
                let loss = if workload == "w3" || workload == "w4" {
                    out.cross_entropy(&classes)
                } else {
                    out.mse_loss(&values)
                }
                .map_err(err)?;
                loss.backward().map_err(err)?;
                sgd.step(&mut net).map_err(err)
            })?
        }
    };
    let gflops = (options.workload == "w3").then(|| W3_FLOPS / (us * 1e-6) / 1e9);
    Ok(Record {
        workload: options.workload.clone(),
        engine: options.engine.clone(),
        threads: options.threads,
        us_per_step: us,
        allocs_per_step: allocs,
        gflops,
        total_seconds: None,
    })
}

/// The whole function-approximation run (`--steps` epochs, default 3000), timed end to end.
fn seed_fit(options: &Options) -> Result<Record, String> {
    let epochs = options.steps.unwrap_or(3000);
    let reps = if epochs < 10 { 1 } else { 5 };
    let x = Array2::from_shape_fn((100, 1), |(i, _)| -6.0 + 10.5 * i as f32 / 99.0);
    let y = x.mapv(|v: f32| v.sin() + 0.3 * v.exp());
    let err = |e: nnscratch::Error| e.to_string();
    let mut totals = Vec::new();
    let mut allocations = 0;
    for rep in 0..reps {
        let mut rng = rand::rngs::StdRng::seed_from_u64(rep as u64);
        let mut sgd = Sgd::new(1e-3);
        let (mut xb_buffer, mut yb_buffer) = (Array2::zeros((0, 0)), Array2::zeros((0, 0)));
        // Setup (the model, the batch order) is outside the timed and counted region;
        // the first step's workspace sizing is inside it, as in a real run.
        let mut batches = MiniBatches::sequential(100, 20);
        let before;
        let started;
        if options.engine == "compiled" {
            let mut net = SeedFit::<f32>::new(&mut rng);
            net.set_threads(options.threads);
            before = ALLOCATIONS.load(Ordering::Relaxed);
            started = Instant::now();
            for _ in 0..epochs {
                batches.reshuffle(&mut rng);
                for rows in batches.iter() {
                    let xb = data::gather_rows(x.view(), rows, &mut xb_buffer)
                        .map_err(|e| e.to_string())?;
                    let yb = data::gather_rows(y.view(), rows, &mut yb_buffer)
                        .map_err(|e| e.to_string())?;
                    net.loss_backward(xb, yb).map_err(err)?;
                    sgd.step(&mut net).map_err(err)?;
                }
            }
        } else {
            let mut net = Sequential::<f32>::new(specs("seed-fit"), &mut rng).map_err(err)?;
            before = ALLOCATIONS.load(Ordering::Relaxed);
            started = Instant::now();
            for _ in 0..epochs {
                batches.reshuffle(&mut rng);
                for rows in batches.iter() {
                    let xb = Tensor::new(
                        data::gather_rows(x.view(), rows, &mut xb_buffer)
                            .map_err(|e| e.to_string())?
                            .to_owned()
                            .into_dyn(),
                    );
                    let yb = Tensor::new(
                        data::gather_rows(y.view(), rows, &mut yb_buffer)
                            .map_err(|e| e.to_string())?
                            .to_owned()
                            .into_dyn(),
                    );
                    Parameters::zero_grad(&mut net);
                    net.forward(&xb)
                        .and_then(|out| out.mse_loss(&yb))
                        .and_then(|l| l.backward())
                        .map_err(err)?;
                    sgd.step(&mut net).map_err(err)?;
                }
            }
        }
        totals.push(started.elapsed().as_secs_f64());
        allocations += ALLOCATIONS.load(Ordering::Relaxed) - before;
    }
    totals.sort_by(f64::total_cmp);
    let total = totals[reps / 2];
    let steps = epochs * 5;
    Ok(Record {
        workload: "seed-fit".into(),
        engine: options.engine.clone(),
        threads: options.threads,
        us_per_step: total * 1e6 / steps as f64,
        allocs_per_step: allocations as f64 / (steps * reps) as f64,
        gflops: None,
        total_seconds: Some(total),
    })
}

/// The single-precision FMA throughput of this machine, in GFLOP/s over `threads`
/// threads running at once: each runs twelve independent chains of fused multiply-adds
/// on the widest registers the CPU has, nothing read from memory. No matrix product can
/// go faster: it is the roofline against which the w3 GFLOP/s are read. `None` without
/// AVX2 and FMA. `iterations` rounds per chain (100 million take about a third of a
/// second).
pub fn fma_peak(threads: usize, iterations: u64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if !avx512 && !avx2 {
            return None;
        }
        let lanes = if avx512 { 16.0 } else { 8.0 };
        let barrier = std::sync::Barrier::new(threads);
        let started = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let started = Instant::now();
                        // SAFETY: the CPU has the instructions, checked above.
                        let sum = unsafe {
                            if avx512 {
                                fma_chains::avx512(std::hint::black_box(iterations))
                            } else {
                                fma_chains::avx2(std::hint::black_box(iterations))
                            }
                        };
                        std::hint::black_box(sum);
                        started.elapsed().as_secs_f64()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(f64::INFINITY))
                .fold(0.0, f64::max)
        });
        let flops = threads as f64 * iterations as f64 * 12.0 * lanes * 2.0;
        Some(flops / started / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, iterations);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod fma_chains {
    use std::arch::x86_64::*;

    /// `iterations` rounds of twelve independent `v = v·a + b` on 16 lanes.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iterations: u64) -> f32 {
        let (a, b) = (
            _mm512_set1_ps(std::hint::black_box(0.999_999)),
            _mm512_set1_ps(std::hint::black_box(1e-7)),
        );
        let mut chains = [_mm512_set1_ps(1.0); 12];
        for _ in 0..iterations {
            for v in chains.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        chains.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    /// The same on 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iterations: u64) -> f32 {
        let (a, b) = (
            _mm256_set1_ps(std::hint::black_box(0.999_999)),
            _mm256_set1_ps(std::hint::black_box(1e-7)),
        );
        let mut chains = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iterations {
            for v in chains.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut lanes = [0.0f32; 8];
        let mut total = 0.0;
        for v in chains {
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            total += lanes.iter().sum::<f32>();
        }
        total
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--fma-peak") {
        // `--fma-peak [--threads N]`: the roofline, as JSON.
        let threads = match args.get(1..) {
            Some([flag, n]) if flag == "--threads" => n.parse().unwrap_or(0),
            Some([]) => 1,
            _ => 0,
        };
        if threads == 0 {
            eprintln!("usage: bench --fma-peak [--threads N]");
            std::process::exit(2);
        }
        match fma_peak(threads, 100_000_000) {
            Some(g) => println!("{{\"fma_peak_gflops\":{g:.1},\"threads\":{threads}}}"),
            None => eprintln!("no FMA instructions on this CPU: no peak to measure"),
        }
        return;
    }
    // The dynamic engine's matrix products: this many threads (compiled models are set
    // per model, below).
    if let Ok(options) = parse(&args) {
        nnscratch::tensor::set_num_threads(options.threads);
    }
    let result = parse(&args).and_then(|options| run(&options).map(|record| (options, record)));
    match result {
        Ok((options, record)) if options.json => println!("{}", record.json()),
        Ok((_, r)) => {
            println!(
                "workload {}  engine {}  threads {}",
                r.workload, r.engine, r.threads
            );
            println!(
                "  median {:.3} µs per step, {:.2} allocations per step",
                r.us_per_step, r.allocs_per_step
            );
            if let Some(g) = r.gflops {
                println!("  {g:.1} GFLOP/s ({:.1} MFLOP per step)", W3_FLOPS / 1e6);
            }
            if let Some(t) = r.total_seconds {
                println!("  whole run {t:.4} s");
            }
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    }
}
