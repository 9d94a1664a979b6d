#!/usr/bin/env bash
# The planner's benchmark: `polymr plan --filter` over 100,000 keys in telemetry's layout on
# the test S3 server (moto), against boto3's own paginator listing the same keys on the same
# server, and how much of the bucket a 1%-selective filter lists. See bench/filter_bench.py.
#
#   bash bench/filter.sh            (a few minutes)
#
# Environment: KEYS [100000], ROUNDS [3], BUILD=0 skips `cargo build --release`,
# VENV [target/test-venv] (moto[server] and boto3, from `make test-deps`),
# OUT [bench/out/filter.json].
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-target/test-venv}
OUT=${OUT:-bench/out/filter.json}
if [ "${BUILD:-1}" = 1 ]; then cargo build --release; fi
[ -x "$VENV/bin/moto_server" ] || { echo "no $VENV/bin/moto_server: run make test-deps" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")"
POLYMR="$PWD/target/release/polymr" \
  "$VENV/bin/python" bench/filter_bench.py | tee "$OUT"
