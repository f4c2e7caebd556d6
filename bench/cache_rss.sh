#!/usr/bin/env bash
# bench/cache_rss.sh   (run from the repo root, on a quiet machine: it is timed)
#
# The decoded-image cache at 1x and 2x a synthetic folder of GB gigabytes of decoded pixels (SIZE x SIZE x 4, made
# by bench/make_synthetic_folder.py in WORK, kept for later runs). For each size, two runs one after another of
#   crest bench DIR --size SIZE --arch linear --epochs EPOCHS --bs 64
# the first with no cache (it decodes the images and writes DIR/.crest-cache), the second reading the cache. Prints
# each run's load time and peak resident memory (VmHWM, crest bench's load_s and peak_rss_mb), then the cached
# runs' ratios: 2x to 1x peak memory (the aim: within 1.10) and cached to first load time (the aim: under 0.10).
# Env: GB (default 4), SIZE (default 140), EPOCHS (default 1), WORK (default /tmp/crest-cache-rss), CREST_BIN,
# SKIP_BUILD=1.

set -u
cd "$(dirname "$0")/.." || exit 1
GB=${GB:-4}
SIZE=${SIZE:-140}
EPOCHS=${EPOCHS:-1}
WORK=${WORK:-/tmp/crest-cache-rss}
CREST_BIN=${CREST_BIN:-target/release/crest}
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q || exit 1
mkdir -p "$WORK"
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# figure NAME LINE: the value of NAME=... in crest bench's last line.
figure() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

declare -A LOAD RSS
printf '%-6s %-10s %10s %12s\n' scale run load_s peak_rss_mb
for scale in 1 2; do
    gb=$(awk -v g="$GB" -v s="$scale" 'BEGIN { print g * s }')
    dir="$WORK/synthetic-${gb}gb-$SIZE"
    [ -d "$dir" ] || python3 bench/make_synthetic_folder.py "$dir" --gb "$gb" --size "$SIZE" || exit 1
    rm -rf "$dir/.crest-cache"
    for run in first cached; do
        log="$WORK/$scale-$run.log"
        "$CREST_BIN" bench "$dir" --size "$SIZE" --arch linear --epochs "$EPOCHS" --bs 64 --out "$WORK/model.safetensors" \
            >"$log" 2>&1 || { echo "crest failed, see $log"; tail -3 "$log"; exit 1; }
        line=$(tail -1 "$log")
        LOAD[$scale-$run]=$(figure load_s "$line")
        RSS[$scale-$run]=$(figure peak_rss_mb "$line")
        printf '%-6s %-10s %10s %12s\n' "${scale}x" "$run" "${LOAD[$scale-$run]}" "${RSS[$scale-$run]}"
    done
    grep -q "note: cache: decoded images read from" "$WORK/$scale-cached.log" || echo "warning: the cached run at ${scale}x did not read the cache"
done
awk -v a="${RSS[1-cached]}" -v b="${RSS[2-cached]}" 'BEGIN { printf "cached peak RSS, 2x / 1x: %.3f (aim: under 1.10)\n", b / a }'
for scale in 1 2; do
    awk -v c="${LOAD[$scale-cached]}" -v f="${LOAD[$scale-first]}" -v s="$scale" \
        'BEGIN { printf "cached / first load time at %sx: %.3f (aim: under 0.10)\n", s, c / f }'
done
