#!/usr/bin/env bash
# polymr on Spark against `polymr run` and against the PySpark job users write today
# (../shared/bench/spark_os_count.py), on the generator's MEDIUM set (count pings per OS,
# the original-API Python mapper run by /usr/bin/python3 on every side), at the same
# parallelism; then the shuffle-heavy case: ~1 GB of key<TAB>value lines through a cat
# mapper and a summing reducer, with the driver's and executors' memory fixed.
#
#   bash bench/spark.sh            (MEDIUM: a few minutes; SHUFFLE=1 adds the 1 GB case)
#
# Environment (defaults in brackets):
#   SHARED   the peers' bench folder [/work/shared/bench]
#   DATA     where data sets go [/tmp/bench-data]
#   VENV     a virtual environment with pyspark [target/test-venv]
#   P        parallelism: run --mappers P, Spark local[P] [2]
#   RUNS     runs of each side [3]
#   SHUFFLE  1 runs the shuffle-heavy case [0];  BYTES  its size [1000000000]
#   MEM      executor and driver memory of the shuffle case [1g]
#   OUT      where results go [bench/out/spark]
#   INPUT    another .gz tree laid out as the generator does [DATA/medium/gz]
#
# The driver program prints where the time went ("polymr: Spark timings: start-up X s,
# executors Y s, job …"): start-up is Spark's own, from polymr starting spark-submit (its
# JVMs, the Python driver, the SparkContext) to the SparkContext ready; executors is the
# first Spark job, polymr's check that every executor can run its polymr, which also boots
# the executors' Python workers. The figure compared with `run` is wall time minus start-up;
# wall time minus both is printed beside it.
set -euo pipefail

B="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$B")"
SHARED="${SHARED:-/work/shared/bench}"
DATA="${DATA:-/tmp/bench-data}"
VENV="${VENV:-$ROOT/target/test-venv}"
P="${P:-2}"
RUNS="${RUNS:-3}"
SHUFFLE="${SHUFFLE:-0}"
BYTES="${BYTES:-1000000000}"
MEM="${MEM:-1g}"
OUT="${OUT:-$ROOT/bench/out/spark}"
POLYMR="$ROOT/target/release/polymr"
MEDIUM="$DATA/medium"
export SPARK_LOCAL_IP=127.0.0.1 POLYMR_PYTHON=/usr/bin/python3
export PYSPARK_PYTHON="$VENV/bin/python"
mkdir -p "$OUT"

[ -x "$POLYMR" ] || (cd "$ROOT" && cargo build --release)
[ -x "$VENV/bin/spark-submit" ] || { echo "no pyspark in $VENV: make test-deps" >&2; exit 1; }
if [ ! -f "$MEDIUM/manifest.json" ]; then
  /usr/bin/python3 "$SHARED/gen_telemetry.py" --files 40 --lines 1600 \
    --compression xz,gz,zst,none --out "$MEDIUM"
fi
# The .gz tree: the one input every side reads (Spark's textFile reads gzip natively).
INPUT="${INPUT:-$MEDIUM/gz}"
JOB="$OUT/job"
mkdir -p "$JOB/custom-mappers" "$JOB/custom-reducers"
cp "$ROOT/custom-mappers/os_count.py" "$JOB/custom-mappers/"
cp "$ROOT/custom-reducers/reducer.py" "$JOB/custom-reducers/"
printf 'language: python\nscript: os_count.py\n' > "$JOB/analysis-tools.yml"
SPARK_CONF=(--master "local[$P]" --spark-submit "$VENV/bin/spark-submit"
  --conf spark.ui.enabled=false --conf spark.driver.host=127.0.0.1)

secs() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: > "$OUT/run.s"; : > "$OUT/spark.s"; : > "$OUT/spark_startup.s"; : > "$OUT/pyspark.s"
: > "$OUT/spark_executors.s"; : > "$OUT/spark_warm.s"
for i in $(seq "$RUNS"); do
  t0=$(secs)
  "$POLYMR" run --config "$JOB/analysis-tools.yml" --mappers "$P" -o "$OUT/run.txt" "$INPUT" 2>/dev/null
  t1=$(secs); echo "$t1 - $t0" | bc >> "$OUT/run.s"

  t0=$(secs)
  "$POLYMR" spark-submit "${SPARK_CONF[@]}" -- --config "$JOB/analysis-tools.yml" \
    --mappers "$P" -o "$OUT/spark.txt" "$INPUT" 2> "$OUT/spark.err"
  t1=$(secs)
  up=$(sed -n 's/^polymr: Spark timings: start-up \([0-9.]*\) s.*/\1/p' "$OUT/spark.err")
  ex=$(sed -n 's/^polymr: Spark timings: .*, executors \([0-9.]*\) s.*/\1/p' "$OUT/spark.err")
  echo "$up" >> "$OUT/spark_startup.s"
  echo "$ex" >> "$OUT/spark_executors.s"
  echo "$t1 - $t0 - $up" | bc >> "$OUT/spark.s"
  echo "$t1 - $t0 - $up - $ex" | bc >> "$OUT/spark_warm.s"
  cmp "$OUT/run.txt" "$OUT/spark.txt"

  # The PySpark job, its steady-state job time (its own SparkContext start excluded).
  "$VENV/bin/python" "$SHARED/spark_os_count.py" --master "local[$P]" \
    "$INPUT/*/*/*/*/*.gz" > "$OUT/pyspark.txt" 2> "$OUT/pyspark.err"
  grep -o 'job[^=]*_s=[0-9.]*' "$OUT/pyspark.err" | head -1 | sed 's/.*=//' >> "$OUT/pyspark.s"
done
tr ' ' '\t' < "$OUT/run.txt" | LC_ALL=C sort | cmp - <(LC_ALL=C sort "$OUT/pyspark.txt")

r=$(median < "$OUT/run.s"); s=$(median < "$OUT/spark.s"); u=$(median < "$OUT/spark_startup.s")
e=$(median < "$OUT/spark_executors.s"); w=$(median < "$OUT/spark_warm.s")
py=$(median < "$OUT/pyspark.s")
{
  echo "$INPUT, parallelism $P, medians of $RUNS"
  echo "polymr run                              ${r} s"
  echo "polymr spark-submit, minus start-up     ${s} s  (start-up ${u} s)  ratio $(echo "scale=2; $s / $r" | bc)"
  echo "  ... and minus the executors' check     ${w} s  (check ${e} s)  ratio $(echo "scale=2; $w / $r" | bc)"
  echo "PySpark spark_os_count.py, job only     ${py} s  ratio to polymr on Spark $(echo "scale=2; $py / $s" | bc)"
} | tee "$OUT/summary.txt"

if [ "$SHUFFLE" = 1 ]; then
  KV="$DATA/kv-spark-$BYTES.txt"
  if [ ! -f "$KV" ]; then
    mawk -v bytes="$BYTES" 'BEGIN { srand(7); n = 0
      while (n < bytes) { k = int(rand() * 3000000); l = sprintf("%08x-%04x-key\t%d", k, k % 65536, int(rand() * 1000))
        print l; n += length(l) + 1 } }' > "$KV"
  fi
  mkdir -p "$OUT/shuffle"
  printf '#!/bin/sh\nexec cat\n' > "$OUT/shuffle/cat.sh"; chmod +x "$OUT/shuffle/cat.sh"
  cp "$ROOT/custom-reducers/sum.sh" "$OUT/shuffle/sum.sh"
  printf 'mapper: {language: binary, script: cat.sh}\nreducer: {language: binary, script: sum.sh}\nrecord_format: lines\n' \
    > "$OUT/shuffle/c.yml"
  t0=$(secs)
  "$POLYMR" spark-submit "${SPARK_CONF[@]}" --driver-memory "$MEM" --conf "spark.executor.memory=$MEM" \
    -- --config "$OUT/shuffle/c.yml" --mappers "$P" --reducers "$P" --max-batch-size 256MiB \
    --sort-memory 256MiB -o "$OUT/shuffle/result.txt" "$KV" 2> "$OUT/shuffle/spark.err"
  t1=$(secs)
  grep -E '^polymr' "$OUT/shuffle/spark.err" | tail -3
  echo "shuffle-heavy $(du -h "$KV" | cut -f1), memory $MEM: $(echo "$t1 - $t0" | bc) s, $(wc -l < "$OUT/shuffle/result.txt") keys" \
    | tee -a "$OUT/summary.txt"
fi
