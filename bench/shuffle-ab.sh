#!/usr/bin/env bash
# The shuffle before and after a change to the sorter, side by side: `polymr reduce
# --sort-memory MEM` (external merge sort, then a pass-through `wc -l` reducer) with the
# binary BEFORE and with target/release/polymr, in ONE hyperfine invocation (the two
# interleave run by run), over ~BYTES of `key<TAB>value` lines with UUID-like keys (the
# `wide` set of bench/shuffle.sh, made by the same seeded generator). Both reducers must see
# every line. See bench/HELPER.md.
#
#   BEFORE=/tmp/polymr-base-wt9 bash bench/shuffle-ab.sh
#
# Environment: BEFORE (required), DATA [/tmp/bench-data], BYTES [500000000], MEM [128MiB],
# RUNS [5], WARMUP [1], REVERSE (1: `after` runs first) [0], NICE (hyperfine's niceness) [unset], OUT [bench/out/shuffle-ab].
set -euo pipefail
B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
BEFORE="${BEFORE:?BEFORE=path of the polymr binary from before the change}"
DATA="${DATA:-/tmp/bench-data}"
BYTES="${BYTES:-500000000}"
MEM="${MEM:-128MiB}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
OUT="${OUT:-$B/out/shuffle-ab}"
export LC_ALL=C
mkdir -p "$OUT" "$DATA"
# Measure copies: others may rebuild target/release/polymr meanwhile.
cp "$ROOT/target/release/polymr" "$OUT/after" && cp "$BEFORE" "$OUT/before"
printf '#!/bin/sh\nexec wc -l\n' > "$OUT/wc.sh" && chmod +x "$OUT/wc.sh"
cat > "$OUT/wc.yml" <<YML
mapper: {language: binary, script: wc.sh}
reducer: {language: binary, script: wc.sh}
record_format: lines
key_separator: "\t"
YML
f="$DATA/kv-wide-$BYTES.txt"
if [ ! -f "$f.ok" ]; then
    echo "generating $f" >&2
    "$(command -v mawk || command -v awk)" -v target="$BYTES" -v K=3000000 'BEGIN {
        srand(42)
        for (i = 0; i < K; i++)
            key[i] = sprintf("%08x-%04x-4%03x-%04x-%08x%04x", int(rand() * 4294967296),
                int(rand() * 65536), int(rand() * 4096), int(rand() * 65536),
                int(rand() * 4294967296), int(rand() * 65536))
        n = 0
        while (n < target) {
            line = key[int(rand() * K)] "\t" int(rand() * 1000000)
            print line
            n += length(line) + 1
        }
    }' > "$f.tmp"
    mv "$f.tmp" "$f" && touch "$f.ok"
fi
lines=$(wc -l < "$f")
busy_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }
read -r a ai < <(busy_ticks)
cmds=(-n before "$OUT/before reduce --config $OUT/wc.yml --sort-memory $MEM -o $OUT/before.txt $f"
      -n after "$OUT/after reduce --config $OUT/wc.yml --sort-memory $MEM -o $OUT/after.txt $f")
# hyperfine runs each command's runs back to back: REVERSE=1 times `after` first.
[ "${REVERSE:-0}" = 1 ] && cmds=("${cmds[@]:3:3}" "${cmds[@]:0:3}")
${NICE:+nice -n "$NICE"} hyperfine -N --style basic -w "$WARMUP" -r "$RUNS" --export-json "$OUT/shuffle.json" \
    --export-markdown "$OUT/shuffle.md" "${cmds[@]}"
read -r b bi < <(busy_ticks)
for s in before after; do
    got=$(tr -d ' \n' < "$OUT/$s.txt")
    [ "$got" = "$lines" ] || { echo "$s: the reducer saw $got of $lines lines" >&2; exit 1; }
done
/usr/bin/python3 - "$OUT/shuffle.json" "$a" "$ai" "$b" "$bi" "$(getconf CLK_TCK)" "$(nproc)" "$lines" "$f" <<'PY'
import json, sys
r = sorted(json.load(open(sys.argv[1]))["results"], key=lambda x: x["command"] != "before")
a, ai, b, bi, hz, ncpu = map(int, sys.argv[2:8])
busy, total = (b - a) / hz, (b - a + bi - ai) / hz
ours = sum((x["user"] + x["system"]) * len(x["times"]) for x in r)
print("%s: %s lines; other load while it ran: %.0f%% of %d cores" % (
    sys.argv[9], sys.argv[8], max(0.0, busy - ours) / total * 100, ncpu))
for x in r:
    print("  %-7s median %6.2fs  min %6.2fs  user+sys %6.2fs" % (
        x["command"], x["median"], x["min"], x["user"] + x["system"]))
print("  after/before: median %.3f, min %.3f, CPU %.3f" % (
    r[1]["median"] / r[0]["median"], r[1]["min"] / r[0]["min"],
    (r[1]["user"] + r[1]["system"]) / (r[0]["user"] + r[0]["system"])))
PY
