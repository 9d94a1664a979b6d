#!/usr/bin/env python3
"""Peak RSS of a driver process itself, not of its children.

    peak_rss.py [--interval SEC] -- COMMAND [ARGS...]

Runs COMMAND and prints one line of JSON on stdout:
  vmhwm_kib   the last VmHWM (peak resident set, kernel-maintained high-water mark) read from
              /proc/PID/status of COMMAND's own process while it ran. VmHWM only grows, so the
              last sample before exit is the peak, short of growth in the final interval.
  wait4_kib   ru_maxrss from wait4(): the largest peak of COMMAND *and* every descendant it
              waited for. With a tiny mapper (cat, ~2 MiB) it is the driver's own peak too, a
              cross-check of vmhwm_kib; with a bigger mapper it is the mapper's.
  samples, wall_s, rc
COMMAND's stdout/stderr are left alone (redirect them yourself).
"""
import json
import os
import subprocess
import sys
import time


def vmhwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def main(argv):
    interval = 0.01
    if argv and argv[0] == "--interval":
        interval = float(argv[1])
        argv = argv[2:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    t0 = time.monotonic()
    p = subprocess.Popen(argv)
    peak, samples = 0, 0
    while True:
        # Reaped only by wait4 below, so /proc/PID stays readable until we read its rusage.
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        v = vmhwm(p.pid)
        if v is not None:
            peak = max(peak, v)
            samples += 1
        time.sleep(interval)
    p.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"vmhwm_kib": peak, "wait4_kib": ru.ru_maxrss, "samples": samples,
                      "wall_s": round(time.monotonic() - t0, 3), "rc": p.returncode}))
    return 0 if p.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
