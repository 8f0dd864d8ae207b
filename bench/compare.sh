#!/usr/bin/env bash
# Runs nnscratch (compiled and dynamic) and PyTorch eager on the same workloads,
# interleaved A B A B ... so that noise on this shared machine hits all of them alike,
# and prints the medians and the ratios to PyTorch.
#
#   bench/compare.sh [ROUNDS] [THREADS...]      e.g.  bench/compare.sh 5 1 2
#
# WORKLOADS="w3 w4" limits the run to some workloads (default: all). The dynamic engine
# runs w4 (a CNN, its convolutions written as plain loops) for 3 steps a round only.
#
# PyTorch is optional: set PYTHON to an interpreter that has torch (default: python3).
# Without it the PyTorch column is left empty.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
shift || true
threads_list=("${@:-1}")
[ "${#threads_list[@]}" -eq 0 ] && threads_list=(1)
python="${PYTHON:-python3}"
read -r -a workloads <<<"${WORKLOADS:-w1 w2 w3 w4 seed-fit}"

cargo build --release --quiet --example bench
bench=target/release/examples/bench

have_torch=1
"$python" bench/peers.py --workload w1 --steps 2 --json >/dev/null 2>&1 || have_torch=0
[ "$have_torch" = 1 ] || echo "(PyTorch not found by $python: comparing nnscratch engines only)" >&2

results="$(mktemp)"
for threads in "${threads_list[@]}"; do
  for round in $(seq "$rounds"); do
    for workload in "${workloads[@]}"; do
      "$bench" --workload "$workload" --engine compiled --threads "$threads" --json >>"$results"
      dynamic_steps=()
      [ "$workload" = w4 ] && dynamic_steps=(--steps 3)
      "$bench" --workload "$workload" --engine dynamic --threads "$threads" "${dynamic_steps[@]}" --json >>"$results"
      if [ "$have_torch" = 1 ]; then
        "$python" bench/peers.py --workload "$workload" --threads "$threads" --json >>"$results"
      fi
    done
  done
  if [ "$have_torch" = 1 ]; then
    "$python" bench/peers.py --sgemm-peak --threads "$threads" --json >>"$results"
  fi
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
peaks = {r["threads"]: r["sgemm_gflops"] for r in rows if "sgemm_gflops" in r}
runs = {}
for r in rows:
    if "workload" in r:
        runs.setdefault((r["threads"], r["workload"], r["engine"]), []).append(r)
print(f"{'threads':>7} {'workload':<9} {'engine':<9} {'median µs/step':>15} {'vs pytorch':>11} {'allocs/step':>12} {'GFLOP/s':>8}  runs")
for threads in sorted({k[0] for k in runs}):
    for workload in ["w1", "w2", "w3", "w4", "seed-fit"]:
        torch_runs = runs.get((threads, workload, "pytorch"))
        torch_us = statistics.median(r["us_per_step"] for r in torch_runs) if torch_runs else None
        for engine in ["compiled", "dynamic", "pytorch"]:
            rs = runs.get((threads, workload, engine))
            if not rs:
                continue
            us = statistics.median(r["us_per_step"] for r in rs)
            ratio = f"{torch_us / us:.1f}x" if torch_us else "-"
            allocs = rs[0]["allocs_per_step"]
            allocs = "-" if allocs is None else f"{allocs:.3g}"
            g = [r["gflops"] for r in rs if r.get("gflops")]
            g = f"{statistics.median(g):.1f}" if g else "-"
            extra = ""
            if workload == "seed-fit":
                extra = f"  (whole run {statistics.median(r['total_seconds'] for r in rs):.3f} s)"
            print(f"{threads:>7} {workload:<9} {engine:<9} {us:>15.2f} {ratio:>11} {allocs:>12} {g:>8}  {len(rs)}{extra}")
for threads, peak in sorted(peaks.items()):
    print(f"sgemm peak (PyTorch, 2048x2048, {threads} thread(s)): {peak:.1f} GFLOP/s")
PY
rm -f "$results"
