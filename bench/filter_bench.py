"""Filter.json planning against boto3's own listing, on the same moto S3 server.

Fills a bucket with N keys (100,000 by default) in telemetry's layout under a prefix (moto's
server, the one the tests use, run in a child process that puts the keys straight into its
backend: 100,000 PUTs over HTTP take half an hour on this machine), then,
alternating, ROUNDS times:
  boto3   the list_objects_v2 paginator over the prefix (client made before the clock starts);
  polymr  `polymr plan --dry-run --filter all.json s3://bucket/prefix/` (the whole process:
          start, config, listing, batching into map tasks, the dry-run summary);
  plain   `polymr plan --dry-run s3://bucket/prefix/` (the same, without a filter).
Then a filter that selects 1% of the keys (by names, and by a range, so one level is listed),
with moto's request recorder on, to count the list requests the server served and the keys
polymr saw. Prints a JSON summary on stdout; progress on stderr.

Run by bench/filter.sh, which says where moto_server and polymr are.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

POLYMR = os.environ["POLYMR"]
N = int(os.environ.get("KEYS", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
# 0 skips `polymr plan` without a filter (moto serves a 100,000-key page in seconds).
PLAIN = os.environ.get("PLAIN", "1") == "1"
BUCKET = "telemetry-published-v1"
PREFIX = "bench/"

REASONS = ["saved_session", "idle_daily"]
APPS = ["Firefox", "Fennec"]
CHANNELS = ["nightly", "aurora", "beta", "release", "esr"]
VERSIONS = [f"{v}.0" for v in range(27, 37)]
DIRS = [f"{r}/{a}/{c}/{v}" for r in REASONS for a in APPS for c in CHANNELS for v in VERSIONS]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def keys():
    per_dir = N // len(DIRS)
    for d in DIRS:
        for i in range(per_dir):
            day = 1 + i % 28
            yield f"{PREFIX}{d}/201401{day:02d}{i:06d}.201402{day:02d}.v2.log.{i:032x}.lzma"


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
    )



def boto3_listing(s3):
    start = time.perf_counter()
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        count += len(page.get("Contents", []))
    return time.perf_counter() - start, count


def polymr(args, env):
    start = time.perf_counter()
    out = subprocess.run([POLYMR, "plan", "--dry-run", *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"polymr {args} failed ({out.returncode}): {out.stderr}")
    files = int(out.stdout.split(" files,", 1)[0])
    listed = re.search(r"list requests: (\d+), entries seen: (\d+)", out.stdout)
    return took, files, (int(listed.group(1)), int(listed.group(2))) if listed else None


def write_filter(path, channel, version):
    dims = [("reason", ["saved-session"]), ("appName", "Firefox"), ("appUpdateChannel", channel),
            ("appVersion", version), ("appBuildID", "*"), ("submission_date", "*")]
    with open(path, "w") as f:
        json.dump({"version": 1, "dimensions": [{"field_name": n, "allowed_values": a} for n, a in dims]}, f)


def recorded_lists(endpoint, action):
    """The list requests moto served while `action` ran (moto's request recorder)."""
    post = lambda what: urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/recorder/{what}", method="POST"))
    post("reset-recording")
    post("start-recording")
    try:
        result = action()
    finally:
        post("stop-recording")
    text = urllib.request.urlopen(f"{endpoint}/moto-api/recorder/download-recording").read().decode()
    lists = [json.loads(l)["url"] for l in text.splitlines() if "list-type=2" in l]
    return result, lists


def main():
    work = tempfile.mkdtemp(prefix="polymr-filter-bench-")
    port = int(os.environ.get("PORT", "0")) or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log(f"filling s3://{BUCKET}/{PREFIX} with {N} keys on {endpoint}")
    server = subprocess.Popen([sys.executable, __file__, "serve", str(port)], stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE, env={**os.environ, "MOTO_RECORDER_FILEPATH": os.path.join(work, "rec")})
    try:
        if server.stdout.readline().strip() != b"ready":
            raise SystemExit("the moto server did not start")
        s3 = client(endpoint)
        with open(os.path.join(work, "analysis-tools.yml"), "w") as f:
            f.write("mapper:\n  language: binary\n  script: /bin/cat\n")
        with open(os.path.join(work, "all.json"), "w") as f:
            json.dump({"version": 1, "dimensions": [{"field_name": "reason", "allowed_values": "*"}]}, f)
        write_filter(os.path.join(work, "named.json"), ["nightly"], ["30.0", "31.0"])
        write_filter(os.path.join(work, "range.json"), ["nightly"], {"min": "30.0", "max": "31.0"})
        env = {"PATH": os.environ["PATH"], "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "HOME": work}
        common = ["--config", os.path.join(work, "analysis-tools.yml"), "--mappers", "4"]
        root = f"s3://{BUCKET}/{PREFIX}"
        selective = {}
        for name in ["named", "range"]:
            (took, files, listed), lists = recorded_lists(
                endpoint, lambda: polymr([*common, "--filter", os.path.join(work, f"{name}.json"), root], env))
            selective[name] = {"seconds": round(took, 3), "files": files, "list_requests_polymr": listed[0],
                               "entries_seen": listed[1], "list_requests_server": len(lists),
                               "entries_seen_fraction": listed[1] / N, "listed_prefixes": lists}
            log(f"  {name}: {files} files, {listed[1]} entries seen in {len(lists)} list requests ({took:.2f} s)")
        times = {"boto3": [], "polymr_filter": [], "polymr_plain": []}
        for r in range(ROUNDS):
            took, count = boto3_listing(s3)
            assert count == N, count
            times["boto3"].append(took)
            took, files, _ = polymr([*common, "--filter", os.path.join(work, "all.json"), root], env)
            assert files == N, files
            times["polymr_filter"].append(took)
            if PLAIN:
                took, files, _ = polymr([*common, root], env)
                assert files == N, files
                times["polymr_plain"].append(took)
            log(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items() if v))
        med = {k: statistics.median(v) for k, v in times.items() if v}
        print(json.dumps({
            "keys": N, "rounds": ROUNDS,
            "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
            "median": {k: round(v, 3) for k, v in med.items()},
            "ratio_filter_to_boto3": round(med["polymr_filter"] / med["boto3"], 3),
            "ratio_plain_to_boto3": round(med["polymr_plain"] / med["boto3"], 3) if PLAIN else None,
            "selective": selective,
        }, indent=2))
    finally:
        server.stdin.close()
        server.wait()


def serve(port):
    """moto's threaded server (what `moto_server` runs), its bucket filled in-process."""
    from moto.server import ThreadedMotoServer
    from moto.s3.models import s3_backends

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # Before filling: moto's data.json lists every key, slowly once there are 100,000.
    wait_for(f"http://127.0.0.1:{port}")
    backend = s3_backends["123456789012"]["aws"]
    backend.create_bucket(BUCKET, "us-east-1")
    start = time.time()
    for n, k in enumerate(keys()):
        backend.put_object(BUCKET, k, b"x" * 10)
    log(f"  put {n + 1} keys in {time.time() - start:.0f} s")
    print("ready", flush=True)
    sys.stdin.read()
    server.stop()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(endpoint):
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/data.json")
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"moto_server did not start on {endpoint}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        main()
