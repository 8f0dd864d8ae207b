//! "No heap allocation in a training step once the batch size is seen", measured with a
//! counting global allocator: forward, loss, backward and the optimizer update of a
//! compiled model allocate nothing after the first step.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ndarray::Array2;
use nnscratch::model;
use nnscratch::optim::{Adam, Optimizer, Sgd};
use rand::SeedableRng;

/// Counts the allocations made by the current thread (other test threads don't interfere).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

model! {
    pub struct Mlp { input: 10, Linear(30), ReLU, Linear(30, 30), Tanh, Linear(1), loss: MSELoss, }
}

model! {
    pub struct Branchy {
        x = input(6);
        h = Sigmoid(Linear(x, 8));
        g = LeakyReLU(Linear(h, 8)) * h + h;
        out = Linear(g, 4);
        loss = CrossEntropyLoss(out);
    }
}

#[test]
fn a_compiled_sgd_training_step_allocates_nothing_after_the_first() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = Mlp::<f32>::new(&mut rng);
    let x = Array2::from_shape_fn((16, 10), |(i, j)| ((i * 10 + j) as f32).sin());
    let t = Array2::from_shape_fn((16, 1), |(i, _)| (i as f32).cos());
    let mut sgd = Sgd::new(0.01).momentum(0.9).weight_decay(1e-4);
    // The first step sizes the workspace and creates the momentum buffers.
    let first = allocations_during(|| {
        net.loss_backward(x.view(), t.view()).unwrap();
        sgd.step(&mut net).unwrap();
    });
    assert!(first > 0, "the counter counts");
    let steady = allocations_during(|| {
        for _ in 0..100 {
            net.loss_backward(x.view(), t.view()).unwrap();
            sgd.step(&mut net).unwrap();
            net.forward(x.view()).unwrap();
            net.loss(x.view(), t.view()).unwrap();
        }
    });
    assert_eq!(steady, 0, "allocations in 100 steady-state steps");
}

#[test]
fn a_compiled_adam_step_on_a_graph_model_allocates_nothing_after_the_first() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut net = Branchy::<f64>::new(&mut rng);
    let x = Array2::from_shape_fn((9, 6), |(i, j)| ((i + 2 * j) as f64).cos());
    let classes: Vec<usize> = (0..9).map(|i| i % 4).collect();
    let mut adam = Adam::new(1e-3);
    allocations_during(|| {
        net.loss_backward(x.view(), &classes).unwrap();
        adam.step(&mut net).unwrap();
    });
    let steady = allocations_during(|| {
        for _ in 0..50 {
            net.loss_backward(x.view(), &classes).unwrap();
            adam.step(&mut net).unwrap();
        }
    });
    assert_eq!(steady, 0);
}

#[test]
fn a_new_batch_size_reallocates_once_then_nothing() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut net = Mlp::<f32>::new(&mut rng);
    let small = Array2::<f32>::zeros((4, 10));
    let large = Array2::<f32>::zeros((32, 10));
    let (t_small, t_large) = (Array2::<f32>::zeros((4, 1)), Array2::<f32>::zeros((32, 1)));
    net.loss_backward(small.view(), t_small.view()).unwrap();
    assert!(allocations_during(|| drop(net.loss_backward(large.view(), t_large.view()))) > 0);
    assert_eq!(
        allocations_during(|| drop(net.loss_backward(large.view(), t_large.view()))),
        0
    );
}

model! {
    /// Every training-mode layer, every new loss argument, Linear without bias.
    pub struct TrainingModeLayers {
        input: 12,
        Linear(32, bias = false), BatchNorm1d, GELU, Dropout(0.2),
        Linear(32), LayerNorm, SiLU, Dropout(0.1),
        Linear(16), BatchNorm1d(affine = false, track_running_stats = false), ELU,
        Linear(4),
        loss: HuberLoss(delta = 0.5, reduction = "sum"),
    }
}

#[test]
fn a_training_mode_step_with_batch_norm_layer_norm_and_dropout_allocates_nothing() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut net = TrainingModeLayers::<f32>::new(&mut rng);
    let x = Array2::from_shape_fn((16, 12), |(i, j)| ((i * 12 + j) as f32).sin());
    let t = Array2::from_shape_fn((16, 4), |(i, j)| ((i + j) as f32).cos());
    let mut adam = Adam::adamw(1e-3).clip_grad_norm(1.0);
    allocations_during(|| {
        net.loss_backward(x.view(), t.view()).unwrap();
        adam.step(&mut net).unwrap();
    });
    let steady = allocations_during(|| {
        for _ in 0..50 {
            net.loss_backward(x.view(), t.view()).unwrap();
            adam.step(&mut net).unwrap();
        }
    });
    assert_eq!(steady, 0, "training mode");
    net.eval();
    let evaluation = allocations_during(|| {
        for _ in 0..10 {
            net.forward(x.view()).unwrap();
            net.loss(x.view(), t.view()).unwrap();
        }
    });
    assert_eq!(evaluation, 0, "evaluation mode");
}

model! {
    /// The benchmark's CNN (w4), a residual block aside.
    pub struct Cnn {
        input: [1, 28, 28],
        Conv2d(1, 8, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(8, 16, 3, padding = 1), ReLU, AvgPool2d(2),
        Flatten,
        Linear(10),
        loss: CrossEntropyLoss,
    }
}

#[test]
fn a_compiled_cnn_step_allocates_nothing_after_the_first() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut net = Cnn::<f32>::new(&mut rng);
    let x = Array2::from_shape_fn((8, 784), |(i, j)| ((i * 784 + j) as f32 * 0.01).sin());
    let classes: Vec<usize> = (0..8).map(|i| i % 10).collect();
    let mut sgd = Sgd::new(0.01);
    allocations_during(|| {
        net.loss_backward(x.view(), &classes).unwrap();
        sgd.step(&mut net).unwrap();
    });
    let steady = allocations_during(|| {
        for _ in 0..10 {
            net.loss_backward(x.view(), &classes).unwrap();
            sgd.step(&mut net).unwrap();
            net.forward(x.view()).unwrap();
        }
    });
    assert_eq!(steady, 0);
}
