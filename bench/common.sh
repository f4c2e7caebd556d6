# Shared helpers for bench/run_post.sh and bench/run_fashion.sh (sourced, not run).
# Everything is sequential: one timed process at a time, never two concurrently.

TORCH_PYTHON=${TORCH_PYTHON:-/tmp/torchenv/bin/python}
CREST_BIN=${CREST_BIN:-target/release/crest}
TIME_BIN=${TIME_BIN:-/usr/bin/time}
# Optional: another crest build (e.g. the last commit's) run right before crest in every seed's pair, so a change can be
# shown not to slow crest down. BASE_CMD=train for builds from before `crest bench` existed, whose train printed the
# figures itself.
BASE_BIN=${BASE_BIN:-}
BASE_CMD=${BASE_CMD:-bench}

# parse_args "$@": sets QUICK (0/1) and SEEDS (array); default seeds 1 2 3, --quick keeps one.
parse_args() {
    QUICK=0
    SEEDS=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --quick) QUICK=1 ;;
            -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
            -*) echo "unknown option $1" >&2; exit 2 ;;
            *) SEEDS+=("$1") ;;
        esac
        shift
    done
    [ ${#SEEDS[@]} -eq 0 ] && SEEDS=(1 2 3)
    [ "$QUICK" = 1 ] && SEEDS=("${SEEDS[0]}")
    FIRST_SEED=${SEEDS[0]}
}

# start_run NAME DESCRIPTION: sets OUT (BENCH_OUT, or bench/out/NAME-<timestamp>), prints what runs where, and
# unless REPORT_ONLY=1 (re-print the table from the logs in BENCH_OUT) checks PyTorch and builds crest, setting
# HAVE_TORCH and HAVE_CREST; exits when neither can run.
start_run() {
    OUT=${BENCH_OUT:-bench/out/$1-$(date +%Y%m%d-%H%M%S)}
    mkdir -p "$OUT"
    echo "$1 benchmark: $2, seeds ${SEEDS[*]}, logs in $OUT"
    echo "machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ "${REPORT_ONLY:-0}" = 1 ]; then
        HAVE_TORCH=0; HAVE_CREST=0; HAVE_BASE=0
        [ -n "$BASE_BIN" ] && HAVE_BASE=1
        return
    fi
    check_torch
    build_crest "$OUT"
    HAVE_BASE=0
    if [ -n "$BASE_BIN" ]; then
        if [ -x "$BASE_BIN" ]; then HAVE_BASE=1; echo "baseline: $BASE_BIN $BASE_CMD"; else echo "baseline $BASE_BIN not found"; fi
    fi
    if [ "$HAVE_TORCH" = 0 ] && [ "$HAVE_CREST" = 0 ]; then echo "nothing to run"; exit 1; fi
}

# check_torch: sets HAVE_TORCH (0/1)
check_torch() {
    HAVE_TORCH=0
    if [ -x "$TORCH_PYTHON" ] && "$TORCH_PYTHON" -c 'import torch, torchvision, PIL, numpy' >/dev/null 2>&1; then
        HAVE_TORCH=1
        echo "PyTorch: $("$TORCH_PYTHON" -c 'import torch; print(torch.__version__)') ($TORCH_PYTHON)"
    else
        echo "PyTorch not installed: pip install torch torchvision (see bench/README.md)"
        echo "  (looked for torch + torchvision in TORCH_PYTHON=$TORCH_PYTHON; running crest alone)"
    fi
}

# build_crest LOGDIR: builds once with cargo build --release; sets HAVE_CREST (0/1)
build_crest() {
    HAVE_CREST=0
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        echo "building crest: cargo build --release (log: $1/cargo-build.log)"
        if ! cargo build --release >"$1/cargo-build.log" 2>&1; then
            echo "crest: cargo build --release FAILED (tail of log below); continuing without crest"
            tail -n 15 "$1/cargo-build.log" | sed 's/^/  | /'
            return
        fi
    fi
    if [ -x "$CREST_BIN" ]; then
        HAVE_CREST=1
    else
        echo "crest: $CREST_BIN not found; continuing without crest"
    fi
}

# timed NAME CMD...: runs CMD under /usr/bin/time -v; stdout -> NAME.out, stderr -> NAME.err,
# time report -> NAME.time. Prints the command and crest/torch's final key=value line.
timed() {
    local name=$1; shift
    echo "+ $*"
    "$TIME_BIN" -v -o "$name.time" "$@" >"$name.out" 2>"$name.err"
    local rc=$?
    echo "$rc" >"$name.rc"
    if [ $rc -ne 0 ]; then
        echo "  FAILED (exit $rc); last lines of stderr:"
        tail -n 8 "$name.err" | sed 's/^/  | /'
    else
        echo "  $(last_line "$name.out")   [wall $(wall_s "$name") s, max RSS $(maxrss_mb "$name") MB]"
    fi
}

# last non-empty line of a file
last_line() { awk 'NF { l = $0 } END { print l }' "$1" 2>/dev/null; }

# kv NAME KEY [KEY...]: value of the first KEY found in NAME.out's last line; "-" if none / failed run
kv() {
    local name=$1; shift
    if [ ! -f "$name.rc" ] || [ "$(cat "$name.rc")" != 0 ]; then echo "-"; return; fi
    last_line "$name.out" | awk -v keys="$*" '
        BEGIN { nk = split(keys, ks, " ") }
        { for (i = 1; i <= NF; i++) { p = index($i, "="); if (p > 1) v[substr($i, 1, p - 1)] = substr($i, p + 1) } }
        END { for (k = 1; k <= nk; k++) if (ks[k] in v) { print v[ks[k]]; exit } print "-" }'
}

# maxrss_mb NAME: "Maximum resident set size" from /usr/bin/time -v, in MB
maxrss_mb() {
    if [ ! -f "$1.rc" ] || [ "$(cat "$1.rc")" != 0 ]; then echo "-"; return; fi
    awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); printf "%.1f\n", $2 / 1024; f = 1 } END { if (!f) print "-" }' "$1.time"
}

# wall_s NAME: elapsed wall-clock seconds from /usr/bin/time -v ("-" if no report)
wall_s() {
    [ -f "$1.time" ] || { echo "-"; return; }
    awk '/Elapsed \(wall clock\)/ { t = $NF; n = split(t, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.1f\n", s; f = 1 } END { if (!f) print "-" }' "$1.time"
}

# median V...: median of the numeric values among the arguments ("-" if none)
median() {
    printf '%s\n' "$@" | grep -E '^-?[0-9.]+([eE][-+]?[0-9]+)?$' | sort -g | awk '
        { a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# row LABEL CREST TORCH [BASE]: one line of the comparison table, with crest/PyTorch ratio (and, with a baseline,
# its figure and crest/baseline)
row() {
    awk -v l="$1" -v c="$2" -v t="$3" -v b="${4:--}" -v base="${HAVE_BASE:-0}" 'BEGIN {
        num = "^[0-9]*[.]?[0-9]+([eE][-+]?[0-9]+)?$"
        r = "-"; rb = "-"
        if (c ~ num && t ~ num && t + 0 != 0) r = sprintf("%.2f", c / t)
        if (c ~ num && b ~ num && b + 0 != 0) rb = sprintf("%.2f", c / b)
        printf "  %-34s %14s %14s %10s", l, c, t, r
        if (base == 1) printf " %14s %10s", b, rb
        printf "\n" }'
}

table_header() {
    printf "  %-34s %14s %14s %10s" "$1" "crest" "PyTorch" "crest/PT"
    [ "${HAVE_BASE:-0}" = 1 ] && printf " %14s %10s" "baseline" "crest/base"
    printf "\n  %-34s %14s %14s %10s" "----------------------------------" "--------------" "--------------" "----------"
    [ "${HAVE_BASE:-0}" = 1 ] && printf " %14s %10s" "--------------" "----------"
    printf "\n"
}
