#!/usr/bin/env bash
# bench/transfer.sh [--quick] [SEEDS...]   (run from the repo root; not run in CI)
#
# Transfer learning with crest alone: does a body pretrained on one task help a small, different one?
#   1. pretrain ARCH on PRETRAIN for PRETRAIN_EPOCHS, once, saved as pretrained.safetensors (or take PRETRAINED, a
#      model file made before, and skip this step). With PRETRAIN_PER_CLASS set, on a subset: that many images per
#      class for training and PRETRAIN_VALID_PER_CLASS for validation (bench/idx_split.py for IDX files, taking the
#      validation images from the test set; bench/folder_split.py for an image folder). Default: Fashion-MNIST,
#      600 + 100 per class (6,000 + 1,000 images);
#   2. make the small task: TRAIN_PER_CLASS images per class of SRC for training, VALID_PER_CLASS others for
#      validation (bench/folder_split.py, the same subset for every seed). Default: the 10 MNIST digits, 20 + 50 per
#      class (200 + 500 images);
#   3. per seed: fine-tune   crest bench SUBSET --arch ARCH --pretrained pretrained.safetensors --epochs EPOCHS
#                (fastai's fine_tune: 1 frozen epoch, then EPOCHS unfrozen; a first layer pretrained on other
#                channels is adapted), and
#                scratch     crest bench SUBSET --arch ARCH --epochs EPOCHS+1 (as many passes over the data);
# then prints the validation accuracy per seed and the medians. Runs one at a time. Every image is resized to SIZE
# (default 28 for cnn, whose layers are sized for 28x28, 32 else), the pretraining ones too.
# Env: ARCH (default resnet18), PRETRAIN (default ../shared/data/fashion-mnist), PRETRAIN_PER_CLASS (default 600;
# empty: all of PRETRAIN as crest splits it), PRETRAIN_VALID_PER_CLASS (default 100), PRETRAIN_EPOCHS (default 5),
# PRETRAINED, EPOCHS (default 10), LR (--lr for fine-tune and scratch alike, e.g. auto: each its own lr_find
# valley; default: each one's own, 2e-3 for fine_tune, 3e-3 for one-cycle), SRC (default ../shared/data/mnist),
# TRAIN_PER_CLASS (default 20), VALID_PER_CLASS (default 50), SIZE, SUBSET (default /tmp/transfer-task),
# PRETRAIN_SUBSET (default /tmp/transfer-pretrain), CREST_BIN, SKIP_BUILD=1, BENCH_OUT.
# The first run (2026-12-03), 3-vs-7 digits to emoji: PRETRAIN=data/mnist_sample PRETRAIN_PER_CLASS= \
#   SRC=../shared/data/emoji-vendors TRAIN_PER_CLASS=100 VALID_PER_CLASS=200 bench/transfer.sh 1 2 3
# A smoke run at tiny scale: ARCH=cnn PRETRAIN=data/mnist_sample PRETRAIN_PER_CLASS=20 PRETRAIN_VALID_PER_CLASS=10 \
#   PRETRAIN_EPOCHS=1 EPOCHS=1 TRAIN_PER_CLASS=5 VALID_PER_CLASS=5 bench/transfer.sh --quick

set -u
cd "$(dirname "$0")/.." || exit 1
. bench/common.sh
parse_args "$@"

ARCH=${ARCH:-resnet18}
PRETRAIN=${PRETRAIN:-../shared/data/fashion-mnist}
PRETRAIN_PER_CLASS=${PRETRAIN_PER_CLASS-600}
PRETRAIN_VALID_PER_CLASS=${PRETRAIN_VALID_PER_CLASS:-100}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-5}
PRETRAINED=${PRETRAINED:-}
EPOCHS=${EPOCHS:-10}
LR_ARGS=()
[ -n "${LR:-}" ] && LR_ARGS=(--lr "$LR")
SRC=${SRC:-../shared/data/mnist}
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-20}
VALID_PER_CLASS=${VALID_PER_CLASS:-50}
case "$ARCH" in cnn|mlp*|linear) SIZE=${SIZE:-28} ;; *) SIZE=${SIZE:-32} ;; esac
SUBSET=${SUBSET:-/tmp/transfer-task}
PRETRAIN_SUBSET=${PRETRAIN_SUBSET:-/tmp/transfer-pretrain}
OUT=${BENCH_OUT:-bench/out/transfer-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
echo "transfer benchmark: $ARCH pretrained on ${PRETRAINED:-$PRETRAIN ($PRETRAIN_EPOCHS epochs)}, fine-tuned on" \
    "$TRAIN_PER_CLASS images per class of $SRC at ${SIZE}px, seeds ${SEEDS[*]}, logs in $OUT"
build_crest "$OUT"
[ "$HAVE_CREST" = 1 ] || exit 1

# subset FROM TO TRAIN_PER_CLASS VALID_PER_CLASS LOG: a fixed subset of an image folder or of IDX files.
subset() {
    rm -rf "$2"
    local split=bench/folder_split.py
    ls "$1"/train-images-idx3-ubyte* >/dev/null 2>&1 && split=bench/idx_split.py
    python3 "$split" "$1" "$2" --train-per-class "$3" --valid-per-class "$4" >"$5" \
        || { echo "could not make a subset of $1 with $split"; exit 1; }
}

subset "$SRC" "$SUBSET" "$TRAIN_PER_CLASS" "$VALID_PER_CLASS" "$OUT/subset.log"
sed 's/^/task: /' "$OUT/subset.log"
PRE=${PRETRAINED:-$OUT/pretrained.safetensors}
if [ -z "$PRETRAINED" ]; then
    DATA=$PRETRAIN
    if [ -n "$PRETRAIN_PER_CLASS" ]; then
        subset "$PRETRAIN" "$PRETRAIN_SUBSET" "$PRETRAIN_PER_CLASS" "$PRETRAIN_VALID_PER_CLASS" "$OUT/pretrain-subset.log"
        sed 's/^/pretraining: /' "$OUT/pretrain-subset.log"
        DATA=$PRETRAIN_SUBSET
    fi
    timed "$OUT/pretrain" "$CREST_BIN" bench "$DATA" --arch "$ARCH" --size "$SIZE" --epochs "$PRETRAIN_EPOCHS" \
        --out "$PRE" --no-report
    [ "$(cat "$OUT/pretrain.rc")" = 0 ] || exit 1
    echo "pretrained: valid accuracy $(kv "$OUT/pretrain" valid_acc)"
fi

for seed in "${SEEDS[@]}"; do
    timed "$OUT/fine_tune-$seed" "$CREST_BIN" bench "$SUBSET" --arch "$ARCH" --size "$SIZE" --pretrained "$PRE" \
        --epochs "$EPOCHS" "${LR_ARGS[@]}" --seed "$seed" --out "$OUT/fine_tune-$seed.safetensors" --no-report
    timed "$OUT/scratch-$seed" "$CREST_BIN" bench "$SUBSET" --arch "$ARCH" --size "$SIZE" \
        --epochs "$((EPOCHS + 1))" "${LR_ARGS[@]}" --seed "$seed" --out "$OUT/scratch-$seed.safetensors" --no-report
done

echo
echo "== valid accuracy on the small task, $ARCH (per seed ${SEEDS[*]}, then the median) =="
printf "  %-10s %-28s %-10s\n" run "per seed" median
for run in fine_tune scratch; do
    acc=()
    for seed in "${SEEDS[@]}"; do acc+=("$(kv "$OUT/$run-$seed" valid_acc)"); done
    printf "  %-10s %-28s %-10s\n" "$run" "${acc[*]}" "$(median "${acc[@]}")"
done
