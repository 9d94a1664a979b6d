#!/usr/bin/env bash
# The map-task benchmark: `polymr map` against the hand-written shell pipeline doing the same
# work, side by side (one hyperfine invocation per pair), plus the driver's own peak RSS.
# See bench/README.md. Results go to bench/out/ (gitignored); the summary is printed at the end.
#
#   bash bench/run.sh                 everything (about 5-10 minutes on 2 cores)
#   PAIRS="xz-c xz-py" bash bench/run.sh    only some pairs (names: see PAIRS below)
#   RSS=0 bash bench/run.sh           skip the RSS part;  TIMING=0 skips the timing part
#
# Environment (defaults in brackets):
#   D           data set made by gen_telemetry.py [/tmp/bench-data/medium]; generated if missing
#   RUNS        timed runs per command [5];  WARMUP  warm-up runs [1]
#   ROUNDS      hyperfine invocations per pair, alternating which command goes first [1];
#               with more than one, a pair's ratio is the median of the rounds' ratios
#   PY          the interpreter both sides use [/usr/bin/python3] (`python3` on PATH may be a
#               slow pyenv shim)
#   SHARED      the peers' bench folder [/work/shared/bench]
#   REPEAT      the RSS part's large runs list the xz files REPEAT times [10]
#   BIG         one xz file holding the xz files 5 times over, for the RSS part
#               [/tmp/bench-data/medium-x5.xz]; made by concatenation if missing
#   QUIET       before each hyperfine invocation, wait until the machine is less than QUIET %
#               busy (both cores, over 2 s) [25]; 0 disables. Gives up after QUIET_WAIT s [180]
#   NICE        run each hyperfine under `nice -n NICE` (e.g. -10, root only) when the machine is
#               shared and never quiet [unset: normal priority]
#   BUILD       0 skips `cargo build --release` and `make native` [1]
#   OUT         where results go [bench/out]
set -euo pipefail

B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
D="${D:-/tmp/bench-data/medium}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
ROUNDS="${ROUNDS:-1}"
PY="${PY:-/usr/bin/python3}"
SHARED="${SHARED:-/work/shared/bench}"
BIG="${BIG:-/tmp/bench-data/medium-x5.xz}"
QUIET="${QUIET:-25}"
QUIET_WAIT="${QUIET_WAIT:-180}"
BUILD="${BUILD:-1}"
TIMING="${TIMING:-1}"
RSS="${RSS:-1}"
REPEAT="${REPEAT:-10}"
OUT="${OUT:-$B/out}"
PAIRS="${PAIRS:-xz-c xz58-c xz-awk xz-py xz58-py xz-pymap gz-c gz-py zst-c zst-py}"
NICE="${NICE:-}"

POLYMR="$ROOT/target/release/polymr"
NATIVE="$ROOT/custom-mappers/os_count_c"
export LC_ALL=C
export POLYMR_PYTHON="$PY"
# The environment of this machine sets PYTHONUNBUFFERED=1, which turns every print of the
# pipeline's map.py into a write(2); polymr scrubs it for its children, so scrub it for both.
unset PYTHONUNBUFFERED

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null 2>&1; then
    say "installing hyperfine"
    [ "$(id -u)" -eq 0 ] || die "hyperfine is missing and this is not root: apt-get install hyperfine"
    DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine; } ||
        die "could not install hyperfine"
fi
for t in xz gzip zstd mawk cc "$PY"; do
    command -v "$t" >/dev/null 2>&1 || die "missing: $t (see $SHARED/README.md, Setup)"
done
[ -f "$SHARED/map.py" ] && [ -f "$SHARED/gen_telemetry.py" ] || die "no peers' bench in $SHARED"

mkdir -p "$OUT/work" "$OUT/hyperfine"
if [ "$BUILD" = 1 ]; then
    say "building (cargo build --release, make native)"
    (cd "$ROOT" && cargo build --release && make native)
fi
[ -x "$POLYMR" ] || die "no $POLYMR (cargo build --release)"
[ -x "$NATIVE" ] || die "no $NATIVE (make native)"

# --- data --------------------------------------------------------------------------------
COMPS="xz gz zst none"
have_all() {
    [ -f "$D/manifest.json" ] && [ -f "$D/expected_os_counts.tsv" ] || return 1
    for c in $COMPS; do [ -d "$D/$c" ] || return 1; done
}
if ! have_all; then
    if [ -f "$D/manifest.json" ]; then
        # Same seed and sizes give byte-identical content, so only the missing trees are
        # added; the trees already there (which others may be reading) are left alone.
        say "$D lacks some of: $COMPS -- generating the set beside it and adding what is missing"
        tmp="$D.gen.$$"
        "$PY" "$SHARED/gen_telemetry.py" --files 40 --lines 1600 --compression xz,gz,zst,none --out "$tmp"
        cmp -s "$tmp/expected_os_counts.tsv" "$D/expected_os_counts.tsv" ||
            die "$D was not made with --files 40 --lines 1600 (expected counts differ); remove it"
        for c in $COMPS; do [ -d "$D/$c" ] || mv "$tmp/$c" "$D/$c"; done
        mv "$tmp/manifest.json" "$D/manifest.json"
        rm -rf "$tmp"
    else
        say "generating $D (about 1-2 minutes)"
        "$PY" "$SHARED/gen_telemetry.py" --files 40 --lines 1600 --compression xz,gz,zst,none --out "$D"
    fi
fi
RECORDS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["lines"])' "$D/manifest.json")
XZ="$D/xz/*/*/*/*/*.xz"
GZ="$D/gz/*/*/*/*/*.gz"
ZS="$D/zst/*/*/*/*/*.zst"
LC_ALL=C sort "$D/expected_os_counts.tsv" > "$OUT/work/expected.tsv"

# The peers' C mapper, for the optional pair xz-osmap (configs/osmap.yml expects it in bench/out).
cc -O2 -Wall -o "$OUT/osmap" "$SHARED/osmap.c"

# xzcat: `xz -dc` linked against the liblzma that polymr embeds (liblzma-sys bundles xz 5.8,
# Debian's xz-utils is 5.4.1 and slower), for the xz58-* pairs: same decoder on both sides,
# so their ratio is the driver's overhead alone.
XZCAT="$OUT/xzcat"
build_xzcat() {
    local ver lib inc
    ver=$(awk '/^name = "liblzma-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' "$ROOT/Cargo.lock")
    [ -n "$ver" ] || return 1
    lib=$(ls -t "$ROOT"/target/release/build/liblzma-sys-*/out/liblzma.a 2>/dev/null | head -1)
    inc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/liblzma-sys-"$ver"/xz/src/liblzma/api 2>/dev/null | head -1)
    [ -n "$lib" ] && [ -n "$inc" ] || return 1
    cc -O2 -Wall -I"$inc" -o "$XZCAT" "$B/xzcat.c" "$lib" -lpthread
}
if ! build_xzcat; then
    echo "bench/run.sh: cannot build xzcat against polymr's liblzma: skipping the xz58-* pairs" >&2
    PAIRS=$(printf '%s\n' $PAIRS | grep -v '^xz58-' | paste -sd' ' -)
fi

# --- helpers -----------------------------------------------------------------------------
# Sums an output's "OS 1" / "OS<TAB>1" lines per OS, sorted: comparable with expected.tsv.
counts() { awk '{ c[$1] += $2 } END { for (k in c) printf "%s\t%d\n", k, c[k] }' "$1" | LC_ALL=C sort; }

verify() { # NAME FILE [FACTOR]
    local f="${3:-1}"
    if counts "$2" | cmp -s - <(awk -v f="$f" -F'\t' '{ printf "%s\t%d\n", $1, $2 * f }' "$OUT/work/expected.tsv"); then
        echo "ok"
    else
        echo "WRONG COUNTS: $1 ($2)" >&2
        counts "$2" >&2
        echo "FAIL"
    fi
}

busy_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }

wait_quiet() {
    [ "$QUIET" -gt 0 ] || return 0
    local t0=$SECONDS a ai b bi p
    while :; do
        read -r a ai < <(busy_ticks); sleep 2; read -r b bi < <(busy_ticks)
        p=$(( 100 * (b - a) / (b - a + bi - ai + 1) ))
        if [ "$p" -lt "$QUIET" ]; then return 0; fi
        if [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ]; then
            echo "   (machine still ${p}% busy after ${QUIET_WAIT}s: measuring anyway)" >&2
            return 0
        fi
    done
}

# --- timing ------------------------------------------------------------------------------
# pair NAME  POLYMR_CONFIG  INPUT_GLOB  PIPELINE_DECODER  PIPELINE_MAPPER
pair_cmds() {
    local name=$1 cfg=$2 glob=$3 dec=$4 map=$5
    P_CMD="$POLYMR map --config $cfg --output $OUT/work/$name.polymr.txt $glob"
    S_CMD="$dec $glob | $map > $OUT/work/$name.pipe.txt"
}
define_pair() {
    case $1 in
    xz-c)     pair_cmds "$1" "$B/configs/c.yml"   "$XZ" "xz -dc"    "$NATIVE" ;;
    xz58-c)   pair_cmds "$1" "$B/configs/c.yml"   "$XZ" "$XZCAT"    "$NATIVE" ;;
    xz58-py)  pair_cmds "$1" "$ROOT/analysis-tools.yml" "$XZ" "$XZCAT" "$PY $SHARED/map.py" ;;
    xz-awk)   pair_cmds "$1" "$B/configs/awk.yml" "$XZ" "xz -dc"    "mawk -f $SHARED/map_os.awk" ;;
    xz-py)    pair_cmds "$1" "$ROOT/analysis-tools.yml" "$XZ" "xz -dc" "$PY $SHARED/map.py" ;;
    xz-pymap) pair_cmds "$1" "$B/configs/pymap.yml" "$XZ" "xz -dc"  "$PY $SHARED/map.py" ;;
    gz-c)     pair_cmds "$1" "$B/configs/c.yml"   "$GZ" "gzip -dc"  "$NATIVE" ;;
    gz-py)    pair_cmds "$1" "$ROOT/analysis-tools.yml" "$GZ" "gzip -dc" "$PY $SHARED/map.py" ;;
    zst-c)    pair_cmds "$1" "$B/configs/c.yml"   "$ZS" "zstd -qdc" "$NATIVE" ;;
    zst-py)   pair_cmds "$1" "$ROOT/analysis-tools.yml" "$ZS" "zstd -qdc" "$PY $SHARED/map.py" ;;
    xz-osmap) pair_cmds "$1" "$B/configs/osmap.yml" "$XZ" "xz -dc" "$OUT/osmap" ;;
    *) die "unknown pair $1" ;;
    esac
}

run_pair() {
    local name=$1 r a ai b bi json
    define_pair "$name"
    say "$name"
    echo "   polymr:   $P_CMD" >&2
    echo "   pipeline: $S_CMD" >&2
    for r in $(seq 1 "$ROUNDS"); do
        wait_quiet
        json="$OUT/hyperfine/$name.$r.json"
        read -r a ai < <(busy_ticks)
        if [ $((r % 2)) = 1 ]; then
            ${NICE:+nice -n "$NICE"} hyperfine -w"$WARMUP" -r"$RUNS" --style basic \
                --export-json "$json" --export-markdown "$OUT/hyperfine/$name.$r.md" \
                -n polymr "$P_CMD" -n pipeline "$S_CMD" >&2
        else
            ${NICE:+nice -n "$NICE"} hyperfine -w"$WARMUP" -r"$RUNS" --style basic \
                --export-json "$json" --export-markdown "$OUT/hyperfine/$name.$r.md" \
                -n pipeline "$S_CMD" -n polymr "$P_CMD" >&2
        fi
        read -r b bi < <(busy_ticks)
        echo "$a $ai $b $bi" > "$OUT/hyperfine/$name.$r.ticks"
    done
    local okp oks
    okp=$(verify "$name/polymr" "$OUT/work/$name.polymr.txt")
    oks=$(verify "$name/pipeline" "$OUT/work/$name.pipe.txt")
    local recs status
    recs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["records"])' "$OUT/work/$name.polymr.txt.report.json")
    status=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$OUT/work/$name.polymr.txt.report.json")
    [ "$recs" = "$RECORDS" ] && [ "$status" = succeeded ] || okp="FAIL(report: $status, $recs records)"
    echo "$name $okp $oks" >> "$OUT/work/verify.txt"
}

if [ "$TIMING" = 1 ]; then
    : > "$OUT/work/verify.txt"
    for p in $PAIRS; do run_pair "$p"; done
fi

# --- the driver's own peak RSS -------------------------------------------------------------
# A sink mapper (`cat > /dev/null`, ~2 MiB) reads as fast as the driver feeds, and is small,
# so both VmHWM sampling of the driver's pid and wait4's ru_maxrss measure the driver.
rss_row() { # NAME CONFIG EXPECT_RECORDS INPUT...
    local name=$1 cfg=$2 want=$3; shift 3
    wait_quiet
    local j
    j=$("$PY" "$B/peak_rss.py" -- "$POLYMR" map --config "$cfg" --output "$OUT/work/rss-$name.txt" "$@" 2>/dev/null) ||
        die "rss $name failed: $j"
    local recs drv
    recs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["records"])' "$OUT/work/rss-$name.txt.report.json")
    [ "$recs" = "$want" ] || die "rss $name: $recs records, expected $want"
    # The report's own figure, if this polymr writes one (any key with "rss" in its name).
    drv=$("$PY" -c '
import json, sys
def walk(o, p=""):
    if isinstance(o, dict):
        for k, v in o.items():
            if "rss" in k.lower() and isinstance(v, (int, float)): print("%s%s=%s" % (p, k, v))
            else: walk(v, p + k + ".")
walk(json.load(open(sys.argv[1])))' "$OUT/work/rss-$name.txt.report.json" | paste -sd' ' -)
    echo "$name $j ${drv:--}" | tee -a "$OUT/work/rss.txt" >&2
}
if [ "$RSS" = 1 ]; then
    say "driver peak RSS"
    if [ ! -s "$BIG" ]; then
        echo "   making $BIG (the MEDIUM xz files 5 times over, one multi-stream xz file)" >&2
        for i in 1 2 3 4 5; do cat $XZ; done > "$BIG.tmp" && mv "$BIG.tmp" "$BIG"
    fi
    XZN=$(for i in $(seq "$REPEAT"); do echo $XZ; done)
    : > "$OUT/work/rss.txt"
    # shellcheck disable=SC2086  # the globs are meant to expand
    {
        rss_row sink-xz-medium "$B/configs/cat.yml" "$RECORDS" $XZ
        rss_row sink-xz-x"$REPEAT" "$B/configs/cat.yml" $((RECORDS * REPEAT)) $XZN
        rss_row sink-xz-one-x5    "$B/configs/cat.yml" $((RECORDS * 5)) "$BIG"
        rss_row sink-gz-medium    "$B/configs/cat.yml" "$RECORDS" $GZ
        rss_row sink-zst-medium   "$B/configs/cat.yml" "$RECORDS" $ZS
        rss_row sink-none-medium  "$B/configs/cat.yml" "$RECORDS" "$D/none"
        rss_row c-xz-x"$REPEAT"      "$B/configs/c.yml"   $((RECORDS * REPEAT)) $XZN
        rss_row py-xz-medium      "$ROOT/analysis-tools.yml" "$RECORDS" $XZ
        rss_row py-xz-x"$REPEAT"     "$ROOT/analysis-tools.yml" $((RECORDS * REPEAT)) $XZN
    }
    for r in c-xz-x"$REPEAT" py-xz-x"$REPEAT"; do
        echo "rss-$r $(verify "rss $r" "$OUT/work/rss-$r.txt" "$REPEAT")" >> "$OUT/work/verify.txt"
    done
fi

# --- summary -------------------------------------------------------------------------------
say "summary"
"$PY" "$B/summarize.py" --out "$OUT" --runs "$RUNS" --warmup "$WARMUP" --data "$D" \
    --pairs "$([ "$TIMING" = 1 ] && echo "$PAIRS")" --rounds "$ROUNDS" --nice "$NICE" | tee "$OUT/summary.md"
if grep -q FAIL "$OUT/work/verify.txt" 2>/dev/null; then
    die "some outputs had wrong counts: $OUT/work/verify.txt"
fi
