"""polymr on Apache Spark: the driver program that `polymr spark-submit` hands to spark-submit.

Spark schedules, retries and shuffles; polymr does each task's work. One RDD element per map
task runs `polymr task ... map-NNNNN` on an executor, in a work root of its own, and yields
its sorted runs as byte chunks keyed by reduce partition (polymr's partitioner already chose
the partition, so Spark only routes by that number). Each reduce partition writes its chunks
back into run files, names them in a runs manifest, and runs `polymr task ... reduce-NNNNN
--runs-from MANIFEST`; its output comes back to the driver in chunks. Records never cross
into Python one by one, so keys may be any bytes.

Every attempt's report reaches the driver over a small HTTP endpoint it serves (Spark drops
what a failed task returns). The driver then lays the successful tasks' reports and outputs,
and the failed attempts' reports, out under the plan's work root by the names of polymr's
ShuffleLayout (src/plan/layout.rs), and `polymr finish` publishes the result and writes the
job report exactly as it does for any other executor.

Standard library and pyspark only.
"""

import argparse
import ctypes
import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

# Chunks of runs and outputs crossing Spark: every chunk but a file's last is exactly this
# long, so a chunk's offset is its number times CHUNK, whatever order chunks arrive in.
CHUNK = 8 << 20
STDERR_TAIL = 8 << 10
# What a task's polymr needs from the submitter's environment (credentials are decrypted by
# polymr on the executor). Sent inside the task closure, never as Spark configuration, so
# it is in no log, event log or UI.
FORWARDED_ENV = (
    "CREDENTIALS",
    "POLYMR_PRIVATE_KEY",
    "POLYMR_BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "RUST_LOG",
)

# ShuffleLayout's names (src/plan/layout.rs): the driver lays tasks out as polymr would.
SUCCESS = "_SUCCESS"
TASK_REPORT = "report.json"
OUTCOME = "outcome.json"
MAP_OUTPUT = "output"


def map_id(i):
    return "map-%05d" % i


def reduce_id(p):
    return "reduce-%05d" % p


def reduce_output(work, p):
    return os.path.join(work, "reduce", "part-%05d" % p)


def failed_attempt_report(work, task, attempt):
    return os.path.join(work, "attempts", "%s.attempt-%d.report.json" % (task, attempt))


def parse_args(argv):
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--plan", required=True, help="the plan, with the driver's work root")
    a.add_argument("--polymr", required=True, help="the polymr that runs `finish` here")
    a.add_argument("--bundle", default="polymr", help="the bundle's name on executors")
    a.add_argument("--job-dir", default="job", help="the job's directory inside the bundle")
    a.add_argument("--executor-polymr", help="polymr in the executors' image (--no-bundle)")
    a.add_argument("--task-args", default="[]", help="JSON list: options of every `polymr task`")
    a.add_argument("--finish-args", default="[]", help="JSON list: options of `polymr finish`")
    a.add_argument("--launched-at", type=float,
                   help="when polymr started spark-submit (seconds since the epoch)")
    return a.parse_args(argv)


class Job:
    """What every task needs, pickled into its closure: small, and no Spark objects."""

    def __init__(self, args, plan, report_url, token):
        self.bundle = args.bundle
        self.job_dir = args.job_dir
        self.executor_polymr = args.executor_polymr
        self.task_args = json.loads(args.task_args)
        self.reducers = plan["reducers"]
        self.report_url = report_url
        self.token = token
        self.env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


# ---------------------------------------------------------------- executor side


def bundle_dir(job):
    """Where spark-submit's `--archives bundle.tar.gz#polymr` was unpacked for this task."""
    from pyspark import SparkFiles

    for d in (os.path.join(SparkFiles.getRootDirectory(), job.bundle), job.bundle):
        if os.path.isfile(os.path.join(d, "plan.json")):
            return os.path.abspath(d)
    raise RuntimeError("polymr: the bundle `%s` is not unpacked on this executor" % job.bundle)


def local_root():
    """A directory on the executor's local disks (YARN and Spark name them)."""
    for var in ("SPARK_LOCAL_DIRS", "LOCAL_DIRS"):
        for d in os.environ.get(var, "").split(","):
            if d and os.path.isdir(d):
                return d
    return None


def die_with_parent():
    # polymr must not outlive the Python worker Spark kills to stop a task.
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def executor_polymr(job):
    bundle = bundle_dir(job)
    polymr = job.executor_polymr or os.path.join(bundle, "polymr")
    return bundle, shutil.which(polymr) or polymr


def check_executor(job):
    """Before the job: this executor has the bundle and can run its polymr (a binary built for
    another system fails here, once, with the reason, not in every task). It also starts the
    executor's Python worker, which Spark then reuses for the job's tasks."""

    def run(_):
        import socket

        host = socket.gethostname()
        try:
            _, polymr = executor_polymr(job)
            out = subprocess.run([polymr, "--version"], stdin=subprocess.DEVNULL,
                                 capture_output=True, timeout=60)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            raise RuntimeError("polymr cannot run on executor %s: %s" % (host, e))
        if out.returncode != 0:
            raise RuntimeError("polymr cannot run on executor %s: `%s --version` exited with %d: %s"
                               % (host, polymr, out.returncode,
                                  out.stderr.decode("utf-8", "replace")[-2000:]))
        yield out.stdout.decode("utf-8", "replace").strip()

    return run


def run_polymr(job, root, task, attempt, extra):
    """Runs `polymr task`; returns (exit code, stderr tail). stderr goes to a file, so a
    chatty child costs no memory, and its tail goes to the executor's log."""
    bundle, polymr = executor_polymr(job)
    cmd = [
        polymr,
        "task",
        "--plan",
        os.path.join(bundle, "plan.json"),
        "--task",
        task,
        "--attempt",
        str(attempt),
        "--work",
        os.path.join(root, "work"),
        "--job-dir",
        os.path.join(bundle, job.job_dir),
    ] + extra + job.task_args
    env = dict(os.environ)
    env.update(job.env)
    for k in ("POLYMR_PYTHON", "POLYMR_NODE"):
        # `./env/bin/python` from `--archives env.tar.gz#env` is relative to the worker's
        # directory; polymr runs in the attempt's.
        v = env.get(k, "")
        if "/" in v and not os.path.isabs(v):
            env[k] = os.path.abspath(v)
    err_path = os.path.join(root, "stderr")
    with open(err_path, "wb") as err:
        p = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env,
            cwd=root, preexec_fn=die_with_parent,
        )
        try:
            code = p.wait()
        except BaseException:
            p.kill()
            p.wait()
            raise
    with open(err_path, "rb") as f:
        f.seek(max(0, os.path.getsize(err_path) - STDERR_TAIL))
        tail = f.read().decode("utf-8", "replace")
    sys.stderr.write(tail)
    return code, tail


def post_report(job, body):
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        job.report_url, data=data, method="POST",
        headers={"Content-Type": "application/json", "X-Polymr-Token": job.token},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def read_json(path):
    with open(path, "rb") as f:
        return json.load(f)


def attempt(job, task, extra, on_success):
    """One attempt of `task` in its own work root; on success `on_success(work)` yields what
    the task hands on. A failure sends the attempt's report and fails the Spark task with
    polymr's error text, so Spark retries it."""
    from pyspark import TaskContext

    tc = TaskContext.get()
    number = tc.attemptNumber() if tc else 0
    unique = tc.taskAttemptId() if tc else 0
    root = tempfile.mkdtemp(prefix="polymr-%s-%d-" % (task, unique), dir=local_root())
    try:
        code, tail = run_polymr(job, root, task, number, extra(root))
        work = os.path.join(root, "work")
        if code != 0:
            path = failed_attempt_report(work, task, number)
            report = read_json(path) if os.path.isfile(path) else None
            post_report(job, {"task": task, "attempt": number, "succeeded": False,
                              "report": report})
            lines = [l for l in tail.splitlines() if l.startswith("polymr: error")]
            raise RuntimeError(
                "polymr task %s attempt %d exited with %d: %s"
                % (task, number, code, "\n".join(lines) or tail[-2000:])
            )
        for item in on_success(work):
            yield item
    finally:
        shutil.rmtree(root, ignore_errors=True)


def chunks(path):
    with open(path, "rb") as f:
        n = 0
        while True:
            b = f.read(CHUNK)
            if not b and n > 0:
                return
            yield n, b
            n += 1
            if len(b) < CHUNK:
                return


def map_partition(job):
    def run(indices):
        for m in indices:
            task = map_id(m)

            def done(work):
                d = os.path.join(work, task)
                report = read_json(os.path.join(d, TASK_REPORT))
                outcome = read_json(os.path.join(d, OUTCOME))
                if job.reducers == 0:
                    for n, b in chunks(os.path.join(d, MAP_OUTPUT)):
                        yield (m, n, b)
                else:
                    for p, runs in enumerate(outcome["runs"]):
                        for seq, name in enumerate(runs):
                            for n, b in chunks(os.path.join(d, name)):
                                yield (p, (m, seq, n, b))
                # Sent last: a task that fails while handing its runs on is not reported
                # as a success.
                post_report(job, {"task": task, "attempt": None, "succeeded": True,
                                  "report": report, "outcome": outcome})

            for item in attempt(job, task, lambda root: [], done):
                yield item

    return run


def reduce_partition(job):
    def run(p, items):
        task = reduce_id(p)
        runs = {}

        def receive(root):
            d = os.path.join(root, "runs")
            os.makedirs(d)
            for _, (m, seq, n, b) in items:
                name = "m%05d-s%05d" % (m, seq)
                path = os.path.join(d, name)
                runs[(m, seq)] = name
                with open(path, "r+b" if os.path.exists(path) else "wb") as f:
                    f.seek(n * CHUNK)
                    f.write(b)
            manifest = os.path.join(d, "manifest.json")
            with open(manifest, "w") as f:
                # Merge order: map task, then spill, as the map outcomes list them.
                json.dump({"partition": p, "runs": [runs[k] for k in sorted(runs)]}, f)
            return ["--runs-from", manifest]

        def done(work):
            out = reduce_output(work, p)
            report = read_json(out + ".report.json")
            for n, b in chunks(out):
                yield (p, n, b)
            post_report(job, {"task": task, "attempt": None, "succeeded": True,
                              "report": report})

        return attempt(job, task, receive, done)

    return run


# ---------------------------------------------------------------- driver side


class Reports:
    """Every attempt's report, as the executors send them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.succeeded = {}  # task -> body (the first success; a later one is a duplicate)
        self.failed = []  # bodies, in arrival order

    def add(self, body):
        with self.lock:
            if body.get("succeeded"):
                self.succeeded.setdefault(body["task"], body)
            else:
                self.failed.append(body)


def serve_reports(host, reports, token):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            if self.headers.get("X-Polymr-Token") != token:
                self.send_error(403)
                return
            n = int(self.headers.get("Content-Length", "0"))
            try:
                reports.add(json.loads(self.rfile.read(n)))
            except (ValueError, KeyError) as e:
                self.send_error(400, str(e))
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    # A short poll: shutdown() waits for it, at the end of every job.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)


def lay_out(work, reports):
    """The reports under the plan's work root, by ShuffleLayout's names, for `finish`."""
    for task, body in reports.succeeded.items():
        if task.startswith("map-"):
            d = os.path.join(work, task)
            write_json(os.path.join(d, TASK_REPORT), body["report"])
            write_json(os.path.join(d, OUTCOME), body["outcome"])
            open(os.path.join(d, SUCCESS), "wb").close()
        else:
            p = int(task.split("-")[1])
            write_json(reduce_output(work, p) + ".report.json", body["report"])
    for body in reports.failed:
        if body.get("report") is None:
            continue
        n = body["attempt"]
        # A resubmitted stage numbers its attempts from 0 again: keep both.
        while os.path.exists(failed_attempt_report(work, body["task"], n)):
            n += 1000
        write_json(failed_attempt_report(work, body["task"], n), body["report"])


def collect(rdd, path_of):
    """Writes what the tasks hand back, `(part, chunk number, bytes)`, to `path_of(part)`.
    The tasks run first, all at once, each keeping what it hands back on its executor's disk;
    then the driver fetches it one partition at a time (toLocalIterator alone would also run
    the tasks one at a time), so it holds one partition at most."""
    from pyspark import StorageLevel

    parallel = rdd.getNumPartitions() > 1
    if parallel:
        rdd = rdd.persist(StorageLevel.DISK_ONLY)
    files = {}
    try:
        if parallel:
            # Counted by the JVM: the blocks are not read back through Python.
            rdd._jrdd.count()
        for part, n, b in rdd.toLocalIterator():
            f = files.get(part)
            if f is None:
                path = path_of(part)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                f = files[part] = open(path, "wb")
            f.seek(n * CHUNK)
            f.write(b)
    finally:
        for f in files.values():
            f.close()
        if parallel:
            rdd.unpersist()
    return files.keys()


def spark_error(e):
    """polymr's words from a failed Spark job, without Java's stack."""
    text = str(e)
    lines = [l.strip() for l in text.splitlines()
             if "polymr task" in l or "polymr: error" in l or "polymr cannot run" in l]
    seen = []
    for l in lines:
        if l not in seen:
            seen.append(l)
    return "\n".join(seen[-6:]) or text.splitlines()[0] if text else repr(e)


def run_job(sc, job, plan, work):
    maps = sc.parallelize(range(len(plan["map_tasks"])), max(1, len(plan["map_tasks"])))
    if job.reducers == 0:
        made = collect(
            maps.mapPartitions(map_partition(job)),
            lambda m: os.path.join(work, map_id(m), MAP_OUTPUT),
        )
    else:
        shuffled = maps.mapPartitions(map_partition(job)).partitionBy(
            job.reducers, lambda p: p
        )
        made = collect(
            shuffled.mapPartitionsWithIndex(reduce_partition(job)),
            lambda p: reduce_output(work, p),
        )
    return set(made)


def main(argv):
    args = parse_args(argv)
    from pyspark import SparkConf, SparkContext

    with open(args.plan, "rb") as f:
        plan = json.load(f)
    work = plan["work"]
    started = time.time()
    sc = SparkContext(conf=SparkConf())
    # Spark's own start-up: from polymr starting spark-submit (its JVM, then this program)
    # to the SparkContext ready.
    ready = time.time()
    host = sc.getConf().get("spark.driver.host", "127.0.0.1")
    token = secrets.token_hex(16)
    reports = Reports()
    server = serve_reports(host, reports, token)
    url = "http://%s:%d/report" % (host, server.server_address[1])
    job = Job(args, plan, url, token)
    failed = None
    checked = None
    try:
        try:
            n = max(1, min(sc.defaultParallelism, len(plan["map_tasks"])))
            sc.parallelize(range(n), n).mapPartitions(check_executor(job)).collect()
            checked = time.time()
            run_job(sc, job, plan, work)
        except Exception as e:  # py4j's error of a failed Spark job
            failed = spark_error(e)
            print("polymr: error: the Spark job failed: %s" % failed, file=sys.stderr)
        ran = time.time()
        server.shutdown()
        lay_out(work, reports)
        if failed is not None:
            withdraw_outputs(work, plan)
        finish = [args.polymr, "finish", "--plan", args.plan] + json.loads(args.finish_args)
        code = subprocess.call(finish, stdin=subprocess.DEVNULL)
        finished = time.time()
    finally:
        # The JVM's SparkContext only: PySpark's own stop() waits up to a second for its
        # accumulator server's poll, and this program ends here anyway.
        sc._jsc.stop()
    # Where the time went, for whoever wonders why a small job took this long on Spark.
    print("polymr: Spark timings: start-up %.2f s, executors %s, job %.2f s, finish %.2f s, "
          "stop %.2f s" % (ready - (args.launched_at or started),
                           "%.2f s" % (checked - ready) if checked else "-",
                           ran - (checked or ready), finished - ran, time.time() - finished),
          file=sys.stderr)
    return code if failed is None else (code or 1)


def withdraw_outputs(work, plan):
    """After a failed Spark job, no output it left is a result: `finish` sees those tasks as
    unfinished (their reports stay, for the job report) and publishes nothing."""
    for p in range(plan["reducers"]):
        try:
            os.remove(reduce_output(work, p))
        except FileNotFoundError:
            pass
    if plan["reducers"] == 0:
        for m in range(len(plan["map_tasks"])):
            try:
                os.remove(os.path.join(work, map_id(m), SUCCESS))
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
