#!/usr/bin/env bash
# The Python helper benchmark (issue 9): `polymr map` / `polymr run --mappers 2` on the original
# API job (analysis-tools.yml: os_count.py, reducer.py) against the hand-written pipelines, side
# by side in ONE hyperfine invocation per pair, with /usr/bin/python3 on both sides and
# PYTHONUNBUFFERED unset. Each pair is run with orjson importable (PYTHONPATH=ORJSON, both
# sides; only the helper imports it) and without (POLYMR_HELPER_ORJSON=0); BASE, a polymr
# binary from before the change, runs beside it to show "without orjson, no slower".
#
#   bash bench/helper.sh
#
# Environment: D [/tmp/bench-data/medium] (generated if missing), RUNS [5], WARMUP [1],
# ORJSON (a directory with orjson for /usr/bin/python3) [target/orjson-site, made with
# `pip install --target`], BASE [unset], OUT [bench/out/helper].
set -euo pipefail
B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
D="${D:-/tmp/bench-data/medium}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
PY=/usr/bin/python3
ORJSON="${ORJSON:-$ROOT/target/orjson-site}"
OUT="${OUT:-$B/out/helper}"
POLYMR="$ROOT/target/release/polymr"
SHARED=/work/shared/bench
unset PYTHONUNBUFFERED
export LC_ALL=C POLYMR_PYTHON=$PY
mkdir -p "$OUT"
[ -d "$D/xz" ] || $PY "$SHARED/gen_telemetry.py" --files 40 --lines 1600 --compression xz --out "$D"
[ -d "$ORJSON/orjson" ] || $PY -m pip install --quiet --break-system-packages --target "$ORJSON" 'orjson==3.13.0'
FILES="$(echo "$D"/xz/*/*/*/*/*.xz)"
cd "$ROOT"
pair() { # name, extra hyperfine args...
    local name=$1; shift
    hyperfine -N -w "$WARMUP" -r "$RUNS" --export-json "$OUT/$name.json" --export-markdown "$OUT/$name.md" "$@"
}
map_cmds=(
  -n "polymr map (orjson)" "env PYTHONPATH=$ORJSON $POLYMR map --config analysis-tools.yml -o $OUT/m1.txt $FILES"
  -n "polymr map (json)" "env POLYMR_HELPER_ORJSON=0 $POLYMR map --config analysis-tools.yml -o $OUT/m2.txt $FILES"
  -n "xz -dc | map.py" "sh -c 'xz -dc $FILES | PYTHONPATH=$ORJSON $PY $SHARED/map.py > $OUT/p1.txt'"
)
run_cmds=(
  -n "polymr run (orjson)" "env PYTHONPATH=$ORJSON $POLYMR run --mappers 2 --config analysis-tools.yml -o $OUT/r1.txt $FILES"
  -n "polymr run (json)" "env POLYMR_HELPER_ORJSON=0 $POLYMR run --mappers 2 --config analysis-tools.yml -o $OUT/r2.txt $FILES"
  -n "xz | map.py | sort | reduce.py" "sh -c 'xz -dc $FILES | $PY $SHARED/map.py | sort | $PY $SHARED/reduce.py > $OUT/p2.txt'"
)
if [ -n "${BASE:-}" ]; then
  map_cmds+=(-n "polymr map (before)" "$BASE map --config analysis-tools.yml -o $OUT/m3.txt $FILES")
  run_cmds+=(-n "polymr run (before)" "$BASE run --mappers 2 --config analysis-tools.yml -o $OUT/r3.txt $FILES")
fi
pair map "${map_cmds[@]}"
pair run "${run_cmds[@]}"
$PY - "$OUT" <<'PY'
import json, sys, os
for name in ("map", "run"):
    r = json.load(open(os.path.join(sys.argv[1], name + ".json")))["results"]
    base = r[2]["median"]
    for x in r:
        print("%-4s %-32s median %6.2fs  user+sys %6.2fs  ratio %.2f" % (
            name, x["command"], x["median"], x["user"] + x["system"], x["median"] / base))
PY
