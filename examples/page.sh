#!/usr/bin/env bash
# The README's picture of the job page: runs the demo job (`make demo`'s, split into small
# map tasks and two reducers so that the timeline has rows), renders its report as
# docs/report.html with `polymr report`, and takes docs/report.png with headless Chromium.
#   bash examples/page.sh          (POLYMR=path/to/polymr and CHROMIUM=... override)
set -euo pipefail
cd "$(dirname "$0")/.."

POLYMR=${POLYMR:-target/release/polymr}
CHROMIUM=${CHROMIUM:-chromium}
OUT=target/page-demo
WIDTH=${WIDTH:-1280}
HEIGHT=${HEIGHT:-1700}

[ -x "$POLYMR" ] || cargo build --release
command -v "$CHROMIUM" >/dev/null 2>&1 || {
    echo "page.sh: needs Debian's chromium (make test-deps installs it)" >&2
    exit 1
}

rm -rf "$OUT"
mkdir -p "$OUT" docs
"$POLYMR" run --output "$OUT/result.txt" --max-batch-size 160KiB --mappers 2 --reducers 2 \
    examples/data
"$POLYMR" report "$OUT/result.txt.report.json"
"$POLYMR" report "$OUT/result.txt.report.json" --html docs/report.html

# Chromium writes the PNG only when it has drawn the page; --no-sandbox because this runs
# as root in a container, a profile of its own so it never touches the user's.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$OUT/chromium-profile" --window-size="$WIDTH,$HEIGHT" \
    --screenshot="$PWD/docs/report.png" "file://$PWD/docs/report.html" 2>/dev/null
rm -rf "$OUT/chromium-profile"
echo "page.sh: wrote docs/report.html and docs/report.png"
