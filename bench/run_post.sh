#!/usr/bin/env bash
# bench/run_post.sh [--quick] [SEEDS...]   (run from the repo root)
#
# The blog post's workload, crest vs PyTorch: emoji-vendors (google vs twitter),
# RGBA 140x140 -> 78,400 features -> one linear unit, 20 epochs, two recipes:
#   default : BCE-with-logits, Adam 1e-3, batch 64
#   post    : the post's mnist_loss, SGD lr 0.1, batch 200
# crest and PyTorch run one after the other (never concurrently), each under
# /usr/bin/time -v. Accuracy: median over SEEDS (default 1 2 3); times and
# memory: the first seed's run. --quick: first seed only.
# Env: TORCH_PYTHON (default /tmp/torchenv/bin/python), CREST_BIN (default
# target/release/crest), SKIP_BUILD=1, DATA (default ../shared/data/emoji-vendors),
# REPORT_ONLY=1 (no runs: re-print the table from the logs in BENCH_OUT),
# BENCH_OUT (default bench/out/post-<timestamp>), BASE_BIN / BASE_CMD (another crest build run before crest in
# each pair: see bench/common.sh).

set -u
cd "$(dirname "$0")/.." || exit 1
. bench/common.sh
parse_args "$@"

DATA=${DATA:-../shared/data/emoji-vendors}
start_run post "data $DATA"

crest_args() {  # recipe -> crest flags
    case "$1" in
        default) echo "" ;;
        post) echo "--loss mnist --opt sgd --lr 0.1 --bs 200" ;;
    esac
}

for recipe in default post; do
    for seed in "${SEEDS[@]}"; do
        if [ "$HAVE_BASE" = 1 ]; then
            # shellcheck disable=SC2046
            timed "$OUT/base-$recipe-$seed" "$BASE_BIN" "$BASE_CMD" "$DATA" --size 140 --channels 4 --arch linear \
                --epochs 20 --seed "$seed" $(crest_args "$recipe")
        fi
        if [ "$HAVE_CREST" = 1 ]; then
            # shellcheck disable=SC2046
            timed "$OUT/crest-$recipe-$seed" "$CREST_BIN" bench "$DATA" --size 140 --channels 4 --arch linear \
                --epochs 20 --seed "$seed" $(crest_args "$recipe")
        fi
        if [ "$HAVE_TORCH" = 1 ]; then
            timed "$OUT/torch-$recipe-$seed" "$TORCH_PYTHON" bench/torch_post.py "$DATA" \
                --recipe "$recipe" --epochs 20 --seed "$seed"
        fi
    done
done

echo
echo "== results (times/memory: seed $FIRST_SEED; accuracy: median of seeds ${SEEDS[*]}) =="
for recipe in default post; do
    c=$OUT/crest-$recipe-$FIRST_SEED
    t=$OUT/torch-$recipe-$FIRST_SEED
    b=$OUT/base-$recipe-$FIRST_SEED
    cacc=(); tacc=(); bacc=()
    for seed in "${SEEDS[@]}"; do
        cacc+=("$(kv "$OUT/crest-$recipe-$seed" valid_acc)")
        tacc+=("$(kv "$OUT/torch-$recipe-$seed" valid_acc)")
        bacc+=("$(kv "$OUT/base-$recipe-$seed" valid_acc)")
    done
    echo
    table_header "recipe $recipe"
    row "load s (decode+resize)" "$(kv "$c" load_s)" "$(kv "$t" load_s)" "$(kv "$b" load_s)"
    row "load images/s (higher=better)" "$(kv "$c" images_per_s)" "$(kv "$t" images_per_s)" "$(kv "$b" images_per_s)"
    row "train s (20 epochs)" "$(kv "$c" train_s)" "$(kv "$t" train_s)" "$(kv "$b" train_s)"
    row "valid acc, median" "$(median "${cacc[@]}")" "$(median "${tacc[@]}")" "$(median "${bacc[@]}")"
    row "max RSS MB (time -v)" "$(maxrss_mb "$c")" "$(maxrss_mb "$t")" "$(maxrss_mb "$b")"
    row "peak_rss_mb (self-reported)" "$(kv "$c" peak_rss_mb)" "$(kv "$t" peak_rss_mb)" "$(kv "$b" peak_rss_mb)"
    row "wall s (whole process)" "$(wall_s "$c")" "$(wall_s "$t")" "$(wall_s "$b")"
    echo "  valid acc per seed ${SEEDS[*]}: crest ${cacc[*]} | PyTorch ${tacc[*]}$([ "$HAVE_BASE" = 1 ] && echo " | baseline ${bacc[*]}")"
done
echo
echo "ratios: crest/PyTorch (below 1 = crest faster/smaller for s and MB; above 1 = crest better for images/s)"
