#!/usr/bin/env python3
"""The benchmark's workloads in the peers nnscratch is measured against, on CPU:
PyTorch eager, JAX (`jax.jit` of the whole step) and numpy (hand-written backprop).

Same flags and JSON as `cargo run --release --example bench`:

    python3 bench/peers.py --peer pytorch|jax|numpy --workload w1|w2|w3|w4|seed-fit
                           [--threads N] [--steps S] [--json]
    python3 bench/peers.py --sgemm-peak [--threads N]     # GFLOP/s of a large sgemm (PyTorch)

A step is forward + loss + backward + SGD update (lr 0.01; seed-fit: lr 1e-3), in
float32, on the same shapes as examples/bench.rs. Threads are set before the library
loads: PyTorch `torch.set_num_threads`; JAX with 1 thread runs XLA single-threaded
(`--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`) and the process is
pinned to one CPU, with N threads it is pinned to N CPUs; numpy's OpenBLAS gets
`OPENBLAS_NUM_THREADS=N`, and `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` are removed from
its environment (they select an old kernel). numpy has no w4 (a hand-written
convolution backprop in numpy would measure the hand-writing, not numpy).

Each library is optional: without it this script says so and exits with status 3,
which bench/compare.sh treats as "skip".
"""

import argparse
import json
import os
import statistics
import sys
import time

W3_FLOPS = 2 * (2 * 128 * (784 * 256 + 256 * 128 + 128 * 10)) + 2 * 128 * (256 * 128 + 128 * 10)

# (batch, inputs, outputs, default steps) per workload; seed-fit is separate.
SHAPES = {"w1": (1, 10, 1, 5000), "w2": (64, 1, 1, 2000), "w3": (128, 784, 10, 50),
          "w4": (64, 784, 10, 20)}
# Widths and activation of the MLP workloads.
MLPS = {"w1": ([10, 30, 30, 1], "relu"), "w2": ([1, 64, 64, 1], "tanh"),
        "w3": ([784, 256, 128, 10], "relu"), "seed-fit": ([1, 30, 30, 1], "relu")}


def missing(library, how):
    print(f"peers.py: {library} is not installed; {how} to compare against it. Skipping.",
          file=sys.stderr)
    sys.exit(3)


def configure(peer, threads):
    """Thread settings that must precede the library's import."""
    cpus = sorted(os.sched_getaffinity(0))
    if peer == "numpy":
        os.environ.pop("OPENBLAS_CORETYPE", None)
        os.environ.pop("OPENBLAS_L2_SIZE", None)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)
    if peer == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            os.environ["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1")
        os.sched_setaffinity(0, set(cpus[:max(threads, 1)]))


def time_steps(steps, reps, step):
    for _ in range(max(steps // 5, 2)):
        step()
    per_step = []
    for _ in range(reps):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        per_step.append((time.perf_counter() - started) * 1e6 / steps)
    return statistics.median(per_step)


def seed_fit_data(np):
    x = np.linspace(-6, 4.5, 100, dtype=np.float32).reshape(100, 1)
    return x, (np.sin(x) + 0.3 * np.exp(x)).astype(np.float32)


def timed_seed_fit(epochs, make_step):
    """The function-approximation run: `epochs` × 5 shuffled batches of 20; `make_step(rep)`
    returns `step(rows)`."""
    import numpy as np
    epochs = epochs or 3000
    reps = 1 if epochs < 10 else 3
    totals = []
    for rep in range(reps):
        step = make_step(rep)
        rng = np.random.default_rng(rep)
        started = time.perf_counter()
        for _ in range(epochs):
            order = rng.permutation(100)
            for b in range(5):
                step(order[b * 20:(b + 1) * 20])
        totals.append(time.perf_counter() - started)
    total = statistics.median(totals)
    return {"us_per_step": total * 1e6 / (epochs * 5), "total_seconds": total}


# ------------------------------------------------------------------------- PyTorch

def pytorch(workload, steps, threads):
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        missing("PyTorch", "`pip install torch` (large download)")
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def model(workload):
        if workload == "w4":
            return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Flatten(), nn.Linear(784, 10))
        widths, act = MLPS[workload]
        layers = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU() if act == "relu" else nn.Tanh())
        return nn.Sequential(*layers)

    if workload == "seed-fit":
        import numpy as np
        x, y = (torch.from_numpy(v) for v in seed_fit_data(np))

        def make_step(rep):
            torch.manual_seed(rep)
            net = model("seed-fit")
            opt = torch.optim.SGD(net.parameters(), lr=1e-3)

            def step(rows):
                rows = torch.from_numpy(rows)
                opt.zero_grad()
                F.mse_loss(net(x[rows]), y[rows]).backward()
                opt.step()
            return step
        return timed_seed_fit(steps, make_step)

    batch, inputs, outputs, default_steps = SHAPES[workload]
    steps = steps or default_steps
    net = model(workload)
    x = torch.rand(batch, inputs) * 2 - 1
    if workload == "w4":
        x = x.reshape(batch, 1, 28, 28)
    values = torch.rand(batch, outputs) * 2 - 1
    classes = torch.randint(0, outputs, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        out = net(x)
        loss = F.cross_entropy(out, classes) if workload in ("w3", "w4") else F.mse_loss(out, values)
        loss.backward()
        opt.step()

    return {"us_per_step": time_steps(steps, 1 if steps < 10 else 7, step)}


def sgemm_peak(threads):
    try:
        import torch
    except ImportError:
        missing("PyTorch", "`pip install torch`")
    torch.set_num_threads(threads)
    n = 2048
    a, b = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(7):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * n ** 3 / statistics.median(times) / 1e9


# ----------------------------------------------------------------------------- JAX

def jax_peer(workload, steps, threads):
    try:
        import jax
        import jax.numpy as jnp
        import numpy as np
    except ImportError:
        missing("JAX", "`pip install \"jax[cpu]\"`")
    lr = 1e-3 if workload == "seed-fit" else 0.01

    def init(key, widths):
        params = []
        for a, b in zip(widths, widths[1:]):
            key, k1, k2 = jax.random.split(key, 3)
            bound = 1 / np.sqrt(a)
            params.append((jax.random.uniform(k1, (a, b), jnp.float32, -bound, bound),
                           jax.random.uniform(k2, (b,), jnp.float32, -bound, bound)))
        return params

    def mlp(params, x, act):
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jax.nn.relu(x) if act == "relu" else jnp.tanh(x)
        return x

    def cnn(params, x):
        (k1, c1), (k2, c2), (w, b) = params
        dims = ("NCHW", "OIHW", "NCHW")
        pool = lambda h: jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2),
                                               (1, 1, 2, 2), "VALID")
        h = jax.lax.conv_general_dilated(x, k1, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=dims) + c1[None, :, None, None]
        h = pool(jax.nn.relu(h))
        h = jax.lax.conv_general_dilated(h, k2, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=dims) + c2[None, :, None, None]
        h = pool(jax.nn.relu(h))
        return h.reshape(h.shape[0], -1) @ w + b

    def loss(params, x, target):
        if workload == "w4":
            out = cnn(params, x)
        else:
            out = mlp(params, x, MLPS[workload][1])
        if workload in ("w3", "w4"):
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), target[:, None], 1))
        return jnp.mean((out - target) ** 2)

    @jax.jit
    def update(params, x, target):
        grads = jax.grad(loss)(params, x, target)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads)

    if workload == "seed-fit":
        xs, ys = (jnp.asarray(v) for v in seed_fit_data(np))

        @jax.jit
        def update_rows(params, rows):
            return update(params, xs[rows], ys[rows])

        def make_step(rep):
            state = {"params": init(jax.random.PRNGKey(rep), MLPS["seed-fit"][0])}

            def step(rows):
                state["params"] = jax.block_until_ready(update_rows(state["params"], rows))
            return step
        return timed_seed_fit(steps, make_step)

    batch, inputs, outputs, default_steps = SHAPES[workload]
    steps = steps or default_steps
    key = jax.random.PRNGKey(0)
    if workload == "w4":
        keys = jax.random.split(key, 6)
        u = lambda k, shape, fan_in: jax.random.uniform(k, shape, jnp.float32,
                                                        -1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in))
        params = [(u(keys[0], (8, 1, 3, 3), 9), u(keys[1], (8,), 9)),
                  (u(keys[2], (16, 8, 3, 3), 72), u(keys[3], (16,), 72)),
                  (u(keys[4], (784, 10), 784), u(keys[5], (10,), 784))]
    else:
        params = init(key, MLPS[workload][0])
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (batch, inputs)).astype(np.float32))
    if workload == "w4":
        x = x.reshape(batch, 1, 28, 28)
    if workload in ("w3", "w4"):
        target = jnp.asarray(rng.integers(0, outputs, batch))
    else:
        target = jnp.asarray(rng.uniform(-1, 1, (batch, outputs)).astype(np.float32))
    state = {"params": params}

    def step():
        state["params"] = jax.block_until_ready(update(state["params"], x, target))

    return {"us_per_step": time_steps(steps, 1 if steps < 10 else 7, step)}


# --------------------------------------------------------------------------- numpy

def numpy_peer(workload, steps, threads):
    try:
        import numpy as np
    except ImportError:
        missing("numpy", "`pip install numpy`")
    if workload == "w4":
        print("peers.py: numpy has no w4 (see the module docs). Skipping.", file=sys.stderr)
        sys.exit(3)
    widths, act = MLPS[workload]
    lr = np.float32(1e-3 if workload == "seed-fit" else 0.01)

    def init(seed):
        rng = np.random.default_rng(seed)
        params = []
        for a, b in zip(widths, widths[1:]):
            bound = 1 / np.sqrt(a)
            params.append([rng.uniform(-bound, bound, (a, b)).astype(np.float32),
                           rng.uniform(-bound, bound, b).astype(np.float32)])
        return params

    def step(params, x, target, classes):
        # forward, keeping each layer's input and activation output
        inputs, outs = [], []
        h = x
        for i, (w, b) in enumerate(params):
            inputs.append(h)
            z = h @ w
            z += b
            if i < len(params) - 1:
                h = np.maximum(z, 0) if act == "relu" else np.tanh(z)
                outs.append(h)
            else:
                h = z
        n = h.shape[0]
        if classes:  # cross-entropy of softmax(h) with integer targets
            e = np.exp(h - h.max(axis=1, keepdims=True))
            grad = e / e.sum(axis=1, keepdims=True)
            grad[np.arange(n), target] -= 1
            grad /= n
        else:  # mean squared error
            grad = (h - target) * np.float32(2 / h.size)
        # backward and SGD, last layer first
        for i in range(len(params) - 1, -1, -1):
            w, b = params[i]
            dw = inputs[i].T @ grad
            db = grad.sum(axis=0)
            if i > 0:
                grad = grad @ w.T
                y = outs[i - 1]
                if act == "relu":
                    grad *= y > 0
                else:
                    grad *= 1 - y * y
            w -= lr * dw
            b -= lr * db

    if workload == "seed-fit":
        xs, ys = seed_fit_data(np)

        def make_step(rep):
            params = init(rep)
            return lambda rows: step(params, xs[rows], ys[rows], False)
        return timed_seed_fit(steps, make_step)

    batch, inputs, outputs, default_steps = SHAPES[workload]
    steps = steps or default_steps
    rng = np.random.default_rng(0)
    params = init(0)
    x = rng.uniform(-1, 1, (batch, inputs)).astype(np.float32)
    classes = workload == "w3"
    target = (rng.integers(0, outputs, batch) if classes
              else rng.uniform(-1, 1, (batch, outputs)).astype(np.float32))
    us = time_steps(steps, 1 if steps < 10 else 7, lambda: step(params, x, target, classes))
    return {"us_per_step": us}


PEERS = {"pytorch": pytorch, "jax": jax_peer, "numpy": numpy_peer}


def version(peer):
    module = {"pytorch": "torch", "jax": "jax", "numpy": "numpy"}[peer]
    return sys.modules[module].__version__ if module in sys.modules else "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=sorted(PEERS), default="pytorch")
    parser.add_argument("--workload", choices=["w1", "w2", "w3", "w4", "seed-fit"])
    parser.add_argument("--engine", help="ignored (the peer is --peer)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sgemm-peak", action="store_true")
    args = parser.parse_args()
    if args.sgemm_peak:
        peak = sgemm_peak(args.threads)
        print(json.dumps({"sgemm_gflops": round(peak, 1), "threads": args.threads}) if args.json
              else f"sgemm peak with {args.threads} thread(s): {peak:.1f} GFLOP/s")
        return
    if not args.workload:
        parser.error("--workload is required")
    configure(args.peer, args.threads)
    result = PEERS[args.peer](args.workload, args.steps, args.threads)
    us = result["us_per_step"]
    gflops = W3_FLOPS / (us * 1e-6) / 1e9 if args.workload == "w3" else None
    record = {"workload": args.workload, "engine": args.peer, "threads": args.threads,
              "us_per_step": round(us, 3), "allocs_per_step": None,
              "gflops": None if gflops is None else round(gflops, 3)}
    if "total_seconds" in result:
        record["total_seconds"] = round(result["total_seconds"], 4)
    if args.json:
        print(json.dumps(record))
    else:
        print(f"workload {args.workload}  {args.peer} {version(args.peer)}  threads {args.threads}")
        print(f"  median {record['us_per_step']:.3f} µs per step")
        if record["gflops"]:
            print(f"  {record['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
