#!/usr/bin/env bash
# The Python helper benchmark (issue 9): polymr's Python helper against the hand-written
# pipelines, side by side in ONE hyperfine invocation per pair (the commands interleave run by
# run), with /usr/bin/python3 on both sides and PYTHONUNBUFFERED unset. See bench/HELPER.md.
#
#   bash bench/helper.sh
#
# Pairs (PAIRS, default "map run tmap"):
#   map   `polymr map` on the original-API job (analysis-tools.yml: os_count.py)
#         vs `xz -dc FILES | python3 map.py`
#   run   `polymr run --mappers 2` on it (with custom-reducers/reducer.py)
#         vs `xz -dc FILES | python3 map.py | sort | python3 reduce.py`
#   tmap  `polymr map` on the telemetry-server API job (bench/configs/telemetry-map.yml:
#         map(key, dims, value, context) calls json.loads itself) vs the same pipeline as `map`
#   py    (not by default) the Python side alone: the helper with os_count.py over the
#         decompressed records in a file vs `python3 map.py` over them (no decompression)
# Each polymr side runs with orjson importable (PYTHONPATH=ORJSON: only the helper imports
# it) and without (POLYMR_HELPER_ORJSON=0), and, when BASE names a polymr binary from before
# the change, that binary too ("without orjson, no slower than before").
#
# Environment: D [/tmp/polymr-bench-medium] (generated with the peers' gen_telemetry.py if
# missing), RUNS [5], WARMUP [1], ROUNDS [2], PAIRS, NICE (hyperfine's niceness: -10 puts both
# sides ahead of niced builds on a shared machine) [unset], BASE [unset], ORJSON (a directory with orjson for
# /usr/bin/python3) [target/orjson-site, made with `pip install --target`], OUT
# [bench/out/helper].
set -euo pipefail
B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
D="${D:-/tmp/polymr-bench-medium}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
ROUNDS="${ROUNDS:-2}"
PAIRS="${PAIRS:-map run tmap}"
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

busy_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }

# hyperfine runs each command's runs back to back: ROUNDS invocations, the commands in
# reverse order every other round, spread the machine's drift over both sides.
pair() { # name round, hyperfine -n/command arguments...
    local name=$1 round=$2 a ai b bi; shift 2
    read -r a ai < <(busy_ticks)
    ${NICE:+nice -n "$NICE"} hyperfine -N --style basic -w "$WARMUP" -r "$RUNS" --export-json "$OUT/$name.$round.json" \
        --export-markdown "$OUT/$name.$round.md" "$@"
    read -r b bi < <(busy_ticks)
    echo "$a $ai $b $bi $(getconf CLK_TCK) $(nproc)" > "$OUT/$name.$round.ticks"
}

cmds=()
add() { cmds+=(-n "$1" "$2"); }
reversed() { # the -n NAME CMD triples of cmds, last first
    local i
    for ((i = ${#cmds[@]} - 3; i >= 0; i -= 3)); do printf '%s\0' "${cmds[@]:i:3}"; done
}
for p in $PAIRS; do
    cmds=()
    case $p in
    map|tmap)
        cfg=analysis-tools.yml
        [ "$p" = tmap ] && cfg=bench/configs/telemetry-map.yml
        add "polymr $p (orjson)" "env PYTHONPATH=$ORJSON $POLYMR map --config $cfg -o $OUT/$p-orjson.txt $FILES"
        add "polymr $p (json)" "env POLYMR_HELPER_ORJSON=0 $POLYMR map --config $cfg -o $OUT/$p-json.txt $FILES"
        [ -n "${BASE:-}" ] && add "polymr $p (before)" "$BASE map --config $cfg -o $OUT/$p-before.txt $FILES"
        [ "$p" = map ] && add "polymr map (cat > /dev/null)" "$POLYMR map --config bench/configs/cat.yml -o $OUT/floor.out $FILES"
        add "xz -dc | map.py" "sh -c 'xz -dc $FILES | $PY $SHARED/map.py > $OUT/$p-pipe.txt'"
        ;;
    run)
        add "polymr run (orjson)" "env PYTHONPATH=$ORJSON $POLYMR run --mappers 2 --config analysis-tools.yml -o $OUT/run-orjson.txt $FILES"
        add "polymr run (json)" "env POLYMR_HELPER_ORJSON=0 $POLYMR run --mappers 2 --config analysis-tools.yml -o $OUT/run-json.txt $FILES"
        [ -n "${BASE:-}" ] && add "polymr run (before)" "$BASE run --mappers 2 --config analysis-tools.yml -o $OUT/run-before.txt $FILES"
        add "xz | map.py | sort | reduce.py" "sh -c 'xz -dc $FILES | $PY $SHARED/map.py | sort | $PY $SHARED/reduce.py > $OUT/run-pipe.txt'"
        ;;
    py)
        # The Python side alone, without decompression or the driver: the helper reading the
        # decompressed records in its own input format vs map.py reading them.
        [ -f "$OUT/records.txt" ] || { xz -dc $FILES > "$OUT/records.tmp" && mv "$OUT/records.tmp" "$OUT/records.txt"; }
        [ -f "$OUT/helper-in.txt" ] || { { printf '\0F\t0\t[]\tall\n'; cat "$OUT/records.txt"; } > "$OUT/helper-in.tmp" && mv "$OUT/helper-in.tmp" "$OUT/helper-in.txt"; }
        h="$PY helpers/python/polymr_helper.py --role map --script custom-mappers/os_count.py"
        add "helper (orjson)" "sh -c 'PYTHONPATH=$ORJSON $h < $OUT/helper-in.txt > $OUT/py-orjson.txt'"
        add "helper (json)" "sh -c 'POLYMR_HELPER_ORJSON=0 $h < $OUT/helper-in.txt > $OUT/py-json.txt'"
        add "map.py" "sh -c '$PY $SHARED/map.py < $OUT/records.txt > $OUT/py-pipe.txt'"
        ;;
    *) echo "unknown pair $p" >&2; exit 2 ;;
    esac
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            pair "$p" "$r" "${cmds[@]}"
        else
            mapfile -d '' rev < <(reversed)
            pair "$p" "$r" "${rev[@]}"
        fi
    done
done

# Summary per pair and command: the median over rounds of the round's median wall time, the
# mean CPU (user+sys of the whole process tree), the ratio to the pipeline (median over
# rounds of the ratio measured in the round), the other load on the machine while the pair
# ran (CPU time not accounted to the commands, % of all cores), and the output's counts.
$PY "$B/helper_summary.py" "$OUT" "$D/expected_os_counts.tsv" "$ROUNDS" $PAIRS | tee "$OUT/summary.txt"
