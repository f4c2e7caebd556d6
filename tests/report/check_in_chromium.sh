#!/usr/bin/env bash
# The training report in a real browser: builds the sample report (examples/report_sample.rs), opens it in headless
# Chromium, and fails when
#   - the browser logs any console message: the page has no script, so every message is a fault (a resource the
#     content-security policy refused, a parse problem); a page known to log one is opened first, so that a
#     Chromium that stopped logging to stderr fails this check instead of passing it blindly;
#   - the page Chromium parsed has fewer charts or images than the file has (markup that swallowed a part);
#   - the screenshot is blank (it must have many distinct colours).
# The screenshot is left at target/report-check/report_sample.png for a person to look at.
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
mkdir -p "$out"
page="$out/report_sample.html"
cargo run --release --quiet --example report_sample -- "$page"

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
open_page "$page" "$out/dom.log" --dump-dom >"$out/dom.html"
open_page "$page" "$out/screenshot.log" --screenshot="$(realpath "$out")/report_sample.png" --window-size=1200,5200 \
    >/dev/null
for log in "$out/dom.log" "$out/screenshot.log"; do
    if [ -n "$(console_lines "$log")" ]; then
        echo "check_in_chromium: the report logged console messages:" >&2
        console_lines "$log" >&2
        failed=1
    fi
done

for tag in "<svg" "<img" "<table" "<section"; do
    in_file=$(grep -o "$tag" "$page" | wc -l)
    in_dom=$(grep -o "$tag" "$out/dom.html" | wc -l)
    if [ "$in_file" -ne "$in_dom" ] || [ "$in_file" -eq 0 ]; then
        echo "check_in_chromium: the file has $in_file $tag, the page Chromium parsed $in_dom" >&2
        failed=1
    fi
done

colours=$(python3 tests/report/png_colours.py "$out/report_sample.png")
if [ "$colours" -lt 500 ]; then
    echo "check_in_chromium: the screenshot has only $colours distinct colours: the page looks blank" >&2
    failed=1
fi
if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "check_in_chromium: ok, no console messages; $(grep -o '<svg' "$page" | wc -l) charts and" \
    "$(grep -o '<img' "$page" | wc -l) images parsed; screenshot $out/report_sample.png has $colours colours"
