#!/usr/bin/env python3
"""Generate a small, deterministic sample of Telemetry-v2-like ping logs.

Standard library only. Each line is

    <36-char uuid> TAB <compact JSON> NEWLINE

and the JSON looks like a 2014 Firefox "saved-session" ping: an "info" object
(reason, OS, appName, appVersion, appUpdateChannel, appBuildID, ...), some
"simpleMeasurements" and a handful of "histograms".

Files are laid out the way telemetry-published-v1 keys were:

    OUT/<reason>/<appName>/<channel>/<version>/<buildid>.<submissiondate>.v2.log.<n>.<ext>

where <ext> follows --compression, cycled over the files (xz, gz, bz2, zst
through the `zstd` command, or none).

Besides the data, OUT gets:
  expected_os_counts.tsv  sorted "OS<TAB>count" over the *valid* records, i.e.
                          the right answer of the "count pings per OS" job;
  manifest.json           parameters, totals, and per file: path, compression,
                          valid/invalid record counts, sizes, sha256 of the
                          uncompressed bytes.

--invalid N puts N lines whose JSON does not parse into one file (--invalid-file,
default the second file); they never contain the text "OS":", so naive native
mappers skip them too, and they are not in the expected counts.

Everything is derived from --seed and the file number; xz/gzip/bzip2 output is
byte-for-byte reproducible (gzip with a fixed header: no name, mtime 0), so running the
generator twice gives identical trees.

The bundled sample (examples/data, `make sample`) is

    python3 examples/gen_sample.py --out examples/data --invalid 3 --clean
"""
import argparse
import bz2
import hashlib
import json
import lzma
import os
import random
import shutil
import subprocess
import struct
import sys
import zlib

# (value, weight) pairs
REASONS = [("saved-session", 75), ("idle-daily", 25)]
APPS = [("Firefox", 75), ("Fennec", 18), ("Thunderbird", 7)]
CHANNELS = [("release", 55), ("beta", 20), ("aurora", 12), ("nightly", 13)]
VERSIONS = {"release": ["29.0", "29.0.1", "30.0"], "beta": ["31.0"],
            "aurora": ["32.0a2"], "nightly": ["33.0a1"]}
APP_IDS = {
    "Firefox": "{ec8030f7-c20a-464f-9b0e-13a3a9e97384}",
    "Fennec": "{aa3c5121-dab2-40e2-81ca-7ea25febc110}",
    "Thunderbird": "{3550f703-e582-4d05-9a08-453d09bdfdc6}",
}
# OS mix per application: (OS, weight, OS versions, arch)
OSES = {
    "Firefox": [("WINNT", 80, ["5.1", "6.1", "6.2", "6.3"], "x86"),
                ("Darwin", 10, ["12.5.0", "13.2.0"], "x86-64"),
                ("Linux", 9, ["3.2.0-4-amd64", "3.13.0-24-generic"], "x86-64"),
                ("FreeBSD", 1, ["10.0-RELEASE"], "x86-64")],
    "Fennec": [("Android", 96, ["16", "17", "18", "19"], "armv7"),
               ("Linux", 4, ["3.4.0"], "armv7")],
    "Thunderbird": [("WINNT", 72, ["6.1", "6.2"], "x86"),
                    ("Darwin", 14, ["13.2.0"], "x86-64"),
                    ("Linux", 14, ["3.2.0-4-amd64"], "x86-64")],
}
LOCALES = ["en-US", "de", "fr", "es-ES", "ru", "pl", "ja", "pt-BR"]
ADDONS = ["{d10d0bf8-f5b5-c8b4-a8b2-2b9879e08c5d}", "firefox@ghostery.com",
          "uBlock0@raymondhill.net", "jid1-MnnxcxisBPnSXQ@jetpack"]
# name, histogram_type (0 exponential, 1 linear, 2 boolean), low, high, bucket_count
HISTOGRAMS = [
    ("CYCLE_COLLECTOR", 0, 1, 10000, 50), ("GC_MS", 0, 1, 10000, 50),
    ("MEMORY_RESIDENT", 0, 32768, 16777216, 50), ("FX_TAB_SWITCH_TOTAL_MS", 0, 1, 1000, 20),
    ("FX_PAGE_LOAD_MS", 0, 1, 10000, 50), ("HTTP_PAGE_DNS_ISSUE_TIME", 0, 1, 30000, 50),
    ("PLACES_PAGES_COUNT", 0, 1000, 150000, 20), ("SSL_HANDSHAKE_VERSION", 1, 1, 16, 17),
    ("TELEMETRY_PING", 0, 1, 3000, 10), ("SHUTDOWN_OK", 2, 0, 1, 3),
    ("IMAGE_DECODE_LATENCY", 0, 50, 5000000, 100), ("STARTUP_MEASUREMENT_ERRORS", 1, 1, 12, 13),
]
# Lines that must not parse as JSON (and never contain "OS":").
INVALID_BODIES = [
    '{"ver":2,"info":{"reason":"%(reason)s","appName":"%(app)s"',   # truncated upload
    '{"ver":2,"info":{"reason":"%(reason)s",},"histograms":{}}',    # trailing comma
    "<html><body>502 Bad Gateway</body></html>",                     # proxy error page
    '{"ver":2,"info":{"reason":"%(reason)s"},"simpleMeasurements":{"uptime":NaN,}}',
]
EXTENSIONS = {"xz": ".xz", "gz": ".gz", "bz2": ".bz2", "zst": ".zst", "none": ""}


def pick(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def make_uuid(rng):
    h = "%032x" % rng.getrandbits(128)
    return "%s-%s-4%s-%s-%s" % (h[0:8], h[8:12], h[13:16], h[16:20], h[20:32])


def bounds(htype, low, high, n):
    if htype == 2:
        return [0, 1, 2]
    if htype == 1:
        step = max(1, (high - low) // max(1, n - 2))
        return [0] + [low + i * step for i in range(n - 1)]
    out, v = [0, low], float(low)
    ratio = (high / low) ** (1.0 / max(1, n - 2))
    while len(out) < n:
        v *= ratio
        out.append(max(int(v), out[-1] + 1))
    return out


BOUNDS = {h[0]: bounds(*h[1:]) for h in HISTOGRAMS}


def histogram(rng, name, htype, low, high, n):
    b = BOUNDS[name]
    if htype == 2:
        used = [0, 1]
    else:
        k = rng.randint(2, min(12, len(b)))
        start = rng.randint(0, len(b) - k)
        used = range(start, start + k)
    values, total = {}, 0
    for i in used:
        c = rng.randint(1, 300) if rng.random() < 0.9 else rng.randint(300, 50000)
        values[str(b[i])] = c
        total += c * b[i]
    return {"range": [low, high], "bucket_count": n, "histogram_type": htype,
            "values": values, "sum": total}


def file_dims(seed, n):
    """(reason, appName, channel, version, buildid, submission date) of file n."""
    rng = random.Random("dims:%d:%d" % (seed, n))
    app = pick(rng, APPS)
    reason = pick(rng, REASONS)
    channel = pick(rng, CHANNELS)
    version = rng.choice(VERSIONS[channel])
    buildid = "201406%02d%06d" % (rng.randint(1, 20), rng.randint(0, 235959))
    subdate = "201406%02d" % rng.randint(21, 30)
    return reason, app, channel, version, buildid, subdate


def ping(rng, reason, app, channel, version, buildid):
    os_name, _, os_versions, arch = pick(rng, [(o, o[1]) for o in OSES[app]])
    info = {
        "reason": reason, "OS": os_name, "appID": APP_IDS[app], "appVersion": version,
        "appName": app, "appBuildID": buildid, "appUpdateChannel": channel,
        "platformBuildID": buildid, "locale": rng.choice(LOCALES), "arch": arch,
        "version": rng.choice(os_versions), "cpucount": rng.choice([1, 2, 4, 8]),
        "memsize": rng.choice([1024, 2048, 4096, 8192]), "hasSSE2": arch == "x86",
        "hasNEON": arch == "armv7", "adapterVendorID": rng.choice(["0x8086", "0x10de", "0x1002"]),
        "addons": ",".join("%s:%d.%d" % (a, rng.randint(1, 9), rng.randint(0, 20))
                           for a in rng.sample(ADDONS, rng.randint(0, 3))),
    }
    uptime = rng.randint(1, 50000)
    measurements = {
        "uptime": uptime, "main": rng.randint(30, 3000), "firstPaint": rng.randint(200, 20000),
        "sessionRestored": rng.randint(200, 30000), "totalTime": uptime * 60 + rng.randint(0, 59),
        "savedPings": rng.randint(0, 5), "startupInterrupted": 0,
        "js": {"setTimeout": rng.randint(0, 900), "setInterval": rng.randint(0, 90)},
    }
    hists = {h[0]: histogram(rng, *h) for h in rng.sample(HISTOGRAMS, rng.randint(2, 8))}
    doc = {"ver": 2, "info": info, "simpleMeasurements": measurements, "histograms": hists}
    if rng.random() < 0.04:
        # A few big pings (5-15 KB lines): a session log, like real "log" sections.
        doc["log"] = [["EVENT_%s" % rng.choice(["ADDON_INSTALL", "GC_SLICE", "TAB_OPEN",
                                                 "SEARCH", "PAGE_LOAD"]),
                       rng.randint(0, uptime * 60000), rng.randint(1, 64)]
                      for _ in range(rng.randint(150, 400))]
    return make_uuid(rng) + "\t" + json.dumps(doc, separators=(",", ":")) + "\n", os_name


def gzip_bytes(data, level):
    """A gzip member with a fixed header (no name, mtime 0, OS "unknown"), so the
    bytes do not depend on the Python version (gzip.compress's OS byte does)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = deflate.compress(data) + deflate.flush()
    xfl = 2 if level == 9 else 4 if level == 1 else 0
    header = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 0, 0, xfl, 255)
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def compress(data, comp, level):
    if comp == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                             preset=6 if level is None else level)
    if comp == "gz":
        return gzip_bytes(data, 9 if level is None else level)
    if comp == "bz2":
        return bz2.compress(data, 9 if level is None else level)
    if comp == "zst":
        if shutil.which("zstd") is None:
            sys.exit("gen_sample.py: --compression zst needs the zstd command")
        return subprocess.run(["zstd", "-q", "-c", "-%d" % (19 if level is None else level)],
                              input=data, stdout=subprocess.PIPE, check=True).stdout
    return data


def gen_file(a, n, comp, invalid):
    reason, app, channel, version, buildid, subdate = file_dims(a.seed, n)
    rel = "/".join([reason, app, channel, version,
                    "%s.%s.v2.log.%d%s" % (buildid, subdate, n, EXTENSIONS[comp])])
    rng = random.Random("lines:%d:%d" % (a.seed, n))
    lines, counts = [], {}
    for _ in range(a.lines):
        line, os_name = ping(rng, reason, app, channel, version, buildid)
        lines.append(line)
        counts[os_name] = counts.get(os_name, 0) + 1
    invalid_at = []
    if invalid:
        # Spread the broken lines over the file, never as its first line.
        positions = sorted(rng.sample(range(1, a.lines + invalid), invalid))
        for k, pos in enumerate(positions):
            body = INVALID_BODIES[k % len(INVALID_BODIES)] % {"reason": reason, "app": app}
            lines.insert(pos, make_uuid(rng) + "\t" + body + "\n")
        invalid_at = [p + 1 for p in positions]  # 1-based line numbers
    data = "".join(lines).encode("utf-8")
    blob = compress(data, comp, a.level)
    path = os.path.join(a.out, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    return {"path": rel, "compression": comp,
            "dimensions": [reason, app, channel, version, buildid, subdate],
            "records": len(lines), "valid": a.lines, "invalid": invalid,
            "invalid_lines": invalid_at, "bytes": len(data), "compressed_bytes": len(blob),
            "sha256": hashlib.sha256(data).hexdigest(),
            "os_counts": dict(sorted(counts.items()))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (data files only)")
    ap.add_argument("--meta", default=None,
                    help="where manifest.json and expected_os_counts.tsv go (default: OUT); "
                         "keeping them out of OUT lets `polymr run OUT` read OUT whole")
    ap.add_argument("--files", type=int, default=12, help="number of files (default 12)")
    ap.add_argument("--lines", type=int, default=500,
                    help="valid records per file (default 500)")
    ap.add_argument("--seed", type=int, default=2014, help="random seed (default 2014)")
    ap.add_argument("--compression", default="xz,gz,xz",
                    help="comma list of xz,gz,bz2,zst,none, cycled over the files "
                         "(default xz,gz,xz)")
    ap.add_argument("--level", type=int, default=None,
                    help="compression level (default xz 6, gzip 9, bzip2 9, zstd 19)")
    ap.add_argument("--invalid", type=int, default=0, metavar="N",
                    help="put N invalid-JSON lines into one file (default 0)")
    ap.add_argument("--invalid-file", type=int, default=1, metavar="I",
                    help="the file (0-based) that gets them (default 1)")
    ap.add_argument("--clean", action="store_true",
                    help="remove OUT's previous sample (files from a manifest.json) first")
    a = ap.parse_args(argv)

    comps = [c.strip() for c in a.compression.split(",") if c.strip()]
    if not comps or any(c not in EXTENSIONS for c in comps):
        ap.error("--compression: use a comma list of %s" % ",".join(EXTENSIONS))
    if a.files < 1 or a.lines < 1 or a.invalid < 0:
        ap.error("--files and --lines must be positive, --invalid not negative")
    if a.invalid and not 0 <= a.invalid_file < a.files:
        ap.error("--invalid-file must be in [0, --files)")

    meta = a.meta or a.out
    if a.clean:
        clean(a.out, meta)
    os.makedirs(a.out, exist_ok=True)
    files = [gen_file(a, n, comps[n % len(comps)], a.invalid if n == a.invalid_file else 0)
             for n in range(a.files)]

    counts = {}
    for f in files:
        for k, v in f["os_counts"].items():
            counts[k] = counts.get(k, 0) + v
    with open(os.path.join(meta, "expected_os_counts.tsv"), "w", newline="\n") as fh:
        for k in sorted(counts):
            fh.write("%s\t%d\n" % (k, counts[k]))
    params = {k: v for k, v in vars(a).items() if k not in ("out", "meta", "clean")}
    total = {"files": len(files), "records": sum(f["records"] for f in files),
             "valid": sum(f["valid"] for f in files),
             "invalid": sum(f["invalid"] for f in files),
             "bytes": sum(f["bytes"] for f in files),
             "compressed_bytes": sum(f["compressed_bytes"] for f in files),
             "os_counts": dict(sorted(counts.items()))}
    with open(os.path.join(meta, "manifest.json"), "w", newline="\n") as fh:
        json.dump({"generator": "examples/gen_sample.py", "params": params,
                   "total": total, "files": files}, fh, indent=1, sort_keys=False)
        fh.write("\n")
    print("wrote %d files, %d records (%d invalid), %d bytes compressed, to %s"
          % (total["files"], total["records"], total["invalid"],
             total["compressed_bytes"], a.out))
    return 0


def clean(out, meta):
    """Remove the data files listed in META/manifest.json and the empty dirs left."""
    manifest = os.path.join(meta, "manifest.json")
    if not os.path.exists(manifest):
        return
    with open(manifest) as fh:
        old = json.load(fh)
    for f in old.get("files", []):
        p = os.path.join(out, *f["path"].split("/"))
        if os.path.exists(p):
            os.remove(p)
        d = os.path.dirname(p)
        while os.path.abspath(d) != os.path.abspath(out):
            try:
                os.rmdir(d)
            except OSError:
                break
            d = os.path.dirname(d)


if __name__ == "__main__":
    sys.exit(main())
