#!/usr/bin/env python3
"""The benchmark's workloads in PyTorch eager on CPU: the peer nnscratch is measured against.

Same flags and JSON as `cargo run --release --example bench`:

    python3 bench/peers.py --workload w1|w2|w3|w4|seed-fit [--threads N] [--steps S] [--json]
    python3 bench/peers.py --sgemm-peak [--threads N]     # GFLOP/s of a large sgemm

PyTorch is optional (it is large): `pip install torch` in a virtual environment. Without
it this script says so and exits with status 3, which bench/compare.sh treats as "skip".
"""

import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("peers.py: PyTorch is not installed; install it with `pip install torch` "
          "(large download) to compare against it. Skipping.", file=sys.stderr)
    sys.exit(3)

W3_FLOPS = 2 * (2 * 128 * (784 * 256 + 256 * 128 + 128 * 10)) + 2 * 128 * (256 * 128 + 128 * 10)


def model(workload):
    if workload == "w1":
        return nn.Sequential(nn.Linear(10, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 1))
    if workload == "w2":
        return nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    if workload == "w3":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    if workload == "w4":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(784, 10))
    return nn.Sequential(nn.Linear(1, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 1))


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


def run(workload, steps):
    torch.manual_seed(0)
    if workload == "seed-fit":
        return seed_fit(steps)
    batch, inputs, outputs, default_steps = {"w1": (1, 10, 1, 5000), "w2": (64, 1, 1, 2000),
                                             "w3": (128, 784, 10, 50), "w4": (64, 784, 10, 20)}[workload]
    steps = steps or default_steps
    reps = 1 if steps < 10 else 7
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

    us = time_steps(steps, reps, step)
    return {"us_per_step": us, "gflops": W3_FLOPS / (us * 1e-6) / 1e9 if workload == "w3" else None}


def seed_fit(epochs):
    epochs = epochs or 3000
    reps = 1 if epochs < 10 else 3
    x = torch.linspace(-6, 4.5, 100).reshape(100, 1)
    y = torch.sin(x) + 0.3 * torch.exp(x)
    totals = []
    for rep in range(reps):
        torch.manual_seed(rep)
        net = model("seed-fit")
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)
        started = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(100)
            for b in range(5):
                rows = order[b * 20:(b + 1) * 20]
                opt.zero_grad()
                F.mse_loss(net(x[rows]), y[rows]).backward()
                opt.step()
        totals.append(time.perf_counter() - started)
    total = statistics.median(totals)
    return {"us_per_step": total * 1e6 / (epochs * 5), "gflops": None, "total_seconds": total}


def sgemm_peak():
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["w1", "w2", "w3", "w4", "seed-fit"])
    parser.add_argument("--engine", default="pytorch", help="ignored; always PyTorch eager")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sgemm-peak", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.sgemm_peak:
        peak = sgemm_peak()
        print(json.dumps({"sgemm_gflops": round(peak, 1), "threads": args.threads}) if args.json
              else f"sgemm peak with {args.threads} thread(s): {peak:.1f} GFLOP/s")
        return
    if not args.workload:
        parser.error("--workload is required")
    result = run(args.workload, args.steps)
    record = {"workload": args.workload, "engine": "pytorch", "threads": args.threads,
              "us_per_step": round(result["us_per_step"], 3), "allocs_per_step": None,
              "gflops": None if result["gflops"] is None else round(result["gflops"], 3)}
    if "total_seconds" in result:
        record["total_seconds"] = round(result["total_seconds"], 4)
    if args.json:
        print(json.dumps(record))
    else:
        print(f"workload {args.workload}  engine pytorch {torch.__version__}  threads {args.threads}")
        print(f"  median {record['us_per_step']:.3f} µs per step")
        if record["gflops"]:
            print(f"  {record['gflops']:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
