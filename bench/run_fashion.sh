#!/usr/bin/env bash
# bench/run_fashion.sh [--quick] [SEEDS...]   (run from the repo root)
#
# Fashion-MNIST (60,000 train / 10,000 test), crest vs PyTorch, three models:
#   linear  Linear(784,10)
#   mlp     Linear(784,256)-ReLU-Linear(256,10)            (crest: --arch mlp:256)
#   cnn     Conv32-Pool-Conv64-Pool-Linear(3136,128)-Linear(128,10)
# Cross-entropy, Adam 1e-3, batch 128, 5 epochs. crest and PyTorch run one
# after the other (never concurrently), each under /usr/bin/time -v.
# Every figure: the median over SEEDS (default 1 2 3), each seed's two runs back to back.
# --quick: first seed only.
# Env: ARCHS (default "linear mlp cnn"), TORCH_PYTHON, CREST_BIN, SKIP_BUILD=1,
# DATA (default ../shared/data/fashion-mnist), BENCH_OUT (default bench/out/fashion-<timestamp>),
# BASE_BIN / BASE_CMD (another crest build run before crest in each pair: see bench/common.sh).

set -u
cd "$(dirname "$0")/.." || exit 1
. bench/common.sh
parse_args "$@"

DATA=${DATA:-../shared/data/fashion-mnist}
ARCHS=${ARCHS:-linear mlp cnn}
start_run fashion "data $DATA, archs $ARCHS"

crest_arch() { case "$1" in mlp) echo mlp:256 ;; *) echo "$1" ;; esac; }

for arch in $ARCHS; do
    for seed in "${SEEDS[@]}"; do
        if [ "$HAVE_BASE" = 1 ]; then
            timed "$OUT/base-$arch-$seed" "$BASE_BIN" "$BASE_CMD" "$DATA" --arch "$(crest_arch "$arch")" \
                --epochs 5 --bs 128 --seed "$seed"
        fi
        if [ "$HAVE_CREST" = 1 ]; then
            timed "$OUT/crest-$arch-$seed" "$CREST_BIN" bench "$DATA" --arch "$(crest_arch "$arch")" \
                --epochs 5 --bs 128 --seed "$seed"
        fi
        if [ "$HAVE_TORCH" = 1 ]; then
            timed "$OUT/torch-$arch-$seed" "$TORCH_PYTHON" bench/torch_fashion.py "$DATA" \
                --arch "$arch" --epochs 5 --seed "$seed"
        fi
    done
done

echo
echo "== results (median over seeds ${SEEDS[*]}: each seed's crest and PyTorch runs were back to back) =="
# per_seed WHO ARCH F: F's value for each seed's run of WHO (crest or torch)
per_seed() { for seed in "${SEEDS[@]}"; do "$3" "$OUT/$1-$2-$seed" "${@:4}"; done; }
for arch in $ARCHS; do
    # crest reports the held-out (test) accuracy as valid_acc; accept test_acc too
    mapfile -t cacc < <(per_seed crest "$arch" kv valid_acc test_acc)
    mapfile -t tacc < <(per_seed torch "$arch" kv test_acc valid_acc)
    med() { median $(per_seed "$1" "$arch" "${@:2}"); }
    echo
    table_header "arch $arch"
    mapfile -t bacc < <(per_seed base "$arch" kv valid_acc test_acc)
    row "s/epoch" "$(med crest kv epoch_s)" "$(med torch kv epoch_s)" "$(med base kv epoch_s)"
    row "test acc" "$(median "${cacc[@]}")" "$(median "${tacc[@]}")" "$(median "${bacc[@]}")"
    row "inference images/s (higher=better)" "$(med crest kv infer_images_per_s)" "$(med torch kv infer_images_per_s)" \
        "$(med base kv infer_images_per_s)"
    row "max RSS MB (time -v)" "$(med crest maxrss_mb)" "$(med torch maxrss_mb)" "$(med base maxrss_mb)"
    row "wall s (whole process)" "$(med crest wall_s)" "$(med torch wall_s)" "$(med base wall_s)"
    base_seeds() { [ "$HAVE_BASE" = 1 ] && echo " | baseline $(per_seed base "$arch" "$@" | xargs)"; }
    echo "  s/epoch per seed: crest $(per_seed crest "$arch" kv epoch_s | xargs) | PyTorch $(per_seed torch "$arch" kv epoch_s | xargs)$(base_seeds kv epoch_s)"
    echo "  inference per seed: crest $(per_seed crest "$arch" kv infer_images_per_s | xargs) | PyTorch $(per_seed torch "$arch" kv infer_images_per_s | xargs)$(base_seeds kv infer_images_per_s)"
    echo "  test acc per seed ${SEEDS[*]}: crest ${cacc[*]} | PyTorch ${tacc[*]}$([ "$HAVE_BASE" = 1 ] && echo " | baseline ${bacc[*]}")"
done
echo
echo "ratios: crest/PyTorch (below 1 = crest faster/smaller for s and MB; above 1 = crest better for images/s)"
