#!/usr/bin/env bash
# The whole-job benchmark: `polymr run` (map tasks in parallel, shuffle, reducer, one result)
# against the peers' ways of running the same "count pings per OS" job (the variants of
# /work/shared/bench/variants.sh), side by side: ONE hyperfine invocation per group. Every
# variant's result is checked against the data set's expected_os_counts.tsv. See bench/JOB.md.
#
#   bash bench/job.sh                       all three groups (about 5 minutes on 2 cores)
#   GROUPS_RUN="py-xz native-xz" bash bench/job.sh     only some groups
#
# Groups (targets in brackets):
#   py-xz      polymr run --mappers 2, Python mapper + reducer (analysis-tools.yml), .xz input,
#              vs a_py_xz (xz -dc | map.py | sort | reduce.py) [>= 1.2x faster] and
#              d_xargs_py (xargs -P2, one pipeline per file) [faster]; also floor_xz and the
#              peers' map.py alone on the uncompressed set, for the CPU lower bound
#              (xz CPU + mapper CPU) / 2.
#   mr-gz      polymr run --mappers 2 (Python), .gz input, vs e_mrjob_inline [>= 1.5x faster] and
#              f_spark, PySpark local[2] with its JVM start [>= 4x faster].
#   native-xz  polymr run --mappers 2 with examples/configs/native.yml (os_count_c + sum.sh), .xz,
#              vs floor_xz_par2 (xz -dc, two files at a time) [within 1.5x]; floor_xz for context.
#
# Environment (defaults in brackets):
#   D          data set made by gen_telemetry.py [/tmp/bench-data/medium]; generated if missing
#   RUNS       timed runs per command [5];  WARMUP  warm-up runs [1]
#   MAPPERS    polymr run --mappers [2]
#   PY         interpreter for the peers' scripts and POLYMR_PYTHON [/usr/bin/python3]
#              (python3 on PATH is a slow pyenv shim)
#   V          python of the venv with mrjob and pyspark [/tmp/bench-venv/bin/python]; made
#              with /usr/bin/python3.11 -m venv + pip install mrjob pyspark if missing
#   SHARED     the peers' bench folder [/work/shared/bench]
#   QUIET      before each hyperfine invocation wait until the machine is less than QUIET %
#              busy over 2 s [20]; 0 disables. Gives up waiting after QUIET_WAIT s [900]
#   FOREIGN    after each invocation, compare the machine's CPU time (/proc/stat) with the CPU
#              time hyperfine accounted to the commands; if more than FOREIGN % of it was
#              someone else's, wait for quiet and measure the group again [10], at most
#              TRIES times in all [4]. (Not for mr-gz: Spark's JVM is never reaped, so its CPU
#              is invisible to hyperfine.)
#   BUILD      0 skips `cargo build --release` and `make native` [1]
#   OUT        where results go [bench/out/job]: hyperfine JSON/markdown, outputs, summary.md
set -euo pipefail

B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
D="${D:-/tmp/bench-data/medium}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
MAPPERS="${MAPPERS:-2}"
PY="${PY:-/usr/bin/python3}"
V="${V:-/tmp/bench-venv/bin/python}"
SHARED="${SHARED:-/work/shared/bench}"
QUIET="${QUIET:-20}"
QUIET_WAIT="${QUIET_WAIT:-900}"
FOREIGN="${FOREIGN:-10}"
TRIES="${TRIES:-4}"
BUILD="${BUILD:-1}"
OUT="${OUT:-$B/out/job}"
GROUPS_RUN="${GROUPS_RUN:-py-xz mr-gz native-xz}"

POLYMR="$ROOT/target/release/polymr"
NATIVE="$ROOT/custom-mappers/os_count_c"
W="$OUT/work"
H="$OUT/hyperfine"
export LC_ALL=C D PY V
export POLYMR_PYTHON="$PY"
# This machine's environment sets PYTHONUNBUFFERED=1 (every print a write(2)); polymr scrubs
# it for its children and variants.sh unsets it, so unset it here too, for every side.
unset PYTHONUNBUFFERED PYTHONDONTWRITEBYTECODE

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/job.sh: %s\n' "$*" >&2; exit 1; }

# --- tools, build, data ------------------------------------------------------------------
if ! command -v hyperfine >/dev/null 2>&1; then
    say "installing hyperfine"
    [ "$(id -u)" -eq 0 ] || die "hyperfine is missing: apt-get install hyperfine"
    DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine; } ||
        die "could not install hyperfine"
fi
for t in xz gzip awk cc "$PY"; do
    command -v "$t" >/dev/null 2>&1 || die "missing: $t (see $SHARED/README.md, Setup)"
done
[ -f "$SHARED/variants.sh" ] || die "no peers' bench in $SHARED"

# Others edit src/ meanwhile: a failed build is retried (BUILD_TRIES times, a minute apart);
# after that the last good binary is measured, and env.txt says so.
BUILD_NOTE=""
mkdir -p "$OUT"
if [ "$BUILD" = 1 ]; then
    say "building (cargo build --release && make native)"
    for i in $(seq 1 "${BUILD_TRIES:-5}"); do
        if (cd "$ROOT" && cargo build --release && make native) >"$OUT/build.log" 2>&1; then BUILD_NOTE=""; break; fi
        BUILD_NOTE=" (build FAILED, measuring the previous binary; see $OUT/build.log)"
        echo "   build failed (try $i), someone may be mid-edit; retrying in 60 s" >&2
        [ "$i" -lt "${BUILD_TRIES:-5}" ] && sleep 60
    done
fi
[ -x "$POLYMR" ] || die "no $POLYMR (cargo build --release)"
# Measure a copy: others may rebuild target/release/polymr while this runs.
cp "$POLYMR" "$OUT/polymr.tmp" && mv "$OUT/polymr.tmp" "$OUT/polymr"
POLYMR_BUILT=$(date -u -r "$POLYMR" +%Y-%m-%dT%H:%M:%SZ)
POLYMR="$OUT/polymr"
[ -x "$NATIVE" ] || die "no $NATIVE (make native)"

if [ ! -f "$D/manifest.json" ]; then
    say "generating $D (about 1-2 minutes)"
    "$PY" "$SHARED/gen_telemetry.py" --files 40 --lines 1600 --compression xz,gz,zst,none --out "$D"
fi
for c in xz gz none; do
    [ -d "$D/$c" ] || die "$D has no $c/ (regenerate: rm -rf $D and run again)"
done
[ -f "$D/expected_os_counts.tsv" ] || die "no $D/expected_os_counts.tsv"

case " $GROUPS_RUN " in *" mr-gz "*)
    if [ ! -x "$V" ] || ! "$V" -c 'import mrjob, pyspark' 2>/dev/null; then
        say "making the venv $(dirname "$(dirname "$V")") with mrjob and pyspark"
        /usr/bin/python3.11 -m venv "$(dirname "$(dirname "$V")")"
        "$(dirname "$V")/pip" install -q mrjob pyspark
    fi
    command -v java >/dev/null 2>&1 || die "no java (apt-get install openjdk-17-jre-headless)"
esac

mkdir -p "$W" "$H"
RECORDS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["lines"])' "$D/manifest.json")
# The peers' Python mapper alone reads the whole uncompressed set from one file (no cat).
ALL="${TMPDIR:-/tmp}/polymr-bench-none-all.txt"
want_bytes=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"]["bytes_none"])' "$D/manifest.json")
if [ ! -f "$ALL" ] || [ "$(stat -c %s "$ALL")" != "$want_bytes" ]; then
    cat "$D"/none/*/*/*/*/* > "$ALL"
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "polymr: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo ' +uncommitted src changes'), binary built $POLYMR_BUILT$BUILD_NOTE"
    echo "hyperfine: $(hyperfine --version)"
    echo "python: $("$PY" --version 2>&1) ($PY)"
    echo "data: $D ($RECORDS records)"
} > "$OUT/env.txt"

# --- helpers -------------------------------------------------------------------------------
busy_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }

wait_quiet() {
    [ "$QUIET" -gt 0 ] || return 0
    local t0=$SECONDS a ai b bi p
    while :; do
        read -r a ai < <(busy_ticks); sleep 2; read -r b bi < <(busy_ticks)
        p=$(( 100 * (b - a) / (b - a + bi - ai + 1) ))
        if [ "$p" -lt "$QUIET" ]; then
            # Others here wait for quiet too: a random pause and a second look keep two
            # waiters from starting together.
            sleep $((RANDOM % 8 + 1))
            read -r a ai < <(busy_ticks); sleep 2; read -r b bi < <(busy_ticks)
            p=$(( 100 * (b - a) / (b - a + bi - ai + 1) ))
            [ "$p" -lt "$QUIET" ] && return 0
        fi
        if [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ]; then
            echo "   (machine still ${p}% busy after ${QUIET_WAIT}s: measuring anyway)" >&2
            return 0
        fi
    done
}

# Sums an output's "OS count" / "OS<TAB>count" / "\"OS\"<TAB>count" lines per OS, sorted.
counts() { tr -d '"' < "$1" | awk '{ c[$1] += $2 } END { for (k in c) printf "%s\t%d\n", k, c[k] }' | LC_ALL=C sort; }

verify() { # NAME FILE [POLYMR_REPORT]
    local ok=ok
    if ! counts "$2" | cmp -s - <(LC_ALL=C sort "$D/expected_os_counts.tsv"); then
        echo "WRONG COUNTS: $1 ($2):" >&2; counts "$2" >&2; ok=FAIL
    fi
    if [ -n "${3:-}" ]; then
        local st
        st=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["status"], r["totals"]["records"])' "$3")
        [ "$st" = "succeeded $RECORDS" ] || { echo "BAD REPORT: $1: $st" >&2; ok=FAIL; }
    fi
    echo "$1 $ok" >> "$W/verify.txt"
}

TCK=$(getconf CLK_TCK)
# group NAME CHECK_FOREIGN -- NAME1 CMD1 NAME2 CMD2 ...: one hyperfine invocation, repeated
# (after waiting for quiet) while more than FOREIGN % of the machine's CPU was not ours.
group() {
    local name=$1 check=$2; shift 3
    local args=() try a ai b bi json
    while [ $# -gt 0 ]; do
        args+=(-n "$1" "$2"); printf '   %-16s %s\n' "$1" "$2" >&2; shift 2
    done
    json="$H/$name.json"
    for try in $(seq 1 "$TRIES"); do
        wait_quiet
        mkdir -p "$W" "$H"   # bench/out is shared: someone may have removed it meanwhile
        read -r a ai < <(busy_ticks)
        hyperfine -w"$WARMUP" -r"$RUNS" --style basic --export-json "$json" \
            --export-markdown "$H/$name.md" "${args[@]}" >&2
        read -r b bi < <(busy_ticks)
        local verdict
        verdict=$("$PY" - "$json" "$a" "$b" "$TCK" "$RUNS" "$WARMUP" "$FOREIGN" "$check" <<'EOF'
import json, sys
j, a, b, tck, runs, warm, lim, check = sys.argv[1:]
res = json.load(open(j))["results"]
ours = sum((r["user"] + r["system"]) * (int(runs) + int(warm)) for r in res)
machine = (int(b) - int(a)) / int(tck)
foreign = machine - ours
pct = 100 * foreign / max(ours, 1e-9)
bad = check == "1" and pct > float(lim)
print("%s machine_cpu_s=%.1f accounted_cpu_s=%.1f foreign_pct=%.0f" % ("retry" if bad else "ok", machine, ours, pct))
EOF
)
        echo "   $name try $try: $verdict" >&2
        echo "$name try=$try $verdict" >> "$W/cpu-check.txt"
        case $verdict in ok*) return 0 ;; esac
    done
    echo "   $name: still contended after $TRIES tries; keeping the last measurement" >&2
}

: > "$W/verify.txt"
: > "$W/cpu-check.txt"
VAR="bash $SHARED/variants.sh run"

# --- 1. Python over .xz ---------------------------------------------------------------------
if [[ " $GROUPS_RUN " == *" py-xz "* ]]; then
    say "1. py-xz: polymr run (Python) vs a_py_xz, d_xargs_py; floor_xz, map.py alone"
    group py-xz 1 -- \
        polymr_run "$POLYMR run --config $ROOT/analysis-tools.yml --mappers $MAPPERS -o $W/py-xz.polymr.txt $D/xz" \
        a_py_xz "$VAR a_py_xz > $W/a_py_xz.txt" \
        d_xargs_py "$VAR d_xargs_py > $W/d_xargs_py.txt" \
        floor_xz "$VAR floor_xz" \
        map_py_alone "$PY $SHARED/map.py < $ALL > /dev/null"
    verify py-xz/polymr_run "$W/py-xz.polymr.txt" "$W/py-xz.polymr.txt.report.json"
    verify py-xz/a_py_xz "$W/a_py_xz.txt"
    verify py-xz/d_xargs_py "$W/d_xargs_py.txt"
fi

# --- 2. Python over .gz vs mrjob inline and PySpark -----------------------------------------
if [[ " $GROUPS_RUN " == *" mr-gz "* ]]; then
    say "2. mr-gz: polymr run (Python, .gz) vs e_mrjob_inline, f_spark"
    group mr-gz 0 -- \
        polymr_run "$POLYMR run --config $ROOT/analysis-tools.yml --mappers $MAPPERS -o $W/mr-gz.polymr.txt $D/gz" \
        e_mrjob_inline "$VAR e_mrjob_inline > $W/e_mrjob_inline.txt" \
        f_spark "$VAR f_spark > $W/f_spark.txt"
    verify mr-gz/polymr_run "$W/mr-gz.polymr.txt" "$W/mr-gz.polymr.txt.report.json"
    verify mr-gz/e_mrjob_inline "$W/e_mrjob_inline.txt"
    verify mr-gz/f_spark "$W/f_spark.txt"
fi

# --- 3. native mapper over .xz vs the parallel decompression floor ---------------------------
if [[ " $GROUPS_RUN " == *" native-xz "* ]]; then
    say "3. native-xz: polymr run (native.yml) vs floor_xz_par2, floor_xz"
    group native-xz 1 -- \
        polymr_run "$POLYMR run --config $ROOT/examples/configs/native.yml --mappers $MAPPERS -o $W/native-xz.polymr.txt $D/xz" \
        floor_xz_par2 "$VAR floor_xz_par2" \
        floor_xz "$VAR floor_xz"
    verify native-xz/polymr_run "$W/native-xz.polymr.txt" "$W/native-xz.polymr.txt.report.json"
fi

# --- summary ------------------------------------------------------------------------------
"$PY" - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
H, W = os.path.join(out, "hyperfine"), os.path.join(out, "work")
env = open(os.path.join(out, "env.txt")).read().strip() if os.path.exists(os.path.join(out, "env.txt")) else "?"
def lines(name):
    p = os.path.join(W, name)
    return [l for l in open(p) if l.strip()] if os.path.exists(p) else []
verified = dict(l.split() for l in lines("verify.txt"))
cpu = {}
for l in lines("cpu-check.txt"):
    cpu[l.split()[0]] = l.split(" ", 1)[1].strip()  # the last try

def load(g):
    p = os.path.join(H, g + ".json")
    return {r["command"]: r for r in json.load(open(p))["results"]} if os.path.exists(p) else None

# group -> [(other, target ratio other/polymr, how the target reads)]
targets = {
    "py-xz": [("a_py_xz", 1.2, ">= 1.2x faster"), ("d_xargs_py", 1.0, "faster")],
    "mr-gz": [("e_mrjob_inline", 1.5, ">= 1.5x faster"), ("f_spark", 4.0, ">= 4x faster")],
    "native-xz": [("floor_xz_par2", 1 / 1.5, "within 1.5x of")],
}
print("# polymr run vs peers\n\n```\n%s\n```\n" % env)
print("Medians of hyperfine runs (one invocation per group, commands side by side); CPU = "
      "mean user+sys of the waited-for processes.\n")
print("| group | command | median s | mean ± sd s | CPU s | verified |")
print("|---|---|---|---|---|---|")
for g in targets:
    r = load(g)
    if not r:
        continue
    for c, x in r.items():
        v = verified.get("%s/%s" % (g, c), "-")
        print("| %s | `%s` | %.2f | %.2f ± %.2f | %.2f | %s |" % (
            g, c, x["median"], x["mean"], x["stddev"] or 0.0, x["user"] + x["system"], v))
print("\n| group | target | peer median / polymr median | met? |")
print("|---|---|---|---|")
for g, ts in targets.items():
    r = load(g)
    if not r:
        continue
    p = r["polymr_run"]["median"]
    for other, need, text in ts:
        ratio = r[other]["median"] / p
        if need < 1:
            shown = "polymr / %s = %.2f (need <= %.2f)" % (other, 1 / ratio, 1 / need)
        else:
            shown = "%s / polymr = %.2f (need >= %.2f)" % (other, ratio, need)
        ok = ratio > need if need == 1.0 else ratio >= need
        print("| %s | %s %s | %s | %s |" % (g, text, other, shown, "yes" if ok else "**NO**"))
r = load("py-xz")
if r:
    xz = r["floor_xz"]["user"] + r["floor_xz"]["system"]
    mp = r["map_py_alone"]["user"] + r["map_py_alone"]["system"]
    pc = r["polymr_run"]["user"] + r["polymr_run"]["system"]
    print("\npy-xz CPU lower bound on 2 cores: (xz CPU %.2f + map.py CPU %.2f) / 2 = **%.2f s**; "
          "polymr's own CPU %.2f s / 2 = %.2f s; polymr median %.2f s = %.2fx the bound."
          % (xz, mp, (xz + mp) / 2, pc, pc / 2, r["polymr_run"]["median"],
             r["polymr_run"]["median"] / ((xz + mp) / 2)))
print("\nCPU check (machine CPU from /proc/stat vs CPU hyperfine accounted, incl. warm-ups):")
for g, v in cpu.items():
    print("- %s: %s" % (g, v))
EOF
