#!/usr/bin/env bash
# The report pages in a real browser: `crest train` on the shipped sample with every part of the page on (--aug,
# --lr auto, --runs 3, a linear model's weights) and `crest evaluate --report`, each opened in headless Chromium;
# fails when
#   - the browser logs any console message: the page has no script, so every message is a fault (a resource the
#     content-security policy refused, a parse problem); a page known to log one is opened first, so that a
#     Chromium that stopped logging to stderr fails this check instead of passing it blindly;
#   - the page Chromium parsed has fewer charts or images than the file has (markup that swallowed a part);
#   - the screenshot is blank (it must have many distinct colours).
# The screenshots are left in target/report-check/ for a person to look at.
# CREST_BIN names the binary (tests/report_in_browser.rs passes cargo's); else target/release/crest is built.
# Without Chromium it skips, except under CI=true, where it must run.
set -euo pipefail
cd "$(dirname "$0")/../.."

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    if [ "${CI:-}" = true ]; then
        echo "check_in_chromium: chromium is required under CI (Debian: apt-get install -y chromium)" >&2
        exit 1
    fi
    echo "check_in_chromium: skipped, chromium is not installed (Debian: apt-get install -y chromium)"
    exit 0
fi

out=target/report-check
rm -rf "$out" && mkdir -p "$out"
crest=${CREST_BIN:-}
if [ -z "$crest" ]; then
    cargo build --release --quiet
    crest=target/release/crest
fi
"$crest" train data/mnist_sample --epochs 4 --aug --lr auto --runs 3 --out "$out/model.safetensors" \
    --report "$out/train.html" >"$out/train.log"
"$crest" evaluate "$out/model.safetensors" data/mnist_sample --split valid --tta --report "$out/evaluate.html" \
    >"$out/evaluate.log"

# Headless Chromium writes console messages to stderr as "...:INFO:CONSOLE:<line>] "message", source: ..." (older
# versions: "CONSOLE(<line>)"), whatever their level; the rest of stderr is the browser's own noise (D-Bus, GPU).
open_page() { # FILE LOG [FLAGS...]: opens FILE, its stderr to LOG, stdout to the caller
    local file=$1 log=$2
    shift 2
    timeout 120 "$browser" --headless --disable-gpu --no-sandbox --hide-scrollbars --enable-logging=stderr --v=0 \
        "$@" "file://$(realpath "$file")" 2>"$log"
}
console_lines() { grep -E 'CONSOLE[:(]' "$1" || true; }

control="$out/console_error.html"
printf '<!DOCTYPE html><title>control</title><script>console.error("crest control message")</script>\n' >"$control"
open_page "$control" "$out/control.log" --dump-dom >/dev/null
if ! grep -qE 'CONSOLE[:(].*crest control message' "$out/control.log"; then
    echo "check_in_chromium: this Chromium did not log a page's console message to stderr, so console errors" >&2
    echo "can't be caught this way; its log is $out/control.log" >&2
    exit 1
fi

failed=0
check_page() { # NAME: checks $out/NAME.html, screenshot $out/NAME.png
    local name=$1 page="$out/$1.html"
    open_page "$page" "$out/$name-dom.log" --dump-dom >"$out/$name-dom.html"
    open_page "$page" "$out/$name-screenshot.log" --screenshot="$(realpath "$out")/$name.png" \
        --window-size=1200,5200 >/dev/null
    for log in "$out/$name-dom.log" "$out/$name-screenshot.log"; do
        if [ -n "$(console_lines "$log")" ]; then
            echo "check_in_chromium: $page logged console messages:" >&2
            console_lines "$log" >&2
            failed=1
        fi
    done
    for tag in "<svg" "<img" "<table" "<section"; do
        in_file=$({ grep -o "$tag" "$page" || true; } | wc -l)
        in_dom=$({ grep -o "$tag" "$out/$name-dom.html" || true; } | wc -l)
        if [ "$in_file" -ne "$in_dom" ] || { [ "$in_file" -eq 0 ] && [ "$name" = train ]; }; then
            echo "check_in_chromium: $page has $in_file $tag, the page Chromium parsed $in_dom" >&2
            failed=1
        fi
    done
    colours=$(python3 tests/report/png_colours.py "$out/$name.png")
    if [ "$colours" -lt 500 ]; then
        echo "check_in_chromium: the screenshot of $page has only $colours distinct colours: it looks blank" >&2
        failed=1
    fi
    echo "check_in_chromium: $page: $({ grep -o '<svg' "$page" || true; } | wc -l) charts and $({ grep -o '<img' "$page" || true; } | wc -l)" \
        "images; screenshot $out/$name.png has $colours colours"
}
check_page train
check_page evaluate
if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "check_in_chromium: ok, no console messages"
