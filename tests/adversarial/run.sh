#!/usr/bin/env bash
# The adversarial suite against one crest binary: CREST=/path/to/crest tests/adversarial/run.sh [--keep] [ID...]
# (default target/release/crest, built when missing). Prints a markdown table; exit status 1 if any case is not ok.
# The judge itself is tested by: python3 -m unittest discover tests/adversarial
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
crest="${CREST:-$repo/target/release/crest}"
if [[ -z "${CREST:-}" && ! -x "$crest" ]]; then
    cargo build --release --manifest-path "$repo/Cargo.toml" >&2
fi
if [[ ! -x "$crest" ]]; then
    echo "error: no crest binary at $crest" >&2
    exit 2
fi
exec python3 -B "$here/suite.py" "$crest" "$@"
