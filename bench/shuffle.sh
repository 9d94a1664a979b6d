#!/usr/bin/env bash
# The shuffle benchmark: `polymr reduce --sort-memory 128MiB` (external merge sort, then a
# pass-through reducer) against GNU sort with the same memory, over ~1 GB of `key<TAB>value`
# lines, side by side in one hyperfine invocation per data set; peak RSS of each (GNU time,
# and polymr's own report); the sorted output checked line for line. See bench/JOB.md.
#
#   bash bench/shuffle.sh               (about 10 minutes on 2 cores, the first time ~4 more
#                                        to generate the data)
#
# Data sets (generated once with mawk, seeded, reused while their size matches):
#   short  kv-1g.txt       ~1 GB, ~20-byte lines: 12-hex-digit keys drawn from 3,000,000 distinct
#                          values, TAB, a number 0..999999            (~50 M lines)
#   wide   kv-1g-wide.txt  ~1 GB, ~44-byte lines: 36-character UUID-like keys drawn from
#                          3,000,000 distinct values, TAB, a number   (~23 M lines)
#
# Before timing, a canary checks polymr's sorter on a few MB of short lines with an 8 MiB
# budget (strace counts the spill files it creates: a sound sorter makes 1 or 2). polymr's
# sorter counts its index by capacity and keeps that capacity after a spill: with lines under
# ~32 bytes the index alone reaches the budget, and every later line becomes its own run file
# (millions of files for the short set; it ran for over 10 minutes on 100 MB). While the canary
# fails, polymr is NOT timed on the short set (GNU sort still is) unless FORCE_SHORT=1, which
# runs it once under a TIMEOUT with its scratch on tmpfs.
#
# Environment (defaults in brackets):
#   DATA       where the data sets go [/tmp/bench-data]
#   BYTES      approximate size of each data set [1000000000]
#   MEM        the sort memory of both sides [128MiB]; GNU sort gets the same bytes (-S)
#   RUNS       timed runs per command [5];  WARMUP  warm-up runs [1]
#   SETS       data sets to time ["wide short"]
#   SCRATCH    TMPDIR of both sides (spill files) [/tmp]
#   QUIET      wait until the machine is less than QUIET % busy before each invocation [20];
#              0 disables; gives up after QUIET_WAIT s [300]
#   FOREIGN    after each invocation, if more than FOREIGN % of the machine's CPU time
#              (/proc/stat) was not accounted to the commands by hyperfine, wait for quiet and
#              measure again [15], at most TRIES times in all [3]
#   FORCE_SHORT, TIMEOUT   see above [0, 300]
#   KEEP       1 keeps the two sorted 1 GB outputs of the check [0]
#   BUILD      0 skips `cargo build --release` [1]
#   OUT        where results go [bench/out/shuffle]
set -euo pipefail

B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
DATA="${DATA:-/tmp/bench-data}"
BYTES="${BYTES:-1000000000}"
MEM="${MEM:-128MiB}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
SETS="${SETS:-wide short}"
SCRATCH="${SCRATCH:-/tmp}"
QUIET="${QUIET:-20}"
QUIET_WAIT="${QUIET_WAIT:-300}"
FOREIGN="${FOREIGN:-15}"
TRIES="${TRIES:-3}"
FORCE_SHORT="${FORCE_SHORT:-0}"
TIMEOUT="${TIMEOUT:-300}"
KEEP="${KEEP:-0}"
BUILD="${BUILD:-1}"
OUT="${OUT:-$B/out/shuffle}"
PY=/usr/bin/python3

POLYMR="$ROOT/target/release/polymr"
W="$OUT/work"
H="$OUT/hyperfine"
export LC_ALL=C TMPDIR="$SCRATCH"

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench/shuffle.sh: %s\n' "$*" >&2; exit 1; }

# MEM in bytes, for GNU sort's -S: given as "<bytes>b" (a bare number would mean KiB).
mem_bytes=$("$PY" - "$MEM" <<'EOF'
import re, sys
m = re.fullmatch(r"(\d+)\s*([KMGT]?)(i?B?)", sys.argv[1].strip(), re.I)
if not m:
    sys.exit("bad MEM " + sys.argv[1])
n, u, ib = int(m.group(1)), m.group(2).upper(), m.group(3)
base = 1024 if (ib.lower().startswith("i") or ib == "") else 1000
print(n * base ** " KMGT".index(u or " "))
EOF
)

# --- tools, build ------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "hyperfine is missing: apt-get install hyperfine"
    DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine; } ||
        die "could not install hyperfine"
fi
[ -x /usr/bin/time ] || die "missing /usr/bin/time (apt-get install time)"
AWK=$(command -v mawk || command -v awk)
# Others edit src/ meanwhile: a failed build is retried (BUILD_TRIES times, a minute apart);
# after that the last good binary is measured, and env.txt says so.
BUILD_NOTE=""
mkdir -p "$OUT"
if [ "$BUILD" = 1 ]; then
    say "building (cargo build --release)"
    for i in $(seq 1 "${BUILD_TRIES:-5}"); do
        if (cd "$ROOT" && cargo build --release) >"$OUT/build.log" 2>&1; then BUILD_NOTE=""; break; fi
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

mkdir -p "$W" "$H" "$DATA"

# --- configs: pass-through binary reducers --------------------------------------------------
printf '#!/bin/sh\n# counts the sorted lines (pass-through sink)\nexec wc -l\n' > "$W/wc.sh"
printf '#!/bin/sh\n# passes the sorted lines through\nexec cat\n' > "$W/cat.sh"
chmod +x "$W/wc.sh" "$W/cat.sh"
for r in wc cat; do
    cat > "$W/$r.yml" <<EOF
# generated by bench/shuffle.sh: the reducer gets the sorted key<TAB>value lines unchanged
mapper: {language: binary, script: $r.sh}
reducer: {language: binary, script: $r.sh}
record_format: lines
key_separator: "\t"
EOF
done

# --- data ---------------------------------------------------------------------------------
# gen FILE KIND: ~BYTES of key<TAB>value lines, keys drawn from 3,000,000 distinct values.
gen() {
    local f=$1 kind=$2
    if [ -f "$f" ] && [ -f "$f.ok" ] && [ "$(cat "$f.ok")" = "$kind $BYTES $(stat -c %s "$f")" ]; then
        return 0
    fi
    say "generating $f ($kind, ~$BYTES bytes; a minute or two)"
    "$AWK" -v target="$BYTES" -v K=3000000 -v kind="$kind" 'BEGIN {
        srand(42)
        for (i = 0; i < K; i++) {
            if (kind == "wide")
                key[i] = sprintf("%08x-%04x-4%03x-%04x-%08x%04x", int(rand() * 4294967296),
                    int(rand() * 65536), int(rand() * 4096), int(rand() * 65536),
                    int(rand() * 4294967296), int(rand() * 65536))
            else
                key[i] = sprintf("%08x%04x", int(rand() * 4294967296), int(rand() * 65536))
        }
        n = 0
        while (n < target) {
            line = key[int(rand() * K)] "\t" int(rand() * 1000000)
            print line
            n += length(line) + 1
        }
    }' > "$f.tmp"
    mv "$f.tmp" "$f"
    echo "$kind $BYTES $(stat -c %s "$f")" > "$f.ok"
}
declare -A FILE=([short]="$DATA/kv-1g.txt" [wide]="$DATA/kv-1g-wide.txt")
for s in $SETS; do
    [ -n "${FILE[$s]:-}" ] || die "unknown set $s (short, wide)"
    gen "${FILE[$s]}" "$s"
done

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -sr), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "polymr: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo ' +uncommitted src changes'), binary built $POLYMR_BUILT$BUILD_NOTE"
    echo "hyperfine: $(hyperfine --version); $(sort --version | head -1)"
    echo "memory: $MEM = $mem_bytes bytes; scratch (TMPDIR): $SCRATCH ($(df --output=fstype "$SCRATCH" | tail -1))"
    for s in $SETS; do
        f=${FILE[$s]}
        echo "set $s: $f, $(stat -c %s "$f") bytes, $(wc -l < "$f") lines"
    done
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# --- helpers ------------------------------------------------------------------------------
busy_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $5+$6 }' /proc/stat; }
wait_quiet() {
    [ "$QUIET" -gt 0 ] || return 0
    local t0=$SECONDS a ai b bi p
    while :; do
        read -r a ai < <(busy_ticks); sleep 2; read -r b bi < <(busy_ticks)
        p=$(( 100 * (b - a) / (b - a + bi - ai + 1) ))
        [ "$p" -lt "$QUIET" ] && return 0
        if [ $((SECONDS - t0)) -ge "$QUIET_WAIT" ]; then
            echo "   (machine still ${p}% busy after ${QUIET_WAIT}s: measuring anyway)" >&2
            return 0
        fi
    done
}
# peak NAME CMD...: one run under GNU time -v; "NAME wall_s user_s sys_s maxrss_kib" to peaks.txt
peak() {
    local name=$1; shift
    /usr/bin/time -v -o "$W/$name.time" "$@"
    awk -v n="$name" -F': ' '
        /Elapsed \(wall clock\)/ { k = split($2, t, ":"); w = (k == 3) ? t[1]*3600 + t[2]*60 + t[3] : t[1]*60 + t[2] }
        /User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 }
        END { printf "%s %.2f %.2f %.2f %d\n", n, w, u, s, m }' "$W/$name.time" >> "$W/peaks.txt"
}
report_rss() { "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["status"], r["driver_peak_rss_bytes"], r["duration_ms"], r["totals"]["records"])' "$1"; }

: > "$W/peaks.txt"
: > "$W/checks.txt"

# --- canary: does polymr's sorter keep its runs as big as its budget? ------------------------
say "canary: polymr reduce --sort-memory 8MiB over 140,000 short lines, then as many wide ones"
CANARY=ok
if command -v strace >/dev/null 2>&1; then
    "$AWK" 'BEGIN { srand(7); for (i = 0; i < 140000; i++) {
        k = sprintf("%08x%04x", int(rand() * 4294967296), int(rand() * 65536)); v = int(rand() * 1000000)
        print k "\t" v > ARGV[1]
        print k "-" k "-0000-000000000000\t" v > ARGV[2] } }' "$W/canary-short.txt" "$W/canary-wide.txt"
    for c in short wide; do
        mkdir -p /dev/shm/polymr-bench-canary
        TMPDIR=/dev/shm/polymr-bench-canary strace -f -qq -e trace=openat -o "$W/canary-$c.strace" \
            "$POLYMR" reduce --config "$W/wc.yml" --sort-memory 8MiB -o "$W/canary-$c.out" "$W/canary-$c.txt" 2>/dev/null
        rm -rf /dev/shm/polymr-bench-canary
        n=$(grep -c 'spill[^"]*".*O_CREAT' "$W/canary-$c.strace" || true)
        lines=$(tr -d ' ' < "$W/canary-$c.out")
        echo "canary $c: $(stat -c %s "$W/canary-$c.txt") bytes, 140000 lines -> $n spill files, reducer saw $lines lines" | tee -a "$W/checks.txt" >&2
        [ "$c" = short ] && [ "$n" -gt 10 ] && CANARY="FAIL ($n spill files for 2.8 MB of short lines with an 8 MiB budget; 1-2 expected)"
        rm -f "$W/canary-$c.strace"
    done
else
    echo "canary: skipped (no strace)" | tee -a "$W/checks.txt" >&2
fi
echo "canary: $CANARY" >> "$W/checks.txt"

# --- timing -------------------------------------------------------------------------------
SORTK="sort -S ${mem_bytes}b -t\$'\\t' -k1,1"
SORTP="sort -S ${mem_bytes}b"
for s in $SETS; do
    f=${FILE[$s]}
    nlines=$(wc -l < "$f")
    args=()
    timed_polymr=1
    if [ "$s" = short ] && [ "$CANARY" != ok ] && [ "$FORCE_SHORT" != 1 ]; then
        timed_polymr=0
        echo "$s: polymr not timed: canary $CANARY" | tee -a "$W/checks.txt" >&2
    fi
    [ $timed_polymr = 1 ] && args+=(-n polymr_reduce "$POLYMR reduce --config $W/wc.yml --sort-memory $MEM -o $W/$s.wc.txt $f")
    args+=(-n sort_k1 "$SORTK $f > /dev/null" -n sort_plain "$SORTP $f > /dev/null")
    say "$s: hyperfine ($nlines lines)"
    for try in $(seq 1 "$TRIES"); do
        wait_quiet
        mkdir -p "$W" "$H"   # bench/out is shared: someone may have removed it meanwhile
        read -r a ai < <(busy_ticks)
        hyperfine --shell=bash -w"$WARMUP" -r"$RUNS" --style basic --export-json "$H/$s.json" \
            --export-markdown "$H/$s.md" "${args[@]}" >&2
        read -r b bi < <(busy_ticks)
        verdict=$("$PY" - "$H/$s.json" "$a" "$b" "$(getconf CLK_TCK)" "$RUNS" "$WARMUP" "$FOREIGN" <<'EOF'
import json, sys
j, a, b, tck, runs, warm, lim = sys.argv[1:]
res = json.load(open(j))["results"]
ours = sum((r["user"] + r["system"]) * (int(runs) + int(warm)) for r in res)
machine = (int(b) - int(a)) / int(tck)
pct = 100 * (machine - ours) / max(ours, 1e-9)
print("%s machine_cpu_s=%.1f accounted_cpu_s=%.1f foreign_pct=%.0f" % ("retry" if pct > float(lim) else "ok", machine, ours, pct))
EOF
)
        echo "   $s try $try: $verdict" >&2
        echo "$s: hyperfine try $try: $verdict" >> "$W/checks.txt"
        case $verdict in ok*) break ;; esac
    done
    if [ $timed_polymr = 1 ]; then
        got=$(tr -d ' ' < "$W/$s.wc.txt")
        [ "$got" = "$nlines" ] && ok=ok || ok=FAIL
        echo "$s: polymr_reduce's reducer saw $got of $nlines lines: $ok" | tee -a "$W/checks.txt" >&2
    fi

    # Peak RSS (one run each under GNU time -v) and the order check: polymr's `exec cat`
    # output must be sorted by key (sort -c) and, as polymr orders by key then by the rest of
    # the line and no key holds a byte below TAB, byte-identical to plain `sort`'s output.
    say "$s: peak RSS and the order check"
    wait_quiet
    peak "$s.sort_k1" bash -c "$SORTK $f > /dev/null"
    peak "$s.sort_plain" bash -c "$SORTP $f > $W/$s.sorted-gnu.txt"
    if [ $timed_polymr = 1 ]; then
        peak "$s.polymr_reduce_cat" "$POLYMR" reduce --config "$W/cat.yml" --sort-memory "$MEM" -o "$W/$s.sorted-polymr.txt" "$f"
        echo "$s: polymr report (status, driver_peak_rss_bytes, duration_ms, records): $(report_rss "$W/$s.sorted-polymr.txt.report.json")" | tee -a "$W/checks.txt" >&2
        if sort -c -t$'\t' -k1,1 "$W/$s.sorted-polymr.txt" 2>>"$W/checks.txt"; then
            c1=ok; else c1=FAIL; fi
        if cmp -s "$W/$s.sorted-polymr.txt" "$W/$s.sorted-gnu.txt"; then c2=ok; else c2=FAIL; fi
        echo "$s: sort -c -t TAB -k1,1 on polymr's output: $c1; identical to LC_ALL=C sort: $c2" | tee -a "$W/checks.txt" >&2
    fi
    [ "$KEEP" = 1 ] || rm -f "$W/$s.sorted-polymr.txt" "$W/$s.sorted-gnu.txt"
done

if [ "$FORCE_SHORT" = 1 ] && [ "$CANARY" != ok ]; then
    say "short: FORCE_SHORT=1, one polymr run with a ${TIMEOUT}s limit, scratch on tmpfs"
    mkdir -p /dev/shm/polymr-bench-short
    t0=$(date +%s.%N)
    rc=0
    TMPDIR=/dev/shm/polymr-bench-short timeout -s KILL "$TIMEOUT" "$POLYMR" reduce --config "$W/wc.yml" \
        --sort-memory "$MEM" -o "$W/short.forced.txt" "${FILE[short]}" 2>/dev/null || rc=$?
    t1=$(date +%s.%N)
    nf=$(find /dev/shm/polymr-bench-short -type f | wc -l)
    rm -rf /dev/shm/polymr-bench-short
    echo "short forced: exit $rc after $(echo "$t1 - $t0" | bc) s; $nf spill/merge files left at the end" | tee -a "$W/checks.txt" >&2
fi

# --- summary ------------------------------------------------------------------------------
"$PY" - "$OUT" "$SETS" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out, sets = sys.argv[1], sys.argv[2].split()
H, W = os.path.join(out, "hyperfine"), os.path.join(out, "work")
print("# shuffle: polymr reduce vs GNU sort\n\n```\n%s\n```\n" % open(os.path.join(out, "env.txt")).read().strip())
def lines(name):
    p = os.path.join(W, name)
    return [l for l in open(p) if l.strip()] if os.path.exists(p) else []
peaks = {}
for l in lines("peaks.txt"):
    n, w, u, s, m = l.split()
    peaks[n] = (float(w), float(u), float(s), int(m))
for s in sets:
    p = os.path.join(H, s + ".json")
    if not os.path.exists(p):
        continue
    print("\n| set | command | median s | mean ± sd s | user s | sys s | peak RSS MiB (GNU time) |")
    print("|---|---|---|---|---|---|---|")
    res = {r["command"]: r for r in json.load(open(p))["results"]}
    for c, r in res.items():
        pk = peaks.get("%s.%s" % (s, "polymr_reduce_cat" if c == "polymr_reduce" else c))
        print("| %s | `%s` | %.2f | %.2f ± %.2f | %.2f | %.2f | %s |" % (
            s, c, r["median"], r["mean"], r["stddev"] or 0.0, r["user"], r["system"],
            "%.0f" % (pk[3] / 1024) if pk else "-"))
    if "polymr_reduce" in res:
        p = res["polymr_reduce"]["median"]
        for c in ("sort_k1", "sort_plain"):
            print("\n%s: %s / polymr_reduce = **%.2f** (target >= 1.00: %s)" % (
                s, c, res[c]["median"] / p, "met" if res[c]["median"] >= p else "NOT met"), end="")
        print()
    else:
        print("\n%s: polymr_reduce not timed (see the checks)" % s)
print("\nChecks:\n")
for l in lines("checks.txt"):
    print("- " + l.rstrip())
EOF
