#!/usr/bin/env bash
# bench/transfer.sh [--quick] [SEEDS...]   (run from the repo root; not run in CI)
#
# Transfer learning with crest alone: does a body pretrained on one task help a small, different one?
#   1. pretrain ARCH on PRETRAIN (Fashion-MNIST by default) for PRETRAIN_EPOCHS, once, saved as pretrained.safetensors;
#   2. make the small task: TRAIN_PER_CLASS images per class of the emoji data (google vs twitter, RGBA) for
#      training, VALID_PER_CLASS others for validation (bench/emoji_split.py, the same subset for every seed);
#   3. per seed: fine-tune   crest bench SUBSET --arch ARCH --pretrained pretrained.safetensors --epochs EPOCHS
#                (fastai's fine_tune: 1 frozen epoch, then EPOCHS unfrozen; the first layer adapted from 1 to 4
#                channels), and
#                scratch     crest bench SUBSET --arch ARCH --epochs EPOCHS+1 (as many passes over the data);
# then prints the validation accuracy per seed and the medians. Runs one at a time.
# The images are resized to SIZE (default 28 for cnn, whose layers are sized for the pretraining images, 64 else).
# Env: ARCH (default resnet18), PRETRAIN (default ../shared/data/fashion-mnist), PRETRAIN_EPOCHS (default 5),
# EPOCHS (default 10), TRAIN_PER_CLASS (default 100), VALID_PER_CLASS (default 200), SIZE, SRC (default
# ../shared/data/emoji-vendors), SUBSET (default /tmp/emoji-transfer), CREST_BIN, SKIP_BUILD=1, BENCH_OUT.
# A smoke run at tiny scale: ARCH=cnn PRETRAIN=data/mnist_sample PRETRAIN_EPOCHS=1 EPOCHS=1 TRAIN_PER_CLASS=10 \
#   VALID_PER_CLASS=10 bench/transfer.sh --quick

set -u
cd "$(dirname "$0")/.." || exit 1
. bench/common.sh
parse_args "$@"

ARCH=${ARCH:-resnet18}
PRETRAIN=${PRETRAIN:-../shared/data/fashion-mnist}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-5}
EPOCHS=${EPOCHS:-10}
TRAIN_PER_CLASS=${TRAIN_PER_CLASS:-100}
VALID_PER_CLASS=${VALID_PER_CLASS:-200}
case "$ARCH" in cnn|mlp*|linear) SIZE=${SIZE:-28} ;; *) SIZE=${SIZE:-64} ;; esac
SRC=${SRC:-../shared/data/emoji-vendors}
SUBSET=${SUBSET:-/tmp/emoji-transfer}
OUT=${BENCH_OUT:-bench/out/transfer-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
echo "transfer benchmark: $ARCH pretrained on $PRETRAIN ($PRETRAIN_EPOCHS epochs), fine-tuned on $TRAIN_PER_CLASS" \
    "emoji per class at ${SIZE}px, seeds ${SEEDS[*]}, logs in $OUT"
build_crest "$OUT"
[ "$HAVE_CREST" = 1 ] || exit 1

rm -rf "$SUBSET"
python3 bench/emoji_split.py "$SRC" "$SUBSET" --train-per-class "$TRAIN_PER_CLASS" --valid-per-class "$VALID_PER_CLASS" \
    >"$OUT/subset.log" || { echo "could not make the subset of $SRC (set SRC)"; exit 1; }
sed 's/^/subset: /' "$OUT/subset.log"
PRE=$OUT/pretrained.safetensors
timed "$OUT/pretrain" "$CREST_BIN" bench "$PRETRAIN" --arch "$ARCH" --epochs "$PRETRAIN_EPOCHS" --out "$PRE" --no-report
[ "$(cat "$OUT/pretrain.rc")" = 0 ] || exit 1

for seed in "${SEEDS[@]}"; do
    timed "$OUT/fine_tune-$seed" "$CREST_BIN" bench "$SUBSET" --arch "$ARCH" --size "$SIZE" --pretrained "$PRE" \
        --epochs "$EPOCHS" --seed "$seed" --out "$OUT/fine_tune-$seed.safetensors" --no-report
    timed "$OUT/scratch-$seed" "$CREST_BIN" bench "$SUBSET" --arch "$ARCH" --size "$SIZE" \
        --epochs "$((EPOCHS + 1))" --seed "$seed" --out "$OUT/scratch-$seed.safetensors" --no-report
done

echo
echo "== valid accuracy on the emoji subset, $ARCH (per seed ${SEEDS[*]}, then the median) =="
printf "  %-10s %-28s %-10s\n" run "per seed" median
for run in fine_tune scratch; do
    acc=()
    for seed in "${SEEDS[@]}"; do acc+=("$(kv "$OUT/$run-$seed" valid_acc)"); done
    printf "  %-10s %-28s %-10s\n" "$run" "${acc[*]}" "$(median "${acc[@]}")"
done
