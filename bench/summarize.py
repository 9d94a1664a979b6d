#!/usr/bin/env python3
"""Turns bench/out/ (hyperfine JSON, /proc/stat ticks, verify.txt, rss.txt) into the markdown
summary that bench/run.sh prints and saves as bench/out/summary.md."""
import argparse
import datetime
import json
import os
import statistics
import subprocess

TARGETS = {"xz-c": 1.05, "xz-awk": 1.05, "xz-py": 1.10}
DESCR = {
    "xz-c": ("xz", "C `os_count_c`", "`xz -dc | os_count_c`"),
    "xz58-c": ("xz", "C `os_count_c`", "`xzcat | os_count_c` (xzcat = polymr's liblzma 5.8)"),
    "xz58-py": ("xz", "Python, original API", "`xzcat | python3 map.py` (polymr's liblzma 5.8)"),
    "xz-awk": ("xz", "mawk `map_os.awk`", "`xz -dc | mawk -f map_os.awk`"),
    "xz-py": ("xz", "Python, original API (helper + `os_count.py`)", "`xz -dc | python3 map.py`"),
    "xz-pymap": ("xz", "`python3 map.py` as a binary mapper (no helper)", "`xz -dc | python3 map.py`"),
    "gz-c": ("gz", "C `os_count_c`", "`gzip -dc | os_count_c`"),
    "gz-py": ("gz", "Python, original API", "`gzip -dc | python3 map.py`"),
    "zst-c": ("zst", "C `os_count_c`", "`zstd -qdc | os_count_c`"),
    "zst-py": ("zst", "Python, original API", "`zstd -qdc | python3 map.py`"),
    "xz-osmap": ("xz", "peers' C `osmap`", "`xz -dc | osmap`"),
}
MIB = 1024.0
LIMIT_MIB = 64


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def load_round(out, name, r):
    with open(os.path.join(out, "hyperfine", "%s.%d.json" % (name, r))) as f:
        res = {x["command"]: x for x in json.load(f)["results"]}
    ticks = None
    p = os.path.join(out, "hyperfine", "%s.%d.ticks" % (name, r))
    if os.path.exists(p):
        with open(p) as f:
            a, ai, b, bi = map(int, f.read().split())
        ticks = (b - a, bi - ai)
    return res, ticks


def other_load(res, ticks, runs, warmup):
    """Share of the machine's CPU used by processes other than the benchmark during the
    invocation, in % of all cores: /proc/stat busy time minus the benchmark's own user+sys
    (hyperfine's means times the runs, warm-up included). Approximate."""
    if not ticks:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy, idle = ticks[0] / hz, ticks[1] / hz
    ours = sum((x["user"] + x["system"]) * (runs + warmup) for x in res.values())
    return max(0.0, 100.0 * (busy - ours) / (busy + idle))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", default="")
    ap.add_argument("--nice", default="")
    a = ap.parse_args()

    verify = {}
    vp = os.path.join(a.out, "work", "verify.txt")
    if os.path.exists(vp):
        for line in open(vp):
            parts = line.split(None, 1)
            if parts:
                verify[parts[0]] = parts[1].strip() if len(parts) > 1 else ""

    man = json.load(open(os.path.join(a.data, "manifest.json")))["total"]
    print("# polymr map benchmark, %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    print()
    print("- machine: %s cores, %s; %s" % (os.cpu_count(), sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
                                          sh("uptime | sed 's/.*load/load/'")))
    print("- polymr: %s (%s)" % (sh("cd %s/.. && git rev-parse --short HEAD" % os.path.dirname(os.path.abspath(__file__))),
                                 "worktree has uncommitted changes" if sh("cd %s/.. && git status --porcelain -- src helpers Cargo.toml Cargo.lock" % os.path.dirname(os.path.abspath(__file__))) else "clean"))
    print("- data: %s: %d files, %d records, %.1f MB uncompressed (xz %.1f MB, gz %.1f MB, zst %.1f MB)" % (
        a.data, man["files"], man["lines"], man["bytes"] / 1e6, man.get("bytes_xz", 0) / 1e6,
        man.get("bytes_gz", 0) / 1e6, man.get("bytes_zst", 0) / 1e6))
    print("- %s; %d timed runs per command after %d warm-up, %d round(s) per pair" % (
        sh("hyperfine --version"), a.runs, a.warmup, a.rounds)
          + ("; hyperfine under `nice -n %s`" % a.nice if a.nice else ""))
    print()

    pairs = a.pairs.split()
    if pairs:
        print("## Wall time, polymr vs the shell pipeline (medians)")
        print()
        print("| pair | input | mapper under polymr | pipeline | polymr s | pipeline s | ratio | target | "
              "min ratio | polymr CPU s | pipeline CPU s | CPU ratio | other load | counts |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name in pairs:
            try:
                rounds = [load_round(a.out, name, r) for r in range(1, a.rounds + 1)]
            except OSError:
                continue
            pt = [t for res, _ in rounds for t in res["polymr"]["times"]]
            st = [t for res, _ in rounds for t in res["pipeline"]["times"]]
            ratios = [statistics.median(res["polymr"]["times"]) / statistics.median(res["pipeline"]["times"])
                      for res, _ in rounds]
            ratio = statistics.median(ratios)
            # The fastest run of each side: the least disturbed by other load.
            min_ratio = min(pt) / min(st)
            pc = statistics.median([res["polymr"]["user"] + res["polymr"]["system"] for res, _ in rounds])
            scpu = statistics.median([res["pipeline"]["user"] + res["pipeline"]["system"] for res, _ in rounds])
            loads = [other_load(res, t, a.runs, a.warmup) for res, t in rounds]
            loads = [x for x in loads if x is not None]
            load = "%.0f%%" % max(loads) if loads else "?"
            if loads and max(loads) > 10:
                load += " (contended)"
            tgt = TARGETS.get(name)
            if tgt:
                verdict = "%.2f %s" % (tgt, "met" if ratio <= tgt else "**missed**")
            else:
                verdict = "(info)"
            comp, what, pipe = DESCR.get(name, ("", name, ""))
            pipe = pipe.replace("|", "\\|")
            print("| %s | %s | %s | %s | %.2f | %.2f | **%.2fx** | %s | %.2fx | %.2f | %.2f | %.2fx | %s | %s |" % (
                name, comp, what, pipe, statistics.median(pt), statistics.median(st), ratio, verdict,
                min_ratio, pc, scpu, pc / scpu, load, verify.get(name, "?")))
        print()
        print("ratio = median polymr wall / median pipeline wall (median over rounds if more than one); "
              "the target is checked on it. min ratio = fastest polymr run / fastest pipeline run "
              "(the runs least disturbed by other load). "
              "CPU = user+sys of the whole process tree (hyperfine means). other load = CPU used "
              "by unrelated processes during the invocation, % of both cores (from /proc/stat); "
              "above ~10% the wall times are not trustworthy. counts: polymr / pipeline output "
              "summed per OS == expected_os_counts.tsv.")
        print()

    rp = os.path.join(a.out, "work", "rss.txt")
    if os.path.exists(rp):
        print("## The driver's own peak RSS")
        print()
        print("| run | records | wall s | VmHWM sampled, MiB | wait4 maxrss, MiB | report's figure, MiB | peak, MiB | < %d MiB |" % LIMIT_MIB)
        print("|---|---|---|---|---|---|---|---|")
        for line in open(rp):
            name, rest = line.split(" ", 1)
            j, _, drv = rest.strip().rpartition("} ")
            j = json.loads(j + "}")
            rep = json.load(open(os.path.join(a.out, "work", "rss-%s.txt.report.json" % name)))
            figs = [j["vmhwm_kib"] / MIB, j["wait4_kib"] / MIB]
            own = [j["vmhwm_kib"] / MIB]
            rep_mib = None
            for kv in drv.split():
                k, _, v = kv.partition("=")
                if k.endswith("bytes") and v.replace(".", "").isdigit():
                    rep_mib = float(v) / MIB / MIB
            if rep_mib is not None:
                own.append(rep_mib)
            # wait4's figure counts the children too: the driver's own only with the sink.
            if name.startswith("sink-"):
                own.append(j["wait4_kib"] / MIB)
            peak = max(own)
            print("| %s | %d | %.2f | %.1f | %.1f | %s | **%.1f** | %s |" % (
                name, rep["totals"]["records"], j["wall_s"], j["vmhwm_kib"] / MIB, j["wait4_kib"] / MIB,
                "%.1f" % rep_mib if rep_mib is not None else "-", peak,
                "yes" if peak < LIMIT_MIB else "**NO**"))
        print()
        print("VmHWM sampled = the high-water mark in /proc/PID/status of polymr's own pid, read every "
              "10 ms (a lower bound: the kernel's RSS counters lag a little, and the last 10 ms are "
              "not seen); wait4 maxrss = ru_maxrss of polymr and the children it reaped; report = "
              "the figure polymr writes in its report, if any. peak = the largest figure that is "
              "polymr's own (wait4 counts only for the sink runs, whose mapper is `cat`, ~2 MiB). "
              "sink = `cat > /dev/null` as the mapper; c = `os_count_c`; py = the Python helper. "
              "xN = the 40 files listed N times (40*N inputs); one-xN = the same bytes as ONE "
              "multi-stream xz file.")


if __name__ == "__main__":
    main()
