"""The summary of bench/helper.sh's hyperfine exports (see there):

    python3 bench/helper_summary.py OUT EXPECTED_COUNTS ROUNDS PAIR...
"""
import json
import os
import statistics
import sys

out, expected_file, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
expected = {}
for line in open(expected_file):
    k, v = line.split()
    expected[k] = int(v)

def counts(path):
    c = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        f = line.split()
        if len(f) == 2:
            c[f[0]] = c.get(f[0], 0) + int(f[1])
    return c

PIPE = ("xz -dc | map.py", "xz | map.py | sort | reduce.py", "map.py")
for name in sys.argv[4:]:
    wall, cpu, ratio, others, fastest, min_ratio = {}, {}, {}, [], {}, {}
    order = []
    for r in range(1, rounds + 1):
        res = json.load(open(os.path.join(out, "%s.%d.json" % (name, r))))["results"]
        a, ai, b, bi, hz, ncpu = map(int, open(os.path.join(out, "%s.%d.ticks" % (name, r))).read().split())
        busy, total = (b - a) / hz, (b - a + bi - ai) / hz
        ours = sum((x["user"] + x["system"]) * len(x["times"]) for x in res)
        others.append(max(0.0, busy - ours) / total * 100 if total else 0.0)
        pipe_x = [x for x in res if x["command"] in PIPE][0]
        pipe, pipe_min = pipe_x["median"], pipe_x["min"]
        for x in res:
            c = x["command"]
            if c not in order:
                order.append(c)
            wall.setdefault(c, []).append(x["median"])
            cpu.setdefault(c, []).append(x["user"] + x["system"])
            ratio.setdefault(c, []).append(x["median"] / pipe)
            fastest.setdefault(c, []).append(x["min"])
            min_ratio.setdefault(c, []).append(x["min"] / pipe_min)
    pipe_name = [c for c in order if c in PIPE][0]
    print("%s: %d round(s); other load while it ran: %s%% of %d cores" % (
        name, rounds, "/".join("%.0f" % o for o in others), ncpu))
    for c in order:
        print("  %-30s wall %6.2fs  min %6.2fs  cpu %6.2fs  ratio %.2f (rounds: %s)  min ratio %.2f  cpu ratio %.2f" % (
            c, statistics.median(wall[c]), min(fastest[c]), statistics.mean(cpu[c]),
            statistics.median(ratio[c]), " ".join("%.2f" % x for x in ratio[c]),
            statistics.median(min_ratio[c]), statistics.mean(cpu[c]) / statistics.mean(cpu[pipe_name])))
for f in sorted(os.listdir(out)):
    if f.endswith(("-orjson.txt", "-json.txt", "-before.txt", "-pipe.txt")):
        print("  counts %-20s %s" % (f, "ok" if counts(os.path.join(out, f)) == expected else "MISMATCH"))
