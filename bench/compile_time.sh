#!/usr/bin/env bash
# The compile-time cost of `model!`: release build time and binary size of a program that
# declares one model and takes one training step, for stacks of 10, 100 and 1000 layers
# (alternating Linear(32, 32) and Tanh: 1000 layers are 500 of each) and for the MNIST
# MLP (784-256-128-10).
#
#   bench/compile_time.sh [SIZES...]        e.g.  bench/compile_time.sh 10 100 1000
#
# It builds a scratch crate outside the repository that depends on this checkout;
# nnscratch itself is built once first, so each figure is the model's crate alone.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
sizes=("${@:-10 100 1000}")
read -r -a sizes <<<"${sizes[*]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "model_compile_time"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
nnscratch = { path = "$repo/nnscratch" }
rand = "0.10"
ndarray = "0.17"

[profile.release]
debug = false
TOML

program() { # $1: the model's body
  cat <<RS
use nnscratch::model;
use nnscratch::optim::{Optimizer, Sgd};
use rand::SeedableRng;

model! {
    pub struct Net {
$1
    }
}

fn main() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut net = Net::<f32>::new(&mut rng);
    let x = ndarray::Array2::<f32>::zeros((4, Net::<f32>::INPUT_WIDTH));
    let t = ndarray::Array2::<f32>::zeros((4, Net::<f32>::OUTPUT_WIDTH));
    let loss = net.loss_backward(x.view(), t.view()).expect("a step");
    Sgd::new(0.01).step(&mut net).expect("an update");
    println!("{loss}");
}
RS
}

stack() { # $1: layers, half of them Linear
  echo "        input: 32,"
  for _ in $(seq $(( $1 / 2 ))); do echo "        Linear(32), Tanh,"; done
  echo "        loss: MSELoss,"
}

mnist() {
  echo "        input: 784, Linear(256), ReLU, Linear(128), ReLU, Linear(10), loss: MSELoss,"
}

cd "$scratch"
program "$(stack 2)" >src/main.rs
cargo build --release --quiet 2>/dev/null || cargo build --release
printf '%-22s %12s %14s\n' "model" "build (s)" "binary (KiB)"
measure() { # $1: label, $2: body
  program "$2" >src/main.rs
  local started ended
  started=$(date +%s.%N)
  cargo build --release --quiet
  ended=$(date +%s.%N)
  printf '%-22s %12.1f %14d\n' "$1" "$(echo "$ended - $started" | bc)" \
    "$(( $(stat -c %s target/release/model_compile_time) / 1024 ))"
  ./target/release/model_compile_time >/dev/null
}
for n in "${sizes[@]}"; do
  measure "$n layers" "$(stack "$n")"
done
measure "784-256-128-10 MLP" "$(mnist)"
