#!/usr/bin/env bash
# bench/mpi_scaling.sh [SEEDS...]   (run from the repo root, on a quiet machine: it times)
#
# Data-parallel crest against threads on this machine, Fashion-MNIST cnn, a global batch of 128 in both:
#   threads  one process, RAYON_NUM_THREADS=2, --bs 128
#   mpi      mpirun -np 2, RAYON_NUM_THREADS=1 per rank, --bs 64 per rank (the build with --features mpi)
#   one      one process, RAYON_NUM_THREADS=1, --bs 64: one rank's compute, the model's input
# Each prints crest bench's figures; epoch_s is the median epoch's training pass (validation excluded). Then
# bench/allreduce_model.py models N = 2..64 ranks on 10 and 100 Gb/s networks from the measured per-step compute
# (one's epoch_s / its steps): the cnn, and resnet18 when RESNET18_STEP_S (seconds per step on one rank) is given.
# Env: DATA (default ../shared/data/fashion-mnist), EPOCHS (default 3), BENCH_OUT (default
# bench/out/mpi-<timestamp>), RESNET18_STEP_S, SKIP_BUILD=1.

set -eu
cd "$(dirname "$0")/.." || exit 1
DATA=${DATA:-../shared/data/fashion-mnist}
EPOCHS=${EPOCHS:-3}
SEEDS=("$@")
[ ${#SEEDS[@]} -eq 0 ] && SEEDS=(1)
OUT=${BENCH_OUT:-bench/out/mpi-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
echo "mpi scaling: $DATA, cnn, $EPOCHS epochs, seeds ${SEEDS[*]}, logs in $OUT"
echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --quiet
    cargo build --release --quiet --features mpi --target-dir target/mpi
fi
# mpirun refuses root unless told; a container often runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# figure FILE KEY: KEY's value on the last line of FILE (crest bench's figures).
figure() { tail -n 1 "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

for seed in "${SEEDS[@]}"; do
    common=(bench "$DATA" --arch cnn --epochs "$EPOCHS" --seed "$seed" --out "$OUT/model-$seed.safetensors")
    RAYON_NUM_THREADS=2 target/release/crest "${common[@]}" --bs 128 >"$OUT/threads-$seed.log"
    RAYON_NUM_THREADS=1 mpirun -np 2 -x RAYON_NUM_THREADS target/mpi/release/crest "${common[@]}" --bs 64 \
        >"$OUT/mpi-$seed.log"
    RAYON_NUM_THREADS=1 target/release/crest "${common[@]}" --bs 64 >"$OUT/one-$seed.log"
    echo "seed $seed: epoch_s threads (1 process × 2 threads, bs 128) $(figure "$OUT/threads-$seed.log" epoch_s)," \
        "mpi (2 ranks × 1 thread, bs 64 each) $(figure "$OUT/mpi-$seed.log" epoch_s)," \
        "one rank's compute (1 thread, bs 64) $(figure "$OUT/one-$seed.log" epoch_s)"
done

# The model's input: one rank's compute per step, from the first seed (60,000 training images in steps of 64).
images=$(grep -o 'split: [0-9]* train' "$OUT/one-${SEEDS[0]}.log" | grep -o '[0-9]*')
step_s=$(python3 -c "import math; print($(figure "$OUT/one-${SEEDS[0]}.log" epoch_s) / math.ceil($images / 64))")
echo "one rank's compute per step: ${step_s}s ($images images, steps of 64)"
models=(--model "cnn:421642:$step_s" --model "resnet18:11689512:${RESNET18_STEP_S:-}")
python3 bench/allreduce_model.py "${models[@]}" | tee "$OUT/model.md"
