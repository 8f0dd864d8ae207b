#!/usr/bin/env bash
# Runs nnscratch (compiled and dynamic) and its peers — PyTorch eager, JAX (`jit` of the
# whole step) and numpy (hand-written backprop) — on the same workloads, interleaved
# A B C ... A B C so that noise on this shared machine hits all of them alike, and prints
# the medians, each nnscratch engine's speed-up over the fastest peer, and for w3 the
# GFLOP/s as a fraction of the machine's sgemm peak (PyTorch, 2048x2048, same threads)
# and of its FMA throughput (`bench --fma-peak`: independent FMAs in registers, the
# roofline no product can pass), both measured every round and the best kept.
#
#   bench/compare.sh [ROUNDS] [THREADS...]      e.g.  bench/compare.sh 5 1 2
#
# WORKLOADS="w3 w4" limits the run to some workloads (default: all); PEERS="pytorch jax"
# to some peers (default: pytorch jax numpy). The dynamic engine runs w4 (a CNN, its
# convolutions written as plain loops) for 3 steps a round only.
#
# The peers are optional: set PYTHON to an interpreter that has torch, jax and numpy
# (default: python3). A peer whose library is missing is left out (bench/peers.py says so).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
shift || true
threads_list=("${@:-1}")
[ "${#threads_list[@]}" -eq 0 ] && threads_list=(1)
python="${PYTHON:-python3}"
read -r -a workloads <<<"${WORKLOADS:-w1 w2 w3 w4 seed-fit}"
read -r -a wanted_peers <<<"${PEERS:-pytorch jax numpy}"

cargo build --release --quiet --example bench
bench=target/release/examples/bench

peers=()
for peer in "${wanted_peers[@]}"; do
  if "$python" bench/peers.py --peer "$peer" --workload w1 --steps 2 --json >/dev/null 2>&1; then
    peers+=("$peer")
  else
    echo "(peer $peer not available to $python: left out)" >&2
  fi
done

results="$(mktemp)"
for threads in "${threads_list[@]}"; do
  for round in $(seq "$rounds"); do
    for workload in "${workloads[@]}"; do
      "$bench" --workload "$workload" --engine compiled --threads "$threads" --json >>"$results"
      dynamic_steps=()
      [ "$workload" = w4 ] && dynamic_steps=(--steps 3)
      "$bench" --workload "$workload" --engine dynamic --threads "$threads" "${dynamic_steps[@]}" --json >>"$results"
      for peer in "${peers[@]}"; do
        # status 3: this peer has no such workload (numpy and w4)
        "$python" bench/peers.py --peer "$peer" --workload "$workload" --threads "$threads" --json >>"$results" 2>/dev/null || [ $? = 3 ]
      done
    done
    # The peaks once a round too: a peak is the best of its samples (noise only lowers
    # it), and one sample taken while a neighbour held a core misstates it.
    "$bench" --fma-peak --threads "$threads" >>"$results" || true
    if printf '%s\n' "${peers[@]}" | grep -qx pytorch; then
      "$python" bench/peers.py --sgemm-peak --threads "$threads" --json >>"$results"
    fi
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def best(key):
    found = {}
    for r in rows:
        if key in r:
            found[r["threads"]] = max(found.get(r["threads"], 0.0), r[key])
    return found
peaks = best("sgemm_gflops")
fma = best("fma_peak_gflops")
runs = {}
for r in rows:
    if "workload" in r:
        runs.setdefault((r["threads"], r["workload"], r["engine"]), []).append(r)
engines = ["compiled", "dynamic", "pytorch", "jax", "numpy"]
peer_names = ["pytorch", "jax", "numpy"]
median = lambda rs, key: statistics.median(r[key] for r in rs)
print(f"{'threads':>7} {'workload':<9} {'engine':<9} {'median µs/step':>15} {'vs fastest peer':>16} "
      f"{'allocs/step':>12} {'GFLOP/s':>8} {'of peak':>8} {'of FMA':>7}  runs")
for threads in sorted({k[0] for k in runs}):
    for workload in ["w1", "w2", "w3", "w4", "seed-fit"]:
        peer_us = {p: median(runs[(threads, workload, p)], "us_per_step")
                   for p in peer_names if (threads, workload, p) in runs}
        fastest = min(peer_us.items(), key=lambda kv: kv[1]) if peer_us else None
        for engine in engines:
            rs = runs.get((threads, workload, engine))
            if not rs:
                continue
            us = median(rs, "us_per_step")
            ratio = f"{fastest[1] / us:.2f}x {fastest[0]}" if fastest else "-"
            allocs = rs[0]["allocs_per_step"]
            allocs = "-" if allocs is None else f"{allocs:.3g}"
            g = [r["gflops"] for r in rs if r.get("gflops")]
            gflops = statistics.median(g) if g else None
            peak = peaks.get(threads)
            of_peak = f"{100 * gflops / peak:.0f}%" if gflops and peak else "-"
            of_fma = f"{100 * gflops / fma[threads]:.0f}%" if gflops and threads in fma else "-"
            g = f"{gflops:.1f}" if gflops else "-"
            extra = ""
            if workload == "seed-fit":
                extra = f"  (whole run {median(rs, 'total_seconds'):.3f} s)"
            print(f"{threads:>7} {workload:<9} {engine:<9} {us:>15.2f} {ratio:>16} {allocs:>12} "
                  f"{g:>8} {of_peak:>8} {of_fma:>7}  {len(rs)}{extra}")
for threads, peak in sorted(peaks.items()):
    print(f"sgemm peak (PyTorch, 2048x2048, {threads} thread(s)): {peak:.1f} GFLOP/s")
for threads, peak in sorted(fma.items()):
    print(f"FMA peak (bench --fma-peak: 12 chains in registers, {threads} thread(s)): {peak:.1f} GFLOP/s"
          " (best of the rounds)")
for threads, peak in sorted(fma.items()):
    if threads > 1 and 1 in fma and peak < 0.75 * threads * fma[1]:
        print(f"warning: {threads} threads never reached {threads}x one thread's FMA peak "
              f"({peak:.1f} vs {fma[1]:.1f} GFLOP/s): the machine did not give this run "
              f"{threads} cores; its {threads}-thread figures understate them")
PY
rm -f "$results"
