#!/usr/bin/env bash
# bench/run_emoji.sh [--quick] [SEEDS...]   (run from the repo root)
#
# The emoji data (google vs twitter, 64x64 RGBA), on one fixed train/valid split (bench/folder_split.py makes it as
# symbolic links in SPLIT), run one after another, never concurrently, each under /usr/bin/time -v:
#   crest       crest bench SPLIT --arch cnn --epochs EPOCHS --seed S            (no augmentation)
#   crest-aug   the same with --aug (fastai's aug_transforms defaults)
#   fastai      bench/fastai_emoji.py: vision_learner(dls, resnet18, pretrained=False), aug_transforms(),
#               fit_one_cycle(EPOCHS), 2 threads
# Prints per seed and the median over seeds: validation accuracy after the last epoch, and seconds per epoch (the
# training pass alone, validation excluded, for all three).
# Env: EPOCHS (default 3), RUNS (default "crest crest-aug fastai"), SRC (default ../shared/data/emoji-vendors),
# SPLIT (default /tmp/emoji-split), TORCH_PYTHON, CREST_BIN, SKIP_BUILD=1, BENCH_OUT.

set -u
cd "$(dirname "$0")/.." || exit 1
. bench/common.sh
parse_args "$@"

SRC=${SRC:-../shared/data/emoji-vendors}
SPLIT=${SPLIT:-/tmp/emoji-split}
EPOCHS=${EPOCHS:-3}
RUNS=${RUNS:-crest crest-aug fastai}
start_run emoji "data $SRC split into $SPLIT, $EPOCHS epochs, runs: $RUNS"
python3 bench/folder_split.py "$SRC" "$SPLIT" | sed 's/^/split: /'

for seed in "${SEEDS[@]}"; do
    for run in $RUNS; do
        case "$run" in
            crest) [ "$HAVE_CREST" = 1 ] && timed "$OUT/crest-$seed" "$CREST_BIN" bench "$SPLIT" --arch cnn \
                --epochs "$EPOCHS" --seed "$seed" --out "$OUT/crest-$seed.safetensors" --no-report ;;
            crest-aug) [ "$HAVE_CREST" = 1 ] && timed "$OUT/crest-aug-$seed" "$CREST_BIN" bench "$SPLIT" --arch cnn \
                --epochs "$EPOCHS" --seed "$seed" --aug --out "$OUT/crest-aug-$seed.safetensors" --no-report ;;
            fastai) [ "$HAVE_TORCH" = 1 ] && timed "$OUT/fastai-$seed" "$TORCH_PYTHON" bench/fastai_emoji.py "$SPLIT" \
                --epochs "$EPOCHS" --seed "$seed" ;;
        esac
    done
done

echo
echo "== results, $EPOCHS epochs (per seed ${SEEDS[*]}, then the median) =="
per_seed() { for seed in "${SEEDS[@]}"; do "$2" "$OUT/$1-$seed" "${@:3}"; done; }
printf "  %-10s %-28s %-10s %-28s %-10s\n" run "valid acc per seed" median "s/epoch per seed" median
for run in $RUNS; do
    mapfile -t acc < <(per_seed "$run" kv valid_acc)
    mapfile -t sec < <(per_seed "$run" kv epoch_s)
    printf "  %-10s %-28s %-10s %-28s %-10s\n" "$run" "${acc[*]}" "$(median "${acc[@]}")" "${sec[*]}" "$(median "${sec[@]}")"
done
