"""Memory of a set of processes and all their descendants, for
bench/bench_mta.sh's idle-session figures.

    memsum.py PID...

Prints one JSON line: {"procs": N, "rss": BYTES, "pss": BYTES,
"by_name": {"smtpd": {"procs": N, "rss": BYTES, "pss": BYTES}, ...}}.
rss sums VmRSS of /proc/PID/status (shared pages counted once per process);
pss sums Pss of /proc/PID/smaps_rollup (shared pages divided among the
processes that map them), the fair sum for a server made of many processes.
Processes that vanish while being read are skipped."""
import json
import os
import sys


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def field_kb(path, name):
    with open(path) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    roots = [int(p) for p in sys.argv[1:]]
    kids = children_map()
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(kids.get(p, []))
    total = {"procs": 0, "rss": 0, "pss": 0, "by_name": {}}
    for p in sorted(seen):
        try:
            with open("/proc/%d/comm" % p) as f:
                name = f.read().strip()
            rss = field_kb("/proc/%d/status" % p, "VmRSS")
            pss = field_kb("/proc/%d/smaps_rollup" % p, "Pss")
        except (OSError, ValueError):
            continue
        total["procs"] += 1
        total["rss"] += rss
        total["pss"] += pss
        n = total["by_name"].setdefault(name, {"procs": 0, "rss": 0, "pss": 0})
        n["procs"] += 1
        n["rss"] += rss
        n["pss"] += pss
    print(json.dumps(total))


if __name__ == "__main__":
    main()
